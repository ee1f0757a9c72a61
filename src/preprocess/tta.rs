//! PanDerm's test-time augmentation (`furnace/engine_for_finetuning.py::TTAHandler` and
//! `evaluate_tta`), with a seeded random generator so that a run repeats exactly.
//!
//! From the full-resolution image in [0, 1] (PanDerm's TTA test set is only `ToTensor()`), each
//! of the `N` augmentations is
//!
//! 1. `Resize(246)` of the shorter side (bilinear, antialiased, on the float tensor);
//! 2. `CenterCrop(224)`;
//! 3. `RandomHorizontalFlip(0.5)`, then `RandomVerticalFlip(0.5)`;
//! 4. with probability 0.3, `RandomRotation` by an angle uniform in [0°, 270°] (nearest, no
//!    expand, fill 0);
//! 5. with probability 0.3, `ColorJitter(saturation=0.25, hue=0.25)`: a saturation factor
//!    uniform in [0.75, 1.25] and a hue shift uniform in [−0.25, 0.25], applied in a random
//!    order (torchvision draws a permutation);
//! 6. `Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))` — the standard
//!    ImageNet std: PanDerm's TTA does **not** use the 0.228 of its training and evaluation
//!    transforms.
//!
//! The model runs on every augmentation; PanDerm averages the `N` logit vectors, takes
//! `softmax(mean)` as the probabilities and `argmax(mean)` as the prediction ([`mean_logits`];
//! for heads that output probabilities, [`probabilities_from_mean_log`] gives the same result).
//!
//! # Randomness
//!
//! PanDerm draws from torch's global generator, so its TTA cannot be reproduced draw for draw.
//! Here each image gets its own generator, **ChaCha8** (`rand_chacha`, a well-reviewed crate of
//! the `rand` project) keyed by SHA-256 of the seed and the image's SHA-256 ([`image_rng`]).
//! ChaCha8 is chosen over `rand`'s `StdRng` because `rand` documents `StdRng`'s algorithm as
//! free to change between releases, while a named ChaCha generator's output is fixed. Every
//! uniform number is built here from the generator's raw 64-bit words ([`unit`]), so no
//! distribution code of another crate can change the draws either. Keying by the image's
//! content makes each image's augmentations independent of the other images, of their order, of
//! batching and of the program (`panderm classify --tta` and `panderm-tools evaluate --tta` draw
//! the same augmentations for the same file and seed); two byte-identical files get the same
//! draws.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::preprocess::augment::{
    adjust_hue, adjust_saturation, center_crop_chw, hflip, normalize, resize_shorter_side_aa, rotate_nearest,
    to_unit_chw, vflip,
};
use crate::preprocess::{ImageTensor, PANDERM_MEAN};

/// TTA's `Resize`: the shorter side becomes 246 pixels (not the 256 of evaluation).
pub const TTA_RESIZE: u32 = 246;
/// TTA's `CenterCrop`, the model's input side.
pub const TTA_CROP: usize = 224;
/// TTA's normalisation std: ImageNet's, with 0.229 (PanDerm's training uses 0.228).
pub const TTA_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Probability of each flip.
pub const FLIP_P: f64 = 0.5;
/// Probability of the rotation.
pub const ROTATION_P: f64 = 0.3;
/// The rotation angle is uniform in `[0, MAX_ROTATION_DEGREES]`.
pub const MAX_ROTATION_DEGREES: f64 = 270.0;
/// Probability of the colour jitter.
pub const JITTER_P: f64 = 0.3;
/// `ColorJitter(saturation=0.25)`: the factor is uniform in `[0.75, 1.25]`.
pub const SATURATION: f64 = 0.25;
/// `ColorJitter(hue=0.25)`: the shift is uniform in `[-0.25, 0.25]`.
pub const HUE: f64 = 0.25;
/// PanDerm's `num_TTA` default.
pub const PANDERM_AUGMENTATIONS: usize = 5;
/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 0;
/// The most augmentations per image accepted (each is one backbone pass).
pub const MAX_AUGMENTATIONS: usize = 1024;

/// The TTA settings of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tta {
    /// Augmentations per image (PanDerm's `num_TTA`), at least 1.
    pub augmentations: usize,
    /// The seed of every image's generator.
    pub seed: u64,
}

impl Tta {
    /// `augmentations` random augmentations per image, drawn from `seed`. Refuses 0 and more
    /// than [`MAX_AUGMENTATIONS`].
    pub fn new(augmentations: usize, seed: u64) -> Result<Tta> {
        if augmentations == 0 || augmentations > MAX_AUGMENTATIONS {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("TTA needs 1 to {MAX_AUGMENTATIONS} augmentations, got {augmentations}"),
            ));
        }
        Ok(Tta { augmentations, seed })
    }

    /// The `N` augmentations of the image whose SHA-256 (hex, as reports record it) is
    /// `image_sha256`, in draw order.
    pub fn draws(&self, image_sha256: &str) -> Vec<Augmentation> {
        let mut rng = image_rng(self.seed, image_sha256);
        (0..self.augmentations).map(|_| Augmentation::draw(&mut rng)).collect()
    }

    /// The `N` normalised model inputs (`3 × 224 × 224`) for a decoded image.
    pub fn tensors(&self, rgb: &image::RgbImage, image_sha256: &str) -> Result<Vec<ImageTensor>> {
        let base = base_crop(rgb)?;
        Ok(self.draws(image_sha256).iter().map(|a| a.apply(&base)).collect())
    }
}

