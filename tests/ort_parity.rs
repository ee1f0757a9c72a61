//! A second, independent engine: ONNX Runtime (PyPI `onnxruntime`, driven by
//! `scripts/ort_run.py`) runs the same ONNX files as tract and must agree to 1e-4.
//!
//! `.ci/run` installs onnxruntime and sets `PANDERM_REQUIRE_ORT=1`, so in CI a missing
//! onnxruntime fails the test; on a developer machine without it the test says so and passes.

mod common;

use std::process::Command;

use common::*;
use panderm_edge::engine::{Model, ModelOptions};
use panderm_edge::npy;

/// The Python to use: `$PANDERM_PYTHON`, else the repo's `.venv`, else `python3`.
fn python() -> String {
    if let Ok(p) = std::env::var("PANDERM_PYTHON") {
        return p;
    }
    let venv = root().join(".venv/bin/python");
    if venv.exists() { venv.to_string_lossy().into_owned() } else { "python3".into() }
}

#[test]
fn tract_and_onnxruntime_agree() {
    let dir = temp_dir("ort");
    // Batch of the three PanDerm-normalized reference inputs.
    let mut data = Vec::new();
    for (name, _) in IMAGES {
        data.extend(npy::read_f32(&fixture(&format!("pixels_{}.npy", stem(name)))).unwrap().data);
    }
    let input = dir.join("input.npy");
    npy::write_f32(&input, &[3, 3, 224, 224], &data).unwrap();
    for (model_name, output) in [("panderm_tiny_lp.onnx", "features"), ("panderm_tiny_ft.onnx", "logits")] {
        let model_path = tiny_model(model_name);
        let out_dir = dir.join(model_name);
        let spawned = Command::new(python())
            .arg(root().join("scripts/ort_run.py"))
            .args([&model_path, &input, &out_dir])
            .output();
        let unavailable = match &spawned {
            Err(e) => Some(format!("cannot run {}: {e}", python())),
            Ok(o) if o.status.code() == Some(3) => Some(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
            Ok(_) => None,
        };
        if let Some(why) = unavailable {
            assert!(
                std::env::var("PANDERM_REQUIRE_ORT").is_err(),
                "PANDERM_REQUIRE_ORT is set but onnxruntime is unavailable: {why}"
            );
            eprintln!("SKIPPED: onnxruntime not available ({why}); run scripts/setup-python.sh or set PANDERM_PYTHON");
            return;
        }
        let status = spawned.expect("checked above");
        assert!(status.status.success(), "ort_run.py failed: {}", String::from_utf8_lossy(&status.stderr));
        let ort = npy::read_f32(&out_dir.join(format!("{output}.npy"))).unwrap();
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
