//! Image-quality gate: cheap checks on the decoded RGB photo, **before** the resize of the
//! eval transform, so that a photo that cannot give a meaningful result (too small, out of
//! focus, blown out, too dark, not skin) is flagged before (or alongside) inference.
//!
//! Every check yields a [`CheckResult`] with a stable reason code ([`TOO_SMALL`],
//! [`OUT_OF_FOCUS`], [`OVEREXPOSED`], [`UNDEREXPOSED`], [`NOT_SKIN`]), the measured value,
//! the threshold it was compared with and its own time.
//!
//! # The working image
//!
//! All checks except `too-small` run on a **working image** whose shorter side is
//! [`WORKING_SHORT_SIDE`] (256) pixels, computed by area averaging (an integer box
//! reduction over the full-resolution pixels, then a fractional area resample to exactly
//! 256). This makes the measures independent of the camera resolution (a 12-megapixel and a
//! 3-megapixel photo of the same scene give nearly the same sharpness) and cheap (the
//! full-resolution pixels are read once, with integer additions only). 256 is the size the
//! eval transform resizes to, so the gate judges the detail the model actually sees. Images
//! whose shorter side is already below 256 are measured at their own resolution (no
//! upscaling); they are at most 12 % off the working scale when they pass `too-small` (224).
//! Box averaging also removes most sensor and JPEG noise, which keeps the colour and
//! clipping measures stable. The integer box reduction (factor `f = ⌊short / 256⌋`) drops
//! the last `w mod f` columns and `h mod f` rows, under 1/256 of each side. The sharpness
//! measure skips clipped pixels (see [`WorkingImage::sharpness`]): a blown-out or crushed
//! area has no detail to judge and is reported by the exposure checks instead.
//!
//! Luma is ITU-R BT.601 (`Y = 0.299 R + 0.587 G + 0.114 B`), the JPEG/JFIF definition, with
//! the matching Cb/Cr (full range, offset 128).
//!
//! # Learned skin check (hook)
//!
//! A bundle may later carry a skin/not-skin head that runs on the shared backbone feature.
//! That is not implemented: when it is, run the head after the backbone and call
//! [`QualityReport::override_check`] with a [`NOT_SKIN`] result (value: P(skin), threshold:
//! the head's operating point); it replaces the colour-based check in the report.

use std::time::Instant;

use image::RgbImage;
use serde::{Deserialize, Serialize, Serializer, ser::SerializeStruct};

use crate::error::{Error, ErrorKind, Result};
use crate::manifest_range::check;

/// Reason code: the shorter side is below [`QualityThresholds::min_short_side`].
pub const TOO_SMALL: &str = "too-small";
/// Reason code: the (exposure-normalised) variance of the Laplacian is below
/// [`QualityThresholds::min_laplacian_var`].
pub const OUT_OF_FOCUS: &str = "out-of-focus";
/// Reason code: too many pixels at or above [`QualityThresholds::bright_clip_luma`].
pub const OVEREXPOSED: &str = "overexposed";
/// Reason code: too many pixels at or below [`QualityThresholds::dark_clip_luma`].
pub const UNDEREXPOSED: &str = "underexposed";
/// Reason code: too few skin-coloured pixels (see [`is_skin_colour`]).
pub const NOT_SKIN: &str = "not-skin";

/// Every reason code, in the order the checks run and appear in a report.
pub const ALL_CODES: [&str; 5] = [TOO_SMALL, OUT_OF_FOCUS, OVEREXPOSED, UNDEREXPOSED, NOT_SKIN];

/// Shorter side of the working image the pixel checks run on (see the module docs).
pub const WORKING_SHORT_SIDE: u32 = 256;

/// A human-readable text for a reason code ("image out of focus", …); unknown codes get a
/// generic text.
pub fn describe(code: &str) -> &'static str {
    match code {
        TOO_SMALL => "image too small",
        OUT_OF_FOCUS => "image out of focus",
        OVEREXPOSED => "image overexposed",
        UNDEREXPOSED => "image underexposed",
        NOT_SKIN => "image does not look like skin",
        _ => "image quality check failed",
    }
}

