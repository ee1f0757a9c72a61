//! `panderm-tools quantize`: an fp32 PanDerm export to int8, with its accuracy report.

use std::path::PathBuf;

use panderm_tools::quantize::{CalibrationSource, HeadSource, QuantizeOptions, Scheme, quantize_file};

use crate::CmdResult;

#[derive(clap::Args)]
pub struct QuantizeArgs {
    /// The fp32 PanDerm export (`convert` output: feature extractor or fine-tuned classifier).
    model: PathBuf,
    /// Output ONNX file.
    #[arg(short, long)]
    output: PathBuf,
    /// Calibration images: every jpg/jpeg/png/bmp/tif/tiff/webp file in DIR (unreadable ones are
    /// skipped and counted). Default: a built-in set of --images synthetic skin-like images
    /// (panderm-tools synth-images generator, fixed seed; not medical data).
    #[arg(long, value_name = "DIR")]
    calibration: Option<PathBuf>,
    /// Number of built-in synthetic calibration images (without --calibration).
    #[arg(long, default_value_t = 16, conflicts_with = "calibration")]
    images: usize,
    /// Held-out evaluation images, reported separately (not used for calibration).
    #[arg(long, value_name = "DIR")]
    eval: Option<PathBuf>,
    /// Report top-1 agreement of this bundle's heads (digests verified).
    #[arg(long, value_name = "DIR", conflicts_with = "heads")]
    bundle: Option<PathBuf>,
    /// Report top-1 agreement of this head ONNX (`export-head` output; repeatable).
    #[arg(long = "head", value_name = "HEAD.onnx")]
    heads: Vec<PathBuf>,
    /// Activation scheme.
    #[arg(long, value_enum, default_value = "static-u8")]
    scheme: Scheme,
    /// Percentile of |x| tried against max|x| for the static activation scales; the better on
    /// the calibration set wins (repeatable).
    #[arg(long = "percentile", default_values_t = [99.99])]
    percentiles: Vec<f64>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: QuantizeArgs) -> CmdResult {
    let QuantizeArgs { model, output, calibration, images, eval, bundle, heads, scheme, percentiles, quiet } = args;
    let opts = QuantizeOptions {
        scheme,
        calibration: calibration.map_or(CalibrationSource::Synthetic(images), CalibrationSource::Dir),
        eval,
        heads: match bundle {
            Some(dir) => HeadSource::Bundle(dir),
            None if !heads.is_empty() => HeadSource::Files(heads),
            None => HeadSource::None,
        },
        percentiles,
        progress: !quiet,
    };
    println!("{}", quantize_file(&model, &output, &opts)?);
    Ok(())
}
