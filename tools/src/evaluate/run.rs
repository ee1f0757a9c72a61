//! `panderm-tools evaluate`: a model (bundle or classifier ONNX) on one split of a PanDerm CSV,
//! through the device runtime, writing PanDerm's `{split}.csv` and a `metrics.json`.
//!
//! * **Labels**: read as PanDerm's fine-tuning reads them for a model of `K` classes: the
//!   `binary_label` column when `K = 2` and the CSV has one, else `label` (a CSV with only
//!   `binary_label` is read from it). Every label of the split must be below `K`.
//! * **Rows**: the split's rows in PanDerm's fine-tuning order — the whole CSV shuffled by
//!   `df.sample(frac=1, random_state=42)`, then filtered by split — so that `{split}.csv` lists
//!   them in the order PanDerm's does. The metrics do not depend on the order.
//! * **Unreadable images** (missing, unreadable or undecodable files) are skipped, counted and
//!   listed in `metrics.json` and the summary; the metrics cover the images that were read. A
//!   split where no image can be read is an error. A model that outputs NaN/Inf is an error.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use panderm_edge::preprocess::tta::Tta;
use serde::Serialize;

use super::metrics::{FtMetrics, argmax, ft_metrics};
use super::model::{Evaluator, ModelInfo, Unreadable};
use super::predictions::{PredictionRow, write_predictions_csv};
use crate::dataset::{
    self, Dataset, DatasetError, LabelChoice, LoadOptions, PERCENT_SEED, ProblemKind, Split, numpy_rng,
};
use crate::error::{Error, Result};

/// The model to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A bundle directory (`panderm-tools bundle`): its head for the CSV's class count.
    Bundle(PathBuf),
    /// A classifier ONNX (`panderm-tools convert` of a fine-tuned checkpoint: `logits [N, K]`).
    Onnx(PathBuf),
}

/// Options of [`evaluate`].
#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    /// What to evaluate.
    pub source: ModelSource,
    /// The PanDerm dataset CSV.
    pub csv: PathBuf,
    /// The folder the CSV's `image` paths are relative to.
    pub root: Option<PathBuf>,
    /// The split to evaluate.
    pub split: Split,
    /// Test-time augmentation, if any.
    pub tta: Option<Tta>,
    /// Where `{split}.csv` and `metrics.json` go (created if needed).
    pub output_dir: PathBuf,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// Row counts of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Rows of the split in the CSV.
    pub split_rows: usize,
    /// Images the model scored (the metrics' rows).
    pub evaluated: usize,
    /// Images that could not be read or decoded.
    pub unreadable: usize,
    /// Evaluated images per true class (`0..K`).
    pub per_class: Vec<usize>,
}

/// `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationReport {
    /// The tool that wrote it.
    pub tool: String,
    /// What was evaluated.
    pub model: ModelInfo,
    /// The CSV, as given.
    pub csv: PathBuf,
    /// SHA-256 of the CSV.
    pub csv_sha256: String,
    /// The image root, as given.
    pub root: Option<PathBuf>,
    /// The split evaluated.
    pub split: String,
    /// The label column read.
    pub label_column: String,
    /// Test-time augmentation (`null`: PanDerm's evaluation transform).
    pub tta: Option<Tta>,
    /// Row counts.
    pub counts: Counts,
    /// PanDerm's FT metrics on the evaluated images.
    pub metrics: FtMetrics,
    /// The images skipped, with the reason.
    pub unreadable: Vec<Unreadable>,
    /// The predictions file, relative to the output folder.
    pub predictions_csv: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// What [`evaluate`] wrote.
#[derive(Debug, Clone)]
pub struct EvaluateSummary {
    /// The report also written to `metrics.json`.
    pub report: EvaluationReport,
    /// `{output_dir}/{split}.csv`.
    pub predictions_csv: PathBuf,
    /// `{output_dir}/metrics.json`.
    pub metrics_json: PathBuf,
}

/// The CSV read as PanDerm reads it for a model of `k` classes (see the module documentation).
struct Labels<'a> {
    name: String,
    bytes: &'a [u8],
    root: Option<&'a Path>,
}

impl Labels<'_> {
    fn load(&self, k: usize) -> Result<Dataset> {
        let load = |label| {
            dataset::load_from_bytes(&self.name, self.bytes, self.root, &LoadOptions { label, check_images: false })
        };
        if k != 2 {
            return Ok(load(LabelChoice::Auto)?);
        }
        match load(LabelChoice::Binary) {
            Err(DatasetError::Invalid(bad))
                if bad.problems.iter().any(
                    |p| matches!(&p.kind, ProblemKind::MissingColumn { column, .. } if column == "binary_label"),
                ) =>
            {
                Ok(load(LabelChoice::Auto)?)
            }
            other => Ok(other?),
        }
    }
}

/// The split's row indices in PanDerm's fine-tuning order: the whole CSV in
/// `df.sample(frac=1, random_state=42)` order, filtered by split.
pub fn ft_split_order(ds: &Dataset, split: Split) -> Vec<usize> {
    numpy_rng::pandas_sample_order(PERCENT_SEED, ds.rows.len())
        .into_iter()
        .filter(|&i| ds.rows[i].split == split)
        .collect()
}

