//! ONNX Runtime as a second, independent engine for the tests of both crates: runs an ONNX file
//! through `scripts/ort_run.py` (PyPI `onnxruntime`). Included by `tests/common/mod.rs` and, by
//! path, by the tools' `tests/common/mod.rs`.
//!
//! `.ci/run` installs onnxruntime and sets `PANDERM_REQUIRE_ORT=1`, so in CI a missing
//! onnxruntime fails the calling test; on a developer machine without it the test says so and
//! passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use panderm_edge::npy::{self, NpyF32};

/// The workspace root (the directory holding `scripts/ort_run.py`), from either crate.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|d| d.join("scripts/ort_run.py").exists())
        .expect("scripts/ort_run.py above the crate")
        .to_owned()
}

/// The Python to use: `$PANDERM_PYTHON`, else the repo's `.venv`, else `python3`.
pub fn python() -> String {
    if let Ok(p) = std::env::var("PANDERM_PYTHON") {
        return p;
    }
    let venv = workspace_root().join(".venv/bin/python");
    if venv.exists() { venv.to_string_lossy().into_owned() } else { "python3".into() }
}

/// Runs `model` in ONNX Runtime on `data` (of `shape`, the model's single input) and returns its
/// output named `output`. `None` means "skip": onnxruntime is unavailable and
/// `PANDERM_REQUIRE_ORT` is not set. Scratch files go to `dir`.
pub fn ort_run(model: &Path, shape: &[usize], data: &[f32], dir: &Path, output: &str) -> Option<NpyF32> {
    ort_run_as(model, shape, data, dir, output, false)
}

/// [`ort_run`] with ONNX Runtime's graph optimizations off when `literal`: every node evaluated
/// as written (a QDQ graph by its definition rather than by ORT's fused integer kernels).
pub fn ort_run_as(
    model: &Path,
    shape: &[usize],
    data: &[f32],
    dir: &Path,
    output: &str,
    literal: bool,
) -> Option<NpyF32> {
    let stem = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let input = dir.join(format!("ort_input_{stem}.npy"));
    npy::write_f32(&input, shape, data).expect("write ORT input");
    let out_dir = dir.join(format!("ort_{stem}{}", if literal { "_literal" } else { "" }));
    let mut args: Vec<&std::ffi::OsStr> = vec![model.as_os_str(), input.as_os_str(), out_dir.as_os_str()];
    if literal {
        args.push("--literal".as_ref());
    }
    let o = run_script("ort_run.py", &args)?;
    assert!(o.status.success(), "ort_run.py {}: {}", model.display(), String::from_utf8_lossy(&o.stderr));
    Some(npy::read_f32(&out_dir.join(format!("{output}.npy"))).expect("ORT output"))
}

/// Writes ONNX Runtime's quantized `form` of `model` to `out` with `scripts/ort_quantize.py`
/// (`onnxruntime.quantization`, calibrated on `calib`, [N, …] model inputs). `None` = skip, as
/// for [`ort_run`].
pub fn ort_quantize(form: &str, model: &Path, calib: &Path, out: &Path) -> Option<()> {
    let args: Vec<&std::ffi::OsStr> = vec![form.as_ref(), model.as_os_str(), calib.as_os_str(), out.as_os_str()];
    let o = run_script("ort_quantize.py", &args)?;
    assert!(o.status.success(), "ort_quantize.py {form}: {}", String::from_utf8_lossy(&o.stderr));
    Some(())
}

/// Runs a script of `scripts/` with the reference Python; `None` when the reference engine is
/// unavailable (exit code 3, or no Python) and `PANDERM_REQUIRE_ORT` is not set.
fn run_script(script: &str, args: &[&std::ffi::OsStr]) -> Option<std::process::Output> {
    let spawned = Command::new(python()).arg(workspace_root().join("scripts").join(script)).args(args).output();
    let unavailable = match &spawned {
        Err(e) => Some(format!("cannot run {}: {e}", python())),
        Ok(o) if o.status.code() == Some(3) => Some(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
        Ok(_) => None,
    };
    if let Some(why) = unavailable {
        return skipped(&why);
    }
    Some(spawned.expect("checked above"))
}

/// The reference engine is unavailable: fails when `PANDERM_REQUIRE_ORT` is set (CI), else says
/// the test is skipped and returns `None`.
fn skipped<T>(why: &str) -> Option<T> {
    assert!(
        std::env::var("PANDERM_REQUIRE_ORT").is_err(),
        "PANDERM_REQUIRE_ORT is set but onnxruntime is unavailable: {why}"
    );
    eprintln!("SKIPPED: onnxruntime not available ({why}); run scripts/setup-python.sh or set PANDERM_PYTHON");
    None
}

/// The `libonnxruntime.so` for the runtime's `--backend ort`: `$ORT_DYLIB_PATH`, else (x86_64)
/// the reference venv's onnxruntime wheel's. `None` = skip, as for [`ort_run`]. On ARM the venv's
/// library is the host's x86_64 one, so only `$ORT_DYLIB_PATH` counts (`scripts/arm-test.sh --ort`
/// sets it to the aarch64 wheel's library); without it the test skips even in CI, where the
/// `--ort` run is the one that must run it.
pub fn ort_library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(PathBuf::from(p));
    }
    if !cfg!(target_arch = "x86_64") {
        eprintln!("SKIPPED: no ORT_DYLIB_PATH for this {} build (scripts/arm-test.sh --ort)", std::env::consts::ARCH);
        return None;
    }
    let lib = workspace_root().join(".venv/lib");
    let found = std::fs::read_dir(&lib).ok().into_iter().flatten().flatten().find_map(|py| {
        let capi = py.path().join("site-packages/onnxruntime/capi");
        std::fs::read_dir(capi)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so")))
    });
    found.or_else(|| skipped(&format!("no libonnxruntime.so under {} and no ORT_DYLIB_PATH", lib.display())))
}
