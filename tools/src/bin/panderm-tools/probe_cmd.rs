//! `panderm-tools probe` and `export-head`: PanDerm's linear probe on extracted features, and a
//! trained head as ONNX.

use std::path::PathBuf;
use std::time::Instant;

use panderm_edge::fsutil::write_atomically;
use panderm_tools::onnx_graph::encode;
use panderm_tools::probe::head_file::HeadFile;
use panderm_tools::probe::onnx_head::head_to_onnx;
use panderm_tools::probe::run::{ClassWeighting, ProbeOptions, run_probe};

use crate::CmdResult;

#[derive(clap::Args)]
pub struct ProbeArgs {
    /// Features (.npy [rows, D], row i = CSV row i), e.g. from `extract`.
    #[arg(long)]
    features: PathBuf,
    /// The PanDerm dataset CSV; binary with `binary_label`, multiclass with `label`.
    #[arg(long)]
    csv: PathBuf,
    /// Where to write predictions, metrics, confusion matrix and the head.
    #[arg(long)]
    output_dir: PathBuf,
    /// Fraction of the train split to use, selected exactly like PanDerm (seed 42).
    #[arg(long)]
    percent_data: Option<f64>,
    /// Summary CSV to append a row to (default OUTPUT_DIR/summary.csv).
    #[arg(long)]
    summary_csv: Option<PathBuf>,
    /// Cost C (default PanDerm's D·K/100).
    #[arg(long = "C")]
    c: Option<f64>,
    /// Pick C on the val split among (D·K/100) × {0.01, 0.1, 1, 10, 100}.
    #[arg(long)]
    c_sweep: bool,
    /// Class weighting in the loss (PanDerm: none).
    #[arg(long, value_enum, default_value = "none")]
    class_weight: ClassWeighting,
    /// Class names, comma-separated, in label order.
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// Abstention: percentile of the training images' centroid distances kept as the
    /// "cannot assess" limit (docs/abstention.md).
    #[arg(long, default_value_t = 99.0)]
    ood_percentile: f64,
}

#[derive(clap::Args)]
pub struct ExportHeadArgs {
    /// A probe output directory or its head.json.
    head: PathBuf,
    /// Output ONNX file.
    #[arg(short, long)]
    output: PathBuf,
    /// Task name recorded in the model.
    #[arg(long, default_value = "head")]
    name: String,
}

pub fn probe(args: ProbeArgs) -> CmdResult {
    let ProbeArgs {
        features,
        csv,
        output_dir,
        percent_data,
        summary_csv,
        c,
        c_sweep,
        class_weight,
        labels,
        ood_percentile,
    } = args;
    let opts = ProbeOptions {
        percent_data,
        c,
        c_sweep,
        class_weight,
        labels,
        ood_percentile: Some(ood_percentile),
        ..ProbeOptions::default()
    };
    let t = Instant::now();
    let o = run_probe(&features, &csv, &output_dir, summary_csv.as_deref(), &opts)?;
    let m = &o.metrics;
    println!(
        "trained on {} rows (C = {}), L-BFGS {} iterations / {} evaluations, loss {:.4} -> {:.4} ({:?}), {:.2} s",
        o.train_rows,
        o.c,
        o.lbfgs.iterations,
        o.lbfgs.evaluations,
        o.lbfgs.initial_loss,
        o.lbfgs.loss,
        o.lbfgs.reason,
        t.elapsed().as_secs_f64()
    );
    let opt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.6}"));
    println!("Test lin_acc: {:.6}", m.acc);
    println!("Test lin_bacc: {:.6}", m.bacc);
    println!("Test lin_kappa: {:.6}", m.kappa);
    println!("Test lin_weighted_f1: {:.6}", m.weighted_f1);
    println!("Test lin_auroc: {}", opt(m.auroc));
    println!("Test lin_aupr: {}", opt(m.aupr));
    for f in &o.files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

pub fn export_head(args: ExportHeadArgs) -> CmdResult {
    let ExportHeadArgs { head, output, name } = args;
    let path = if head.is_dir() { head.join("head.json") } else { head };
    let hf = HeadFile::read(&path)?;
    let bytes = encode(&head_to_onnx(&hf, &name));
    write_atomically(&output, &bytes)?;
    println!("wrote {} ({} features -> {} classes: {})", output.display(), hf.in_dim, hf.classes, hf.labels.join(", "));
    Ok(())
}
