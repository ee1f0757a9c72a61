//! A second, independent engine: ONNX Runtime (PyPI `onnxruntime`, driven by
//! `scripts/ort_run.py`, see `tests/common/ort.rs`) runs the same ONNX files as tract and must
//! agree to 1e-4.

mod common;

use common::ort::ort_run;
use common::*;
use panderm_edge::engine::{Model, ModelOptions};
use panderm_edge::npy;

#[test]
fn tract_and_onnxruntime_agree() {
    let dir = temp_dir("ort");
    // Batch of the three PanDerm-normalized reference inputs.
    let mut data = Vec::new();
    for (name, _) in IMAGES {
        data.extend(npy::read_f32(&fixture(&format!("pixels_{}.npy", stem(name)))).unwrap().data);
    }
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
