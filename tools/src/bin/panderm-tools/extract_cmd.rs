//! `panderm-tools extract`, `merge-features` and `bench-extract`: backbone features for a
//! dataset CSV, sharded runs joined, and backbone throughput.

use std::path::PathBuf;

use panderm_tools::extract::backend::DeviceChoice;
use panderm_tools::extract::{ExtractOptions, Shard, bench, extract as extract_features, merge};

use crate::CmdResult;

#[derive(clap::Args)]
pub struct ExtractArgs {
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
    device: DeviceChoice,
    /// Extract only shard I of N (contiguous rows), e.g. --shard 2/8; join with merge-features.
    #[arg(long, value_parser = Shard::parse)]
    shard: Option<Shard>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
pub struct MergeFeaturesArgs {
    /// Shard feature files (each with its .json sidecar).
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Output features file.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(clap::Args)]
pub struct BenchExtractArgs {
    /// Converted backbone.
    #[arg(long)]
    model: PathBuf,
    /// cpu, cuda or auto.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// Images per forward pass (default: 8 on the CPU, 64 on CUDA).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Images to time (after one warm-up batch).
    #[arg(long, default_value_t = 256)]
    images: usize,
}

pub fn extract(args: ExtractArgs) -> CmdResult {
    let ExtractArgs { model, csv, root, output, batch_size, decode_threads, restart, device, shard, quiet } = args;
    let opts = ExtractOptions { batch_size, decode_threads, progress: !quiet, restart, device, shard };
    let s = extract_features(&model, &csv, root.as_deref(), &output, &opts)?;
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
    Ok(())
}

pub fn merge_features(args: MergeFeaturesArgs) -> CmdResult {
    let m = merge(&args.shards, &args.output)?;
    println!("wrote {} ({} rows × {} from {} shards)", args.output.display(), m.rows, m.dim, args.shards.len());
    Ok(())
}

pub fn bench_extract(args: BenchExtractArgs) -> CmdResult {
    let r = bench(&args.model, args.device, args.batch_size, args.images)?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}
