//! Listing the input folder: which files are images, in which order, and (for watch mode)
//! which of them have stopped changing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result};

/// The decoder's list of image file extensions, which batch mode treats as images.
pub use crate::preprocess::decode::IMAGE_EXTENSIONS;

/// Whether a file name has one of the [`IMAGE_EXTENSIONS`] and is not hidden.
///
/// Hidden files (a leading `.`) are skipped: macOS writes `._IMG_0001.jpg` resource-fork files
/// onto USB sticks, and they are not images.
pub fn is_image_name(name: &str) -> bool {
    if name.starts_with('.') {
        return false;
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => IMAGE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)),
        _ => false,
    }
}

/// One image file found in the input folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEntry {
    /// The file name (lossily converted to UTF-8 if it is not), the key of its result row.
    pub name: String,
    /// The full path.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, where the file system has one.
    pub modified: Option<SystemTime>,
}

impl ScanEntry {
    /// Size and modification time: what watch mode compares between polls.
    pub fn stamp(&self) -> (u64, Option<SystemTime>) {
        (self.size, self.modified)
    }
}

/// Lists the image files directly inside `dir` (not in sub-folders), sorted by name (byte
/// order) so that every run processes and reports them in the same order. Entries that are not
/// regular files (after following symbolic links) are skipped, as are files that vanish while
/// the folder is read.
pub fn scan_dir(dir: &Path) -> Result<Vec<ScanEntry>> {
    let read = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_image_name(&name) {
            continue;
        }
        let path = entry.path();
        // `fs::metadata` follows symbolic links: a link to a photo counts, a dangling one does not.
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if !meta.is_file() {
            continue;
        }
        entries.push(ScanEntry { name, path, size: meta.len(), modified: meta.modified().ok() });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Watch mode's "is this file still being written?" test: a file becomes ready once its size
/// and modification time are the same in two consecutive polls.
#[derive(Debug, Default, Clone)]
pub struct StabilityTracker {
    previous: HashMap<String, (u64, Option<SystemTime>)>,
}

impl StabilityTracker {
    /// A tracker that has seen nothing yet (every file must be seen twice).
    pub fn new() -> StabilityTracker {
        StabilityTracker::default()
    }

    /// Records this poll's listing and splits it into files that are ready (unchanged since the
    /// previous poll) and the number still changing or seen for the first time.
    pub fn observe(&mut self, entries: Vec<ScanEntry>) -> (Vec<ScanEntry>, usize) {
        let mut ready = Vec::with_capacity(entries.len());
        let mut waiting = 0;
        let mut current = HashMap::with_capacity(entries.len());
        for e in entries {
            current.insert(e.name.clone(), e.stamp());
            if self.previous.get(&e.name) == Some(&e.stamp()) {
                ready.push(e);
            } else {
                waiting += 1;
            }
        }
        self.previous = current;
        (ready, waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        for ok in ["a.jpg", "B.JPEG", "c.Png", "d.bmp", "e.tif", "f.TIFF", "g.webp", "x y <&>.jpg", "a.b.jpg"] {
            assert!(is_image_name(ok), "{ok}");
        }
        for no in ["notes.txt", "jpg", ".jpg", "._IMG_1.jpg", "a.jpg.part", "a.jpgx", "a", "a.heic"] {
            assert!(!is_image_name(no), "{no}");
        }
    }

    #[test]
    fn stability_needs_two_equal_polls() {
        let e = |size| ScanEntry { name: "a.jpg".into(), path: "a.jpg".into(), size, modified: None };
        let mut t = StabilityTracker::new();
        assert_eq!(t.observe(vec![e(10)]), (vec![], 1));
        assert_eq!(t.observe(vec![e(20)]), (vec![], 1));
        assert_eq!(t.observe(vec![e(20)]), (vec![e(20)], 0));
        assert_eq!(t.observe(vec![e(20)]), (vec![e(20)], 0));
    }
}
