//! timm's `Mixup` in PanDerm's configuration (`mode='batch'`, `prob=1.0`, `switch_prob=0.5`,
//! `correct_lam=True`): one λ per batch; each image is mixed with the image at the mirrored
//! position of the batch (`x.flip(0)`), and so are the label-smoothed one-hot targets.
//!
//! * Mixup: `x ← λ·x + (1 − λ)·flip(x)`, λ ~ Beta(α_mixup, α_mixup).
//! * CutMix: a box of side `√(1 − λ)` times the image's, centred uniformly (clipped to the image),
//!   is copied from the mirrored image; λ ~ Beta(α_cutmix, α_cutmix), then corrected to the share
//!   of pixels kept.
//! * With both α > 0, CutMix is chosen with probability 0.5 per batch.
//! * Targets: `λ·smooth(y) + (1 − λ)·smooth(flip(y))` with timm's `on = 1 − s + s/K`,
//!   `off = s/K`.

use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Beta, Distribution};

use super::data::{IMAGE_LEN, SIDE};
use super::loss::soft_targets;

/// Mixup/CutMix strengths (0 disables each).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixupConfig {
    /// Mixup α.
    pub mixup: f64,
    /// CutMix α.
    pub cutmix: f64,
    /// Label smoothing folded into the targets.
    pub smoothing: f64,
}

impl MixupConfig {
    /// Whether Mixup/CutMix is on (PanDerm's `mixup_active`).
    pub fn active(&self) -> bool {
        self.mixup > 0.0 || self.cutmix > 0.0
    }
}

/// What one batch got (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mixed {
    /// The effective λ (after CutMix's area correction).
    pub lam: f64,
    /// Whether CutMix was used.
    pub cutmix: bool,
}

/// Mixes `pixels` (`[n, 3, 224, 224]`) in place and returns the soft targets `[n, k]`.
/// Needs an even batch, as timm asserts.
pub fn mix_batch(
    pixels: &mut [f32],
    labels: &[usize],
    k: usize,
    cfg: &MixupConfig,
    rng: &mut StdRng,
) -> (Vec<f32>, Mixed) {
    let n = labels.len();
    let (lam, use_cutmix) = draw_lambda(cfg, rng);
    let lam =
        if lam < 1.0 { if use_cutmix { cutmix(pixels, n, lam, rng) } else { blend(pixels, n, lam) } } else { lam };
    let y1 = soft_targets(labels, k, cfg.smoothing);
    let flipped: Vec<usize> = labels.iter().rev().copied().collect();
    let y2 = soft_targets(&flipped, k, cfg.smoothing);
    let targets = y1.iter().zip(&y2).map(|(a, b)| (f64::from(*a) * lam + f64::from(*b) * (1.0 - lam)) as f32).collect();
    (targets, Mixed { lam, cutmix: use_cutmix })
}

/// timm's `_params_per_batch`.
fn draw_lambda(cfg: &MixupConfig, rng: &mut StdRng) -> (f64, bool) {
    let beta = |a: f64, rng: &mut StdRng| Beta::new(a, a).map_or(1.0, |d| d.sample(rng));
    if cfg.mixup > 0.0 && cfg.cutmix > 0.0 {
        let use_cutmix = rng.random::<f64>() < 0.5;
        let a = if use_cutmix { cfg.cutmix } else { cfg.mixup };
        (beta(a, rng), use_cutmix)
    } else if cfg.mixup > 0.0 {
        (beta(cfg.mixup, rng), false)
    } else if cfg.cutmix > 0.0 {
        (beta(cfg.cutmix, rng), true)
    } else {
        (1.0, false)
    }
}

/// Mixup: every image blended with its mirror.
fn blend(pixels: &mut [f32], n: usize, lam: f64) -> f64 {
    let original = pixels.to_vec();
    let (l, r) = (lam as f32, (1.0 - lam) as f32);
    for i in 0..n {
        let j = n - 1 - i;
        let (dst, src) =
            (&mut pixels[i * IMAGE_LEN..(i + 1) * IMAGE_LEN], &original[j * IMAGE_LEN..(j + 1) * IMAGE_LEN]);
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *d * l + *s * r;
        }
    }
    lam
}

