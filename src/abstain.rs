//! Abstention: when the runtime says "cannot assess" instead of a confident answer.
//!
//! A bundle may declare (manifest `[abstention]`, written by `panderm-tools bundle` from the
//! statistics `probe` computes on the training features):
//!
//! - an **out-of-distribution rule** on the backbone feature: the cosine distance from the
//!   (L2-normalised) feature to the nearest training-class centroid. `probe` computes every
//!   training image's distance and stores the `percentile`-th of them as `max_distance`; an image
//!   farther than that from every class is unlike what the heads were trained on.
//! - a **probability floor**: the primary head's top probability must reach
//!   `min_top_probability`.
//!
//! Both the tools (training side) and the runtime use [`Centroids`] so the distances agree to the
//! bit. See `docs/abstention.md`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::manifest_range::check;

/// The manifest's `[abstention]` table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AbstentionSpec {
    /// `.npy` file `[K, D]` float32 of unit-norm class centroids.
    pub centroids_file: String,
    /// Its SHA-256.
    pub centroids_sha256: String,
    /// The head whose training classes gave the centroids.
    pub source_head: String,
    /// Percentile of the training distances used as the limit (e.g. 99).
    pub percentile: f64,
    /// Cosine distance above which an image is out of distribution.
    pub max_distance: f64,
    /// Optional floor on the primary head's top probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_top_probability: Option<f64>,
}

impl AbstentionSpec {
    /// Range checks serde cannot express.
    pub fn validate(&self) -> std::result::Result<(), String> {
        check("abstention", "percentile", self.percentile, 0.0..=100.0, "a percentile")?;
        check("abstention", "max_distance", self.max_distance, 0.0..=2.0, "a cosine distance")?;
        if let Some(p) = self.min_top_probability {
            check("abstention", "min_top_probability", p, 0.0..=1.0, "a probability")?;
        }
        Ok(())
    }
}

/// Why a report says "cannot assess".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Abstention {
    /// The image failed the quality gate (reason codes from [`crate::quality`]).
    Quality {
        /// Failed check codes.
        codes: Vec<String>,
    },
    /// The feature is farther from every training class than the manifest allows.
    OutOfDistribution {
        /// Cosine distance to the nearest centroid.
        distance: f64,
        /// The manifest's limit.
        max_distance: f64,
        /// The training percentile the limit corresponds to.
        percentile: f64,
    },
    /// The primary head's top probability is below the floor.
    LowConfidence {
        /// The top probability.
        probability: f64,
        /// The floor.
        min_top_probability: f64,
    },
    /// The model produced numbers that cannot back a decision (NaN/Inf in the backbone feature,
    /// or a head's output that is not a probability distribution): the bundle is broken or
    /// tampered, and no result of it may be shown.
    ModelError {
        /// Where: `backbone` or `head <name>`.
        stage: String,
        /// What was wrong, for people and the audit log.
        detail: String,
    },
}

impl Abstention {
    /// Whether this is a [`Abstention::ModelError`] (the device should stop using the bundle),
    /// rather than a refusal of this one image.
    pub fn is_model_error(&self) -> bool {
        matches!(self, Abstention::ModelError { .. })
    }
}

impl Abstention {
    /// One line for people, starting with "cannot assess".
    pub fn message(&self) -> String {
        match self {
            Abstention::Quality { codes } => format!("cannot assess: image quality ({})", codes.join(", ")),
            Abstention::OutOfDistribution { distance, max_distance, percentile } => format!(
                "cannot assess: image unlike the training images (distance {distance:.3} > {max_distance:.3}, \
                 the {percentile}th percentile of training images)"
            ),
            Abstention::LowConfidence { probability, min_top_probability } => format!(
                "cannot assess: no class is probable enough (top {:.1}% < {:.1}%)",
                probability * 100.0,
                min_top_probability * 100.0
            ),
            Abstention::ModelError { stage, detail } => format!("cannot assess: model error ({stage}: {detail})"),
        }
    }
}

/// Unit-norm class centroids `[K, D]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    dim: usize,
    rows: Vec<f32>,
}

fn unit(v: &[f32]) -> Vec<f64> {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 { vec![0.0; v.len()] } else { v.iter().map(|x| f64::from(*x) / norm).collect() }
}

