//! The audit log: append + verify, power cuts (torn tails) never corrupt earlier lines and
//! the next append starts on a fresh line, flipped bytes are reported at their line, size
//! rotation keeps `seq` continuous, and concurrent appends never interleave.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use panderm_edge::ErrorKind;
use panderm_edge::audit_log::{AuditLog, AuditLogConfig, VerifyReport, verify};
use serde::Serialize;
use serde_json::json;

fn record(i: usize) -> serde_json::Value {
    json!({
        "image_sha256": format!("{i:064x}"),
        "bundle": {"name": "panderm-demo", "version": "0.1.0", "digest": "ab12"},
        "board": "rpi5",
        "quality_flags": if i.is_multiple_of(3) { json!(["out-of-focus"]) } else { json!([]) },
        "outputs": {"malignancy": {"score": 0.125, "label": "benign"}},
        "timings_ms": {"decode": 12.5, "inference": 401.25},
    })
}

fn log_in(tag: &str, config: AuditLogConfig) -> (PathBuf, AuditLog) {
    let path = common::temp_dir(tag).join("audit.jsonl");
    let log = AuditLog::open(&path, config).expect("open log");
    (path, log)
}

fn append_n(log: &AuditLog, range: std::ops::Range<usize>) {
    for i in range {
        log.append(&record(i)).expect("append");
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
}

fn assert_continuous(r: &VerifyReport, first: u64, last: u64) {
    assert!(r.gaps.is_empty(), "{}", r.human());
    assert_eq!((r.first_seq, r.last_seq), (Some(first), Some(last)), "{}", r.human());
    assert_eq!(r.valid as u64, last - first + 1, "{}", r.human());
}

#[test]
fn appended_records_verify_ok() {
    let (path, log) = log_in("audit-append", AuditLogConfig::default());
    append_n(&log, 0..20);
    let r = verify(&path).unwrap();
    println!("{}", r.human());
    assert!(r.is_ok() && r.torn.is_empty() && r.corrupt.is_empty() && !r.torn_tail, "{}", r.human());
    assert_continuous(&r, 1, 20);
    assert_eq!(r.lines, 20);
    assert!(r.first_time.as_deref().unwrap() <= r.last_time.as_deref().unwrap());

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with("\"}\n"));
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["board"], "rpi5");
    assert_eq!(first["sha256"].as_str().unwrap().len(), 64);
    humantime::parse_rfc3339(first["time"].as_str().unwrap()).expect("RFC 3339 time");
    assert!(text.starts_with("{\"seq\":1,\"time\":\""));

    // A struct record keeps its field order; reopening continues the sequence.
    #[derive(Serialize)]
    struct Classified<'a> {
        image_sha256: &'a str,
        flags: Vec<&'a str>,
        score: f32,
    }
    drop(log);
    let log = AuditLog::open(&path, AuditLogConfig::default()).unwrap();
    let a = log.append(&Classified { image_sha256: "00ff", flags: vec!["not-skin"], score: 0.5 }).unwrap();
    assert_eq!(a.seq, 21);
    assert!(!a.rotated);
    let last = lines(&path).pop().unwrap();
    assert!(last.starts_with("{\"seq\":21,\"time\":\""), "{last}");
    assert!(last.contains(",\"image_sha256\":\"00ff\",\"flags\":[\"not-skin\"],\"score\":0.5,\"sha256\":\""), "{last}");
    assert!(verify(&path).unwrap().is_ok());
}

#[test]
fn power_cut_mid_line_is_a_torn_tail_and_the_next_append_starts_a_fresh_line() {
    let (path, log) = log_in("audit-torn", AuditLogConfig::default());
    append_n(&log, 0..10);
    drop(log);
    // Power cut in the middle of writing line 10.
    let len = std::fs::metadata(&path).unwrap().len();
    let last_len = lines(&path).last().unwrap().len() as u64 + 1;
    let cut = len - last_len + last_len / 2;
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();

    let r = verify(&path).unwrap();
    println!("after the cut: {}", r.human());
    assert!(r.is_ok(), "a torn tail is a warning, not an error: {}", r.human());
    assert!(r.torn_tail);
    assert_eq!(r.torn.len(), 1);
    assert_eq!(r.torn[0].line, 10);
    assert!(r.corrupt.is_empty());
    assert_continuous(&r, 1, 9);

    // Restart and append: the torn fragment stays on a line of its own, seq continues at 10.
    let log = AuditLog::open(&path, AuditLogConfig::default()).unwrap();
    let a = log.append(&record(10)).unwrap();
    assert_eq!(a.seq, 10);
    assert!(a.torn_before > 0);
    append_n(&log, 11..13);
    let r = verify(&path).unwrap();
    println!("after appending again: {}", r.human());
    assert!(r.is_ok(), "{}", r.human());
    assert!(!r.torn_tail);
    assert_eq!(r.torn.len(), 1);
    assert_eq!(r.torn[0].line, 10);
    assert_eq!(r.lines, 13);
    assert_continuous(&r, 1, 12);
    let all = lines(&path);
    assert!(all[10].starts_with("{\"seq\":10,") && all[10].contains(&format!("\"torn_before\":{}", a.torn_before)));
    // Every complete line written before the cut is byte-identical.
    assert!(all[..9].iter().all(|l| l.starts_with("{\"seq\":") && l.ends_with("\"}")));
}