/// The deterministic start of every augmentation: `ToTensor`, `Resize(246)`, `CenterCrop(224)`
/// (computed once per image; the random steps follow).
pub fn base_crop(rgb: &image::RgbImage) -> Result<ImageTensor> {
    if rgb.width() == 0 || rgb.height() == 0 {
        return Err(Error::new(ErrorKind::InvalidInput, "image has zero width or height"));
    }
    let resized = resize_shorter_side_aa(&to_unit_chw(rgb), TTA_RESIZE)?;
    center_crop_chw(&resized, TTA_CROP)
}

/// One colour jitter: both factors and their order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Jitter {
    /// Saturation factor, in [0.75, 1.25].
    pub saturation: f32,
    /// Hue shift, in [−0.25, 0.25].
    pub hue: f32,
    /// Whether the hue shift comes before the saturation change.
    pub hue_first: bool,
}

/// The random choices of one augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Augmentation {
    /// Mirror left–right.
    pub hflip: bool,
    /// Mirror top–bottom.
    pub vflip: bool,
    /// Counter-clockwise rotation in degrees, when applied.
    pub rotation: Option<f32>,
    /// Colour jitter, when applied.
    pub jitter: Option<Jitter>,
}

impl Augmentation {
    /// Draws one augmentation. The draws, in order: horizontal flip, vertical flip, whether to
    /// rotate, [the angle], whether to jitter, [the order, the saturation factor, the hue shift].
    pub fn draw(rng: &mut impl RngCore) -> Augmentation {
        let hflip = unit(rng) < FLIP_P;
        let vflip = unit(rng) < FLIP_P;
        let rotation = (unit(rng) < ROTATION_P).then(|| (unit(rng) * MAX_ROTATION_DEGREES) as f32);
        let jitter = (unit(rng) < JITTER_P).then(|| {
            let hue_first = rng.next_u64() >> 63 == 1;
            let saturation = (1.0 - SATURATION + 2.0 * SATURATION * unit(rng)) as f32;
            let hue = (-HUE + 2.0 * HUE * unit(rng)) as f32;
            Jitter { saturation, hue, hue_first }
        });
        Augmentation { hflip, vflip, rotation, jitter }
    }

    /// The identity: no flip, rotation or jitter (only the crop and the normalisation act).
    pub const NONE: Augmentation = Augmentation { hflip: false, vflip: false, rotation: None, jitter: None };

    /// Applies the random steps to [`base_crop`]'s output, then the TTA normalisation.
    pub fn apply(&self, base: &ImageTensor) -> ImageTensor {
        let mut t = base.clone();
        if self.hflip {
            t = hflip(&t);
        }
        if self.vflip {
            t = vflip(&t);
        }
        if let Some(angle) = self.rotation {
            t = rotate_nearest(&t, angle);
        }
        if let Some(j) = self.jitter {
            t = if j.hue_first {
                adjust_saturation(&adjust_hue(&t, j.hue), j.saturation)
            } else {
                adjust_hue(&adjust_saturation(&t, j.saturation), j.hue)
            };
        }
        normalize(&t, PANDERM_MEAN, TTA_STD)
    }
}

/// A uniform number in [0, 1) from the top 53 bits of one 64-bit word.
pub fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The generator of one image: ChaCha8 keyed by `SHA-256("panderm-tta" ‖ seed (8 bytes, little
/// endian) ‖ image_sha256 (its hex text))`.
pub fn image_rng(seed: u64, image_sha256: &str) -> ChaCha8Rng {
    let mut h = Sha256::new();
    h.update(b"panderm-tta");
    h.update(seed.to_le_bytes());
    h.update(image_sha256.as_bytes());
    ChaCha8Rng::from_seed(h.finalize().into())
}

/// The element-wise mean of `N` equally long vectors (PanDerm's `torch.mean(outputs, dim=0)`),
/// accumulated in f64. Empty for no vectors.
pub fn mean_logits(rows: &[Vec<f32>]) -> Vec<f32> {
    let Some(first) = rows.first() else { return Vec::new() };
    let mut sum = vec![0f64; first.len()];
    for row in rows {
        for (s, v) in sum.iter_mut().zip(row) {
            *s += f64::from(*v);
        }
    }
    sum.into_iter().map(|s| (s / rows.len() as f64) as f32).collect()
}

