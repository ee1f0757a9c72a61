//! `panderm batch`: a folder of photos into results.csv, results.jsonl and an offline
//! report.html; re-runs process only new or changed files; watch mode's polling step.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use panderm_edge::batch::{BatchConfig, BatchRunner, RESULTS_JSONL, RunSummary};
use panderm_edge::classify::Classifier;

fn photo() -> PathBuf {
    image("clinical_forearm_iphone14.jpg")
}

fn batch(input: &Path, out: &Path) -> Output {
    panderm_command()
        .args(["batch", "--bundle"])
        .arg(demo())
        .arg("--out")
        .arg(out)
        .arg(input)
        .output()
        .expect("run panderm")
}

fn ok_stdout(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "batch failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The folder of the task: two copies of the real photo under different names, a PNG, a
/// truncated JPEG and a text file.
fn clinic_folder(tag: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(tag);
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(photo(), input.join("a_forearm.jpg")).unwrap();
    std::fs::copy(photo(), input.join("b forearm, copy.JPG")).unwrap();
    std::fs::copy(image("synthetic_333x517.png"), input.join("c_synthetic.png")).unwrap();
    let jpeg = std::fs::read(photo()).unwrap();
    std::fs::write(input.join("d_corrupt.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(input.join("notes.txt"), "patient list, not an image\n").unwrap();
    (input, dir.join("out"))
}

/// A minimal RFC 4180 reader (quoted fields, doubled quotes, CRLF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(field.is_empty() && row.is_empty(), "CSV must end with a line break");
    rows
}

fn jsonl(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL line {l}: {e}")))
        .collect()
}

fn sha256_hex(path: &Path) -> String {
    panderm_edge::bundle::sha256_file(path).unwrap()
}

/// Every `src="…"` / `href="…"` value in the page.
fn resource_attrs(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=", "href="] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            let quote = rest.chars().next().unwrap();
            assert!(quote == '"' || quote == '\'', "unquoted {attr} attribute");
            let end = rest[1..].find(quote).unwrap();
            found.push(rest[1..1 + end].to_string());
        }
    }
    found
}

