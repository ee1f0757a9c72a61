//! The device experience through `panderm`: the quality gate's "cannot assess", abstention, the
//! result screen, the audit log and `compare`.

mod common;

use std::path::Path;

use common::*;
use panderm_edge::abstain::Centroids;
use panderm_edge::bundle::sha256_file;

fn photo() -> String {
    image("clinical_forearm_iphone14.jpg").to_string_lossy().into_owned()
}

/// The JSON lines of a `classify --json` run, after checking its exit code against them: 0 when
/// every image was assessed, 4 when any got "cannot assess" (docs/reliability.md).
fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let cannot_assess = lines.iter().any(|l| l.get("status").is_some_and(|s| s == "cannot-assess"));
    let want = if cannot_assess { 4 } else { 0 };
    assert_eq!(out.status.code(), Some(want), "{}", String::from_utf8_lossy(&out.stderr));
    lines
}

/// The photo darkened to 5%: the gate must stop it before the model.
fn dark_photo(dir: &Path) -> String {
    let mut img = image::open(image("clinical_forearm_iphone14.jpg")).expect("photo").to_rgb8();
    for p in img.pixels_mut() {
        p.0 = p.0.map(|v| v / 20);
    }
    let path = dir.join("dark.png");
    img.save(&path).expect("save");
    path.to_string_lossy().into_owned()
}

#[test]
fn quality_gate_says_cannot_assess_and_skips_the_model() {
    let dir = temp_dir("ux-gate");
    let dark = dark_photo(&dir);
    let demo = demo();
    let reports = json_lines(&panderm(&["classify", "--bundle", &demo.to_string_lossy(), "--json", &photo(), &dark]));
    let (good, bad) = (&reports[0], &reports[1]);
    assert!(good.get("cannot_assess").is_none(), "{good}");
    assert_eq!(good["heads"].as_array().expect("heads").len(), 2);
    assert_eq!(bad["cannot_assess"]["reason"], "quality");
    // Darkening to 5% also flattens the texture the sharpness check measures.
    let codes = bad["cannot_assess"]["codes"].as_array().expect("codes");
    assert!(codes.contains(&serde_json::json!("underexposed")), "{codes:?}");
    assert!(bad["cannot_assess"]["message"].as_str().expect("message").starts_with("cannot assess"));
    assert!(bad["heads"].as_array().expect("heads").is_empty(), "the model must not run");
    assert_eq!(bad["timings"]["backbone_ms"], 0.0);
    // --no-quality-gate runs the model and still reports the failed check.
    let forced =
        json_lines(&panderm(&["classify", "--bundle", &demo.to_string_lossy(), "--json", "--no-quality-gate", &dark]));
    // (The model's own rule may still abstain: a 5%-bright photo is unlike the training images.)
    assert_ne!(forced[0]["cannot_assess"]["reason"], "quality", "{}", forced[0]);
    assert!(forced[0]["quality"]["checks"].as_array().expect("checks").iter().any(|c| c["passed"] == false));
    assert_eq!(forced[0]["heads"].as_array().expect("heads").len(), 2);
    // Same image hash as the file's.
    assert_eq!(good["image_sha256"], sha256_file(Path::new(&photo())).expect("sha"));
}

/// Adds an `[abstention]` rule to a bundle copy, with centroids and limit chosen by the test.
fn with_abstention(bundle: &Path, centroids: &Centroids, max_distance: f64, floor: Option<f64>) {
    std::fs::create_dir_all(bundle.join("abstention")).expect("mkdir");
    let file = bundle.join("abstention/centroids.npy");
    centroids.write(&file).expect("write centroids");
    let sha = sha256_file(&file).expect("sha");
    let floor = floor.map(|f| format!("min_top_probability = {f}\n")).unwrap_or_default();
    edit_manifest(bundle, |m| {
        let body = format!(
            "centroids_file = \"abstention/centroids.npy\"\ncentroids_sha256 = \"{sha}\"\n\
             source_head = \"lesion_colour\"\npercentile = 99.0\nmax_distance = {max_distance}\n{floor}"
        );
        set_table(&m, "abstention", &body)
    });
}

