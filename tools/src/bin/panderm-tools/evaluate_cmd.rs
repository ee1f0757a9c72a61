//! `panderm-tools evaluate`: a bundle or a classifier ONNX on one split of a PanDerm CSV, on the
//! device runtime, with PanDerm's fine-tuning metrics and `{split}.csv`.

use std::path::PathBuf;

use anyhow::bail;
use panderm_edge::preprocess::tta::{DEFAULT_SEED, Tta};
use panderm_tools::dataset::Split;
use panderm_tools::evaluate::run::{EvaluateOptions, ModelSource, evaluate};

use crate::CmdResult;

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("model_source").required(true).args(["bundle", "model"]))]
pub struct EvaluateArgs {
    /// A bundle directory (fp32 or int8): its classification head for the CSV's class count.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// A classifier ONNX (`convert` of a fine-tuned checkpoint: logits [N, K]).
    #[arg(long)]
    model: Option<PathBuf>,
    /// PanDerm dataset CSV (`image`, `label` or `binary_label`, `split`).
    #[arg(long)]
    csv: PathBuf,
    /// Directory the `image` paths are relative to.
    #[arg(long)]
    root: Option<PathBuf>,
    /// The split to evaluate: train, val or test.
    #[arg(long, default_value = "test", value_parser = split)]
    split: Split,
    /// PanDerm's test-time augmentation with N augmentations per image (0: none).
    #[arg(long, value_name = "N", default_value_t = 0)]
    tta: usize,
    /// Seed of the test-time augmentation (runs repeat exactly).
    #[arg(long, value_name = "S", default_value_t = DEFAULT_SEED, requires = "tta")]
    seed: u64,
    /// Where to write `{split}.csv` (PanDerm's format) and `metrics.json`.
    #[arg(long)]
    output_dir: PathBuf,
}

fn split(s: &str) -> Result<Split, String> {
    Split::parse(s).ok_or_else(|| format!("`{s}` is not train, val or test"))
}

pub fn run(args: EvaluateArgs) -> CmdResult {
    let source = match (args.bundle, args.model) {
        (Some(dir), None) => ModelSource::Bundle(dir),
        (None, Some(model)) => ModelSource::Onnx(model),
        _ => bail!("give exactly one of --bundle and --model"),
    };
    let tta = if args.tta > 0 { Some(Tta::new(args.tta, args.seed)?) } else { None };
    let opts = EvaluateOptions {
        source,
        csv: args.csv,
        root: args.root,
        split: args.split,
        tta,
        output_dir: args.output_dir,
        progress: true,
    };
    let s = evaluate(&opts)?;
    let (r, m) = (&s.report, &s.report.metrics);
    let opt = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"));
    println!(
        "{} images of split {} ({} unreadable): acc {:.4}  bacc {:.4}  AUROC {}  W_F1 {:.4}  top-3 {}",
        r.counts.evaluated,
        r.split,
        r.counts.unreadable,
        m.accuracy,
        m.balanced_accuracy,
        opt(m.auc_roc),
        m.weighted_f1,
        opt(m.top3_accuracy)
    );
    println!("wrote {} and {}", s.predictions_csv.display(), s.metrics_json.display());
    Ok(())
}
