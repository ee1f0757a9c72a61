//! Append-only, power-cut-safe audit log: one JSON object per line (JSON Lines).
//!
//! Every line is the caller's record (any value that serializes to a JSON object) with the
//! log's own fields around it, in this order:
//!
//! ```text
//! {"seq":42,"time":"2025-01-31T12:00:00.123Z","prev":"<64 hex>",<record's fields…>,"sha256":"<64 hex>"}
//! ```
//!
//! * `seq`: a sequence number that increases by exactly 1 per line and continues across
//!   rotation and across restarts (it is recovered from the last valid line on open).
//! * `time`: RFC 3339 UTC with milliseconds.
//! * `prev`: the hash chain. The `sha256` value of the previous valid line of the log (64
//!   lowercase hex digits), or [`GENESIS`] (64 zeros) on the very first line of a fresh log.
//!   Like `seq` it continues across restarts (recovered from the last valid line on open),
//!   across rotation (the first line of a new `audit.jsonl` chains to the last line of
//!   `audit.jsonl.1`) and across torn writes (the line written after a torn fragment chains to
//!   the last *valid* line before it). Because each line's `sha256` covers its `prev`, editing
//!   a line and re-computing its own checksum, deleting, reordering or inserting lines all
//!   break the chain at the next line, which [`verify`] reports as an error.
//! * `torn_before` (only on the first line written after a power cut): the number of bytes of
//!   the torn write(s) the log found after its last valid line and isolated (see below).
//! * `sha256`: the SHA-256 of the line's bytes with the `,"sha256":"…"` member removed, i.e.
//!   of `{"seq":…,<other fields>}` exactly as written. Any changed byte is detected without
//!   re-serializing JSON (no dependence on key order or number formatting).
//!
//! Records may not use the reserved names in [`RESERVED_FIELDS`] (`seq`, `time`, `prev`,
//! `torn_before`, `sha256`).
//!
//! Lines written by versions before the chain have no `prev`: they still verify (own checksum
//! and `seq`) and are reported as *unchained*; the first chained line after them chains to the
//! last of them. An unchained line *after* a chained one is an error (the chain was stripped).
//!
//! What the chain cannot show on its own: lines removed from the **end** of the log (or the
//! log rewritten from some line to its end, every checksum and `prev` re-computed), and lines
//! removed from the **start** (indistinguishable from rotation deleting the oldest file: the
//! verified chain then starts at the first retained line, reported as such, not as an error).
//! [`VerifyReport::last_sha256`], the digest of the newest line, is the log's head: recorded
//! elsewhere (a report, a server, a notebook) it anchors everything up to that line.
//!
//! # Durability and power cuts
//!
//! A line is written with a single `write_all` of a buffer ending in `'\n'` on a file opened
//! with `O_APPEND`, then `fdatasync`ed; creating or rotating a file also fsyncs the directory.
//! A power cut can therefore only tear the **last** write. On open (and whenever another
//! writer changed the file), the log scans the tail: if the file does not end with a valid,
//! newline-terminated line, the next append writes a `'\n'` first (in the same `write_all`),
//! so the torn fragment stays on a line of its own, and marks the new line with
//! `torn_before`. [`verify`] reports such fragments as *torn* (a warning), and reports any
//! other invalid line as *corrupt* (an error): see [`VerifyReport`]. A torn fragment is not a
//! link of the chain: the line written after it chains to the last valid line before it, so a
//! power cut loses at most the line being written and never breaks the chain.
//!
//! # Rotation
//!
//! When appending a line would make `audit.jsonl` exceed [`AuditLogConfig::max_bytes`], the
//! files are shifted (`audit.jsonl.1` → `audit.jsonl.2`, …, the oldest beyond
//! [`AuditLogConfig::keep`] deleted), `audit.jsonl` becomes `audit.jsonl.1`, and a new
//! `audit.jsonl` is started, whose first line chains to the last line of `audit.jsonl.1`.
//! [`verify`] reads the rotated files oldest first, as one chain.
//!
//! # Concurrency
//!
//! One [`AuditLog`] can be shared between threads (`&self` appends, an internal mutex).
//! Across processes, each append holds an exclusive `flock` on `<log>.lock` (Linux/Unix) and
//! re-reads the log's state if another writer appended or rotated in between, so concurrent
//! writers never interleave or duplicate sequence numbers. The expected deployment is still
//! one writer process per log (the device's `panderm`); the lock makes a second writer safe,
//! not fast. On non-Unix targets only the in-process mutex applies.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// Field names the log writes itself; records may not use them.
pub const RESERVED_FIELDS: [&str; 5] = ["seq", "time", "prev", "torn_before", "sha256"];

