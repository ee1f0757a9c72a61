//! Reading PanDerm `.pth` checkpoints without Python, and the key policy.
//!
//! Every container `torch.save` writes is read by the `pytorch-reader` crate (ZIP, legacy
//! pickle, TAR), which never executes pickled code: objects it cannot build (the
//! `argparse.Namespace` in `checkpoint-best.pth`) are skipped, and tensor bytes are read
//! lazily. On top of it this module decides *which* tensors form the PanDerm state dict:
//!
//! | layout | keys |
//! |---|---|
//! | flat, bare (`panderm_bb_*.pth`) | `cls_token`, `blocks.0.…` |
//! | flat, `encoder.` prefix (`panderm_ll_*.pth`) | `encoder.cls_token`, … plus pretraining extras (`rd_pos_embed`, `mask_token`, `regresser.*`, `decoder.*`, `teacher.*`), which are ignored |
//! | nested (`checkpoint-best.pth`) | `{'model': state_dict, 'optimizer', 'args', …}`; also `module` / `state_dict` |
//!
//! Nothing is dropped silently: the caller ([`crate::convert::vit`]) consumes the tensors it needs
//! and fails on any that are left over.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{ConvertError, Result};

/// Top-level pretraining extras of the released Large checkpoint that inference ignores.
pub const PRETRAINING_EXTRAS: &[&str] = &["rd_pos_embed", "mask_token", "regresser.", "decoder.", "teacher."];

/// Keys under which training checkpoints nest the state dict, in PanDerm's order of preference.
pub const NESTING_KEYS: &[&str] = &["model", "module", "state_dict"];

/// Where the state dict was found and how its keys are spelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `Some("model")` for training checkpoints, `None` for a flat state dict.
    pub nested_under: Option<String>,
    /// Whether encoder keys carry the `encoder.` prefix (the Large release).
    pub encoder_prefix: bool,
}

impl Layout {
    /// A one-line human description.
    pub fn describe(&self) -> String {
        let dict = match &self.nested_under {
            Some(k) => format!("training checkpoint, state dict under '{k}'"),
            None => "flat state dict".to_owned(),
        };
        let keys =
            if self.encoder_prefix { "keys prefixed `encoder.` (PanDerm Large release style)" } else { "bare keys" };
        format!("{dict}, {keys}")
    }

    /// The key as spelled in the file for a canonical key.
    pub fn original_key(&self, canonical: &str) -> String {
        let mut k = String::new();
        if let Some(n) = &self.nested_under {
            k.push_str(n);
            k.push('.');
        }
        if self.encoder_prefix {
            k.push_str("encoder.");
        }
        k.push_str(canonical);
        k
    }
}

/// A tensor's values, converted to the types the converter works in.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Any floating-point dtype, widened or narrowed to f32.
    F32(Vec<f32>),
    /// Any integer dtype, as i64.
    I64(Vec<i64>),
}

/// A lazily read tensor of the state dict.
#[derive(Clone)]
pub struct LazyTensor {
    inner: pytorch_reader::Tensor,
}

impl LazyTensor {
    /// The tensor's shape.
    pub fn shape(&self) -> &[usize] {
        self.inner.shape()
    }

