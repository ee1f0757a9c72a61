//! `panderm compare`: two captures of the same lesion, before and after.

use std::path::PathBuf;
use std::process::ExitCode;

use panderm_edge::classify::Classifier;
use panderm_edge::compare::compare;

use crate::{BoardArgs, fail};

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
    /// The earlier capture.
    before: PathBuf,
    /// The later capture.
    after: PathBuf,
}

/// Exit 0 when nothing exceeds the bundle's limits, 3 when the pair is flagged for review,
/// 1 on errors.
pub fn compare_cmd(args: CompareArgs) -> ExitCode {
    if let Err(e) = args.board.apply() {
        return fail(e);
    }
    let classifier = match Classifier::load(&args.bundle) {
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