/// The gate's thresholds. Embedded in a bundle manifest as an optional `[quality]` table;
/// absent keys take the defaults below, unknown keys are refused.
///
/// A check is effectively disabled by its permissive extreme: `min_short_side = 0`,
/// `min_laplacian_var = 0`, `max_clipped_fraction = 1`, `min_skin_fraction = 0`.
///
/// The defaults were chosen from values measured by `tests/quality_gate.rs` on the clinical
/// fixture `clinical_forearm_iphone14.jpg` (1528 × 1360, a well-exposed forearm) and images
/// derived from it; each field's documentation gives the numbers. They are deliberately
/// lenient: the gate is meant to catch clearly unusable photos, and every default leaves a
/// wide margin for the fixture and for the darkest skin tone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityThresholds {
    /// Smallest accepted shorter side, in pixels. Default **224**: the model's input crop; a
    /// smaller photo has to be upscaled and carries less detail than the model was trained
    /// on. (Fixture: 1360; the 150 × 200 crop in the test: 150.)
    pub min_short_side: u32,
    /// Smallest accepted sharpness: the variance of the 3 × 3 Laplacian of the working
    /// image's luma over unclipped pixels, normalised to a mean luma of 128
    /// ([`WorkingImage::sharpness`]). Default **10**.
    ///
    /// Measured: fixture 45.1 (the same photo at half size 51.1, upscaled ×2 42.9, upscaled
    /// to 4000 × 3000 40.1: the working image makes it resolution-independent); Gaussian
    /// blur of the fixture with σ = 1, 2, 3, 4, 6, 8 px: 37.8, 24.3, 13.9, 7.5, 2.3, 0.79.
    /// σ = 4 px is ≈ 0.75 px at the working (and model) scale, visibly soft at the model's
    /// input; σ ≤ 3 is not. The fixture recoloured to the darkest Monk skin tone: 46.3;
    /// darkened ×0.1: 41.4 (the normalisation keeps dark skin and dim photos from reading as
    /// blur). A 150 × 200 crop measured at its own resolution: 17.1.
    pub min_laplacian_var: f64,
    /// Luma at or above which a working-image pixel counts as blown out. Default **250**
    /// (the lightest Monk skin tone, MST-1, has luma 238.7 and stays below).
    pub bright_clip_luma: u8,
    /// Luma at or below which a working-image pixel counts as crushed black. Default **16**,
    /// the black level of ITU-R BT.601 (video black): below it a JPEG keeps almost no
    /// detail. Measured fractions at ≤ 16: fixture 0.000; the fixture recoloured to MST-10
    /// (`#292420`, the darkest Monk tone) at the same exposure, mean luma 37: 0.000;
    /// darkened ×0.15: 0.001; darkened ×0.1 (mean luma 15.7): 0.568. (A level of 5 catches
    /// nothing on this fixture, even at ×0.1: 0.000.)
    pub dark_clip_luma: u8,
    /// Largest accepted fraction of blown-out pixels (`overexposed`) and, separately, of
    /// crushed pixels (`underexposed`). Default **0.25**: a photo with a tenth of the frame
    /// blown out is still usable. Measured blown-out fractions of the fixture brightened
    /// ×1.4, ×1.6, ×1.7, ×1.8, ×2: 0.0006, 0.106, 0.302, 0.554, 0.915; crushed fraction of
    /// the fixture darkened ×0.1: 0.568.
    pub max_clipped_fraction: f64,
    /// Smallest accepted fraction of skin-coloured working-image pixels
    /// ([`is_skin_colour`]). Default **0.15**, far below any photo framed on skin. Measured:
    /// fixture 1.000; recoloured to the darkest Monk tone 1.000; darkened ×0.1 1.000;
    /// brightened ×1.8 0.742; a synthetic sky-and-foliage scene 0.000; a grey text page 0.000.
    pub min_skin_fraction: f64,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        QualityThresholds {
            min_short_side: 224,
            min_laplacian_var: 10.0,
            bright_clip_luma: 250,
            dark_clip_luma: 16,
            max_clipped_fraction: 0.25,
            min_skin_fraction: 0.15,
        }
    }
}

