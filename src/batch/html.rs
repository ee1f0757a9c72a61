//! `report.html`: one self-contained, offline page.
//!
//! Nothing in the page refers to anything outside it: no scripts, no external style sheets,
//! fonts or images (thumbnails are `data:` URIs). A Content-Security-Policy `<meta>` ([`CSP`])
//! makes the browser refuse any fetch that would slip in anyway. Every text that comes from a
//! file name, a manifest or an error message is HTML-escaped.
//!
//! Decisions are shown with words and shapes as well as colours, from the Okabe–Ito
//! colour-blind-safe palette (vermillion ▲ positive, blue ● negative, orange warnings,
//! reddish purple "cannot assess").

use std::collections::HashMap;
use std::fmt::Write;

use super::{BatchRow, HeadSummary, RowStatus};
use crate::bundle::{BackboneKind, Manifest, Task};
use crate::classify::DEMO_NOTICE;

/// The page's Content-Security-Policy: nothing may load except `data:` images and the inline
/// style sheet (no scripts, fonts, frames, connections; `base-uri`/`form-action` are not covered
/// by `default-src`, so they are closed explicitly).
pub const CSP: &str =
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/// The line every report carries.
pub const NOT_A_DIAGNOSIS: &str = "Not a diagnosis. These are outputs of a machine-learning model, to support (never \
     replace) the judgement of a trained clinician, who must review every image.";

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An embedded thumbnail.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumb {
    /// `data:image/jpeg;base64,…`.
    pub data_uri: String,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
}

/// Counts shown in the header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows in the report.
    pub total: usize,
    /// Rows with a result.
    pub ok: usize,
    /// Rows that could not be processed.
    pub failed: usize,
    /// Rows with a "cannot assess" reason.
    pub abstained: usize,
    /// Rows with at least one warning.
    pub warned: usize,
    /// Rows processed by the run that wrote the report.
    pub new: usize,
}

/// Everything the page shows besides the rows.
#[derive(Debug, Clone)]
pub struct ReportContext<'a> {
    /// The bundle's manifest (provenance).
    pub manifest: &'a Manifest,
    /// The bundle's fingerprint; rows made with another one are marked.
    pub fingerprint: &'a str,
    /// RFC 3339 time the page was generated.
    pub generated_at: String,
    /// The input folder, as given.
    pub input_dir: String,
    /// How many classes per head were asked for.
    pub top_k: usize,
    /// Header counts.
    pub counts: Counts,
}