    /// Reads the values (from the file) and converts them.
    pub fn values(&self, key: &str) -> Result<Values> {
        use pytorch_reader::DType;
        let bytes = self
            .inner
            .read()
            .map_err(|e| ConvertError::BadTensor { key: key.to_owned(), reason: format!("cannot read data: {e}") })?;
        let f32s = |f: fn(&[u8]) -> f32, size: usize| Values::F32(bytes.chunks_exact(size).map(f).collect());
        Ok(match self.inner.dtype() {
            DType::F32 => f32s(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]), 4),
            DType::F64 => f32s(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes")) as f32, 8),
            DType::F16 => f32s(|c| half::f16::from_ne_bytes([c[0], c[1]]).to_f32(), 2),
            DType::BF16 => f32s(|c| half::bf16::from_ne_bytes([c[0], c[1]]).to_f32(), 2),
            DType::I64 => {
                Values::I64(bytes.chunks_exact(8).map(|c| i64::from_ne_bytes(c.try_into().expect("8 bytes"))).collect())
            }
            DType::I32 => Values::I64(
                bytes.chunks_exact(4).map(|c| i64::from(i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))).collect(),
            ),
            other => {
                return Err(ConvertError::BadTensor {
                    key: key.to_owned(),
                    reason: format!("unsupported dtype {other:?}"),
                });
            }
        })
    }

    /// Reads a floating-point tensor.
    pub fn f32(&self, key: &str) -> Result<Vec<f32>> {
        match self.values(key)? {
            Values::F32(v) => Ok(v),
            Values::I64(_) => Err(ConvertError::BadTensor {
                key: key.to_owned(),
                reason: "expected a floating-point tensor, found integers".into(),
            }),
        }
    }

    /// Reads an integer tensor.
    pub fn i64(&self, key: &str) -> Result<Vec<i64>> {
        match self.values(key)? {
            Values::I64(v) => Ok(v),
            Values::F32(_) => Err(ConvertError::BadTensor {
                key: key.to_owned(),
                reason: "expected an integer tensor, found floats".into(),
            }),
        }
    }
}

/// A PanDerm checkpoint: its state dict (canonical keys) plus what was set aside.
pub struct Checkpoint {
    /// The file read.
    pub path: PathBuf,
    /// SHA-256 of the whole file, lowercase hex (recorded as provenance).
    pub sha256: String,
    /// The container format (`Zip`, `Legacy`, …) as reported by the reader.
    pub container: String,
    /// Where the state dict was found.
    pub layout: Layout,
    /// Canonical key → tensor. Keys are removed as the model consumes them.
    pub tensors: BTreeMap<String, LazyTensor>,
    /// Entries deliberately ignored (pretraining extras, optimizer state), by original name.
    pub ignored: Vec<String>,
    /// Bytes the tensors taken so far materialize, against [`Checkpoint::read_limit`].
    taken_bytes: u64,
    /// Size of the file.
    file_len: u64,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let io = |source| ConvertError::Io { path: path.to_owned(), source };
    panderm_edge::bundle::sha256_reader(std::fs::File::open(path).map_err(io)?).map_err(io)
}

impl Checkpoint {
    /// Opens a `.pth` file and applies the layout policy (see the module docs).
    pub fn open(path: &Path) -> Result<Checkpoint> {
        let meta = std::fs::metadata(path).map_err(|source| ConvertError::Io { path: path.to_owned(), source })?;
        if meta.len() == 0 {
            return Err(ConvertError::NotACheckpoint { path: path.to_owned(), reason: "the file is empty".into() });
        }
        let reader = pytorch_reader::PytorchReader::new(path)
            .map_err(|e| ConvertError::NotACheckpoint { path: path.to_owned(), reason: e.to_string() })?;
        let container = format!("{:?}", reader.metadata().format_type);
        let all = reader.into_tensors();
        if all.is_empty() {
            return Err(ConvertError::NotACheckpoint {
                path: path.to_owned(),
                reason: "the file holds no tensors".into(),
            });
        }
        let sha256 = sha256_file(path)?;
        let (layout, tensors, ignored) =
            apply_policy(all.into_iter().map(|(k, t)| (k, LazyTensor { inner: t })).collect())?;
        Ok(Checkpoint {
            path: path.to_owned(),
            sha256,
            container,
            layout,
            tensors,
            ignored,
            taken_bytes: 0,
            file_len: meta.len(),
        })
    }

    /// Most bytes the tensors of this checkpoint may materialize in all: four times the file.
    ///
    /// A tensor in a `.pth` file is a view of a storage, and a view with a zero stride (an
    /// `expand`) can declare far more elements than its storage holds, so a small crafted file
    /// can ask for gigabytes (the reader caps one tensor at 10 GiB, not the file). A genuine
    /// checkpoint stores each weight once, so its tensors add up to at most its own size
    /// (re-compressed archives: somewhat more); four times leaves room for that.
    pub fn read_limit(&self) -> u64 {
        self.file_len.saturating_mul(4)
    }

