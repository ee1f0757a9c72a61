//! `panderm-tools probe`: PanDerm's linear-probe evaluation end to end — dataset CSV +
//! features → head trained on `split=train` → metrics on `split=test` → PanDerm's output
//! files, plus `head.json` for `export-head` / `bundle`.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::head_file::{HeadFile, OOD_METRIC, OodStats};
use super::lbfgs::{LbfgsOptions, LbfgsReport};
use super::logreg::{TrainData, argmax_rows, panderm_c, train};
use super::metrics::{DEFAULT_RESAMPLES, EvalMetrics, bootstrap_ci, eval_metrics};
use super::report;
use crate::dataset::{self, Dataset, LoadOptions, Split, Task};
use crate::error::{Error, Result};

/// How classes are weighted in the loss (`probe --class-weight`; `help` is the CLI's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClassWeighting {
    /// PanDerm: every sample counts once.
    #[default]
    #[value(help = "Every sample counts once (PanDerm)")]
    None,
    /// `n / (K · n_c)` per class (sklearn's "balanced").
    #[value(help = "n / (K * n_class) per class")]
    Balanced,
}

/// Options of a probe run. [`ProbeOptions::default`] is PanDerm's recipe.
#[derive(Debug, Clone, Default)]
pub struct ProbeOptions {
    /// PanDerm's `percent_data` (None = 1.0).
    pub percent_data: Option<f64>,
    /// Cost C (None = PanDerm's D·K/100).
    pub c: Option<f64>,
    /// Choose C on the val split among D·K/100 × {0.01, 0.1, 1, 10, 100}.
    pub c_sweep: bool,
    /// Class weighting.
    pub class_weight: ClassWeighting,
    /// Class names (default `class_0`…).
    pub labels: Option<Vec<String>>,
    /// L-BFGS settings.
    pub lbfgs: LbfgsOptions,
    /// Initialisation seed (PanDerm: 0).
    pub seed: u64,
    /// Bootstrap resamples for the confidence intervals.
    pub bootstrap: Option<usize>,
    /// Percentile of the training features' centroid distances stored as the abstention limit
    /// (None = [`DEFAULT_OOD_PERCENTILE`]).
    pub ood_percentile: Option<f64>,
}

/// Default abstention percentile: 1 in 100 training images would be "cannot assess".
pub const DEFAULT_OOD_PERCENTILE: f64 = 99.0;

/// Class centroids of the training features and the distance limit at `percentile`.
pub fn ood_stats(
    features: &[f32],
    d: usize,
    train_idx: &[usize],
    y_train: &[usize],
    test_idx: &[usize],
    k: usize,
    percentile: f64,
) -> Result<OodStats> {
    use panderm_edge::abstain::{Centroids, percentile as pct};
    let rows =
        |idx: &[usize]| idx.iter().flat_map(|&r| features[r * d..(r + 1) * d].iter().copied()).collect::<Vec<f32>>();
    let train = rows(train_idx);
    let centroids = Centroids::from_features(&train, d, y_train, k)?;
    let dist = |x: &[f32]| -> Result<Vec<f64>> {
        x.chunks_exact(d).map(|f| centroids.distance(f).map_err(Error::from)).collect()
    };
    let train_d = dist(&train)?;
    let q = |p: f64| pct(&train_d, p).ok_or_else(|| Error::refused(format!("percentile {p} is outside [0, 100]")));
    let max_distance = q(percentile)?;
    let test_d = dist(&rows(test_idx))?;
    let flagged = test_d.iter().filter(|&&x| x > max_distance).count();
    Ok(OodStats {
        metric: OOD_METRIC.into(),
        centroids: centroids.rows().chunks_exact(d).map(<[f32]>::to_vec).collect(),
        percentile,
        max_distance,
        train_quantiles: [q(50.0)?, q(90.0)?, q(95.0)?, q(99.0)?, q(100.0)?],
        test_flagged_fraction: if test_d.is_empty() { 0.0 } else { flagged as f64 / test_d.len() as f64 },
    })
}

