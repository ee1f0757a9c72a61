//! PanDerm's training augmentations (`run_class_finetuning.py`, spec §3.3), on 8-bit RGB images
//! as torchvision applies them to PIL images:
//!
//! `Resize(256)` → `RandomResizedCrop(224, scale=(0.75, 1), ratio=(3/4, 4/3))` (bilinear) →
//! `RandomHorizontalFlip(0.5)` → `RandomVerticalFlip(0.5)` → `RandomRotation(45)` (nearest,
//! fill 0) → `ColorJitter(hue=0.2)` → `ToTensor` → `Normalize` (std 0.228).
//!
//! Each image draws from its own generator seeded by the trainer, so a run repeats exactly for a
//! given `--seed` whatever the number of decoding threads. The random draws follow torchvision's
//! definitions (crop area and log-uniform aspect with up to 10 attempts and its fallback, angle
//! uniform in ±45°, hue shift uniform in ±0.2 of the hue circle); the draws themselves cannot
//! match PyTorch's generator.

use image::{Rgb, RgbImage, imageops};
use panderm_edge::preprocess::augment::hue_shifted;
use panderm_edge::preprocess::{
    ImageTensor, PreprocessConfig, resize_bilinear_pillow, resize_shorter_side, to_normalized_chw,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The augmentation's parameters (PanDerm's values by default).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainAugment {
    /// `RandomResizedCrop` area range.
    pub scale: (f64, f64),
    /// `RandomResizedCrop` aspect range.
    pub ratio: (f64, f64),
    /// `RandomRotation` degrees (uniform in ±).
    pub degrees: f64,
    /// `ColorJitter` hue (uniform in ±, as a fraction of the hue circle).
    pub hue: f64,
}

impl Default for TrainAugment {
    fn default() -> Self {
        TrainAugment { scale: (0.75, 1.0), ratio: (3.0 / 4.0, 4.0 / 3.0), degrees: 45.0, hue: 0.2 }
    }
}