/// The `prev` of the first line of a fresh log: 64 zeros (no line hashes to it).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `,"sha256":"` + 64 hex digits + `"}`.
const CHECKSUM_SUFFIX_LEN: usize = 11 + 64 + 2;

/// Tail bytes read first when recovering the state on open (doubled until a valid line is
/// found or the whole file was read).
const TAIL_CHUNK: u64 = 64 * 1024;

/// Size-based rotation settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditLogConfig {
    /// Largest size of the current file, in bytes; an append that would exceed it rotates
    /// first (a single line larger than this still gets a file of its own). Default 8 MiB.
    pub max_bytes: u64,
    /// How many rotated files (`.1` … `.keep`) are kept; older ones are deleted. Default 5.
    pub keep: u32,
}

impl Default for AuditLogConfig {
    fn default() -> Self {
        AuditLogConfig { max_bytes: 8 * 1024 * 1024, keep: 5 }
    }
}

impl AuditLogConfig {
    /// Refuses a zero `max_bytes` or `keep`.
    pub fn validate(&self) -> Result<()> {
        if self.max_bytes == 0 {
            return Err(Error::new(ErrorKind::InvalidInput, "audit log max_bytes must be > 0"));
        }
        if self.keep == 0 {
            return Err(Error::new(ErrorKind::InvalidInput, "audit log keep must be >= 1 rotated file"));
        }
        Ok(())
    }
}

/// What [`AuditLog::append`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appended {
    /// The line's sequence number.
    pub seq: u64,
    /// The line's `time` field.
    pub time: String,
    /// Whether the log was rotated before this line.
    pub rotated: bool,
    /// Bytes of a torn write isolated before this line (0 normally).
    pub torn_before: u64,
    /// The line's `sha256`: the new head of the chain (the next line's `prev`).
    pub sha256: String,
}

/// An open audit log (see the module docs).
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    lock_path: PathBuf,
    config: AuditLogConfig,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: File,
    /// Size of `file` after our last write or scan.
    size: u64,
    /// Sequence number of the next line (`None` after `u64::MAX`: appends are refused).
    next_seq: Option<u64>,
    /// `prev` of the next line: the last valid line's `sha256`, or [`GENESIS`].
    prev: String,
    /// Bytes after the last valid line (a torn tail) that the next line acknowledges.
    torn_bytes: u64,
    /// Whether the file is empty or ends with `'\n'`.
    ends_with_newline: bool,
}

