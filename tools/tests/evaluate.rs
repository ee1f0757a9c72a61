//! `panderm-tools evaluate`: the device runtime's probabilities in PanDerm's `{split}.csv`, its
//! fine-tuning metrics in `metrics.json`, seeded TTA, int8 bundles and refused inputs. On the
//! shipped tiny fine-tuned classifier (`models/tiny/panderm_tiny_ft.onnx`, converted from
//! `tests/fixtures/panderm_tiny_ft.pth`) and synthetic images.

mod common;
use common::*;

use std::path::{Path, PathBuf};

use panderm_edge::classify::image_digest;
use panderm_edge::engine::Model;
use panderm_edge::preprocess::tta::{Augmentation, Tta, base_crop};
use panderm_edge::preprocess::{DecodeLimits, decode_bytes};
use panderm_edge::stats::softmax;
use panderm_tools::dataset::{self, LoadOptions, Split};
use panderm_tools::evaluate::metrics::ft_metrics;
use panderm_tools::evaluate::run::ft_split_order;
use serde_json::Value;

fn ft_onnx() -> PathBuf {
    root().join("models/tiny/panderm_tiny_ft.onnx")
}

/// 24 synthetic images with `multiclass.csv` (labels 0..3) and `binary.csv`.
fn images(dir: &Path) -> PathBuf {
    let imgs = dir.join("imgs");
    synth_images(&imgs, 24);
    imgs
}

/// Runs `evaluate` with `args` + `--output-dir out`; panics on failure.
fn evaluate(args: &[&str], out: &Path) -> Value {
    let mut all: Vec<String> = vec!["evaluate".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(["--output-dir".into(), s(out)]);
    let o = tools(&all);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap()
}

/// Runs `evaluate` expecting failure; returns stderr.
fn refused(args: &[&str]) -> String {
    let mut all = vec!["evaluate"];
    all.extend_from_slice(args);
    let o = tools(&all);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success() && !err.contains("panicked"), "{args:?}: {err}");
    err
}

/// `{split}.csv` rows: (filename, true, predicted, probabilities).
fn csv_rows(path: &Path) -> Vec<(String, usize, usize, Vec<f64>)> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with("\r\n"), "PanDerm's csv.writer ends rows with CRLF");
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let header = lines.next().unwrap();
    assert_eq!(
        header,
        "filename,true_label,predicted_label,probability_class_0,probability_class_1,probability_class_2"
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            for p in &f[3..] {
                assert_eq!(p.split_once('.').map(|(_, d)| d.len()), Some(8), "%.8f: {l}");
            }
            let probs = f[3..].iter().map(|p| p.parse().unwrap()).collect();
            (f[0].to_owned(), f[1].parse().unwrap(), f[2].parse().unwrap(), probs)
        })
        .collect()
}

/// `panderm classify --json` probabilities of the first head, per image.
fn classify(bundle: &Path, extra: &[&str], images: &[PathBuf]) -> Vec<Vec<f32>> {
    let mut cmd = std::process::Command::new(panderm_bin());
    cmd.args(["classify", "--bundle", &s(bundle), "--json", "--no-quality-gate"]).args(extra).args(images);
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["heads"][0]["probabilities"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap() as f32).collect()
        })
        .collect()
}

#[test]
fn evaluate_is_the_device_runtime_with_panderm_metrics() {
    let dir = temp_dir("evaluate-basic");
    let imgs = images(&dir);
    let csv = imgs.join("multiclass.csv");
    let bundle = dir.join("bundle");
    classifier_bundle(&ft_onnx(), &bundle, "ft");
    let by_model = evaluate(&["--model", &s(&ft_onnx()), "--csv", &s(&csv), "--root", &s(&imgs)], &dir.join("m"));
    let by_bundle = evaluate(&["--bundle", &s(&bundle), "--csv", &s(&csv), "--root", &s(&imgs)], &dir.join("b"));
    // The ONNX on PanDerm's eval transform and the bundle (NNEF backbone) agree to the digit.
    let rows = csv_rows(&dir.join("m/test.csv"));
    assert_eq!(std::fs::read(dir.join("m/test.csv")).unwrap(), std::fs::read(dir.join("b/test.csv")).unwrap());
    assert_eq!(by_model["metrics"], by_bundle["metrics"]);
    assert_eq!(by_bundle["model"]["head"], "toy3");
    assert_eq!(by_bundle["model"]["precision"], "fp32");

    // Rows in PanDerm's fine-tuning order (whole CSV shuffled with seed 42, then the split).
    let ds = dataset::load(&csv, Some(&imgs), &LoadOptions::default()).unwrap();
    let order: Vec<String> = ft_split_order(&ds, Split::Test).into_iter().map(|i| ds.rows[i].image.clone()).collect();
    assert_eq!(rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), order);
    assert!(rows.len() >= 3, "the synthetic split is too small: {}", rows.len());

    // The probabilities are `panderm classify`'s, and metrics.json is ft_metrics of them.
    let paths: Vec<PathBuf> = rows.iter().map(|r| imgs.join(&r.0)).collect();
    let probs = classify(&bundle, &[], &paths);
    for (row, p) in rows.iter().zip(&probs) {
        for (a, b) in row.3.iter().zip(p) {
            assert!((a - f64::from(*b)).abs() <= 5e-9, "{}: {:?} vs {p:?}", row.0, row.3);
        }
        assert_eq!(
            row.2,
            panderm_tools::evaluate::metrics::argmax(&p.iter().map(|&v| f64::from(v)).collect::<Vec<_>>())
        );
    }
    let y: Vec<usize> = rows.iter().map(|r| r.1).collect();
    let flat: Vec<f64> = probs.iter().flatten().map(|&v| f64::from(v)).collect();
    let want = serde_json::to_value(ft_metrics(&y, &flat, 3)).unwrap();
    assert_eq!(by_model["metrics"], want);
    assert_eq!(by_model["counts"]["evaluated"], rows.len());
    assert_eq!(by_model["counts"]["unreadable"], 0);
    assert_eq!(by_model["label_column"], "label");
    assert!(by_model["tta"].is_null());
}

