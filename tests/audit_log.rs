//! The audit log: append + verify, power cuts (torn tails) never corrupt earlier lines and
//! the next append starts on a fresh line, flipped bytes are reported at their line, size
//! rotation keeps `seq` continuous, concurrent appends never interleave, the hash chain (`prev`)
//! runs across restarts, rotation, torn writes and logs from before the chain and exposes
//! deleted, moved, inserted and re-hashed lines, and the reader never panics on any bytes.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use panderm_edge::ErrorKind;
use panderm_edge::audit_log::{
    AuditLog, AuditLogConfig, ChainAnchor, GENESIS, RESERVED_FIELDS, VerifyReport, verify, verify_bytes, verify_files,
};
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
    assert!(RESERVED_FIELDS.contains(&"prev"));
    for name in RESERVED_FIELDS {
        let bad = serde_json::Value::Object([(name.to_string(), json!("x"))].into_iter().collect());
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

// ---------------------------------------------------------------------------------------------
// The hash chain: each line's `prev` is the previous line's `sha256`, so an attacker who edits,
// deletes, reorders or inserts lines and re-computes the touched lines' own checksums (with the
// documented canonical rule) is still detected.

/// `,"sha256":"` + 64 hex + `"}`.
const SUFFIX: usize = 11 + 64 + 2;

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What an attacker with write access does after editing a line: re-compute the line's own
/// checksum with the documented rule (SHA-256 of the line without its `,"sha256":"…"` member).
fn rehash(line: &str) -> String {
    let content = &line[..line.len() - SUFFIX];
    format!("{content},\"sha256\":\"{}\"}}", sha256_hex(format!("{content}}}").as_bytes()))
}

/// A line's own `sha256` value.
fn digest_of(line: &str) -> String {
    line[line.len() - 66..line.len() - 2].to_string()
}

fn field(line: &str, name: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(line).expect("JSON line")[name].clone()
}

/// `line` with its `prev` value replaced (unchanged if it has none).
fn set_prev(line: &str, prev: &str) -> String {
    match line.find(",\"prev\":\"") {
        Some(i) => format!("{}{prev}{}", &line[..i + 9], &line[i + 9 + 64..]),
        None => line.to_string(),
    }
}

/// `line` without its `prev` member.
fn strip_prev(line: &str) -> String {
    match line.find(",\"prev\":\"") {
        Some(i) => format!("{}{}", &line[..i], &line[i + 9 + 64 + 1..]),
        None => line.to_string(),
    }
}

fn set_seq(line: &str, seq: u64) -> String {
    let rest = &line[line.find(',').expect("a member after seq")..];
    format!("{{\"seq\":{seq}{rest}")
}

fn forge(line: &str) -> String {
    line.replace("\"label\":\"benign\"", "\"label\":\"malignant\"")
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

#[test]
fn tampering_that_re_hashes_lines_breaks_the_chain() {
    type Tamper = fn(&mut Vec<String>);
    // (what the attacker did, how, the first line (1-based) whose `prev` no longer matches,
    //  whether the sequence numbers show it too)
    let cases: [(&str, Tamper, usize, bool); 7] = [
        ("delete a middle line", |l| drop(l.remove(4)), 5, true),
        ("swap two lines", |l| l.swap(3, 4), 4, true),
        ("edit a field and re-hash the line", |l| l[4] = rehash(&forge(&l[4])), 6, false),
        (
            "edit a field, re-hash it and re-chain the next line",
            |l| {
                l[4] = rehash(&forge(&l[4]));
                l[5] = rehash(&set_prev(&l[5], &digest_of(&l[4])));
            },
            7,
            false,
        ),
        (
            "insert a forged line chained to its predecessor",
            |l| {
                let forged = rehash(&set_prev(&set_seq(&forge(&l[4]), 6), &digest_of(&l[4])));
                l.insert(5, forged);
            },
            7,
            true,
        ),
        (
            "strip the chain from a line (pretend an old version wrote it)",
            |l| l[4] = rehash(&strip_prev(&l[4])),
            5,
            false,
        ),
        ("re-chain a middle line to genesis", |l| l[4] = rehash(&set_prev(&l[4], GENESIS)), 5, false),
    ];
    for (i, (name, tamper, first_break, gap)) in cases.into_iter().enumerate() {
        let (path, log) = log_in(&format!("audit-tamper-{i}"), AuditLogConfig::default());
        append_n(&log, 0..10);
        drop(log);
        let mut all = lines(&path);
        assert!(verify(&path).unwrap().is_ok());
        tamper(&mut all);
        write_lines(&path, &all);
        let r = verify(&path).unwrap();
        println!("{name}:\n{}", r.human());
        assert!(!r.is_ok(), "{name}: {}", r.human());
        assert!(r.corrupt.is_empty(), "every line's own checksum is valid: {name}: {}", r.human());
        assert_eq!(r.chain_breaks.first().map(|b| b.line), Some(first_break), "{name}: {}", r.human());
        assert!(r.human().contains(&format!("audit.jsonl:{first_break}: chain break")), "{name}: {}", r.human());
        assert_eq!(!r.gaps.is_empty(), gap, "{name}: {}", r.human());
        assert_eq!(r.chain_start.as_ref().map(|c| c.anchor), Some(ChainAnchor::Genesis), "{name}");

        let out = common::panderm(&["log", "verify", &path.to_string_lossy()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("chain break"), "{name}");
    }
}

#[test]
fn each_line_chains_to_the_previous_one_from_genesis_and_across_rotation() {
    // Nothing rotated away: the chain is verified from genesis.
    let config = AuditLogConfig { max_bytes: 2000, keep: 100 };
    let (path, log) = log_in("audit-chain-rotate-all", config);
    append_n(&log, 0..30);
    let r = verify(&path).unwrap();
    println!("{}", r.human());
    assert!(r.is_ok() && r.files.len() > 3, "{}", r.human());
    assert!(r.human().contains("chain starts at genesis"), "{}", r.human());
    assert_eq!(r.chain_start.as_ref().map(|c| (c.seq, c.anchor)), Some((1, ChainAnchor::Genesis)));
    assert_eq!(r.unchained, 0);
    let mut files = r.files.clone();
    let all: Vec<String> = files.iter().flat_map(|f| lines(f)).collect();
    assert_eq!(all.len(), 30);
    assert_eq!(field(&all[0], "prev"), GENESIS);
    assert!(all[0].starts_with(&format!("{{\"seq\":1,\"time\":{},\"prev\":\"{GENESIS}\",", field(&all[0], "time"))));
    for w in all.windows(2) {
        assert_eq!(field(&w[1], "prev"), digest_of(&w[0]).as_str(), "{}", w[1]);
    }
    assert_eq!(r.last_sha256.as_deref(), Some(digest_of(&all[29]).as_str()));
    // The same files verified from memory give the same report.
    let contents: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let in_memory: Vec<(&Path, &[u8])> =
        files.iter().map(PathBuf::as_path).zip(contents.iter().map(Vec::as_slice)).collect();
    assert_eq!(verify_files(&in_memory), r);
    // Deleting the last line of a rotated file breaks the chain at the next file's first line.
    let mut first_file = lines(&files[0]);
    first_file.pop();
    write_lines(&files[0], &first_file);
    let r = verify(&path).unwrap();
    assert_eq!(r.chain_breaks.len(), 1, "{}", r.human());
    assert_eq!((r.chain_breaks[0].file.as_path(), r.chain_breaks[0].line), (files[1].as_path(), 1), "{}", r.human());

    // The oldest files deleted by rotation: the chain is verified from the first retained line.
    let config = AuditLogConfig { max_bytes: 2000, keep: 2 };
    let (path, log) = log_in("audit-chain-rotate", config.clone());
    append_n(&log, 0..40);
    drop(log);
    let r = verify(&path).unwrap();
    println!("{}", r.human());
    assert!(r.is_ok(), "a chain cut by rotation is not an error: {}", r.human());
    let start = r.chain_start.clone().unwrap();
    assert_eq!((start.line, start.seq, start.anchor), (1, r.first_seq.unwrap(), ChainAnchor::NotRetained));
    files.clone_from(&r.files);
    assert_eq!(start.file, files[0]);
    assert_eq!(files.len(), 3);
    let first_seq = r.first_seq.unwrap();
    assert!(first_seq > 1);
    assert!(
        r.human().contains(&format!("chain starts at {}:1 (seq {first_seq})", files[0].display())),
        "{}",
        r.human()
    );
    // The first line of the current file chains to the last line of `.1`.
    let last_of_1 = lines(&files[1]).pop().unwrap();
    let first_current = lines(&path).remove(0);
    assert_eq!(field(&first_current, "prev"), digest_of(&last_of_1).as_str());
    // A restart right after a rotation (the current file empty) still chains to `.1`.
    std::fs::rename(&path, files[0].with_extension("jsonl.moved")).unwrap();
    std::fs::remove_file(&files[0]).unwrap();
    std::fs::rename(&files[1], &files[0]).unwrap();
    std::fs::rename(files[0].with_extension("jsonl.moved"), &files[1]).unwrap();
    let last_of_1 = lines(&files[1]).pop().unwrap();
    let log = AuditLog::open(&path, config).unwrap();
    log.append(&record(40)).unwrap();
    assert_eq!(field(&lines(&path)[0], "prev"), digest_of(&last_of_1).as_str());
    let r = verify(&path).unwrap();
    assert!(r.is_ok(), "{}", r.human());
    assert_continuous(&r, r.first_seq.unwrap(), 41);
}

#[test]
fn after_a_torn_tail_the_next_line_chains_to_the_last_valid_line() {
    let (path, log) = log_in("audit-chain-torn", AuditLogConfig::default());
    append_n(&log, 0..5);
    drop(log);
    let before = lines(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    let cut = len - before[4].len() as u64 / 2;
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();

    let log = AuditLog::open(&path, AuditLogConfig::default()).unwrap();
    let a = log.append(&record(5)).unwrap();
    assert_eq!(a.seq, 5);
    append_n(&log, 6..8);
    let after = lines(&path);
    assert_eq!(after.len(), 8);
    assert_eq!(a.sha256, digest_of(&after[5]));
    assert!(after[5].contains(&format!("\"torn_before\":{}", a.torn_before)));
    assert_eq!(field(&after[5], "prev"), digest_of(&before[3]).as_str(), "chains over the fragment");
    assert_eq!(field(&after[6], "prev"), digest_of(&after[5]).as_str());
    let r = verify(&path).unwrap();
    println!("{}", r.human());
    assert!(r.is_ok() && !r.torn_tail && r.torn.len() == 1, "{}", r.human());
    assert!(r.human().contains("chain starts at genesis"), "{}", r.human());
    assert_continuous(&r, 1, 7);

    // Torn again, then restarted twice before the next append: still one chain.
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 7).unwrap();
    drop(log);
    drop(AuditLog::open(&path, AuditLogConfig::default()).unwrap());
    let log = AuditLog::open(&path, AuditLogConfig::default()).unwrap();
    assert_eq!(log.append(&record(8)).unwrap().seq, 7);
    let last = lines(&path).pop().unwrap();
    assert_eq!(field(&last, "prev"), digest_of(&after[6]).as_str());
    let r = verify(&path).unwrap();
    assert!(r.is_ok() && r.torn.len() == 2, "{}", r.human());
}

/// A line as the version before the chain wrote it: no `prev`.
fn old_format_line(seq: u64, i: usize) -> String {
    let body = serde_json::to_string(&record(i)).unwrap();
    let content = format!("{{\"seq\":{seq},\"time\":\"2025-01-31T12:00:0{seq}.000Z\",{}", &body[1..body.len() - 1]);
    format!("{content},\"sha256\":\"{}\"}}", sha256_hex(format!("{content}}}").as_bytes()))
}

#[test]
fn a_log_written_before_the_chain_existed_verifies_and_the_chain_continues_from_it() {
    let dir = common::temp_dir("audit-chain-upgrade");
    let path = dir.join("audit.jsonl");
    let old: Vec<String> = (1..=3).map(|s| old_format_line(s, s as usize)).collect();
    write_lines(&path, &old);
    let r = verify(&path).unwrap();
    println!("old log:\n{}", r.human());
    assert!(r.is_ok(), "{}", r.human());
    assert!(r.human().contains("3 unchained"), "{}", r.human());
    assert_eq!((r.unchained, r.chain_start.clone()), (3, None));
    assert_continuous(&r, 1, 3);

    // The device is upgraded: the new lines chain to the last old one.
    let log = AuditLog::open(&path, AuditLogConfig::default()).unwrap();
    append_n(&log, 4..7);
    let all = lines(&path);
    assert_eq!(field(&all[3], "prev"), digest_of(&old[2]).as_str());
    assert_eq!(field(&all[4], "prev"), digest_of(&all[3]).as_str());
    let r = verify(&path).unwrap();
    println!("upgraded:\n{}", r.human());
    assert!(r.is_ok(), "{}", r.human());
    assert!(r.human().contains("3 unchained"), "{}", r.human());
    assert_continuous(&r, 1, 6);
    assert!(r.human().contains("chain starts at"), "{}", r.human());
    assert_eq!(r.unchained, 3);
    let start = r.chain_start.clone().unwrap();
    assert_eq!((start.line, start.seq, start.anchor), (4, 4, ChainAnchor::Unchained));

    // An old line edited and re-hashed: its chained successor no longer matches (the last
    // old line is covered by the chain); the earlier old lines are only as safe as before.
    let mut tampered = all.clone();
    tampered[2] = rehash(&forge(&tampered[2]));
    write_lines(&path, &tampered);
    let r = verify(&path).unwrap();
    assert!(!r.is_ok() && r.human().contains("audit.jsonl:4: chain break"), "{}", r.human());
    // An unchained line after chained ones is an error (the chain was stripped).
    let mut tampered = all.clone();
    tampered.push(old_format_line(7, 7));
    write_lines(&path, &tampered);
    let r = verify(&path).unwrap();
    assert!(!r.is_ok() && r.human().contains("audit.jsonl:7: chain break"), "{}", r.human());
    assert_eq!(r.chain_breaks[0].found, None);
}

/// A tiny deterministic PRNG (xorshift64*) for the mutation test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Verifies `bytes` in memory ([`verify_bytes`], the fuzzing entry point) and as a file, and
/// checks that both agree; must never panic.
fn verify_file_bytes(tag: &str, bytes: &[u8]) -> VerifyReport {
    let dir = common::temp_dir(tag);
    let path = dir.join("audit.jsonl");
    std::fs::write(&path, bytes).unwrap();
    let from_file = verify(&path).unwrap();
    let in_memory = verify_bytes(bytes);
    assert_eq!(in_memory.human(), from_file.human().replace(&format!("{}/", dir.display()), ""));
    in_memory
}

#[test]
fn the_reader_never_panics_on_arbitrary_bytes() {
    let valid = |seq: &str, body: &str| {
        rehash(&format!("{{\"seq\":{seq},\"time\":\"t\",\"prev\":\"{GENESIS}\",{body},\"sha256\":\"{GENESIS}\"}}"))
    };
    let mut inputs: Vec<(String, Vec<u8>)> = vec![
        ("invalid UTF-8".into(), b"{\"seq\":1,\"a\":\"\xff\xfe\"}\n".to_vec()),
        ("non-object JSON".into(), b"[1,2]\n\"text\"\nnull\n12\ntrue\n{}\n".to_vec()),
        ("numbers out of range".into(), b"{\"seq\":18446744073709551616,\"n\":1e999}\n{\"seq\":-1}\n".to_vec()),
        ("a huge line".into(), vec![b'a'; 20 << 20]),
        ("deep nesting".into(), [vec![b'['; 100_000], vec![b']'; 100_000]].concat()),
        (
            "seq at u64::MAX twice".into(),
            format!("{}\n{}\n", valid("18446744073709551615", "\"a\":1"), valid("18446744073709551615", "\"a\":2"))
                .into_bytes(),
        ),
        (
            "seq out of range, valid checksum".into(),
            format!("{}\n", valid("18446744073709551616", "\"a\":1")).into_bytes(),
        ),
    ];
    // Multi-byte characters where the checksum suffix would start (every alignment).
    for pad in 0..4 {
        for ch in ["\u{e9}", "\u{20ac}", "\u{1f600}"] {
            let line = format!("{{\"seq\":1,\"a\":\"{}{}\"}}\n", "x".repeat(pad), ch.repeat(60));
            inputs.push((format!("multi-byte {ch} pad {pad}"), line.into_bytes()));
        }
    }
    for (name, bytes) in &inputs {
        let r = verify_file_bytes("audit-fuzz-fixed", bytes);
        println!("{name}: {}", r.human().lines().next().unwrap());
    }

    // Random mutations of a valid log: flips, cuts, insertions, duplicated and swapped ranges.
    let (path, log) = log_in("audit-fuzz-base", AuditLogConfig::default());
    append_n(&log, 0..12);
    drop(log);
    let base = std::fs::read(&path).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let mut bytes = base.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(5) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes.truncate(at),
                2 => bytes.insert(at, [b'\n', b'"', b'{', b'}', 0, 0xff, b'9'][rng.below(7)]),
                3 => {
                    let end = (at + rng.below(400)).min(bytes.len());
                    let chunk = bytes[at..end].to_vec();
                    let to = rng.below(bytes.len());
                    bytes.splice(to..to, chunk);
                }
                _ => {
                    let end = (at + rng.below(400)).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
            if bytes.is_empty() {
                bytes.push(b'{');
            }
        }
        let r = verify_file_bytes("audit-fuzz", &bytes);
        assert!(r.lines > 0);
    }
}

#[test]
fn opening_and_appending_to_a_garbage_log_never_panics() {
    let max = format!(
        "{}\n",
        rehash(&format!(
            "{{\"seq\":18446744073709551615,\"time\":\"t\",\"prev\":\"{GENESIS}\",\"sha256\":\"{GENESIS}\"}}"
        ))
    );
    let inputs: [&[u8]; 4] = [b"\xff\xfe\n{\"seq\":", b"[1,2]\n", max.as_bytes(), b"{\"seq\":1}\n\0\0\0"];
    for (i, bytes) in inputs.into_iter().enumerate() {
        let dir = common::temp_dir(&format!("audit-garbage-{i}"));
        let path = dir.join("audit.jsonl");
        std::fs::write(&path, bytes).unwrap();
        match AuditLog::open(&path, AuditLogConfig::default()).and_then(|log| log.append(&record(0))) {
            Ok(a) => {
                println!("garbage {i}: appended seq {}", a.seq);
                assert_eq!(a.seq, 1);
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                assert_eq!(field(text.lines().last().unwrap(), "prev"), GENESIS);
            }
            Err(e) => {
                println!("garbage {i}: refused: {e}");
                assert!(i == 2 && e.to_string().contains("no sequence number left"), "{e}");
            }
        }
        let _ = verify(&path).unwrap();
    }
}
