//! What a device shows and records for one classify report: the result screen's content and the
//! audit-log record. Both are derived here, once, so the screen, the batch report and the log
//! cannot disagree.

use serde_json::{Value, json};

use crate::classify::{ClassifyReport, differential_head, primary_head};
use crate::screen::{Differential, PrimaryDecision, RankedLabel, ScreenReport};

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
        let primary = primary_head(&r.heads).and_then(|h| {
            h.decision.as_ref().map(|d| PrimaryDecision {
                head: h.name,
                label: d.label,
                score: d.score,
                threshold: d.threshold,
                positive: d.positive,
            })
        });
        let differential = differential_head(&r.heads).map(|h| Differential { head: h.name, top: &self.top });
        ScreenReport {
            primary,
            differential,
            abstain: r.cannot_assess.as_ref().map(|c| c.message.as_str()),
            warnings: &self.warnings,
            model: r.bundle,
            demo: r.notice.is_some(),
        }
    }
}

/// The audit-log record of one classify: what model said what about which image.
pub fn audit_record(report: &ClassifyReport<'_>, bundle: &crate::bundle::Bundle, board: Option<&str>) -> Value {
    let m = &bundle.manifest;
    json!({
        "event": "classify",
        "image": report.image,
        "image_sha256": report.image_sha256,
        "bundle": {
            "name": m.bundle.name,
            "version": m.bundle.version,
            "manifest_sha256": bundle.manifest_sha256,
            "backbone_sha256": m.backbone.sha256,
            "demo": m.bundle.demo,
        },
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
        "runtime": format!("panderm-edge {}", env!("CARGO_PKG_VERSION")),
    })
}
