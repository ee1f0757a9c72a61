//! `panderm`: the PanDerm Edge command line. A thin layer over the `panderm_edge` library: each
//! subcommand lives in its own module and only parses, calls the library and prints.

mod batch_cmd;
mod bench_cmd;
mod boards_cmd;
mod bundle_cmd;
mod classify_cmd;
mod compare_cmd;
mod log_cmd;
mod run_cmd;

use std::process::ExitCode;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use panderm_edge::backend::{Backend, BackendKind, Provider};
use panderm_edge::board::Board;
use panderm_edge::classify::Classifier;
use panderm_edge::signing::Trust;

#[derive(Parser)]
#[command(
    name = "panderm",
    version,
    about = "Run the PanDerm dermatology foundation model on this device (no Python, no network)."
)]
struct Cli {
    /// Library messages shown on stderr: off, error, warn, info, debug, trace, or `module=level`
    /// filters (`panderm_edge::classify=debug,warn`). Default: $RUST_LOG when set, else warnings
    /// from panderm itself and errors from its dependencies.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = panderm_edge::logging::parse_filter)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an ONNX model on images with PanDerm's exact preprocessing and print its outputs.
    Run(run_cmd::RunArgs),
    /// Classify images with a bundle: the backbone runs once per image, every head on its feature.
    Classify(classify_cmd::ClassifyArgs),
    /// Describe a bundle (and whether its files verify) or an ONNX model file.
    Info(bundle_cmd::InfoArgs),
    /// Verify every file digest of a bundle; non-zero exit on any mismatch.
    Verify(bundle_cmd::VerifyArgs),
    /// Compare two captures of the same lesion: feature distance and each head's probability
    /// change, flagged beyond the bundle's limits (exit code 3 when flagged).
    Compare(compare_cmd::CompareArgs),
    /// Audit-log tools.
    #[command(subcommand)]
    Log(log_cmd::LogCommand),
    /// Benchmark a model: load time, first run, median/p90 latency, images/s, peak RSS.
    Bench(bench_cmd::BenchArgs),
    /// List the built-in board profiles, or show and check one (name or path).
    Boards(boards_cmd::BoardsArgs),
    /// Process a folder of photos into results.csv, results.jsonl and an offline report.html;
    /// re-runs only process new or changed files, --watch keeps polling the folder.
    Batch(batch_cmd::BatchArgs),
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = Cli::parse();
    panderm_edge::logging::init_cli(cli.log_level.as_deref(), panderm_edge::logging::PANDERM_DEFAULT);
    match cli.command {
        Command::Run(args) => run_cmd::run(args),
        Command::Classify(args) => classify_cmd::classify(args),
        Command::Info(args) => bundle_cmd::info(args),
        Command::Verify(args) => bundle_cmd::verify(args),
        Command::Boards(args) => boards_cmd::boards(args),
        Command::Bench(args) => bench_cmd::bench_cmd(args),
        Command::Compare(args) => compare_cmd::compare_cmd(args),
        Command::Log(cmd) => log_cmd::log(cmd),
        Command::Batch(args) => batch_cmd::batch(args),
    }
}

