//! The shipped tiny models (converted by `panderm-tools convert` from checkpoints written by
//! PanDerm's own code) reproduce PanDerm's PyTorch outputs.
//!
//! Tolerances (from the fixtures' README): from the same decoded pixels, cosine ≥ 0.99999
//! and max abs ≤ 1e-3 (float32 accumulation order differs between tract and PyTorch); from
//! the JPEG file, whose decoder differs by a grey level or so, cosine ≥ 0.999.

mod common;

use common::*;
use panderm_edge::engine::{Model, ModelOptions};
use panderm_edge::npy;
use panderm_edge::preprocess::{ImageTensor, PreprocessConfig, preprocess_file};

fn pixels(name: &str) -> ImageTensor {
    let a = npy::read_f32(&fixture(&format!("pixels_{}.npy", stem(name)))).unwrap();
    ImageTensor { data: a.data, height: 224, width: 224 }
}

fn check(got: &[f32], want: &[f32], exact_pixels: bool, what: &str) {
    let cos = cosine(got, want);
    let max = max_abs(got, want);
    eprintln!("{what}: cosine {cos:.8}, max abs {max:.2e}");
    if exact_pixels {
        assert!(cos >= 0.99999, "{what}: cosine {cos}");
        assert!(max <= 1e-3, "{what}: max abs diff {max}");
    } else {
        assert!(cos >= 0.999, "{what}: cosine {cos}");
    }
}

#[test]
fn linear_probe_features_match_pytorch() {
    let model = Model::load(&tiny_model("panderm_tiny_lp.onnx")).unwrap();
    assert_eq!(model.output_names(), ["features"]);
    let reference = reference();
    for (name, lossless) in IMAGES {
        let want = floats(&reference["panderm_tiny_lp.pth"]["features"][name]);
        let from_file = preprocess_file(&image(name), &PreprocessConfig::default()).unwrap();
        let out = model.run(&[&from_file]).unwrap();
        check(&out[0][0].values, &want, lossless, &format!("lp {name} (file)"));
        let out = model.run(&[&pixels(name)]).unwrap();
        check(&out[0][0].values, &want, true, &format!("lp {name} (PanDerm pixels)"));
    }
}

#[test]
fn fine_tuned_logits_match_pytorch() {
    let model = Model::load(&tiny_model("panderm_tiny_ft.onnx")).unwrap();
    assert_eq!(model.output_names(), ["logits"]);
    let reference = reference();
    for (name, lossless) in IMAGES {
        let want = floats(&reference["panderm_tiny_ft.pth"]["outputs"][name]["logits"]);
        let want_p = floats(&reference["panderm_tiny_ft.pth"]["outputs"][name]["probs"]);
        let from_file = preprocess_file(&image(name), &PreprocessConfig::default()).unwrap();
        let out = model.run(&[&from_file]).unwrap();
        check(&out[0][0].values, &want, lossless, &format!("ft {name} (file)"));
        let out = model.run(&[&pixels(name)]).unwrap();
        let logits = &out[0][0].values;
        assert!(max_abs(logits, &want) <= 1e-3, "ft {name}: {logits:?} vs {want:?}");
        let probs = panderm_edge::run_report::softmax(logits);
        assert!(max_abs(&probs, &want_p) <= 1e-4, "ft {name}: probs {probs:?} vs {want_p:?}");
    }
}

#[test]
fn batched_run_equals_single_runs() {
    // The symbolic batch is pinned at load; a batch of 3 (and a padded partial batch) must
    // give the same rows as one-by-one runs.
    let single = Model::load(&tiny_model("panderm_tiny_lp.onnx")).unwrap();
    let batched = Model::load_with(&tiny_model("panderm_tiny_lp.onnx"), &ModelOptions { batch_size: 4 }).unwrap();
    let imgs: Vec<ImageTensor> = IMAGES.iter().map(|(n, _)| pixels(n)).collect();
    let refs: Vec<&ImageTensor> = imgs.iter().collect();
    let out = batched.run(&refs).unwrap();
    assert_eq!(out.len(), 3);
    for (i, img) in imgs.iter().enumerate() {
        let one = single.run(&[img]).unwrap();
        assert!(max_abs(&one[0][0].values, &out[i][0].values) <= 1e-5);
    }
}

#[test]
fn provenance_metadata_is_readable() {
    let model = Model::load(&tiny_model("panderm_tiny_ft.onnx")).unwrap();
    let m = model.metadata();
    assert_eq!(m.get("panderm.kind").map(String::as_str), Some("classifier"));
    assert_eq!(m.get("panderm.embed_dim").map(String::as_str), Some("128"));
    assert_eq!(m.get("panderm.num_classes").map(String::as_str), Some("3"));
    assert_eq!(m.get("panderm.source_sha256").map(String::len), Some(64));
}

/// Our SIMD activation quantizer (src/ops, swapped in for tract's scalar `QuantizeLinearU8` at
/// load) computes the int8 demo backbone's plan bit for bit like tract's own op: the same codes
/// reach the integer GEMMs. (The kernel itself is checked value by value in
/// `ops::quantize_kernel`'s unit test, including ties, NaN and saturation.)
#[test]
fn simd_activation_quantizer_equals_tracts_own() {
    use tract_onnx::prelude::*;
    let path = root().join("models/demo-int8/backbone.onnx");
    let (typed, _) = panderm_edge::engine::load_decluttered(&path, &ModelOptions::default()).unwrap();
    let tracts = typed.into_optimized().unwrap();
    let mut ours = tracts.clone();
    let installed = panderm_edge::ops::install(&mut ours).unwrap();
    // The demo backbone (depth 2) has 4 activation quantizers per block.
    assert_eq!(installed.quantizers, 8, "{installed:?}");
    assert!(ours.nodes().iter().any(|n| n.op.name() == "PandermQuantizeLinear"));
    for (name, _) in IMAGES {
        let x = pixels(name);
        let input = Tensor::from_shape(&[1, 3, 224, 224], &x.data).unwrap();
        let run = |m: &TypedModel| {
            let out = m.clone().into_runnable().unwrap().run(tvec!(input.clone().into_tvalue())).unwrap();
            out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
        };
        let (a, b) = (run(&tracts), run(&ours));
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{name}: outputs differ");
    }
}