/// CutMix: one box for the batch, copied from the mirrored images; returns the corrected λ.
fn cutmix(pixels: &mut [f32], n: usize, lam: f64, rng: &mut StdRng) -> f64 {
    let (y0, y1, x0, x1) = rand_bbox(SIDE, SIDE, lam, rng);
    let original = pixels.to_vec();
    let plane = SIDE * SIDE;
    for i in 0..n {
        let j = n - 1 - i;
        for c in 0..3 {
            for y in y0..y1 {
                let row = c * plane + y * SIDE;
                let (a, b) = (i * IMAGE_LEN + row, j * IMAGE_LEN + row);
                pixels[a + x0..a + x1].copy_from_slice(&original[b + x0..b + x1]);
            }
        }
    }
    1.0 - ((y1 - y0) * (x1 - x0)) as f64 / (SIDE * SIDE) as f64
}

/// timm's `rand_bbox` (no margin): `(y_lo, y_hi, x_lo, x_hi)`.
pub fn rand_bbox(h: usize, w: usize, lam: f64, rng: &mut StdRng) -> (usize, usize, usize, usize) {
    let ratio = (1.0 - lam).sqrt();
    let (cut_h, cut_w) = ((h as f64 * ratio) as i64, (w as f64 * ratio) as i64);
    let cy = rng.random_range(0..h as i64);
    let cx = rng.random_range(0..w as i64);
    let clip = |v: i64, hi: usize| v.clamp(0, hi as i64) as usize;
    (clip(cy - cut_h / 2, h), clip(cy + cut_h / 2, h), clip(cx - cut_w / 2, w), clip(cx + cut_w / 2, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn targets_mix_with_the_mirrored_labels() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut px = vec![0f32; 2 * IMAGE_LEN];
        px[IMAGE_LEN..].fill(1.0);
        let cfg = MixupConfig { mixup: 0.8, cutmix: 0.0, smoothing: 0.0 };
        let (t, m) = mix_batch(&mut px, &[0, 1], 2, &cfg, &mut rng);
        assert!(!m.cutmix && m.lam > 0.0 && m.lam < 1.0);
        let lam = m.lam as f32;
        assert!((t[0] - lam).abs() < 1e-6 && (t[1] - (1.0 - lam)).abs() < 1e-6);
        // Image 0 (zeros) blended with image 1 (ones).
        assert!((px[0] - (1.0 - lam)).abs() < 1e-6 && (px[IMAGE_LEN] - lam).abs() < 1e-6);
    }

    #[test]
    fn cutmix_lambda_is_the_kept_share() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut px = vec![0f32; 2 * IMAGE_LEN];
        px[IMAGE_LEN..].fill(1.0);
        let cfg = MixupConfig { mixup: 0.0, cutmix: 1.0, smoothing: 0.1 };
        let (t, m) = mix_batch(&mut px, &[0, 1], 2, &cfg, &mut rng);
        assert!(m.cutmix);
        let pasted = px[..IMAGE_LEN].iter().filter(|&&v| v == 1.0).count() as f64 / IMAGE_LEN as f64;
        assert!((1.0 - pasted - m.lam).abs() < 1e-9, "{pasted} {}", m.lam);
        assert!((t.iter().take(2).sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn inactive_mixup_is_plain_smoothing() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut px = vec![0.5f32; 2 * IMAGE_LEN];
        let cfg = MixupConfig { mixup: 0.0, cutmix: 0.0, smoothing: 0.1 };
        let (t, m) = mix_batch(&mut px, &[2, 0], 3, &cfg, &mut rng);
        assert_eq!(m.lam, 1.0);
        assert_eq!(t, soft_targets(&[2, 0], 3, 0.1));
        assert!(px.iter().all(|&v| v == 0.5));
    }
}
