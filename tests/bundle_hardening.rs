//! Untrusted bundles: every manifest value validated before anything runs, bundle files read
//! once as regular files inside the bundle, crafted NNEF archives refused without a panic.
//! (Signed bundles and non-finite model outputs are tested end to end in
//! tools/tests/hardening.rs, which can write models and keys.)

mod common;
use common::*;

use std::path::Path;

/// `panderm verify` and `panderm classify` on `dir`: both must refuse with exit 1 (never a panic:
/// 101, or an abort: 134) and an `error:` line containing `fragment`.
fn assert_refused(dir: &Path, fragment: &str) {
    let d = dir.to_string_lossy();
    for args in [vec!["verify", "--bundle", &d], vec!["classify", "--bundle", &d, "--json", &demo_image()]] {
        let out = panderm(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(fragment), "{args:?}: expected `{fragment}` in: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

fn demo_image() -> String {
    image("clinical_forearm_iphone14.jpg").to_string_lossy().into_owned()
}

#[test]
fn every_manifest_value_is_validated_before_anything_runs() {
    use toml::Value as V;
    let f = |x: f64| V::Float(x);
    let strs = |a: &[&str]| V::Array(a.iter().map(|s| V::String((*s).into())).collect());
    // (what, [table, key] to set (heads.0 = the first head), new value, fragment of the one-line error)
    let cases: Vec<(&str, [&str; 2], V, &str)> = vec![
        ("zero std", ["preprocess", "std"], V::Array(vec![f(0.0), f(0.0), f(0.0)]), "std[0]"),
        ("negative std", ["preprocess", "std"], V::Array(vec![f(0.2), f(-1.0), f(0.2)]), "std[1]"),
        ("NaN std", ["preprocess", "std"], V::Array(vec![f(0.2), f(0.2), f(f64::NAN)]), "std[2]"),
        ("inf mean", ["preprocess", "mean"], V::Array(vec![f(f64::INFINITY), f(0.4), f(0.4)]), "mean[0]"),
        ("zero resize", ["preprocess", "resize_shorter"], V::Integer(0), "resize_shorter"),
        ("huge resize", ["preprocess", "resize_shorter"], V::Integer(4_000_000_000), "resize_shorter"),
        ("zero crop", ["preprocess", "crop"], V::Integer(0), "crop"),
        ("crop > resize", ["preprocess", "crop"], V::Integer(300), "larger than resize_shorter"),
        ("NaN threshold", ["heads.0", "threshold"], f(f64::NAN), "threshold"),
        ("inf threshold", ["heads.0", "threshold"], f(f64::INFINITY), "threshold"),
        ("duplicate label", ["heads.0", "labels"], strs(&["a", "a"]), "appears twice"),
        ("empty label", ["heads.0", "labels"], strs(&["  ", "b"]), "is empty"),
        ("bad digest", ["backbone", "sha256"], V::String("not-a-digest".into()), "not a SHA-256"),
        ("zero dim", ["backbone", "dim"], V::Integer(0), "dim"),
    ];
    for (what, [table, key], value, fragment) in cases {
        let dir = copy_bundle(&format!("manifest-{}", what.replace(' ', "-")));
        edit_manifest(&dir, |m| {
            let mut doc: toml::Table = toml::from_str(&m).expect("demo manifest");
            let t = match table.strip_prefix("heads.") {
                Some(i) => doc["heads"].as_array_mut().unwrap()[i.parse::<usize>().unwrap()].as_table_mut().unwrap(),
                None => doc[table].as_table_mut().unwrap(),
            };
            t.insert(key.into(), value);
            toml::to_string(&doc).unwrap()
        });
        let err = panderm_edge::bundle::Bundle::open(&dir).expect_err(what);
        assert!(err.message().contains(fragment), "{what}: {err}");
        assert_eq!(err.message().lines().count(), 1, "{what}: {err}");
        assert_refused(&dir, fragment);
    }
}

#[cfg(unix)]
#[test]
fn bundle_files_must_be_regular_files_inside_the_bundle() {
    let head = "heads/lesion_pattern.onnx";
    // A head that is a link to /dev/zero once hung `verify`; a manifest linked to /dev/zero grew
    // memory until killed. Both are refused before a byte is read.
    let dir = copy_bundle("link-dev-zero");
    std::fs::remove_file(dir.join(head)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join(head)).unwrap();
    assert_refused(&dir, "leaves the bundle");

    let dir = copy_bundle("manifest-dev-zero");
    std::fs::remove_file(dir.join("manifest.toml")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("manifest.toml")).unwrap();
    assert_refused(&dir, "leaves the bundle");

    // A FIFO inside the bundle: opening it must not wait for a writer.
    let dir = copy_bundle("fifo");
    std::fs::remove_file(dir.join(head)).unwrap();
    let c = std::ffi::CString::new(dir.join(head).to_string_lossy().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_refused(&dir, "FIFO");

    // A link to a copy of the right file outside the bundle is refused too (the bundle is what
    // was signed and verified; nothing outside it is read).
    let dir = copy_bundle("link-outside");
    let outside = dir.parent().unwrap().join("outside.onnx");
    std::fs::rename(dir.join(head), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join(head)).unwrap();
    assert_refused(&dir, "leaves the bundle");
}

/// An NNEF tar holding `entries`.
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn a_crafted_nnef_backbone_with_a_matching_digest_is_refused_without_a_panic() {
    // tract-nnef 0.23.9 panics on a nested `a/graph.nnef` (an unwrap in its sub-model loader);
    // `verify` used to say "bundle verified" for this bundle and `classify` then panicked.
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("nested", tar_of(&[("a/graph.nnef", b"this is not NNEF")]), "nested graph"),
        ("garbage-graph", tar_of(&[("graph.nnef", b"version 1.0; graph g( ) -> ( ) { x = ; }")]), "NNEF"),
        ("truncated", tar_of(&[("graph.nnef", b"version 1.0;")])[..700].to_vec(), "NNEF"),
    ];
    for (tag, bytes, fragment) in cases {
        let dir = copy_bundle(&format!("nnef-{tag}"));
        std::fs::write(dir.join("backbone.nnef.tar"), &bytes).unwrap();
        let digest = panderm_edge::bundle::sha256_hex(&bytes);
        edit_manifest(&dir, |m| {
            let mut doc: toml::Table = toml::from_str(&m).expect("demo manifest");
            let b = doc["backbone"].as_table_mut().unwrap();
            b.insert("file".into(), "backbone.nnef.tar".into());
            b.insert("format".into(), "nnef".into());
            b.insert("sha256".into(), digest.clone().into());
            toml::to_string(&doc).unwrap()
        });
        assert_refused(&dir, fragment);
    }
}

#[test]
fn onnx_graphs_that_make_tract_panic_are_refused_before_it_parses_them() {
    // Reproducers found by fuzzing (docs/reliability.md, crashes 1 and 2): tract-onnx 0.23.9
    // indexes an undefined graph output and hits `unimplemented!` on raw data of an unsupported
    // type. `engine::check_onnx_graph` refuses both before tract sees the graph, so even a
    // `panic = "abort"` build stays up.
    let names = ["output-names-an-undefined-value.onnx", "initializer-raw-data-of-unsupported-dtype.onnx"];
    for name in names {
        let path = ["fuzz/artifacts/onnx/open", "fuzz/artifacts/onnx"]
            .iter()
            .map(|d| root().join(d).join(name))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("reproducer {name} not found under fuzz/artifacts/onnx"));
        let bytes = std::fs::read(&path).unwrap();
        let err = panderm_edge::engine::Model::load_bytes(&bytes, &path, &Default::default()).unwrap_err();
        assert!(err.message().contains("refused ONNX graph"), "{name}: {err}");
    }
}
