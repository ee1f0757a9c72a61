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

/// The first output of a typed model (optimized by the caller) on one test image's pixels.
fn first_output(model: &tract_onnx::prelude::TypedModel, image: &str) -> Vec<f32> {
    use tract_onnx::prelude::*;
    let input = Tensor::from_shape(&[1, 3, 224, 224], &pixels(image).data).unwrap();
    let out = model.clone().into_runnable().unwrap().run(tvec!(input.into_tvalue())).unwrap();
    out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
}

/// Our SIMD ops (src/ops, swapped into the plan at load) against tract's own, one at a time, on
/// the int8 demo backbone (activation quantizers and softmaxes) and the fp32 tiny model
/// (softmaxes): the quantizer gives the same codes, so the outputs are bit for bit tract's; the
/// softmax's exp differs from tract's by a few ulp, so features agree to float precision. (The
/// kernels are checked value by value in their unit tests: ties, NaN, saturation, row lengths.)
#[test]
fn our_simd_ops_compute_what_tracts_own_ops_compute() {
    use panderm_edge::ops::{Selection, install_only};
    use tract_onnx::prelude::*;
    let only = |quantize, softmax| Selection { quantize, softmax, gelu: false };
    let with_gelu = Selection { quantize: true, softmax: false, gelu: true };
    // (model, which op, quantizers expected, softmaxes expected, bit-exact)
    let cases = [
        ("models/demo-int8/backbone.onnx", only(true, false), 8, 0, true),
        // The two MLP GELUs folded into the quantizers after them: still tract's floats and codes.
        ("models/demo-int8/backbone.onnx", with_gelu, 8, 0, true),
        ("models/demo-int8/backbone.onnx", only(false, true), 0, 2, false),
        ("models/tiny/panderm_tiny_lp.onnx", only(false, true), 0, 2, false),
    ];
    for (model, selection, quantizers, softmaxes, exact) in cases {
        let path = root().join(model);
        let (typed, _) = panderm_edge::engine::load_decluttered(&path, &ModelOptions::default()).unwrap();
        let tracts = typed.into_optimized().unwrap();
        let mut ours = tracts.clone();
        let installed = install_only(&mut ours, selection).unwrap();
        // The tiny models have depth 2: 4 activation quantizers and one softmax per block.
        assert_eq!((installed.quantizers, installed.softmaxes), (quantizers, softmaxes), "{model}: {installed:?}");
        // Depth 2: one MLP GELU per block.
        assert_eq!(installed.gelus, if selection.gelu { 2 } else { 0 }, "{model}: {installed:?}");
        for (name, _) in IMAGES {
            let run = |m: &TypedModel| first_output(m, name);
            let (a, b) = (run(&tracts), run(&ours));
            if exact {
                assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{model} {name}: outputs differ");
            } else {
                // Float32 rounding differences through 2 blocks (features of magnitude ~1): the
                // same bound as tract vs PyTorch on these models.
                check(&b, &a, true, &format!("{model} {name}: ours vs tract's ops"));
            }
        }
    }
}

