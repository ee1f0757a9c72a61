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

// ---- The int8 demo bundle (models/demo-int8/) on every CPU -------------------------------------
//
// `cargo test int8` selects these (and tests/simd_kernels.rs's int8 kernel check); `.ci/run` runs
// them under qemu on the aarch64 CPUs of the boards (docs/arm.md).

/// The x86_64 int8 outputs that every target is compared with. Regenerate (x86_64 only) after
/// `scripts/make-demo-bundle.sh` changed models/demo-int8/:
/// `PANDERM_UPDATE_INT8_GOLDEN=1 cargo test --workspace --all-features --test bundle_classify int8`.
const INT8_GOLDEN: &str = "int8_demo_x86_64.json";

/// |p(this target) − p(x86_64 golden)| allowed per probability. The int8 GEMMs are exact integer
/// arithmetic on every CPU (u8×i8 products summed in i32, whichever kernel: AMX, VNNI, SDOT,
/// SMLAL, armv7 NEON), but everything around them is fp32 and each CPU's tract kernels round
/// differently (FMA or not, the summation order of the fp32 matrix products, LayerNorm and
/// Softmax reductions, the Erf approximation); a rounding difference that crosses a quantization
/// step moves one activation by a whole int8 level. Measured worst case over the images and heads
/// below, against the golden made with AMX/AVX-512 kernels: 3.0e-8 on aarch64 (qemu 7.2
/// cortex-a72, cortex-a76, cortex-a53) and on armv7 (cortex-a7), one f32 ulp of the probability;
/// the runtime's SIMD softmax and activation quantizer replacing tract's moved x86_64's own
/// outputs by 6.0e-8 (armv7 was 6.0e-8 from the golden before them). The bound is ~170× the
/// larger, for x86_64 machines with other fp32 kernels (FMA, AVX2), yet 20× below the
/// int8-vs-fp32 difference (2.1e-4, next test): a target that ran the fp32 graph, or quantized
/// differently, fails here.
const INT8_ARCH_TOLERANCE: f32 = 1e-5;

/// |p(int8) − p(fp32)| allowed per probability, same machine. `panderm-tools quantize` measured
/// up to 3e-4 (lesion_pattern) and 4e-4 (lesion_colour) over its 150 calibration images; on the
/// images below the worst case is 2.05e-4 on every target (x86_64, aarch64, armv7). The bound is
/// ~5× that: a broken int8 path (a wrong scale or zero point, a skipped requantization) moves
/// these heads' probabilities by far more. The smallest fp32 top-1 margin below is 0.004
/// (sample.png, lesion_colour), more than twice the bound, so a difference within it cannot flip
/// a top-1 class; the binary decisions are at least 0.04 from their threshold.
const INT8_FP32_TOLERANCE: f32 = 1e-3;

/// The int8 demo bundle.
fn demo_int8() -> std::path::PathBuf {
    root().join("models/demo-int8")
}

/// The images the int8 tests classify: the fixtures and the demo's sample, as repo-relative paths.
const INT8_IMAGES: [&str; 4] = [
    "tests/fixtures/images/synthetic_224.png",
    "tests/fixtures/images/synthetic_333x517.png",
    "tests/fixtures/images/clinical_forearm_iphone14.jpg",
    "models/demo/sample.png",
];

/// One image's outcome: status and, per head, (name, probabilities, binary decision).
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    image: &'static str,
    status: String,
    heads: Vec<(String, Vec<f32>, Option<bool>)>,
}

