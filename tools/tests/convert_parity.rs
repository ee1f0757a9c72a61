//! `panderm-tools convert` on checkpoints written by PanDerm's own code (`torch.save`),
//! checked against PanDerm's PyTorch outputs, in every layout PanDerm produces.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

use panderm_edge::engine::Model;
use panderm_edge::npy;
use panderm_edge::preprocess::ImageTensor;
use panderm_tools::onnx_graph::decode;

const STEMS: [&str; 3] = ["synthetic_224", "synthetic_333x517", "clinical_forearm_iphone14"];
const FILES: [&str; 3] = ["synthetic_224.png", "synthetic_333x517.png", "clinical_forearm_iphone14.jpg"];

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("reference_outputs.json")).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let n = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn convert(ckpt: &Path, out: &Path) -> String {
    let o =
        Command::new(env!("CARGO_BIN_EXE_panderm-tools")).arg("convert").arg(ckpt).arg("-o").arg(out).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "convert failed: {}{}", stdout, String::from_utf8_lossy(&o.stderr));
    stdout
}

/// Runs `model` on PanDerm's own normalized pixels for each reference image.
fn run_on_reference_pixels(model: &Path) -> Vec<Vec<f32>> {
    let m = Model::load(model).unwrap();
    STEMS
        .iter()
        .map(|s| {
            let px = npy::read_f32(&fixture(&format!("pixels_{s}.npy"))).unwrap();
            let t = ImageTensor { data: px.data, height: 224, width: 224 };
            m.run(&[&t]).unwrap().remove(0).remove(0).values
        })
        .collect()
}

/// Same decoded pixels: cosine ≥ 0.99999 and max abs ≤ 1e-3 (float32 accumulation order).
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    let (c, m) = (cosine(got, want), max_abs(got, want));
    eprintln!("{what}: cosine {c:.8} max abs {m:.2e}");
    assert!(c >= 0.99999 && m <= 1e-3, "{what}: cosine {c}, max abs {m}");
}

#[test]
fn linear_probe_layout_matches_pytorch() {
    let dir = temp_dir("lp");
    let out = dir.join("lp.onnx");
    let report = convert(&fixture("panderm_tiny_lp.pth"), &out);
    assert!(report.contains("flat state dict, bare keys"), "{report}");
    assert!(report.contains("D=128, depth=2, heads=2"), "{report}");
    assert!(report.contains("feature extractor"), "{report}");
    let r = reference();
    for (got, file) in run_on_reference_pixels(&out).iter().zip(FILES) {
        assert_close(got, &floats(&r["panderm_tiny_lp.pth"]["features"][file]), &format!("lp {file}"));
    }
}

#[test]
fn large_release_layout_matches_pytorch() {
    // panderm_tiny_ll.pth: the LP fixture's weights re-saved by torch with `encoder.` keys and
    // CAE pretraining extras (scripts/make_large_layout_fixture.py) -> same features.
    let dir = temp_dir("ll");
    let out = dir.join("ll.onnx");
    let report = convert(&fixture("panderm_tiny_ll.pth"), &out);
    assert!(report.contains("`encoder.`"), "{report}");
    assert!(report.contains("ignored:"), "{report}");
    assert!(report.contains("rd_pos_embed") || report.contains("mask_token"), "{report}");
    let r = reference();
    for (got, file) in run_on_reference_pixels(&out).iter().zip(FILES) {
        assert_close(got, &floats(&r["panderm_tiny_lp.pth"]["features"][file]), &format!("ll {file}"));
    }
}

#[test]
fn fine_tuned_layout_matches_pytorch() {
    let dir = temp_dir("ft");
    let out = dir.join("ft.onnx");
    let report = convert(&fixture("panderm_tiny_ft.pth"), &out);
    assert!(report.contains("state dict under 'model'"), "{report}");
    assert!(report.contains("classifier -> logits [N,3]"), "{report}");
    assert!(report.contains("relative position bias"), "{report}");
    let r = reference();
    for (got, file) in run_on_reference_pixels(&out).iter().zip(FILES) {
        assert_close(got, &floats(&r["panderm_tiny_ft.pth"]["outputs"][file]["logits"]), &format!("ft {file}"));
    }
}

#[test]
fn shipped_tiny_models_are_what_convert_writes() {
    // models/tiny/*.onnx are used by the runtime's own tests (which cannot depend on this
    // crate); they must be exactly today's conversion of the fixtures, tool version aside.
    let dir = temp_dir("shipped");
    for (ckpt, shipped) in
        [("panderm_tiny_lp.pth", "panderm_tiny_lp.onnx"), ("panderm_tiny_ft.pth", "panderm_tiny_ft.onnx")]
    {
        let out = dir.join(shipped);
        convert(&fixture(ckpt), &out);
        let normalize = |p: &Path| {
            let mut m = decode(&std::fs::read(p).unwrap()).unwrap();
            m.producer_version.clear();
            m.metadata_props.retain(|e| e.key != "panderm.tool");
            m
        };
        assert!(
            normalize(&out) == normalize(&root().join("models/tiny").join(shipped)),
            "models/tiny/{shipped} is stale: regenerate with `panderm-tools convert tests/fixtures/{ckpt} -o models/tiny/{shipped}`"
        );
    }
}
