//! `panderm run`: the JSON contract and clear one-line errors on bad input.

mod common;

use std::io::Write;
use std::process::Output;

use common::*;

fn lp_model() -> String {
    tiny_model("panderm_tiny_lp.onnx").to_string_lossy().into_owned()
}

/// A failing command: non-zero exit, one `error:` line on stderr naming `needle`, no panic.
fn assert_clean_failure(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(stderr.contains(needle), "{stderr:?} does not mention {needle:?}");
}

#[test]
fn json_output_contract() {
    let img = image("synthetic_224.png");
    let img = img.to_string_lossy();
    let out = panderm(&["run", "--model", &lp_model(), "--json", &img, &img]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one line per image");
    let want = floats(&reference()["panderm_tiny_lp.pth"]["features"]["synthetic_224.png"]);
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["image"], img.as_ref());
        let obj = v["outputs"].as_object().unwrap();
        assert_eq!(obj.len(), 1);
        let got = floats(&obj["features"]);
        assert!(cosine(&got, &want) >= 0.99999);
    }
}

#[test]
fn human_summary_without_json() {
    let out = panderm(&[
        "run",
        "--model",
        &tiny_model("panderm_tiny_ft.onnx").to_string_lossy(),
        &image("synthetic_224.png").to_string_lossy(),
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("logits (3 classes), top: class 1: 58.2%"), "{stdout}");
}

#[test]
fn bad_images_give_one_line_errors() {
    let dir = temp_dir("bad-images");
    // Corrupt JPEG: a real JPEG header followed by garbage.
    let jpeg = std::fs::read(image("clinical_forearm_iphone14.jpg")).unwrap();
    let mut corrupt = jpeg[..2000].to_vec();
    corrupt.extend(std::iter::repeat_n(0x5a, 5000));
    let corrupt_p = dir.join("corrupt.jpg");
    std::fs::write(&corrupt_p, &corrupt).unwrap();
    // Truncated JPEG.
    let trunc_p = dir.join("truncated.jpg");
    std::fs::write(&trunc_p, &jpeg[..jpeg.len() / 3]).unwrap();
    // Empty file.
    let empty_p = dir.join("empty.png");
    std::fs::write(&empty_p, b"").unwrap();
    // A PNG header claiming 30000x30000 RGB (2.7 GB decoded): must be refused before
    // allocating (the test would be killed or slow otherwise).
    let huge_p = dir.join("huge.png");
    std::fs::write(&huge_p, huge_png_header(30000, 30000)).unwrap();

    // The dimensions are named on 32-bit targets too (armv7), where the PNG decoder would refuse
    // the header itself under the allocation cap.
    let cases = [
        (&corrupt_p, "corrupt.jpg"),
        (&trunc_p, "truncated.jpg"),
        (&empty_p, "empty file"),
        (&huge_p, "huge.png: image is 30000x30000"),
    ];
    for (path, needle) in cases {
        let t = std::time::Instant::now();
        let out = panderm(&["run", "--model", &lp_model(), "--json", &path.to_string_lossy()]);
        assert_clean_failure(&out, needle);
        assert!(out.stdout.is_empty());
        assert!(t.elapsed().as_secs() < 30);
    }
}

#[test]
fn one_bad_image_does_not_stop_the_others() {
    let dir = temp_dir("mixed");
    let empty = dir.join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let good = image("synthetic_224.png");
    let out = panderm(&["run", "--model", &lp_model(), "--json", &empty.to_string_lossy(), &good.to_string_lossy()]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn bad_models_give_one_line_errors() {
    let dir = temp_dir("bad-models");
    let bytes = std::fs::read(tiny_model("panderm_tiny_lp.onnx")).unwrap();
    let truncated = dir.join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let empty = dir.join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("text.onnx");
    std::fs::write(&text, b"this is not a protobuf model at all, just text\n").unwrap();
    let img = image("synthetic_224.png");
    for (path, needle) in [(&truncated, "truncated.onnx"), (&empty, "empty"), (&text, "text.onnx")] {
        let out = panderm(&["run", "--model", &path.to_string_lossy(), "--json", &img.to_string_lossy()]);
        assert_clean_failure(&out, needle);
    }
    let missing = dir.join("missing.onnx");
    let out = panderm(&["run", "--model", &missing.to_string_lossy(), &img.to_string_lossy()]);
    assert_clean_failure(&out, "missing.onnx");
}

/// A syntactically valid PNG whose header claims a `w × h` 8-bit RGB image, with no pixel data.
fn huge_png_header(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.write_all(&ihdr).unwrap();
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    // A tiny IDAT (zlib stream of nothing) and IEND, so the file parses up to the pixel data.
    for (kind, data) in
        [(&b"IDAT"[..], &[0x78u8, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01][..]), (&b"IEND"[..], &[][..])]
    {
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn bench_reports_latency_and_memory_and_refuses_bad_input() {
    let out = panderm(&["bench", "--model", &lp_model(), "--runs", "3", "--threads", "2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["threads"], 2);
    assert_eq!(v["runs"], 3);
    for k in ["load_s", "first_run_ms", "median_ms", "p90_ms", "min_ms", "images_per_s"] {
        assert!(v[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {v}");
    }
    assert!(v["min_ms"].as_f64() <= v["median_ms"].as_f64() && v["median_ms"].as_f64() <= v["p90_ms"].as_f64());
    if cfg!(target_os = "linux") {
        assert!(v["peak_rss_mib"].as_f64().is_some_and(|m| m > 1.0), "{v}");
    }
    assert!(v.get("profile").is_none(), "profile only on request");
    // --profile: where the time goes, per operator of the optimized plan, slowest first.
    let out = panderm(&["bench", "--model", &lp_model(), "--runs", "2", "--profile", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let ops = v["profile"].as_array().expect("profile");
    let ms: Vec<f64> = ops.iter().map(|o| o["ms_per_run"].as_f64().expect("ms")).collect();
    assert!(ms.windows(2).all(|w| w[0] >= w[1]), "slowest first: {ms:?}");
    // The tiny ViT: 2 blocks × (qkv, proj, fc1, fc2) weight matmuls and more, all in tract's matmul
    // nodes (the attention products may be ours, `PandermBatchedMatMul`, on x86_64).
    let matmul = ops.iter().find(|o| o["op"] == "OptMatMul").expect("tract's matmul op");
    assert!(matmul["nodes"].as_u64().is_some_and(|n| n >= 8), "{matmul}");
    let head = root().join("models/demo/heads/lesion_colour.onnx");
    for (args, needle) in [
        (vec!["bench", "--model", &lp_model(), "--runs", "0"], "at least 1"),
        (vec!["bench", "--model", &head.to_string_lossy(), "--runs", "1"], "needs an image model"),
        (vec!["bench", "--model", &lp_model(), "--threads", "0"], "at least 1"),
    ] {
        assert_clean_failure(&panderm(&args), needle);
    }
}

/// Runs `cmd`, killing it after `secs` seconds (a hang is a failure, not a stuck test run).
fn output_within(mut cmd: std::process::Command, secs: u64) -> Output {
    use std::process::Stdio;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run panderm");
    let t = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if t.elapsed().as_secs() >= secs {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Image files that are not regular files, or larger than the decode limit, are refused from
/// the opened file's metadata, before a byte is read: a FIFO named `x.jpg` does not hang the
/// device, `/dev/null` (or any device) is not read, and a multi-gigabyte `x.jpg` on a 1 GB board
/// is not loaded into memory first.
#[test]
fn special_and_oversized_image_files_are_refused_before_reading() {
    let dir = temp_dir("special-images");
    let limit = panderm_edge::preprocess::DecodeLimits::default().max_bytes;
    // Sparse: one byte over the limit, and 3 GiB (the case), without using disk space.
    let over = dir.join("over.jpg");
    std::fs::File::create(&over).unwrap().set_len(limit + 1).unwrap();
    let huge = dir.join("huge.jpg");
    std::fs::File::create(&huge).unwrap().set_len(3 << 30).unwrap();
    let folder = dir.join("folder.jpg");
    std::fs::create_dir_all(&folder).unwrap();
    let mut cases: Vec<(std::path::PathBuf, String)> = vec![
        (over.clone(), format!("over.jpg: file is {} bytes", limit + 1)),
        (huge.clone(), format!("huge.jpg: file is {} bytes", 3u64 << 30)),
        (folder.clone(), "folder.jpg: is a folder, not an image file".into()),
    ];
    #[cfg(unix)]
    {
        let dev = dir.join("dev.jpg");
        std::os::unix::fs::symlink("/dev/null", &dev).unwrap();
        cases.push((dev, "dev.jpg: is a character device, not a regular file".into()));
        let fifo = dir.join("fifo.jpg");
        let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        cases.push((fifo, "fifo.jpg: is a named pipe (FIFO), not a regular file".into()));
    }
    for (path, needle) in &cases {
        let mut cmd = panderm_command();
        cmd.args(["run", "--model", &lp_model(), "--json"]).arg(path);
        let out = output_within(cmd, 20);
        assert_clean_failure(&out, needle);
        assert!(out.stdout.is_empty());
    }
    // The size message names the limit too.
    let mut cmd = panderm_command();
    cmd.args(["run", "--model", &lp_model(), "--json"]).arg(&over);
    let stderr = String::from_utf8_lossy(&output_within(cmd, 20).stderr).into_owned();
    assert!(stderr.contains(&format!("larger than the accepted {limit} bytes")), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `panderm classify --json … | head`: a reader that stops early ends the process quietly (killed
/// by SIGPIPE, as other Unix tools are), never with a panic message on stderr.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let img = image("clinical_forearm_iphone14.jpg");
    let mut child = panderm_command()
        .args(["classify", "--bundle", &demo().to_string_lossy(), "--json"])
        .arg(&img)
        .arg(&img)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the process writes anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("failed printing"), "{stderr}");
    // Natively the process is killed by the signal (under qemu-user the emulator reports it its
    // own way).
    #[cfg(unix)]
    if std::env::var("PANDERM_TEST_RUNNER").is_err() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}: {stderr}", out.status);
    }
}
