//! A second, independent engine: ONNX Runtime (PyPI `onnxruntime`, driven by
//! `scripts/ort_run.py`, see `tests/common/ort.rs`) runs the same ONNX files as tract and must
//! agree to 1e-4.

mod common;

use common::ort::ort_run;
use common::*;
use panderm_edge::engine::{Model, ModelOptions};
use panderm_edge::npy;

/// A batch of the three PanDerm-normalized reference inputs, [3, 3, 224, 224].
fn reference_pixels() -> Vec<f32> {
    IMAGES
        .iter()
        .flat_map(|(name, _)| npy::read_f32(&fixture(&format!("pixels_{}.npy", stem(name)))).unwrap().data)
        .collect()
}

#[test]
fn tract_and_onnxruntime_agree() {
    let dir = temp_dir("ort");
    let data = reference_pixels();
    for (model_name, output) in [("panderm_tiny_lp.onnx", "features"), ("panderm_tiny_ft.onnx", "logits")] {
        let model_path = tiny_model(model_name);
        let Some(ort) = ort_run(&model_path, &[3, 3, 224, 224], &data, &dir, output) else { return };
        let model = Model::load_with(&model_path, &ModelOptions { batch_size: 3 }).unwrap();
        let tract = model.run_raw(&data).unwrap();
        assert_eq!(tract[0].shape, ort.shape, "{model_name}: shapes");
        let diff = max_abs(&tract[0].values, &ort.data);
        eprintln!("{model_name}: tract vs onnxruntime max abs diff {diff:.2e}");
        // Both engines compute in float32 with different kernels (accumulation order); 1e-4
        // absolute on O(1) outputs is ~100 ulp of headroom.
        assert!(diff <= 1e-4, "{model_name}: tract vs onnxruntime max abs diff {diff}");
    }
}

/// ONNX Runtime's own quantizer (`onnxruntime.quantization`, as a user would run it) writes each
/// of its forms of the tiny PanDerm export; tract must compute what ONNX Runtime computes on the
/// same file. Before the load-time import (src/onnx_quant) the QDQ forms ran with silently wrong
/// features (cosine 0.63 to ORT: every attention probability 1.0) and QOperator was refused.
#[test]
fn onnxruntime_quantized_forms_run_like_onnxruntime() {
    use prost::Message;
    let dir = temp_dir("ort_qforms");
    let data = reference_pixels();
    let shape = [3, 3, 224, 224];
    let calib = dir.join("calib.npy");
    npy::write_f32(&calib, &shape, &data).unwrap();
    let fp32 = tiny_model("panderm_tiny_lp.onnx");
    let options = ModelOptions { batch_size: 3 };
    let reference = Model::load_with(&fp32, &options).unwrap().run_raw(&data).unwrap().remove(0).values;
    // (form, weight MatMuls turned into MatMulInteger, Softmax re-quantizations in float): the
    // tiny model has 12 weight MatMuls and 2 attention softmaxes; the dynamic forms already use
    // MatMulInteger and have no Q/DQ around Softmax.
    let forms = [
        ("qdq_default", 12, 2),
        ("qdq_u8s8", 12, 2),
        ("qdq_s8s8", 12, 2),
        ("qdq_per_channel", 12, 2),
        ("qoperator", 12, 2),
        ("dyn_qint8", 0, 0),
        ("dyn_quint8", 0, 0),
    ];
    for (form, matmuls, softmaxes) in forms {
        let file = dir.join(format!("{form}.onnx"));
        let Some(()) = common::ort::ort_quantize(form, &fp32, &calib, &file) else { return };
        let mut proto = tract_onnx::pb::ModelProto::decode(&std::fs::read(&file).unwrap()[..]).unwrap();
        let report = panderm_edge::onnx_quant::import(&mut proto).unwrap();
        assert_eq!((report.matmuls_integer, report.softmax_requantized), (matmuls, softmaxes), "{form}: {report}");
        assert_eq!(report.qoperator_expanded > 0, form == "qoperator", "{form}: {report}");

        let tract = Model::load_with(&file, &options).unwrap_or_else(|e| panic!("{form}: {e}")).run_raw(&data).unwrap();
        let tract = &tract[0].values;
        let literal = common::ort::ort_run_as(&file, &shape, &data, &dir, "features", true).unwrap().data;
        let optimized = common::ort::ort_run_as(&file, &shape, &data, &dir, "features", false).unwrap().data;
        let d = tract.len() / 3;
        for i in 0..3 {
            let row = |v: &[f32]| v[i * d..(i + 1) * d].to_vec();
            let (t, lit, opt, f) = (row(tract), row(&literal), row(&optimized), row(&reference));
            let (c_lit, c_opt, c_self, c_fp32) =
                (cosine(&t, &lit), cosine(&t, &opt), cosine(&lit, &opt), cosine(&t, &f));
            eprintln!(
                "{form} image {i}: cosine tract–ORT(literal) {c_lit:.6}, tract–ORT {c_opt:.6}, \
                 ORT(literal)–ORT {c_self:.6}, tract–fp32 {c_fp32:.6}; max abs tract–ORT(literal) {:.2e}",
                max_abs(&t, &lit)
            );
            // ORT with graph optimizations off evaluates every Q/DQ node by its definition; tract
            // on the imported graph computes the same integer codes (measured 1.000000 on all
            // forms and images). What may differ is float accumulation order before a rounding
            // step: a flipped code is one quantization step on a few of 128 features.
            assert!(c_lit >= 0.9999, "{form} image {i}: tract vs ORT (literal) cosine {c_lit}");
            // ORT's optimized run fuses Q/DQ into integer kernels that round differently from its
            // own literal run; tract may be as far from it as ORT is from itself (0.997 measured).
            assert!(c_opt >= c_self - 2e-3, "{form} image {i}: tract vs ORT cosine {c_opt}, ORT vs itself {c_self}");
            // int8 of this random-weight tiny model stays within 0.98 of fp32 in ORT too (0.987–0.99).
            assert!(c_fp32 >= 0.98, "{form} image {i}: tract int8 vs fp32 cosine {c_fp32}");
        }
    }
}

