//! File-system helpers shared by the runtime and the tools: reading untrusted files once and
//! safely, writing files so that a power cut never leaves a partial one, and SHA-256 digests.
//!
//! **Reading** ([`open_regular`], [`read_regular`], [`read_in_dir`]):
//! * only regular files: a FIFO, a device file, a socket or a folder is refused naming what it
//!   is. The type is checked by path first (a device is never even opened) and again on the
//!   opened handle, which is what counts; a FIFO is opened non-blocking, so opening one swapped
//!   in meanwhile never hangs.
//! * a path inside a bundle must not leave the bundle through a symbolic link ([`read_in_dir`]).
//! * the size is checked on the opened handle before reading, and the read is bounded by the cap
//!   too, so a file that grows while it is read is refused as well.
//! * the bytes are returned, so that what is hashed is exactly what is parsed (no second open by
//!   path: a file swapped between hashing and loading cannot be loaded unverified).
//!
//! **Writing** ([`write_atomically`], [`write_atomically_with`]): a temporary file in the same
//! folder, `fsync`, rename over the target, `fsync` of the folder (best effort).

use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// Size caps per kind of bundle file.
pub mod caps {
    /// `manifest.toml`.
    pub const MANIFEST: u64 = 1 << 20;
    /// `manifest.sig`.
    pub const SIGNATURE: u64 = 4096;
    /// A backbone (PanDerm Large fp32 is ~1.2 GB; 2 GiB leaves room, and on a 32-bit board is
    /// only ever a refusal, never an allocation).
    pub const BACKBONE: u64 = 2 << 30;
    /// A task head (a linear layer: D×K floats; 64 MiB is far above any real head).
    pub const HEAD: u64 = 64 << 20;
    /// The abstention centroids (`K×D` float32).
    pub const CENTROIDS: u64 = 64 << 20;
}

/// Opens `path` for reading if it is a regular file, and returns it with its size (from the
/// opened handle). `what` names the kind of file in the folder message (`"image file"`, …).
pub fn open_regular(path: &Path, what: &str) -> Result<(File, u64)> {
    if let Ok(meta) = std::fs::metadata(path) {
        refuse_special(path, &meta, what)?;
    }
    let file = open_nonblocking(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    refuse_special(path, &meta, what)?;
    Ok((file, meta.len()))
}

/// Reads at most `cap + 1` bytes of `file` (`size` is the expected length, used to size the
/// buffer); `None` if there were more than `cap`.
pub fn read_capped(file: impl Read, size: u64, cap: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::with_capacity(usize::try_from(size.min(cap)).unwrap_or(0));
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= cap).then_some(bytes))
}

/// Reads the file at `path` if it is a regular file of at most `cap` bytes. `what` names the
/// kind of file in messages (`"backbone"`, `"key file"`, …).
pub fn read_regular(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    read_regular_as(path, path, cap, what)
}

/// [`read_regular`] of `open`, naming it `path` in messages.
fn read_regular_as(open: &Path, path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    let (file, size) = open_regular(open, what).map_err(|e| rename_in_message(e, open, path))?;
    if size > cap {
        return Err(too_big(path, what, size, cap));
    }
    read_capped(file, size, cap).map_err(|e| Error::io(path, e))?.ok_or_else(|| {
        Error::new(ErrorKind::InvalidInput, format!("{}: refused: the {what} grew while it was read", path.display()))
    })
}

/// [`read_regular`] for `rel`, a path inside the bundle directory `dir`: a symbolic link
/// anywhere on the way that leads outside `dir` is refused.
pub fn read_in_dir(dir: &Path, rel: &str, cap: u64, what: &str) -> Result<Vec<u8>> {
    let (real, path) = resolve_in_dir(dir, rel, what)?;
    read_regular_as(&real, &path, cap, what)
}

/// `(resolved path, path as named)` of `rel` inside `dir`; refused if a symbolic link on the way
/// leads outside `dir`.
fn resolve_in_dir(dir: &Path, rel: &str, what: &str) -> Result<(PathBuf, PathBuf)> {
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
    Ok((real, path))
}

/// SHA-256 of `rel` inside the bundle directory `dir`, streamed (never held in memory), with the
/// checks of [`read_in_dir`]: no symbolic link out of `dir`, a regular file of at most `cap` bytes.
pub fn sha256_in_dir(dir: &Path, rel: &str, cap: u64, what: &str) -> Result<String> {
    let (real, path) = resolve_in_dir(dir, rel, what)?;
    let (file, size) = open_regular(&real, what).map_err(|e| rename_in_message(e, &real, &path))?;
    if size > cap {
        return Err(too_big(&path, what, size, cap));
    }
    sha256_reader(file.take(cap.saturating_add(1))).map_err(|e| Error::io(&path, e))
}

/// Whether `rel` exists inside `dir` (without following it anywhere).
pub fn exists_in_dir(dir: &Path, rel: &str) -> bool {
    dir.join(rel).symlink_metadata().is_ok()
}

