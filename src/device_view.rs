//! What a device shows and records for one classify report: the result screen's content and the
//! audit-log record. Both are derived here, once, so the screen, the batch report and the log
//! cannot disagree.

use serde_json::{Value, json};

use crate::classify::{ClassifyReport, differential_head, primary_head};
use crate::screen::{Differential, PrimaryDecision, RankedLabel, ScreenReport};

/// What the screen says when a report carries non-finite numbers without having been marked.
pub const MODEL_ERROR_MESSAGE: &str = "cannot assess: model error (non-finite output)";

/// Owned strings and lists a [`ScreenReport`] borrows.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenData<'r> {
    report: &'r ClassifyReport<'r>,
    top: Vec<RankedLabel<'r>>,
    warnings: Vec<&'static str>,
}

impl<'r> ScreenData<'r> {
    /// Collects the screen's content from a report.
    pub fn new(report: &'r ClassifyReport<'r>) -> ScreenData<'r> {
        let top = differential_head(&report.heads)
            .map(|h| h.top_k.iter().map(|t| RankedLabel { label: t.label, probability: t.probability }).collect())
            .unwrap_or_default();
        let warnings = report.quality.checks.iter().filter(|c| !c.passed).map(|c| c.message()).collect();
        ScreenData { report, top, warnings }
    }

    /// The screen report, borrowing from `self`.
    pub fn screen(&self) -> ScreenReport<'_> {
        let r = self.report;
        // A decision is shown only for an assessed report whose score is a number: a NaN score
        // must never read as "negative" on the screen (classify already refuses such outputs;
        // this is the screen's own guard).
        let shows_decision = r.heads.iter().all(|h| h.probabilities.iter().all(|p| p.is_finite()));
        let primary = primary_head(&r.heads).filter(|_| shows_decision).and_then(|h| {
            h.decision.as_ref().map(|d| PrimaryDecision {
                head: h.name,
                label: d.label,
                score: d.score,
                threshold: d.threshold,
                positive: d.positive,
            })
        });
        let differential = differential_head(&r.heads)
            .filter(|_| shows_decision)
            .map(|h| Differential { head: h.name, top: &self.top });
        ScreenReport {
            primary,
            differential,
            abstain: match &r.cannot_assess {
                Some(c) => Some(c.message.as_str()),
                None if !shows_decision => Some(MODEL_ERROR_MESSAGE),
                None => None,
            },
            warnings: &self.warnings,
            model: r.bundle,
            demo: r.notice.is_some(),
        }
    }
}

/// The bundle as the audit log names it: name, version, digests, demo flag and signer.
fn bundle_record(bundle: &crate::bundle::Bundle) -> Value {
    let m = &bundle.manifest;
    json!({
        "name": m.bundle.name,
        "version": m.bundle.version,
        "manifest_sha256": bundle.manifest_sha256,
        "backbone_sha256": m.backbone.sha256,
        "demo": m.bundle.demo,
        "signature": bundle.signature,
    })
}

/// The audit-log record of a classification that produced no report (unreadable image, failed
/// inference), or of a bundle that was refused (`bundle` is `None`; `bundle_dir` names it).
pub fn audit_error_record(
    event: &str,
    image: Option<&str>,
    bundle: Option<&crate::bundle::Bundle>,
    bundle_dir: &std::path::Path,
    board: Option<&str>,
    error: &crate::Error,
) -> Value {
    json!({
        "event": event,
        "image": image,
        "bundle": bundle.map(bundle_record),
        "bundle_dir": bundle_dir.to_string_lossy(),
        "board": board,
        "error": {"kind": error.kind().as_str(), "message": error.message()},
        "runtime": format!("panderm-edge {}", env!("CARGO_PKG_VERSION")),
    })
}

/// The audit-log record of one classify: what model said what about which image.
pub fn audit_record(report: &ClassifyReport<'_>, bundle: &crate::bundle::Bundle, board: Option<&str>) -> Value {
    json!({
        "event": "classify",
        "image": report.image,
        "image_sha256": report.image_sha256,
        "status": report.status,
        "bundle": bundle_record(bundle),
        "board": board,
        "quality_flags": report.quality.flags(),
        "cannot_assess": report.cannot_assess,
        "ood_distance": report.ood_distance,
        "outputs": report.heads.iter().map(|h| json!({
            "head": h.name,
            "probabilities": h.probabilities,
            "decision": h.decision.as_ref().map(|d| json!({"label": d.label, "score": d.score, "threshold": d.threshold})),
        })).collect::<Vec<_>>(),
        "timings_ms": report.timings,
        "backbone": report.backbone,
        "engine": report.engine,
        "runtime": format!("panderm-edge {}", env!("CARGO_PKG_VERSION")),
    })
}