#[test]
fn tta_is_seeded_and_shared_with_classify() {
    let dir = temp_dir("evaluate-tta");
    let imgs = images(&dir);
    let csv = imgs.join("multiclass.csv");
    let bundle = dir.join("bundle");
    classifier_bundle(&ft_onnx(), &bundle, "ft");
    let common = ["--csv", &s(&csv), "--root", &s(&imgs)];
    let run = |source: &[&str], tta: &[&str], out: &str| {
        let mut args: Vec<&str> = source.to_vec();
        args.extend_from_slice(&common);
        args.extend_from_slice(tta);
        let v = evaluate(&args, &dir.join(out));
        (v, csv_rows(&dir.join(out).join("test.csv")))
    };
    let model = ["--model", &s(&ft_onnx())];
    let (v, a) = run(&model, &["--tta", "3", "--seed", "5"], "a");
    assert_eq!(v["tta"], serde_json::json!({"augmentations": 3, "seed": 5}));
    assert_eq!(run(&model, &["--tta", "3", "--seed", "5"], "a2").1, a, "same seed: same numbers");
    assert_ne!(run(&model, &["--tta", "3", "--seed", "6"], "a3").1, a);
    let (_, plain) = run(&model, &[], "p");
    assert_ne!(plain, a);
    // The bundle draws the same augmentations (seeded by each image's digest), and so does
    // `panderm classify --tta 3 --seed 5`.
    let (_, by_bundle) = run(&["--bundle", &s(&bundle)], &["--tta", "3", "--seed", "5"], "b");
    let paths: Vec<PathBuf> = a.iter().map(|r| imgs.join(&r.0)).collect();
    let by_classify = classify(&bundle, &["--tta", "3", "--seed", "5"], &paths);
    for ((x, y), z) in a.iter().zip(&by_bundle).zip(&by_classify) {
        for ((p, q), r) in x.3.iter().zip(&y.3).zip(z) {
            assert!((p - q).abs() <= 1e-7 && (p - f64::from(*r)).abs() <= 5e-9, "{}: {x:?} {y:?} {z:?}", x.0);
        }
    }

    // One augmentation that happens to draw no random op is the TTA base transform alone:
    // Resize(246) + CenterCrop(224) + Normalize with std 0.229, then softmax of the logits.
    let first = &imgs.join(&a[0].0);
    let bytes = std::fs::read(first).unwrap();
    let digest = image_digest(first, &bytes).unwrap();
    let seed = (0..1000u64)
        .find(|&s| Tta::new(1, s).unwrap().draws(&digest)[0] == Augmentation::NONE)
        .expect("a seed without random ops");
    let seed_text = seed.to_string();
    let (_, one) = run(&model, &["--tta", "1", "--seed", &seed_text], "one");
    let rgb = decode_bytes(&bytes, false, DecodeLimits::default()).unwrap();
    let input = Augmentation::NONE.apply(&base_crop(&rgb).unwrap());
    let logits = Model::load(&ft_onnx()).unwrap().run(&[&input]).unwrap().remove(0).remove(0).values;
    let want = softmax(&logits);
    for (g, w) in one[0].3.iter().zip(&want) {
        assert!((g - f64::from(*w)).abs() <= 5e-9, "{:?} vs {want:?}", one[0].3);
    }
    assert_ne!(one[0].3, plain[0].3, "TTA's base transform is not the eval transform (246 / 0.229)");
}