impl AuditLog {
    /// Opens (creating if needed) the log at `path`; its directory must exist. Recovers the
    /// next sequence number and the chain's `prev` from the last valid line (of the rotated
    /// files if the current one has none) and detects a torn tail.
    pub fn open(path: &Path, config: AuditLogConfig) -> Result<AuditLog> {
        config.validate()?;
        let lock_path = sibling(path, ".lock");
        let log = AuditLog { path: path.to_path_buf(), lock_path, config, state: Mutex::new(open_state(path)?) };
        Ok(log)
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rotation settings.
    pub fn config(&self) -> &AuditLogConfig {
        &self.config
    }

    /// Appends one record (which must serialize to a JSON object without the
    /// [`RESERVED_FIELDS`]) as a line with `seq`, `time`, `prev` and `sha256`, durably (fsync).
    /// Refused once a line with `seq` `u64::MAX` exists (only a forged log gets there).
    pub fn append<T: Serialize + ?Sized>(&self, record: &T) -> Result<Appended> {
        let body = record_body(record)?;
        // A poisoned mutex only means another thread panicked mid-append; the state is
        // re-validated against the file below, so it is safe to continue.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let _lock = FileLock::acquire(&self.lock_path)?;
        self.refresh(&mut state)?;

        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        // A torn fragment moved into `.1` by a rotation ends that file; the acknowledgement
        // is kept anyway (it records that a write was lost).
        let torn_before = state.torn_bytes;
        let Some(seq) = state.next_seq else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{}: the last line has seq {}: no sequence number left", self.path.display(), u64::MAX),
            ));
        };
        let (line, digest) = build_line(seq, &time, &state.prev, torn_before, &body);
        let separator = u64::from(!state.ends_with_newline);
        let rotated = state.size > 0 && state.size + separator + line.len() as u64 > self.config.max_bytes;
        if rotated {
            self.rotate(&mut state)?;
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        if !state.ends_with_newline {
            buf.push(b'\n');
        }
        buf.extend_from_slice(line.as_bytes());
        state.file.write_all(&buf).map_err(|e| Error::io(&self.path, e))?;
        state.file.sync_data().map_err(|e| Error::io(&self.path, e))?;
        state.size += buf.len() as u64;
        state.ends_with_newline = true;
        state.torn_bytes = 0;
        state.next_seq = seq.checked_add(1);
        state.prev = digest.clone();
        Ok(Appended { seq, time, rotated, torn_before, sha256: digest })
    }

    /// Re-reads the state if the file was replaced (rotated by another writer) or changed
    /// size (appended by another writer) since our last write.
    fn refresh(&self, state: &mut State) -> Result<()> {
        let ours = state.file.metadata().map_err(|e| Error::io(&self.path, e))?;
        let replaced = match std::fs::metadata(&self.path) {
            Ok(current) => !same_file(&ours, &current),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        if replaced || ours.len() != state.size {
            *state = open_state(&self.path)?;
        }
        Ok(())
    }

    /// Shifts the rotated files, renames the current file to `.1`, starts a new one.
    fn rotate(&self, state: &mut State) -> Result<()> {
        let mut rotated = rotated_files(&self.path)?;
        rotated.sort_by_key(|r| std::cmp::Reverse(r.0)); // highest first, so renames never collide
        for (n, p) in &rotated {
            if *n >= self.config.keep {
                std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
            } else {
                let to = sibling(&self.path, &format!(".{}", n + 1));
                std::fs::rename(p, &to).map_err(|e| Error::io(p, e))?;
            }
        }
        let first = sibling(&self.path, ".1");
        std::fs::rename(&self.path, &first).map_err(|e| Error::io(&self.path, e))?;
        let file = open_append(&self.path)?;
        sync_dir(&self.path)?;
        state.file = file;
        state.size = 0;
        state.ends_with_newline = true;
        // `state.prev` is kept: the new file's first line chains to the last line of `.1`.
        Ok(())
    }
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_a: &std::fs::Metadata, _b: &std::fs::Metadata) -> bool {
    true
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new().append(true).create(true).open(path).map_err(|e| Error::io(path, e))
}

/// fsyncs the directory holding `path` (so a created or renamed entry survives a power cut).
fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Opens the current file (creating it) and recovers the state from its tail.
fn open_state(path: &Path) -> Result<State> {
    let existed = path.exists();
    let file = open_append(path)?;
    if !existed {
        sync_dir(path)?;
    }
    let tail = scan_tail(path)?;
    let last = match tail.last {
        Some(last) => Some(last),
        None => {
            // Nothing valid here (new file after rotation, or only a torn fragment):
            // continue from the newest rotated file that has a valid line.
            let mut rotated = rotated_files(path)?;
            rotated.sort_by_key(|r| r.0);
            let mut found = None;
            for (_, p) in rotated {
                if let Some(last) = scan_tail(&p)?.last {
                    found = Some(last);
                    break;
                }
            }
            found
        }
    };
    let (next_seq, prev) = match last {
        None => (Some(1), GENESIS.to_string()),
        Some((seq, sha256)) => (seq.checked_add(1), sha256),
    };
    Ok(State {
        file,
        size: tail.size,
        next_seq,
        prev,
        torn_bytes: tail.torn_bytes,
        ends_with_newline: tail.ends_with_newline,
    })
}

struct Tail {
    size: u64,
    /// `seq` and `sha256` of the last valid line.
    last: Option<(u64, String)>,
    torn_bytes: u64,
    ends_with_newline: bool,
}

/// Finds the last valid line of a file by reading its tail (growing the window until a
/// valid line is found or the whole file was read).
fn scan_tail(path: &Path) -> Result<Tail> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut window = TAIL_CHUNK.min(size);
    loop {
        let start = size - window;
        file.seek(SeekFrom::Start(start)).map_err(|e| Error::io(path, e))?;
        let mut buf = Vec::with_capacity(window as usize);
        (&mut file).take(window).read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
        let ends_with_newline = buf.last().is_none_or(|&b| b == b'\n');
        // Lines that start inside the window (the first one may be cut unless start == 0).
        let mut lines = split_lines(&buf);
        if start > 0 && !lines.is_empty() {
            lines.remove(0);
        }
        for line in lines.iter().rev() {
            if let LineStatus::Valid(v) = parse_line(line.bytes) {
                let end_of_line = start + (line.offset + line.bytes.len()) as u64;
                // A valid line cut just before its '\n' counts as valid; it needs a separator.
                let torn_bytes = size.saturating_sub(end_of_line + u64::from(line.terminated));
                return Ok(Tail { size, last: Some((v.seq, v.sha256)), torn_bytes, ends_with_newline });
            }
        }
        if start == 0 {
            return Ok(Tail { size, last: None, torn_bytes: size, ends_with_newline });
        }
        window = (window * 2).min(size);
    }
}

