//! `panderm batch`: classify a folder of photos into results.csv, results.jsonl and a
//! self-contained report.html; re-runs only process new or changed files; `--watch` keeps
//! polling the folder.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use panderm_edge::batch::{BatchConfig, BatchRunner, Progress, REPORT_HTML, RunSummary};
use panderm_edge::classify::{DEMO_NOTICE, EXIT_MODEL_ERROR};

use crate::{BoardArgs, TrustArgs, fail, load_classifier};

#[derive(clap::Args)]
pub struct BatchArgs {
    /// The bundle directory (manifest.toml + model files).
    #[arg(long)]
    bundle: PathBuf,
    /// Output folder for results.csv, results.jsonl, report.html (created if missing; results of
    /// earlier runs there are kept and only new or changed images are processed).
    #[arg(long)]
    out: PathBuf,
    /// How many classes to report per head.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    #[command(flatten)]
    board: BoardArgs,
    #[command(flatten)]
    trust: TrustArgs,
    /// Keep polling the folder and process photos as they appear, until Ctrl-C. A file is
    /// processed once its size and modification time are unchanged between two polls.
    #[arg(long)]
    watch: bool,
    /// Seconds between polls in --watch mode.
    #[arg(long, default_value = "2", value_name = "SECS", value_parser = parse_interval, requires = "watch")]
    interval: Duration,
    /// The folder of photos (JPEG, PNG, BMP, TIFF, WebP; not searched recursively).
    input: PathBuf,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && (0.05..=86_400.0).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("`{s}` is not a number of seconds between 0.05 and 86400")),
    }
}

/// An indicatif bar on stderr, only for runs of more than one image (and only drawn when stderr
/// is a terminal).
#[derive(Default)]
struct Bar(Option<ProgressBar>);

impl Progress for Bar {
    fn start(&mut self, total: usize) {
        if total > 1 {
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} {wide_msg}") {
                bar.set_style(style);
            }
            self.0 = Some(bar);
        }
    }

    fn advance(&mut self, file: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(file.to_owned());
            bar.inc(1);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

fn print_run(summary: &RunSummary, args: &BatchArgs) {
    for e in &summary.errors {
        eprintln!("failed: {e}");
    }
    println!("{summary} (report: {})", args.out.join(REPORT_HTML).display());
}

pub fn batch(args: BatchArgs) -> ExitCode {
    let (classifier, _board) = match load_classifier(&args.bundle, &args.board, &args.trust) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let config = BatchConfig { input_dir: args.input.clone(), out_dir: args.out.clone(), top_k: args.top_k };
    let mut runner = match BatchRunner::open(&classifier, config) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    for w in runner.state_warnings() {
        eprintln!("warning: {w}");
    }
    if classifier.bundle().manifest.bundle.demo {
        eprintln!("note: {DEMO_NOTICE}");
    }
    let mut bar = Bar::default();
    if !args.watch {
        return match runner.run_once(&mut bar) {
            Ok(summary) => {
                print_run(&summary, &args);
                if summary.model_errors_new > 0 {
                    eprintln!(
                        "error: {} image(s) got \"cannot assess (model error)\": the bundle's model produced unusable \
                         numbers; stop using it",
                        summary.model_errors_new
                    );
                    ExitCode::from(EXIT_MODEL_ERROR)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => fail(e),
        };
    }
    eprintln!(
        "watching {} every {:.2?}; results in {}; Ctrl-C to stop (outputs are always complete)",
        args.input.display(),
        args.interval,
        args.out.display()
    );
    let mut last_error = String::new();
    loop {
        match runner.poll(&mut bar) {
            Ok(summary) => {
                last_error.clear();
                if summary.new > 0 {
                    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                    println!("{now} processed: {}", summary.processed.join(", "));
                    print_run(&summary, &args);
                }
            }
            // The folder may come back (a re-mounted card): keep polling, say it once.
            Err(e) => {
                let msg = e.to_string();
                if msg != last_error {
                    eprintln!("warning: {msg}; still watching");
                    last_error = msg;
                }
            }
        }
        std::thread::sleep(args.interval);
    }
}
