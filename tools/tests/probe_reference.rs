//! `probe` reproduces PanDerm's own linear probe (`lp_reference.json`: PanDerm's
//! `logistic_regression.py` + `get_eval_metrics` on fixed features).
//!
//! Tolerances (fixtures README): metrics within 0.005, probabilities within 0.01 — L-BFGS
//! stops at a tolerance, not bitwise, and PanDerm trains in float32 on the GPU.

mod common;
use common::*;

use std::process::Command;

use panderm_tools::probe::run::{ProbeOptions, run_probe};

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("lp_reference.json")).unwrap()).unwrap()
}

fn check(task: &str) {
    let r = &reference()[task];
    let dir = temp_dir(task);
    let out = run_probe(
        &fixture(&format!("lp_{task}_features.npy")),
        &fixture(&format!("lp_{task}.csv")),
        &dir,
        None,
        &ProbeOptions { bootstrap: Some(50), ..ProbeOptions::default() },
    )
    .unwrap();
    let m = &out.metrics;
    let got = [
        ("lin_acc", m.acc),
        ("lin_bacc", m.bacc),
        ("lin_kappa", m.kappa),
        ("lin_weighted_f1", m.weighted_f1),
        ("lin_auroc", m.auroc.unwrap()),
        ("lin_aupr", m.aupr.unwrap()),
        ("C", out.c),
    ];
    for (key, value) in got {
        let want = r[key].as_f64().unwrap();
        eprintln!("{task} {key}: {value:.6} (PanDerm {want:.6})");
        assert!((value - want).abs() <= 0.005, "{task} {key}: {value} vs PanDerm {want}");
    }
    let k = r["test_probs_first5"][0].as_array().unwrap().len();
    for (i, row) in r["test_probs_first5"].as_array().unwrap().iter().enumerate() {
        for (j, want) in row.as_array().unwrap().iter().enumerate() {
            let got = out.test_probs[i * k + j];
            assert!((got - want.as_f64().unwrap()).abs() <= 0.01, "{task} prob[{i}][{j}] = {got} vs {want}");
        }
    }
    eprintln!("{task}: L-BFGS {:?}", out.lbfgs);
}

#[test]
fn multiclass_matches_pandem_probe() {
    check("multiclass");
}

#[test]
fn binary_matches_pandem_probe() {
    check("binary");
}

#[test]
fn cli_writes_pandem_outputs() {
    let dir = temp_dir("cli");
    let summary = dir.join("all.csv");
    for _ in 0..2 {
        let o = Command::new(env!("CARGO_BIN_EXE_panderm-tools"))
            .args(["probe", "--features"])
            .arg(fixture("lp_binary_features.npy"))
            .arg("--csv")
            .arg(fixture("lp_binary.csv"))
            .arg("--output-dir")
            .arg(&dir)
            .arg("--summary-csv")
            .arg(&summary)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains("Test lin_auroc: 0.83"), "{stdout}");
    }
    let per_image = std::fs::read_to_string(dir.join("lp_binary.csv")).unwrap();
    assert_eq!(per_image.lines().next(), Some("filename,true_label,predicted_label,probability"), "{per_image}");
    let summary = std::fs::read_to_string(&summary).unwrap();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines[0], "Dataset,W_F1,AUROC,BACC,ACC,AUPR");
    assert_eq!(lines.len(), 3, "header once, one row per run: {summary}");
    assert!(lines[1].starts_with("lp_binary,"));
    for f in ["metrics.json", "head.json", "confusion_matrix_lp_binary.png"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
}

#[test]
fn features_that_do_not_match_the_csv_are_refused() {
    let dir = temp_dir("mismatch");
    let o = Command::new(env!("CARGO_BIN_EXE_panderm-tools"))
        .args(["probe", "--features"])
        .arg(fixture("lp_binary_features.npy"))
        .arg("--csv")
        .arg(fixture("lp_multiclass.csv"))
        .arg("--output-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("feature rows but the CSV has"), "{stderr}");
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "nothing written");
}
