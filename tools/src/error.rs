//! The tools crate's error: one type for every stage, each variant one line that names the file,
//! option or value at fault.
//!
//! A stage with a typed error of its own ([`ConvertError`], [`DatasetError`], [`QuantizeError`],
//! [`ReportError`], [`PthWriteError`]) keeps it (callers and tests match on its variants); it
//! converts into [`Error`] with `?`, as does the runtime's [`panderm_edge::Error`]. Everything
//! else the stages refuse is one of the variants below.

use std::path::PathBuf;

pub use crate::convert::ConvertError;
pub use crate::dataset::DatasetError;
pub use crate::probe::report::ReportError;
pub use crate::quantize::QuantizeError;
pub use crate::synth::pth::PthWriteError;

/// An error of the workstation tools.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read, created or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file was read but is refused: not the expected format, inconsistent, or left by
    /// another job.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An image could not be encoded or written.
    #[error("{path}: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        source: image::ImageError,
    },
    /// Inputs or options that do not fit together (the message names them).
    #[error("{0}")]
    Refused(String),
    /// No usable CUDA device, or the GPU failed.
    #[error("{0}")]
    Cuda(String),
    /// A worker thread panicked.
    #[error("{0}")]
    Panicked(String),
    /// A JSON document could not be written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The runtime library refused or failed (model loading, inference, bundle checks, …).
    #[error(transparent)]
    Runtime(#[from] panderm_edge::Error),
    /// The convert stage.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// A dataset CSV.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The quantize stage.
    #[error(transparent)]
    Quantize(#[from] QuantizeError),
    /// A probe report file.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Writing a synthetic checkpoint.
    #[error(transparent)]
    PthWrite(#[from] PthWriteError),
}

impl Error {
    /// An [`Error::Io`] naming `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// An [`Error::Invalid`] naming `path`.
    pub fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Invalid { path: path.into(), reason: reason.into() }
    }

    /// An [`Error::Refused`].
    pub fn refused(message: impl Into<String>) -> Self {
        Error::Refused(message.into())
    }
}

/// Result alias for the tools crate.
pub type Result<T> = std::result::Result<T, Error>;
