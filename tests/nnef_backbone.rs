//! NNEF archives: a backbone written as NNEF (`engine::convert_to_nnef`) loads back with the same
//! interface and gives the ONNX file's outputs; broken archives are refused cleanly.

mod common;

use common::*;
use panderm_edge::engine::{Model, convert_to_nnef};
use panderm_edge::npy;

#[test]
fn nnef_archives_match_their_onnx_source() {
    let dir = temp_dir("nnef");
    // The fp32 tiny models and the int8 demo backbone (whose weight MatMuls run on our int8 GEMM
    // on x86_64, from NNEF as from ONNX: the ops are installed at load, on either format).
    let int8 = root().join("models/demo-int8/backbone.onnx");
    for (name, onnx) in [
        ("panderm_tiny_lp.onnx", tiny_model("panderm_tiny_lp.onnx")),
        ("panderm_tiny_ft.onnx", tiny_model("panderm_tiny_ft.onnx")),
        ("demo_int8_backbone.onnx", int8),
    ] {
        let nnef = dir.join(name.replace(".onnx", ".nnef.tar"));
        convert_to_nnef(&onnx, &nnef).unwrap();
        let (a, b) = (Model::load(&onnx).unwrap(), Model::load(&nnef).unwrap());
        assert_eq!(a.matmul_kernels(), b.matmul_kernels(), "{name}: the same kernels from NNEF");
        assert_eq!(a.input_name(), b.input_name());
        assert_eq!(a.output_names(), b.output_names());
        assert_eq!(a.metadata(), b.metadata(), "PanDerm metadata survives");
        assert!(a.metadata().contains_key("panderm.kind"));
        for (image, _) in IMAGES {
            let x = npy::read_f32(&fixture(&format!("pixels_{}.npy", stem(image)))).unwrap().data;
            let (ya, yb) = (a.run_raw(&x).unwrap(), b.run_raw(&x).unwrap());
            // Same graph, same kernels; only the order of a few re-decluttered ops may differ:
            // 1e-5 absolute on O(1) outputs is ~10 ulp.
            let diff = max_abs(&ya[0].values, &yb[0].values);
            eprintln!("{name} {image}: ONNX vs NNEF max abs diff {diff:.2e}");
            assert!(diff <= 1e-5, "{name} {image}: {diff}");
        }
    }
}

#[test]
fn broken_nnef_archives_are_refused() {
    let dir = temp_dir("nnef-bad");
    let nnef = dir.join("lp.nnef.tar");
    convert_to_nnef(&tiny_model("panderm_tiny_lp.onnx"), &nnef).unwrap();
    let bytes = std::fs::read(&nnef).unwrap();
    let truncated = dir.join("truncated.nnef.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = Model::load(&truncated).unwrap_err();
    assert!(err.to_string().contains("not a valid NNEF archive"), "{err}");
    // An ONNX file under an NNEF name is still read as ONNX (content decides, not the name).
    let renamed = dir.join("really-onnx.nnef.tar");
    std::fs::copy(tiny_model("panderm_tiny_lp.onnx"), &renamed).unwrap();
    Model::load(&renamed).unwrap();
}