    /// Removes and returns a tensor, checking its shape.
    pub fn take(&mut self, key: &str, expected: &[usize]) -> Result<LazyTensor> {
        let Some(t) = self.tensors.remove(key) else {
            return Err(ConvertError::MissingKey {
                key: key.to_owned(),
                expected: expected.to_vec(),
                hint: format!(" (looked for `{}`; {})", self.layout.original_key(key), self.layout.describe()),
            });
        };
        if t.shape() != expected {
            return Err(ConvertError::WrongShape {
                key: key.to_owned(),
                expected: expected.to_vec(),
                found: t.shape().to_vec(),
            });
        }
        let total = self.taken_bytes.saturating_add(t.inner.byte_len() as u64);
        if total > self.read_limit() {
            return Err(ConvertError::BadTensor {
                key: key.to_owned(),
                reason: format!(
                    "the tensors read so far would materialize {total} bytes from a {}-byte file (more than 4× its size: expanded or overlapping views?); refusing",
                    self.file_len
                ),
            });
        }
        self.taken_bytes = total;
        Ok(t)
    }

    /// The shape of a tensor still in the state dict.
    pub fn shape_of(&self, key: &str) -> Option<&[usize]> {
        self.tensors.get(key).map(LazyTensor::shape)
    }

    /// Whether a key is present.
    pub fn has(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }
}

fn is_extra(key: &str) -> bool {
    PRETRAINING_EXTRAS.iter().any(|p| if p.ends_with('.') { key.starts_with(p) } else { key == *p })
}

fn looks_like_encoder(keys: impl Iterator<Item = String>) -> bool {
    keys.into_iter().any(|k| {
        let k = k.strip_prefix("encoder.").unwrap_or(&k);
        k == "cls_token" || k.starts_with("blocks.") || k.starts_with("patch_embed.")
    })
}

type Policy = (Layout, BTreeMap<String, LazyTensor>, Vec<String>);

/// Chooses the state dict among flattened `torch.save` entries and canonicalises its keys.
fn apply_policy(all: BTreeMap<String, LazyTensor>) -> Result<Policy> {
    let mut ignored = Vec::new();
    // 1. Nesting: a training checkpoint stores the model under `model` (or `module`/`state_dict`).
    let flat_is_encoder = looks_like_encoder(all.keys().cloned());
    let nested_under = if flat_is_encoder {
        None
    } else {
        NESTING_KEYS
            .iter()
            .find(|n| {
                looks_like_encoder(all.keys().filter_map(|k| k.strip_prefix(&format!("{n}.")).map(str::to_owned)))
            })
            .map(|n| (*n).to_owned())
    };
    let state: BTreeMap<String, LazyTensor> = match &nested_under {
        None => all,
        Some(n) => {
            let prefix = format!("{n}.");
            let mut inner = BTreeMap::new();
            for (k, t) in all {
                match k.strip_prefix(&prefix) {
                    Some(rest) => {
                        inner.insert(rest.to_owned(), t);
                    }
                    None => ignored.push(k),
                }
            }
            inner
        }
    };
    if !looks_like_encoder(state.keys().cloned()) {
        let sample: Vec<_> = state.keys().take(5).map(|k| format!("`{k}`")).collect();
        return Err(ConvertError::UnknownLayout(format!(
            "no PanDerm encoder tensors (`cls_token`, `patch_embed.*`, `blocks.*`) found flat, under `encoder.`, or under {}; first keys: {}",
            NESTING_KEYS.join("/"),
            sample.join(", ")
        )));
    }
    // 2. Prefix: the Large release prefixes encoder keys with `encoder.`.
    let encoder_prefix = state.keys().any(|k| k.starts_with("encoder."));
    let mut canonical = BTreeMap::new();
    for (k, t) in state {
        let key = if encoder_prefix {
            match k.strip_prefix("encoder.") {
                Some(rest) => rest.to_owned(),
                None if is_extra(&k) => {
                    ignored.push(k);
                    continue;
                }
                // A bare key next to prefixed ones: keep it so that it is reported as unused.
                None => k,
            }
        } else if is_extra(&k) {
            ignored.push(k);
            continue;
        } else {
            k
        };
        if canonical.insert(key.clone(), t).is_some() {
            return Err(ConvertError::UnknownLayout(format!(
                "key `{key}` appears both with and without the `encoder.` prefix"
            )));
        }
    }
    Ok((Layout { nested_under, encoder_prefix }, canonical, ignored))
}
