//! Calibration and evaluation image sets (preprocessed exactly like the runtime), and the
//! per-tensor activation statistics the static scheme's scales come from.

use std::path::{Path, PathBuf};

use panderm_edge::preprocess::{ImageTensor, PreprocessConfig, decode_bytes, preprocess_rgb};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::QuantizeError;

/// File extensions (lowercase) read from a calibration or evaluation directory: the runtime
/// decoder's list.
pub use panderm_edge::preprocess::decode::IMAGE_EXTENSIONS;

/// Seed of the built-in synthetic calibration set.
pub const SYNTH_SEED: u64 = 7;
/// Size of the built-in synthetic images (every third one is portrait, `height × width`).
pub const SYNTH_SIZE: (u32, u32) = (320, 256);

/// An image file that was skipped because it could not be decoded or preprocessed.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedImage {
    /// File name inside the directory.
    pub file: String,
    /// Why (one line).
    pub reason: String,
}

/// A set of preprocessed images.
pub struct ImageSet {
    /// Human description of where the images came from.
    pub source: String,
    /// `(name, tensor)` in a deterministic order (file name order for directories).
    pub images: Vec<(String, ImageTensor)>,
    /// Image files that could not be read.
    pub skipped: Vec<SkippedImage>,
    /// SHA-256 of the set's listing: one `"<sha256 of the file>  <file name>\n"` line per
    /// image used, in order (`sha256sum` format; for synthetic images the digest is that of the
    /// raw RGB pixels and the name `synth_NNNN`).
    pub list_sha256: String,
}

/// The built-in set: `n` synthetic skin-like images from [`crate::synth::images::render`]
/// (seed [`SYNTH_SEED`]). Not medical data: a stand-in when no real images are at hand.
pub fn synthetic(n: usize, cfg: &PreprocessConfig) -> Result<ImageSet, QuantizeError> {
    if n == 0 {
        return Err(QuantizeError::InvalidOption("--images must be at least 1".into()));
    }
    let mut rng = StdRng::seed_from_u64(SYNTH_SEED);
    let mut images = Vec::with_capacity(n);
    let mut listing = String::new();
    for i in 0..n {
        let (w, h) = if i % 3 == 0 { (SYNTH_SIZE.1, SYNTH_SIZE.0) } else { SYNTH_SIZE };
        let (img, _, _) = crate::synth::images::render(&mut rng, w, h);
        let name = format!("synth_{i:04}");
        listing.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(img.as_raw()))));
        let t = preprocess_rgb(&img, cfg).map_err(|e| QuantizeError::InvalidOption(format!("{name}: {e}")))?;
        images.push((name, t));
    }
    Ok(ImageSet {
        source: format!(
            "built-in: {n} synthetic skin-like images (panderm-tools synth_images, seed {SYNTH_SEED}, {}x{}; not medical data)",
            SYNTH_SIZE.0, SYNTH_SIZE.1
        ),
        images,
        skipped: Vec::new(),
        list_sha256: hex::encode(Sha256::digest(listing.as_bytes())),
    })
}

/// Every image file (by extension, [`IMAGE_EXTENSIONS`], not recursive) of `dir`, in file
/// name order. Files that cannot be decoded are skipped and listed; a missing directory, one
/// without image files, or one where no image could be read is an error. `what` names the
/// set in messages (`calibration`, `evaluation`).
pub fn from_dir(dir: &Path, cfg: &PreprocessConfig, what: &str) -> Result<ImageSet, QuantizeError> {
    let err = |reason: String| QuantizeError::Images { path: dir.to_owned(), reason };
    let entries = std::fs::read_dir(dir).map_err(|e| err(format!("cannot read the {what} directory: {e}")))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| err(format!("cannot list the {what} directory: {e}")))?;
        let path = entry.path();
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        if IMAGE_EXTENSIONS.contains(&ext.as_str()) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(err(format!("no image files ({}) in the {what} directory", IMAGE_EXTENSIONS.join(", "))));
    }
    let mut images = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    let mut listing = String::new();
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // The same steps as `preprocess_file`, on bytes read once (they are also hashed).
        let read = std::fs::read(path).map_err(|e| e.to_string()).and_then(|bytes| {
            decode_bytes(&bytes, cfg.apply_exif_orientation, cfg.limits)
                .and_then(|rgb| preprocess_rgb(&rgb, cfg))
                .map(|t| (bytes, t))
                .map_err(|e| e.to_string())
        });
        match read {
            Ok((bytes, t)) => {
                listing.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(&bytes))));
                images.push((name, t));
            }
            Err(reason) => skipped.push(SkippedImage { file: name, reason }),
        }
    }
    if images.is_empty() {
        return Err(err(format!(
            "none of the {} image files in the {what} directory could be read (first: {})",
            files.len(),
            skipped.first().map(|s| s.reason.as_str()).unwrap_or("?")
        )));
    }
    Ok(ImageSet {
        source: format!("directory {} ({} images)", dir.display(), images.len()),
        images,
        skipped,
        list_sha256: hex::encode(Sha256::digest(listing.as_bytes())),
    })
}

/// Running statistics of `|x|` over every element of one activation tensor.
///
/// The histogram bins are the top 16 bits of the float's magnitude (8 exponent bits, 7
/// mantissa bits), so a percentile is exact to within 2^-7 ≈ 0.8% relative, with a fixed
/// 32768-bin table and no second pass.
#[derive(Debug, Clone)]
pub struct AbsStats {
    /// Largest finite `|x|` seen.
    pub max_abs: f32,
    /// Count of finite elements per magnitude bin.
    hist: Vec<u64>,
    /// Total finite elements.
    pub count: u64,
}

impl Default for AbsStats {
    fn default() -> Self {
        AbsStats { max_abs: 0.0, hist: vec![0; 1 << 15], count: 0 }
    }
}

impl AbsStats {
    /// Adds every finite value of `xs`.
    pub fn update(&mut self, xs: &[f32]) {
        for &x in xs {
            if !x.is_finite() {
                continue;
            }
            let a = x.abs();
            self.max_abs = self.max_abs.max(a);
            self.hist[(a.to_bits() >> 16) as usize] += 1;
            self.count += 1;
        }
    }

    /// The `p`-th percentile (0 < p ≤ 100) of `|x|`: the upper edge of the bin holding that
    /// rank, never above the maximum. `p = 100` is the maximum.
    pub fn percentile(&self, p: f64) -> f32 {
        if p >= 100.0 || self.count == 0 {
            return self.max_abs;
        }
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut cum = 0u64;
        for (bin, &c) in self.hist.iter().enumerate() {
            cum += c;
            if cum >= rank {
                let upper = f32::from_bits(((bin as u32) + 1) << 16);
                return upper.min(self.max_abs);
            }
        }
        self.max_abs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_of_a_ramp() {
        let mut s = AbsStats::default();
        let xs: Vec<f32> = (1..=10_000).map(|i| if i % 2 == 0 { i as f32 } else { -(i as f32) }).collect();
        s.update(&xs);
        s.update(&[f32::NAN, f32::INFINITY]);
        assert_eq!(s.count, 10_000);
        assert_eq!(s.percentile(100.0), 10_000.0);
        let p99 = s.percentile(99.0);
        assert!((p99 - 9_900.0).abs() / 9_900.0 < 0.01, "{p99}");
        let p50 = s.percentile(50.0);
        assert!((p50 - 5_000.0).abs() / 5_000.0 < 0.01, "{p50}");
    }
}