impl QualityThresholds {
    /// Refuses impossible values: a negative or non-finite sharpness, fractions outside
    /// [0, 1], a dark clip level not below the bright one.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::new(ErrorKind::InvalidInput, format!("[quality] {msg}")));
        let checks = [
            ("min_laplacian_var", self.min_laplacian_var, 0.0..=f64::MAX, "a Laplacian variance"),
            ("max_clipped_fraction", self.max_clipped_fraction, 0.0..=1.0, "a fraction of pixels"),
            ("min_skin_fraction", self.min_skin_fraction, 0.0..=1.0, "a fraction of pixels"),
        ];
        for (key, value, range, meaning) in checks {
            check("quality", key, value, range, meaning).map_err(|m| Error::new(ErrorKind::InvalidInput, m))?;
        }
        if self.dark_clip_luma >= self.bright_clip_luma {
            return bad(format!(
                "dark_clip_luma = {} must be below bright_clip_luma = {}",
                self.dark_clip_luma, self.bright_clip_luma
            ));
        }
        Ok(())
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// Stable reason code (one of [`ALL_CODES`], or a code added through
    /// [`QualityReport::override_check`]).
    pub code: &'static str,
    /// Whether the image passed this check.
    pub passed: bool,
    /// The measured value (pixels, normalised Laplacian variance, or a fraction).
    pub value: f64,
    /// The threshold `value` was compared with.
    pub threshold: f64,
    /// Time this check took, in milliseconds (excluding the shared working-image reduction).
    pub ms: f64,
}

impl CheckResult {
    /// The human text for this check's code ("image out of focus", …).
    pub fn message(&self) -> &'static str {
        describe(self.code)
    }

    /// One line with the message, value and threshold, e.g.
    /// `image out of focus (sharpness 3.2 < 15)`.
    pub fn detail(&self) -> String {
        let (what, cmp) = match self.code {
            TOO_SMALL => ("shorter side", if self.passed { ">=" } else { "<" }),
            OUT_OF_FOCUS => ("sharpness", if self.passed { ">=" } else { "<" }),
            OVEREXPOSED => ("blown-out fraction", if self.passed { "<=" } else { ">" }),
            UNDEREXPOSED => ("crushed-black fraction", if self.passed { "<=" } else { ">" }),
            NOT_SKIN => ("skin fraction", if self.passed { ">=" } else { "<" }),
            _ => ("value", "vs"),
        };
        let text = if self.passed { "passed" } else { self.message() };
        format!("{text} ({what} {} {cmp} {})", fmt_num(self.value), fmt_num(self.threshold))
    }
}

/// Up to 4 significant decimals, without trailing zeros.
fn fmt_num(v: f64) -> String {
    let s = if v.abs() >= 100.0 { format!("{v:.1}") } else { format!("{v:.4}") };
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// The gate's report: every check's result plus timings.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityReport {
    /// Input width in pixels.
    pub width: u32,
    /// Input height in pixels.
    pub height: u32,
    /// Working-image width (see the module docs).
    pub working_width: u32,
    /// Working-image height.
    pub working_height: u32,
    /// Time to build the working image, in milliseconds (shared by the pixel checks).
    pub downscale_ms: f64,
    /// The checks, in the order of [`ALL_CODES`].
    pub checks: Vec<CheckResult>,
    /// Total gate time in milliseconds (working image plus every check).
    pub total_ms: f64,
}

