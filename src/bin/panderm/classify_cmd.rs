//! `panderm classify`: a bundle on images; the backbone runs once per image, every head on its
//! feature.

use std::path::PathBuf;
use std::process::ExitCode;

use panderm_edge::classify::Classifier;

use crate::{apply_board, fail};

#[derive(clap::Args)]
pub struct ClassifyArgs {
    /// The bundle directory (manifest.toml + model files).
    #[arg(long)]
    bundle: PathBuf,
    /// Print one JSON report per image and line.
    #[arg(long)]
    json: bool,
    /// How many classes to report per head.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// Board profile (built-in name such as `rpi5`, or a path to a .toml): sets the threads and
    /// checks that the bundle's backbone suits the board.
    #[arg(long)]
    board: Option<String>,
    /// Inference threads (overrides the board's).
    #[arg(long)]
    threads: Option<usize>,
    /// Images (JPEG, PNG, BMP, TIFF, WebP).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn classify(args: ClassifyArgs) -> ExitCode {
    let board = match apply_board(args.board.as_deref(), args.threads) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let classifier = match Classifier::load(&args.bundle) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Some(b) = &board {
        let spec = &classifier.bundle().manifest.backbone;
        match b.check_backbone(&spec.variant, spec.precision) {
            Ok(Some(warning)) => eprintln!("warning: {warning}"),
            Ok(None) => {}
            Err(e) => return fail(e),
        }
    }
    let mut failures = 0usize;
    for path in &args.images {
        match classifier.classify(path, args.top_k) {
            Ok(report) => {
                if args.json {
                    println!("{}", serde_json::to_string(&report).expect("reports always serialise"));
                } else {
                    print!("{}", report.human());
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failures += 1;
            }
        }
    }
    if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
