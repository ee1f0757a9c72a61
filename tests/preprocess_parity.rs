//! PanDerm's eval transform, checked against the normalized tensors PanDerm's own pipeline
//! (Pillow 13 decode + resize, torchvision 0.29) produced for the same files.

mod common;

use common::*;
use panderm_edge::npy;
use panderm_edge::preprocess::{PreprocessConfig, preprocess_file};

/// One grey level after normalization: 1 / 255 / min(std) ≈ 0.0178.
const ONE_LEVEL: f32 = 1.0 / 255.0 / 0.224;

#[test]
fn png_inputs_match_pandem_bit_for_bit() {
    // Lossless input + a port of Pillow's resampler: the uint8 pixels are identical, so the
    // only difference left is float32 rounding of (v/255 - mean)/std, which is the same
    // sequence of operations as torchvision's: allow 1 ulp-scale error.
    for (name, lossless) in IMAGES {
        if !lossless {
            continue;
        }
        let want = npy::read_f32(&fixture(&format!("pixels_{}.npy", stem(name)))).unwrap();
        assert_eq!(want.shape, vec![3, 224, 224]);
        let got = preprocess_file(&image(name), &PreprocessConfig::default()).unwrap();
        let diff = max_abs(&got.data, &want.data);
        assert!(diff <= 1e-6, "{name}: max abs diff {diff}");
    }
}

#[test]
fn jpeg_input_is_within_decoder_tolerance() {
    // Pillow decodes JPEG with libjpeg-turbo (ISLOW IDCT, fancy upsampling); the `image`
    // crate uses zune-jpeg, which differs by a few grey levels on some pixels (measured in
    // ../shared/docs/research/rust-deps.md: max 5, mean 0.38). After the resize averages
    // neighbours, the mean difference must stay well under one level.
    let name = "clinical_forearm_iphone14.jpg";
    let want = npy::read_f32(&fixture(&format!("pixels_{}.npy", stem(name)))).unwrap();
    let got = preprocess_file(&image(name), &PreprocessConfig::default()).unwrap();
    let mean_abs: f32 =
        got.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).sum::<f32>() / got.data.len() as f32;
    let max = max_abs(&got.data, &want.data);
    eprintln!("jpeg: mean |diff| = {:.3} levels, max = {:.1} levels", mean_abs / ONE_LEVEL, max / ONE_LEVEL);
    // Measured on this file: mean 0.010 levels, max 1.0 level. Bounds leave room for a
    // decoder update while catching a real regression (wrong upsampling, colour matrix).
    assert!(mean_abs <= 0.05 * ONE_LEVEL, "mean abs diff {mean_abs}");
    assert!(max <= 2.0 * ONE_LEVEL, "max abs diff {max}");
    assert!(cosine(&got.data, &want.data) >= 0.9999);
}