#[test]
fn other_power_cut_shapes_are_recovered() {
    // (what the interrupted write left, whether it is reported as torn)
    let shapes: [(&str, &[u8], bool); 4] = [
        ("zero-filled tail", b"{\"seq\":6,\"time\":\"20\0\0\0\0\0\0\0\0", true),
        ("separator and a fragment", b"\n{\"seq\":6,\"tim", true),
        ("fragment ended by a newline", b"{\"seq\":6,\"time\":\"2025-\n", true),
        ("cut inside a UTF-8 character", "{\"seq\":6,\"label\":\"n\u{e9}".as_bytes().split_last().unwrap().1, true),
    ];
    for (name, tail, torn) in shapes {
        let (path, log) = log_in("audit-shapes", AuditLogConfig::default());
        append_n(&log, 0..5);
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(tail);
        std::fs::write(&path, &bytes).unwrap();
        let r = verify(&path).unwrap();
        assert!(r.is_ok(), "{name}: {}", r.human());
        assert_eq!(!r.torn.is_empty(), torn, "{name}: {}", r.human());
        assert_continuous(&r, 1, 5);

        let log = AuditLog::open(&path, AuditLogConfig::default()).unwrap();
        append_n(&log, 5..7);
        let r = verify(&path).unwrap();
        assert!(r.is_ok() && !r.torn_tail, "{name}: {}", r.human());
        assert_continuous(&r, 1, 7);
    }

    // A cut just before the final '\n': the last line is complete and valid.
    let (path, log) = log_in("audit-no-newline", AuditLogConfig::default());
    append_n(&log, 0..4);
    drop(log);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 1).unwrap();
    let r = verify(&path).unwrap();
    assert!(r.is_ok() && r.torn.is_empty(), "{}", r.human());
    assert_continuous(&r, 1, 4);
    let log = AuditLog::open(&path, AuditLogConfig::default()).unwrap();
    let a = log.append(&record(4)).unwrap();
    assert_eq!((a.seq, a.torn_before), (5, 0));
    let r = verify(&path).unwrap();
    assert!(r.is_ok() && r.torn.is_empty(), "{}", r.human());
    assert_eq!(r.lines, 5);
}

#[test]
fn a_flipped_byte_is_reported_at_its_line() {
    let (path, log) = log_in("audit-flip", AuditLogConfig::default());
    append_n(&log, 0..10);
    drop(log);
    let original = std::fs::read(&path).unwrap();
    let line_start =
        |n: usize| -> usize { original.split_inclusive(|&b| b == b'\n').take(n - 1).map(<[u8]>::len).sum() };
    // Flip bytes at several places of line 5: inside a value, in the checksum, the quote
    // closing the checksum (which makes the line look truncated), the brace.
    let line5 = line_start(5);
    let line5_len = line_start(6) - line5 - 1;
    for offset in [40, 90, line5_len - 30, line5_len - 2, line5_len - 1] {
        let mut bytes = original.clone();
        bytes[line5 + offset] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let r = verify(&path).unwrap();
        assert!(!r.is_ok(), "offset {offset}: {}", r.human());
        assert_eq!(r.corrupt.len(), 1, "offset {offset}: {}", r.human());
        assert_eq!(r.corrupt[0].line, 5, "offset {offset}: {}", r.human());
        assert!(r.torn.is_empty() && r.gaps.is_empty(), "offset {offset}: {}", r.human());
        assert_eq!(r.valid, 9);
        assert!(r.human().contains("audit.jsonl:5: corrupt line"), "{}", r.human());
        if offset == 90 {
            println!("{}", r.human());
        }
    }

    // A deleted line is a sequence gap.
    let kept: Vec<&[u8]> =
        original.split_inclusive(|&b| b == b'\n').enumerate().filter(|(i, _)| *i != 6).map(|(_, l)| l).collect();
    std::fs::write(&path, kept.concat()).unwrap();
    let r = verify(&path).unwrap();
    assert!(!r.is_ok());
    assert_eq!(r.gaps.len(), 1);
    assert_eq!((r.gaps[0].line, r.gaps[0].expected, r.gaps[0].found), (7, 7, 8));
    println!("{}", r.human());
}