/// A line of a file: its bytes (without `'\n'`), where it starts, whether it had a `'\n'`.
struct Line<'a> {
    bytes: &'a [u8],
    offset: usize,
    terminated: bool,
}

fn split_lines(buf: &[u8]) -> Vec<Line<'_>> {
    lines_of(buf).collect()
}

/// The lines of `buf` in order (the last one unterminated if `buf` does not end with `'\n'`).
fn lines_of(buf: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut offset = 0;
    std::iter::from_fn(move || {
        if offset >= buf.len() {
            return None;
        }
        let start = offset;
        Some(match buf[start..].iter().position(|&b| b == b'\n') {
            Some(n) => {
                offset += n + 1;
                Line { bytes: &buf[start..start + n], offset: start, terminated: true }
            }
            None => {
                offset = buf.len();
                Line { bytes: &buf[start..], offset: start, terminated: false }
            }
        })
    })
}

/// `(n, path)` of the existing rotated files `path.n` (any order).
fn rotated_files(path: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err(Error::new(ErrorKind::InvalidInput, format!("{}: not a valid log file name", path.display())));
    };
    let prefix = format!("{name}.");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
        if !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && !n.starts_with('0')
            && let Ok(n) = n.parse::<u32>()
        {
            // Named like `path` (no `./` prefix when `path` is a bare file name).
            out.push((n, path.with_file_name(&file_name)));
        }
    }
    Ok(out)
}

/// The record serialized as a JSON object's members (`"a":1,"b":2`, possibly empty), in
/// the record's own field order; refuses non-objects and reserved names.
fn record_body<T: Serialize + ?Sized>(record: &T) -> Result<String> {
    let text = serde_json::to_string(record)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("audit record does not serialize: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("audit record is not valid JSON: {e}")))?;
    let Some(map) = value.as_object() else {
        return Err(Error::new(ErrorKind::InvalidInput, "audit record must serialize to a JSON object"));
    };
    if let Some(name) = RESERVED_FIELDS.iter().find(|f| map.contains_key(**f)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("audit record uses the reserved field name {name:?} (reserved: {RESERVED_FIELDS:?})"),
        ));
    }
    // serde_json writes an object as `{` members `}` with no whitespace in compact mode.
    let inner = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or_default();
    Ok(inner.to_string())
}

/// `{"seq":…,"time":…,"prev":…,["torn_before":…,]<body>,"sha256":"…"}\n` and its `sha256`.
fn build_line(seq: u64, time: &str, prev: &str, torn_before: u64, body: &str) -> (String, String) {
    let mut line = format!("{{\"seq\":{seq},\"time\":{},\"prev\":\"{prev}\"", serde_json::Value::from(time));
    if torn_before > 0 {
        line.push_str(&format!(",\"torn_before\":{torn_before}"));
    }
    if !body.is_empty() {
        line.push(',');
        line.push_str(body);
    }
    let digest = hex::encode(Sha256::digest(format!("{line}}}").as_bytes()));
    line.push_str(&format!(",\"sha256\":\"{digest}\"}}\n"));
    (line, digest)
}

