//! Helpers shared by the tools' integration tests: paths and scratch directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// ONNX Runtime as the reference engine (shared with the runtime crate's tests).
#[path = "../../../tests/common/ort.rs"]
pub mod ort;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tools/ lives in the workspace root").to_owned()
}

/// `tests/fixtures/<name>` of the workspace.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// A fresh, empty scratch directory unique to this test process and `tag`.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("panderm-tools-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// The runtime's `panderm` binary, built by cargo next to `panderm-tools`.
pub fn panderm_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_panderm-tools"))
        .with_file_name(format!("panderm{}", std::env::consts::EXE_SUFFIX))
}

/// Runs `panderm-tools` with `args` and returns its output (whatever the exit status).
pub fn tools<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_panderm-tools")).args(args).output().expect("run panderm-tools")
}

/// Writes `count` small (40×30) synthetic images with their CSVs into `dir` (`synth-images`).
pub fn synth_images(dir: &Path, count: usize) {
    let count = count.to_string();
    let dir = dir.to_string_lossy();
    let o = tools(&["synth-images", "--count", &count, "--width", "40", "--height", "30", "-o", &dir]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `bundle --backbone ONNX --name NAME` as a 3-class (`toy3` = a, b, c) classifier bundle in `out`;
/// panics if `bundle` fails.
pub fn classifier_bundle(onnx: &Path, out: &Path, name: &str) {
    let args = [
        "bundle",
        "--backbone",
        &s(onnx),
        "--task-name",
        "toy3",
        "--labels",
        "toy3=a,b,c",
        "--name",
        name,
        "-o",
        &s(out),
    ];
    let o = tools(&args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}