fn rename_in_message(e: Error, from: &Path, to: &Path) -> Error {
    if from == to {
        return e;
    }
    Error::new(e.kind(), e.message().replace(&*from.to_string_lossy(), &to.to_string_lossy()))
}

fn too_big(path: &Path, what: &str, len: u64, cap: u64) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("{}: refused: the {what} has {len} bytes, more than the {cap}-byte limit", path.display()),
    )
}

/// Refuses anything but a regular file, saying what it is.
fn refuse_special(path: &Path, meta: &Metadata, what: &str) -> Result<()> {
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(());
    }
    let msg = if ft.is_dir() {
        format!("is a folder, not a{} {what}", if what.starts_with(['a', 'e', 'i', 'o', 'u']) { "n" } else { "" })
    } else {
        format!("is {}, not a regular file", special_kind(&ft))
    };
    Err(Error::new(ErrorKind::InvalidInput, format!("{}: {msg}", path.display())))
}

#[cfg(unix)]
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a named pipe (FIFO)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "something else"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "something else"
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO does not wait for a writer (it is then refused by its
    // metadata); it changes nothing for regular files. O_NOCTTY: a terminal never becomes ours.
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// Writes `path` atomically: `write` fills a temporary file `tmp` (in the same folder), which is
/// then synced and renamed over `path`, and the folder is synced. On any error the temporary
/// file is removed and `path` is untouched. Errors name `path`.
pub fn write_atomically_with(
    path: &Path,
    tmp: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let result = (|| {
        let file = File::create(tmp).map_err(|e| Error::io(path, e))?;
        let mut out = std::io::BufWriter::new(file);
        write(&mut out)?;
        out.flush().map_err(|e| Error::io(path, e))?;
        let file = out.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
        drop(file);
        std::fs::rename(tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
        return result;
    }
    sync_dir(parent_dir(path));
    Ok(())
}

/// [`write_atomically_with`] of `bytes`, through the temporary file [`temp_path`]`(path)`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, &temp_path(path), |out| out.write_all(bytes).map_err(|e| Error::io(path, e)))
}

/// The temporary file [`write_atomically`] uses for `path`: `.NAME.tmp-PID` in the same folder.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    parent_dir(path).join(format!(".{name}.tmp-{}", std::process::id()))
}

/// The folder holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `fsync` of a folder so that a rename in it survives a power cut (best effort: not every
/// platform can open a folder for syncing).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// SHA-256 of everything `reader` yields, lowercase hex, read in 1 MiB chunks.
pub fn sha256_reader(mut reader: impl Read) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    sha256_reader(f).map_err(|e| Error::io(path, e))
}

/// Whether `s` is a SHA-256 digest as this project writes them: exactly 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// SHA-256 of bytes in memory, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("panderm-fsutil-{tag}-{}", std::process::id()));
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
        assert_eq!(read_capped(&b"0123456789"[..], 10, 10).unwrap().unwrap(), b"0123456789");
        assert!(read_capped(&b"0123456789A"[..], 10, 10).unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn devices_fifos_folders_and_escaping_links_are_refused() {
        let d = scratch("bad");
        let e = read_regular(Path::new("/dev/zero"), 10, "head").unwrap_err();
        assert!(e.message().ends_with("is a character device, not a regular file"), "{e}");
        std::fs::create_dir(d.join("sub")).unwrap();
        let e = read_in_dir(&d, "sub", 10, "image file").unwrap_err();
        assert!(e.message().ends_with("is a folder, not an image file"), "{e}");
        let fifo = d.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_in_dir(&d, "fifo", 10, "head").unwrap_err();
        assert!(e.message().ends_with("is a named pipe (FIFO), not a regular file"), "{e}");
        // Opened without blocking, then refused by the handle's metadata.
        let (f, _) = (open_nonblocking(&fifo).unwrap(), ());
        assert!(refuse_special(&fifo, &f.metadata().unwrap(), "head").is_err());
        let outside = scratch("outside");
        std::fs::write(outside.join("x"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.join("x"), d.join("link")).unwrap();
        let e = read_in_dir(&d, "link", 10, "head").unwrap_err();
        assert!(e.message().contains("leaves the bundle"), "{e}");
        std::fs::write(d.join("inside"), b"in").unwrap();
        std::os::unix::fs::symlink("inside", d.join("ok-link")).unwrap();
        assert_eq!(read_in_dir(&d, "ok-link", 10, "head").unwrap(), b"in");
    }

    #[test]
    fn atomic_writes_leave_the_old_file_on_error() {
        let d = scratch("atomic");
        let p = d.join("out.txt");
        write_atomically(&p, b"one").unwrap();
        let e = write_atomically_with(&p, &temp_path(&p), |out| {
            out.write_all(b"partial").map_err(|e| Error::io(&p, e))?;
            Err(Error::new(ErrorKind::Io, "disk full"))
        });
        assert!(e.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert!(!temp_path(&p).exists());
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
