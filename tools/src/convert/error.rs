//! The convert stage's typed error. Every variant renders as one line that names the file,
//! key or value at fault, because the converter's first duty is to refuse a wrong
//! checkpoint loudly (PanDerm's own loader uses `strict=False` and silently runs random
//! weights).

use std::path::PathBuf;

/// An error from reading, validating or converting a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The file could not be read at all.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a readable `torch.save` checkpoint (truncated, corrupt, not PyTorch).
    #[error("{path}: not a readable PyTorch checkpoint: {reason}")]
    NotACheckpoint {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        reason: String,
    },
    /// The checkpoint's tensors do not look like any PanDerm layout.
    #[error("unknown checkpoint layout: {0}")]
    UnknownLayout(String),
    /// A tensor the encoder needs is absent.
    #[error("checkpoint is missing tensor `{key}` (expected shape {expected:?}){hint}")]
    MissingKey {
        /// Canonical key (after layout handling, e.g. `blocks.3.attn.v_bias`).
        key: String,
        /// The shape it should have.
        expected: Vec<usize>,
        /// Extra context (e.g. where it was looked for).
        hint: String,
    },
    /// A tensor has the wrong shape.
    #[error("tensor `{key}` has shape {found:?}, expected {expected:?}")]
    WrongShape {
        /// Canonical key.
        key: String,
        /// The shape required by the inferred configuration.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// Tensors that would be silently dropped by a non-strict loader.
    #[error("checkpoint has {} tensor(s) the {model} does not use: {}{}", keys.len(), keys.iter().take(6).map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "), if keys.len() > 6 { ", …" } else { "" })]
    UnusedKeys {
        /// What was being built (e.g. "feature extractor").
        model: String,
        /// The unused keys, sorted.
        keys: Vec<String>,
    },
    /// A tensor is present with the right shape but an unusable value or dtype.
    #[error("tensor `{key}`: {reason}")]
    BadTensor {
        /// Canonical key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An option given by the user contradicts the checkpoint.
    #[error("{0}")]
    InvalidOption(String),
    /// The output file could not be written (the message names it).
    #[error(transparent)]
    Write(#[from] panderm_edge::Error),
}

/// Result alias for the convert stage.
pub type Result<T> = std::result::Result<T, ConvertError>;
