//! Signed bundles: an Ed25519 signature over the bytes of `manifest.toml`.
//!
//! The manifest pins every other bundle file by SHA-256, so one signature over the manifest
//! authenticates the whole bundle: thresholds, preprocessing, labels and every model byte.
//!
//! * **Keys** are text files of one line. The public key (`KEY.pub`):
//!   `panderm-ed25519-public <base64 of the 32-byte key> [comment]`; the secret key (`KEY`,
//!   mode 0600): `panderm-ed25519-secret <base64 of the 32-byte seed>`. A key is named by its
//!   [`KeyId`]: the first 8 bytes of the SHA-256 of the public key, in hex.
//! * **The signature** is `manifest.sig` beside the manifest ([`SIGNATURE_FILE`]), a small TOML
//!   file: `algorithm = "ed25519"`, `key_id`, `signature` (base64 of 64 bytes). It signs
//!   [`SIGNING_CONTEXT`] followed by the manifest's bytes exactly as stored (domain separation:
//!   a signature made for anything else never verifies as a bundle signature).
//! * **Policy** ([`Trust`]): when any trusted key is configured (`--trusted-key`, a board's
//!   `trusted_keys`), an unsigned bundle, a malformed signature file or a signature that no
//!   trusted key verifies is refused before the manifest is parsed. With no key configured,
//!   unsigned bundles still load and are reported as unsigned ([`SignatureStatus`]).
//!
//! See `docs/reliability.md` for the threat model.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// The detached signature's file name inside a bundle.
pub const SIGNATURE_FILE: &str = "manifest.sig";

/// Bytes signed before the manifest's own bytes.
pub const SIGNING_CONTEXT: &[u8] = b"panderm-edge bundle manifest v1\n";

/// First word of a public key file.
pub const PUBLIC_KEY_TAG: &str = "panderm-ed25519-public";

/// First word of a secret key file.
pub const SECRET_KEY_TAG: &str = "panderm-ed25519-secret";

/// Largest key or signature file read (they are one short line each).
const MAX_SMALL_FILE: u64 = 4096;

/// A public key's short name: the first 8 bytes of SHA-256(public key), 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct KeyId(pub String);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A public key that may verify bundles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    /// Where it was read from (for messages).
    pub source: String,
}

impl PublicKey {
    /// Parses the text of a public key file.
    pub fn parse(text: &str, source: &str) -> Result<PublicKey> {
        let bytes = parse_key_line(text, PUBLIC_KEY_TAG, source)?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| bad_key(source, "the 32 bytes are not a valid Ed25519 public key"))?;
        Ok(PublicKey { key, source: source.to_owned() })
    }

    /// Reads a public key file.
    pub fn read(path: &Path) -> Result<PublicKey> {
        let text = read_small_text(path)?;
        PublicKey::parse(&text, &path.display().to_string())
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        key_id(self.key.as_bytes())
    }

    /// The key file's text (one line, newline-terminated).
    pub fn to_text(&self, comment: &str) -> String {
        let comment = comment.trim();
        let sep = if comment.is_empty() { "" } else { " " };
        format!("{PUBLIC_KEY_TAG} {}{sep}{comment}\n", BASE64.encode(self.key.as_bytes()))
    }
}

/// A secret signing key (tools side).
pub struct SecretKey {
    key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.public().id())
    }
}

impl SecretKey {
    /// A key from a 32-byte seed (from the OS random generator when generating one).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey { key: SigningKey::from_bytes(&seed) }
    }

    /// Parses the text of a secret key file.
    pub fn parse(text: &str, source: &str) -> Result<SecretKey> {
        let seed = parse_key_line(text, SECRET_KEY_TAG, source)?;
        Ok(SecretKey::from_seed(seed))
    }

    /// Reads a secret key file.
    pub fn read(path: &Path) -> Result<SecretKey> {
        let text = read_small_text(path)?;
        SecretKey::parse(&text, &path.display().to_string())
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey { key: self.key.verifying_key(), source: "secret key".into() }
    }

    /// The key file's text (one line, newline-terminated).
    pub fn to_text(&self) -> String {
        format!("{SECRET_KEY_TAG} {}\n", BASE64.encode(self.key.to_bytes()))
    }

    /// Signs a manifest's bytes: the text of `manifest.sig`.
    pub fn sign_manifest(&self, manifest: &[u8]) -> String {
        let signature = self.key.sign(&signed_message(manifest));
        let file = SignatureFile {
            algorithm: "ed25519".into(),
            key_id: self.public().id().0,
            signature: BASE64.encode(signature.to_bytes()),
        };
        format!(
            "# PanDerm Edge bundle signature: Ed25519 over manifest.toml (docs/reliability.md)\n{}",
            toml::to_string(&file).expect("the signature file always serialises")
        )
    }
}

