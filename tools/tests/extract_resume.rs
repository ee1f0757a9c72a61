//! `extract` resumes a killed run where it stopped — dropping a torn last write — and
//! refuses to continue a partial output from another model or CSV.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Output};

fn tools(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_panderm-tools")).args(args).output().unwrap()
}

fn extract(model: &Path, csv: &Path, images: &Path, out: &Path) -> Output {
    tools(&[
        "extract",
        "--model",
        &model.to_string_lossy(),
        "--csv",
        &csv.to_string_lossy(),
        "--root",
        &images.to_string_lossy(),
        "-o",
        &out.to_string_lossy(),
        "--quiet",
        "--batch-size",
        "3",
    ])
}

#[test]
fn killed_run_resumes_without_mixing_rows() {
    let dir = temp_dir("resume");
    let images = dir.join("images");
    let o =
        tools(&["synth-images", "--count", "10", "--width", "64", "--height", "48", "-o", &images.to_string_lossy()]);
    assert!(o.status.success());
    let csv = images.join("multiclass.csv");
    let model = root().join("models/tiny/panderm_tiny_lp.onnx");
    let full = dir.join("full.npy");
    assert!(extract(&model, &csv, &images, &full).status.success());
    let reference = std::fs::read(&full).unwrap();
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("full.npy.json")).unwrap()).unwrap();
    assert_eq!(sidecar["rows"], 10);
    assert_eq!(sidecar["rows_done"], 10);
    assert_eq!(sidecar["device"], "cpu");

    // Simulate a run killed after 6 durable rows, in the middle of writing row 7.
    let out = dir.join("resumed.npy");
    let row_bytes = 128 * 4;
    let header = reference.len() - 10 * row_bytes;
    let mut partial = reference[..header + 6 * row_bytes].to_vec();
    partial.extend_from_slice(&[0xAB; 100]); // torn write
    std::fs::write(dir.join("resumed.npy.partial"), &partial).unwrap();
    let mut progress = sidecar.clone();
    progress["rows_done"] = 6.into();
    std::fs::write(dir.join("resumed.npy.progress.json"), progress.to_string()).unwrap();
    let o = extract(&model, &csv, &images, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("4 computed in this run"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(std::fs::read(&out).unwrap(), reference, "resumed output must equal an uninterrupted run");
    assert!(!dir.join("resumed.npy.partial").exists() && !dir.join("resumed.npy.progress.json").exists());

    // A partial from another CSV is refused, and left untouched.
    let other = dir.join("other.npy");
    std::fs::write(dir.join("other.npy.partial"), &partial).unwrap();
    let mut foreign = sidecar.clone();
    foreign["rows_done"] = 6.into();
    foreign["csv_sha256"] = "0".repeat(64).into();
    std::fs::write(dir.join("other.npy.progress.json"), foreign.to_string()).unwrap();
    let o = extract(&model, &csv, &images, &other);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("different model or CSV"), "{stderr}");
    assert_eq!(std::fs::read(dir.join("other.npy.partial")).unwrap(), partial);
    assert!(!other.exists());
}
