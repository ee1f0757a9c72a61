//! Crafted `.npy` feature files (issue 12, item 5): a header whose shape product overflows,
//! a header longer than the file, a declared shape far larger than the data, … Each is
//! refused by `probe` and `merge-features` with one `error:` line naming the file and exit
//! code 1 — never a panic (101), an abort (134) or an allocation sized from the header.
//!
//! The files are generated here ([`crafted_npy`]); set `PANDERM_WRITE_BAD_FIXTURES=1` to
//! also write them to `tests/fixtures/bad/npy/` for inspection.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

/// Data rows of `tests/fixtures/lp_multiclass.csv`.
const CSV_ROWS: usize = 510;

/// A `.npy` v1 file with this header dictionary text and body.
fn npy_v1(dict: &str, body: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(body);
    out
}

fn dict(shape: &str) -> String {
    format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}\n")
}

/// The crafted files: name, bytes, and a word the refusal must contain.
pub fn crafted_npy() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    // rows · 2^62 · 4 ≡ 0 (mod 2^64): a wrapping product "needs" 0 data bytes.
    let wrap = dict(&format!("({CSV_ROWS}, {})", 1u64 << 62));
    // Fits in usize, but the data it declares is far beyond the file.
    let huge = dict(&format!("({CSV_ROWS}, {})", 1u64 << 40));
    // A three-dimensional product that wraps to exactly the body length (16 bytes = 4 floats).
    let wrap_to_body = dict(&format!("({}, {}, 1)", (1u64 << 63) + 1, 4));
    let mut v2_huge_header = b"\x93NUMPY\x02\x00".to_vec();
    v2_huge_header.extend_from_slice(&u32::MAX.to_le_bytes());
    v2_huge_header.extend_from_slice(b"{'descr': '<f4'");
    let mut v1_short = b"\x93NUMPY\x01\x00".to_vec();
    v1_short.extend_from_slice(&1000u16.to_le_bytes());
    v1_short.extend_from_slice(&dict("(2, 2)").into_bytes());
    vec![
        ("wrapping_shape.npy", npy_v1(&wrap, &[]), "overflows"),
        ("wrapping_to_body.npy", npy_v1(&wrap_to_body, &[0; 16]), "overflows"),
        ("huge_shape.npy", npy_v1(&huge, &[0; 64]), "data bytes"),
        ("huge_dimension.npy", npy_v1(&dict("(99999999999999999999999, 4)"), &[]), "shape"),
        ("negative_dimension.npy", npy_v1(&dict("(-1, 4)"), &[0; 16]), "shape"),
        ("v2_header_past_end.npy", v2_huge_header, "header"),
        ("v1_header_past_end.npy", v1_short, "header"),
        ("header_not_text.npy", b"\x93NUMPY\x01\x00\x03\x00\xff\xfe\x00".to_vec(), "header is not text"),
        ("short.npy", b"\x93NUM".to_vec(), "magic"),
        ("no_shape_close.npy", npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (4, ", &[]), "shape"),
    ]
}

/// Writes the crafted files into `dir` (and into `tests/fixtures/bad/npy/` when asked).
fn write_crafted(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let keep = std::env::var_os("PANDERM_WRITE_BAD_FIXTURES").is_some();
    let fixtures = root().join("tests/fixtures/bad/npy");
    if keep {
        std::fs::create_dir_all(&fixtures).unwrap();
    }
    crafted_npy()
        .into_iter()
        .map(|(name, bytes, needle)| {
            if keep {
                std::fs::write(fixtures.join(name), &bytes).unwrap();
            }
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            (p, needle)
        })
        .collect()
}

fn assert_refused(o: &Output, file: &Path, needle: &str) {
    let name = file.file_name().unwrap().to_string_lossy();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{name}: panic: {stderr}");
    assert_eq!(o.status.code(), Some(1), "{name}: exit status {:?}: {stderr}", o.status);
    assert!(stderr.starts_with("error: "), "{name}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{name}: expected one line: {stderr}");
    assert!(stderr.contains(&*name), "{name}: the error must name the file: {stderr}");
    assert!(stderr.contains(needle), "{name}: {stderr:?} should mention {needle:?}");
}

#[test]
fn probe_refuses_crafted_npy_headers() {
    let dir = temp_dir("bad-npy-probe");
    let csv = fixture("lp_multiclass.csv");
    for (file, needle) in write_crafted(&dir) {
        let out = dir.join("probe-out");
        let o = tools(&[
            "probe".as_ref(),
            "--features".as_ref(),
            file.as_os_str(),
            "--csv".as_ref(),
            csv.as_os_str(),
            "--output-dir".as_ref(),
            out.as_os_str(),
        ]);
        assert_refused(&o, &file, needle);
    }
}

#[test]
fn merge_features_refuses_crafted_npy_shards() {
    let dir = temp_dir("bad-npy-merge");
    for (file, needle) in write_crafted(&dir) {
        // A sidecar that claims the whole (tiny) CSV: the crafted array is the only shard.
        let sidecar = serde_json::json!({
            "model_sha256": "0".repeat(64),
            "csv_sha256": "1".repeat(64),
            "rows": 4, "csv_rows": 4, "row_start": 0, "row_end": 4, "shard": null,
            "dim": 4, "rows_done": 4, "preprocess": "p", "device": "cpu", "tool": "t",
        });
        let mut side = file.as_os_str().to_owned();
        side.push(".json");
        std::fs::write(&side, sidecar.to_string()).unwrap();
        let out = dir.join("merged.npy");
        let o = tools(&["merge-features".as_ref(), "-o".as_ref(), out.as_os_str(), file.as_os_str()]);
        assert_refused(&o, &file, needle);
        assert!(!out.exists());
        assert!(!dir.join("merged.npy.partial").exists(), "a refused merge leaves no partial output");
    }
}