fn is_digest(bytes: &[u8]) -> bool {
    bytes.len() == 64 && bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A valid line's fields that the log itself wrote.
struct ValidLine {
    seq: u64,
    time: String,
    /// `prev` (64 hex), or `None` on a line written before the chain.
    prev: Option<String>,
    torn_before: bool,
    /// The line's own checksum (verified).
    sha256: String,
}

/// Classification of one line (without its `'\n'`).
enum LineStatus {
    Valid(ValidLine),
    /// A prefix of a line (a torn write): empty, or JSON that ends early (after removing
    /// trailing NUL bytes, which a power cut can leave behind).
    Fragment,
    /// A complete line that is wrong: the reason.
    Corrupt(String),
}

/// Classifies one line. Total on arbitrary bytes: never panics, whatever the length,
/// encoding or JSON (serde_json bounds nesting depth; numbers out of range are refused).
fn parse_line(bytes: &[u8]) -> LineStatus {
    let trimmed_len = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let trimmed = &bytes[..trimmed_len];
    if trimmed.is_empty() {
        return LineStatus::Fragment;
    }
    let text = match std::str::from_utf8(trimmed) {
        Ok(t) => t,
        // Cut inside a multi-byte character: a prefix.
        Err(e) if e.error_len().is_none() => return LineStatus::Fragment,
        Err(e) => return LineStatus::Corrupt(format!("invalid UTF-8 at byte {}", e.valid_up_to())),
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) if e.is_eof() => return LineStatus::Fragment,
        Err(e) => return LineStatus::Corrupt(format!("invalid JSON: {e}")),
    };
    if trimmed_len != bytes.len() {
        return LineStatus::Corrupt("NUL bytes after the JSON object".into());
    }
    let Some(object) = value.as_object() else {
        return LineStatus::Corrupt("not a JSON object".into());
    };
    // Split as bytes: the suffix may start inside a multi-byte character of a forged line.
    let raw = trimmed;
    if raw.len() < CHECKSUM_SUFFIX_LEN + 2 {
        return LineStatus::Corrupt("no sha256 field at the end of the line".into());
    }
    let (content, suffix) = raw.split_at(raw.len() - CHECKSUM_SUFFIX_LEN);
    let Some(stored) = suffix.strip_prefix(b",\"sha256\":\"").and_then(|s| s.strip_suffix(b"\"}")) else {
        return LineStatus::Corrupt("no sha256 field at the end of the line".into());
    };
    let mut hasher = Sha256::new();
    hasher.update(content);
    hasher.update(b"}");
    let actual = hex::encode(hasher.finalize());
    if actual.as_bytes() != stored {
        return LineStatus::Corrupt("sha256 mismatch".into());
    }
    let seq = object.get("seq").and_then(serde_json::Value::as_u64);
    let time = object.get("time").and_then(serde_json::Value::as_str);
    let (Some(seq), Some(time)) = (seq, time) else {
        return LineStatus::Corrupt("missing or invalid seq/time".into());
    };
    // The log's own fields come first, exactly as written (which also refuses duplicates).
    let head = format!("{{\"seq\":{seq},\"time\":{}", serde_json::Value::from(time));
    let Some(rest) = content.strip_prefix(head.as_bytes()) else {
        return LineStatus::Corrupt("missing or invalid seq/time".into());
    };
    // `"prev":"<64 hex>"` right after `time`; anything else there is a line written before the
    // chain (whose first record field may have been called "prev").
    let prev = rest
        .strip_prefix(b",\"prev\":\"")
        .filter(|r| r.len() >= 65 && is_digest(&r[..64]) && r[64] == b'"' && r.get(65).is_none_or(|&b| b == b','))
        .map(|r| String::from_utf8_lossy(&r[..64]).into_owned());
    LineStatus::Valid(ValidLine {
        seq,
        time: time.to_string(),
        prev,
        torn_before: object.get("torn_before").and_then(serde_json::Value::as_u64).is_some_and(|n| n > 0),
        sha256: actual,
    })
}

/// An exclusive `flock` on the lock file, released on drop.
struct FileLock {
    #[cfg(unix)]
    file: File,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<FileLock> {
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            loop {
                // SAFETY: flock on a valid, open file descriptor owned by `file`.
                let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
                if rc == 0 {
                    break;
                }
                let err = std::io::Error::last_os_error();
                if err.kind() != std::io::ErrorKind::Interrupted {
                    return Err(Error::io(path, err));
                }
            }
            Ok(FileLock { file })
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(FileLock {})
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a valid, open file descriptor owned by `self.file`. Closing the
            // file would release the lock anyway; unlocking first is explicit.
            unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

/// A line of the log, for [`VerifyReport`] issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineIssue {
    /// The file (the log or one of its rotated files).
    pub file: PathBuf,
    /// 1-based line number in that file.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// A break in the sequence numbers between two consecutive valid lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeqGap {
    /// The file of the line with the unexpected `seq`.
    pub file: PathBuf,
    /// 1-based line number in that file.
    pub line: usize,
    /// `previous seq + 1`.
    pub expected: u64,
    /// The `seq` found.
    pub found: u64,
}

/// A valid line whose `prev` is not the `sha256` of the valid line before it: a line before
/// it was deleted, edited (and re-hashed), inserted or moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The file of the line.
    pub file: PathBuf,
    /// 1-based line number in that file.
    pub line: usize,
    /// The line's `seq`.
    pub seq: u64,
    /// The `prev` it should carry: the previous valid line's `sha256` ([`GENESIS`] for seq 1).
    pub expected: String,
    /// The `prev` it carries; `None` for an unchained line after chained ones.
    pub found: Option<String>,
}

