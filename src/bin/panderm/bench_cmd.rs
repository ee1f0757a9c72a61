//! `panderm bench`: load time, first run, latency percentiles, images/s and peak RSS of a model.

use std::path::PathBuf;
use std::process::ExitCode;

use panderm_edge::bench::bench;

use crate::{apply_board, fail};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// Inference threads (default: the board's, else 1).
    #[arg(long)]
    threads: Option<usize>,
    /// Board profile (name or path) whose thread count to use.
    #[arg(long)]
    board: Option<String>,
    /// Timed runs after one warm-up.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Time PanDerm's preprocessing of this image instead of a synthetic tensor.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn bench_cmd(args: BenchArgs) -> ExitCode {
    let threads = match apply_board(args.board.as_deref(), args.threads) {
        Ok(b) => args.threads.or(b.map(|b| b.cpu.threads as usize)).unwrap_or(1),
        Err(e) => return fail(e),
    };
    match bench(&args.model, args.image.as_deref(), args.runs, threads) {
        Ok(r) => {
            if args.json {
                println!("{}", serde_json::to_string(&r).expect("reports always serialise"));
            } else {
                print!("{}", r.human());
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
