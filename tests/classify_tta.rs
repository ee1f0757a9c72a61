//! Test-time augmentation through the classifier (`Classifier::set_tta`, `panderm classify --tta N
//! --seed S`): the heads' probabilities are PanDerm's `softmax(mean logits)` over the seeded
//! augmentations, and a run repeats exactly.

mod common;

use common::*;
use panderm_edge::classify::{Classifier, image_digest};
use panderm_edge::engine::Model;
use panderm_edge::preprocess::tta::{self, Tta};
use panderm_edge::preprocess::{DecodeLimits, decode_bytes};

fn head_probs(report: &panderm_edge::classify::ClassifyReport<'_>) -> Vec<Vec<f32>> {
    report.heads.iter().map(|h| h.probabilities.clone()).collect()
}

#[test]
fn tta_heads_average_the_augmentations_and_repeat() {
    let img = image("clinical_forearm_iphone14.jpg");
    let mut c = Classifier::load(&demo()).unwrap();
    c.set_quality_gate_blocks(false);
    let plain = head_probs(&c.classify(&img, 3).unwrap());
    let t = Tta::new(3, 11).unwrap();
    c.set_tta(Some(t)).unwrap();
    let report = c.classify(&img, 3).unwrap();
    assert_eq!(report.tta, Some(t));
    let (got, feature) = (head_probs(&report), report.feature.clone());
    drop(report);
    assert_eq!(got, head_probs(&c.classify(&img, 3).unwrap()), "same seed, same image: same result");
    assert_ne!(got, plain);
    c.set_tta(Some(Tta::new(3, 12).unwrap())).unwrap();
    assert_ne!(got, head_probs(&c.classify(&img, 3).unwrap()), "another seed draws other augmentations");

    // The same numbers by hand: the backbone on each augmentation, each head on each feature,
    // softmax(mean log p) (= softmax of the mean logits).
    let bytes = std::fs::read(&img).unwrap();
    let digest = image_digest(&img, &bytes).unwrap();
    let rgb = decode_bytes(&bytes, false, DecodeLimits::default()).unwrap();
    let backbone = Model::load(&demo().join("backbone.onnx")).unwrap();
    let features: Vec<Vec<f32>> = t
        .tensors(&rgb, &digest)
        .unwrap()
        .iter()
        .map(|x| backbone.run(&[x]).unwrap().remove(0).remove(0).values)
        .collect();
    for (h, want_probs) in c.bundle().manifest.heads.iter().zip(&got) {
        let head = Model::load(&demo().join(&h.file)).unwrap();
        let per_aug: Vec<Vec<f32>> =
            features.iter().map(|f| head.run_samples(&[f]).unwrap().remove(0).remove(0).values).collect();
        let want = tta::probabilities_from_mean_log(&per_aug);
        assert!(max_abs(&want, want_probs) < 1e-6, "{}: {want:?} vs {want_probs:?}", h.name);
    }
    assert!(max_abs(&feature, &tta::mean_logits(&features)) < 1e-6, "the report's feature is the mean");
}

#[test]
fn classify_cli_tta_is_seeded() {
    let img = image("clinical_forearm_iphone14.jpg");
    let (img, bundle) = (img.to_string_lossy(), demo().to_string_lossy().into_owned());
    let run = |extra: &[&str]| {
        let mut args = vec!["classify", "--bundle", &bundle, "--json", "--no-quality-gate"];
        args.extend_from_slice(extra);
        args.push(&img);
        let out = panderm(&args);
        assert!(out.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["heads"].clone(), v["tta"].clone())
    };
    let (a, tta_a) = run(&["--tta", "4", "--seed", "3"]);
    assert_eq!(tta_a, serde_json::json!({"augmentations": 4, "seed": 3}));
    assert_eq!(run(&["--tta", "4", "--seed", "3"]).0, a);
    assert_ne!(run(&["--tta", "4", "--seed", "4"]).0, a);
    // The default seed is 0; no --tta (or 0) is the plain pipeline without a `tta` field.
    assert_eq!(run(&["--tta", "4"]).0, run(&["--tta", "4", "--seed", "0"]).0);
    let (plain, no_tta) = run(&[]);
    assert!(no_tta.is_null());
    assert_eq!(run(&["--tta", "0"]).0, plain);
    let out = panderm(&["classify", "--bundle", &bundle, "--seed", "3", &img]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--tta"));
}
