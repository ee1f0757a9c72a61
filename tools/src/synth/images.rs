//! `panderm-tools synth-images`: synthetic, skin-like images with toy labels, for pipeline
//! demos, end-to-end tests and calibration when no real data is at hand. **Not medical data.**
//!
//! Each image is a skin-toned background (a random Fitzpatrick-like tone with smooth
//! shading and pore noise) with one elliptical "lesion". The lesion's colour family gives
//! the 3-class toy label (`0` brown, `1` red, `2` pale) and its darkness/irregularity the
//! binary toy label (`1` = dark and irregular). Deterministic for a seed.

use std::path::Path;

use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};

/// One generated image's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthImage {
    /// File name (relative to the output directory).
    pub file: String,
    /// 3-class toy label.
    pub label: usize,
    /// Binary toy label.
    pub binary_label: usize,
    /// `train`, `val` or `test`.
    pub split: &'static str,
}

/// Labels of the 3-class toy task.
pub const LABELS: [&str; 3] = ["brown", "red", "pale"];
/// Labels of the binary toy task.
pub const BINARY_LABELS: [&str; 2] = ["regular", "dark_irregular"];

/// Renders one image.
pub fn render(rng: &mut StdRng, w: u32, h: u32) -> (RgbImage, usize, usize) {
    let tones =
        [[233.0, 196.0, 170.0], [214.0, 170.0, 140.0], [184.0, 136.0, 104.0], [141.0, 96.0, 68.0], [96.0, 64.0, 46.0]];
    let base = tones[rng.random_range(0..tones.len())];
    let label = rng.random_range(0..3usize);
    let dark_irregular = rng.random_bool(0.5);
    let lesion: [f32; 3] = match label {
        0 => [110.0, 70.0, 45.0],
        1 => [170.0, 60.0, 60.0],
        _ => [205.0, 160.0, 150.0],
    };
    let darkness = if dark_irregular { 0.45 } else { 0.85 };
    let (cx, cy) = (w as f32 * rng.random_range(0.35..0.65), h as f32 * rng.random_range(0.35..0.65));
    let (rx, ry) = (w as f32 * rng.random_range(0.12..0.25), h as f32 * rng.random_range(0.12..0.25));
    let wobble = if dark_irregular { rng.random_range(0.15..0.3) } else { 0.03 };
    let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let shade: f32 = rng.random_range(-0.15..0.15);
    let mut img = RgbImage::new(w, h);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32, y as f32);
        let light = 1.0 + shade * (fx / w as f32 - 0.5) + 0.05 * ((fx * 0.3).sin() * (fy * 0.27).cos());
        let noise: f32 = rng.random_range(-6.0..6.0);
        let (dx, dy) = ((fx - cx) / rx, (fy - cy) / ry);
        let angle = dy.atan2(dx);
        let radius = 1.0 + wobble * (3.0 * angle + phase).sin() + wobble * 0.5 * (7.0 * angle).cos();
        let r = (dx * dx + dy * dy).sqrt() / radius;
        let t = ((1.15 - r) / 0.3).clamp(0.0, 1.0); // soft border
        let mut c = [0u8; 3];
        for i in 0..3 {
            let skin = base[i] * light;
            let les = lesion[i] * darkness * light;
            c[i] = (skin * (1.0 - t) + les * t + noise).clamp(0.0, 255.0) as u8;
        }
        *px = Rgb(c);
    }
    (img, label, usize::from(dark_irregular))
}

/// Writes `n` PNG images plus `multiclass.csv` (`image,label,split`) and `binary.csv`
/// (`image,binary_label,split`) into `dir`. Splits: 60% train, 15% val, 25% test.
pub fn write_set(dir: &Path, n: usize, size: (u32, u32), seed: u64) -> Result<Vec<SynthImage>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (w, h) = if i % 3 == 0 { (size.1, size.0) } else { size };
        let (img, label, binary_label) = render(&mut rng, w, h);
        let file = format!("synth_{i:04}.png");
        let path = dir.join(&file);
        img.save(&path).map_err(|source| Error::Image { path, source })?;
        let split = match (i * 20 / n.max(1)) as u32 {
            0..=11 => "train",
            12..=14 => "val",
            _ => "test",
        };
        out.push(SynthImage { file, label, binary_label, split });
    }
    let mut multi = String::from("image,label,split\n");
    let mut binary = String::from("image,binary_label,split\n");
    for s in &out {
        multi.push_str(&format!("{},{},{}\n", s.file, s.label, s.split));
        binary.push_str(&format!("{},{},{}\n", s.file, s.binary_label, s.split));
    }
    for (name, text) in [("multiclass.csv", multi), ("binary.csv", binary)] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(path, e))?;
    }
    Ok(out)
}
