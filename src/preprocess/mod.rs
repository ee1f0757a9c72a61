//! PanDerm's evaluation transform, reproduced exactly:
//!
//! ```text
//! PIL.Image.open(path).convert('RGB')          -> decode::decode_file
//! transforms.Resize(256)   (Pillow bilinear)    -> resize_shorter_side
//! transforms.CenterCrop(224)                    -> center_crop
//! transforms.ToTensor()                         -> to_normalized_chw
//! transforms.Normalize(mean=(0.485, 0.456, 0.406), std=(0.228, 0.224, 0.225))
//! ```
//!
//! The std 0.228 (not ImageNet's 0.229) is PanDerm's own typo; it is kept because the
//! released weights were trained and evaluated with it. See `docs/preprocessing.md`.
//!
//! PanDerm's test-time augmentation (Resize 246, crop 224, random flips, rotation and colour
//! jitter, std 0.229) lives in [`tta`], on the float-tensor operations of [`augment`].

pub mod augment;
pub mod decode;
pub mod resample;
pub mod tta;

use std::path::Path;

use image::RgbImage;

pub use decode::{DecodeLimits, decode_bytes, decode_file, read_image_file};
pub use resample::resize_bilinear_pillow;

use crate::error::{Error, ErrorKind, Result};

/// PanDerm's normalisation mean (ImageNet's).
pub const PANDERM_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// PanDerm's normalisation std: ImageNet's with PanDerm's 0.228 typo in the red channel.
pub const PANDERM_STD: [f32; 3] = [0.228, 0.224, 0.225];

/// The constants of the eval transform. [`PreprocessConfig::default`] is PanDerm's.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessConfig {
    /// The shorter side is resized to this many pixels (torchvision `Resize(int)`).
    pub resize_shorter: u32,
    /// Side of the square centre crop.
    pub crop: u32,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel std divided by after subtracting the mean.
    pub std: [f32; 3],
    /// Rotate/flip according to the EXIF orientation tag before anything else.
    /// PanDerm ignored EXIF, so the default is `false` for parity.
    pub apply_exif_orientation: bool,
    /// Decode limits that protect the device against oversized images.
    pub limits: DecodeLimits,
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        PreprocessConfig {
            resize_shorter: 256,
            crop: 224,
            mean: PANDERM_MEAN,
            std: PANDERM_STD,
            apply_exif_orientation: false,
            limits: DecodeLimits::default(),
        }
    }
}

/// A normalized image tensor in CHW layout (batch dimension excluded).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTensor {
    /// `3 × height × width` values, channel-major.
    pub data: Vec<f32>,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

/// torchvision `Resize(size)` output for an image of `w × h`: the shorter side becomes
/// `size`, the longer `int(size · long / short)` (truncated), as in
/// `torchvision.transforms.functional._compute_resized_output_size`.
pub fn resized_dims(w: u32, h: u32, size: u32) -> (u32, u32) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((u64::from(size) * u64::from(long)) as f64 / f64::from(short)) as u32;
    if w <= h { (size, new_long) } else { (new_long, size) }
}

/// Resizes so that the shorter side is `size`, with Pillow's antialiased bilinear filter.
pub fn resize_shorter_side(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = resized_dims(img.width(), img.height(), size);
    resize_bilinear_pillow(img, w, h)
}

/// Python's `round` (half to even) for the non-negative halves produced by `(a - b) / 2`.
fn round_half_even_half(twice: usize) -> usize {
    // value = twice / 2
    if twice.is_multiple_of(2) {
        twice / 2
    } else {
        let lo = twice / 2;
        if lo.is_multiple_of(2) { lo } else { lo + 1 }
    }
}

/// torchvision `CenterCrop(size)`: offsets `int(round((H - size) / 2))`, Python rounding.
///
/// Fails if the image is smaller than the crop (PanDerm would pad; after `Resize(256)` this
/// cannot happen for a 224 crop).
pub fn center_crop(img: &RgbImage, size: u32) -> Result<RgbImage> {
    let (w, h) = img.dimensions();
    if w < size || h < size {
        return Err(Error::new(ErrorKind::InvalidInput, format!("image {w}x{h} is smaller than the {size}px crop")));
    }
    let top = center_crop_offset(h as usize, size as usize) as u32;
    let left = center_crop_offset(w as usize, size as usize) as u32;
    Ok(image::imageops::crop_imm(img, left, top, size, size).to_image())
}

/// torchvision's centre-crop offset along one axis of length `len >= size`:
/// `int(round((len - size) / 2))` with Python's rounding (half to even).
pub fn center_crop_offset(len: usize, size: usize) -> usize {
    round_half_even_half(len.saturating_sub(size))
}

/// `ToTensor` then `Normalize`, in float32 like torchvision: `(v / 255 - mean) / std`.
pub fn to_normalized_chw(img: &RgbImage, mean: [f32; 3], std: [f32; 3]) -> ImageTensor {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let plane = w * h;
    let mut data = vec![0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            data[c * plane + i] = (f32::from(px.0[c]) / 255.0 - mean[c]) / std[c];
        }
    }
    ImageTensor { data, height: h, width: w }
}

/// The whole eval transform on decoded RGB pixels.
pub fn preprocess_rgb(img: &RgbImage, cfg: &PreprocessConfig) -> Result<ImageTensor> {
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::new(ErrorKind::InvalidInput, "image has zero width or height"));
    }
    let resized = resize_shorter_side(img, cfg.resize_shorter);
    let cropped = center_crop(&resized, cfg.crop)?;
    Ok(to_normalized_chw(&cropped, cfg.mean, cfg.std))
}

/// Decodes an image file and applies the whole eval transform.
pub fn preprocess_file(path: &Path, cfg: &PreprocessConfig) -> Result<ImageTensor> {
    let img = decode_file(path, cfg.apply_exif_orientation, cfg.limits)?;
    preprocess_rgb(&img, cfg).map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_dims_match_torchvision() {
        // (w, h) -> expected, computed with torchvision's formula in Python.
        let cases = [
            ((224, 224), (256, 256)),
            ((517, 333), (397, 256)),
            ((333, 517), (256, 397)),
            ((1528, 1360), (287, 256)),
            ((256, 1000), (256, 1000)),
            ((3, 7), (256, 597)),
        ];
        for ((w, h), want) in cases {
            assert_eq!(resized_dims(w, h, 256), want, "{w}x{h}");
        }
    }

    #[test]
    fn crop_offsets_round_half_to_even() {
        // (H - 224) / 2 = 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 86.5 -> 86
        assert_eq!(round_half_even_half(1), 0);
        assert_eq!(round_half_even_half(3), 2);
        assert_eq!(round_half_even_half(5), 2);
        assert_eq!(round_half_even_half(173), 86);
        assert_eq!(round_half_even_half(32), 16);
    }

    #[test]
    fn crop_too_small_is_an_error() {
        let img = RgbImage::new(100, 300);
        assert_eq!(center_crop(&img, 224).unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn normalization_uses_pandem_constants() {
        let img = RgbImage::from_pixel(1, 1, image::Rgb([255, 0, 128]));
        let t = to_normalized_chw(&img, PANDERM_MEAN, PANDERM_STD);
        assert_eq!(t.data[0], (1.0f32 - 0.485) / 0.228);
        assert_eq!(t.data[1], (0.0f32 - 0.456) / 0.224);
        assert_eq!(t.data[2], (128.0f32 / 255.0 - 0.406) / 0.225);
    }
}