impl Centroids {
    /// Centroids of the classes present in `labels`: the mean of each class's L2-normalised
    /// features, normalised again. `features` is `[N, dim]` row-major. Classes without rows get
    /// no centroid.
    pub fn from_features(features: &[f32], dim: usize, labels: &[usize], classes: usize) -> Result<Centroids> {
        if dim == 0 || features.len() != labels.len() * dim {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} feature values for {} labels of width {dim}", features.len(), labels.len()),
            ));
        }
        let mut sums = vec![vec![0f64; dim]; classes];
        let mut counts = vec![0usize; classes];
        for (row, &y) in features.chunks_exact(dim).zip(labels) {
            if y >= classes {
                return Err(Error::new(ErrorKind::InvalidInput, format!("label {y} >= {classes} classes")));
            }
            for (s, v) in sums[y].iter_mut().zip(unit(row)) {
                *s += v;
            }
            counts[y] += 1;
        }
        let mut rows = Vec::new();
        for (s, &n) in sums.iter().zip(&counts) {
            if n > 0 {
                let mean: Vec<f32> = s.iter().map(|v| (v / n as f64) as f32).collect();
                rows.extend(unit(&mean).into_iter().map(|v| v as f32));
            }
        }
        if rows.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "no labelled features to build centroids from"));
        }
        Ok(Centroids { dim, rows })
    }

    /// Wraps `[K, dim]` unit-norm rows (as stored in a bundle).
    pub fn from_rows(rows: Vec<f32>, dim: usize) -> Result<Centroids> {
        if dim == 0 || rows.is_empty() || !rows.len().is_multiple_of(dim) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} values are not rows of width {dim}", rows.len()),
            ));
        }
        // A NaN centroid would make every distance NaN, and a NaN distance is never "too far":
        // the out-of-distribution rule would silently stop refusing anything.
        if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            return Err(Error::new(ErrorKind::InvalidInput, format!("centroid value {i} is {} (not finite)", rows[i])));
        }
        Ok(Centroids { dim, rows })
    }

    /// Reads a `[K, D]` float32 `.npy`.
    pub fn read(path: &Path) -> Result<Centroids> {
        Centroids::from_npy(crate::npy::read_f32(path)?, path)
    }

    /// Parses the bytes of a `[K, D]` float32 `.npy` already in memory (a verified bundle file);
    /// `path` names it in errors.
    pub fn from_npy_bytes(bytes: &[u8], path: &Path) -> Result<Centroids> {
        Centroids::from_npy(crate::npy::parse_f32_bytes(bytes, path)?, path)
    }

    fn from_npy(a: crate::npy::NpyF32, path: &Path) -> Result<Centroids> {
        if a.shape.len() != 2 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{}: centroids must be [K, D], not {:?}", path.display(), a.shape),
            ));
        }
        Centroids::from_rows(a.data, a.shape[1])
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
    }

    /// Writes them as a `[K, D]` float32 `.npy`.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::npy::write_f32(path, &[self.len(), self.dim], &self.rows)
    }

    /// Number of centroids.
    pub fn len(&self) -> usize {
        self.rows.len() / self.dim
    }

    /// Whether there are none (never true for a constructed value).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The `[K, D]` rows, row-major.
    pub fn rows(&self) -> &[f32] {
        &self.rows
    }

    /// Feature width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Cosine distance (1 − cosine similarity) from `feature` to the nearest centroid.
    pub fn distance(&self, feature: &[f32]) -> Result<f64> {
        if feature.len() != self.dim {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("a {}-d feature for {}-d centroids", feature.len(), self.dim),
            ));
        }
        let f = unit(feature);
        let best = self
            .rows
            .chunks_exact(self.dim)
            .map(|c| c.iter().zip(&f).map(|(a, b)| f64::from(*a) * b).sum::<f64>())
            .fold(f64::NEG_INFINITY, f64::max);
        Ok(1.0 - best)
    }
}

pub use crate::stats::percentile;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_zero_on_a_centroid_and_grows_away_from_it() {
        let feats = [1.0, 0.0, 2.0, 0.0, 0.0, 3.0];
        let c = Centroids::from_features(&feats, 2, &[0, 0, 1], 2).expect("centroids");
        assert_eq!(c.len(), 2);
        assert!(c.distance(&[5.0, 0.0]).expect("d").abs() < 1e-12);
        let diag = c.distance(&[1.0, 1.0]).expect("d");
        assert!((diag - (1.0 - 0.5f64.sqrt())).abs() < 1e-7, "{diag}");
        assert!((c.distance(&[-1.0, 0.0]).expect("d") - 1.0).abs() < 1e-12);
        assert!(c.distance(&[1.0]).is_err());
    }

    #[test]
    fn absent_classes_get_no_centroid_and_bad_labels_fail() {
        let c = Centroids::from_features(&[1.0, 0.0], 2, &[2], 3).expect("one class");
        assert_eq!(c.len(), 1);
        assert!(Centroids::from_features(&[1.0, 0.0], 2, &[3], 3).is_err());
        assert!(Centroids::from_features(&[1.0], 2, &[0], 3).is_err());
    }
}
