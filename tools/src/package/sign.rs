//! Bundle signing on the workstation: `panderm-tools keygen` and `panderm-tools sign` (and
//! `bundle --sign`). The key and signature formats, and the device-side check, are the
//! runtime's ([`panderm_edge::signing`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use panderm_edge::bundle::{Bundle, MANIFEST};
use panderm_edge::signing::{KeyId, SIGNATURE_FILE, SecretKey};

use crate::error::{Error, Result};

/// Generates a key pair from the operating system's random generator: writes `key` (the secret
/// key, created with mode 0600; an existing file is never overwritten) and `key.pub`.
pub fn keygen(key: &Path, comment: &str) -> Result<KeyId> {
    let public = public_path(key);
    for p in [key, public.as_path()] {
        if p.symlink_metadata().is_ok() {
            return Err(Error::invalid(p, "already exists; not overwriting a key"));
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| Error::refused(format!("the operating system's random generator failed: {e}")))?;
    let secret = SecretKey::from_seed(seed);
    seed.fill(0);
    write_new(key, secret.to_text().as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public, secret.public().to_text(comment).as_bytes(), 0o644) {
        let _ = std::fs::remove_file(key);
        return Err(e);
    }
    Ok(secret.public().id())
}

/// `KEY.pub` beside `KEY`.
pub fn public_path(key: &Path) -> PathBuf {
    let mut name = key.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".pub");
    key.with_file_name(name)
}

/// Signs the bundle in `dir` with the secret key file `key`: writes `manifest.sig` (atomically)
/// over the manifest's bytes. The bundle must verify first (every digest, every model loads):
/// a broken bundle is never signed.
pub fn sign_bundle(dir: &Path, key: &Path) -> Result<KeyId> {
    let secret = SecretKey::read(key)?;
    panderm_edge::classify::Classifier::load(dir).map_err(|e| Error::refused(format!("not signing: {e}")))?;
    let bundle = Bundle::open(dir)?;
    let manifest = panderm_edge::fsutil::read_in_dir(dir, MANIFEST, panderm_edge::fsutil::caps::MANIFEST, "manifest")?;
    if panderm_edge::bundle::sha256_hex(&manifest) != bundle.manifest_sha256 {
        return Err(Error::invalid(dir, "the manifest changed while signing; try again"));
    }
    let text = secret.sign_manifest(&manifest);
    let path = dir.join(SIGNATURE_FILE);
    let tmp = dir.join(format!(".{SIGNATURE_FILE}.partial"));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(secret.public().id())
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options.open(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| Error::io(path, e))
}