/// Classifies [`INT8_IMAGES`] with a bundle, in process. The quality gate only reports (the
/// synthetic 224×224 image fails it and would otherwise run no head).
fn classify_images(bundle: &std::path::Path) -> Vec<Outcome> {
    let mut c = panderm_edge::classify::Classifier::load(bundle).unwrap();
    c.set_quality_gate_blocks(false);
    INT8_IMAGES
        .iter()
        .map(|&image| {
            let r = c.classify(&root().join(image), 5).unwrap();
            let heads = r
                .heads
                .iter()
                .map(|h| (h.name.to_owned(), h.probabilities.clone(), h.decision.as_ref().map(|d| d.positive)))
                .collect::<Vec<_>>();
            assert_eq!(heads.len(), 2, "{image}: {r:?}");
            Outcome { image, status: serde_json::to_value(r.status).unwrap().as_str().unwrap().to_owned(), heads }
        })
        .collect()
}

/// The int8 bundle's outcomes, computed once per test binary (both int8 tests use them; under
/// qemu every classification costs seconds).
fn int8_outcomes() -> &'static [Outcome] {
    static OUT: std::sync::OnceLock<Vec<Outcome>> = std::sync::OnceLock::new();
    OUT.get_or_init(|| classify_images(&demo_int8()))
}

