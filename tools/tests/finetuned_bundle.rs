//! A fine-tuned checkpoint becomes a single-model bundle whose classifier output is PanDerm's.

mod common;
use common::*;

use std::process::Command;

#[test]
fn fine_tuned_bundle_classifies_like_pytorch() {
    let dir = temp_dir("ft-bundle");
    let tools = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_panderm-tools")).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let onnx = dir.join("ft.onnx");
    tools(&[
        "convert",
        &root().join("tests/fixtures/panderm_tiny_ft.pth").to_string_lossy(),
        "-o",
        &onnx.to_string_lossy(),
    ]);
    let bundle = dir.join("bundle");
    classifier_bundle(&onnx, &bundle, "ft");
    let manifest = std::fs::read_to_string(bundle.join("manifest.toml")).unwrap();
    assert!(manifest.contains("kind = \"classifier\"") && manifest.contains("output = \"logits\""), "{manifest}");
    let img = root().join("tests/fixtures/images/synthetic_224.png");
    let o = Command::new(panderm_bin())
        // A synthetic 224 px image: a parity check, not a photo the quality gate would accept.
        .args(["classify", "--bundle", &bundle.to_string_lossy(), "--json", "--no-quality-gate"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let head = &v["heads"][0];
    assert_eq!(head["name"], "toy3");
    assert_eq!(head["top_k"][0]["label"], "b");
    let got: Vec<f64> = head["probabilities"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/fixtures/reference_outputs.json")).unwrap())
            .unwrap();
    let want = reference["panderm_tiny_ft.pth"]["outputs"]["synthetic_224.png"]["probs"].as_array().unwrap();
    for (g, w) in got.iter().zip(want) {
        // Same pixels (PNG) and float32 model: PanDerm's softmax to 1e-5.
        assert!((g - w.as_f64().unwrap()).abs() <= 1e-5, "{got:?} vs {want:?}");
    }
}