impl QualityReport {
    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The reason codes of the failed checks, in check order.
    pub fn flags(&self) -> Vec<&'static str> {
        self.checks.iter().filter(|c| !c.passed).map(|c| c.code).collect()
    }

    /// One human line per failed check ([`CheckResult::detail`]), in check order.
    pub fn warnings(&self) -> Vec<String> {
        self.checks.iter().filter(|c| !c.passed).map(CheckResult::detail).collect()
    }

    /// The result of the check with this code, if it ran.
    pub fn check(&self, code: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.code == code)
    }

    /// Replaces the check with the same code (or appends it) and adds its time to
    /// [`total_ms`](Self::total_ms). The hook for checks computed elsewhere, e.g. a learned
    /// skin head run on the backbone feature (see the module docs).
    pub fn override_check(&mut self, result: CheckResult) {
        self.total_ms += result.ms;
        match self.checks.iter_mut().find(|c| c.code == result.code) {
            Some(slot) => *slot = result,
            None => self.checks.push(result),
        }
    }

    /// A short multi-line summary: `quality: ok` or one line per failed check.
    pub fn human(&self) -> String {
        if self.is_ok() {
            format!("quality: ok ({:.1} ms)", self.total_ms)
        } else {
            let mut s = format!("quality: {} ({:.1} ms)", self.flags().join(", "), self.total_ms);
            for w in self.warnings() {
                s.push_str("\n  ");
                s.push_str(&w);
            }
            s
        }
    }
}

impl Serialize for QualityReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("QualityReport", 9)?;
        s.serialize_field("ok", &self.is_ok())?;
        s.serialize_field("flags", &self.flags())?;
        s.serialize_field("checks", &self.checks)?;
        s.serialize_field("width", &self.width)?;
        s.serialize_field("height", &self.height)?;
        s.serialize_field("working_width", &self.working_width)?;
        s.serialize_field("working_height", &self.working_height)?;
        s.serialize_field("downscale_ms", &self.downscale_ms)?;
        s.serialize_field("total_ms", &self.total_ms)?;
        s.end()
    }
}

/// Runs every check on a decoded RGB image (before any resize). Never fails; validate the
/// thresholds once with [`QualityThresholds::validate`] (out-of-range thresholds only make
/// checks pass or fail trivially).
pub fn assess(image: &RgbImage, thresholds: &QualityThresholds) -> QualityReport {
    let start = Instant::now();
    let (width, height) = image.dimensions();
    let mut checks = Vec::with_capacity(ALL_CODES.len());

    let t = Instant::now();
    let short = width.min(height);
    let min_side = thresholds.min_short_side;
    checks.push(result(TOO_SMALL, short >= min_side, f64::from(short), f64::from(min_side), t));

    let t = Instant::now();
    let work = WorkingImage::from_rgb(image);
    let downscale_ms = ms_since(t);

    let t = Instant::now();
    let sharpness = work.sharpness(thresholds.dark_clip_luma, thresholds.bright_clip_luma);
    checks.push(result(
        OUT_OF_FOCUS,
        sharpness >= thresholds.min_laplacian_var,
        sharpness,
        thresholds.min_laplacian_var,
        t,
    ));

    let max_clip = thresholds.max_clipped_fraction;
    let t = Instant::now();
    let bright = work.fraction(|y| y >= f32::from(thresholds.bright_clip_luma));
    checks.push(result(OVEREXPOSED, bright <= max_clip, bright, max_clip, t));

    let t = Instant::now();
    let dark = work.fraction(|y| y <= f32::from(thresholds.dark_clip_luma));
    checks.push(result(UNDEREXPOSED, dark <= max_clip, dark, max_clip, t));

    let t = Instant::now();
    let skin = work.skin_fraction();
    checks.push(result(NOT_SKIN, skin >= thresholds.min_skin_fraction, skin, thresholds.min_skin_fraction, t));

    QualityReport {
        width,
        height,
        working_width: work.width,
        working_height: work.height,
        downscale_ms,
        checks,
        total_ms: ms_since(start),
    }
}

