//! Helpers shared by the integration tests: fixture paths, reference outputs, comparisons.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod ort;

/// Repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// `tests/fixtures/images/<name>`.
pub fn image(name: &str) -> PathBuf {
    fixture("images").join(name)
}

/// The shipped tiny models converted from the fixtures (`models/tiny/`).
pub fn tiny_model(name: &str) -> PathBuf {
    root().join("models/tiny").join(name)
}

/// The three reference images and whether each is a lossless (PNG) input.
pub const IMAGES: [(&str, bool); 3] =
    [("synthetic_224.png", true), ("synthetic_333x517.png", true), ("clinical_forearm_iphone14.jpg", false)];

/// Stem used by `pixels_<stem>.npy`.
pub fn stem(image: &str) -> &str {
    image.rsplit_once('.').map_or(image, |(s, _)| s)
}

/// PanDerm's PyTorch reference outputs (`reference_outputs.json`).
pub fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("reference_outputs.json")).expect("reference_outputs.json");
    serde_json::from_str(&text).expect("valid JSON")
}

/// A float array from the reference JSON.
pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

/// Cosine similarity, accumulated in f64.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Largest absolute difference.
pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A fresh, empty temporary directory unique to this test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("panderm-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Whether a path exists (for "changes nothing" checks).
pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A command that runs the `panderm` binary built for this test run.
///
/// Cross-compiled test runs execute under qemu-user without binfmt_misc, where a test cannot
/// exec an ARM binary directly: `scripts/arm-test.sh` sets `PANDERM_TEST_RUNNER` to the qemu
/// command line (the same as `.cargo/config.toml`'s runner) and the binary is started through it.
pub fn panderm_command() -> std::process::Command {
    let exe = env!("CARGO_BIN_EXE_panderm");
    match std::env::var("PANDERM_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut parts = runner.split_whitespace();
            let mut cmd = std::process::Command::new(parts.next().expect("non-empty runner"));
            cmd.args(parts).arg(exe);
            cmd
        }
        _ => std::process::Command::new(exe),
    }
}

/// The shipped demo bundle.
pub fn demo() -> PathBuf {
    root().join("models/demo")
}

/// Runs the `panderm` binary and collects its output.
pub fn panderm(args: &[&str]) -> std::process::Output {
    panderm_command().args(args).output().expect("run panderm")
}

/// A private copy of the demo bundle, to edit.
pub fn copy_bundle(tag: &str) -> PathBuf {
    let dir = temp_dir(tag).join("bundle");
    copy_dir(&demo(), &dir);
    dir
}

/// Recursive copy.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
}

/// Rewrites a bundle's manifest.toml.
pub fn edit_manifest(dir: &Path, f: impl FnOnce(String) -> String) {
    let p = dir.join("manifest.toml");
    let text = std::fs::read_to_string(&p).expect("manifest");
    std::fs::write(&p, f(text)).expect("write manifest");
}

/// Replaces (or adds) the top-level `[name]` table of a manifest's text with `body` lines.
pub fn set_table(manifest: &str, name: &str, body: &str) -> String {
    let header = format!("[{name}]");
    let mut out = String::new();
    let mut skipping = false;
    for line in manifest.lines() {
        if line.trim_start().starts_with('[') {
            skipping = line.trim() == header;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    format!("{}\n{header}\n{body}\n", out.trim_end())
}

/// The C compiler for this test build's target: `PANDERM_TEST_CC` (scripts/arm-test.sh sets the
/// cross gcc), else `cc` when not running under an emulator.
pub fn c_compiler() -> Option<String> {
    match std::env::var("PANDERM_TEST_CC") {
        Ok(cc) if !cc.trim().is_empty() => Some(cc),
        _ if std::env::var("PANDERM_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty()) => None,
        _ => Some("cc".into()),
    }
}
