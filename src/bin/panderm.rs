//! `panderm`: the PanDerm Edge command line. Thin wrapper over the `panderm_edge` library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use panderm_edge::bundle::Bundle;
use panderm_edge::classify::Classifier;
use panderm_edge::engine::{Model, ModelOptions};
use panderm_edge::preprocess::{PreprocessConfig, preprocess_file};
use panderm_edge::run_report::{RunRecord, human_summary};

#[derive(Parser)]
#[command(
    name = "panderm",
    version,
    about = "Run the PanDerm dermatology foundation model on this device (no Python, no network)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an ONNX model on images with PanDerm's exact preprocessing and print its outputs.
    Run(RunArgs),
    /// Classify images with a bundle: the backbone runs once per image, every head on its feature.
    Classify(ClassifyArgs),
    /// Describe a bundle (and whether its files verify) or an ONNX model file.
    Info {
        /// A bundle directory.
        #[arg(long, conflicts_with = "model", required_unless_present = "model")]
        bundle: Option<PathBuf>,
        /// An ONNX model.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Verify every file digest of a bundle; non-zero exit on any mismatch.
    Verify {
        /// The bundle directory.
        #[arg(long)]
        bundle: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The ONNX model (e.g. written by `panderm-tools convert`).
    #[arg(long)]
    model: PathBuf,
    /// Print one JSON object per image and line: {"image": …, "outputs": {"<name>": [...]}}.
    #[arg(long)]
    json: bool,
    /// Rotate/flip images by their EXIF orientation tag first. Off by default because
    /// PanDerm ignored EXIF orientation in training and evaluation; turning it on breaks parity
    /// with PanDerm's reference features for rotated photos.
    #[arg(long)]
    exif_orientation: bool,
    /// Print load time and per-image preprocessing/inference times to stderr.
    #[arg(long)]
    timings: bool,
    /// Images (JPEG, PNG, BMP, TIFF, WebP).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct ClassifyArgs {
    /// The bundle directory (manifest.toml + model files).
    #[arg(long)]
    bundle: PathBuf,
    /// Print one JSON report per image and line.
    #[arg(long)]
    json: bool,
    /// How many classes to report per head.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// Images (JPEG, PNG, BMP, TIFF, WebP).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(args),
        Command::Classify(args) => classify(args),
        Command::Info { bundle: Some(b), .. } => bundle_info(&b),
        Command::Info { model: Some(m), .. } => info(&m),
        Command::Info { .. } => unreachable!("clap requires --bundle or --model"),
        Command::Verify { bundle } => verify(&bundle),
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

fn classify(args: ClassifyArgs) -> ExitCode {
    let classifier = match Classifier::load(&args.bundle) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
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

fn bundle_info(dir: &std::path::Path) -> ExitCode {
    let b = match Bundle::open(dir) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let m = &b.manifest;
    println!(
        "bundle:    {} {}{}",
        m.bundle.name,
        m.bundle.version,
        if m.bundle.demo { "  (PIPELINE DEMO, not a medical model)" } else { "" }
    );
    if !m.bundle.description.is_empty() {
        println!("           {}", m.bundle.description);
    }
    println!("created:   {}", m.bundle.created_by);
    println!(
        "backbone:  {} ({}, {:?}, output `{}` [{}], source sha256 {})",
        m.backbone.file,
        m.backbone.variant,
        m.backbone.kind,
        m.backbone.output,
        m.backbone.dim,
        m.backbone.source_sha256
    );
    for h in &m.heads {
        let thr = h.threshold.map(|t| format!(", threshold {t}")).unwrap_or_default();
        println!("head:      {} -> {} ({:?}, labels {}{thr})", h.name, h.file, h.task, h.labels.join("/"));
    }
    let checks = b.check_files();
    let bad = checks.iter().filter(|c| !c.ok()).count();
    println!(
        "verified:  {}",
        if bad == 0 {
            format!("yes ({} files)", checks.len())
        } else {
            format!("NO: {bad} of {} files do not match", checks.len())
        }
    );
    ExitCode::SUCCESS
}

fn verify(dir: &std::path::Path) -> ExitCode {
    let b = match Bundle::open(dir) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let mut bad = 0;
    for c in b.check_files() {
        let status = match &c.actual {
            Some(_) if c.ok() => "ok".to_owned(),
            Some(a) => format!("MISMATCH (file {a})"),
            None => "MISSING".to_owned(),
        };
        if !c.ok() {
            bad += 1;
        }
        println!("{:<40} {} {status}", c.file, c.expected);
    }
    if bad == 0 {
        println!("bundle verified");
        ExitCode::SUCCESS
    } else {
        fail(format!("{}: {bad} file(s) failed verification", dir.display()))
    }
}

fn run(args: RunArgs) -> ExitCode {
    let started = Instant::now();
    let model = match Model::load_with(&args.model, &ModelOptions::default()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.timings {
        eprintln!("timing: model loaded and optimized in {:.3} s", started.elapsed().as_secs_f64());
    }
    let cfg = PreprocessConfig { apply_exif_orientation: args.exif_orientation, ..PreprocessConfig::default() };
    let mut failures = 0usize;
    for path in &args.images {
        let shown = path.to_string_lossy();
        let t0 = Instant::now();
        let result = preprocess_file(path, &cfg).and_then(|t| {
            let t1 = Instant::now();
            let out = model.run(&[&t]);
            if args.timings {
                eprintln!(
                    "timing: {shown}: preprocess {:.1} ms, inference {:.1} ms",
                    (t1 - t0).as_secs_f64() * 1e3,
                    t1.elapsed().as_secs_f64() * 1e3
                );
            }
            out
        });
        match result {
            Ok(mut per_image) => {
                let outputs = per_image.remove(0);
                if args.json {
                    println!("{}", RunRecord::new(&shown, &outputs).to_json_line());
                } else {
                    print!("{}", human_summary(&shown, &outputs));
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

fn info(path: &std::path::Path) -> ExitCode {
    match Model::load(path) {
        Ok(m) => {
            println!("model:   {}", m.path().display());
            println!(
                "input:   {} [N,{}]",
                m.input_name(),
                m.sample_shape().iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")
            );
            println!("outputs: {}", m.output_names().join(", "));
            for (k, v) in m.metadata() {
                println!("  {k}: {v}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
