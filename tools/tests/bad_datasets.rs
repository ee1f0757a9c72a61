//! Bad dataset inputs are reported completely and before any long job starts; bad bundle
//! inputs are refused without writing a bundle.

mod common;
use common::*;

use std::path::Path;

#[test]
fn extract_reports_every_bad_row_before_starting() {
    let dir = temp_dir("extract");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::copy(fixture("images/synthetic_224.png"), images.join("a.png")).unwrap();
    let csv = dir.join("bad.csv");
    std::fs::write(
        &csv,
        "image,label,split\na.png,0,train\nmissing1.png,1,train\na.png,x,test\na.png,1,holdout\nmissing2.png,0,test\n",
    )
    .unwrap();
    let out = dir.join("f.npy");
    let o = tools(&[
        "extract",
        "--model",
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("models/tiny/panderm_tiny_lp.onnx")
            .to_string_lossy(),
        "--csv",
        &csv.to_string_lossy(),
        "--root",
        &images.to_string_lossy(),
        "-o",
        &out.to_string_lossy(),
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in ["4 bad rows", "line 3", "missing1.png", "line 4", "line 5", "holdout", "line 6", "missing2.png"] {
        assert!(stderr.contains(needle), "{stderr:?} should mention {needle:?}");
    }
    assert!(!out.exists() && !dir.join("f.npy.partial").exists(), "nothing may be written");
}

#[test]
fn missing_label_column_is_reported() {
    let dir = temp_dir("columns");
    let csv = dir.join("nolabel.csv");
    std::fs::write(&csv, "image,split\na.png,train\n").unwrap();
    let feats = dir.join("f.npy");
    panderm_edge::npy::write_f32(&feats, &[1, 4], &[0.0; 4]).unwrap();
    let o = tools(&[
        "probe",
        "--features",
        &feats.to_string_lossy(),
        "--csv",
        &csv.to_string_lossy(),
        "--output-dir",
        &dir.join("out").to_string_lossy(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("label"), "{stderr}");
    assert!(!dir.join("out").exists());
}

#[test]
fn bundle_refuses_a_head_of_another_width() {
    let dir = temp_dir("bundle");
    // Head trained on 48-d fixture features; the tiny backbone outputs 128-d.
    let probe_dir = dir.join("probe");
    let o = tools(&[
        "probe",
        "--features",
        &fixture("lp_binary_features.npy").to_string_lossy(),
        "--csv",
        &fixture("lp_binary.csv").to_string_lossy(),
        "--output-dir",
        &probe_dir.to_string_lossy(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let backbone = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("models/tiny/panderm_tiny_lp.onnx");
    let out = dir.join("bundle");
    let o = tools(&[
        "bundle",
        "--backbone",
        &backbone.to_string_lossy(),
        "--head",
        &format!("x={}", probe_dir.display()),
        "--name",
        "bad",
        "-o",
        &out.to_string_lossy(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("trained on 48-d features but the backbone outputs 128-d"), "{stderr}");
    assert!(!out.join("manifest.toml").exists());
}
