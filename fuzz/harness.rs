//! Fuzz harness bodies: one function per parser, each taking the raw input bytes.
//!
//! Shared by the libFuzzer targets in `fuzz/fuzz_targets/` (one binary per function) and by the
//! replay test `tools/tests/fuzz_corpus.rs`, which runs every saved corpus file and crash
//! reproducer through the same function as an ordinary test. A harness tolerates any `Err`:
//! only a panic, an abort, a hang or a runaway allocation is a bug. See docs/reliability.md.
//!
//! Dependencies: `panderm_edge`, `panderm_tools` (both reachable from the tools test crate).
//!
//! The runtime catches a panic inside tract (`engine::guard`), but the `device` profile is built
//! with `panic = "abort"`, where nothing is caught: so a panic counts as a bug here even when it
//! is caught. libFuzzer's panic hook aborts on any panic; the replay test records any panic too.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The largest input any harness looks at; larger inputs return at once (libFuzzer is run with
/// a smaller `-max_len` anyway).
pub const MAX_INPUT: usize = 1 << 20;

/// A harness: takes the fuzzer's bytes, returns nothing, must never panic.
pub type Harness = fn(&[u8]);

/// Every target, by the name of its corpus folder (`fuzz/corpus/<name>`) and its harness.
pub const TARGETS: &[(&str, Harness)] = &[
    ("manifest", manifest),
    ("board", board),
    ("npy", npy),
    ("image", image),
    ("onnx", onnx),
    ("nnef", nnef),
    ("dataset_csv", dataset_csv),
    ("pth", pth),
    ("audit_log", audit_log),
];