#[test]
fn batch_writes_csv_jsonl_html_and_reruns_only_new_files() {
    let (input, out) = clinic_folder("batch-main");
    let stdout = ok_stdout(&batch(&input, &out));
    assert!(stdout.contains("4 processed, 4 new, 1 failed"), "{stdout}");

    // results.csv: header and one row per image, sorted by name; the .txt is ignored.
    let csv = parse_csv(&std::fs::read_to_string(out.join("results.csv")).unwrap());
    let header: Vec<&str> = csv[0].iter().map(String::as_str).collect();
    assert_eq!(
        header,
        [
            "file",
            "sha256",
            "status",
            "bundle",
            "lesion_pattern_label",
            "lesion_pattern_score",
            "lesion_pattern_top_k",
            "lesion_colour_label",
            "lesion_colour_score",
            "lesion_colour_top_k",
            "warnings",
            "abstain",
            "total_ms",
            "error",
            "processed_at"
        ]
    );
    let rows = &csv[1..];
    let files: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(files, ["a_forearm.jpg", "b forearm, copy.JPG", "c_synthetic.png", "d_corrupt.jpg"]);
    for r in rows {
        assert_eq!(r.len(), header.len(), "{r:?}");
    }
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let statuses: Vec<&str> = rows.iter().map(|r| r[col("status")].as_str()).collect();
    assert_eq!(statuses, ["ok", "ok", "ok", "error"]);
    let want_sha = sha256_hex(&photo());
    assert_eq!(rows[0][col("sha256")], want_sha);
    assert_eq!(rows[1][col("sha256")], want_sha);
    assert_eq!(rows[3][col("sha256")], sha256_hex(&input.join("d_corrupt.jpg")));
    for r in &rows[..3] {
        assert_eq!(r[col("bundle")], "panderm-demo 0.1.0");
        assert!(["regular", "dark_irregular"].contains(&r[col("lesion_pattern_label")].as_str()), "{r:?}");
        assert!(["brown", "red", "pale"].contains(&r[col("lesion_colour_label")].as_str()), "{r:?}");
        let score: f64 = r[col("lesion_colour_score")].parse().unwrap();
        assert!((0.0..=1.0).contains(&score));
        // Top-3 of a 3-class head: three "label:prob" items, the first one the top-1.
        let top: Vec<&str> = r[col("lesion_colour_top_k")].split("; ").collect();
        assert_eq!(top.len(), 3, "{top:?}");
        assert!(top[0].starts_with(&format!("{}:", r[col("lesion_colour_label")])));
        assert_eq!(r[col("lesion_pattern_top_k")].split("; ").count(), 2);
        assert!(r[col("total_ms")].parse::<f64>().unwrap() > 0.0);
        assert!(r[col("error")].is_empty());
    }
    // The real photo passes the quality gate (the synthetic PNG may not: it is noise, not skin).
    for r in &rows[..2] {
        assert!(r[col("warnings")].is_empty() && r[col("abstain")].is_empty(), "{r:?}");
    }
    // The same bytes under two names give the same result (the model is deterministic).
    for c in ["lesion_pattern_label", "lesion_pattern_score", "lesion_colour_top_k"] {
        assert_eq!(rows[0][col(c)], rows[1][col(c)], "{c}");
    }
    let err = &rows[3][col("error")];
    assert!(err.contains("d_corrupt.jpg") && !err.contains('\n'), "{err}");
    assert!(rows[3][col("lesion_pattern_label")].is_empty());

    // results.jsonl: one object per image with the full report.
    let lines = jsonl(&out);
    assert_eq!(lines.len(), 4);
    for v in &lines[..3] {
        assert_eq!(v["status"], "ok");
        assert!(v["error"].is_null());
        assert_eq!(v["report"]["heads"].as_array().unwrap().len(), 2);
        assert!(v["report"]["notice"].as_str().unwrap().contains("not a medical device"));
        assert!(v["report"]["timings"]["total_ms"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(lines[3]["status"], "error");
    assert_eq!(lines[3]["sha256"], sha256_hex(&input.join("d_corrupt.jpg")));
    assert!(lines[3]["error"].as_str().unwrap().contains("d_corrupt.jpg"));
    assert!(lines[3]["report"].is_null());

    // report.html: self-contained.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;; img-src data:; \
         style-src &#39;unsafe-inline&#39;"
    ));
    assert!(!html.contains("http://") && !html.contains("https://"), "no URLs at all");
    let attrs = resource_attrs(&html);
    assert_eq!(attrs.len(), 3, "one thumbnail per ok image: {:?}", attrs.iter().map(|a| &a[..30]).collect::<Vec<_>>());
    for a in &attrs {
        assert!(a.starts_with("data:image/jpeg;base64,"), "{}", &a[..40.min(a.len())]);
        assert!(!a.starts_with("//"));
        let bytes = base64_decode(&a["data:image/jpeg;base64,".len()..]);
        let thumb = image::load_from_memory(&bytes).unwrap();
        assert!(thumb.width() <= 160 && thumb.height() <= 160 && thumb.width().max(thumb.height()) >= 100);
    }
    for name in ["a_forearm.jpg", "b forearm, copy.JPG", "c_synthetic.png", "d_corrupt.jpg"] {
        assert!(html.contains(&format!("<h2>{name}</h2>")), "{name}");
    }
    assert!(!html.contains("notes.txt"));
    assert!(html.contains("PIPELINE DEMO") && html.contains("Not a diagnosis"));
    assert!(html.contains("custom_D128_depth2") && html.contains("lesion_colour"));
    assert!(html.contains("L-BFGS"), "head training provenance");
    assert!(!html.contains("<script"));

    // No temporary files are left behind; thumbnails are shared by identical photos.
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["report.html", "results.csv", "results.jsonl", "thumbs"]);
    assert_eq!(std::fs::read_dir(out.join("thumbs")).unwrap().count(), 2);

    // Re-run with one more photo: only that one is processed, earlier rows are kept as they were.
    std::fs::copy(photo(), input.join("e_new.jpg")).unwrap();
    let stdout = ok_stdout(&batch(&input, &out));
    assert!(stdout.contains("5 processed, 1 new, 1 failed"), "{stdout}");
    let again = jsonl(&out);
    assert_eq!(again.len(), 5);
    assert_eq!(again[4]["file"], "e_new.jpg");
    for (old, new) in lines.iter().zip(&again) {
        assert_eq!(old, new, "earlier rows are kept unchanged");
    }

    // Nothing new: nothing processed, outputs still complete.
    let stdout = ok_stdout(&batch(&input, &out));
    assert!(stdout.contains("5 processed, 0 new, 1 failed"), "{stdout}");

    // Same name, new content: processed again, replacing its row.
    std::fs::copy(image("synthetic_224.png"), input.join("c_synthetic.png")).unwrap();
    let stdout = ok_stdout(&batch(&input, &out));
    assert!(stdout.contains("5 processed, 1 new, 1 failed"), "{stdout}");
    let last = jsonl(&out);
    assert_eq!(last[2]["sha256"], sha256_hex(&image("synthetic_224.png")));
    assert_ne!(last[2]["sha256"], lines[2]["sha256"]);
    let _ = std::fs::remove_dir_all(input.parent().unwrap());
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn hostile_file_names_are_escaped() {
    let dir = temp_dir("batch-escape");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let name = "x<b>&\"y'.jpg";
    std::fs::copy(photo(), input.join(name)).unwrap();
    let out = dir.join("out");
    let stdout = ok_stdout(&batch(&input, &out));
    assert!(stdout.contains("1 processed, 1 new, 0 failed"), "{stdout}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("x&lt;b&gt;&amp;&quot;y&#39;.jpg"), "escaped name");
    assert!(!html.contains(name) && !html.contains("<b>&"), "raw name must not appear");
    let csv_text = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(csv_text.contains("\r\n\"x<b>&\"\"y'.jpg\","), "quoted CSV field: {csv_text}");
    assert_eq!(parse_csv(&csv_text)[1][0], name);
    assert_eq!(jsonl(&out)[0]["file"], name);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unusable_out_or_input_fails_with_one_line() {
    let dir = temp_dir("batch-unusable");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    for (inp, out, needle) in [(&input, &file, "a-file"), (&dir.join("missing"), &dir.join("out"), "missing")] {
        let o = batch(inp, out);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(needle), "{stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error")).count(), 1, "{stderr}");
    }
    // A broken bundle is refused before anything is written.
    let o = panderm_command()
        .args(["batch", "--bundle"])
        .arg(dir.join("no-bundle"))
        .arg("--out")
        .arg(dir.join("out2"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(!dir.join("out2").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

fn runner_for<'c>(classifier: &'c Classifier, input: &Path, out: &Path) -> BatchRunner<'c> {
    let config = BatchConfig { input_dir: input.to_owned(), out_dir: out.to_owned(), top_k: 3 };
    BatchRunner::open(classifier, config).unwrap()
}

fn poll(r: &mut BatchRunner<'_>) -> RunSummary {
    r.poll(&mut ()).unwrap()
}

#[test]
fn watch_poll_processes_files_once_they_stop_changing() {
    let dir = temp_dir("batch-watch");
    let (input, out) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(photo(), input.join("first.jpg")).unwrap();
    let classifier = Classifier::load(&demo()).unwrap();
    let mut runner = runner_for(&classifier, &input, &out);

    // First poll: seen once, not yet stable; the (empty) outputs are written anyway.
    let s = poll(&mut runner);
    assert_eq!((s.new, s.waiting, s.outputs_written), (0, 1, true));
    assert!(out.join("report.html").exists());
    // Second poll: unchanged since the first, processed.
    let s = poll(&mut runner);
    assert_eq!((s.new, s.waiting, s.processed.clone()), (1, 0, vec!["first.jpg".to_string()]));
    // Nothing new: nothing processed, outputs not rewritten.
    let s = poll(&mut runner);
    assert_eq!((s.new, s.unchanged, s.outputs_written), (0, 1, false));

    // A file that is still being written (it grows between polls) waits.
    let bytes = std::fs::read(photo()).unwrap();
    let growing = input.join("second.jpg");
    std::fs::write(&growing, &bytes[..bytes.len() / 3]).unwrap();
    assert_eq!(poll(&mut runner).waiting, 1);
    std::fs::write(&growing, &bytes[..2 * bytes.len() / 3]).unwrap();
    let s = poll(&mut runner);
    assert_eq!((s.new, s.waiting), (0, 1));
    std::fs::write(&growing, &bytes).unwrap();
    let s = poll(&mut runner);
    assert_eq!((s.new, s.waiting), (0, 1));
    let s = poll(&mut runner);
    assert_eq!((s.new, s.failed, s.total), (1, 0, 2), "complete file processed once stable: {s:?}");

    // A new runner (a restarted watch) reads the state back and redoes nothing.
    drop(runner);
    let mut runner = runner_for(&classifier, &input, &out);
    poll(&mut runner);
    let s = poll(&mut runner);
    assert_eq!((s.new, s.unchanged, s.total), (0, 2, 2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreadable_state_lines_are_redone() {
    let dir = temp_dir("batch-state");
    let (input, out) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(image("synthetic_224.png"), input.join("one.png")).unwrap();
    std::fs::copy(image("synthetic_333x517.png"), input.join("two.png")).unwrap();
    let classifier = Classifier::load(&demo()).unwrap();
    let s = runner_for(&classifier, &input, &out).run_once(&mut ()).unwrap();
    assert_eq!((s.total, s.new), (2, 2));
    // Damage the first line of the state.
    let path = out.join(RESULTS_JSONL);
    let text = std::fs::read_to_string(&path).unwrap();
    let damaged = text.replacen("{", "{garbage", 1);
    std::fs::write(&path, damaged).unwrap();
    let mut runner = runner_for(&classifier, &input, &out);
    assert_eq!(runner.state_warnings().len(), 1);
    assert!(runner.state_warnings()[0].contains("line 1"), "{:?}", runner.state_warnings());
    let s = runner.run_once(&mut ()).unwrap();
    assert_eq!((s.total, s.new, s.processed.clone()), (2, 1, vec!["one.png".to_string()]));
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Untrusted inputs: file names, earlier results, oversized files (issue 12).

/// A sparse file of `len` bytes (no disk space used): an "image" larger than the decode limit.
fn sparse_file(path: &Path, len: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
}

/// A text cell of results.csv as a spreadsheet would see it: `'` + value when the value starts
/// with a character a spreadsheet reads as a formula (OWASP CSV injection), else the value.
fn neutralised(value: &str) -> String {
    let first = value.trim_start_matches([' ', '\t', '\r', '\n']).chars().next();
    let starts_trigger = value.starts_with(['\t', '\r']) || matches!(first, Some('=' | '+' | '-' | '@'));
    if starts_trigger { format!("'{value}") } else { value.to_owned() }
}

#[test]
fn csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised() {
    let dir = temp_dir("batch-csv-injection");
    let (input, out) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    // Attacker-controlled file names (a USB stick) and labels (an unsigned bundle).
    let names = [
        "=HYPERLINK(\"http:evil.example\",\"click\").jpg",
        "+cmd.jpg",
        "-2+3.jpg",
        "@SUM(A1).jpg",
        "\tTAB.jpg",
        "\rCR.jpg",
        " =padded.jpg",
        "plain.jpg",
    ];
    for n in names {
        std::fs::copy(photo(), input.join(n)).unwrap();
    }
    let bundle = copy_bundle("batch-csv-injection-bundle");
    edit_manifest(&bundle, |m| {
        m.replace("\"dark_irregular\"", "\"=cmd|' /C calc'!A0\"").replace("\"brown\"", "\"-brown\"")
    });
    let o = panderm_command()
        .args(["batch", "--bundle"])
        .arg(&bundle)
        .arg("--out")
        .arg(&out)
        .arg(&input)
        .output()
        .expect("run panderm");
    let stdout = ok_stdout(&o);
    assert!(stdout.contains("8 processed, 8 new, 0 failed"), "{stdout}");

    let text = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let csv = parse_csv(&text);
    let header = &csv[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut want: Vec<&str> = names.to_vec();
    want.sort();
    let rows = &csv[1..];
    assert_eq!(rows.len(), want.len());
    let lines = jsonl(&out);
    for ((r, name), v) in rows.iter().zip(&want).zip(&lines) {
        assert_eq!(v["file"], *name, "results.jsonl keeps the real name");
        assert_eq!(r[col("file")], neutralised(name), "file cell of {name:?}");
        for (i, head) in ["lesion_pattern", "lesion_colour"].iter().enumerate() {
            let label = v["heads"][i]["label"].as_str().unwrap();
            assert_eq!(r[col(&format!("{head}_label"))], neutralised(label));
            let top: Vec<String> = v["heads"][i]["top_k"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| format!("{}:{:.4}", t["label"].as_str().unwrap(), t["probability"].as_f64().unwrap()))
                .collect();
            assert_eq!(r[col(&format!("{head}_top_k"))], neutralised(&top.join("; ")));
        }
        // Numbers stay numbers (no quote prefix): the spreadsheet can still sort and sum them.
        for c in ["lesion_pattern_score", "lesion_colour_score", "total_ms"] {
            assert!(r[col(c)].parse::<f64>().is_ok(), "{c}: {:?}", r[col(c)]);
        }
    }
    // No text cell anywhere begins with a formula character.
    for r in &csv {
        for cell in r {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']) || cell.parse::<f64>().is_ok(), "{cell:?}");
            assert!(!cell.trim_start().starts_with(['=', '+', '-', '@']), "{cell:?}");
        }
    }
    // The hostile labels reached the CSV, neutralised.
    assert!(rows.iter().any(|r| r[col("lesion_pattern_label")] == "'=cmd|' /C calc'!A0"), "{text}");
    assert!(
        rows.iter().any(|r| r[col("lesion_colour_top_k")].starts_with("'-brown:")
            || r[col("lesion_colour_top_k")].contains("; -brown:")),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_names_and_labels_are_escaped_in_the_report() {
    let dir = temp_dir("batch-html-hostile");
    let (input, out) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    let names = ["<script>alert(1)<\\script>.jpg", "<img src=x onerror=alert(2)>.jpg"];
    for n in names {
        std::fs::copy(photo(), input.join(n)).unwrap();
    }
    let jpeg = std::fs::read(photo()).unwrap();
    std::fs::write(input.join("<svg onload=alert(3)>.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    let bundle = copy_bundle("batch-html-hostile-bundle");
    edit_manifest(&bundle, |m| {
        m.replace("\"regular\"", "\"<script>alert(4)</script>\"")
            .replace("\"pale\"", "\"<img src=x onerror=alert(5)>\"")
            .replace("name = \"panderm-demo\"", "name = \"<script>alert(6)</script>\"")
            .replace("description = \"", "description = \"<iframe src=javascript:alert(7)></iframe>")
    });
    let o = panderm_command()
        .args(["batch", "--bundle"])
        .arg(&bundle)
        .arg("--out")
        .arg(&out)
        .arg(&input)
        .output()
        .expect("run panderm");
    let stdout = ok_stdout(&o);
    assert!(stdout.contains("3 processed, 3 new, 1 failed"), "{stdout}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for raw in ["<script", "<img src=x", "<svg", "<iframe"] {
        assert!(!html.contains(raw), "{raw} appears unescaped");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;\\script&gt;.jpg"));
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;.jpg"));
    assert!(html.contains("&lt;svg onload=alert(3)&gt;.jpg"), "the error card names the file, escaped");
    assert!(html.contains("&lt;script&gt;alert(4)&lt;/script&gt;"), "label escaped");
    assert!(html.contains("&lt;script&gt;alert(6)&lt;/script&gt;"), "bundle name escaped");
    // The only tags in the page are the report's own.
    let tags: std::collections::BTreeSet<&str> = html
        .split('<')
        .skip(1)
        .map(|t| t.split(|c: char| c.is_whitespace() || c == '>').next().unwrap().trim_start_matches('/'))
        .collect();
    let allowed = [
        "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "div", "p", "ul",
        "li", "b", "table", "tr", "th", "td", "span", "main", "article", "img", "ol", "footer",
    ];
    for t in &tags {
        assert!(allowed.contains(t), "unexpected tag <{t}>");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn crafted_sha256_in_results_jsonl_never_becomes_a_path() {
    let dir = temp_dir("batch-state-traversal");
    let (input, out) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(photo(), input.join("a.jpg")).unwrap();
    let classifier = Classifier::load(&demo()).unwrap();
    let s = runner_for(&classifier, &input, &out).run_once(&mut ()).unwrap();
    assert_eq!((s.total, s.new), (1, 1));
    // A JPEG outside the output folder that a crafted row points its thumbnail at.
    let secret = dir.join("secret.jpg");
    image::open(image("synthetic_224.png")).unwrap().save(&secret).unwrap();
    let secret_b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&secret).unwrap())
    };
    let path = out.join(RESULTS_JSONL);
    let good: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
    let crafted = |file: &str, sha: &str| {
        let mut v = good.clone();
        v["file"] = file.into();
        v["sha256"] = sha.into();
        serde_json::to_string(&v).unwrap()
    };
    let lines = [
        crafted("a.jpg", "../../secret"),              // a photo still in the folder
        crafted("gone.jpg", "../../secret"),           // a row kept for a deleted photo
        crafted("upper.jpg", &"A".repeat(64)),         // not lowercase
        crafted("short.jpg", &"a".repeat(63)),         // not 64 digits
        crafted("slash/x.jpg", &sha256_hex(&photo())), // not a file name
        crafted("", &sha256_hex(&photo())),            // no file name
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let mut runner = runner_for(&classifier, &input, &out);
    let warnings = runner.state_warnings().to_vec();
    assert_eq!(warnings.len(), lines.len(), "{warnings:#?}");
    for (i, w) in warnings.iter().enumerate() {
        assert!(w.contains(&format!("line {}", i + 1)) && w.contains("processed again"), "{w}");
    }
    assert!(warnings[0].contains("sha256") && warnings[0].contains("../../secret"), "{}", warnings[0]);
    assert!(runner.rows().next().is_none(), "no crafted row is kept");
    let s = runner.run_once(&mut ()).unwrap();
    assert_eq!((s.total, s.new, s.processed.clone()), (1, 1, vec!["a.jpg".to_string()]));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("secret") && !html.contains("gone.jpg"));
    assert!(!html.contains(&secret_b64), "a file outside the output folder was embedded");
    assert_eq!(resource_attrs(&html).len(), 1, "a.jpg's own thumbnail only");
    let rows = jsonl(&out);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["sha256"], sha256_hex(&photo()));
    assert!(secret.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn oversized_or_special_files_become_error_rows_without_being_read() {
    let dir = temp_dir("batch-oversized");
    let (input, out) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(photo(), input.join("a.jpg")).unwrap();
    // One byte over the default decode limit (256 MiB), sparse: reading it would take 256 MiB.
    let limit = panderm_edge::preprocess::DecodeLimits::default().max_bytes;
    sparse_file(&input.join("huge.jpg"), limit + 1);
    let t = std::time::Instant::now();
    let stdout = ok_stdout(&batch(&input, &out));
    assert!(stdout.contains("2 processed, 2 new, 1 failed"), "{stdout}");
    assert!(t.elapsed().as_secs() < 60);
    let rows = jsonl(&out);
    let huge = rows.iter().find(|r| r["file"] == "huge.jpg").unwrap();
    assert_eq!(huge["status"], "error");
    assert_eq!(huge["error_kind"], "image-too-large", "{huge}");
    let msg = huge["error"].as_str().unwrap();
    assert!(
        msg.contains("huge.jpg") && msg.contains(&format!("{}", limit + 1)) && msg.contains(&format!("{limit}")),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
