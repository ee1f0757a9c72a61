//! `synth` writes checkpoints in every PanDerm layout that `convert` accepts and that run.

mod common;
use common::*;

use std::process::Command;

use panderm_edge::engine::Model;
use panderm_edge::preprocess::ImageTensor;

fn tools(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_panderm-tools")).args(args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn run(model: &std::path::Path) -> Vec<f32> {
    let m = Model::load(model).unwrap();
    let data: Vec<f32> = (0..3 * 224 * 224).map(|i| ((i % 451) as f32 / 451.0 - 0.5) * 3.0).collect();
    m.run(&[&ImageTensor { data, height: 224, width: 224 }]).unwrap().remove(0).remove(0).values
}

#[test]
fn every_layout_converts_and_runs() {
    let dir = temp_dir("layouts");
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let mut features = Vec::new();
    for layout in ["lp", "ll"] {
        tools(&[
            "synth",
            "--embed-dim",
            "64",
            "--depth",
            "2",
            "--layout",
            layout,
            "--seed",
            "3",
            "-o",
            &p(&format!("{layout}.pth")),
        ]);
        let report = tools(&["convert", &p(&format!("{layout}.pth")), "-o", &p(&format!("{layout}.onnx"))]);
        assert!(report.contains("D=64, depth=2, heads=1"), "{report}");
        let f = run(&dir.join(format!("{layout}.onnx")));
        assert_eq!(f.len(), 64);
        assert!(f.iter().all(|v| v.is_finite()));
        features.push(f);
    }
    // Same seed, same encoder tensors: the Large-release layout must give identical features.
    assert_eq!(features[0], features[1]);

    tools(&["synth", "--embed-dim", "128", "--depth", "2", "--layout", "ft", "--classes", "5", "-o", &p("ft.pth")]);
    let report = tools(&["convert", &p("ft.pth"), "-o", &p("ft.onnx")]);
    assert!(report.contains("logits [N,5]") && report.contains("heads=2"), "{report}");
    assert_eq!(run(&dir.join("ft.onnx")).len(), 5);
}
