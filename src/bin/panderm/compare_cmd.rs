//! `panderm compare`: two captures of the same lesion, before and after.

use std::path::PathBuf;
use std::process::ExitCode;

use panderm_edge::compare::compare;

use crate::{BoardArgs, TrustArgs, fail, load_classifier};

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The bundle directory.
    #[arg(long)]
    bundle: PathBuf,
    /// Print the comparison as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    board: BoardArgs,
    #[command(flatten)]
    trust: TrustArgs,
    /// The earlier capture.
    before: PathBuf,
    /// The later capture.
    after: PathBuf,
}

/// Exit 0 when nothing exceeds the bundle's limits, 3 when the pair is flagged for review,
/// 1 on errors.
pub fn compare_cmd(args: CompareArgs) -> ExitCode {
    let (classifier, _board) = match load_classifier(&args.bundle, &args.board, &args.trust) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match compare(&classifier, &args.before, &args.after) {
        Ok(c) => {
            if args.json {
                println!("{}", serde_json::to_string(&c).expect("comparisons always serialise"));
            } else {
                print!("{}", c.human());
            }
            if c.flagged { ExitCode::from(3) } else { ExitCode::SUCCESS }
        }
        Err(e) => fail(e),
    }
}