/// What the first chained line (where the verified chain starts) links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainAnchor {
    /// [`GENESIS`]: the log's very first line; nothing before it can have been removed.
    Genesis,
    /// The last of the unchained lines before it (written before the chain existed); checked.
    Unchained,
    /// A line that is not in the files read (rotated away, or removed): not checkable.
    NotRetained,
}

/// Where the verified hash chain starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainStart {
    /// The file of the first chained line.
    pub file: PathBuf,
    /// 1-based line number in that file.
    pub line: usize,
    /// Its `seq`.
    pub seq: u64,
    /// Its `prev`.
    pub prev: String,
    /// What `prev` links to.
    pub anchor: ChainAnchor,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The files read, oldest first (rotated files, then the log itself).
    pub files: Vec<PathBuf>,
    /// Lines read (including invalid ones).
    pub lines: usize,
    /// Valid lines (JSON object, checksum matches, `seq` and `time` present).
    pub valid: usize,
    /// Torn writes left by power cuts (allowed; a warning): an invalid last line without a
    /// `'\n'`, or a truncated line at the end of a file or acknowledged by the following
    /// line's `torn_before`.
    pub torn: Vec<LineIssue>,
    /// Whether the very last line of the log is torn (a power cut during the last write).
    pub torn_tail: bool,
    /// Invalid lines anywhere else (an error): bad checksum, broken JSON, unexplained
    /// truncation.
    pub corrupt: Vec<LineIssue>,
    /// Sequence numbers that do not increase by exactly 1 (an error). After `k` corrupt
    /// lines, the next valid line may be up to `k` further on (the corrupt lines held them).
    pub gaps: Vec<SeqGap>,
    /// Breaks in the hash chain (an error). The line after corrupt lines is not checked
    /// (what it chains to is unreadable; the corrupt lines are already errors).
    pub chain_breaks: Vec<ChainBreak>,
    /// Where the verified chain starts (`None`: no chained line).
    pub chain_start: Option<ChainStart>,
    /// Valid lines without `prev`, written before the chain existed (allowed before the first
    /// chained line; their checksums and `seq` are verified as before).
    pub unchained: usize,
    /// `seq` of the first valid line.
    pub first_seq: Option<u64>,
    /// `seq` of the last valid line.
    pub last_seq: Option<u64>,
    /// `time` of the first valid line.
    pub first_time: Option<String>,
    /// `time` of the last valid line.
    pub last_time: Option<String>,
    /// `sha256` of the last valid line: the head of the chain. Compared with a copy kept
    /// elsewhere, it shows whether lines were removed from the end or the log rewritten.
    pub last_sha256: Option<String>,
}

impl VerifyReport {
    /// No corrupt lines, no sequence gaps and no chain breaks (torn writes are allowed).
    pub fn is_ok(&self) -> bool {
        self.corrupt.is_empty() && self.gaps.is_empty() && self.chain_breaks.is_empty()
    }