/// PanDerm's TTA result for a head that outputs probabilities rather than logits:
/// `softmax(mean_n log p_n)`. For probabilities that are a softmax of logits `z_n` (or a sigmoid
/// pair), `log p_n = z_n − logsumexp(z_n)` and softmax ignores the per-augmentation constant, so
/// this equals `softmax(mean_n z_n)`, PanDerm's `softmax(mean logits)`. A probability of exactly
/// 0 (a logit so low that float32 underflowed) keeps its class at 0.
pub fn probabilities_from_mean_log(rows: &[Vec<f32>]) -> Vec<f32> {
    let Some(first) = rows.first() else { return Vec::new() };
    let mut mean = vec![0f64; first.len()];
    for row in rows {
        for (m, p) in mean.iter_mut().zip(row) {
            *m += f64::from(*p).ln() / rows.len() as f64;
        }
    }
    let max = mean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = mean.iter().map(|m| (m - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.into_iter().map(|e| (e / total) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::softmax;

    fn digest(n: u8) -> String {
        format!("{n:064x}")
    }

    fn photo() -> image::RgbImage {
        image::RgbImage::from_fn(300, 260, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 256) as u8]))
    }

    #[test]
    fn same_seed_and_image_repeat_exactly() -> Result<()> {
        let tta = Tta::new(8, 7)?;
        let img = photo();
        assert_eq!(tta.draws(&digest(1)), tta.draws(&digest(1)));
        assert_eq!(tta.tensors(&img, &digest(1))?, tta.tensors(&img, &digest(1))?);
        // Another seed or another image draws differently.
        assert_ne!(tta.draws(&digest(1)), Tta::new(8, 8)?.draws(&digest(1)));
        assert_ne!(tta.draws(&digest(1)), tta.draws(&digest(2)));
        // The first N draws do not depend on how many follow.
        assert_eq!(Tta::new(3, 7)?.draws(&digest(1))[..], tta.draws(&digest(1))[..3]);
        Ok(())
    }

    #[test]
    fn draws_follow_the_recipe() -> Result<()> {
        let draws = Tta::new(MAX_AUGMENTATIONS, 0)?.draws(&digest(3));
        let n = draws.len() as f64;
        let frac = |f: &dyn Fn(&Augmentation) -> bool| draws.iter().filter(|a| f(a)).count() as f64 / n;
        // 1024 draws: the binomial standard deviation is <= 0.016; 4 sigma bounds.
        assert!((frac(&|a| a.hflip) - 0.5).abs() < 0.07);
        assert!((frac(&|a| a.vflip) - 0.5).abs() < 0.07);
        assert!((frac(&|a| a.rotation.is_some()) - 0.3).abs() < 0.06);
        assert!((frac(&|a| a.jitter.is_some()) - 0.3).abs() < 0.06);
        assert!(draws.iter().filter_map(|a| a.rotation).all(|r| (0.0..=270.0).contains(&r)));
        for j in draws.iter().filter_map(|a| a.jitter) {
            assert!((0.75..=1.25).contains(&j.saturation) && (-0.25..=0.25).contains(&j.hue), "{j:?}");
        }
        assert!(Tta::new(0, 0).is_err() && Tta::new(MAX_AUGMENTATIONS + 1, 0).is_err());
        Ok(())
    }

    #[test]
    fn base_crop_and_identity_augmentation() -> Result<()> {
        // 300x260 -> shorter side 246: 283x246 (int(246*300/260) = 283), crop 224 at left
        // round(29.5) = 30 (half to even), top round(11) = 11.
        let img = photo();
        let base = base_crop(&img)?;
        assert_eq!((base.width, base.height), (224, 224));
        // An image already 246 px on its shorter side is not resampled on that axis: a 246x246
        // image's crop is its pixels /255 at offset 11.
        let square = image::RgbImage::from_fn(246, 246, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let t = Augmentation::NONE.apply(&base_crop(&square)?);
        let plane = 224 * 224;
        assert_eq!(t.data[0], (11.0f32 / 255.0 - 0.485) / 0.229);
        assert_eq!(t.data[plane + 224 * 5], (16.0f32 / 255.0 - 0.456) / 0.224);
        assert_eq!(t.data[2 * plane], (7.0f32 / 255.0 - 0.406) / 0.225);
        Ok(())
    }

    #[test]
    fn averaging_logits_or_log_probabilities_agree() {
        let logits = vec![vec![2.0f32, -1.0, 0.5], vec![0.0, 1.0, 0.25], vec![-3.0, 0.0, 4.0]];
        let want = softmax(&mean_logits(&logits));
        let probs: Vec<Vec<f32>> = logits.iter().map(|l| softmax(l)).collect();
        let got = probabilities_from_mean_log(&probs);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
        assert_eq!(mean_logits(&logits)[0], (2.0 + 0.0 - 3.0) / 3.0);
        assert!(mean_logits(&[]).is_empty() && probabilities_from_mean_log(&[]).is_empty());
        // A zero probability stays zero.
        assert_eq!(probabilities_from_mean_log(&[vec![0.0, 1.0], vec![0.5, 0.5]])[0], 0.0);
    }
}
