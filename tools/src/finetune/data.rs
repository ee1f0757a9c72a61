//! Batches for fine-tuning: images decoded and transformed on worker threads into one
//! `[B, 3, 224, 224]` host buffer, and the sampling order of each epoch.
//!
//! An image that cannot be read or decoded is left out of its batch, counted, and named in a
//! warning (PanDerm's `Derm_Dataset` would crash on it); the run refuses to go on only when a
//! whole batch is unreadable.

use std::path::PathBuf;
use std::sync::Mutex;

use panderm_edge::preprocess::{PreprocessConfig, decode_file, preprocess_rgb};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::augment::{self, TrainAugment};

/// Side of the model's input.
pub const SIDE: usize = 224;
/// Floats per image in a batch.
pub const IMAGE_LEN: usize = 3 * SIDE * SIDE;

/// One training or evaluation example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The image file.
    pub path: PathBuf,
    /// The class label.
    pub label: usize,
    /// The CSV's `image` value (written in `val.csv` / `test.csv`).
    pub name: String,
}

/// A loaded batch: images that decoded, in order, with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[len, 3, 224, 224]` normalised pixels.
    pub pixels: Vec<f32>,
    /// Labels of the loaded images.
    pub labels: Vec<usize>,
    /// Indices (into the examples given) of the loaded images.
    pub loaded: Vec<usize>,
    /// Images that failed, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

impl Batch {
    /// Images in the batch.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether no image loaded.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// How each image is transformed.
#[derive(Debug, Clone, Copy)]
pub enum Transform<'a> {
    /// PanDerm's eval transform (Resize 256 → CenterCrop 224 → Normalize, std 0.228).
    Eval,
    /// PanDerm's train augmentations, each image with its own seed.
    Train(&'a TrainAugment),
}

/// One image's result, filled in by a worker thread.
type Slot = Mutex<Option<Result<Vec<f32>, String>>>;

/// Loads `examples` with `threads` workers. `seeds[i]` seeds image `i`'s augmentation (ignored
/// by [`Transform::Eval`]).
pub fn load_batch(examples: &[&Example], transform: Transform<'_>, seeds: &[u64], threads: usize) -> Batch {
    let cfg = PreprocessConfig::default();
    let results: Vec<Slot> = examples.iter().map(|_| Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, examples.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(ex) = examples.get(i) else { break };
                    let out = load_one(ex, transform, seeds.get(i).copied().unwrap_or(0), &cfg);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(out);
                    }
                }
            });
        }
    });
    let mut batch = Batch {
        pixels: Vec::with_capacity(examples.len() * IMAGE_LEN),
        labels: vec![],
        loaded: vec![],
        failed: vec![],
    };
    for (i, (ex, slot)) in examples.iter().zip(results).enumerate() {
        let result = slot.into_inner().ok().flatten().unwrap_or_else(|| Err("the decoding thread failed".into()));
        match result {
            Ok(px) => {
                batch.pixels.extend_from_slice(&px);
                batch.labels.push(ex.label);
                batch.loaded.push(i);
            }
            Err(e) => batch.failed.push((ex.path.clone(), e)),
        }
    }
    batch
}

fn load_one(ex: &Example, transform: Transform<'_>, seed: u64, cfg: &PreprocessConfig) -> Result<Vec<f32>, String> {
    let img = decode_file(&ex.path, cfg.apply_exif_orientation, cfg.limits).map_err(|e| e.to_string())?;
    let t = match transform {
        Transform::Eval => preprocess_rgb(&img, cfg).map_err(|e| e.to_string())?,
        Transform::Train(aug) => augment::train_transform(&img, aug, seed, cfg).map_err(|e| e.to_string())?,
    };
    if t.data.len() != IMAGE_LEN {
        return Err(format!("transformed to {}×{} instead of {SIDE}×{SIDE}", t.width, t.height));
    }
    Ok(t.data)
}

/// The order one epoch visits the training examples: a shuffle (PyTorch's `RandomSampler`), or
/// — with class weights — `n` draws with replacement (`WeightedRandomSampler`).
pub fn epoch_order(n: usize, weights: Option<&[f64]>, rng: &mut StdRng) -> Vec<usize> {
    match weights {
        None => {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(rng);
            order
        }
        Some(w) => {
            let mut cumulative = Vec::with_capacity(w.len());
            let mut total = 0.0;
            for &x in w {
                total += x;
                cumulative.push(total);
            }
            (0..n)
                .map(|_| {
                    let u = rng.random::<f64>() * total;
                    cumulative.partition_point(|&c| c <= u).min(w.len() - 1)
                })
                .collect()
        }
    }
}

/// PanDerm's sampler weights (`--weights`): each example weighs `N / (K · n_c)` for its class
/// `c` with `n_c` examples.
pub fn class_weights(labels: &[usize], k: usize) -> Vec<f64> {
    let mut counts = vec![0usize; k];
    for &y in labels {
        counts[y] += 1;
    }
    let n = labels.len() as f64;
    labels.iter().map(|&y| n / (k as f64 * counts[y] as f64)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn shuffle_is_a_permutation_and_repeats_with_the_seed() {
        let a = epoch_order(50, None, &mut StdRng::seed_from_u64(3));
        let b = epoch_order(50, None, &mut StdRng::seed_from_u64(3));
        assert_eq!(a, b);
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn weighted_sampler_balances_classes() {
        // 90 of class 0, 10 of class 1: weights 100/180 and 100/20, so each class is drawn
        // about half the time.
        let labels: Vec<usize> = (0..100).map(|i| usize::from(i >= 90)).collect();
        let w = class_weights(&labels, 2);
        assert!((w[0] - 100.0 / 180.0).abs() < 1e-12 && (w[99] - 5.0).abs() < 1e-12);
        let mut rng = StdRng::seed_from_u64(0);
        let drawn: usize =
            (0..100).map(|_| epoch_order(100, Some(&w), &mut rng).iter().filter(|&&i| i >= 90).count()).sum();
        let share = drawn as f64 / 10_000.0;
        assert!((share - 0.5).abs() < 0.03, "{share}");
    }
}
