//! `extract` resumes a killed run where it stopped — dropping a torn last write — and
//! refuses to continue a partial output from another job (model, CSV, shard, device) or one
//! that holds fewer rows than its progress record says.

mod common;
use common::*;

use std::path::Path;
use std::process::Output;

fn extract(model: &Path, csv: &Path, images: &Path, out: &Path) -> Output {
    extract_with(model, csv, images, out, &[])
}

fn extract_with(model: &Path, csv: &Path, images: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
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
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tools(&args)
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

fn synth(dir: &Path, count: usize) -> std::path::PathBuf {
    let images = dir.join("images");
    synth_images(&images, count);
    images
}

fn sidecar(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Issue 12: the partial output of shard 1/2 was resumed as shard 2/2 (both have 5 rows of
/// the 10-row CSV), mixing shard 1's rows into shard 2's file. The resume check compares the
/// job's identity — shard, row range, CSV size, device and tool — and refuses a foreign partial.
#[test]
fn a_partial_of_another_shard_is_refused() {
    let dir = temp_dir("resume-shard");
    let images = synth(&dir, 10);
    let csv = images.join("multiclass.csv");
    let model = root().join("models/tiny/panderm_tiny_lp.onnx");
    let first = dir.join("first.npy");
    let o = extract_with(&model, &csv, &images, &first, &["--shard", "1/2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let done = std::fs::read(&first).unwrap();
    let record = sidecar(&dir.join("first.npy.json"));
    assert_eq!((record["row_start"].as_u64(), record["row_end"].as_u64()), (Some(0), Some(5)));

    // Shard 1/2 "killed" after 3 rows, then resumed under the name of shard 2/2.
    let row_bytes = 128 * 4;
    let header = done.len() - 5 * row_bytes;
    let partial = done[..header + 3 * row_bytes].to_vec();
    let mut progress = record.clone();
    progress["rows_done"] = 3.into();
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("shard", progress.clone(), "shard 1/2"),
        ("unsharded", progress.clone(), "shard 1/2"),
        (
            "range",
            {
                // The same shard label with another row range (a hand-edited or foreign record).
                let mut p = progress.clone();
                p["shard"] = "2/2".into();
                p
            },
            "rows 0..5",
        ),
        (
            "device",
            {
                let mut p = progress.clone();
                p["shard"] = "2/2".into();
                p["row_start"] = 5.into();
                p["row_end"] = 10.into();
                p["device"] = "cuda".into();
                p
            },
            "cuda",
        ),
    ];
    for (tag, progress, needle) in cases {
        let out = dir.join(format!("{tag}.npy"));
        std::fs::write(dir.join(format!("{tag}.npy.partial")), &partial).unwrap();
        std::fs::write(dir.join(format!("{tag}.npy.progress.json")), progress.to_string()).unwrap();
        let extra: &[&str] = if tag == "unsharded" { &[] } else { &["--shard", "2/2"] };
        let o = extract_with(&model, &csv, &images, &out, extra);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{tag}: a foreign partial must be refused: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.lines().count() == 1, "{tag}: {stderr}");
        assert!(stderr.contains("--restart"), "{tag}: {stderr}");
        assert!(stderr.contains(needle), "{tag}: {stderr:?} should mention {needle:?}");
        assert_eq!(std::fs::read(dir.join(format!("{tag}.npy.partial"))).unwrap(), partial, "{tag}: left untouched");
        assert!(!out.exists(), "{tag}");
    }

    // --restart discards it and computes shard 2/2 from scratch.
    let out = dir.join("shard.npy");
    let o = extract_with(&model, &csv, &images, &out, &["--shard", "2/2", "--restart"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let second = sidecar(&dir.join("shard.npy.json"));
    assert_eq!((second["row_start"].as_u64(), second["row_end"].as_u64()), (Some(5), Some(10)));
}

/// A partial file shorter than its progress record claims (or with another array header)
/// was silently padded with zero rows on resume; it is refused instead.
#[test]
fn a_partial_that_disagrees_with_its_progress_record_is_refused() {
    let dir = temp_dir("resume-short");
    let images = synth(&dir, 6);
    let csv = images.join("multiclass.csv");
    let model = root().join("models/tiny/panderm_tiny_lp.onnx");
    let full = dir.join("full.npy");
    assert!(extract(&model, &csv, &images, &full).status.success());
    let done = std::fs::read(&full).unwrap();
    let mut progress = sidecar(&dir.join("full.npy.json"));
    progress["rows_done"] = 5.into();
    let row_bytes = 128 * 4;
    let header = done.len() - 6 * row_bytes;
    let mut other_header = panderm_edge::npy::header_f32(&[6, 64]);
    other_header.extend_from_slice(&done[header..header + 5 * row_bytes]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("short", done[..header + 2 * row_bytes].to_vec(), "holds 2 complete rows"),
        ("torn_header", done[..header / 2].to_vec(), "header"),
        ("other_header", other_header, "header"),
    ];
    for (tag, partial, needle) in cases {
        let out = dir.join(format!("{tag}.npy"));
        std::fs::write(dir.join(format!("{tag}.npy.partial")), &partial).unwrap();
        std::fs::write(dir.join(format!("{tag}.npy.progress.json")), progress.to_string()).unwrap();
        let o = extract(&model, &csv, &images, &out);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{tag}: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.lines().count() == 1, "{tag}: {stderr}");
        assert!(stderr.contains(needle), "{tag}: {stderr:?} should mention {needle:?}");
        assert_eq!(std::fs::read(dir.join(format!("{tag}.npy.partial"))).unwrap(), partial, "{tag}: left untouched");
        assert!(!out.exists(), "{tag}");
    }
}
