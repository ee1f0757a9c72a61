//! `panderm-tools`: workstation commands for PanDerm Edge. A thin layer over the `panderm_tools`
//! library: each subcommand lives in its own module and only parses, calls the library and
//! prints.

mod bundle_cmd;
mod convert_cmd;
mod evaluate_cmd;
mod extract_cmd;
#[cfg(feature = "train")]
mod finetune_cmd;
mod probe_cmd;
mod quantize_cmd;
mod sign_cmd;
mod synth_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    #[arg(long, global = true, value_name = "LEVEL", value_parser = panderm_edge::logging::parse_filter)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a PanDerm .pth checkpoint to an ONNX model (feature extractor or classifier).
    Convert(convert_cmd::ConvertArgs),
    /// Extract backbone features for every row of a PanDerm dataset CSV (resumable).
    Extract(extract_cmd::ExtractArgs),
    /// Join features extracted with --shard I/N (any order) into one file in CSV order.
    MergeFeatures(extract_cmd::MergeFeaturesArgs),
    /// Measure backbone throughput (images/s) on a device, excluding image decoding.
    BenchExtract(extract_cmd::BenchExtractArgs),
    /// Fine-tune PanDerm with its recipe (AdamW, layer decay, warmup + cosine, Mixup/CutMix) on the CPU or a GPU.
    #[cfg(feature = "train")]
    Finetune(finetune_cmd::FinetuneArgs),
    /// Fine-tuning engine throughput (train and forward images/s) on synthetic batches.
    #[cfg(feature = "train")]
    BenchFinetune(finetune_cmd::BenchFinetuneArgs),
    /// Evaluate a bundle or a classifier ONNX on a CSV split with PanDerm's fine-tuning metrics
    /// (optionally with its test-time augmentation); writes {split}.csv and metrics.json.
    Evaluate(evaluate_cmd::EvaluateArgs),
    /// PanDerm's linear probe: train a head on split=train features, evaluate on split=test.
    Probe(probe_cmd::ProbeArgs),
    /// Export a trained head (probe output) as ONNX: features [N,D] -> probabilities [N,K].
    ExportHead(probe_cmd::ExportHeadArgs),
    /// Package a backbone and heads into a verifiable bundle directory.
    Bundle(bundle_cmd::BundleArgs),
    /// Generate an Ed25519 bundle-signing key pair: KEY (secret, mode 0600) and KEY.pub (give it to
    /// devices: `panderm … --trusted-key KEY.pub` or a board's `trusted_keys`).
    Keygen(sign_cmd::KeygenArgs),
    /// Sign an existing bundle (it must verify and load first): writes DIR/manifest.sig.
    Sign(sign_cmd::SignArgs),
    /// Quantize a PanDerm export to int8 (MatMulInteger) and report its accuracy against fp32.
    ///
    /// Weight MatMuls (q, k, v, proj, fc1, fc2, a fine-tuned head) get int8 per-channel weights;
    /// attention, LayerNorm, Softmax, GELU and the patch Conv stay fp32. Writes OUTPUT and
    /// OUTPUT.quant.json (the accuracy report); nothing on error. See docs/quantization.md.
    Quantize(quantize_cmd::QuantizeArgs),
    /// Write synthetic skin-like images with toy labels (multiclass.csv, binary.csv). Not medical data.
    SynthImages(synth_cmd::SynthImagesArgs),
    /// Write a random-weight checkpoint in PanDerm's exact layout (for benchmarks and tests).
    Synth(synth_cmd::SynthArgs),
}

/// What every command returns: `Err` is printed as `error: …` (with its chain of causes, `{:#}`)
/// with a failure exit code. The library's errors are typed (`panderm_tools::Error`); anyhow
/// only carries them, and the binary's own messages, to this one printer.
type CmdResult = anyhow::Result<()>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    panderm_edge::logging::init_cli(cli.log_level.as_deref(), panderm_edge::logging::TOOLS_DEFAULT);
    let result = match cli.command {
        Command::Convert(args) => convert_cmd::run(args),
        Command::Extract(args) => extract_cmd::extract(args),
        Command::MergeFeatures(args) => extract_cmd::merge_features(args),
        Command::BenchExtract(args) => extract_cmd::bench_extract(args),
        #[cfg(feature = "train")]
        Command::Finetune(args) => finetune_cmd::run(args),
        #[cfg(feature = "train")]
        Command::BenchFinetune(args) => finetune_cmd::bench(args),
        Command::Evaluate(args) => evaluate_cmd::run(args),
        Command::Probe(args) => probe_cmd::probe(args),
        Command::ExportHead(args) => probe_cmd::export_head(args),
        Command::Bundle(args) => bundle_cmd::run(args),
        Command::Keygen(args) => sign_cmd::keygen(args),
        Command::Sign(args) => sign_cmd::sign(args),
        Command::Quantize(args) => quantize_cmd::run(args),
        Command::SynthImages(args) => synth_cmd::synth_images(args),
        Command::Synth(args) => synth_cmd::synth(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