fn result(code: &'static str, passed: bool, value: f64, threshold: f64, t: Instant) -> CheckResult {
    CheckResult { code, passed, value, threshold, ms: ms_since(t) }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Whether an RGB colour (0–255 per channel, sRGB as decoded) lies in the skin-colour
/// region the `not-skin` check counts.
///
/// The region is the YCbCr chroma box of Chai & Ngan (D. Chai, K. N. Ngan, "Face
/// segmentation using skin-color map in videophone applications", IEEE Trans. Circuits Syst.
/// Video Technol. 9(4), 1999: Cb ∈ [77, 127], Cr ∈ [133, 173]), **widened conservatively**
/// so that dark and very light skin are not rejected:
///
/// * Chroma shrinks towards neutral as luma falls (Hsu, Abdel-Mottaleb & Jain, "Face
///   detection in color images", IEEE TPAMI 24(5), 2002, model this with a luma-dependent
///   transform of the skin cluster). We use a simpler version: for pixels darker than
///   Y = 128, the chroma offsets `Cb − 128`, `Cr − 128` are scaled by `128 / max(Y, 16)`
///   before the box test, which also makes the test independent of exposure for them.
///   Without it the darkest Monk Skin Tone swatch (MST-10 `#292420`, Cr ≈ 130.8) falls
///   outside Chai & Ngan's box.
/// * Cr's lower bound is lowered from 133 to 130: the lightest swatch (MST-1 `#f6ede4`) has
///   Cr ≈ 133.2 at full exposure and its chroma shrinks in proportion when it is photographed
///   darker (to Cr ≈ 130.8 at Y = 128, where the scaling above takes over). Neutral greys
///   (Cb = Cr = 128) stay outside.
/// * Cr's upper bound is raised from 173 to 180 as in Kukharev & Nowosielski (2004,
///   Cr ∈ (135, 180)), which keeps reddened (erythematous) skin and vascular lesions.
/// * No luma condition (Kukharev & Nowosielski's `Y > 80` would reject dark skin).
///
/// With these, all ten Monk Skin Tone swatches (Google, 2022; they span Fitzpatrick I–VI)
/// are skin at full, half and a third of their exposure (tested in
/// `tests/quality_gate.rs`). The price of the widening is that warm non-skin surfaces (wood,
/// beige paper, sand) also count as skin: the check is meant to catch clearly wrong photos
/// (documents, screens, scenery), not to segment skin, and errs on the side of not rejecting
/// skin.
pub fn is_skin_colour(r: f32, g: f32, b: f32) -> bool {
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    let mut cb = -0.168_736 * r - 0.331_264 * g + 0.5 * b;
    let mut cr = 0.5 * r - 0.418_688 * g - 0.081_312 * b;
    if y < 128.0 {
        let gain = 128.0 / y.max(16.0);
        cb *= gain;
        cr *= gain;
    }
    (-51.0..=-1.0).contains(&cb) && (2.0..=52.0).contains(&cr)
}

/// The Laplacian statistics behind the `out-of-focus` measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaplacianStats {
    /// Population variance of the Laplacian.
    pub variance: f64,
    /// Mean luma of the measured pixels.
    pub mean_luma: f64,
    /// Number of measured pixels.
    pub pixels: usize,
}

/// The area-averaged working image the pixel checks run on (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkingImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Interleaved RGB, 0–255 (fractional: area averages).
    pub rgb: Vec<f32>,
    /// BT.601 luma, row-major.
    pub luma: Vec<f32>,
}

