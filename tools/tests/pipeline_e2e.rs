//! The whole workstation → device pipeline on synthetic images:
//! synth → convert → extract → probe → export-head → bundle → `panderm classify`, checking
//! that the device's probabilities equal the probe's test-split probabilities.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

fn tools(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_panderm-tools")).args(args).output().unwrap();
    assert!(o.status.success(), "panderm-tools {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn read_predictions(path: &Path) -> Vec<(String, Vec<f64>)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            (cols[0].to_owned(), cols[3..].iter().map(|v| v.parse().unwrap()).collect())
        })
        .collect()
}

#[test]
fn synth_to_classify() {
    let dir = temp_dir("pipeline");
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    tools(&["synth", "--embed-dim", "64", "--depth", "2", "--seed", "5", "-o", &p("bb.pth")]);
    tools(&["convert", &p("bb.pth"), "-o", &p("bb.onnx")]);
    tools(&["synth-images", "--count", "40", "--width", "96", "--height", "80", "--seed", "1", "-o", &p("images")]);
    let csv = dir.join("images/multiclass.csv");
    tools(&[
        "extract",
        "--model",
        &p("bb.onnx"),
        "--csv",
        &csv.to_string_lossy(),
        "--root",
        &p("images"),
        "-o",
        &p("feat.npy"),
        "--quiet",
        "--batch-size",
        "4",
    ]);
    assert!(dir.join("feat.npy.json").exists(), "sidecar");
    tools(&[
        "probe",
        "--features",
        &p("feat.npy"),
        "--csv",
        &csv.to_string_lossy(),
        "--output-dir",
        &p("probe"),
        "--labels",
        "brown,red,pale",
    ]);
    tools(&["export-head", &p("probe"), "-o", &p("head.onnx"), "--name", "colour"]);
    tools(&[
        "bundle",
        "--backbone",
        &p("bb.onnx"),
        "--head",
        &format!("colour={}", p("probe")),
        "--name",
        "e2e",
        "--demo",
        "--format",
        "onnx",
        "-o",
        &p("bundle"),
    ]);

    // probe stores the out-of-distribution statistics; bundle turns them into the abstention rule.
    let head_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("probe/head.json")).unwrap()).unwrap();
    let ood = &head_json["ood"];
    assert_eq!(ood["percentile"], 99.0);
    assert_eq!(ood["centroids"].as_array().unwrap().len(), 3);
    let q: Vec<f64> = ood["train_quantiles"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(q.windows(2).all(|w| w[0] <= w[1]), "quantiles ascend: {q:?}");
    assert!(q[3] <= ood["max_distance"].as_f64().unwrap() + 1e-12 && ood["max_distance"].as_f64().unwrap() <= q[4]);
    let manifest = std::fs::read_to_string(dir.join("bundle/manifest.toml")).unwrap();
    assert!(manifest.contains("[abstention]") && manifest.contains("source_head = \"colour\""), "{manifest}");
    assert!(dir.join("bundle/abstention/centroids.npy").exists());

    // The same bundle in the default format (NNEF for this graph): recorded in the manifest, same
    // probabilities below.
    tools(&[
        "bundle",
        "--backbone",
        &p("bb.onnx"),
        "--head",
        &format!("colour={}", p("probe")),
        "--name",
        "e2e",
        "--demo",
        "-o",
        &p("bundle-nnef"),
    ]);
    let manifest_nnef = std::fs::read_to_string(dir.join("bundle-nnef/manifest.toml")).unwrap();
    assert!(manifest_nnef.contains("file = \"backbone.nnef.tar\"") && manifest_nnef.contains("format = \"nnef\""));

    // --skin-head must name one of the bundle's heads, and a binary one (class 1 = skin).
    for (skin, needle) in [("nope", "`nope` is not one of the bundle's heads"), ("colour", "needs a binary head")] {
        let out = p(&format!("bundle-skin-{skin}"));
        let o = Command::new(env!("CARGO_BIN_EXE_panderm-tools"))
            .args(["bundle", "--backbone", &p("bb.onnx"), "--head", &format!("colour={}", p("probe"))])
            .args(["--name", "e2e", "--skin-head", skin, "-o", &out])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && stderr.contains(needle), "{stderr}");
        assert!(!Path::new(&out).join("manifest.toml").exists(), "nothing written");
    }

    let predictions = read_predictions(&dir.join("probe/multiclass.csv"));
    assert!(!predictions.is_empty());
    let images: Vec<String> = predictions.iter().map(|(f, _)| p(&format!("images/{f}"))).collect();
    let mut args =
        vec!["classify".to_owned(), "--bundle".into(), p("bundle"), "--json".into(), "--top-k".into(), "3".into()];
    // 96x80 synthetic images are below the quality gate's 224 px: run the model anyway.
    args.push("--no-quality-gate".into());
    args.extend(images.iter().cloned());
    let o = Command::new(panderm_bin()).args(&args).output().unwrap();
    let reports = reports_of(&o);
    assert_eq!(reports.len(), predictions.len());
    args[2] = p("bundle-nnef");
    let o = Command::new(panderm_bin()).args(&args).output().unwrap();
    let nnef_reports = reports_of(&o);
    for (a, b) in reports.iter().zip(&nnef_reports) {
        // NNEF is the same decluttered graph on the same kernels: identical probabilities.
        assert_eq!(a["heads"][0]["probabilities"], b["heads"][0]["probabilities"]);
    }
    for ((_, want), report) in predictions.iter().zip(&reports) {
        assert!(report["notice"].as_str().unwrap().contains("DEMO"));
        let head = &report["heads"][0];
        assert_eq!(head["name"], "colour");
        let got: Vec<f64> = head["probabilities"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        // Same features (tract, same graph, same preprocessing); the head runs in f32 on the
        // device and f64 in the probe: 1e-4 covers the rounding.
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-4, "device {got:?} vs probe {want:?}");
        }
        assert_eq!(head["top_k"].as_array().unwrap().len(), 3);
        // The gate still reports (the images are 96x80) but did not stop the model.
        let flags: Vec<&str> = report["quality"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["passed"] == false)
            .map(|c| c["code"].as_str().unwrap())
            .collect();
        assert!(flags.contains(&"too-small"), "{flags:?}");
        let d = report["ood_distance"].as_f64().expect("distance to the training centroids");
        assert!((0.0..=2.0).contains(&d));
    }
}

/// The JSON reports of a `classify --json` run, after checking the exit code against them: 0 when
/// every image was assessed, 4 when any got "cannot assess" (here: the bundle's abstention rule on
/// tiny synthetic images).
fn reports_of(o: &std::process::Output) -> Vec<serde_json::Value> {
    let reports: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let cannot_assess = reports.iter().any(|r| r["status"] == "cannot-assess");
    assert_eq!(o.status.code(), Some(if cannot_assess { 4 } else { 0 }), "{}", String::from_utf8_lossy(&o.stderr));
    reports
}
