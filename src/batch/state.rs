//! What a batch run remembers between runs, and how outputs reach the disk.
//!
//! The state is `results.jsonl` itself: one [`BatchRow`] per line. Every output file is written
//! to a temporary file in the same folder, flushed to the disk and renamed over the old one, so
//! a crash or power cut leaves either the previous or the new version, never half a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::BatchRow;
use crate::bundle::Bundle;
use crate::error::{Error, Result};

/// Prefix of the temporary files outputs are written to before the rename.
const TMP_PREFIX: &str = ".panderm-batch-tmp-";

/// Writes `bytes` to `path` atomically: temporary file in the same folder, `fsync`, rename,
/// `fsync` of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!("{TMP_PREFIX}{}-{name}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    sync_dir(dir);
    Ok(())
}

/// `fsync` of a folder so that a rename in it survives a power cut (best effort: not every
/// platform can open a folder for syncing).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
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
/// A line that does not parse is skipped with a warning (its image is processed again); a later
/// line for the same file replaces an earlier one.
pub fn load_rows(path: &Path) -> Result<(BTreeMap<String, BatchRow>, Vec<String>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((BTreeMap::new(), Vec::new())),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut rows = BTreeMap::new();
    let mut warnings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<BatchRow>(line) {
            Ok(row) => {
                rows.insert(row.file.clone(), row);
            }
            Err(e) => warnings.push(format!(
                "{} line {}: unreadable earlier result ({e}); that image is processed again",
                path.display(),
                i + 1
            )),
        }
    }
    Ok((rows, warnings))
}

/// A short fingerprint of everything in a bundle that can change a result: SHA-256 of the
/// canonical manifest (which holds every model file's digest, the labels, thresholds and
/// preprocessing), first 16 hex digits. Results made with another fingerprint are redone.
pub fn bundle_fingerprint(bundle: &Bundle) -> String {
    let digest = Sha256::digest(bundle.manifest.to_toml().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