/// Our layer normalization (src/ops/layer_norm.rs: one op in place of the five tract decomposes
/// ONNX `LayerNormalization` into) against tract's decomposition, on the fp32 tiny model and the
/// int8 demo backbone: every layer norm is found (depth 2: two per block and the final one), and
/// the features agree to float32 precision (the sums are taken in another order; in the int8
/// model an activation code may move by one step where the normalized value sits on a rounding
/// boundary, hence the same bound as tract vs PyTorch). Runs on every target (the op is portable
/// Rust; the runtime installs it on x86_64).
#[test]
fn our_layer_norm_computes_what_tracts_decomposition_computes() {
    use tract_onnx::prelude::*;
    for model in ["models/tiny/panderm_tiny_lp.onnx", "models/demo-int8/backbone.onnx"] {
        let path = root().join(model);
        let (typed, _) = panderm_edge::engine::load_decluttered(&path, &ModelOptions::default()).unwrap();
        let mut ours = typed.clone();
        assert_eq!(panderm_edge::ops::layer_norm::install(&mut ours).unwrap(), 5, "{model}");
        let (tracts, ours) = (typed.into_optimized().unwrap(), ours.into_optimized().unwrap());
        let count = |m: &TypedModel, name: &str| m.nodes().iter().filter(|n| n.op.name() == name).count();
        assert_eq!((count(&ours, "PandermLayerNorm"), count(&ours, "RmsNorm")), (5, 0), "{model}");
        assert_eq!(count(&tracts, "PandermLayerNorm"), 0, "{model}");
        for (name, _) in IMAGES {
            let run = |m: &TypedModel| first_output(m, name);
            check(&run(&ours), &run(&tracts), true, &format!("{model} {name}: our layer norm vs tract's"));
        }
    }
}

/// The fused attention core (src/ops/attention.rs) against the three operators it replaces (our
/// two batched products and our softmax), on the fp32 tiny model and the int8 demo backbone: both
/// blocks fused, and the features bit for bit the same (the same multiply-add chains and the same
/// softmax row kernel, only in another order of rows and heads). x86_64 (where the batched
/// products are ours); elsewhere there is nothing to fuse.
#[test]
fn fused_attention_computes_what_the_unfused_operators_compute() {
    use panderm_edge::ops::{Selection, attention, batched_matmul, batched_matmul_kernel::Kernel, install_only};
    use tract_onnx::prelude::*;
    let Some(kernel) = Kernel::best() else {
        eprintln!("SKIPPED: no batched-product kernel of ours on this CPU (tract's run here)");
        return;
    };
    for model in ["models/tiny/panderm_tiny_lp.onnx", "models/demo-int8/backbone.onnx"] {
        let path = root().join(model);
        let (mut typed, _) = panderm_edge::engine::load_decluttered(&path, &ModelOptions::default()).unwrap();
        assert_eq!(batched_matmul::install(&mut typed, kernel).unwrap(), 4, "{model}");
        let mut fused = typed.clone();
        assert_eq!(attention::install(&mut fused).unwrap(), 2, "{model}");
        let softmax_only = Selection { quantize: false, softmax: true, gelu: false };
        let optimize = |m: TypedModel| {
            let mut m = m.into_optimized().unwrap();
            install_only(&mut m, softmax_only).unwrap();
            m
        };
        let (unfused, fused) = (optimize(typed), optimize(fused));
        let count = |m: &TypedModel, name: &str| m.nodes().iter().filter(|n| n.op.name() == name).count();
        assert_eq!(count(&fused, "PandermAttention"), 2, "{model}");
        assert_eq!((count(&fused, "PandermBatchedMatMul"), count(&fused, "PandermSoftmax")), (0, 0), "{model}");
        assert_eq!((count(&unfused, "PandermBatchedMatMul"), count(&unfused, "PandermSoftmax")), (4, 2), "{model}");
        for (name, _) in IMAGES {
            let run = |m: &TypedModel| first_output(m, name);
            let (a, b) = (run(&unfused), run(&fused));
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{model} {name}: outputs differ");
        }
    }
}

/// A NaN reaching an int8 activation quantizer is a model error, not the zero point tract's op
/// would write (which would carry the NaN out as finite, plausible features).
#[test]
fn nan_activations_in_an_int8_model_are_an_error() {
    let model = Model::load(&root().join("models/demo-int8/backbone.onnx")).unwrap();
    let mut data = pixels(IMAGES[0].0).data;
    data[1234] = f32::NAN;
    let e = model.run_raw(&data).unwrap_err();
    assert_eq!(e.kind(), panderm_edge::ErrorKind::Inference, "{e}");
    assert!(e.to_string().contains("NaN in the activations"), "{e}");
}
