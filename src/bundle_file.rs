//! Reading untrusted files once, safely: regular files only, a size cap checked before reading,
//! and the bytes returned so that what is hashed is exactly what is parsed (no second open by
//! path, so a file swapped between hashing and loading cannot be loaded unverified).
//!
//! * A FIFO, a device file, a socket or a directory is refused with the reason (a FIFO is opened
//!   non-blocking, so opening one never hangs; `/dev/zero` is refused before a byte is read).
//! * A path inside a bundle must not leave the bundle through a symbolic link
//!   ([`read_in_dir`]).
//! * The size is checked on the opened handle, then the read is bounded by the cap, so a file
//!   that grows while it is read is refused too.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// Size caps per kind of bundle file.
pub mod caps {
    /// `manifest.toml`.
    pub const MANIFEST: u64 = 1 << 20;
    /// `manifest.sig`.
    pub const SIGNATURE: u64 = 4096;
    /// A backbone (PanDerm Large fp32 is ~1.2 GB; 2 GiB leaves room, and fits a 32-bit address
    /// space only as a refusal, never as an allocation).
    pub const BACKBONE: u64 = 2 << 30;
    /// A task head (a linear layer: D×K floats; 64 MiB is far above any real head).
    pub const HEAD: u64 = 64 << 20;
    /// The abstention centroids (`K×D` float32).
    pub const CENTROIDS: u64 = 64 << 20;
}

/// Reads the file at `path` if it is a regular file of at most `cap` bytes. `what` names the
/// kind of file in messages (`"backbone"`, `"image"`, …).
pub fn read_regular(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    read_regular_as(path, path, cap, what)
}

/// [`read_regular`] of `open`, naming it `path` in messages.
fn read_regular_as(open: &Path, path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    let file = open_nonblocking(open).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    let ft = meta.file_type();
    if !ft.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{}: refused: the {what} is {}, not a regular file", path.display(), describe_type(&ft)),
        ));
    }
    if meta.len() > cap {
        return Err(too_big(path, what, meta.len(), cap));
    }
    // Room for the size seen now; `take` bounds the read if the file grows meanwhile.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > cap {
        return Err(too_big(path, what, bytes.len() as u64, cap));
    }
    Ok(bytes)
}

/// [`read_regular`] for `rel`, a path inside the bundle directory `dir`: a symbolic link
/// anywhere on the way that leads outside `dir` is refused.
pub fn read_in_dir(dir: &Path, rel: &str, cap: u64, what: &str) -> Result<Vec<u8>> {
    let path = dir.join(rel);
    let real_dir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    let real = path.canonicalize().map_err(|e| Error::io(&path, e))?;
    if !real.starts_with(&real_dir) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{}: refused: the {what} is a symbolic link that leaves the bundle (to {})",
                path.display(),
                real.display()
            ),
        ));
    }
    read_regular_as(&real, &path, cap, what)
}

/// Whether `rel` exists inside `dir` (without following it anywhere).
pub fn exists_in_dir(dir: &Path, rel: &str) -> bool {
    dir.join(rel).symlink_metadata().is_ok()
}

fn too_big(path: &Path, what: &str, len: u64, cap: u64) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("{}: refused: the {what} has {len} bytes, more than the {cap}-byte limit", path.display()),
    )
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO for reading must not wait for a writer; it does not change
    // reads of regular files.
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

fn describe_type(ft: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() { "a directory" } else { "not a regular file" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("panderm-bundle-file-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_regular_files_within_the_cap() {
        let d = scratch("ok");
        std::fs::write(d.join("a"), b"hello").unwrap();
        assert_eq!(read_in_dir(&d, "a", 5, "head").unwrap(), b"hello");
        let e = read_in_dir(&d, "a", 4, "head").unwrap_err();
        assert!(e.message().contains("5 bytes, more than the 4-byte limit"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn devices_fifos_directories_and_escaping_links_are_refused() {
        let d = scratch("bad");
        let e = read_regular(Path::new("/dev/zero"), 10, "head").unwrap_err();
        assert!(e.message().contains("character device"), "{e}");
        std::fs::create_dir(d.join("sub")).unwrap();
        assert!(read_in_dir(&d, "sub", 10, "head").unwrap_err().message().contains("directory"));
        let fifo = d.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_in_dir(&d, "fifo", 10, "head").unwrap_err();
        assert!(e.message().contains("FIFO"), "{e}");
        let outside = scratch("outside");
        std::fs::write(outside.join("x"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.join("x"), d.join("link")).unwrap();
        let e = read_in_dir(&d, "link", 10, "head").unwrap_err();
        assert!(e.message().contains("leaves the bundle"), "{e}");
        std::fs::write(d.join("inside"), b"in").unwrap();
        std::os::unix::fs::symlink("inside", d.join("ok-link")).unwrap();
        assert_eq!(read_in_dir(&d, "ok-link", 10, "head").unwrap(), b"in");
    }
}