/// A per-thread scratch folder on a RAM-backed file system (`/dev/shm` when there is one), for
/// the parsers whose public entry point takes a path. Created once, reused for every input.
fn scratch_dir() -> PathBuf {
    thread_local! {
        static DIR: PathBuf = {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
            let dir = base.join(format!("panderm-fuzz-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("scratch folder");
            dir
        };
    }
    DIR.with(Clone::clone)
}

/// Writes `data` to `name` in the scratch folder (replacing the previous input) and returns the path.
fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    std::fs::write(&path, data).expect("write scratch file");
    path
}

/// `manifest.toml` of a bundle: [`panderm_edge::bundle::Manifest::parse`] (TOML + every
/// validation), then a serialise/re-parse round trip of what was accepted.
pub fn manifest(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dir = Path::new("/nonexistent/bundle");
    if let Ok(m) = panderm_edge::bundle::Manifest::parse(text, dir) {
        let again = m.to_toml();
        let _ = panderm_edge::bundle::Manifest::parse(&again, dir);
    }
}

/// A board profile: [`panderm_edge::board::Board::from_toml`] (TOML + validation), then the
/// memory arithmetic every accepted profile feeds.
pub fn board(data: &[u8]) {
    use panderm_edge::board::{Board, Precision};
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(b) = Board::from_toml(text) {
        let _ = b.working_set().total_mib();
        for variant in ["base", "large", "PanDerm_Base", "PanDerm_Large", "tiny", ""] {
            for precision in [Precision::Fp32, Precision::Int8] {
                let _ = b.check_backbone(variant, precision);
            }
        }
    }
}

/// A `.npy` float32 array (feature matrices, reference tensors):
/// [`panderm_edge::npy::parse_f32_bytes`], the parser [`panderm_edge::npy::read_f32`] runs.
pub fn npy(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    if let Ok(a) = panderm_edge::npy::parse_f32_bytes(data, Path::new("fuzz.npy")) {
        let n: usize = a.shape.iter().product();
        assert_eq!(n, a.data.len(), "shape {:?} vs {} values", a.shape, a.data.len());
    }
}

/// An image (JPEG, PNG, BMP, TIFF, WebP): [`panderm_edge::preprocess::decode_bytes`] with small
/// limits (512 px per side, 1 MiB decoded), so a header that lies about its size must be
/// refused before the decoder allocates.
pub fn image(data: &[u8]) {
    use panderm_edge::preprocess::{DecodeLimits, decode_bytes};
    if data.len() > MAX_INPUT {
        return;
    }
    let limits = DecodeLimits { max_side: 512, max_bytes: 1 << 20 };
    let exif = data.len().is_multiple_of(2);
    if let Ok(img) = decode_bytes(data, exif, limits) {
        assert!(img.width() <= 512 && img.height() <= 512, "{}x{} beyond the limits", img.width(), img.height());
    }
}

/// An ONNX model: the runtime's whole load path ([`panderm_edge::engine::Model::load_bytes`]:
/// format sniffing, protobuf, graph, input checks, typing, declutter, CPU optimisation), not run.
pub fn onnx(data: &[u8]) {
    use panderm_edge::engine::{Model, ModelOptions};
    if data.len() > MAX_INPUT {
        return;
    }
    let _ = Model::load_bytes(data, Path::new("fuzz.onnx"), &ModelOptions::default());
}

/// An NNEF archive (tar) as bundles ship backbones: [`panderm_edge::nnef::check_archive`] (the
/// layout pre-check), and on the archives it passes, the runtime's load path (tract's NNEF reader,
/// input checks, declutter, CPU optimisation) through [`panderm_edge::engine::Model::load_bytes`].
pub fn nnef(data: &[u8]) {
    use panderm_edge::engine::{Model, ModelOptions};
    if data.len() > MAX_INPUT {
        return;
    }
    if panderm_edge::nnef::check_archive(data).is_ok() {
        let _ = Model::load_bytes(data, Path::new("fuzz.nnef.tar"), &ModelOptions::default());
    }
}

/// A PanDerm dataset CSV: [`panderm_tools::dataset::load_from_bytes`] with each label choice,
/// then the split and `percent_data` subset computations on what loads.
pub fn dataset_csv(data: &[u8]) {
    use panderm_tools::dataset::{LabelChoice, LoadOptions, Split, load_from_bytes};
    if data.len() > MAX_INPUT {
        return;
    }
    for label in [LabelChoice::Auto, LabelChoice::Binary, LabelChoice::Multiclass] {
        let opts = LoadOptions { label, check_images: false };
        if let Ok(ds) = load_from_bytes("fuzz.csv", data, Some(Path::new("/nonexistent/images")), &opts) {
            for s in [Split::Train, Split::Val, Split::Test] {
                let _ = ds.split_indices(s);
            }
            let _ = ds.train_subset(0.5);
            let _ = ds.train_subset(1.0);
        }
    }
}

/// A PyTorch checkpoint (`torch.save` ZIP or legacy pickle): [`panderm_tools::checkpoint::Checkpoint::open`]
/// (container + pickle, no code executed), every tensor's values read back (up to 4 Mi elements
/// each), then the ViT configuration inference and weight validation `convert` runs.
pub fn pth(data: &[u8]) {
    use panderm_tools::checkpoint::Checkpoint;
    if data.len() > MAX_INPUT {
        return;
    }
    let path = scratch_file("ck.pth", data);
    let Ok(mut ck) = Checkpoint::open(&path) else { return };
    for (key, t) in &ck.tensors {
        if t.shape().iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_some_and(|n| n <= 4 << 20) {
            let _ = t.values(key);
        }
    }
    let opts = panderm_tools::vit::VitOptions::default();
    let _ = panderm_tools::vit::VitWeights::from_checkpoint(&mut ck, &opts);
}

/// An audit log (`panderm log verify`): [`panderm_edge::audit_log::verify_bytes`] (the pure reader
/// [`panderm_edge::audit_log::verify`] runs on each file) and the human report; an input holding
/// a NUL byte is also verified as two files (a rotated file, then the current one) split there,
/// so the chain across a rotation is exercised.
pub fn audit_log(data: &[u8]) {
    use panderm_edge::audit_log::{verify_bytes, verify_files};
    if data.len() > MAX_INPUT {
        return;
    }
    let report = verify_bytes(data);
    let _ = report.is_ok();
    let _ = report.human();
    if let Some(nul) = data.iter().position(|&b| b == 0) {
        let files = [(Path::new("audit.jsonl.1"), &data[..nul]), (Path::new("audit.jsonl"), &data[nul + 1..])];
        let report = verify_files(&files);
        let _ = report.human();
    }
}
