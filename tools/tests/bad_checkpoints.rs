//! Bad checkpoints: each gives one clear line naming the problem, a non-zero exit, and
//! leaves no output file behind.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

use panderm_tools::synth::{SynthData, SynthLayout, SynthSpec, SynthTensor, state_dict, write_checkpoint};

fn small(layout: SynthLayout) -> Vec<SynthTensor> {
    state_dict(&SynthSpec { embed_dim: 64, depth: 4, num_heads: 1, layout, seed: 7 })
}

fn write(dir: &Path, name: &str, tensors: &[SynthTensor], layout: SynthLayout) -> PathBuf {
    let p = dir.join(name);
    write_checkpoint(&p, tensors, layout).unwrap();
    p
}

fn set_shape(t: &mut [SynthTensor], key: &str, shape: Vec<usize>) {
    let e = t.iter_mut().find(|t| t.key == key).unwrap();
    let n = shape.iter().product();
    e.shape = shape;
    e.data = SynthData::F32(vec![0.0; n]);
}

#[test]
fn bad_checkpoints_are_refused_with_a_clear_message() {
    let dir = temp_dir("table");
    let lp = SynthLayout::LinearProbe;
    let ft = SynthLayout::FineTuned { classes: 3 };

    let mut missing = small(lp);
    missing.retain(|t| t.key != "blocks.3.attn.v_bias");
    let mut wrong_shape = small(lp);
    set_shape(&mut wrong_shape, "blocks.1.mlp.fc1.weight", vec![255, 64]);
    let mut unused = small(lp);
    unused.push(SynthTensor {
        key: "blocks.0.attn.k_bias".into(),
        shape: vec![64],
        data: SynthData::F32(vec![0.0; 64]),
    });
    let mut unknown = small(lp);
    for t in unknown.iter_mut() {
        t.key = format!("backbone.{}", t.key);
    }
    let mut bad_pos = small(lp);
    if let SynthData::F32(v) = &mut bad_pos.iter_mut().find(|t| t.key == "pos_embed").unwrap().data {
        v[100] += 0.5;
    }
    let mut no_head = small(ft);
    no_head.retain(|t| !t.key.starts_with("head."));
    let mut missing_block = small(lp);
    missing_block.retain(|t| !t.key.starts_with("blocks.2."));
    let mut missing_ll = small(SynthLayout::LargeRelease);
    missing_ll.retain(|t| t.key != "encoder.norm.bias");

    let lp_bytes = std::fs::read(fixture("panderm_tiny_lp.pth")).unwrap();
    let truncated = dir.join("truncated.pth");
    std::fs::write(&truncated, &lp_bytes[..lp_bytes.len() / 2]).unwrap();
    let not_torch = dir.join("image.pth");
    std::fs::copy(fixture("images/synthetic_224.png"), &not_torch).unwrap();
    let empty = dir.join("empty.pth");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.pth");
    std::fs::write(&text, b"these are not the weights you are looking for\n").unwrap();

    let cases: Vec<(PathBuf, &str)> = vec![
        (write(&dir, "missing.pth", &missing, lp), "blocks.3.attn.v_bias"),
        (
            write(&dir, "wrong_shape.pth", &wrong_shape, lp),
            "blocks.1.mlp.fc1.weight` has shape [255, 64], expected [256, 64]",
        ),
        (write(&dir, "unused.pth", &unused, lp), "does not use: `blocks.0.attn.k_bias`"),
        (write(&dir, "unknown.pth", &unknown, lp), "unknown checkpoint layout"),
        (write(&dir, "bad_pos.pth", &bad_pos, lp), "pos_embed"),
        (write(&dir, "no_head.pth", &no_head, ft), "head.weight"),
        (write(&dir, "missing_block.pth", &missing_block, lp), "blocks.2"),
        (write(&dir, "missing_ll.pth", &missing_ll, SynthLayout::LargeRelease), "encoder.norm.bias"),
        (truncated, "truncated.pth: not a readable PyTorch checkpoint"),
        (not_torch, "image.pth: not a readable PyTorch checkpoint"),
        (empty, "empty"),
        (text, "notes.pth: not a readable PyTorch checkpoint"),
        (dir.join("does_not_exist.pth"), "does_not_exist.pth"),
    ];
    for (ckpt, needle) in cases {
        let out = dir.join("out.onnx");
        let o = Command::new(env!("CARGO_BIN_EXE_panderm-tools"))
            .arg("convert")
            .arg(&ckpt)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        let name = ckpt.file_name().unwrap().to_string_lossy();
        assert!(!o.status.success(), "{name}: conversion should fail");
        assert!(!stderr.contains("panicked"), "{name}: panic: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: expected one line: {stderr}");
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr:?} should mention {needle:?}");
        assert!(!out.exists(), "{name}: a failed conversion must not write the output");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{name}: temporary file left behind");
    }
}

#[test]
fn a_failed_conversion_keeps_the_previous_output() {
    let dir = temp_dir("keep");
    let out = dir.join("model.onnx");
    std::fs::write(&out, b"previous model").unwrap();
    let empty = dir.join("empty.pth");
    std::fs::write(&empty, b"").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_panderm-tools"))
        .arg("convert")
        .arg(&empty)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), b"previous model");
}
