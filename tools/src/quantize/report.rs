//! The accuracy report of a quantization run: printed after writing, and saved as JSON next
//! to the output (`MODEL.int8.onnx.quant.json`).

use serde::Serialize;

use super::Scheme;
use super::calib::SkippedImage;

pub use panderm_edge::stats::cosine;

/// Min / median / mean of per-image cosines.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CosineStats {
    /// Smallest.
    pub min: f64,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl CosineStats {
    /// Statistics of `v` (all zeros when empty).
    pub fn of(v: &[f64]) -> CosineStats {
        if v.is_empty() {
            return CosineStats { min: 0.0, median: 0.0, mean: 0.0 };
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 { s[n / 2] } else { 0.5 * (s[n / 2 - 1] + s[n / 2]) };
        CosineStats { min: s[0], median, mean: s.iter().sum::<f64>() / n as f64 }
    }
}

/// One image's cosine between the int8 and fp32 outputs.
#[derive(Debug, Clone, Serialize)]
pub struct ImageCosine {
    /// Image name.
    pub image: String,
    /// Cosine.
    pub cosine: f64,
}

/// How well a task head's predictions survive quantization of the backbone.
#[derive(Debug, Clone, Serialize)]
pub struct HeadAgreement {
    /// Head name (`classifier` for a fine-tuned model's own softmax).
    pub head: String,
    /// Images whose top-1 class is the same with int8 and fp32 features.
    pub top1_agree: usize,
    /// Images compared.
    pub images: usize,
    /// `top1_agree / images`.
    pub top1_agreement: f64,
    /// Largest `|p_int8 − p_fp32|` over all images and classes.
    pub max_abs_prob_change: f64,
}

/// Accuracy of the int8 model against the fp32 model on one image set.
#[derive(Debug, Clone, Serialize)]
pub struct SetAccuracy {
    /// Where the images came from.
    pub source: String,
    /// Images used.
    pub images: usize,
    /// Image files that could not be read (skipped).
    pub skipped: Vec<SkippedImage>,
    /// SHA-256 of the set's listing (see [`super::calib::ImageSet::list_sha256`]).
    pub list_sha256: String,
    /// Cosine between int8 and fp32 outputs (features, or logits for a classifier).
    pub cosine: CosineStats,
    /// Per-image cosines.
    pub per_image: Vec<ImageCosine>,
    /// Per task head.
    pub heads: Vec<HeadAgreement>,
}

/// One activation clipping candidate of the static scheme, scored on the calibration set.
#[derive(Debug, Clone, Serialize)]
pub struct ClipCandidate {
    /// `max` or `pXX.XX`.
    pub clip: String,
    /// The percentile of `|x|` used (100 = max).
    pub percentile: f64,
    /// Cosine vs fp32 on the calibration images.
    pub cosine: CosineStats,
}

/// Everything `quantize` measured and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct QuantReport {
    /// The fp32 input.
    pub input: String,
    /// The int8 output.
    pub output: String,
    /// The JSON report file.
    pub report_file: String,
    /// Scheme.
    pub scheme: Scheme,
    /// `panderm.quantization` value written.
    pub quantization: String,
    /// `features` or `classifier`.
    pub kind: String,
    /// `panderm.variant` of the input.
    pub variant: String,
    /// Weight MatMuls rewritten to `MatMulInteger`.
    pub matmuls: usize,
    /// Activation quantizers inserted (one per distinct MatMul input; q, k, v share one).
    pub activation_quantizers: usize,
    /// Weight values now stored as int8.
    pub int8_weights: usize,
    /// Size of the input file.
    pub input_bytes: u64,
    /// Size of the output file.
    pub output_bytes: u64,
    /// `output_bytes / input_bytes`.
    pub size_ratio: f64,
    /// Static scheme: the clipping chosen (`max` or `pXX.XX`).
    pub clip: Option<String>,
    /// Static scheme: every candidate tried.
    pub candidates: Vec<ClipCandidate>,
    /// Accuracy on the calibration images.
    pub calibration: SetAccuracy,
    /// Accuracy on the held-out evaluation images (`--eval`).
    pub evaluation: Option<SetAccuracy>,
    /// Things the user should know (e.g. a bundle whose backbone is another file).
    pub warnings: Vec<String>,
    /// Wall time of the whole run.
    pub seconds: f64,
}

fn write_set(f: &mut std::fmt::Formatter<'_>, what: &str, s: &SetAccuracy) -> std::fmt::Result {
    let c = &s.cosine;
    writeln!(
        f,
        "{what:<12} {} images: cosine int8 vs fp32 min {:.5}  median {:.5}  mean {:.5}{}",
        s.images,
        c.min,
        c.median,
        c.mean,
        if s.skipped.is_empty() { String::new() } else { format!("  ({} unreadable skipped)", s.skipped.len()) }
    )?;
    for h in &s.heads {
        writeln!(
            f,
            "{:<12}   head {}: top-1 agreement {}/{} ({:.1}%), max |Δp| {:.4}",
            "",
            h.head,
            h.top1_agree,
            h.images,
            100.0 * h.top1_agreement,
            h.max_abs_prob_change
        )?;
    }
    Ok(())
}

impl std::fmt::Display for QuantReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "quantized:   {} -> {} ({}, {} {})",
            self.input, self.output, self.quantization, self.variant, self.kind
        )?;
        writeln!(
            f,
            "matmuls:     {} weight MatMuls -> MatMulInteger ({} activation quantizers); attention, LayerNorm, Softmax, GELU and the patch Conv stay fp32",
            self.matmuls, self.activation_quantizers
        )?;
        writeln!(
            f,
            "size:        {:.1} MB -> {:.1} MB ({:.3}x)",
            self.input_bytes as f64 / 1e6,
            self.output_bytes as f64 / 1e6,
            self.size_ratio
        )?;
        writeln!(f, "calibration: {} (list sha256 {})", self.calibration.source, self.calibration.list_sha256)?;
        for s in &self.calibration.skipped {
            writeln!(f, "  skipped:   {}: {}", s.file, s.reason)?;
        }
        if !self.candidates.is_empty() {
            let tried: Vec<String> =
                self.candidates.iter().map(|c| format!("{} mean cos {:.5}", c.clip, c.cosine.mean)).collect();
            writeln!(f, "clipping:    {} -> chose {}", tried.join(", "), self.clip.as_deref().unwrap_or("?"))?;
        }
        write_set(f, "calibration:", &self.calibration)?;
        if let Some(e) = &self.evaluation {
            writeln!(f, "evaluation:  {} (list sha256 {})", e.source, e.list_sha256)?;
            for s in &e.skipped {
                writeln!(f, "  skipped:   {}: {}", s.file, s.reason)?;
            }
            write_set(f, "evaluation:", e)?;
        }
        for w in &self.warnings {
            writeln!(f, "warning:     {w}")?;
        }
        write!(f, "report:      {} ({:.1} s)", self.report_file, self.seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_cosine() {
        let s = CosineStats::of(&[0.9, 1.0, 0.95, 0.97]);
        assert_eq!(s.min, 0.9);
        assert!((s.median - 0.96).abs() < 1e-12);
        assert!((s.mean - 0.955).abs() < 1e-12);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }
}