#[test]
fn fp32_and_int8_bundles_side_by_side() {
    let dir = temp_dir("evaluate-int8");
    let imgs = images(&dir);
    let int8 = dir.join("ft.int8.onnx");
    let o = tools(&["quantize", &s(&ft_onnx()), "-o", &s(&int8), "--images", "4"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (b32, b8) = (dir.join("b32"), dir.join("b8"));
    classifier_bundle(&ft_onnx(), &b32, "ft");
    classifier_bundle(&int8, &b8, "ft");
    let data = ["--csv", &s(&imgs.join("multiclass.csv")), "--root", &s(&imgs)];
    let fp32 = evaluate(&[&["--bundle", &s(&b32)][..], &data].concat(), &dir.join("e32"));
    let q = evaluate(&[&["--bundle", &s(&b8)][..], &data].concat(), &dir.join("e8"));
    assert_eq!((fp32["model"]["precision"].as_str(), q["model"]["precision"].as_str()), (Some("fp32"), Some("int8")));
    let (r32, r8) = (csv_rows(&dir.join("e32/test.csv")), csv_rows(&dir.join("e8/test.csv")));
    let max_diff =
        r32.iter().zip(&r8).flat_map(|(a, b)| a.3.iter().zip(&b.3).map(|(x, y)| (x - y).abs())).fold(0.0, f64::max);
    // Different numbers (int8 weights), close ones (quantize reports |Δp| < 0.01 on this model).
    assert!(max_diff > 0.0 && max_diff < 0.02, "max |Δp| {max_diff}");
}

#[test]
fn bad_inputs_are_refused_or_counted() {
    let dir = temp_dir("evaluate-bad");
    let imgs = images(&dir);
    let model = s(&ft_onnx());
    let csv = imgs.join("multiclass.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let out = s(&dir.join("out"));

    // An undecodable image of the split is skipped, counted and listed.
    let ds = dataset::load(&csv, Some(&imgs), &LoadOptions::default()).unwrap();
    let victim = &ds.rows[ds.split_indices(Split::Test)[0]].image;
    std::fs::write(imgs.join(victim), b"not a png").unwrap();
    let v = evaluate(&["--model", &model, "--csv", &s(&csv), "--root", &s(&imgs)], &dir.join("out"));
    assert_eq!(v["counts"]["unreadable"], 1);
    assert_eq!(v["counts"]["evaluated"].as_u64().unwrap() + 1, v["counts"]["split_rows"].as_u64().unwrap());
    assert!(v["unreadable"][0]["path"].as_str().unwrap().ends_with(victim.as_str()), "{v}");
    assert!(!std::fs::read_to_string(dir.join("out/test.csv")).unwrap().contains(victim.as_str()));

    // Nothing readable: an error that points at --root.
    let e = refused(&["--model", &model, "--csv", &s(&csv), "--root", &s(&dir.join("nowhere")), "--output-dir", &out]);
    assert!(e.contains("images of split test could be read") && e.contains("--root"), "{e}");
    // A label the model cannot output.
    let bad = dir.join("bad.csv");
    let test_row = text.lines().find(|l| l.ends_with(",test")).unwrap();
    let (image, _) = test_row.split_once(',').unwrap();
    std::fs::write(&bad, text.replace(test_row, &format!("{image},5,test"))).unwrap();
    let e = refused(&["--model", &model, "--csv", &s(&bad), "--root", &s(&imgs), "--output-dir", &out]);
    assert!(e.contains("model has 3 classes") && e.contains(image), "{e}");
    // No rows in the split.
    let no_val = dir.join("no_val.csv");
    std::fs::write(&no_val, text.lines().filter(|l| !l.ends_with(",val")).collect::<Vec<_>>().join("\n")).unwrap();
    let e = refused(&["--model", &model, "--csv", &s(&no_val), "--split", "val", "--output-dir", &out]);
    assert!(e.contains("no rows with split=val"), "{e}");
    // A feature extractor is not a classifier.
    let lp = s(&root().join("models/tiny/panderm_tiny_lp.onnx"));
    let e = refused(&["--model", &lp, "--csv", &s(&csv), "--output-dir", &out]);
    assert!(e.contains("no `logits` output"), "{e}");
    // A bundle with a binary and a 3-class head, on a CSV with both label columns: ambiguous.
    let both = dir.join("both.csv");
    let mut lines = vec!["image,label,binary_label,split".to_owned()];
    lines.extend(ds.rows.iter().map(|r| format!("{},{},{},{}", r.image, r.label, r.label.min(1), r.split)));
    std::fs::write(&both, lines.join("\n")).unwrap();
    let demo = s(&root().join("models/demo"));
    let e = refused(&["--bundle", &demo, "--csv", &s(&both), "--root", &s(&imgs), "--output-dir", &out]);
    assert!(e.contains("several heads") && e.contains("lesion_pattern"), "{e}");
    // With only `label` (3 classes) the demo bundle's 3-class head is the one.
    let v = evaluate(&["--bundle", &demo, "--csv", &s(&csv), "--root", &s(&imgs)], &dir.join("demo"));
    assert_eq!(v["model"]["head"], "lesion_colour");
    // --seed without --tta, both or neither model source.
    assert!(refused(&["--model", &model, "--seed", "1", "--csv", &s(&csv), "--output-dir", &out]).contains("--tta"));
    assert!(refused(&["--csv", &s(&csv), "--output-dir", &out]).contains("--bundle"));
}
