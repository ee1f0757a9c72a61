//! Replays the saved fuzz corpus and every crash reproducer through the fuzz harnesses
//! (`fuzz/harness.rs`, the same functions the libFuzzer targets call) as an ordinary test:
//! every file of `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` must be handled
//! without a panic. See docs/reliability.md, section "Fuzzing".

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted (none if the folder does not exist).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    files
}

std::thread_local! {
    /// Panics on this thread since the last [`take_panics`], caught or not.
    static PANICS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Installs (once) a panic hook that records every panic on the panicking thread before the
/// default hook runs: the runtime catches panics inside tract, but the `device` profile aborts on
/// any panic, so a caught panic is a failure here too (as under libFuzzer, whose hook aborts).
fn record_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            PANICS.with(|p| p.borrow_mut().push(format!("{msg}{at}")));
            default(info);
        }));
    });
}

fn take_panics() -> Vec<String> {
    PANICS.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

/// Runs one input through `target`'s harness; the panics it raised (caught or not).
fn run_one(target: &str, data: &[u8]) -> Vec<String> {
    let (_, run) = harness::TARGETS.iter().find(|(n, _)| *n == target).expect("known target");
    record_panics();
    take_panics();
    let uncaught = std::panic::catch_unwind(|| run(data)).is_err();
    let mut panics = take_panics();
    if uncaught && panics.is_empty() {
        panics.push("panic".into());
    }
    panics
}

/// Replays every corpus file and reproducer of `target`; fails naming each input that panicked.
fn replay(target: &str) {
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ is empty");
    let mut failures = Vec::new();
    for file in corpus.iter().chain(&inputs("artifacts", target)) {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let panics = run_one(target, &data);
        if !panics.is_empty() {
            failures.push(format!("{}: {}", file.display(), panics.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{} input(s) panicked:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_target_has_a_test() {
    let names: Vec<&str> = harness::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["manifest", "board", "npy", "image", "onnx", "nnef", "dataset_csv", "pth", "audit_log"]);
}

#[test]
fn replay_manifest() {
    replay("manifest");
}

#[test]
fn replay_board() {
    replay("board");
}

#[test]
fn replay_npy() {
    replay("npy");
}

#[test]
fn replay_image() {
    replay("image");
}

#[test]
fn replay_onnx() {
    replay("onnx");
}

#[test]
fn replay_nnef() {
    replay("nnef");
}

#[test]
fn replay_dataset_csv() {
    replay("dataset_csv");
}

#[test]
fn replay_pth() {
    replay("pth");
}

#[test]
fn replay_audit_log() {
    replay("audit_log");
}

/// Reproducers of crashes found in code another change is fixing, kept in
/// `fuzz/artifacts/<target>/open/` until that fix lands (then moved up one level, where
/// [`replay`] runs them in every test run). docs/reliability.md lists each with its stack.
/// `cargo test -p panderm-tools --test fuzz_corpus -- --ignored open_reproducers`
#[test]
#[ignore = "crashes found by fuzzing whose fix is owned by another change; see docs/reliability.md"]
fn open_reproducers() {
    let mut failures = Vec::new();
    for (target, _) in harness::TARGETS {
        for file in inputs("artifacts", &format!("{target}/open")) {
            let panics = run_one(target, &std::fs::read(&file).unwrap());
            if !panics.is_empty() {
                failures.push(format!("{}: {}", file.display(), panics.join("; ")));
            }
        }
    }
    assert!(failures.is_empty(), "{} open reproducer(s) still panic:\n{}", failures.len(), failures.join("\n"));
}
