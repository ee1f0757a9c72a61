//! The trained head as saved by `probe` (`DIR/head.json`) and read by `export-head` and
//! `bundle`: weights plus everything needed to trace it (features, CSV, recipe, metrics).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::logreg::LinearHead;
use crate::dataset::Task;
use crate::error::{Error, Result};

/// Version of the `head.json` layout.
pub const HEAD_FORMAT: u32 = 1;

/// A saved linear-probe head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeadFile {
    /// Layout version ([`HEAD_FORMAT`]).
    pub format: u32,
    /// `binary` or `multiclass`.
    pub task: String,
    /// Feature width D.
    pub in_dim: usize,
    /// Classes K.
    pub classes: usize,
    /// Class names (default `class_0`…).
    pub labels: Vec<String>,
    /// The cost C used.
    pub c: f64,
    /// `[K][D]` weights.
    pub weight: Vec<Vec<f32>>,
    /// `[K]` biases.
    pub bias: Vec<f32>,
    /// Provenance: SHA-256 of the features file and the CSV, the percent of train data used.
    pub provenance: serde_json::Value,
    /// Test-split metrics (PanDerm's `lin_*`), if computed.
    pub metrics: serde_json::Value,
    /// Out-of-distribution statistics of the training features (for abstention), if computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ood: Option<OodStats>,
}

/// Distances of the training features to their class centroids: the runtime's
/// out-of-distribution rule (`panderm_edge::abstain`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OodStats {
    /// Always `cosine-distance-to-nearest-class-centroid`.
    pub metric: String,
    /// Unit-norm class centroids `[K'][D]` (classes without training rows are left out).
    pub centroids: Vec<Vec<f32>>,
    /// The percentile of the training distances used as the limit.
    pub percentile: f64,
    /// The limit: that percentile of the training images' distances.
    pub max_distance: f64,
    /// Training distances at the 50th, 90th, 95th, 99th percentiles and the maximum.
    pub train_quantiles: [f64; 5],
    /// Fraction of the test split beyond the limit.
    pub test_flagged_fraction: f64,
}

/// The metric name stored in [`OodStats::metric`].
pub const OOD_METRIC: &str = "cosine-distance-to-nearest-class-centroid";

impl HeadFile {
    /// Builds the file contents from a trained head.
    pub fn from_head(
        head: &LinearHead,
        task: Task,
        labels: Vec<String>,
        c: f64,
        provenance: serde_json::Value,
        metrics: serde_json::Value,
    ) -> Self {
        HeadFile {
            format: HEAD_FORMAT,
            task: match task {
                Task::Binary => "binary",
                Task::Multiclass => "multiclass",
            }
            .to_owned(),
            in_dim: head.in_dim,
            classes: head.classes,
            labels,
            c,
            weight: head.weight.chunks_exact(head.in_dim).map(|r| r.iter().map(|&v| v as f32).collect()).collect(),
            bias: head.bias.iter().map(|&v| v as f32).collect(),
            provenance,
            metrics,
            ood: None,
        }
    }

    /// Reads and validates a `head.json`.
    pub fn read(path: &Path) -> Result<HeadFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let h: HeadFile =
            serde_json::from_str(&text).map_err(|e| Error::invalid(path, format!("not a head file: {e}")))?;
        if h.format != HEAD_FORMAT {
            return Err(Error::invalid(
                path,
                format!("head format {} is not supported (expected {HEAD_FORMAT})", h.format),
            ));
        }
        if h.weight.len() != h.classes
            || h.weight.iter().any(|r| r.len() != h.in_dim)
            || h.bias.len() != h.classes
            || h.labels.len() != h.classes
        {
            return Err(Error::invalid(
                path,
                format!("weight/bias/labels do not match {} classes × {} features", h.classes, h.in_dim),
            ));
        }
        Ok(h)
    }

    /// Writes it as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text).map_err(|e| Error::io(path, e))
    }

    /// The task: `binary`, else multiclass (any other `task` string reads as multiclass).
    pub fn task(&self) -> Task {
        if self.task == "binary" { Task::Binary } else { Task::Multiclass }
    }

    /// The head as f64 weights.
    pub fn to_linear_head(&self) -> LinearHead {
        LinearHead {
            in_dim: self.in_dim,
            classes: self.classes,
            weight: self.weight.iter().flatten().map(|&v| f64::from(v)).collect(),
            bias: self.bias.iter().map(|&v| f64::from(v)).collect(),
        }
    }
}