impl WorkingImage {
    /// Reduces `image` to a shorter side of [`WORKING_SHORT_SIDE`] by area averaging (no
    /// upscaling: smaller images are kept at their size).
    pub fn from_rgb(image: &RgbImage) -> WorkingImage {
        let (w, h) = image.dimensions();
        let short = w.min(h);
        let factor = (short / WORKING_SHORT_SIDE).max(1);
        let (mut rgb, mut bw, mut bh) = box_reduce(image, factor);
        if bw.min(bh) > WORKING_SHORT_SIDE {
            // The long side follows the original aspect ratio (not the box-reduced one,
            // which lost up to `factor - 1` pixels per side).
            let long = (f64::from(w.max(h)) * f64::from(WORKING_SHORT_SIDE) / f64::from(short)).round() as u32;
            let long = long.clamp(WORKING_SHORT_SIDE, bw.max(bh));
            let (tw, th) = if w <= h { (WORKING_SHORT_SIDE, long) } else { (long, WORKING_SHORT_SIDE) };
            rgb = area_resample(&rgb, bw as usize, bh as usize, tw as usize, th as usize);
            (bw, bh) = (tw, th);
        }
        let luma = rgb.chunks_exact(3).map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]).collect();
        WorkingImage { width: bw, height: bh, rgb, luma }
    }

    /// Mean luma.
    pub fn mean_luma(&self) -> f64 {
        if self.luma.is_empty() {
            return 0.0;
        }
        self.luma.iter().map(|&y| f64::from(y)).sum::<f64>() / self.luma.len() as f64
    }

    /// Statistics of the 3 × 3 Laplacian (`[0 1 0; 1 −4 1; 0 1 0]`) of the luma over the
    /// interior pixels whose whole 5-pixel stencil lies strictly between `dark` and `bright`
    /// (clipped areas have no detail to judge; the exposure checks report them). Pass
    /// `(-1.0, 256.0)` to use every interior pixel.
    pub fn laplacian_stats(&self, dark: f32, bright: f32) -> LaplacianStats {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut stats = LaplacianStats { variance: 0.0, mean_luma: 0.0, pixels: 0 };
        if w < 3 || h < 3 {
            return stats;
        }
        let y = &self.luma;
        let ok: Vec<bool> = y.iter().map(|&v| v > dark && v < bright).collect();
        let (mut sum, mut sum2, mut luma_sum, mut n) = (0.0f64, 0.0f64, 0.0f64, 0usize);
        for r in 1..h - 1 {
            let rows = |k: usize| (&y[k * w..(k + 1) * w], &ok[k * w..(k + 1) * w]);
            let ((up, up_ok), (row, row_ok), (down, down_ok)) = (rows(r - 1), rows(r), rows(r + 1));
            let (mut s, mut s2, mut ls) = (0.0f32, 0.0f32, 0.0f32);
            for c in 1..w - 1 {
                if up_ok[c] && down_ok[c] && row_ok[c - 1] && row_ok[c] && row_ok[c + 1] {
                    let l = up[c] + down[c] + row[c - 1] + row[c + 1] - 4.0 * row[c];
                    s += l;
                    s2 += l * l;
                    ls += row[c];
                    n += 1;
                }
            }
            sum += f64::from(s);
            sum2 += f64::from(s2);
            luma_sum += f64::from(ls);
        }
        if n > 0 {
            let nf = n as f64;
            let mean = sum / nf;
            stats =
                LaplacianStats { variance: (sum2 / nf - mean * mean).max(0.0), mean_luma: luma_sum / nf, pixels: n };
        }
        stats
    }

    /// The `out-of-focus` measure: the Laplacian variance over the unclipped pixels
    /// ([`laplacian_stats`](Self::laplacian_stats)) normalised to a mean luma of 128,
    /// `var · (128 / max(mean, 1))²`; 0 when no pixel can be measured. A global exposure
    /// (or skin reflectance) gain `k` scales the Laplacian by `k` and its variance by `k²`;
    /// the normalisation cancels it, so dark skin and dim photos are not mistaken for blur.
    pub fn sharpness(&self, dark_clip: u8, bright_clip: u8) -> f64 {
        let stats = self.laplacian_stats(f32::from(dark_clip), f32::from(bright_clip));
        let gain = 128.0 / stats.mean_luma.max(1.0);
        stats.variance * gain * gain
    }

    /// Fraction of pixels whose luma satisfies `pred` (0 for an empty image).
    pub fn fraction(&self, pred: impl Fn(f32) -> bool) -> f64 {
        if self.luma.is_empty() {
            return 0.0;
        }
        self.luma.iter().filter(|&&y| pred(y)).count() as f64 / self.luma.len() as f64
    }

    /// Fraction of pixels in the skin-colour region ([`is_skin_colour`]).
    pub fn skin_fraction(&self) -> f64 {
        let n = self.rgb.len() / 3;
        if n == 0 {
            return 0.0;
        }
        self.rgb.chunks_exact(3).filter(|p| is_skin_colour(p[0], p[1], p[2])).count() as f64 / n as f64
    }
}

