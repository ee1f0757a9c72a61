//! The runtime's typed error: a [`ErrorKind`] that callers can match on, plus a
//! human-readable, one-line message that names the offending file or value.

use std::fmt;
use std::path::Path;

/// What went wrong, coarsely, so that callers (the CLI, the device firmware)
/// can react without parsing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A file could not be read (missing, permission denied, …).
    Io,
    /// The bytes are not a decodable image (corrupt, truncated, empty, unknown format).
    ImageDecode,
    /// The image is refused before decoding because it would need too much memory.
    ImageTooLarge,
    /// The model file could not be parsed or optimized (truncated ONNX, unsupported op, …).
    ModelLoad,
    /// The model ran but failed, or produced an output of an unexpected type or shape.
    Inference,
    /// A caller-supplied value is invalid (wrong tensor shape, bad option, …).
    InvalidInput,
    /// A bundle's signature is missing, malformed or not made by a trusted key.
    Untrusted,
    /// The model ran but its output cannot be trusted (NaN/Inf, probabilities that are not
    /// probabilities): the result is "cannot assess (model error)".
    ModelOutput,
}

impl ErrorKind {
    /// A short stable name for the kind, used in JSON error reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::ImageDecode => "image-decode",
            ErrorKind::ImageTooLarge => "image-too-large",
            ErrorKind::ModelLoad => "model-load",
            ErrorKind::Inference => "inference",
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::Untrusted => "untrusted",
            ErrorKind::ModelOutput => "model-output",
        }
    }
}

/// The runtime library's error type.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Creates an error of `kind` with a one-line message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message: String = message.into();
        // Keep errors to one line: multi-line causes (tract's error chains) are joined.
        let message = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(": ");
        Error { kind, message }
    }

    /// Creates an I/O error that names the file.
    pub fn io(path: &Path, err: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{}: {err}", path.display()))
    }

    /// The coarse category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The text of a caught panic's payload (`&str` or `String`; anything else: "unknown panic").
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Result alias used throughout the runtime crate.
pub type Result<T> = std::result::Result<T, Error>;