    /// A human-readable summary, one finding per line; the first line is the verdict.
    pub fn human(&self) -> String {
        let verdict = if !self.is_ok() {
            "CORRUPT"
        } else if !self.torn.is_empty() {
            "OK with warnings"
        } else {
            "OK"
        };
        let mut s = format!(
            "audit log {verdict}: {} valid of {} lines in {} file(s), {} torn, {} corrupt, {} seq gap(s), {} chain break(s)",
            self.valid,
            self.lines,
            self.files.len(),
            self.torn.len(),
            self.corrupt.len(),
            self.gaps.len(),
            self.chain_breaks.len()
        );
        if let (Some(a), Some(b)) = (self.first_seq, self.last_seq) {
            s.push_str(&format!("\n  seq {a}..{b}"));
        }
        if let (Some(a), Some(b)) = (&self.first_time, &self.last_time) {
            s.push_str(&format!("\n  time {a} .. {b}"));
        }
        if self.unchained > 0 {
            s.push_str(&format!(
                "\n  {} unchained line(s) (no prev: written before the hash chain; checksums and seq verified)",
                self.unchained
            ));
        }
        match &self.chain_start {
            None if self.valid > 0 => s.push_str("\n  no chained line"),
            None => {}
            Some(c) => {
                let at = format!("{}:{} (seq {})", c.file.display(), c.line, c.seq);
                s.push_str(&match c.anchor {
                    ChainAnchor::Genesis => format!("\n  chain starts at genesis: {at}"),
                    ChainAnchor::Unchained => format!("\n  chain starts at {at}, linked to the last unchained line"),
                    ChainAnchor::NotRetained => format!(
                        "\n  chain starts at {at}: the line it links to (sha256 {}) is not in these files \
                         (rotated away), so lines before it cannot be checked",
                        short(&c.prev)
                    ),
                });
            }
        }
        if let Some(h) = &self.last_sha256 {
            s.push_str(&format!("\n  head sha256 {h}"));
        }
        for t in &self.torn {
            let what = if self.torn_tail && Some(t) == self.torn.last() { "torn tail" } else { "torn write" };
            s.push_str(&format!("\n  warning: {}:{}: {what} ({})", t.file.display(), t.line, t.reason));
        }
        for c in &self.corrupt {
            s.push_str(&format!("\n  error: {}:{}: corrupt line ({})", c.file.display(), c.line, c.reason));
        }
        for g in &self.gaps {
            s.push_str(&format!(
                "\n  error: {}:{}: seq {} where {} was expected",
                g.file.display(),
                g.line,
                g.found,
                g.expected
            ));
        }
        for b in &self.chain_breaks {
            let found = match &b.found {
                Some(p) => format!("prev {}", short(p)),
                None => "no prev (unchained after chained lines)".to_string(),
            };
            s.push_str(&format!(
                "\n  error: {}:{}: chain break at seq {}: {found} where {} was expected \
                 (a line before it was deleted, inserted, moved or edited)",
                b.file.display(),
                b.line,
                b.seq,
                short(&b.expected)
            ));
        }
        s
    }
}

/// The first 16 hex digits of a digest, for messages.
fn short(digest: &str) -> String {
    match digest.get(..16) {
        Some(d) if digest.len() > 16 => format!("{d}…"),
        _ => digest.to_string(),
    }
}

/// Verifies the log at `path` and its rotated files (`path.N`, oldest first): every line's
/// JSON and checksum, that `seq` increases by exactly 1, and the hash chain (`prev`). Fails
/// only if nothing can be read (no log and no rotated file); findings are in the report.
/// Reads one file at a time.
pub fn verify(path: &Path) -> Result<VerifyReport> {
    let mut rotated = rotated_files(path)?;
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if path.exists() || files.is_empty() {
        files.push(path.to_path_buf());
    }
    let mut verifier = Verifier::new();
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        verifier.file(file, &bytes);
    }
    Ok(verifier.report)
}

/// [`verify`] on bytes in memory: `files` are the log's files, oldest first, each as
/// `(name, contents)`; the names only label the findings. Pure and total: never panics,
/// whatever the bytes (invalid UTF-8, huge lines, deep nesting, numbers out of range);
/// memory grows with the longest line and the number of findings.
pub fn verify_files(files: &[(&Path, &[u8])]) -> VerifyReport {
    let mut verifier = Verifier::new();
    for (name, bytes) in files {
        verifier.file(name, bytes);
    }
    verifier.report
}

/// [`verify`] on one file's bytes in memory (findings name it `audit.jsonl`); the entry point
/// for fuzzing the reader. Never panics.
pub fn verify_bytes(bytes: &[u8]) -> VerifyReport {
    verify_files(&[(Path::new("audit.jsonl"), bytes)])
}

/// The state of a verification between files (the chain and `seq` run across them).
struct Verifier {
    report: VerifyReport,
    /// Corrupt lines since the last valid one (their `seq` and digest are unknown).
    unreadable: u64,
}

impl Verifier {
    fn new() -> Verifier {
        Verifier {
            report: VerifyReport {
                files: Vec::new(),
                lines: 0,
                valid: 0,
                torn: Vec::new(),
                torn_tail: false,
                corrupt: Vec::new(),
                gaps: Vec::new(),
                chain_breaks: Vec::new(),
                chain_start: None,
                unchained: 0,
                first_seq: None,
                last_seq: None,
                first_time: None,
                last_time: None,
                last_sha256: None,
            },
            unreadable: 0,
        }
    }