/// `panderm run --backend ort`: the runtime's ONNX Runtime engine (cargo feature `ort`, the
/// wheel's libonnxruntime.so dlopened at run time) gives tract's outputs on the tiny fp32 model
/// and the int8 demo backbone; each bad configuration is one line naming what is wrong.
#[cfg(feature = "ort")]
#[test]
fn onnxruntime_backend_gives_tracts_outputs() {
    let Some(lib) = common::ort::ort_library() else { return };
    let lib = lib.to_string_lossy().into_owned();
    let img = image("clinical_forearm_iphone14.jpg").to_string_lossy().into_owned();
    // Every output of `run --json` (features, or the fine-tuned model's logits), in name order.
    let features = |out: &std::process::Output| -> Vec<f32> {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let outputs = v["outputs"].as_object().expect("outputs");
        assert!(!outputs.is_empty());
        outputs.values().flat_map(floats).collect()
    };
    // fp32: the two engines differ only in float accumulation order (1e-4 on O(1) features, as
    // tract_and_onnxruntime_agree). int8 (our static-u8 MatMulInteger form): the integer GEMMs are
    // exact in both, but a float difference before a quantizer can flip one activation code by a
    // step; measured max 2.4e-7 on this model, bound 5e-3 as in tools/tests/quantize.rs.
    for (model, tol) in [
        (tiny_model("panderm_tiny_lp.onnx"), 1e-4f32),
        (tiny_model("panderm_tiny_ft.onnx"), 1e-4),
        (root().join("models/demo-int8/backbone.onnx"), 5e-3),
    ] {
        let m = model.to_string_lossy().into_owned();
        let tract = features(&panderm(&["run", "--json", "--model", &m, &img]));
        let ort =
            features(&panderm(&["run", "--json", "--backend", "ort", "--ort-library", &lib, "--model", &m, &img]));
        let diff = max_abs(&tract, &ort);
        eprintln!("{m}: tract vs ONNX Runtime backend max abs {diff:.2e}");
        assert!(diff <= tol, "{m}: max abs {diff}");
    }
    let out = panderm(&["run", "--timings", "--backend", "ort", "--ort-library", &lib, "--model", &lp(), &img]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("onnxruntime") && stderr.contains("placed on [CPUExecutionProvider]"), "{stderr}");
    // `info --model --backend ort`: the engine's view, with ONNX Runtime's node placement.
    let out = panderm(&["info", "--model", &lp(), "--backend", "ort", "--ort-library", &lib]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("engine:  onnxruntime") && stdout.contains("placed on [CPUExecutionProvider]"), "{stdout}");
    assert!(String::from_utf8_lossy(&panderm(&["info", "--model", &lp()]).stdout).contains("engine:  tract"));
    // `bench --backend ort` reports the engine that ran; --profile is tract's.
    let out = panderm(&["bench", "--json", "--runs", "2", "--backend", "ort", "--ort-library", &lib, "--model", &lp()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["engine"]["engine"], "onnxruntime", "{report}");
    assert!(report["median_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{report}");
    let out =
        panderm(&["bench", "--profile", "--runs", "1", "--backend", "ort", "--ort-library", &lib, "--model", &lp()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("needs --backend tract"));

    // `classify --backend ort`: the bundle's backbone on ONNX Runtime, the heads on tract; the
    // probabilities are tract's within the features' difference (≤ 1.4e-6 above, through
    // linear heads and a softmax: 1e-4 is ample), for the fp32 and the int8 demo bundles.
    for bundle in [demo(), root().join("models/demo-int8")] {
        let b = bundle.to_string_lossy().into_owned();
        let probs = |out: &std::process::Output| -> Vec<f32> {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v["heads"].as_array().unwrap().iter().flat_map(|h| floats(&h["probabilities"])).collect()
        };
        let tract = probs(&panderm(&["classify", "--json", "--bundle", &b, &img]));
        let out = panderm_command()
            .env("RUST_LOG", "panderm_edge=info")
            .args(["classify", "--json", "--backend", "ort", "--ort-library", &lib, "--bundle", &b, &img])
            .output()
            .unwrap();
        let ort = probs(&out);
        let diff = max_abs(&tract, &ort);
        eprintln!("{b}: classify, tract vs ONNX Runtime backbone, probabilities max abs {diff:.2e}");
        assert!(diff <= 1e-4, "{b}: {diff}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("backbone on onnxruntime"), "{stderr}");
    }

    // A copy of the tiny model as tract NNEF: ONNX Runtime cannot run it.
    let dir = temp_dir("ort-backend");
    let nnef = dir.join("tiny.nnef.tar");
    panderm_edge::engine::convert_to_nnef(&tiny_model("panderm_tiny_lp.onnx"), &nnef).unwrap();
    let nnef = nnef.to_string_lossy().into_owned();
    // (arguments, the one error line's needle)
    let cases: [(Vec<&str>, &str); 4] = [
        (vec!["--ort-library", &lib, "--providers", "vsinpu,cpu"], "execution provider `vsinpu` is not in"),
        (vec!["--ort-library", "/nonexistent/libonnxruntime.so"], "/nonexistent/libonnxruntime.so"),
        (vec!["--ort-library", "/etc/hostname"], "cannot load it"),
        (vec!["--ort-library", &lib, "--model", &nnef], "NNEF archive, which only tract runs"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["run", "--backend", "ort"];
        if !extra.contains(&"--model") {
            args.extend(["--model", lp_str()]);
        }
        args.extend(extra.iter().copied());
        args.push(&img);
        let out = panderm(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

/// A board profile's `[accelerator]` chooses ONNX Runtime per device (`--backend` overrides it).
/// A provider the library lacks, a missing library, one that is not ONNX Runtime or one too old is
/// one line and exit 1; where the profile says `fallback = "tract"`, tract runs instead and the
/// report, the human output and the audit record say so and why.
#[cfg(feature = "ort")]
#[test]
fn board_accelerator_chooses_onnxruntime_or_falls_back_to_tract() {
    let Some(lib) = common::ort::ort_library() else { return };
    let dir = temp_dir("ort-board");
    let img = image("clinical_forearm_iphone14.jpg").to_string_lossy().into_owned();
    let b = demo().to_string_lossy().into_owned();
    let x86 = std::fs::read_to_string(root().join("boards/x86_64.toml")).unwrap();
    let mut n = 0;
    // A copy of the x86_64 profile (name = file stem, so one folder each) with this table.
    let mut profile = |table: &str| -> String {
        n += 1;
        let case = dir.join(format!("case{n}"));
        std::fs::create_dir_all(&case).unwrap();
        let p = case.join("x86_64.toml");
        std::fs::write(&p, format!("{x86}\n[accelerator]\n{table}\n")).unwrap();
        p.to_string_lossy().into_owned()
    };
    let classify = |board: &str, extra: &[&str]| {
        let mut args = vec!["classify", "--json", "--board", board, "--bundle", &b];
        args.extend(extra);
        args.push(&img);
        panderm(&args)
    };
    let report = |out: &std::process::Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let one_line_error = |out: &std::process::Output, needle: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !stderr.contains("panicked"), "{needle}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{needle}: {stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    };
    let lib_s = lib.to_string_lossy();
    let tract = report(&panderm(&["classify", "--json", "--bundle", &b, &img]));
    assert_eq!(tract["engine"]["engine"], "tract", "{tract}");
    assert!(tract["engine"].get("fallback").is_none(), "{tract}");

    // The profile alone chooses ONNX Runtime; --backend tract overrides it.
    let ort = profile(&format!("backend = \"ort\"\nlibrary = \"{lib_s}\"\nproviders = [\"cpu\"]"));
    let r = report(&classify(&ort, &[]));
    assert_eq!(r["engine"]["engine"], "onnxruntime", "{r}");
    assert!(r["engine"]["placement"].to_string().contains("CPUExecutionProvider"), "{r}");
    assert!(max_abs(&floats(&r["heads"][0]["probabilities"]), &floats(&tract["heads"][0]["probabilities"])) <= 1e-4);
    let r = report(&classify(&ort, &["--backend", "tract"]));
    assert_eq!(r["engine"]["engine"], "tract", "{r}");

    // A provider this library lacks: refused by default...
    let npu = format!("backend = \"ort\"\nlibrary = \"{lib_s}\"\nproviders = [\"vsinpu\", \"cpu\"]");
    one_line_error(&classify(&profile(&npu), &[]), "execution provider `vsinpu` is not in");
    // ...or tract runs, and everything downstream says so.
    let log = dir.join("audit.jsonl");
    let fallback = profile(&format!("{npu}\nfallback = \"tract\""));
    let out = classify(&fallback, &["--audit-log", &log.to_string_lossy()]);
    let r = report(&out);
    assert_eq!(r["engine"]["engine"], "tract", "{r}");
    let why = r["engine"]["fallback"].as_str().unwrap_or_default();
    assert!(why.contains("execution provider `vsinpu` is not in"), "{r}");
    assert_eq!(r["heads"][0]["probabilities"], tract["heads"][0]["probabilities"], "the same engine, the same numbers");
    assert!(String::from_utf8_lossy(&out.stderr).contains("running it on tract"));
    let line = std::fs::read_to_string(&log).unwrap();
    let record: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(record["engine"], r["engine"], "{record}");
    assert_eq!(record["backbone"], r["backbone"], "{record}");
    assert_eq!(r["backbone"]["file"], "backbone.onnx", "{r}");
    let out = panderm(&["classify", "--board", &fallback, "--bundle", &b, &img]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("engine: tract 0.23.9 (fallback from ONNX Runtime:"));

    // The library: missing (relative to the profile's folder), not ONNX Runtime, too old.
    let missing = "backend = \"ort\"\nlibrary = \"lib/libonnxruntime.so.1.22.0\"\nproviders = [\"cpu\"]";
    one_line_error(&classify(&profile(missing), &[]), "lib/libonnxruntime.so.1.22.0");
    let r = report(&classify(&profile(&format!("{missing}\nfallback = \"tract\"")), &[]));
    assert!(r["engine"]["fallback"].as_str().is_some_and(|w| w.contains("libonnxruntime.so.1.22.0")), "{r}");
    let Some(cc) = c_compiler() else {
        eprintln!("SKIPPED (stub libraries): no PANDERM_TEST_CC for this emulated target");
        return;
    };
    let src = dir.join("stub.c");
    std::fs::write(
        &src,
        "typedef struct { const void *(*GetApi)(unsigned); const char *(*GetVersionString)(void); } OrtApiBase;\n\
         #ifndef NOT_ORT\n\
         static const void *get_api(unsigned v) { (void)v; return 0; }\n\
         static const char *version(void) { return \"1.16.0\"; }\n\
         static const OrtApiBase base = { get_api, version };\n\
         const OrtApiBase *OrtGetApiBase(void) { return &base; }\n\
         #else\n\
         int not_onnxruntime(void) { return 0; }\n\
         #endif\n",
    )
    .unwrap();
    for (define, name, needle) in
        [("-DOLD", "libold.so", "got '1.16.0'"), ("-DNOT_ORT", "libnot.so", "not an ONNX Runtime library")]
    {
        let so = dir.join(name);
        let status = std::process::Command::new(&cc)
            .args(["-shared", "-fPIC", define, "-o"])
            .arg(&so)
            .arg(&src)
            .status()
            .unwrap_or_else(|e| panic!("{cc}: {e}"));
        assert!(status.success(), "{cc} failed");
        let so = so.to_string_lossy();
        one_line_error(&panderm(&["run", "--backend", "ort", "--ort-library", &so, "--model", lp_str(), &img]), needle);
    }
}

#[cfg(feature = "ort")]
fn lp() -> String {
    tiny_model("panderm_tiny_lp.onnx").to_string_lossy().into_owned()
}

#[cfg(feature = "ort")]
fn lp_str() -> &'static str {
    static LP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LP.get_or_init(lp)
}