/// The `manifest.sig` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    algorithm: String,
    key_id: String,
    signature: String,
}

/// What is known about a bundle's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SignatureStatus {
    /// No `manifest.sig` (allowed only when no trusted key is configured).
    Unsigned,
    /// Signed, but no trusted key is configured, so nothing was checked: the key id is what the
    /// signature file claims.
    NotChecked {
        /// The key id the signature file names.
        key_id: KeyId,
    },
    /// The signature verified with this trusted key.
    Verified {
        /// The trusted key that verified it.
        key_id: KeyId,
    },
}

impl SignatureStatus {
    /// One line for people: `unsigned`, `signed by … (verified)`, ….
    pub fn describe(&self) -> String {
        match self {
            SignatureStatus::Unsigned => "unsigned".into(),
            SignatureStatus::NotChecked { key_id } => {
                format!("signed by key {key_id}, not verified (no trusted key configured)")
            }
            SignatureStatus::Verified { key_id } => format!("signed by trusted key {key_id} (verified)"),
        }
    }

    /// The signer's key id, when there is a signature.
    pub fn key_id(&self) -> Option<&KeyId> {
        match self {
            SignatureStatus::Unsigned => None,
            SignatureStatus::NotChecked { key_id } | SignatureStatus::Verified { key_id } => Some(key_id),
        }
    }
}

/// The keys a device trusts. Empty: unsigned bundles load (reported as unsigned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    keys: Vec<PublicKey>,
}

impl Trust {
    /// No trusted key.
    pub fn none() -> Trust {
        Trust::default()
    }

    /// Trusts these keys.
    pub fn new(keys: Vec<PublicKey>) -> Trust {
        Trust { keys }
    }

    /// Reads each public key file.
    pub fn read(paths: &[PathBuf]) -> Result<Trust> {
        Ok(Trust { keys: paths.iter().map(|p| PublicKey::read(p)).collect::<Result<_>>()? })
    }

    /// Adds keys (e.g. a board profile's to the command line's).
    pub fn extend(&mut self, other: Trust) {
        for k in other.keys {
            if !self.keys.contains(&k) {
                self.keys.push(k);
            }
        }
    }

    /// Whether any key is configured (then every bundle must be signed by one of them).
    pub fn is_enforced(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Checks `manifest` (the bytes of `manifest.toml`) against the signature file's bytes
    /// (`None`: no `manifest.sig`). `dir` names the bundle in messages.
    pub fn check(&self, dir: &Path, manifest: &[u8], signature: Option<&[u8]>) -> Result<SignatureStatus> {
        let refuse = |why: String| {
            Error::new(ErrorKind::Untrusted, format!("{}: bundle refused: {why}; nothing was loaded", dir.display()))
        };
        let Some(signature) = signature else {
            if self.is_enforced() {
                return Err(refuse(format!("it is unsigned (no {SIGNATURE_FILE}) and trusted keys are configured")));
            }
            return Ok(SignatureStatus::Unsigned);
        };
        let parsed = parse_signature_file(signature);
        let (claimed, sig) = match parsed {
            Ok(p) => p,
            Err(e) if self.is_enforced() => return Err(refuse(format!("{SIGNATURE_FILE}: {e}"))),
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Untrusted,
                    format!("{}: {SIGNATURE_FILE}: {e}; remove it or re-sign the bundle", dir.display()),
                ));
            }
        };
        if !self.is_enforced() {
            return Ok(SignatureStatus::NotChecked { key_id: claimed });
        }
        let message = signed_message(manifest);
        for key in &self.keys {
            if key.key.verify_strict(&message, &sig).is_ok() {
                return Ok(SignatureStatus::Verified { key_id: key.id() });
            }
        }
        let trusted: Vec<String> = self.keys.iter().map(|k| k.id().0).collect();
        Err(refuse(format!(
            "the signature (key {claimed}) does not verify with any trusted key ({}): the manifest was changed \
             after signing, or it was signed by another key",
            trusted.join(", ")
        )))
    }
}

fn signed_message(manifest: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + manifest.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(manifest);
    m
}

fn parse_signature_file(bytes: &[u8]) -> std::result::Result<(KeyId, Signature), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    let file: SignatureFile = toml::from_str(text).map_err(|e| format!("malformed: {}", e.message()))?;
    if file.algorithm != "ed25519" {
        return Err(format!("algorithm `{}` is not supported (ed25519)", file.algorithm));
    }
    let raw = BASE64.decode(file.signature.trim()).map_err(|_| "the signature is not base64".to_owned())?;
    let raw: [u8; 64] =
        raw.as_slice().try_into().map_err(|_| format!("the signature has {} bytes, not 64 (truncated?)", raw.len()))?;
    if file.key_id.len() != 16 || !file.key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("key_id is not 16 hex digits".into());
    }
    Ok((KeyId(file.key_id.to_ascii_lowercase()), Signature::from_bytes(&raw)))
}