const STYLE: &str = r#"
:root{--pos:#b34700;--neg:#0072b2;--warn:#e69f00;--abst:#a0527f;--ink:#1b1b1b;--muted:#5a5a5a;--line:#d9d9d6}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:#f3f3f0}
header{background:#fff;border-bottom:1px solid var(--line);padding:18px 24px 14px}
h1{font-size:21px;margin:0 0 6px}
h2{font-size:15px;margin:0;word-break:break-all}
h3{font-size:13px;margin:14px 0 4px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.demo{background:#f0e442;color:#000;border:3px solid #000;padding:10px 14px;font-weight:700;font-size:16px;margin:10px 0}
.nodx{border-left:6px solid var(--ink);background:#f7f7f5;padding:8px 12px;margin:10px 0;font-weight:600}
table.kv,table.heads{border-collapse:collapse;font-size:13px}
table.kv th,table.kv td,table.heads th,table.heads td{padding:3px 10px 3px 0;text-align:left;vertical-align:top}
table.heads th{border-bottom:1px solid var(--line)}
table.heads td{border-bottom:1px solid #eee}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.prov{font-size:12px;color:var(--muted)}
.counts{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0 4px;padding:0;list-style:none}
.counts li{background:#f3f3f0;border:1px solid var(--line);border-radius:14px;padding:2px 12px}
.legend{font-size:12px;color:var(--muted);margin-top:8px}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:14px;padding:16px 24px 32px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px;display:flex;gap:14px;break-inside:avoid}
.card.error{border:2px dashed #000}
.card.abstain{border-left:6px solid var(--abst)}
.thumb{flex:0 0 160px;width:160px;height:160px;display:flex;align-items:center;justify-content:center;background:#e8e8e4;border-radius:4px}
.frame{position:relative;display:inline-block;line-height:0}
.frame img{display:block;max-width:160px;max-height:160px}
.crop{position:absolute;border:1px dashed #fff;outline:1px dashed #000}
.nothumb{color:var(--muted);font-size:12px;text-align:center;padding:8px}
.body{flex:1;min-width:0}
.meta{color:var(--muted);font-size:12px;margin:2px 0 8px}
.head{margin:6px 0 10px}
.hname{font-weight:600}
.badge{display:inline-block;padding:1px 7px;border-radius:3px;font-weight:700;font-size:12px;color:#fff;margin-right:6px}
.badge.pos{background:var(--pos)}
.badge.neg{background:var(--neg)}
.badge.top{background:#4d4d4d}
.why{display:block;color:var(--muted);font-size:12px}
ol.top{list-style:none;margin:4px 0 0;padding:0;font-size:12px}
ol.top li{display:grid;grid-template-columns:minmax(90px,150px) 1fr 52px;gap:8px;align-items:center}
.bar{height:8px;background:#e6e6e2;border-radius:2px;overflow:hidden}
.bar span{display:block;height:8px;background:#56b4e9}
.p{text-align:right;font-variant-numeric:tabular-nums}
.dim{opacity:.55}
.box{padding:6px 10px;margin:6px 0;border-radius:3px;font-size:13px}
.box.warn{background:#fdf3dc;border-left:5px solid var(--warn)}
.box.abst{background:#f6eaf1;border-left:5px solid var(--abst);font-weight:600}
.box.err{background:#f1f1f1;border-left:5px solid #000}
.box.old{background:#eef4f9;border-left:5px solid var(--neg)}
.box ul{margin:2px 0 0;padding-left:18px}
footer{color:var(--muted);font-size:12px;padding:0 24px 24px}
@media print{body{background:#fff}main{display:block}.card{margin-bottom:10px}}
"#;

/// Whether `s` looks like a SHA-256 digest (64 hex digits).
fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn toml_text(v: &toml::Value) -> String {
    match v {
        // Digests are shortened for reading; the manifest and results.jsonl keep them whole.
        toml::Value::String(s) if is_digest(s) => format!("{}…", short(s)),
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => format!("{f:.4}"),
        other => other.to_string(),
    }
}

fn table_text(t: &Option<toml::Table>) -> String {
    match t {
        None => "(none recorded)".into(),
        Some(t) if t.is_empty() => "(none recorded)".into(),
        Some(t) => t.iter().map(|(k, v)| format!("{k}: {}", toml_text(v))).collect::<Vec<_>>().join("; "),
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn header(out: &mut String, ctx: &ReportContext<'_>) {
    let m = ctx.manifest;
    let b = &m.bundle;
    let bb = &m.backbone;
    let _ = write!(out, "<header>\n<h1>PanDerm batch report: {} {}</h1>\n", escape(&b.name), escape(&b.version));
    if b.demo {
        let _ = writeln!(out, "<div class=\"demo\" role=\"alert\">&#9888; {}</div>", escape(DEMO_NOTICE));
    }
    let _ = writeln!(out, "<p class=\"nodx\">{}</p>", escape(NOT_A_DIAGNOSIS));
    let c = &ctx.counts;
    let _ = writeln!(
        out,
        "<ul class=\"counts\"><li><b>{}</b> images</li><li><b>{}</b> with a result</li><li><b>{}</b> failed</li>\
         <li><b>{}</b> cannot assess</li><li><b>{}</b> with warnings</li><li><b>{}</b> new in this run</li></ul>",
        c.total, c.ok, c.failed, c.abstained, c.warned, c.new
    );
    out.push_str("<h3>Model bundle</h3>\n<table class=\"kv\">\n");
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(out, "<tr><th>{}</th><td>{v}</td></tr>", escape(k));
    };
    kv(
        "Bundle",
        format!("{} {} <span class=\"mono\">({})</span>", escape(&b.name), escape(&b.version), escape(ctx.fingerprint)),
    );
    if !b.description.is_empty() {
        kv("Description", escape(&b.description));
    }
    kv("Created by", escape(&b.created_by));
    let kind = match bb.kind {
        BackboneKind::Features => "feature extractor + heads",
        BackboneKind::Classifier => "fine-tuned classifier",
    };
    kv(
        "Backbone",
        format!(
            "{} ({kind}, {}-d, {}) <span class=\"mono\">file {} &middot; checkpoint {}</span>",
            escape(&bb.variant),
            bb.dim,
            bb.precision.name(),
            escape(short(&bb.sha256)),
            escape(short(&bb.source_sha256))
        ),
    );
    kv(
        "Preprocessing",
        format!(
            "shorter side to {} px, centre crop {} px (dashed square on each thumbnail), EXIF orientation {}",
            m.preprocess.resize_shorter,
            m.preprocess.crop,
            if m.preprocess.exif_orientation { "applied" } else { "ignored" }
        ),
    );
    kv("Generated", escape(&ctx.generated_at));
    kv("Input folder", format!("<span class=\"mono\">{}</span>", escape(&ctx.input_dir)));
    out.push_str("</table>\n<h3>Heads</h3>\n<table class=\"heads\">\n");
    out.push_str("<tr><th>Head</th><th>Task</th><th>Labels</th><th>Threshold</th><th>Training provenance</th><th>Test metrics</th></tr>\n");
    match bb.kind {
        BackboneKind::Classifier => {
            let name = bb.task_name.clone().unwrap_or_else(|| "classifier".into());
            let labels = bb.labels.clone().unwrap_or_default();
            let task = bb.task.unwrap_or(Task::Multiclass);
            head_row(out, &name, task, &labels, bb.threshold, "(fine-tuned backbone)", "(none recorded)");
        }
        BackboneKind::Features => {
            for h in &m.heads {
                head_row(
                    out,
                    &h.name,
                    h.task,
                    &h.labels,
                    h.threshold,
                    &table_text(&h.provenance),
                    &table_text(&h.metrics),
                );
            }
        }
    }
    out.push_str("</table>\n");
    let _ = writeln!(
        out,
        "<p class=\"legend\">Legend: <span class=\"badge pos\">&#9650; POSITIVE</span> score at or above the head's \
         threshold &middot; <span class=\"badge neg\">&#9679; negative</span> below it &middot; \
         <span class=\"badge top\">top-1</span> most probable class of a multiclass head. Top-{} classes with \
         probabilities. Dashed square: the centre region the model analyses.</p>",
        ctx.top_k
    );
    out.push_str("</header>\n");
}

fn head_row(
    out: &mut String,
    name: &str,
    task: Task,
    labels: &[String],
    threshold: Option<f64>,
    prov: &str,
    metrics: &str,
) {
    let task = match task {
        Task::Binary => "binary",
        Task::Multiclass => "multiclass",
    };
    let threshold = threshold.map(|t| format!("{t:.3}")).unwrap_or_else(|| "&ndash;".into());
    let _ = writeln!(
        out,
        "<tr><td><b>{}</b></td><td>{task}</td><td>{}</td><td>{threshold}</td><td class=\"prov\">{}</td><td class=\"prov\">{}</td></tr>",
        escape(name),
        escape(&labels.join(", ")),
        escape(prov),
        escape(metrics)
    );
}

fn percent(p: f32) -> String {
    format!("{:.1}%", f64::from(p) * 100.0)
}

/// `P(<class-1 label>)` for a binary head of the bundle, else `score`.
fn score_name(h: &HeadSummary, m: &Manifest) -> String {
    let labels = match m.backbone.kind {
        BackboneKind::Classifier => m.backbone.labels.as_deref(),
        BackboneKind::Features => m.heads.iter().find(|s| s.name == h.name).map(|s| s.labels.as_slice()),
    };
    match labels {
        Some([_, positive]) => format!("P({})", escape(positive)),
        _ => "score".into(),
    }
}

fn head_block(out: &mut String, h: &HeadSummary, m: &Manifest) {
    let _ = write!(out, "<div class=\"head\"><div><span class=\"hname\">{}</span> ", escape(&h.name));
    match (h.positive, h.threshold) {
        (Some(positive), Some(t)) => {
            let (class, word, cmp) =
                if positive { ("pos", "&#9650; POSITIVE", "&ge;") } else { ("neg", "&#9679; negative", "&lt;") };
            let _ = write!(
                out,
                "<span class=\"badge {class}\">{word}</span><b>{}</b> <span class=\"why\">{} = {:.3} {cmp} threshold {t:.3}</span>",
                escape(&h.label),
                score_name(h, m),
                h.score
            );
        }
        _ => {
            let _ =
                write!(out, "<span class=\"badge top\">top-1</span><b>{}</b> {}", escape(&h.label), percent(h.score));
        }
    }
    out.push_str("</div>\n<ol class=\"top\">");
    for lp in &h.top_k {
        let width = (f64::from(lp.probability) * 100.0).clamp(0.0, 100.0);
        let _ = write!(
            out,
            "<li><span>{}</span><span class=\"bar\"><span style=\"width:{width:.1}%\"></span></span><span class=\"p\">{}</span></li>",
            escape(&lp.label),
            percent(lp.probability)
        );
    }
    out.push_str("</ol></div>\n");
}

fn thumb_block(out: &mut String, thumb: Option<&Thumb>, file: &str, m: &Manifest) {
    out.push_str("<div class=\"thumb\">");
    match thumb {
        Some(t) => {
            let (w, h) = (f64::from(t.width.max(1)), f64::from(t.height.max(1)));
            let resize = f64::from(m.preprocess.resize_shorter.max(1));
            let side = (w.min(h) * f64::from(m.preprocess.crop) / resize).min(w.min(h));
            let _ = write!(
                out,
                "<span class=\"frame\"><img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"thumbnail of {}\">\
                 <span class=\"crop\" style=\"left:{:.2}%;top:{:.2}%;width:{:.2}%;height:{:.2}%\"></span></span>",
                t.data_uri,
                t.width,
                t.height,
                escape(file),
                (w - side) / 2.0 / w * 100.0,
                (h - side) / 2.0 / h * 100.0,
                side / w * 100.0,
                side / h * 100.0
            );
        }
        None => out.push_str("<div class=\"nothumb\">no preview</div>"),
    }
    out.push_str("</div>\n");
}

fn card(out: &mut String, row: &BatchRow, thumb: Option<&Thumb>, ctx: &ReportContext<'_>) {
    let class = match (row.status, &row.abstain) {
        (RowStatus::Error, _) => "card error",
        (RowStatus::Ok, Some(_)) => "card abstain",
        (RowStatus::Ok, None) => "card",
    };
    let _ = writeln!(out, "<article class=\"{class}\">");
    thumb_block(out, thumb, &row.file, ctx.manifest);
    let _ = writeln!(out, "<div class=\"body\">\n<h2>{}</h2>", escape(&row.file));
    let mut meta = Vec::new();
    if !row.sha256.is_empty() {
        meta.push(format!(
            "<span class=\"mono\" title=\"SHA-256 {0}\">sha256 {1}&hellip;</span>",
            escape(&row.sha256),
            escape(short(&row.sha256))
        ));
    }
    if let (RowStatus::Ok, Some(t)) = (row.status, row.total_ms) {
        meta.push(format!("{t:.0} ms"));
    }
    if !row.processed_at.is_empty() {
        meta.push(format!("processed {}", escape(&row.processed_at)));
    }
    let _ = writeln!(out, "<p class=\"meta\">{}</p>", meta.join(" &middot; "));
    if !row.bundle_fingerprint.is_empty() && row.bundle_fingerprint != ctx.fingerprint {
        let _ = writeln!(
            out,
            "<div class=\"box old\">Result from another bundle ({}); the input file is no longer in the folder, so it was not redone.</div>",
            escape(&row.bundle)
        );
    }
    match row.status {
        RowStatus::Error => {
            let _ = writeln!(
                out,
                "<div class=\"box err\"><b>&#10006; Not processed:</b> {}</div>",
                escape(row.error.as_deref().unwrap_or("unknown error"))
            );
        }
        RowStatus::Ok => {
            if let Some(reason) = &row.abstain {
                let _ = writeln!(
                    out,
                    "<div class=\"box abst\">&#8856; Cannot assess: {}. The model outputs below are shown for reference only.</div>",
                    escape(reason)
                );
            }
            if !row.warnings.is_empty() {
                out.push_str("<div class=\"box warn\"><b>&#9888; Warnings</b><ul>");
                for w in &row.warnings {
                    let _ = write!(out, "<li>{}</li>", escape(w));
                }
                out.push_str("</ul></div>\n");
            }
            let dim = if row.abstain.is_some() { " class=\"dim\"" } else { "" };
            let _ = writeln!(out, "<div{dim}>");
            for h in &row.heads {
                head_block(out, h, ctx.manifest);
            }
            out.push_str("</div>\n");
        }
    }
    out.push_str("</div>\n</article>\n");
}

/// Renders the page. `thumbs` maps a row's SHA-256 to its thumbnail; rows without one show a
/// placeholder.
pub fn render(rows: &[&BatchRow], thumbs: &HashMap<String, Thumb>, ctx: &ReportContext<'_>) -> String {
    let mut out = String::with_capacity(16 * 1024 + rows.len() * 12 * 1024);
    let title = format!("PanDerm batch report: {} {}", ctx.manifest.bundle.name, ctx.manifest.bundle.version);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(CSP),
        escape(&title)
    );
    header(&mut out, ctx);
    out.push_str("<main>\n");
    if rows.is_empty() {
        out.push_str("<p>No images yet.</p>\n");
    }
    for row in rows {
        card(&mut out, row, thumbs.get(&row.sha256), ctx);
    }
    out.push_str("</main>\n");
    let _ = writeln!(
        out,
        "<footer>{} &middot; Generated by panderm {} &middot; {}</footer>",
        escape(NOT_A_DIAGNOSIS),
        env!("CARGO_PKG_VERSION"),
        escape(&ctx.generated_at)
    );
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(escape("plain ü"), "plain ü");
    }
}
