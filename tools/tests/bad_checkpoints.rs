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

/// Runs `convert` under an address-space limit (so that an allocation sized from the file
/// fails fast instead of exhausting the machine) and a wall-clock limit.
#[cfg(unix)]
fn convert_limited(ckpt: &Path, out: &Path, extra: &[&str]) -> (std::process::Output, std::time::Duration) {
    use std::io::Read;
    use std::process::Stdio;
    // 3 GiB of address space: ample for converting these tiny checkpoints.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 3145728 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_panderm-tools"))
        .arg("convert")
        .arg(ckpt)
        .arg("-o")
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = std::time::Instant::now();
    let mut child = cmd.spawn().unwrap();
    let limit = std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{}: convert did not finish within {limit:?}", ckpt.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_end(&mut stderr).unwrap();
    (std::process::Output { status, stdout, stderr }, start.elapsed())
}

/// Issue 12: a ~1 MB checkpoint with a 1×1 patch (a 224×224 grid) made `convert` build the
/// 50177² relative-position index (20 GB) although the checkpoint has no relative position
/// bias at all. Untrusted sizes are checked against caps before anything is allocated.
#[cfg(unix)]
#[test]
fn a_tiny_checkpoint_cannot_make_convert_allocate_gigabytes() {
    use panderm_tools::vit::sincos_pos_embed;
    let dir = temp_dir("huge-grid");
    let d = 4;
    let lp = SynthLayout::LinearProbe;
    let ft = SynthLayout::FineTuned { classes: 2 };
    let spec = |layout| SynthSpec { embed_dim: d, depth: 1, num_heads: 1, layout, seed: 3 };
    // Patch 1 → grid 224 → 50 177 tokens; pos_embed is the exact sin-cos embedding for it,
    // so every earlier check passes.
    let huge_grid = |layout| {
        let mut t = state_dict(&spec(layout));
        set_shape(&mut t, "patch_embed.proj.weight", vec![d, 3, 1, 1]);
        let pe = t.iter_mut().find(|t| t.key == "pos_embed").unwrap();
        pe.shape = vec![1, 224 * 224 + 1, d];
        pe.data = SynthData::F32(sincos_pos_embed(224, d));
        t
    };
    // A fine-tuned checkpoint whose relative-position tables are sized for the 14×14 grid
    // but whose patch says 224×224: refused on the table's shape, before any index is built.
    let mut ft_huge = huge_grid(ft);
    ft_huge.retain(|t| !t.key.ends_with("relative_position_index"));
    let mut wide = state_dict(&spec(lp));
    set_shape(&mut wide, "cls_token", vec![1, 1, 1 << 20]);
    let cases: Vec<(PathBuf, &str)> = vec![
        (write(&dir, "patch1.pth", &huge_grid(lp), lp), "patch"),
        (write(&dir, "patch1_ft.pth", &ft_huge, ft), "patch"),
        (write(&dir, "wide.pth", &wide, lp), "embed dim 1048576"),
    ];
    for (ckpt, needle) in cases {
        let name = ckpt.file_name().unwrap().to_string_lossy().into_owned();
        let size = std::fs::metadata(&ckpt).unwrap().len();
        assert!(size < 8 << 20, "{name}: the crafted checkpoint is small ({size} bytes)");
        let out = dir.join("out.onnx");
        let (o, took) = convert_limited(&ckpt, &out, &["--heads", "1"]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("memory allocation"), "{name}: {stderr}");
        assert_eq!(o.status.code(), Some(1), "{name}: exit status {:?}: {stderr}", o.status);
        assert_eq!(stderr.lines().count(), 1, "{name}: expected one line: {stderr}");
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr:?} should mention {needle:?}");
        assert!(took < std::time::Duration::from_secs(60), "{name}: refusal took {took:?}");
        assert!(!out.exists());
    }
}
