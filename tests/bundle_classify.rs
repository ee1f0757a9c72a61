//! `panderm classify / info / verify` on the shipped demo bundle, and bundles that must be
//! refused: tampered files, unknown or missing manifest fields, mismatched head widths.

mod common;

use std::process::Output;

use common::*;

/// Non-zero exit, one `error:` line naming `needle`, nothing on stdout.
fn assert_refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure; stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{stderr:?} should mention {needle:?}");
    assert!(out.stdout.is_empty(), "nothing may run: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn classify_reports_every_head() {
    let img = image("clinical_forearm_iphone14.jpg");
    let out =
        panderm(&["classify", "--bundle", &demo().to_string_lossy(), "--json", "--top-k", "2", &img.to_string_lossy()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["notice"].as_str().unwrap().contains("not a medical device"));
    let heads = v["heads"].as_array().unwrap();
    assert_eq!(heads.len(), 2);
    for h in heads {
        let probs: Vec<f64> = h["probabilities"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()).collect();
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        let top = h["top_k"].as_array().unwrap();
        assert_eq!(top.len(), 2);
        assert!(top[0]["probability"].as_f64() >= top[1]["probability"].as_f64());
        if h["task"] == "binary" {
            let d = &h["decision"];
            assert_eq!(
                d["positive"].as_bool().unwrap(),
                d["score"].as_f64().unwrap() >= d["threshold"].as_f64().unwrap()
            );
        }
    }
    for k in ["decode_ms", "preprocess_ms", "backbone_ms", "heads_ms", "total_ms"] {
        assert!(v["timings"][k].as_f64().unwrap() >= 0.0);
    }
    // Human output also carries the demo notice.
    let out = panderm(&["classify", "--bundle", &demo().to_string_lossy(), &img.to_string_lossy()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("PIPELINE DEMO"));
}

#[test]
fn heads_see_the_backbone_features() {
    // The head's probabilities must be softmax(W·f + b) of the backbone's own features: run
    // the backbone through `panderm run` and the head through the runtime library.
    let img = image("synthetic_333x517.png");
    let out =
        panderm(&["run", "--model", &demo().join("backbone.onnx").to_string_lossy(), "--json", &img.to_string_lossy()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let feature = floats(&v["outputs"]["features"]);
    let head = panderm_edge::engine::Model::load(&demo().join("heads/lesion_colour.onnx")).unwrap();
    let want = head.run_samples(&[&feature]).unwrap().remove(0).remove(0).values;
    let out = panderm(&["classify", "--bundle", &demo().to_string_lossy(), "--json", &img.to_string_lossy()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = v["heads"].as_array().unwrap().iter().find(|h| h["name"] == "lesion_colour").unwrap();
    assert!(max_abs(&floats(&h["probabilities"]), &want) <= 1e-6);
}

#[test]
fn info_and_verify() {
    let out = panderm(&["verify", "--bundle", &demo().to_string_lossy()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("bundle verified"));
    let out = panderm(&["info", "--bundle", &demo().to_string_lossy()]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("PIPELINE DEMO") && s.contains("verified:  yes"), "{s}");
}

#[test]
fn tampered_head_is_refused_before_running() {
    let dir = copy_bundle("tampered");
    let head = dir.join("heads/lesion_colour.onnx");
    let mut bytes = std::fs::read(&head).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x01;
    std::fs::write(&head, bytes).unwrap();
    let img = image("synthetic_224.png");
    let out = panderm(&["classify", "--bundle", &dir.to_string_lossy(), "--json", &img.to_string_lossy()]);
    assert_refused(&out, "lesion_colour.onnx: SHA-256 mismatch");
    let out = panderm(&["verify", "--bundle", &dir.to_string_lossy()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("MISMATCH"));
    let out = panderm(&["info", "--bundle", &dir.to_string_lossy()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified:  NO"));
}

#[test]
fn bad_manifests_are_refused() {
    let img = image("synthetic_224.png");
    let img = img.to_string_lossy();
    type Edit = fn(String) -> String;
    let cases: [(&str, Edit, &str); 7] = [
        (
            "unknown-key",
            |t| t.replacen("[bundle]\n", "[bundle]\ncolour_scheme = \"dark\"\n", 1),
            "unknown field `colour_scheme`",
        ),
        (
            "missing-field",
            |t| t.lines().filter(|l| !l.starts_with("version =")).collect::<Vec<_>>().join("\n"),
            "missing field `version`",
        ),
        (
            "head-width",
            |t| t.replacen("input_dim = 128", "input_dim = 64", 1),
            "takes 64-d features but the backbone outputs 128-d",
        ),
        ("threshold", |t| t.replacen("threshold = 0.5", "threshold = 1.5", 1), "threshold 1.5 is outside [0, 1]"),
        ("escape", |t| t.replacen("file = \"backbone.onnx\"", "file = \"../backbone.onnx\"", 1), "plain relative path"),
        ("format", |t| t.replacen("format = 1", "format = 9", 1), "format 9 is not supported"),
        (
            "backbone-format",
            |t| t.replacen("kind = \"features\"\n", "kind = \"features\"\nformat = \"nnef\"\n", 1),
            "the manifest says backbone.format = \"nnef\" but the file is onnx",
        ),
    ];
    for (tag, edit, needle) in cases {
        let dir = copy_bundle(tag);
        edit_manifest(&dir, edit);
        let out = panderm(&["classify", "--bundle", &dir.to_string_lossy(), &img]);
        assert_refused(&out, needle);
    }
    let dir = copy_bundle("missing-file");
    std::fs::remove_file(dir.join("heads/lesion_pattern.onnx")).unwrap();
    assert_refused(&panderm(&["classify", "--bundle", &dir.to_string_lossy(), &img]), "lesion_pattern.onnx: missing");
}
