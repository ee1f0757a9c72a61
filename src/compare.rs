//! Longitudinal comparison: two captures of the same lesion, before and after.
//!
//! Reports the cosine distance between the two backbone features and each head's probability
//! change, and flags a change beyond the bundle's `[compare]` limits. The flag means "look
//! again", not "it changed clinically": two photos of an unchanged lesion differ by lighting,
//! angle and focus too, so the limits must be calibrated on repeat captures (docs/compare.md).

use serde::Serialize;

use crate::classify::{Classifier, ClassifyReport};
use crate::error::{Error, ErrorKind, Result};
use crate::stats::cosine_distance;

pub use crate::bundle::CompareSpec;

/// One head's change between the captures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadChange {
    /// Head name.
    pub head: String,
    /// `after − before` per class, in label order.
    pub delta: Vec<f32>,
    /// Largest absolute class change.
    pub max_abs_change: f32,
    /// The label whose probability changed most.
    pub most_changed: String,
    /// Binary heads: the decision before and after, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_changed: Option<(String, String)>,
}

/// The comparison of two captures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The earlier image.
    pub before: String,
    /// The later image.
    pub after: String,
    /// Cosine distance between the two backbone features.
    pub feature_distance: f64,
    /// Per-head probability changes.
    pub heads: Vec<HeadChange>,
    /// The limits used.
    pub limits: CompareSpec,
    /// Whether any limit was exceeded.
    pub flagged: bool,
    /// Which limits, in words.
    pub reasons: Vec<String>,
}

/// Compares two classified captures with the bundle's limits.
pub fn compare_reports(
    before: &ClassifyReport<'_>,
    after: &ClassifyReport<'_>,
    limits: &CompareSpec,
) -> Result<Comparison> {
    for r in [before, after] {
        if let Some(c) = &r.cannot_assess
            && r.feature.is_empty()
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{}: {}; retake it to compare", r.image, c.message),
            ));
        }
    }
    let feature_distance = cosine_distance(&before.feature, &after.feature);
    let mut heads = Vec::new();
    for (b, a) in before.heads.iter().zip(&after.heads) {
        let delta: Vec<f32> = a.probabilities.iter().zip(&b.probabilities).map(|(x, y)| x - y).collect();
        let (i, max_abs_change) = delta
            .iter()
            .map(|d| d.abs())
            .enumerate()
            .fold((0, 0f32), |best, (i, d)| if d > best.1 { (i, d) } else { best });
        let most_changed = b.labels.get(i).cloned().unwrap_or_else(|| format!("class {i}"));
        let decision_changed = match (&b.decision, &a.decision) {
            (Some(x), Some(y)) if x.positive != y.positive => Some((x.label.to_owned(), y.label.to_owned())),
            _ => None,
        };
        heads.push(HeadChange { head: b.name.to_owned(), delta, max_abs_change, most_changed, decision_changed });
    }
    let mut reasons = Vec::new();
    if feature_distance > limits.max_feature_distance {
        reasons.push(format!(
            "appearance changed: feature distance {feature_distance:.3} > {:.3}",
            limits.max_feature_distance
        ));
    }
    for h in &heads {
        if f64::from(h.max_abs_change) > limits.max_probability_change {
            reasons.push(format!(
                "{}: P({}) changed by {:+.1} points (limit {:.1})",
                h.head,
                h.most_changed,
                h.delta.iter().copied().fold(0f32, |m, d| if d.abs() > m.abs() { d } else { m }) * 100.0,
                limits.max_probability_change * 100.0
            ));
        }
        if let Some((from, to)) = &h.decision_changed {
            reasons.push(format!("{}: decision changed from {from} to {to}", h.head));
        }
    }
    Ok(Comparison {
        before: before.image.clone(),
        after: after.image.clone(),
        feature_distance,
        heads,
        limits: limits.clone(),
        flagged: !reasons.is_empty(),
        reasons,
    })
}

/// Classifies both images and compares them with the bundle's `[compare]` limits.
pub fn compare(classifier: &Classifier, before: &std::path::Path, after: &std::path::Path) -> Result<Comparison> {
    let b = classifier.classify(before, 1)?;
    let a = classifier.classify(after, 1)?;
    compare_reports(&b, &a, &classifier.bundle().manifest.compare)
}

impl Comparison {
    /// A short human-readable summary.
    pub fn human(&self) -> String {
        let mut s = format!("{} -> {}\n  feature distance {:.4}\n", self.before, self.after, self.feature_distance);
        for h in &self.heads {
            s.push_str(&format!(
                "  {}: largest change {:+.1} points ({})\n",
                h.head,
                h.delta.iter().copied().fold(0f32, |m, d| if d.abs() > m.abs() { d } else { m }) * 100.0,
                h.most_changed
            ));
        }
        if self.flagged {
            s.push_str("  FLAGGED for review:\n");
            for r in &self.reasons {
                s.push_str(&format!("    - {r}\n"));
            }
        } else {
            s.push_str("  no change beyond the bundle's limits\n");
        }
        s
    }
}