fn key_id(public: &[u8; 32]) -> KeyId {
    let digest = Sha256::digest(public);
    KeyId(hex::encode(&digest[..8]))
}

fn bad_key(source: &str, why: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("{source}: not a PanDerm Edge key: {why}"))
}

fn parse_key_line(text: &str, tag: &str, source: &str) -> Result<[u8; 32]> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
    let mut words = line.split_whitespace();
    let first = words.next().unwrap_or("");
    if first != tag {
        let other = if tag == PUBLIC_KEY_TAG { SECRET_KEY_TAG } else { PUBLIC_KEY_TAG };
        let hint = if first == other { format!(" (this is a {other} key file)") } else { String::new() };
        return Err(bad_key(source, &format!("expected a line starting with `{tag}`{hint}")));
    }
    let b64 = words.next().ok_or_else(|| bad_key(source, "the key is missing"))?;
    let raw = BASE64.decode(b64).map_err(|_| bad_key(source, "the key is not base64"))?;
    raw.as_slice().try_into().map_err(|_| bad_key(source, &format!("the key has {} bytes, not 32", raw.len())))
}

fn read_small_text(path: &Path) -> Result<String> {
    let bytes = crate::fsutil::read_regular(path, MAX_SMALL_FILE, "key file")?;
    String::from_utf8(bytes).map_err(|_| bad_key(&path.display().to_string(), "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }

    #[test]
    fn keys_round_trip_through_text() {
        let s = key(7);
        let back = SecretKey::parse(&s.to_text(), "t").unwrap();
        assert_eq!(back.public(), s.public());
        let p = PublicKey::parse(&s.public().to_text("lab key"), "t").unwrap();
        assert_eq!(p.id(), s.public().id());
        assert_eq!(p.id().0.len(), 16);
    }

    #[test]
    fn key_files_of_the_wrong_kind_are_refused() {
        let s = key(1);
        let e = PublicKey::parse(&s.to_text(), "k").unwrap_err();
        assert!(e.message().contains("secret key file"), "{e}");
        assert!(SecretKey::parse(&s.public().to_text(""), "k").is_err());
        assert!(PublicKey::parse("panderm-ed25519-public AAAA", "k").is_err());
        assert!(PublicKey::parse("", "k").is_err());
    }

    #[test]
    fn signature_policy_table() {
        let manifest = b"[bundle]\nname = \"x\"\n";
        let signer = key(3);
        let sig = signer.sign_manifest(manifest);
        let trusted = Trust::new(vec![signer.public()]);
        let other = Trust::new(vec![key(4).public()]);
        let none = Trust::none();
        let truncated = {
            let i = sig.find("signature = \"").unwrap() + 13 + 40;
            format!("{}\"\n", &sig[..i])
        };
        let dir = Path::new("b");
        // (trust, manifest, signature, Ok(verified key) or Err(fragment))
        type Case<'a> = (&'a Trust, &'a [u8], Option<&'a [u8]>, std::result::Result<SignatureStatus, &'a str>);
        let cases: Vec<Case> = vec![
            (&trusted, manifest, Some(sig.as_bytes()), Ok(SignatureStatus::Verified { key_id: signer.public().id() })),
            (&trusted, b"[bundle]\nname = \"y\"\n", Some(sig.as_bytes()), Err("does not verify")),
            (&other, manifest, Some(sig.as_bytes()), Err("does not verify")),
            (&trusted, manifest, None, Err("unsigned")),
            (&trusted, manifest, Some(truncated.as_bytes()), Err("not 64")),
            (&trusted, manifest, Some(b"garbage"), Err("malformed")),
            (&none, manifest, None, Ok(SignatureStatus::Unsigned)),
            (&none, manifest, Some(sig.as_bytes()), Ok(SignatureStatus::NotChecked { key_id: signer.public().id() })),
        ];
        for (i, (trust, m, s, want)) in cases.into_iter().enumerate() {
            let got = trust.check(dir, m, s);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "case {i}"),
                (Err(e), Err(frag)) => {
                    assert!(e.message().contains(frag), "case {i}: {e}");
                    assert_eq!(e.kind(), ErrorKind::Untrusted, "case {i}");
                }
                (g, w) => panic!("case {i}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn a_signature_is_bound_to_its_context() {
        // The raw Ed25519 signature of the manifest alone (no context) must not verify.
        let s = key(9);
        let manifest = b"m";
        let raw = s.key.sign(manifest);
        let file = format!(
            "algorithm = \"ed25519\"\nkey_id = \"{}\"\nsignature = \"{}\"\n",
            s.public().id(),
            BASE64.encode(raw.to_bytes())
        );
        let trust = Trust::new(vec![s.public()]);
        assert!(trust.check(Path::new("b"), manifest, Some(file.as_bytes())).is_err());
    }
}
