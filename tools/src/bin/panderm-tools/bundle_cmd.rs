//! `panderm-tools bundle`: a backbone and heads packaged into a verifiable bundle directory,
//! optionally signed.

use std::path::PathBuf;

use clap::ValueEnum;
use panderm_edge::bundle::ModelFormat;
use panderm_tools::package::sign::sign_bundle;
use panderm_tools::package::{AbstentionRequest, BundleRequest, ClassifierInput, HeadInput, make_bundle};

use crate::CmdResult;

/// `--format`: the runtime's [`ModelFormat`] or `auto` (the library's `None`).
#[derive(Clone, Copy, ValueEnum)]
enum BackboneFormat {
    /// NNEF when tract can write the graph as NNEF, else ONNX.
    Auto,
    /// The ONNX file as given.
    Onnx,
    /// tract's NNEF tar (batch 1): loads without ONNX parsing.
    Nnef,
}

impl BackboneFormat {
    fn requested(self) -> Option<ModelFormat> {
        match self {
            BackboneFormat::Onnx => Some(ModelFormat::Onnx),
            BackboneFormat::Nnef => Some(ModelFormat::Nnef),
            BackboneFormat::Auto => None,
        }
    }
}

fn parse_head(s: &str) -> Result<(String, PathBuf), String> {
    let (n, p) = s.split_once('=').ok_or("expected NAME=PATH")?;
    if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!("head name {n:?} must be letters, digits, '_' or '-'"));
    }
    Ok((n.to_owned(), PathBuf::from(p)))
}

fn parse_threshold(s: &str) -> Result<(String, f64), String> {
    let (n, t) = s.split_once('=').ok_or("expected NAME=THRESHOLD")?;
    let t: f64 = t.parse().map_err(|_| format!("{t:?} is not a number"))?;
    if !(0.0..=1.0).contains(&t) {
        return Err(format!("threshold {t} is outside [0, 1]"));
    }
    Ok((n.to_owned(), t))
}

fn parse_labels(s: &str) -> Result<(String, Vec<String>), String> {
    let (n, l) = s.split_once('=').ok_or("expected NAME=a,b,c")?;
    Ok((n.to_owned(), l.split(',').map(str::to_owned).collect()))
}

#[derive(clap::Args)]
pub struct BundleArgs {
    /// Converted backbone ONNX (feature extractor, or a fine-tuned classifier).
    #[arg(long)]
    backbone: PathBuf,
    /// The fp32 export of an int8 --backbone (the same checkpoint, before `quantize`): carried as
    /// `[backbone_fallback]` and run instead on CPUs where int8 is slower than fp32 (x86_64
    /// without AVX-512 VNNI / AVX-VNNI; docs/bundles.md).
    #[arg(long)]
    fallback_backbone: Option<PathBuf>,
    /// A head: NAME=PATH where PATH is a probe output directory or head.json (repeatable).
    #[arg(long = "head", value_parser = parse_head)]
    heads: Vec<(String, PathBuf)>,
    /// Binary operating threshold: NAME=T (default 0.5; repeatable).
    #[arg(long = "threshold", value_parser = parse_threshold)]
    thresholds: Vec<(String, f64)>,
    /// Class labels: NAME=a,b,c (repeatable); for a classifier backbone use its task name.
    #[arg(long = "labels", value_parser = parse_labels)]
    labels: Vec<(String, Vec<String>)>,
    /// Task name of a fine-tuned classifier backbone.
    #[arg(long)]
    task_name: Option<String>,
    /// Bundle name.
    #[arg(long)]
    name: String,
    /// Bundle version.
    #[arg(long, default_value = "0.1.0")]
    version: String,
    /// Free-text description.
    #[arg(long, default_value = "")]
    description: String,
    /// Mark the bundle as a pipeline demo (not a medical model); every output says so.
    #[arg(long)]
    demo: bool,
    /// Head whose out-of-distribution statistics make the abstention rule (default: the
    /// first head that has them).
    #[arg(long)]
    abstain_head: Option<String>,
    /// "Cannot assess" when the primary head's top probability is below this.
    #[arg(long)]
    min_probability: Option<f64>,
    /// The head (binary, class 1 = skin) used as the quality gate's learned not-skin check
    /// instead of the colour heuristic; it is not reported as a clinical result.
    #[arg(long)]
    skin_head: Option<String>,
    /// Write no abstention rule.
    #[arg(long, conflicts_with_all = ["abstain_head", "min_probability"])]
    no_abstention: bool,
    /// Backbone file format in the bundle: nnef (tract's NNEF tar, for batch 1: no ONNX
    /// parsing on the device, faster start, half the memory), onnx (the file as given), or
    /// auto (nnef when tract can write the graph as NNEF, else onnx).
    #[arg(long, value_enum, default_value_t = BackboneFormat::Auto)]
    format: BackboneFormat,
    /// Sign the bundle with this secret key (`keygen` output): writes manifest.sig. Devices
    /// configured with the matching KEY.pub refuse bundles it did not sign.
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Output directory (must be empty or absent).
    #[arg(short, long)]
    output: PathBuf,
}

impl BundleArgs {
    /// The library's request: each head with its `--threshold` and `--labels`, and the
    /// classifier's under its task name.
    fn request(self) -> BundleRequest {
        let BundleArgs {
            backbone,
            fallback_backbone,
            heads,
            thresholds,
            labels,
            task_name,
            name,
            version,
            description,
            demo,
            abstain_head,
            min_probability,
            no_abstention,
            skin_head,
            format,
            ..
        } = self;
        let find = |n: &str| thresholds.iter().find(|(k, _)| k == n).map(|(_, t)| *t);
        let find_labels = |n: &str| labels.iter().find(|(k, _)| k == n).map(|(_, l)| l.clone());
        let classifier_name = task_name.clone().unwrap_or_else(|| "classifier".into());
        BundleRequest {
            backbone,
            fallback_backbone,
            heads: heads
                .iter()
                .map(|(n, p)| HeadInput {
                    name: n.clone(),
                    path: p.clone(),
                    threshold: find(n),
                    labels: find_labels(n),
                })
                .collect(),
            classifier: ClassifierInput {
                task_name,
                labels: find_labels(&classifier_name),
                threshold: find(&classifier_name),
            },
            name,
            version,
            description,
            demo,
            abstention: AbstentionRequest {
                disabled: no_abstention,
                head: abstain_head,
                min_top_probability: min_probability,
            },
            skin_head,
            format: format.requested(),
        }
    }
}

pub fn run(args: BundleArgs) -> CmdResult {
    if let Some(key) = &args.sign {
        // Refuse an unreadable key before writing anything.
        panderm_edge::signing::SecretKey::read(key)?;
    }
    let (sign, output) = (args.sign.clone(), args.output.clone());
    let m = make_bundle(&args.request(), &output)?;
    println!(
        "wrote bundle {} ({} {}, backbone {} {} as {}, {} head(s))",
        output.display(),
        m.bundle.name,
        m.bundle.version,
        m.backbone.variant,
        m.backbone.precision.name(),
        m.backbone.format.as_str(),
        m.heads.len()
    );
    if let Some(key) = &sign {
        match sign_bundle(&output, key) {
            Ok(id) => println!("signed {} with key {id}", output.display()),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&output);
                return Err(anyhow::anyhow!("{e} (the bundle was removed)"));
            }
        }
    }
    Ok(())
}
