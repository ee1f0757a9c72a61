//! `panderm-tools`: workstation commands for PanDerm Edge. Thin wrapper over `panderm_tools`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use panderm_edge::bundle::ModelFormat;
use panderm_edge::fsutil::write_atomically;
use panderm_tools::backend::DeviceChoice;
use panderm_tools::convert::convert_file;
use panderm_tools::extract::{ExtractOptions, Shard, bench, extract, merge};
use panderm_tools::head_export::head_to_onnx;
use panderm_tools::onnx_graph::encode;
use panderm_tools::package::{AbstentionRequest, BundleRequest, ClassifierInput, HeadInput, make_bundle};
use panderm_tools::probe::head_file::HeadFile;
use panderm_tools::probe::run::{ClassWeighting, ProbeOptions, run_probe};
use panderm_tools::quantize::{CalibrationSource, HeadSource, QuantizeOptions, Scheme, quantize_file};
use panderm_tools::synth::{SynthLayout, SynthSpec, state_dict, write_checkpoint};
use panderm_tools::synth_images::write_set;
use panderm_tools::vit::{KindRequest, VitOptions};

#[derive(Parser)]
#[command(
    name = "panderm-tools",
    version,
    about = "Workstation tools for PanDerm Edge: convert PanDerm checkpoints, extract features, train linear-probe heads, package bundles."
)]
struct Cli {
    /// Messages shown on stderr: off, error, warn, info, debug, trace, or `module=level` filters.
    /// Default: $RUST_LOG when set, else the tools' notes and timings, the runtime's warnings and
    /// dependencies' errors.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = log_level)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

fn log_level(s: &str) -> Result<String, String> {
    panderm_edge::logging::check_filter(s).map(|()| s.to_owned())
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Classifier if the checkpoint has `fc_norm` + `head` (fine-tuned), else feature extractor.
    Auto,
    /// Feature extractor: CLS token after the final norm.
    Features,
    /// Classifier: pooled feature -> head -> logits.
    Classifier,
}

#[derive(Clone, Copy, ValueEnum)]
enum Device {
    /// tract on the CPU.
    Cpu,
    /// tract-cuda on an NVIDIA GPU (build with --features cuda).
    Cuda,
    /// CUDA when a driver is present, else the CPU.
    Auto,
}

impl From<Device> for DeviceChoice {
    fn from(d: Device) -> Self {
        match d {
            Device::Cpu => DeviceChoice::Cpu,
            Device::Cuda => DeviceChoice::Cuda,
            Device::Auto => DeviceChoice::Auto,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ClassWeight {
    /// Every sample counts once (PanDerm).
    None,
    /// n / (K * n_class) per class.
    Balanced,
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

#[derive(Clone, Copy, ValueEnum)]
enum BackboneFormat {
    /// NNEF when tract can write the graph as NNEF, else ONNX.
    Auto,
    /// The ONNX file as given.
    Onnx,
    /// tract's NNEF tar (batch 1): loads without ONNX parsing.
    Nnef,
}

#[derive(Clone, Copy, ValueEnum)]
enum Layout {
    /// Flat state dict with bare keys, like panderm_bb_*.pth (linear-probe backbone).
    Lp,
    /// Flat state dict with `encoder.` keys plus pretraining extras, like panderm_ll_*.pth.
    Ll,
    /// Fine-tuned checkpoint-best.pth: {'model', 'optimizer', 'epoch', 'scaler', 'args'}.
    Ft,
}

#[derive(Clone, Copy, ValueEnum)]
enum QuantScheme {
    /// int8 weights + static uint8 activations (zero point 128, scales from calibration): fastest in tract.
    #[value(name = "static-u8")]
    StaticU8,
    /// ONNX Runtime's dynamic form (DynamicQuantizeLinear per input), for comparison.
    Dynamic,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a PanDerm .pth checkpoint to an ONNX model (feature extractor or classifier).
    Convert {
        /// The checkpoint: panderm_bb_*.pth, panderm_ll_*.pth or a fine-tuned checkpoint-best.pth.
        checkpoint: PathBuf,
        /// Output ONNX file.
        #[arg(short, long)]
        output: PathBuf,
        /// Number of attention heads (default: from the relative position tables, else D/64).
        #[arg(long)]
        heads: Option<usize>,
        /// What to build.
        #[arg(long, value_enum, default_value = "auto")]
        kind: Kind,
    },
    /// Extract backbone features for every row of a PanDerm dataset CSV (resumable).
    Extract {
        /// Converted backbone (`convert` output).
        #[arg(long)]
        model: PathBuf,
        /// PanDerm dataset CSV (`image`, `label` or `binary_label`, `split`).
        #[arg(long)]
        csv: PathBuf,
        /// Directory the `image` paths are relative to.
        #[arg(long)]
        root: Option<PathBuf>,
        /// Output features (.npy, float32 [rows, D], row i = CSV row i).
        #[arg(short, long)]
        output: PathBuf,
        /// Images per forward pass (default: 8 on the CPU, 64 on CUDA).
        #[arg(long)]
        batch_size: Option<usize>,
        /// Image decoding threads.
        #[arg(long, default_value_t = 2)]
        decode_threads: usize,
        /// Discard a partial output from an earlier run instead of resuming it.
        #[arg(long)]
        restart: bool,
        /// Where to run the backbone: cpu, cuda, or auto (CUDA when a driver is present).
        #[arg(long, value_enum, default_value = "cpu")]
        device: Device,
        /// Extract only shard I of N (contiguous rows), e.g. --shard 2/8; join with merge-features.
        #[arg(long, value_parser = Shard::parse)]
        shard: Option<Shard>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Join features extracted with --shard I/N (any order) into one file in CSV order.
    MergeFeatures {
        /// Shard feature files (each with its .json sidecar).
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Output features file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Measure backbone throughput (images/s) on a device, excluding image decoding.
    BenchExtract {
        /// Converted backbone.
        #[arg(long)]
        model: PathBuf,
        /// cpu, cuda or auto.
        #[arg(long, value_enum, default_value = "auto")]
        device: Device,
        /// Images per forward pass (default: 8 on the CPU, 64 on CUDA).
        #[arg(long)]
        batch_size: Option<usize>,
        /// Images to time (after one warm-up batch).
        #[arg(long, default_value_t = 256)]
        images: usize,
    },
    /// PanDerm's linear probe: train a head on split=train features, evaluate on split=test.
    Probe {
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
        class_weight: ClassWeight,
        /// Class names, comma-separated, in label order.
        #[arg(long, value_delimiter = ',')]
        labels: Option<Vec<String>>,
        /// Abstention: percentile of the training images' centroid distances kept as the
        /// "cannot assess" limit (docs/abstention.md).
        #[arg(long, default_value_t = 99.0)]
        ood_percentile: f64,
    },
    /// Export a trained head (probe output) as ONNX: features [N,D] -> probabilities [N,K].
    ExportHead {
        /// A probe output directory or its head.json.
        head: PathBuf,
        /// Output ONNX file.
        #[arg(short, long)]
        output: PathBuf,
        /// Task name recorded in the model.
        #[arg(long, default_value = "head")]
        name: String,
    },
    /// Package a backbone and heads into a verifiable bundle directory.
    Bundle {
        /// Converted backbone ONNX (feature extractor, or a fine-tuned classifier).
        #[arg(long)]
        backbone: PathBuf,
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
    },
    /// Generate an Ed25519 bundle-signing key pair: KEY (secret, mode 0600) and KEY.pub (give it to
    /// devices: `panderm … --trusted-key KEY.pub` or a board's `trusted_keys`).
    Keygen {
        /// The secret key file to write (KEY.pub is written beside it); never overwritten.
        #[arg(short, long, value_name = "KEY")]
        output: PathBuf,
        /// A comment stored in KEY.pub (who owns the key).
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Sign an existing bundle (it must verify and load first): writes DIR/manifest.sig.
    Sign {
        /// The bundle directory.
        #[arg(long)]
        bundle: PathBuf,
        /// The secret key file (`keygen` output).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// Quantize a PanDerm export to int8 (MatMulInteger) and report its accuracy against fp32.
    ///
    /// Weight MatMuls (q, k, v, proj, fc1, fc2, a fine-tuned head) get int8 per-channel weights;
    /// attention, LayerNorm, Softmax, GELU and the patch Conv stay fp32. Writes OUTPUT and
    /// OUTPUT.quant.json (the accuracy report); nothing on error. See docs/quantization.md.
    Quantize {
        /// The fp32 PanDerm export (`convert` output: feature extractor or fine-tuned classifier).
        model: PathBuf,
        /// Output ONNX file.
        #[arg(short, long)]
        output: PathBuf,
        /// Calibration images: every jpg/jpeg/png/bmp/tif/tiff/webp file in DIR (unreadable ones are
        /// skipped and counted). Default: a built-in set of --images synthetic skin-like images
        /// (panderm-tools synth-images generator, fixed seed; not medical data).
        #[arg(long, value_name = "DIR")]
        calibration: Option<PathBuf>,
        /// Number of built-in synthetic calibration images (without --calibration).
        #[arg(long, default_value_t = 16, conflicts_with = "calibration")]
        images: usize,
        /// Held-out evaluation images, reported separately (not used for calibration).
        #[arg(long, value_name = "DIR")]
        eval: Option<PathBuf>,
        /// Report top-1 agreement of this bundle's heads (digests verified).
        #[arg(long, value_name = "DIR", conflicts_with = "heads")]
        bundle: Option<PathBuf>,
        /// Report top-1 agreement of this head ONNX (`export-head` output; repeatable).
        #[arg(long = "head", value_name = "HEAD.onnx")]
        heads: Vec<PathBuf>,
        /// Activation scheme.
        #[arg(long, value_enum, default_value = "static-u8")]
        scheme: QuantScheme,
        /// Percentile of |x| tried against max|x| for the static activation scales; the better on
        /// the calibration set wins (repeatable).
        #[arg(long = "percentile", default_values_t = [99.99])]
        percentiles: Vec<f64>,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Write synthetic skin-like images with toy labels (multiclass.csv, binary.csv). Not medical data.
    SynthImages {
        /// Number of images.
        #[arg(long, default_value_t = 60)]
        count: usize,
        /// Image width.
        #[arg(long, default_value_t = 320)]
        width: u32,
        /// Image height.
        #[arg(long, default_value_t = 256)]
        height: u32,
        /// RNG seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output directory.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write a random-weight checkpoint in PanDerm's exact layout (for benchmarks and tests).
    Synth {
        /// Embedding width D (768 = PanDerm_Base, 1024 = PanDerm_Large).
        #[arg(long, default_value_t = 768)]
        embed_dim: usize,
        /// Number of transformer blocks (12 = Base, 24 = Large).
        #[arg(long, default_value_t = 12)]
        depth: usize,
        /// Attention heads (default D/64).
        #[arg(long)]
        heads: Option<usize>,
        /// Which released layout to imitate.
        #[arg(long, value_enum, default_value = "lp")]
        layout: Layout,
        /// Classes of the head (fine-tuned layout only).
        #[arg(long, default_value_t = 7)]
        classes: usize,
        /// RNG seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output .pth file.
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    panderm_edge::logging::init_cli(cli.log_level.as_deref(), panderm_edge::logging::TOOLS_DEFAULT);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Command) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        Command::Convert { checkpoint, output, heads, kind } => {
            let kind = match kind {
                Kind::Auto => KindRequest::Auto,
                Kind::Features => KindRequest::Features,
                Kind::Classifier => KindRequest::Classifier,
            };
            let t = Instant::now();
            let report = convert_file(&checkpoint, &output, &VitOptions { num_heads: heads, kind })?;
            println!("{report}");
            println!("wrote:      {} in {:.2} s", output.display(), t.elapsed().as_secs_f64());
        }
        Command::Extract { model, csv, root, output, batch_size, decode_threads, restart, quiet, device, shard } => {
            let opts =
                ExtractOptions { batch_size, decode_threads, progress: !quiet, restart, device: device.into(), shard };
            let s = extract(&model, &csv, root.as_deref(), &output, &opts)?;
            println!(
                "wrote {} ({} rows × {}; {} computed in this run on {}, {:.1} s, {:.2} images/s)",
                output.display(),
                s.rows,
                s.dim,
                s.computed,
                s.device,
                s.seconds,
                s.computed as f64 / s.seconds.max(1e-9)
            );
        }
        Command::MergeFeatures { shards, output } => {
            let m = merge(&shards, &output)?;
            println!("wrote {} ({} rows × {} from {} shards)", output.display(), m.rows, m.dim, shards.len());
        }
        Command::BenchExtract { model, device, batch_size, images } => {
            let r = bench(&model, device.into(), batch_size, images)?;
            println!("{}", serde_json::to_string(&r)?);
        }
        Command::Probe {
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
        } => {
            let opts = ProbeOptions {
                percent_data,
                c,
                c_sweep,
                class_weight: match class_weight {
                    ClassWeight::None => ClassWeighting::None,
                    ClassWeight::Balanced => ClassWeighting::Balanced,
                },
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
        }
        Command::ExportHead { head, output, name } => {
            let path = if head.is_dir() { head.join("head.json") } else { head };
            let hf = HeadFile::read(&path)?;
            let bytes = encode(&head_to_onnx(&hf, &name));
            write_atomically(&output, &bytes)?;
            println!(
                "wrote {} ({} features -> {} classes: {})",
                output.display(),
                hf.in_dim,
                hf.classes,
                hf.labels.join(", ")
            );
        }
        Command::Bundle {
            backbone,
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
            sign,
            output,
        } => {
            if let Some(key) = &sign {
                // Refuse an unreadable key before writing anything.
                panderm_edge::signing::SecretKey::read(key)?;
            }
            let find = |n: &str| thresholds.iter().find(|(k, _)| k == n).map(|(_, t)| *t);
            let find_labels = |n: &str| labels.iter().find(|(k, _)| k == n).map(|(_, l)| l.clone());
            let classifier_name = task_name.clone().unwrap_or_else(|| "classifier".into());
            let req = BundleRequest {
                backbone,
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
                format: match format {
                    BackboneFormat::Onnx => Some(ModelFormat::Onnx),
                    BackboneFormat::Nnef => Some(ModelFormat::Nnef),
                    BackboneFormat::Auto => None,
                },
            };
            let m = make_bundle(&req, &output)?;
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
                match panderm_tools::sign::sign_bundle(&output, key) {
                    Ok(id) => println!("signed {} with key {id}", output.display()),
                    Err(e) => {
                        let _ = std::fs::remove_dir_all(&output);
                        return Err(format!("{e} (the bundle was removed)").into());
                    }
                }
            }
        }
        Command::Keygen { output, comment } => {
            let id = panderm_tools::sign::keygen(&output, &comment)?;
            println!(
                "wrote secret key {} (keep it private) and public key {} (key id {id})",
                output.display(),
                panderm_tools::sign::public_path(&output).display()
            );
        }
        Command::Sign { bundle, key } => {
            let id = panderm_tools::sign::sign_bundle(&bundle, &key)?;
            println!("signed {} with key {id}", bundle.display());
        }
        Command::Quantize { model, output, calibration, images, eval, bundle, heads, scheme, percentiles, quiet } => {
            let opts = QuantizeOptions {
                scheme: match scheme {
                    QuantScheme::StaticU8 => Scheme::StaticU8,
                    QuantScheme::Dynamic => Scheme::Dynamic,
                },
                calibration: calibration.map_or(CalibrationSource::Synthetic(images), CalibrationSource::Dir),
                eval,
                heads: match bundle {
                    Some(dir) => HeadSource::Bundle(dir),
                    None if !heads.is_empty() => HeadSource::Files(heads),
                    None => HeadSource::None,
                },
                percentiles,
                progress: !quiet,
            };
            println!("{}", quantize_file(&model, &output, &opts)?);
        }
        Command::SynthImages { count, width, height, seed, output } => {
            let set = write_set(&output, count, (width, height), seed)?;
            println!("wrote {} images with multiclass.csv and binary.csv to {}", set.len(), output.display());
        }
        Command::Synth { embed_dim, depth, heads, layout, classes, seed, output } => {
            if embed_dim == 0 || embed_dim % 4 != 0 || depth == 0 {
                return Err("--embed-dim must be a positive multiple of 4 and --depth positive".into());
            }
            let num_heads = heads.unwrap_or(embed_dim / 64).max(1);
            if embed_dim % num_heads != 0 {
                return Err(format!("{num_heads} heads do not divide --embed-dim {embed_dim}").into());
            }
            let layout = match layout {
                Layout::Lp => SynthLayout::LinearProbe,
                Layout::Ll => SynthLayout::LargeRelease,
                Layout::Ft => SynthLayout::FineTuned { classes },
            };
            let t = Instant::now();
            let spec = SynthSpec { embed_dim, depth, num_heads, layout, seed };
            let tensors = state_dict(&spec);
            let params: usize = tensors.iter().map(|t| t.shape.iter().product::<usize>()).sum();
            write_checkpoint(&output, &tensors, layout)?;
            println!(
                "wrote {} ({} tensors, {:.1} M values, {:?}, D={embed_dim}, depth={depth}, heads={num_heads}) in {:.2} s",
                output.display(),
                tensors.len(),
                params as f64 / 1e6,
                layout,
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