/// Applies the whole train transform to `img` with the generator seeded by `seed`.
pub fn train_transform(
    img: &RgbImage,
    aug: &TrainAugment,
    seed: u64,
    cfg: &PreprocessConfig,
) -> panderm_edge::Result<ImageTensor> {
    if img.width() == 0 || img.height() == 0 {
        return Err(panderm_edge::Error::new(panderm_edge::ErrorKind::InvalidInput, "image has zero width or height"));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let resized = resize_shorter_side(img, cfg.resize_shorter);
    let (top, left, h, w) = resized_crop_box(resized.width(), resized.height(), aug, &mut rng);
    let crop = imageops::crop_imm(&resized, left, top, w, h).to_image();
    let mut out = resize_bilinear_pillow(&crop, cfg.crop, cfg.crop);
    if rng.random::<f64>() < 0.5 {
        imageops::flip_horizontal_in_place(&mut out);
    }
    if rng.random::<f64>() < 0.5 {
        imageops::flip_vertical_in_place(&mut out);
    }
    let angle = rng.random_range(-aug.degrees..=aug.degrees);
    out = rotate_nearest(&out, angle);
    if aug.hue > 0.0 {
        let shift = rng.random_range(-aug.hue..=aug.hue);
        shift_hue(&mut out, shift);
    }
    Ok(to_normalized_chw(&out, cfg.mean, cfg.std))
}

/// torchvision's `RandomResizedCrop.get_params`: `(top, left, height, width)`.
pub fn resized_crop_box(width: u32, height: u32, aug: &TrainAugment, rng: &mut StdRng) -> (u32, u32, u32, u32) {
    let (w0, h0) = (f64::from(width), f64::from(height));
    let area = w0 * h0;
    let (lr0, lr1) = (aug.ratio.0.ln(), aug.ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.random_range(aug.scale.0..=aug.scale.1);
        let aspect = rng.random_range(lr0..=lr1).exp();
        let w = (target * aspect).sqrt().round();
        let h = (target / aspect).sqrt().round();
        if w > 0.0 && h > 0.0 && w <= w0 && h <= h0 {
            let (w, h) = (w as u32, h as u32);
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return (top, left, h, w);
        }
    }
    // Fallback: the whole image, or a centre crop clamped to the ratio range.
    let in_ratio = w0 / h0;
    let (w, h) = if in_ratio < aug.ratio.0 {
        (width, ((w0 / aug.ratio.0).round() as u32).min(height))
    } else if in_ratio > aug.ratio.1 {
        (((h0 * aug.ratio.1).round() as u32).min(width), height)
    } else {
        (width, height)
    };
    ((height - h) / 2, (width - w) / 2, h, w)
}

/// Rotates about the image centre by `degrees` counter-clockwise, keeping the size, nearest
/// neighbour, black outside (PIL's `Image.rotate(angle, NEAREST, expand=False, fillcolor=0)`).
pub fn rotate_nearest(img: &RgbImage, degrees: f64) -> RgbImage {
    let (w, h) = img.dimensions();
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let (s, c) = degrees.to_radians().sin_cos();
    RgbImage::from_fn(w, h, |x, y| {
        // Output pixel centre → input point (inverse rotation; y grows downwards).
        let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
        let sx = c * dx - s * dy + cx;
        let sy = s * dx + c * dy + cy;
        if sx >= 0.0 && sy >= 0.0 && sx < f64::from(w) && sy < f64::from(h) {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            Rgb([0, 0, 0])
        }
    })
}

/// Shifts every pixel's hue by `shift` of the circle (torchvision's `adjust_hue` formulas,
/// [`hue_shifted`], on the 8-bit pixels scaled to [0, 1] and rounded back).
pub fn shift_hue(img: &mut RgbImage, shift: f64) {
    for px in img.pixels_mut() {
        let shifted = hue_shifted(px.0.map(|v| f32::from(v) / 255.0), shift as f32);
        px.0 = shifted.map(|x| (x * 255.0).round().clamp(0.0, 255.0) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, ((x + y) % 256) as u8]))
    }

    #[test]
    fn rotation_by_zero_and_90_degrees() {
        let img = gradient(6, 6);
        assert_eq!(rotate_nearest(&img, 0.0), img);
        // Counter-clockwise by 90°: the top row becomes the left column, read bottom-up.
        let r = rotate_nearest(&img, 90.0);
        assert_eq!(r, imageops::rotate270(&img));
    }

    #[test]
    fn hue_shift_of_zero_or_a_full_turn_is_identity_and_greys_stay() {
        let img = gradient(16, 16);
        for shift in [0.0, 1.0, -1.0] {
            let mut x = img.clone();
            shift_hue(&mut x, shift);
            assert_eq!(x, img, "shift {shift}");
        }
        let mut red = RgbImage::from_pixel(1, 1, Rgb([255, 0, 0]));
        shift_hue(&mut red, 1.0 / 3.0);
        assert_eq!(red.get_pixel(0, 0).0, [0, 255, 0]);
        let mut grey = RgbImage::from_pixel(1, 1, Rgb([90, 90, 90]));
        shift_hue(&mut grey, 0.2);
        assert_eq!(grey.get_pixel(0, 0).0, [90, 90, 90]);
    }

    #[test]
    fn crop_box_is_inside_and_within_the_ranges() {
        let aug = TrainAugment::default();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let (t, l, h, w) = resized_crop_box(341, 256, &aug, &mut rng);
            assert!(t + h <= 256 && l + w <= 341);
            let frac = f64::from(h * w) / (341.0 * 256.0);
            assert!((0.70..=1.0).contains(&frac), "{frac}");
        }
    }

    #[test]
    fn transform_repeats_with_the_seed_and_varies_across_seeds() {
        let img = gradient(300, 260);
        let cfg = PreprocessConfig::default();
        let aug = TrainAugment::default();
        let a = train_transform(&img, &aug, 7, &cfg).unwrap();
        let b = train_transform(&img, &aug, 7, &cfg).unwrap();
        let c = train_transform(&img, &aug, 8, &cfg).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!((a.width, a.height, a.data.len()), (224, 224, 3 * 224 * 224));
    }
}