#[test]
fn rotation_keeps_n_files_and_seq_continues_across_them() {
    let config = AuditLogConfig { max_bytes: 2000, keep: 3 };
    let (path, log) = log_in("audit-rotate", config.clone());
    let mut rotations = 0;
    for i in 0..60 {
        rotations += usize::from(log.append(&record(i)).unwrap().rotated);
    }
    let dir = path.parent().unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    println!("{rotations} rotations, files: {names:?}");
    assert!(rotations >= 4);
    for n in ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2", "audit.jsonl.3"] {
        let p = dir.join(n);
        assert!(p.exists(), "{n}");
        assert!(std::fs::metadata(&p).unwrap().len() <= config.max_bytes, "{n}");
    }
    assert!(!dir.join("audit.jsonl.4").exists());

    let r = verify(&path).unwrap();
    println!("{}", r.human());
    assert_eq!(r.files.len(), 4);
    assert!(r.files[0].ends_with("audit.jsonl.3") && r.files[3].ends_with("audit.jsonl"));
    assert!(r.is_ok() && r.torn.is_empty(), "{}", r.human());
    assert_eq!(r.last_seq, Some(60));
    assert!(r.first_seq.unwrap() > 1, "the oldest files were deleted");
    assert_continuous(&r, r.first_seq.unwrap(), 60);

    // Restart right after a rotation (the current file empty): seq continues from `.1`.
    drop(log);
    std::fs::rename(&path, dir.join("audit.jsonl.0-moved")).unwrap();
    std::fs::remove_file(dir.join("audit.jsonl.3")).unwrap();
    std::fs::rename(dir.join("audit.jsonl.2"), dir.join("audit.jsonl.3")).unwrap();
    std::fs::rename(dir.join("audit.jsonl.1"), dir.join("audit.jsonl.2")).unwrap();
    std::fs::rename(dir.join("audit.jsonl.0-moved"), dir.join("audit.jsonl.1")).unwrap();
    let log = AuditLog::open(&path, config).unwrap();
    assert_eq!(log.append(&record(60)).unwrap().seq, 61);
    let r = verify(&path).unwrap();
    assert!(r.is_ok(), "{}", r.human());
    assert_continuous(&r, r.first_seq.unwrap(), 61);
}

#[test]
fn concurrent_appends_never_interleave() {
    // One log shared by threads (in-process mutex) and two independent handles on the same
    // file (as two processes would have: the flock and the state refresh).
    let (path, log) = log_in("audit-threads", AuditLogConfig { max_bytes: 64 * 1024, keep: 10 });
    let shared = Arc::new(log);
    let second = Arc::new(AuditLog::open(&path, AuditLogConfig { max_bytes: 64 * 1024, keep: 10 }).unwrap());
    let handles: Vec<_> = [shared.clone(), shared, second]
        .into_iter()
        .enumerate()
        .map(|(t, log)| {
            std::thread::spawn(move || {
                for i in 0..100 {
                    log.append(&json!({"thread": t, "i": i, "padding": "x".repeat(200)})).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let r = verify(&path).unwrap();
    println!("{}", r.human());
    assert!(r.is_ok() && r.torn.is_empty(), "{}", r.human());
    assert_continuous(&r, 1, 300);
    assert!(r.files.len() > 1, "rotation happened under contention");
}

#[test]
fn bad_records_and_settings_are_refused() {
    let (path, log) = log_in("audit-refuse", AuditLogConfig::default());
    for bad in [json!({"seq": 3}), json!({"time": "now"}), json!({"sha256": "x"}), json!({"torn_before": 1})] {
        let err = log.append(&bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("reserved"), "{err}");
    }
    for bad in [json!([1, 2]), json!("text"), json!(null)] {
        assert_eq!(log.append(&bad).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    log.append(&json!({})).unwrap();
    let r = verify(&path).unwrap();
    assert!(r.is_ok());
    assert_continuous(&r, 1, 1);

    for config in [AuditLogConfig { max_bytes: 0, keep: 1 }, AuditLogConfig { max_bytes: 10, keep: 0 }] {
        assert_eq!(AuditLog::open(&path, config).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    let missing = common::temp_dir("audit-missing").join("audit.jsonl");
    assert_eq!(verify(&missing).unwrap_err().kind(), ErrorKind::Io);
    assert!(AuditLog::open(&missing.parent().unwrap().join("no-dir/audit.jsonl"), AuditLogConfig::default()).is_err());
}
