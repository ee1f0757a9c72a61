//! Sharded extraction merges into exactly the single-run file; mismatched shards are refused;
//! `--device cuda` without a GPU is a clear error and `auto` falls back to the CPU.

mod common;
use common::*;

use std::path::Path;
use std::process::Output;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

fn extract_args(model: &Path, images: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = s(&["extract", "--quiet", "--batch-size", "2", "--model"]);
    a.push(model.to_string_lossy().into_owned());
    a.extend(s(&["--csv"]));
    a.push(images.join("multiclass.csv").to_string_lossy().into_owned());
    a.push("--root".into());
    a.push(images.to_string_lossy().into_owned());
    a.push("-o".into());
    a.push(out.to_string_lossy().into_owned());
    a.extend(s(extra));
    a
}

#[test]
fn three_shards_merge_into_the_single_run() {
    let dir = temp_dir("merge");
    let images = dir.join("images");
    synth_images(&images, 11);
    let model = root().join("models/tiny/panderm_tiny_lp.onnx");
    let single = dir.join("single.npy");
    let o = tools(&extract_args(&model, &images, &single, &[]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut shards = Vec::new();
    for i in [3, 1, 2] {
        let out = dir.join(format!("shard{i}.npy"));
        let o = tools(&extract_args(&model, &images, &out, &["--shard", &format!("{i}/3")]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        shards.push(out.to_string_lossy().into_owned());
    }
    let merged = dir.join("merged.npy");
    let mut args = s(&["merge-features", "-o", &merged.to_string_lossy()]);
    args.extend(shards.iter().cloned());
    let o = tools(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&merged).unwrap(), std::fs::read(&single).unwrap());

    // A missing shard is refused.
    let o = tools(&s(&["merge-features", "-o", &dir.join("x.npy").to_string_lossy(), &shards[0], &shards[1]]));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing"), "{}", String::from_utf8_lossy(&o.stderr));

    // A shard from another model is refused.
    let other = dir.join("other2.npy");
    let o = tools(&extract_args(&root().join("models/demo/backbone.onnx"), &images, &other, &["--shard", "2/3"]));
    assert!(o.status.success());
    let o = tools(&s(&[
        "merge-features",
        "-o",
        &dir.join("y.npy").to_string_lossy(),
        &shards[1],
        &other.to_string_lossy(),
        &shards[0],
    ]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("a different model"), "{err}");
    assert!(!dir.join("y.npy").exists());
}

#[test]
fn bad_shard_spec_is_refused() {
    for spec in ["0/3", "4/3", "3", "a/b", "1/0"] {
        let o = tools(&s(&["extract", "--model", "m.onnx", "--csv", "c.csv", "-o", "x.npy", "--shard", spec]));
        assert!(!o.status.success(), "{spec}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("--shard"), "{spec}");
    }
}

#[test]
fn cuda_without_a_driver_is_a_clear_error_and_auto_falls_back() {
    if panderm_tools::backend::cuda_available().is_ok() {
        eprintln!("a CUDA device is present: the no-driver behaviour cannot be checked here");
        return;
    }
    let dir = temp_dir("device");
    let images = dir.join("images");
    synth_images(&images, 2);
    let model = root().join("models/tiny/panderm_tiny_lp.onnx");
    let out = dir.join("f.npy");
    let o = tools(&extract_args(&model, &images, &out, &["--device", "cuda"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("CUDA"), "{err}");
    assert!(!out.exists());
    let o = tools(&extract_args(&model, &images, &out, &["--device", "auto"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().filter(|l| l.starts_with("note: no usable CUDA device")).count(), 1, "{err}");
    let sidecar: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("f.npy.json")).unwrap()).unwrap();
    assert_eq!(sidecar["device"], "cpu");
}

fn merge(dir: &Path, out: &str, shards: &[&Path]) -> Output {
    let mut args = s(&["merge-features", "-o"]);
    args.push(dir.join(out).to_string_lossy().into_owned());
    args.extend(shards.iter().map(|p| p.to_string_lossy().into_owned()));
    tools(&args)
}

/// Issue 12: `merge-features` accepted any set of files whose row ranges happened to tile
/// the CSV — shard 1/2 with shards 3/4 and 4/4, or a sidecar whose range disagrees with its
/// shard label. It now takes only the complete, disjoint shards 1..N of one job.
#[test]
fn merge_takes_only_the_complete_shards_of_one_job() {
    let dir = temp_dir("merge-job");
    let images = dir.join("images");
    synth_images(&images, 10);
    let model = root().join("models/tiny/panderm_tiny_lp.onnx");
    let shard = |spec: &str| {
        let out = dir.join(format!("s{}.npy", spec.replace('/', "of")));
        let o = tools(&extract_args(&model, &images, &out, &["--shard", spec]));
        assert!(o.status.success(), "{spec}: {}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let (h1, h2, q3, q4) = (shard("1/2"), shard("2/2"), shard("3/4"), shard("4/4"));
    let single = dir.join("single.npy");
    assert!(tools(&extract_args(&model, &images, &single, &[])).status.success());

    // The right set merges (and equals the single run).
    let o = merge(&dir, "ok.npy", &[&h2, &h1]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(dir.join("ok.npy")).unwrap(), std::fs::read(&single).unwrap());

    // An edited sidecar: shard 2/2 claiming rows 5..10 of an 11-row CSV.
    let lying = dir.join("lying.npy");
    std::fs::copy(&h2, &lying).unwrap();
    let mut side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("s2of2.npy.json")).unwrap()).unwrap();
    side["row_start"] = 4.into();
    side["rows"] = 6.into();
    side["rows_done"] = 6.into();
    std::fs::write(dir.join("lying.npy.json"), side.to_string()).unwrap();
    let mut backwards = side.clone();
    backwards["row_start"] = 9.into();
    backwards["row_end"] = 3.into();
    let back = dir.join("backwards.npy");
    std::fs::copy(&h2, &back).unwrap();
    std::fs::write(dir.join("backwards.npy.json"), backwards.to_string()).unwrap();

    let cases: Vec<(&str, Vec<&Path>, &str)> = vec![
        ("counts", vec![&h1, &q3, &q4], "shard 3/4"),
        ("duplicate", vec![&h1, &h1, &h2], "shard 1/2 is given twice"),
        ("missing", vec![&q3, &q4], "shard 1/4"),
        ("whole_and_shard", vec![&single, &h2], "not a shard"),
        ("lying", vec![&h1, &lying], "rows 4..10"),
        ("backwards", vec![&h1, &back], "rows 9..3"),
    ];
    for (tag, files, needle) in cases {
        let out = format!("merged-{tag}.npy");
        let o = merge(&dir, &out, &files);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{tag}: must be refused: {err}");
        assert!(err.starts_with("error: ") && err.lines().count() == 1, "{tag}: {err}");
        assert!(err.contains(needle), "{tag}: {err:?} should mention {needle:?}");
        assert!(!dir.join(&out).exists(), "{tag}");
        assert!(!dir.join(format!("{out}.partial")).exists(), "{tag}");
    }
}