/// A closed stdout (`panderm classify --json … | head`) ends the process quietly, as for other
/// Unix tools, instead of a panic from `println!`: Rust ignores SIGPIPE by default, which turns
/// the write into an EPIPE error and `println!` into "failed printing to stdout".
fn restore_default_sigpipe() {
    // SAFETY: setting a signal's disposition to its default before any thread is started.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Prints `error: …` and returns a failure exit code.
fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// `--board` and `--threads`, shared by every command that runs a model.
#[derive(clap::Args, Debug, Default)]
pub struct BoardArgs {
    /// Board profile (built-in name such as `rpi5`, or a path to a .toml): sets the inference
    /// threads and checks that the bundle's backbone suits the board.
    #[arg(long)]
    pub board: Option<String>,
    /// Inference threads (overrides the board's).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

impl BoardArgs {
    /// Reads the board profile (if any) and applies its thread count; `--threads` overrides it.
    pub fn apply(&self) -> panderm_edge::Result<Option<Board>> {
        let board = self.board.as_deref().map(Board::resolve).transpose()?;
        if let Some(b) = &board {
            b.apply()?;
        }
        if let Some(n) = self.threads {
            panderm_edge::engine::set_threads(n)?;
        }
        Ok(board)
    }

    /// The thread count in effect: `--threads`, else the board's, else 1.
    pub fn threads_in_effect(&self, board: Option<&Board>) -> usize {
        self.threads.or(board.map(|b| b.cpu.threads as usize)).unwrap_or(1)
    }
}

/// `--trusted-key`, shared by every command that opens a bundle.
#[derive(clap::Args, Debug, Default)]
pub struct TrustArgs {
    /// Public key (`KEY.pub` from `panderm-tools keygen`) allowed to sign bundles; repeatable.
    /// With any trusted key (here or in the board profile's `trusted_keys`), an unsigned bundle or
    /// a bad signature is refused before any model byte is parsed.
    #[arg(long = "trusted-key", value_name = "KEY.pub")]
    pub trusted_keys: Vec<PathBuf>,
}

impl TrustArgs {
    /// The keys given here plus the board profile's.
    pub fn trust(&self, board: Option<&Board>) -> panderm_edge::Result<Trust> {
        let mut trust = Trust::read(&self.trusted_keys)?;
        if let Some(b) = board {
            trust.extend(b.trust()?);
        }
        Ok(trust)
    }
}

/// `--backend`, `--ort-library`, `--providers`: which engine runs a model (every command that runs
/// one: part of [`BoardArgs`]). Each overrides the board profile's `[accelerator]`.
#[derive(clap::Args, Debug, Default)]
pub struct EngineArgs {
    /// The engine: tract, or ONNX Runtime (`ort`: a build with the cargo feature `ort` and a
    /// libonnxruntime.so 1.17+, see --ort-library). Default: the board profile's
    /// `accelerator.backend`, else tract.
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// libonnxruntime.so for --backend ort (default: the board profile's `accelerator.library`,
    /// else $ORT_DYLIB_PATH).
    #[arg(long, value_name = "PATH")]
    pub ort_library: Option<PathBuf>,
    /// Execution providers for --backend ort, in order (`cpu` allows ONNX Runtime's CPU; default:
    /// the board profile's `accelerator.providers`, else `cpu`).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub providers: Vec<Provider>,
}

impl EngineArgs {
    /// The engine to load with (ONNX Runtime with `threads` intra-op threads): these flags, then
    /// the board profile's `[accelerator]`, then tract. The fallback to tract comes only from a
    /// profile (a deliberate, per-device decision).
    pub fn backend(&self, threads: usize, board: Option<&Board>) -> Result<Backend, String> {
        let acc = board.and_then(|b| b.accelerator.as_ref());
        match self.backend.or(acc.map(|a| a.backend)).unwrap_or_default() {
            BackendKind::Tract => Ok(Backend::Tract),
            BackendKind::Ort => {
                let library = self
                    .ort_library
                    .clone()
                    .or_else(|| acc.and_then(|a| a.library.clone()))
                    .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
                    .ok_or(
                        "--backend ort needs the libonnxruntime.so to load: --ort-library PATH, the board profile's accelerator.library, or ORT_DYLIB_PATH",
                    )?;
                let providers = if !self.providers.is_empty() {
                    self.providers.clone()
                } else {
                    acc.filter(|a| !a.providers.is_empty()).map_or_else(|| vec![Provider::Cpu], |a| a.providers.clone())
                };
                let fallback = acc.filter(|a| a.backend == BackendKind::Ort).map(|a| a.fallback).unwrap_or_default();
                Ok(Backend::Ort { library, providers, threads, fallback })
            }
        }
    }
}

/// What every classifying command does first: apply the board profile (threads), collect the
/// trusted keys, load the bundle (signature checked before anything is parsed, every file
/// verified), and check the bundle's backbone against the board (warnings printed).
pub fn load_classifier(
    bundle: &Path,
    board_args: &BoardArgs,
    trust_args: &TrustArgs,
) -> panderm_edge::Result<(Classifier, Option<Board>)> {
    let board = board_args.apply()?;
    let trust = trust_args.trust(board.as_ref())?;
    let engine = board_args
        .engine
        .backend(board_args.threads_in_effect(board.as_ref()), board.as_ref())
        .map_err(|e| panderm_edge::Error::new(panderm_edge::ErrorKind::InvalidInput, e))?;
    let classifier = Classifier::load_with_engine(bundle, &trust, board.as_ref().map(|b| b.model.precision), &engine)?;
    if let Some(b) = &board {
        let spec = &classifier.bundle().manifest.backbone;
        if let Some(warning) = b.check_backbone(&spec.variant, classifier.backbone_precision())? {
            eprintln!("warning: {warning}");
        }
    }
    Ok((classifier, board))
}
