//! `panderm log verify FILE`: check an audit log (and its rotated files).

use std::path::PathBuf;
use std::process::ExitCode;

use panderm_edge::audit_log;

use crate::fail;

#[derive(clap::Subcommand)]
pub enum LogCommand {
    /// Check every line's checksum, the sequence numbers and the hash chain (each line's `prev`
    /// is the previous line's sha256) across rotated files. Exit 0 when intact (a torn line from
    /// a power cut, lines from before the chain and a chain whose start was rotated away are
    /// reported, not errors), 1 on corrupt lines, seq gaps or chain breaks (a line deleted,
    /// inserted, moved, or edited and re-hashed).
    Verify {
        /// The audit log (e.g. audit.jsonl; rotated audit.jsonl.1, .2 … are read too).
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn log(cmd: LogCommand) -> ExitCode {
    match cmd {
        LogCommand::Verify { file, json } => match audit_log::verify(&file) {
            Ok(report) => {
                if json {
                    println!("{}", serde_json::to_string(&report).expect("reports always serialise"));
                } else {
                    println!("{}", report.human());
                }
                if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
            }
            Err(e) => fail(e),
        },
    }
}
