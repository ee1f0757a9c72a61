//! `panderm run`: an ONNX model on images, outputs printed as text or JSON lines.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use panderm_edge::backend;
use panderm_edge::classify::EXIT_MODEL_ERROR;
use panderm_edge::engine::ModelOptions;
use panderm_edge::preprocess::{PreprocessConfig, preprocess_file};
use panderm_edge::run_report::{RunRecord, human_summary};

use crate::{BoardArgs, fail};

#[derive(clap::Args)]
pub struct RunArgs {
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
    #[command(flatten)]
    board: BoardArgs,
    /// Images (JPEG, PNG, BMP, TIFF, WebP).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(args: RunArgs) -> ExitCode {
    let board = match args.board.apply() {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let backend = match args.board.engine.backend(args.board.threads_in_effect(board.as_ref()), board.as_ref()) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let started = Instant::now();
    let model = match backend::load(&args.model, &ModelOptions::default(), &backend) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    if args.timings {
        eprintln!(
            "timing: model loaded and optimized in {:.3} s by {}",
            started.elapsed().as_secs_f64(),
            model.engine()
        );
    }
    let cfg = PreprocessConfig { apply_exif_orientation: args.exif_orientation, ..PreprocessConfig::default() };
    let mut failures = 0usize;
    let mut model_error = false;
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
                if let Some(o) = outputs.iter().find(|o| o.values.iter().any(|v| !v.is_finite())) {
                    // Raw outputs are printed for inspection, but never pass as a result.
                    eprintln!(
                        "error: {shown}: output `{}` holds NaN or Inf: the model is broken (exit {EXIT_MODEL_ERROR})",
                        o.name
                    );
                    model_error = true;
                }
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
    if model_error {
        ExitCode::from(EXIT_MODEL_ERROR)
    } else if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `panderm info --model FILE`: the interface, the engine that loaded it (for ONNX Runtime with its
/// providers and node placement) and the ONNX metadata.
pub fn model_info(path: &std::path::Path, backend: &backend::Backend) -> ExitCode {
    match backend::load(path, &ModelOptions::default(), backend) {
        Ok(m) => {
            println!("model:   {}", m.path().display());
            println!(
                "input:   {} [N,{}]",
                m.input_name(),
                m.sample_shape().iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")
            );
            println!("outputs: {}", m.output_names().join(", "));
            println!("engine:  {}", m.engine());
            let kernels = m.kernels();
            if !kernels.is_empty() {
                println!("kernels: {}", kernels.join(", "));
            }
            for (k, v) in m.metadata() {
                println!("  {k}: {v}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
