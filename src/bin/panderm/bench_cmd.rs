//! `panderm bench`: load time, first run, latency percentiles, images/s and peak RSS of a model.

use std::path::PathBuf;
use std::process::ExitCode;

use panderm_edge::bench::bench;

use crate::{BoardArgs, fail};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The model: ONNX file or NNEF archive.
    #[arg(long)]
    model: PathBuf,
    // Inference threads: `--threads`, else the board's, else 1.
    #[command(flatten)]
    board: BoardArgs,
    /// Timed runs after one warm-up.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Time PanDerm's preprocessing of this image instead of a synthetic tensor.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also time every operator of tract's optimized plan over --runs more runs and report
    /// where the time goes, slowest operator first.
    #[arg(long)]
    profile: bool,
}

pub fn bench_cmd(args: BenchArgs) -> ExitCode {
    let board = match args.board.apply() {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let threads = args.board.threads_in_effect(board.as_ref());
    let backend = match args.board.engine.backend(threads, board.as_ref()) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    match bench(&args.model, args.image.as_deref(), args.runs, threads, args.profile, &backend) {
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