fn argmax(p: &[f32]) -> usize {
    (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap()
}

#[test]
fn int8_demo_bundle_is_the_int8_form_of_the_demo() {
    let int8 = panderm_edge::bundle::Bundle::open_verified(&demo_int8()).unwrap();
    let fp32 = panderm_edge::bundle::Bundle::open(&demo()).unwrap();
    let (m8, m32) = (&int8.manifest, &fp32.manifest);
    assert_eq!(m8.backbone.precision, panderm_edge::board::Precision::Int8);
    assert_eq!(m32.backbone.precision, panderm_edge::board::Precision::Fp32);
    assert!(m8.bundle.demo && m8.bundle.description.contains("int8"), "{:?}", m8.bundle);
    assert_eq!(m8.backbone.dim, m32.backbone.dim);
    assert_eq!(m8.backbone.variant, m32.backbone.variant);
    assert_eq!(m8.heads, m32.heads, "same heads, labels and thresholds");
    assert_eq!(m8.abstention, m32.abstention, "same abstention rule");
    assert_eq!(m8.preprocess, m32.preprocess);
    for f in ["heads/lesion_pattern.onnx", "heads/lesion_colour.onnx", "abstention/centroids.npy"] {
        assert_eq!(std::fs::read(demo_int8().join(f)).unwrap(), std::fs::read(demo().join(f)).unwrap(), "{f}");
    }
    // The quantizer records what it started from: the demo's own fp32 backbone.
    let model = panderm_edge::engine::Model::load(&demo_int8().join("backbone.onnx")).unwrap();
    let meta = model.metadata();
    assert_eq!(meta.get("panderm.quantization").map(String::as_str), Some("int8-static-u8"));
    assert_eq!(meta.get("panderm.quantization.fp32_sha256"), Some(&m32.backbone.sha256));
}

#[test]
fn int8_demo_matches_the_x86_64_golden() {
    let got = int8_outcomes();
    let sha = panderm_edge::bundle::Bundle::open(&demo_int8()).unwrap().manifest.backbone.sha256;
    let path = fixture(INT8_GOLDEN);
    if std::env::var("PANDERM_UPDATE_INT8_GOLDEN").is_ok_and(|v| v == "1") {
        assert_eq!(std::env::consts::ARCH, "x86_64", "the golden holds the x86_64 outputs");
        let images: Vec<serde_json::Value> = got
            .iter()
            .map(|o| {
                let heads: serde_json::Map<String, serde_json::Value> =
                    o.heads.iter().map(|(n, p, _)| (n.clone(), serde_json::json!(p))).collect();
                serde_json::json!({"image": o.image, "status": o.status, "probabilities": heads})
            })
            .collect();
        let v = serde_json::json!({
            "about": "models/demo-int8 on x86_64 (tests/bundle_classify.rs, int8_demo_matches_the_x86_64_golden); quality gate non-blocking",
            "backbone_sha256": sha,
            "images": images,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
        eprintln!("wrote {}", path.display());
    }
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        golden["backbone_sha256"].as_str(),
        Some(sha.as_str()),
        "{INT8_GOLDEN} is for another int8 backbone: regenerate it on x86_64 (see INT8_GOLDEN)"
    );
    let images = golden["images"].as_array().unwrap();
    assert_eq!(images.len(), got.len());
    let mut worst = 0f32;
    for (g, o) in images.iter().zip(got) {
        assert_eq!(g["image"].as_str(), Some(o.image));
        assert_eq!(g["status"].as_str(), Some(o.status.as_str()), "{}", o.image);
        for (name, p, _) in &o.heads {
            let want = floats(&g["probabilities"][name]);
            let d = max_abs(p, &want);
            eprintln!("{} {name}: |p - p(x86_64)| = {d:.3e}", o.image);
            worst = worst.max(d);
        }
    }
    eprintln!("int8 on {} vs x86_64 golden: max |dp| = {worst:.3e}", std::env::consts::ARCH);
    assert!(worst <= INT8_ARCH_TOLERANCE, "int8 probabilities differ from x86_64's by {worst:.3e}");
}

#[test]
fn int8_demo_agrees_with_the_fp32_demo() {
    let int8 = int8_outcomes();
    let fp32 = classify_images(&demo());
    let mut worst = 0f32;
    for (a, b) in int8.iter().zip(&fp32) {
        assert_eq!(a.status, b.status, "{}", a.image);
        for ((name, p8, d8), (_, p32, d32)) in a.heads.iter().zip(&b.heads) {
            assert_eq!(argmax(p8), argmax(p32), "{} {name}: top-1 differs: int8 {p8:?} fp32 {p32:?}", a.image);
            assert_eq!(d8, d32, "{} {name}: decision differs: int8 {p8:?} fp32 {p32:?}", a.image);
            let mut sorted = p32.clone();
            sorted.sort_by(|x, y| y.total_cmp(x));
            let d = max_abs(p8, p32);
            eprintln!("{} {name}: |p8 - p32| = {d:.3e} (fp32 top-1 margin {:.3})", a.image, sorted[0] - sorted[1]);
            worst = worst.max(d);
        }
    }
    eprintln!("int8 vs fp32 on {}: max |dp| = {worst:.3e}", std::env::consts::ARCH);
    assert!(worst <= INT8_FP32_TOLERANCE, "int8 probabilities differ from fp32 by {worst:.3e}");
}

// ---- An int8 bundle with its fp32 fallback ([backbone_fallback]) ------------------------------

/// models/demo-int8 plus models/demo's fp32 backbone as its `[backbone_fallback]`.
fn int8_with_fallback(tag: &str) -> std::path::PathBuf {
    let dir = temp_dir(tag).join("bundle");
    copy_dir(&demo_int8(), &dir);
    let fp32 = demo().join("backbone.onnx");
    std::fs::copy(&fp32, dir.join("backbone.fp32.onnx")).unwrap();
    let sha = panderm_edge::fsutil::sha256_file(&fp32).unwrap();
    edit_manifest(&dir, |m| {
        set_table(
            &m,
            "backbone_fallback",
            &format!("file = \"backbone.fp32.onnx\"\nsha256 = \"{sha}\"\nprecision = \"fp32\"\nformat = \"onnx\""),
        )
    });
    dir
}

/// The heads' JSON of `panderm classify --json` (the bundle names differ between the bundles).
fn heads_json(out: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["heads"].clone()
}

/// The fp32 fallback runs where int8 is slow (`PANDERM_INT8=slow` stands for an x86_64 CPU
/// without AVX-512 VNNI / AVX-VNNI, where tract's int8 was measured 2.8× slower than fp32), the
/// int8 backbone elsewhere, and a board profile's precision wins: the outputs are exactly those of
/// the fp32 and the int8 demo bundles.
/// Both backbone files are verified at load, whichever runs; a bad `PANDERM_INT8` and a fallback
/// that is not the fp32 form of an int8 backbone are refused.
#[test]
fn int8_bundle_with_fp32_fallback_runs_the_precision_the_cpu_suits() {
    let dir = int8_with_fallback("fallback");
    let (bundle, img) = (dir.to_string_lossy().into_owned(), image("clinical_forearm_iphone14.jpg"));
    let img = img.to_string_lossy().into_owned();
    let classify = |bundle: &str, int8: Option<&str>| {
        let mut cmd = panderm_command();
        cmd.env("RUST_LOG", "panderm_edge=info").args(["classify", "--bundle", bundle, "--json", &img]);
        if let Some(v) = int8 {
            cmd.env("PANDERM_INT8", v);
        }
        cmd.output().unwrap()
    };
    let fp32 = heads_json(&classify(&demo().to_string_lossy(), None));
    let int8 = heads_json(&classify(&demo_int8().to_string_lossy(), None));
    assert_ne!(fp32, int8, "the two precisions must be told apart by their outputs");
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(dir.join("manifest.toml")).unwrap()).unwrap();
    for (verdict, want, file, table, precision) in [
        ("slow", &fp32, "fp32 backbone `backbone.fp32.onnx`", "backbone_fallback", "fp32"),
        ("fast", &int8, "int8 backbone `backbone.onnx`", "backbone", "int8"),
    ] {
        let out = classify(&bundle, Some(verdict));
        assert_eq!(&heads_json(&out), want, "PANDERM_INT8={verdict}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(file), "PANDERM_INT8={verdict}: {stderr}");
        // The report (and so the audit record) names the file that ran and its digest.
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["backbone"]["file"], manifest[table]["file"].as_str().unwrap(), "{report}");
        assert_eq!(report["backbone"]["sha256"], manifest[table]["sha256"].as_str().unwrap(), "{report}");
        assert_eq!(report["backbone"]["precision"], precision, "{report}");
    }
    // Without the override the CPU decides; the run succeeds either way.
    heads_json(&classify(&bundle, None));
    // A board profile's precision wins when the bundle carries it (x86_64: fp32, rpi5: int8),
    // whatever the CPU's verdict, and then there is no precision warning.
    for (board, verdict, want) in [("x86_64", "fast", &fp32), ("rpi5", "slow", &int8)] {
        let out = panderm_command()
            .env("PANDERM_INT8", verdict)
            .args(["classify", "--board", board, "--bundle", &bundle, "--json", &img])
            .output()
            .unwrap();
        assert_eq!(&heads_json(&out), want, "--board {board}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("is set up for"), "--board {board}: {stderr}");
    }
    assert_refused(&classify(&bundle, Some("maybe")), "PANDERM_INT8");
    assert!(panderm(&["verify", "--bundle", &bundle]).status.success());

    // A modified fallback refuses the bundle even where the int8 backbone would run.
    let bad = int8_with_fallback("fallback-tampered");
    let mut bytes = std::fs::read(bad.join("backbone.fp32.onnx")).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(bad.join("backbone.fp32.onnx"), bytes).unwrap();
    let bad_s = bad.to_string_lossy().into_owned();
    for verdict in ["fast", "slow"] {
        let out = classify(&bad_s, Some(verdict));
        assert!(!out.status.success(), "PANDERM_INT8={verdict}: a modified fallback was loaded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("backbone.fp32.onnx: SHA-256 mismatch"), "{stderr}");
    }
    assert!(!panderm(&["verify", "--bundle", &bad_s]).status.success());

    // Only the fp32 form of an int8 backbone is a fallback.
    let wrong = int8_with_fallback("fallback-int8");
    edit_manifest(&wrong, |m| {
        m.replace("precision = \"fp32\"\nformat = \"onnx\"", "precision = \"int8\"\nformat = \"onnx\"")
    });
    assert_refused(&classify(&wrong.to_string_lossy(), None), "must be the fp32 form of an int8 [backbone]");
}