    /// Reads the next file (each one older files first).
    fn file(&mut self, file: &Path, bytes: &[u8]) {
        let report = &mut self.report;
        report.files.push(file.to_path_buf());
        // A run of fragments is a torn write if it reaches the end of the file or the next
        // valid line acknowledges it.
        let mut pending: Vec<usize> = Vec::new();
        let issue = |i: usize, reason: &str| LineIssue { file: file.to_path_buf(), line: i + 1, reason: reason.into() };
        let mut lines = lines_of(bytes).enumerate().peekable();
        let mut count = 0;
        while let Some((i, line)) = lines.next() {
            count = i + 1;
            let is_last = lines.peek().is_none();
            match parse_line(line.bytes) {
                LineStatus::Valid(v) => {
                    for &p in &pending {
                        if v.torn_before {
                            report.torn.push(issue(p, "truncated line, acknowledged by the next line"));
                        } else {
                            report.corrupt.push(issue(p, "truncated line in the middle of the log"));
                            self.unreadable += 1;
                        }
                    }
                    pending.clear();
                    report.valid += 1;
                    // Each corrupt line since the previous valid one may have held a number.
                    if let Some(prev) = report.last_seq {
                        let expected = prev.saturating_add(1);
                        if prev == u64::MAX || !(expected..=expected.saturating_add(self.unreadable)).contains(&v.seq) {
                            report.gaps.push(SeqGap { file: file.to_path_buf(), line: i + 1, expected, found: v.seq });
                        }
                    }
                    Self::chain(report, self.unreadable, file, i + 1, &v);
                    self.unreadable = 0;
                    report.first_seq.get_or_insert(v.seq);
                    report.first_time.get_or_insert_with(|| v.time.clone());
                    report.last_seq = Some(v.seq);
                    report.last_time = Some(v.time);
                    report.last_sha256 = Some(v.sha256);
                }
                LineStatus::Fragment => pending.push(i),
                // Garbage in an interrupted last write (no '\n'): torn, not corrupt.
                LineStatus::Corrupt(_) if is_last && !line.terminated => pending.push(i),
                LineStatus::Corrupt(reason) => {
                    for &p in &pending {
                        report.corrupt.push(issue(p, "truncated line in the middle of the log"));
                        self.unreadable += 1;
                    }
                    pending.clear();
                    report.corrupt.push(issue(i, &reason));
                    self.unreadable += 1;
                }
            }
        }
        report.lines += count;
        for &p in &pending {
            report.torn.push(issue(p, "truncated line at the end of the file"));
        }
        // Only the last file's value remains: whether the log ends with a torn write.
        report.torn_tail = pending.last().is_some_and(|&p| p + 1 == count);
    }

    /// Checks a valid line's `prev` against the previous valid line (`report.last_sha256`,
    /// not yet updated), after `unreadable` corrupt lines.
    fn chain(report: &mut VerifyReport, unreadable: u64, file: &Path, line: usize, v: &ValidLine) {
        let chained = report.chain_start.is_some();
        let broken = |expected: &str, found: Option<&String>| ChainBreak {
            file: file.to_path_buf(),
            line,
            seq: v.seq,
            expected: expected.to_string(),
            found: found.cloned(),
        };
        let Some(prev) = &v.prev else {
            // Unchained: allowed until the chain starts (a log from before the chain).
            if chained {
                let expected = report.last_sha256.clone().unwrap_or_default();
                report.chain_breaks.push(broken(&expected, None));
            } else {
                report.unchained += 1;
            }
            return;
        };
        let expected = match &report.last_sha256 {
            // After corrupt lines the predecessor is unknown (already an error).
            Some(_) if unreadable > 0 => None,
            Some(last) => Some(last.clone()),
            // The first valid line read: seq 1 starts the log, so it must link to genesis.
            None if v.seq == 1 => Some(GENESIS.to_string()),
            None => None,
        };
        if !chained {
            let anchor = if prev == GENESIS {
                ChainAnchor::Genesis
            } else if report.last_sha256.is_some() {
                // Every valid line before it was unchained (a chained one would have started
                // the chain).
                ChainAnchor::Unchained
            } else {
                ChainAnchor::NotRetained
            };
            report.chain_start =
                Some(ChainStart { file: file.to_path_buf(), line, seq: v.seq, prev: prev.clone(), anchor });
        }
        if let Some(expected) = expected
            && *prev != expected
        {
            report.chain_breaks.push(broken(&expected, Some(prev)));
        }
    }
}