fn progress_bar(show: bool, rows: usize) -> ProgressBar {
    let bar = if show { ProgressBar::new(rows as u64) } else { ProgressBar::hidden() };
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} images  {per_sec}  ETA {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Refuses labels the model cannot output.
fn check_labels(ds: &Dataset, rows: &[usize], k: usize, csv: &Path) -> Result<()> {
    let bad: Vec<&dataset::Row> = rows.iter().map(|&i| &ds.rows[i]).filter(|r| r.label >= k).collect();
    if let Some(first) = bad.first() {
        return Err(Error::invalid(
            csv,
            format!(
                "{} row(s) of the split have a `{}` of {k} or more but the model has {k} classes (first: `{}` with label {})",
                bad.len(),
                ds.label_column,
                first.image,
                first.label
            ),
        ));
    }
    Ok(())
}

/// Runs the evaluation: see the module documentation.
pub fn evaluate(opts: &EvaluateOptions) -> Result<EvaluateSummary> {
    let started = Instant::now();
    let bytes = std::fs::read(&opts.csv).map_err(|e| Error::io(&opts.csv, e))?;
    let labels = Labels { name: opts.csv.display().to_string(), bytes: &bytes, root: opts.root.as_deref() };
    let evaluator = match &opts.source {
        ModelSource::Bundle(dir) => Evaluator::open_bundle(dir, opts.tta, |k| Ok(labels.load(k)?.num_classes))?,
        ModelSource::Onnx(path) => Evaluator::open_onnx(path, opts.tta)?,
    };
    let k = evaluator.num_classes();
    let ds = labels.load(k)?;
    let rows = ft_split_order(&ds, opts.split);
    if rows.is_empty() {
        let count = |s| ds.rows.iter().filter(|r| r.split == s).count();
        return Err(Error::invalid(
            &opts.csv,
            format!(
                "no rows with split={} (train {}, val {}, test {})",
                opts.split,
                count(Split::Train),
                count(Split::Val),
                count(Split::Test)
            ),
        ));
    }
    check_labels(&ds, &rows, k, &opts.csv)?;
    std::fs::create_dir_all(&opts.output_dir).map_err(|e| Error::io(&opts.output_dir, e))?;

    let bar = progress_bar(opts.progress, rows.len());
    let mut predictions = Vec::with_capacity(rows.len());
    let mut unreadable = Vec::new();
    for &i in &rows {
        let row = &ds.rows[i];
        match evaluator.predict(&ds.image_path(row))? {
            Ok(p) => {
                let probabilities: Vec<f64> = p.probabilities.iter().map(|&v| f64::from(v)).collect();
                predictions.push(PredictionRow {
                    filename: row.image.clone(),
                    true_label: row.label,
                    predicted_label: argmax(&probabilities),
                    probabilities,
                });
            }
            Err(u) => {
                bar.suspend(|| log::warn!("skipping unreadable image {}: {}", u.path.display(), u.error));
                unreadable.push(u);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if predictions.is_empty() {
        return Err(Error::refused(format!(
            "none of the {} images of split {} could be read (first: {}); check --root",
            rows.len(),
            opts.split,
            unreadable.first().map_or_else(String::new, |u| format!("{}: {}", u.path.display(), u.error))
        )));
    }

    let y_true: Vec<usize> = predictions.iter().map(|p| p.true_label).collect();
    let probs: Vec<f64> = predictions.iter().flat_map(|p| p.probabilities.iter().copied()).collect();
    let metrics = ft_metrics(&y_true, &probs, k);
    let mut per_class = vec![0; k];
    for &y in &y_true {
        per_class[y] += 1;
    }
    let csv_name = format!("{}.csv", opts.split);
    let predictions_csv = opts.output_dir.join(&csv_name);
    write_predictions_csv(&predictions_csv, k, &predictions)?;
    let report = EvaluationReport {
        tool: format!("panderm-tools {}", env!("CARGO_PKG_VERSION")),
        model: evaluator.info().clone(),
        csv: opts.csv.clone(),
        csv_sha256: ds.csv_sha256.clone(),
        root: opts.root.clone(),
        split: opts.split.to_string(),
        label_column: ds.label_column.clone(),
        tta: opts.tta,
        counts: Counts {
            split_rows: rows.len(),
            evaluated: predictions.len(),
            unreadable: unreadable.len(),
            per_class,
        },
        metrics,
        unreadable,
        predictions_csv: csv_name,
        seconds: started.elapsed().as_secs_f64(),
    };
    let metrics_json = opts.output_dir.join("metrics.json");
    let mut text = serde_json::to_string_pretty(&report)?;
    text.push('\n');
    panderm_edge::fsutil::write_atomically(&metrics_json, text.as_bytes())?;
    Ok(EvaluateSummary { report, predictions_csv, metrics_json })
}