#[test]
fn abstention_rules_turn_confident_answers_into_cannot_assess() {
    // A centroid pointing the opposite way from the photo's feature: distance ~2.
    let demo = demo();
    let first = json_lines(&panderm(&["classify", "--bundle", &demo.to_string_lossy(), "--json", &photo()]));
    // The shipped demo's rule (p99 of its synthetic training images) accepts the photo.
    assert!(first[0]["ood_distance"].as_f64().expect("distance") <= 0.0249, "{}", first[0]);
    assert!(first[0].get("cannot_assess").is_none());
    let feature = {
        let out = panderm(&["run", "--model", &demo.join("backbone.onnx").to_string_lossy(), "--json", &photo()]);
        let v = &json_lines(&out)[0];
        v["outputs"]["features"]
            .as_array()
            .expect("features")
            .iter()
            .map(|x| x.as_f64().expect("f") as f32)
            .collect::<Vec<f32>>()
    };
    let near = Centroids::from_features(&feature, feature.len(), &[0], 1).expect("centroid");
    let far = Centroids::from_features(&feature.iter().map(|x| -x).collect::<Vec<_>>(), feature.len(), &[0], 1)
        .expect("centroid");
    // (centroids, max_distance, probability floor, expected reason or None)
    let cases: [(&Centroids, f64, Option<f64>, Option<&str>); 4] = [
        (&near, 0.05, None, None),
        (&far, 0.05, None, Some("out-of-distribution")),
        (&near, 0.05, Some(0.99), Some("low-confidence")),
        (&near, 0.05, Some(0.01), None),
    ];
    for (i, (c, max, floor, want)) in cases.into_iter().enumerate() {
        let bundle = copy_bundle(&format!("ux-abstain-{i}"));
        with_abstention(&bundle, c, max, floor);
        let r = &json_lines(&panderm(&["classify", "--bundle", &bundle.to_string_lossy(), "--json", &photo()]))[0];
        let d = r["ood_distance"].as_f64().expect("distance");
        assert!(if std::ptr::eq(c, &far) { d > 1.9 } else { d < 1e-5 }, "case {i}: distance {d}");
        assert_eq!(r["cannot_assess"]["reason"].as_str(), want, "case {i}: {r}");
        assert_eq!(r["heads"].as_array().expect("heads").len(), 2, "model outputs are still reported");
    }
    // A tampered centroids file is refused before anything runs.
    let bundle = copy_bundle("ux-abstain-tamper");
    with_abstention(&bundle, &near, 0.05, None);
    far.write(&bundle.join("abstention/centroids.npy")).expect("overwrite");
    let out = panderm(&["classify", "--bundle", &bundle.to_string_lossy(), &photo()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("centroids.npy: SHA-256 mismatch"));
}

#[test]
fn screen_png_uses_the_board_display_and_audit_log_verifies() {
    let dir = temp_dir("ux-screen");
    let png = dir.join("screen.png");
    let log = dir.join("logs/audit.jsonl");
    let demo = demo();
    for (board, size) in [("rpi4", (480, 320)), ("imx8mp", (480, 800)), ("armv7-a7", (320, 240))] {
        let out = panderm(&[
            "classify",
            "--bundle",
            &demo.to_string_lossy(),
            "--board",
            board,
            "--screen",
            &png.to_string_lossy(),
            "--audit-log",
            &log.to_string_lossy(),
            &photo(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let img = image::open(&png).expect("screen PNG").to_rgb8();
        assert_eq!(img.dimensions(), size, "{board}");
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["board"], "armv7-a7");
    assert_eq!(lines[0]["bundle"]["name"], "panderm-demo");
    assert_eq!(lines[0]["image_sha256"], sha256_file(Path::new(&photo())).expect("sha"));
    let verify = panderm(&["log", "verify", &log.to_string_lossy()]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    // More than one image with --screen is refused.
    let out = panderm(&["classify", "--bundle", &demo.to_string_lossy(), "--screen", "x.png", &photo(), &photo()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("exactly one image"));
}

#[test]
fn compare_flags_changes_beyond_the_bundle_limits() {
    let demo = demo();
    let sample = demo.join("sample.png").to_string_lossy().into_owned();
    let same = panderm(&["compare", "--bundle", &demo.to_string_lossy(), "--json", &photo(), &photo()]);
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stderr));
    let v: serde_json::Value = serde_json::from_slice(&same.stdout).expect("JSON");
    assert!(v["feature_distance"].as_f64().expect("d").abs() < 1e-6);
    assert_eq!(v["flagged"], false);
    // Tighten the limits: the photo vs the synthetic sample must now be flagged (exit 3).
    let bundle = copy_bundle("ux-compare");
    edit_manifest(&bundle, |m| set_table(&m, "compare", "max_feature_distance = 0.0\nmax_probability_change = 0.001"));
    let out = panderm(&["compare", "--bundle", &bundle.to_string_lossy(), "--json", &photo(), &sample]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["flagged"], true);
    assert!(v["reasons"].as_array().expect("reasons").len() >= 2, "{v}");
    // Impossible limits are refused when the bundle is read.
    edit_manifest(&bundle, |m| m.replace("max_probability_change = 0.001", "max_probability_change = 2.0"));
    let out = panderm(&["compare", "--bundle", &bundle.to_string_lossy(), &photo(), &sample]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_probability_change"));
}

#[test]
fn a_skin_check_head_replaces_the_colour_heuristic() {
    // The demo's binary head stands in for a learned skin detector: P(class 1) = 0.547 on the photo.
    let photo = photo();
    // (threshold, expected cannot-assess)
    for (threshold, refused) in [(0.5, false), (0.9, true)] {
        let bundle = copy_bundle(&format!("ux-skin-{refused}"));
        edit_manifest(&bundle, |m| {
            m.replacen("threshold = 0.5\n", &format!("threshold = {threshold}\nrole = \"skin-check\"\n"), 1)
        });
        let r = &json_lines(&panderm(&["classify", "--bundle", &bundle.to_string_lossy(), "--json", &photo]))[0];
        let names: Vec<&str> =
            r["heads"].as_array().expect("heads").iter().map(|h| h["name"].as_str().expect("name")).collect();
        // The skin check is not a clinical result; a refused image gets no clinical result at all.
        let expected: &[&str] = if refused { &[] } else { &["lesion_colour"] };
        assert_eq!(names, expected, "{r}");
        let check =
            r["quality"]["checks"].as_array().expect("checks").iter().find(|c| c["code"] == "not-skin").cloned();
        let check = check.expect("not-skin check");
        assert!((check["value"].as_f64().expect("p") - 0.5466).abs() < 1e-3, "{check}");
        assert_eq!(check["passed"], !refused);
        assert_eq!(r["cannot_assess"]["reason"].as_str() == Some("quality"), refused, "{r}");
    }
    // A sharp, well-exposed photo with its colours rotated (blue "skin"): the colour heuristic
    // refuses it before the model; a skin head that accepts it (threshold 0) overrides that.
    let dir = temp_dir("ux-skin-blue");
    let mut blue = image::open(&photo).expect("photo").to_rgb8();
    for p in blue.pixels_mut() {
        p.0 = [p.0[2], p.0[1], p.0[0]];
    }
    let blue_path = dir.join("blue.png");
    blue.save(&blue_path).expect("save");
    let blue_path = blue_path.to_string_lossy().into_owned();
    let r = &json_lines(&panderm(&["classify", "--bundle", &demo().to_string_lossy(), "--json", &blue_path]))[0];
    assert_eq!(r["cannot_assess"]["codes"], serde_json::json!(["not-skin"]), "colour heuristic: {r}");
    let bundle = copy_bundle("ux-skin-accepts");
    edit_manifest(&bundle, |m| m.replacen("threshold = 0.5\n", "threshold = 0.0\nrole = \"skin-check\"\n", 1));
    let r = &json_lines(&panderm(&["classify", "--bundle", &bundle.to_string_lossy(), "--json", &blue_path]))[0];
    assert_ne!(r["cannot_assess"]["reason"], "quality", "the skin head decides: {r}");
    assert_eq!(r["heads"].as_array().expect("heads").len(), 1, "{r}");
    // A multiclass head cannot be the skin check.
    let bundle = copy_bundle("ux-skin-bad");
    edit_manifest(&bundle, |m| {
        m.replace(
            "input_dim = 128\n\n[heads.provenance]",
            "input_dim = 128\nrole = \"skin-check\"\n\n[heads.provenance]",
        )
    });
    let out = panderm(&["classify", "--bundle", &bundle.to_string_lossy(), &photo]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("skin-check"), "{}", String::from_utf8_lossy(&out.stderr));
}
