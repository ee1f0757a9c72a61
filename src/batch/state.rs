//! What a batch run remembers between runs, and how outputs reach the disk.
//!
//! The state is `results.jsonl` itself: one [`BatchRow`] per line. Every output file is written
//! to a temporary file in the same folder, flushed to the disk and renamed over the old one, so
//! a crash or power cut leaves either the previous or the new version, never half a file.
//!
//! `results.jsonl` is read back as untrusted input (anyone who can write the output folder can
//! edit it): every row is checked by [`validate_row`] before it is used, and a row that fails is
//! dropped with a warning (its image is processed again). No path is ever made from its text:
//! thumbnails are named by a [`is_sha256_hex`] digest only.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{BatchRow, RowStatus};
use crate::bundle::Bundle;
use crate::error::{Error, ErrorKind, Result};
use crate::fsutil;

/// Largest `results.jsonl` a run reads back (a row is a few KiB: this is over 100 000 images).
pub const MAX_STATE_BYTES: u64 = 512 << 20;
/// Largest file name a row may carry, in bytes (file systems allow 255; a name that is not UTF-8
/// grows when converted).
const MAX_FILE_NAME_BYTES: usize = 1024;

/// Prefix of the temporary files outputs are written to before the rename.
const TMP_PREFIX: &str = ".panderm-batch-tmp-";

/// Writes `bytes` to `path` atomically: temporary file in the same folder, `fsync`, rename,
/// `fsync` of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Our own prefix, so that `remove_stale_temps` can clean up after an interrupted run.
    let tmp = fsutil::parent_dir(path).join(format!("{TMP_PREFIX}{}-{name}", std::process::id()));
    fsutil::write_atomically_with(path, &tmp, |out| out.write_all(bytes).map_err(|e| Error::io(path, e)))
}

/// Removes temporary files that an interrupted run left in `dir` (best effort).
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for e in read.flatten() {
        if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Reads the rows of an earlier run from `results.jsonl` (none if the file does not exist).
///
/// A line that does not parse, or whose row fails [`validate_row`], is skipped with a warning
/// (its image is processed again); a later line for the same file replaces an earlier one. The
/// file must be a regular file of at most [`MAX_STATE_BYTES`].
pub fn load_rows(path: &Path) -> Result<(BTreeMap<String, BatchRow>, Vec<String>)> {
    let text = match read_state(path) {
        Ok(Some(t)) => t,
        Ok(None) => return Ok((BTreeMap::new(), Vec::new())),
        Err(e) => return Err(e),
    };
    let mut rows = BTreeMap::new();
    let mut warnings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let problem = match serde_json::from_str::<BatchRow>(line) {
            Ok(row) => match validate_row(&row) {
                Ok(()) => {
                    rows.insert(row.file.clone(), row);
                    continue;
                }
                Err(why) => format!("refused earlier result ({why})"),
            },
            Err(e) => format!("unreadable earlier result ({e})"),
        };
        warnings.push(format!("{} line {}: {problem}; that image is processed again", path.display(), i + 1));
    }
    Ok((rows, warnings))
}

/// `results.jsonl` as text, `None` if it does not exist. Refuses anything but a regular file
/// (checked on the opened file) and a file larger than [`MAX_STATE_BYTES`], before reading it.
fn read_state(path: &Path) -> Result<Option<String>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, format!("{}: not a regular file", path.display())));
    }
    let refuse = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{}: larger than {MAX_STATE_BYTES} bytes, not a results file of this tool; move it away to start over",
                path.display()
            ),
        )
    };
    if meta.len() > MAX_STATE_BYTES {
        return Err(refuse());
    }
    let mut bytes = Vec::new();
    file.take(MAX_STATE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(refuse());
    }
    // A line that is not UTF-8 is refused by the line check below, not the whole file.
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Whether `s` is a SHA-256 digest as batch mode writes it: exactly 64 lowercase hex digits.
/// The only text a thumbnail path is made from.
pub fn is_sha256_hex(s: &str) -> bool {
    fsutil::is_sha256_hex(s)
}

/// Checks a row read back from `results.jsonl` before it is used (as a key, compared, written
/// out again, or to find a thumbnail): the file name is a plain file name, the SHA-256 is 64
/// lowercase hex digits (empty only in an `error` row of a file that could not be read), the
/// bundle fingerprint is 16 lowercase hex digits, scores, probabilities and thresholds are
/// finite and within 0..=1, times finite and non-negative, the error kind a short name, the
/// processing time RFC 3339. Texts shown to people (labels, warnings, messages) may hold
/// anything: the CSV and the HTML writers neutralise and escape them.
pub fn validate_row(row: &BatchRow) -> std::result::Result<(), String> {
    let f = &row.file;
    if f.is_empty()
        || f.len() > MAX_FILE_NAME_BYTES
        || f == "."
        || f == ".."
        || f.contains(['/', '\0'])
        || (cfg!(windows) && f.contains(['\\', ':']))
    {
        return Err(format!("file {f:?} is not a file name"));
    }
    let sha = &row.sha256;
    let unread_error = sha.is_empty() && row.status == RowStatus::Error;
    if !(is_sha256_hex(sha) || unread_error) {
        return Err(format!("sha256 {sha:?} is not 64 lowercase hex digits"));
    }
    let fp = &row.bundle_fingerprint;
    if !(fp.len() == 16 && fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))) {
        return Err(format!("bundle_fingerprint {fp:?} is not 16 lowercase hex digits"));
    }
    match row.status {
        RowStatus::Error if row.error.is_none() => return Err("an error row without its error".into()),
        RowStatus::Ok if row.error.is_some() => return Err("an ok row with an error".into()),
        _ => {}
    }
    if let Some(kind) = &row.error_kind
        && !((1..=32).contains(&kind.len())
            && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    {
        return Err(format!("error_kind {kind:?} is not a kind name"));
    }
    if !row.processed_at.is_empty() && humantime::parse_rfc3339(&row.processed_at).is_err() {
        return Err(format!("processed_at {:?} is not an RFC 3339 time", row.processed_at));
    }
    let unit = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
    for h in &row.heads {
        let probs = std::iter::once(h.score).chain(h.top_k.iter().map(|t| t.probability));
        if !probs.map(f64::from).all(unit) || !h.threshold.is_none_or(unit) {
            return Err(format!("head {:?}: a score, probability or threshold outside 0..=1", h.name));
        }
    }
    if let Some(t) = row.total_ms
        && !(t.is_finite() && t >= 0.0)
    {
        return Err(format!("total_ms {t} is not a time"));
    }
    Ok(())
}

/// A short fingerprint of everything in a bundle that can change a result: SHA-256 of the
/// canonical manifest (which holds every model file's digest, the labels, thresholds and
/// preprocessing), first 16 hex digits. Results made with another fingerprint are redone.
pub fn bundle_fingerprint(bundle: &Bundle) -> String {
    let digest = Sha256::digest(bundle.manifest.to_toml().as_bytes());
    hex::encode(&digest[..8])
}
