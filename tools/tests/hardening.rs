//! Issue 12 end to end, with real keys and real (poisoned) models: signed bundles refused or
//! accepted exactly as the trust policy says, and a model that produces NaN never shows a
//! decision — "cannot assess (model error)", exit code 5, an audit record, and a screen that says
//! so.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prost::Message;
use tract_onnx::pb;

fn panderm(args: &[&str]) -> Output {
    Command::new(panderm_bin()).args(args).output().expect("run panderm")
}

fn ok(o: &Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn photo() -> String {
    s(&fixture("images/clinical_forearm_iphone14.jpg"))
}

/// A private copy of the demo bundle.
fn demo_copy(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    copy_dir(&root().join("models/demo"), &to);
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Replaces `old` with `new` in the bundle's manifest (must change something).
fn edit_manifest(bundle: &Path, old: &str, new: &str) {
    let p = bundle.join("manifest.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(old), "{old} not in manifest");
    std::fs::write(&p, text.replacen(old, new, 1)).unwrap();
}

/// Sets every float of the first float initializer of an ONNX file whose name passes `pick` to
/// NaN, and returns (old digest, new digest) of the file.
fn poison(onnx: &Path, pick: impl Fn(&str) -> bool) -> (String, String) {
    let bytes = std::fs::read(onnx).unwrap();
    let before = panderm_edge::bundle::sha256_hex(&bytes);
    let mut model = pb::ModelProto::decode(&bytes[..]).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let init = graph
        .initializer
        .iter_mut()
        .find(|t| t.data_type == 1 && pick(&t.name) && (t.raw_data.len() >= 4 || !t.float_data.is_empty()))
        .expect("a float initializer to poison");
    if init.float_data.is_empty() {
        init.raw_data = init.raw_data.chunks(4).flat_map(|_| f32::NAN.to_le_bytes()).collect();
    } else {
        init.float_data.iter_mut().for_each(|v| *v = f32::NAN);
    }
    let out = model.encode_to_vec();
    std::fs::write(onnx, &out).unwrap();
    (before, panderm_edge::bundle::sha256_hex(&out))
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[test]
fn signed_bundles_follow_the_trust_policy() {
    let dir = temp_dir("signing");
    let key = dir.join("lab.key");
    let out = ok(&tools(&["keygen", "-o", &s(&key), "--comment", "test lab"]), "keygen");
    assert!(out.contains("key id"), "{out}");
    let public = dir.join("lab.key.pub");
    assert!(std::fs::read_to_string(&public).unwrap().ends_with("test lab\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // A key is never overwritten.
    let again = tools(&["keygen", "-o", &s(&key)]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let other_key = dir.join("other.key");
    ok(&tools(&["keygen", "-o", &s(&other_key)]), "keygen other");
    let other_public = dir.join("other.key.pub");

    let signed = demo_copy(&dir, "signed");
    ok(&tools(&["sign", "--bundle", &s(&signed), "--key", &s(&key)]), "sign");
    let verify = |bundle: &Path, key: &Path| panderm(&["verify", "--bundle", &s(bundle), "--trusted-key", &s(key)]);
    let refused = |o: &Output, fragment: &str, what: &str| {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains(fragment), "{what}: expected `{fragment}` in {stderr}");
    };

    // Round trip.
    let v = ok(&verify(&signed, &public), "verify signed");
    assert!(v.contains("signed by trusted key") && v.contains("bundle verified"), "{v}");
    let c = panderm(&["classify", "--bundle", &s(&signed), "--json", "--trusted-key", &s(&public), &photo()]);
    assert_eq!(c.status.code(), Some(0), "{}", String::from_utf8_lossy(&c.stderr));
    let report = &json_lines(&c)[0];
    assert_eq!(report["signature"]["state"], "verified", "{report}");
    let key_id = report["signature"]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(key_id.len(), 16);
    // Repeatable --trusted-key: any one of them may have signed.
    ok(
        &panderm(&[
            "verify",
            "--bundle",
            &s(&signed),
            "--trusted-key",
            &s(&other_public),
            "--trusted-key",
            &s(&public),
        ]),
        "two keys",
    );

    // Wrong key.
    refused(&verify(&signed, &other_public), "does not verify with any trusted key", "wrong key");

    // Manifest edited after signing (a lower threshold: more "regular" answers).
    let edited = demo_copy(&dir, "edited");
    ok(&tools(&["sign", "--bundle", &s(&edited), "--key", &s(&key)]), "sign edited");
    edit_manifest(&edited, "threshold = 0.5", "threshold = 0.9");
    refused(&verify(&edited, &public), "does not verify", "edited manifest");
    let c = panderm(&["classify", "--bundle", &s(&edited), "--trusted-key", &s(&public), &photo()]);
    refused(&c, "does not verify", "classify edited manifest");
    assert!(c.stdout.is_empty(), "no result for a refused bundle");

    // A file swapped after signing (the other head's bytes in place of the first's).
    let swapped = demo_copy(&dir, "swapped");
    ok(&tools(&["sign", "--bundle", &s(&swapped), "--key", &s(&key)]), "sign swapped");
    std::fs::copy(swapped.join("heads/lesion_colour.onnx"), swapped.join("heads/lesion_pattern.onnx")).unwrap();
    refused(&verify(&swapped, &public), "MISMATCH", "swapped file");
    refused(
        &panderm(&["classify", "--bundle", &s(&swapped), "--trusted-key", &s(&public), &photo()]),
        "SHA-256 mismatch",
        "classify swapped file",
    );

    // Truncated signature.
    let truncated = demo_copy(&dir, "truncated");
    ok(&tools(&["sign", "--bundle", &s(&truncated), "--key", &s(&key)]), "sign truncated");
    let sig = std::fs::read_to_string(truncated.join("manifest.sig")).unwrap();
    let cut = sig.find("signature = \"").unwrap() + 13 + 44;
    std::fs::write(truncated.join("manifest.sig"), format!("{}\"\n", &sig[..cut])).unwrap();
    refused(&verify(&truncated, &public), "not 64", "truncated signature");

    // Unsigned, with a key configured: refused; without: loads and says "unsigned".
    let unsigned = demo_copy(&dir, "unsigned");
    refused(&verify(&unsigned, &public), "unsigned", "unsigned with a key");
    let c = panderm(&["classify", "--bundle", &s(&unsigned), "--json", &photo()]);
    assert_eq!(c.status.code(), Some(0));
    assert_eq!(json_lines(&c)[0]["signature"]["state"], "unsigned");
    let info = ok(&panderm(&["info", "--bundle", &s(&unsigned)]), "info");
    assert!(info.contains("signature: unsigned"), "{info}");
    let info = ok(&panderm(&["info", "--bundle", &s(&unsigned), "--json"]), "info --json");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&info).unwrap()["signed"], false);

    // A board profile's trusted_keys (relative to the profile's folder) enforce the same policy.
    let board_dir = dir.join("boards");
    std::fs::create_dir_all(&board_dir).unwrap();
    std::fs::copy(&public, board_dir.join("lab.key.pub")).unwrap();
    let profile = std::fs::read_to_string(root().join("boards/x86_64.toml")).unwrap();
    std::fs::write(board_dir.join("x86_64.toml"), format!("trusted_keys = [\"lab.key.pub\"]\n{profile}")).unwrap();
    let board = s(&board_dir.join("x86_64.toml"));
    refused(&panderm(&["classify", "--bundle", &s(&unsigned), "--board", &board, &photo()]), "unsigned", "board key");

    // The audit record names the signer.
    let log = dir.join("audit.jsonl");
    let c =
        panderm(&["classify", "--bundle", &s(&signed), "--board", &board, "--audit-log", &s(&log), "--json", &photo()]);
    assert_eq!(c.status.code(), Some(0), "{}", String::from_utf8_lossy(&c.stderr));
    let record: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(record["bundle"]["signature"]["key_id"], key_id.as_str(), "{record}");
    // ... and a refused bundle is logged too.
    refused(
        &panderm(&["classify", "--bundle", &s(&unsigned), "--board", &board, "--audit-log", &s(&log), &photo()]),
        "unsigned",
        "refusal logged",
    );
    let last: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "bundle-refused", "{last}");
    assert_eq!(last["error"]["kind"], "untrusted", "{last}");
}

#[test]
fn a_nan_never_becomes_a_decision() {
    let dir = temp_dir("nan");
    let photo = photo();
    // (what, bundle, stage named in the report)
    let mut cases: Vec<(&str, PathBuf, &str)> = Vec::new();

    // Backbone weights hold a NaN: every feature is NaN.
    let backbone_nan = demo_copy(&dir, "backbone-nan");
    let (old, new) = poison(&backbone_nan.join("backbone.onnx"), |_| true);
    edit_manifest(&backbone_nan, &old, &new);
    cases.push(("backbone NaN", backbone_nan, "backbone"));

    // The int8 demo backbone with NaN in one int8 MatMul's rescale constant (x86_64: applied in the
    // epilogue of the runtime's own int8 GEMM, src/ops/qmatmul.rs): NaN features, never a number.
    let int8_nan = dir.join("int8-rescale-nan");
    copy_dir(&root().join("models/demo-int8"), &int8_nan);
    let (old, new) = poison(&int8_nan.join("backbone.onnx"), |n| n.ends_with("quant/s_x_s_w"));
    edit_manifest(&int8_nan, &old, &new);
    cases.push(("int8 rescale NaN", int8_nan, "backbone"));

    // NaN in the first MLP's fc1 bias of the int8 demo backbone: it reaches the GELU, which the
    // runtime folds into the next activation quantizer (src/ops/quantize.rs, fuse_gelu); that
    // quantizer must refuse it, never write codes from it.
    let gelu_nan = dir.join("int8-gelu-nan");
    copy_dir(&root().join("models/demo-int8"), &gelu_nan);
    let (old, new) = poison(&gelu_nan.join("backbone.onnx"), |n| n == "blocks.0.mlp.fc1.bias");
    edit_manifest(&gelu_nan, &old, &new);
    cases.push(("int8 NaN into the fused GELU", gelu_nan, "backbone"));

    // A head's weights hold a NaN: its probabilities are NaN (the screen used to say "regular").
    let head_nan = demo_copy(&dir, "head-nan");
    let (old, new) = poison(&head_nan.join("heads/lesion_pattern.onnx"), |_| true);
    edit_manifest(&head_nan, &old, &new);
    cases.push(("head NaN", head_nan, "head lesion_pattern"));

    // A fine-tuned classifier bundle (the backbone is the classifier) with NaN logits.
    let onnx = dir.join("ft.onnx");
    ok(&tools(&["convert", &s(&root().join("tests/fixtures/panderm_tiny_ft.pth")), "-o", &s(&onnx)]), "convert");
    poison(&onnx, |n| n.contains("head"));
    let key = dir.join("k");
    ok(&tools(&["keygen", "-o", &s(&key)]), "keygen");
    let classifier = dir.join("ft-nan");
    let b = tools(&[
        "bundle",
        "--backbone",
        &s(&onnx),
        "--task-name",
        "toy3",
        "--labels",
        "toy3=a,b,c",
        "--name",
        "ft",
        "--format",
        "onnx",
        "--sign",
        &s(&key),
        "-o",
        &s(&classifier),
    ]);
    assert!(ok(&b, "bundle --sign").contains("signed"));
    assert!(classifier.join("manifest.sig").exists());
    cases.push(("classifier-backbone NaN", classifier, "backbone"));

    for (what, bundle, stage) in cases {
        let log = dir.join(format!("{}.audit.jsonl", what.replace(' ', "-")));
        let screen = dir.join(format!("{}.png", what.replace(' ', "-")));
        let o = Command::new(panderm_bin())
            .args(["classify", "--bundle", &s(&bundle), "--json", "--no-quality-gate"])
            .args(["--audit-log", &s(&log), "--screen", &s(&screen), "--screen-size", "480x320", &photo])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(5), "{what}: exit code; stderr {}", String::from_utf8_lossy(&o.stderr));
        let r = &json_lines(&o)[0];
        assert_eq!(r["status"], "model-error", "{what}: {r}");
        assert_eq!(r["cannot_assess"]["reason"], "model-error", "{what}: {r}");
        assert_eq!(r["cannot_assess"]["stage"], stage, "{what}: {r}");
        assert!(r["heads"].as_array().unwrap().is_empty(), "{what}: no decision, no top-k: {r}");
        let message = r["cannot_assess"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with("cannot assess: model error"), "{message}");
        // The audit record was written, and says the same.
        let rec: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().next().unwrap()).unwrap();
        assert_eq!(rec["status"], "model-error", "{what}: {rec}");
        assert!(rec["outputs"].as_array().unwrap().is_empty(), "{what}: {rec}");
        // The screen is the "cannot assess" screen with the model-error message: pixel-equal to
        // the library's rendering of exactly that report (no decision banner).
        let model = r["bundle"].as_str().unwrap();
        let expected = panderm_edge::screen::ScreenReport {
            primary: None,
            differential: None,
            abstain: Some(&message),
            warnings: &[],
            model,
            demo: r.get("notice").is_some(),
        };
        let want = dir.join(format!("{}.expected.png", what.replace(' ', "-")));
        panderm_edge::screen::render_to_buffer(&expected, 480, 320).unwrap().save_png(&want).unwrap();
        let (got, want) = (image::open(&screen).unwrap().to_rgb8(), image::open(&want).unwrap().to_rgb8());
        assert!(got == want, "{what}: the screen differs from the model-error screen");
        // Batch mode: the row says "cannot assess: model error", the run exits 5.
        let photos = dir.join(format!("{}.photos", what.replace(' ', "-")));
        std::fs::create_dir_all(&photos).unwrap();
        std::fs::copy(&photo, photos.join("lesion.jpg")).unwrap();
        let out = dir.join(format!("{}.batch", what.replace(' ', "-")));
        let b = panderm(&["batch", "--bundle", &s(&bundle), "--out", &s(&out), &s(&photos)]);
        assert_eq!(b.status.code(), Some(5), "{what}: batch: {}", String::from_utf8_lossy(&b.stderr));
        let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
        assert!(csv.contains("model error"), "{what}: {csv}");
        // Human output says it in capitals, never a label.
        let h = panderm(&["classify", "--bundle", &s(&bundle), "--no-quality-gate", &photo]);
        assert_eq!(h.status.code(), Some(5));
        let text = String::from_utf8_lossy(&h.stdout);
        assert!(text.contains("CANNOT ASSESS: MODEL ERROR") && !text.contains("regular"), "{what}: {text}");
    }
}

#[test]
fn a_head_model_without_outputs_is_refused_at_load() {
    let dir = temp_dir("no-output");
    let bundle = demo_copy(&dir, "bundle");
    let head = bundle.join("heads/lesion_pattern.onnx");
    let bytes = std::fs::read(&head).unwrap();
    let old = panderm_edge::bundle::sha256_hex(&bytes);
    let mut model = pb::ModelProto::decode(&bytes[..]).unwrap();
    model.graph.as_mut().unwrap().output.clear();
    let out = model.encode_to_vec();
    std::fs::write(&head, &out).unwrap();
    edit_manifest(&bundle, &old, &panderm_edge::bundle::sha256_hex(&out));
    let o = panderm(&["classify", "--bundle", &s(&bundle), "--json", &photo()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lesion_pattern.onnx") && !stderr.contains("panicked"), "{stderr}");
}