/// Averages `factor × factor` blocks of `image` (integer sums, one pass over the pixels).
/// Returns interleaved RGB f32 and the reduced size; trailing partial blocks are dropped.
fn box_reduce(image: &RgbImage, factor: u32) -> (Vec<f32>, u32, u32) {
    // Column sums of `factor` rows fit u16 up to 257 rows (257 · 255 < 65536): half the
    // accumulator traffic and twice the SIMD lanes of u32.
    if factor <= 257 { box_reduce_with::<u16>(image, factor) } else { box_reduce_with::<u32>(image, factor) }
}

fn box_reduce_with<A>(image: &RgbImage, factor: u32) -> (Vec<f32>, u32, u32)
where
    A: Copy + Default + std::ops::AddAssign + From<u8> + Into<u32>,
{
    let (w, h) = image.dimensions();
    let (ow, oh) = (w / factor, h / factor);
    let f = factor as usize;
    let stride = w as usize * 3;
    let used = ow as usize * f * 3;
    let raw = image.as_raw();
    let scale = 1.0 / (f * f) as f32;
    let mut out = Vec::with_capacity(ow as usize * oh as usize * 3);
    let mut acc = vec![A::default(); used];
    for oy in 0..oh as usize {
        acc.fill(A::default());
        for dy in 0..f {
            let start = (oy * f + dy) * stride;
            let row = &raw[start..start + used];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += A::from(p);
            }
        }
        for block in acc.chunks_exact(f * 3) {
            let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
            for px in block.chunks_exact(3) {
                r += px[0].into();
                g += px[1].into();
                b += px[2].into();
            }
            out.extend([r as f32 * scale, g as f32 * scale, b as f32 * scale]);
        }
    }
    (out, ow, oh)
}

/// For each output index, the first input index and the weights (summing to 1) of an area
/// (box) reduction from `src` to `dst ≤ src` samples.
fn area_weights(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let x0 = o as f64 * scale;
            let x1 = ((o + 1) as f64 * scale).min(src as f64);
            let first = x0.floor() as usize;
            let last = (x1.ceil() as usize).min(src);
            let weights = (first..last)
                .map(|i| (((i + 1) as f64).min(x1) - (i as f64).max(x0)).max(0.0) / scale)
                .map(|v| v as f32);
            (first, weights.collect())
        })
        .collect()
}

/// Separable area resample of interleaved RGB f32 from `sw × sh` to `dw × dh` (both ≤).
fn area_resample(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let xw = area_weights(sw, dw);
    let mut tmp = vec![0.0f32; dw * sh * 3];
    for y in 0..sh {
        let row = &src[y * sw * 3..(y + 1) * sw * 3];
        let out = &mut tmp[y * dw * 3..(y + 1) * dw * 3];
        for (o, (first, weights)) in xw.iter().enumerate() {
            let mut acc = [0.0f32; 3];
            for (k, &wt) in weights.iter().enumerate() {
                let p = &row[(first + k) * 3..(first + k) * 3 + 3];
                acc[0] += wt * p[0];
                acc[1] += wt * p[1];
                acc[2] += wt * p[2];
            }
            out[o * 3..o * 3 + 3].copy_from_slice(&acc);
        }
    }
    let yw = area_weights(sh, dh);
    let mut dst = vec![0.0f32; dw * dh * 3];
    for (o, (first, weights)) in yw.iter().enumerate() {
        let out = &mut dst[o * dw * 3..(o + 1) * dw * 3];
        for (k, &wt) in weights.iter().enumerate() {
            let row = &tmp[(first + k) * dw * 3..(first + k + 1) * dw * 3];
            for (d, &s) in out.iter_mut().zip(row) {
                *d += wt * s;
            }
        }
    }
    dst
}