/// What a probe run produced.
#[derive(Debug, Clone)]
pub struct ProbeOutcome {
    /// Test-split metrics.
    pub metrics: EvalMetrics,
    /// The C used.
    pub c: f64,
    /// Optimizer report.
    pub lbfgs: LbfgsReport,
    /// Rows used for training.
    pub train_rows: usize,
    /// Test rows evaluated.
    pub test_rows: usize,
    /// Test probabilities `[n_test, K]`, row-major, in CSV order.
    pub test_probs: Vec<f64>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

fn gather(features: &[f32], d: usize, rows: &[usize]) -> Vec<f64> {
    let mut x = Vec::with_capacity(rows.len() * d);
    for &r in rows {
        x.extend(features[r * d..(r + 1) * d].iter().map(|&v| f64::from(v)));
    }
    x
}

fn class_weights(y: &[usize], k: usize, w: ClassWeighting) -> Option<Vec<f64>> {
    match w {
        ClassWeighting::None => None,
        ClassWeighting::Balanced => {
            let mut counts = vec![0usize; k];
            for &c in y {
                counts[c] += 1;
            }
            Some(counts.iter().map(|&n| if n == 0 { 0.0 } else { y.len() as f64 / (k as f64 * n as f64) }).collect())
        }
    }
}

/// Selection score on the val split for `--c-sweep`: AUROC for binary tasks (PanDerm's FT
/// model selection), balanced accuracy otherwise.
fn selection_score(m: &EvalMetrics, task: Task) -> f64 {
    match task {
        Task::Binary => m.auroc.filter(|v| v.is_finite()).unwrap_or(f64::NEG_INFINITY),
        Task::Multiclass => m.bacc,
    }
}

/// Loads the features (`[rows, D]` float32 `.npy`) and checks they match the CSV.
pub fn load_features(path: &Path, ds: &Dataset) -> Result<(Vec<f32>, usize)> {
    let a = panderm_edge::npy::read_f32(path)?;
    let [rows, d] = a.shape[..] else {
        return Err(Error::invalid(path, format!("features must be a 2-D [rows, D] array, got shape {:?}", a.shape)));
    };
    if rows != ds.rows.len() {
        return Err(Error::invalid(
            path,
            format!(
                "{rows} feature rows but the CSV has {} data rows (row i of the features must be CSV row i)",
                ds.rows.len()
            ),
        ));
    }
    if d == 0 {
        return Err(Error::invalid(path, "features have zero width"));
    }
    Ok((a.data, d))
}

/// The class names: `--labels` (one per class) or `class_0`….
fn class_labels(opts: &ProbeOptions, k: usize) -> Result<Vec<String>> {
    Ok(match &opts.labels {
        Some(l) if l.len() != k => {
            return Err(Error::refused(format!("--labels gives {} names for {k} classes", l.len())));
        }
        Some(l) => l.clone(),
        None => (0..k).map(|i| format!("class_{i}")).collect(),
    })
}

/// `--c-sweep`: trains at `base_c` × {0.01, 0.1, 1, 10, 100} and keeps the C with the best
/// [`selection_score`] on the val split (`val` = features and labels).
fn sweep_c(
    data: TrainData<'_>,
    weights: Option<&[f64]>,
    val: (&[f64], &[usize]),
    base_c: f64,
    task: Task,
    opts: &ProbeOptions,
) -> f64 {
    let (x_val, y_val) = val;
    let k = data.k;
    let mut best = (f64::NEG_INFINITY, base_c);
    for mult in [0.01, 0.1, 1.0, 10.0, 100.0] {
        let c = base_c * mult;
        let (head, _) = train(data, c, weights, &opts.lbfgs, opts.seed);
        let p = head.predict_proba(x_val);
        let m = eval_metrics(y_val, &argmax_rows(&p, k), &p, k);
        let s = selection_score(&m, task);
        log::info!(
            "c-sweep: C = {c:.4}: val {} = {s:.4}",
            if task == Task::Binary { "AUROC" } else { "balanced accuracy" }
        );
        if s > best.0 {
            best = (s, c);
        }
    }
    best.1
}

/// Where a head came from: the features and CSV (names and digests), the subset and the
/// recipe; stored in `head.json` and the bundle manifest.
fn provenance(
    features_path: &Path,
    csv: &Path,
    ds: &Dataset,
    opts: &ProbeOptions,
    train_rows: usize,
) -> Result<serde_json::Value> {
    Ok(json!({
        "features_file": features_path.file_name().map(|f| f.to_string_lossy().into_owned()),
        "features_sha256": panderm_edge::bundle::sha256_file(features_path)?,
        "csv_file": csv.file_name().map(|f| f.to_string_lossy().into_owned()),
        "csv_sha256": ds.csv_sha256,
        "label_column": ds.label_column,
        "percent_data": opts.percent_data.unwrap_or(1.0),
        "train_rows": train_rows,
        "recipe": "PanDerm linear probe: L-BFGS strong-Wolfe, CE + (1/C)*0.5*||W||_F",
        "class_weight": format!("{:?}", opts.class_weight).to_lowercase(),
        "seed": opts.seed,
        "tool": format!("panderm-tools {}", env!("CARGO_PKG_VERSION")),
    }))
}

/// Runs the probe and writes every output into `out_dir`.
pub fn run_probe(
    features_path: &Path,
    csv: &Path,
    out_dir: &Path,
    summary_csv: Option<&Path>,
    opts: &ProbeOptions,
) -> Result<ProbeOutcome> {
    let ds = dataset::load(csv, None, &LoadOptions::default())?;
    let (features, d) = load_features(features_path, &ds)?;
    let k = match ds.task {
        Task::Binary => 2,
        Task::Multiclass => ds.num_classes,
    };
    let labels = class_labels(opts, k)?;
    let train_idx = ds.train_subset(opts.percent_data.unwrap_or(1.0))?;
    let test_idx = ds.split_indices(Split::Test);
    let val_idx = ds.split_indices(Split::Val);
    if train_idx.is_empty() {
        return Err(Error::invalid(csv, "no rows with split=train"));
    }
    if test_idx.is_empty() {
        return Err(Error::invalid(csv, "no rows with split=test"));
    }
    let y_of = |idx: &[usize]| idx.iter().map(|&i| ds.rows[i].label).collect::<Vec<_>>();
    let (x_train, y_train) = (gather(&features, d, &train_idx), y_of(&train_idx));
    let absent: Vec<usize> = (0..k).filter(|c| !y_train.contains(c)).collect();
    if !absent.is_empty() {
        log::warn!("classes {absent:?} have no training rows; their probabilities will be driven to zero");
    }
    let weights = class_weights(&y_train, k, opts.class_weight);
    let data = TrainData { x: &x_train, y: &y_train, d, k };
    let base_c = opts.c.unwrap_or_else(|| panderm_c(d, k));
    let c = if opts.c_sweep {
        if val_idx.is_empty() {
            return Err(Error::refused("--c-sweep needs rows with split=val"));
        }
        let (x_val, y_val) = (gather(&features, d, &val_idx), y_of(&val_idx));
        sweep_c(data, weights.as_deref(), (&x_val, &y_val), base_c, ds.task, opts)
    } else {
        base_c
    };
    let (head, lbfgs) = train(data, c, weights.as_deref(), &opts.lbfgs, opts.seed);
    let x_test = gather(&features, d, &test_idx);
    let y_test = y_of(&test_idx);
    let probs = head.predict_proba(&x_test);
    let preds = argmax_rows(&probs, k);
    let metrics = eval_metrics(&y_test, &preds, &probs, k);
    let ci = bootstrap_ci(&y_test, &preds, &probs, k, opts.bootstrap.unwrap_or(DEFAULT_RESAMPLES), 0);

    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let name = report::dataset_name(csv);
    let mut files = Vec::new();
    let filenames: Vec<String> = test_idx.iter().map(|&i| ds.rows[i].image.clone()).collect();
    let pred_csv = out_dir.join(format!("{name}.csv"));
    // PanDerm's probabilities are float32 numpy values; writing f32 reproduces its text.
    let probs_f32: Vec<f32> = probs.iter().map(|&p| p as f32).collect();
    report::write_predictions_csv(&pred_csv, &filenames, &y_test, &preds, &probs_f32, k, ds.task == Task::Binary)?;
    files.push(pred_csv);
    let summary = summary_csv.map(Path::to_path_buf).unwrap_or_else(|| out_dir.join("summary.csv"));
    report::append_summary_csv(&summary, &name, &metrics)?;
    files.push(summary);
    let provenance = provenance(features_path, csv, &ds, opts, train_idx.len())?;
    let metrics_json = json!({
        "lin_acc": metrics.acc, "lin_bacc": metrics.bacc, "lin_kappa": metrics.kappa,
        "lin_weighted_f1": metrics.weighted_f1, "lin_auroc": metrics.auroc, "lin_aupr": metrics.aupr,
    });
    let extra = json!({
        "dataset": name, "task": if ds.task == Task::Binary { "binary" } else { "multiclass" },
        "C": c, "train_rows": train_idx.len(), "test_rows": test_idx.len(),
        "lbfgs": { "initial_loss": lbfgs.initial_loss, "final_loss": lbfgs.loss, "iterations": lbfgs.iterations,
                   "evaluations": lbfgs.evaluations, "stop": format!("{:?}", lbfgs.reason) },
        "provenance": provenance,
    });
    let mj = out_dir.join("metrics.json");
    report::write_metrics_json(&mj, &metrics, &ci, extra)?;
    files.push(mj);
    let png = out_dir.join(format!("confusion_matrix_{name}.png"));
    report::write_confusion_png(&png, &y_test, &preds, k, &labels)?;
    files.push(png);
    let mut head_file = HeadFile::from_head(&head, ds.task, labels, c, provenance, metrics_json);
    let ood = ood_stats(
        &features,
        d,
        &train_idx,
        &y_train,
        &test_idx,
        k,
        opts.ood_percentile.unwrap_or(DEFAULT_OOD_PERCENTILE),
    )?;
    log::info!(
        "abstention: centroid-distance limit {:.4} (p{} of training); {:.1}% of the test split beyond it",
        ood.max_distance,
        ood.percentile,
        ood.test_flagged_fraction * 100.0
    );
    head_file.ood = Some(ood);
    let hp = out_dir.join("head.json");
    head_file.write(&hp)?;
    files.push(hp);
    Ok(ProbeOutcome {
        metrics,
        c,
        lbfgs,
        train_rows: train_idx.len(),
        test_rows: test_idx.len(),
        test_probs: probs,
        files,
    })
}
