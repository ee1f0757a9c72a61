//! The engine seam: a loaded model of either engine behind one trait. tract ([`engine::Model`])
//! is the default and the only engine of the pure-Rust build; ONNX Runtime
//! ([`crate::ort_engine`], cargo feature `ort`, the library `dlopen`ed at run time) is the route to
//! the execution providers of NPU boards (issue 16, docs/npu.md).
//!
//! `panderm run`, `bench`, `classify`, `batch` and `compare` take `--backend ort` (the bundle's
//! backbone runs on the chosen engine; heads stay on tract: microsecond linear layers), and a board
//! profile's `[accelerator]` table chooses it per board ([`crate::board::Accelerator`]). When ONNX
//! Runtime cannot be brought up (library missing or too old, a provider not in it, a session it
//! cannot build) and the profile allows it, the model runs on tract instead and [`EngineInfo`]'s
//! `fallback` says why; reports and the audit record carry that `EngineInfo`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::engine::{self, BatchOutput, ModelOptions, Output};
use crate::error::{Error, ErrorKind, Result};
use crate::preprocess::ImageTensor;

/// What ran a model: engine, version, and for ONNX Runtime the library and providers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineInfo {
    /// `tract` or `onnxruntime`.
    pub engine: &'static str,
    /// The engine's version (`0.23.9`, `1.32.0`).
    pub version: String,
    /// ONNX Runtime: the library loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library: Option<PathBuf>,
    /// ONNX Runtime: the execution providers registered, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// ONNX Runtime: its node placement summary ("All nodes placed on [CPUExecutionProvider]…").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<String>,
    /// Set when ONNX Runtime was asked for but could not run the model and tract runs it
    /// instead (a board profile's `fallback = "tract"`): why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

impl EngineInfo {
    /// tract, as this runtime is built.
    pub fn tract() -> EngineInfo {
        EngineInfo {
            engine: "tract",
            version: TRACT_VERSION.into(),
            library: None,
            providers: Vec::new(),
            placement: Vec::new(),
            fallback: None,
        }
    }
}

impl std::fmt::Display for EngineInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.engine, self.version)?;
        if let Some(l) = &self.library {
            write!(f, " ({})", l.display())?;
        }
        if !self.providers.is_empty() {
            write!(f, ", providers {}", self.providers.join(", "))?;
        }
        for p in &self.placement {
            write!(f, "; {p}")?;
        }
        if let Some(why) = &self.fallback {
            write!(f, " (fallback from ONNX Runtime: {why})")?;
        }
        Ok(())
    }
}

/// A loaded model, whichever engine runs it.
pub trait InferenceModel: Send + Sync {
    /// The file it was loaded from.
    fn path(&self) -> &Path;
    /// Input shape without the batch dimension: `[3, H, W]` or `[D]`.
    fn sample_shape(&self) -> &[usize];
    /// The batch size it was loaded for.
    fn batch_size(&self) -> usize;
    /// Output names, in graph order.
    fn output_names(&self) -> &[String];
    /// One `[batch_size, sample_shape…]` buffer in, every output for the whole batch out.
    fn run_raw(&self, data: &[f32]) -> Result<Vec<BatchOutput>>;
    /// The input's name.
    fn input_name(&self) -> &str;
    /// ONNX `metadata_props` (PanDerm's `panderm.*` keys).
    fn metadata(&self) -> &BTreeMap<String, String>;
    /// What runs it.
    fn engine(&self) -> &EngineInfo;
    /// The matrix-multiply kernels the engine chose for this CPU, where it says (tract's and our
    /// ops' kernel names, e.g. `panderm_avx512vnni_i8_8x48`); empty where the engine does not tell.
    fn kernels(&self) -> Vec<String> {
        Vec::new()
    }

    /// The input image size `(height, width)`, for image models.
    fn input_size(&self) -> Option<(usize, usize)> {
        match self.sample_shape() {
            [3, h, w] => Some((*h, *w)),
            _ => None,
        }
    }

    /// Runs an image model on up to `batch_size` images; returns, per image, its outputs.
    fn run(&self, images: &[&ImageTensor]) -> Result<Vec<Vec<Output>>> {
        let Some((h, w)) = self.input_size() else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} takes vectors, not images", self.path().display()),
            ));
        };
        for img in images {
            if img.data.len() != 3 * h * w || img.height != h || img.width != w {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("image tensor is 3x{}x{}, the model expects 3x{h}x{w}", img.height, img.width),
                ));
            }
        }
        let samples: Vec<&[f32]> = images.iter().map(|i| i.data.as_slice()).collect();
        self.run_samples(&samples)
    }

    /// Runs the model on up to `batch_size` samples, each `sample_shape` values (an image tensor
    /// or a feature vector); shorter batches are zero-padded. Returns, per sample, its outputs.
    fn run_samples(&self, samples: &[&[f32]]) -> Result<Vec<Vec<Output>>> {
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.batch_size();
        if samples.len() > batch {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} samples given to a model loaded for batches of {batch}", samples.len()),
            ));
        }
        let per_sample: usize = self.sample_shape().iter().product();
        let mut data = vec![0f32; batch * per_sample];
        for (i, s) in samples.iter().enumerate() {
            if s.len() != per_sample {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("input has {} values, the model expects {:?} = {per_sample}", s.len(), self.sample_shape()),
                ));
            }
            data[i * per_sample..(i + 1) * per_sample].copy_from_slice(s);
        }
        let outputs = self.run_raw(&data)?;
        let mut per_image = vec![Vec::with_capacity(outputs.len()); samples.len()];
        for out in outputs {
            let per = out.values.len() / batch;
            for (i, slot) in per_image.iter_mut().enumerate() {
                slot.push(Output {
                    name: out.name.clone(),
                    shape: out.shape[1..].to_vec(),
                    values: out.values[i * per..(i + 1) * per].to_vec(),
                });
            }
        }
        Ok(per_image)
    }
}

/// ONNX Runtime's execution providers, as `--providers` and board profiles name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// The CPU provider (always present; the explicit fallback).
    Cpu,
    /// VeriSilicon NPUs (NXP i.MX 8M Plus): `VSINPUExecutionProvider`.
    Vsinpu,
    /// Rockchip NPUs (upstream preview: RK1808 only): `RknpuExecutionProvider`.
    Rknpu,
    /// Qualcomm: `QNNExecutionProvider`.
    Qnn,
    /// Android NNAPI: `NnapiExecutionProvider`.
    Nnapi,
    /// Arm Compute Library: `ACLExecutionProvider`.
    Acl,
    /// XNNPACK: `XnnpackExecutionProvider`.
    Xnnpack,
}

impl Provider {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Vsinpu => "vsinpu",
            Provider::Rknpu => "rknpu",
            Provider::Qnn => "qnn",
            Provider::Nnapi => "nnapi",
            Provider::Acl => "acl",
            Provider::Xnnpack => "xnnpack",
        }
    }
}

/// The engines, as `--backend` and a board profile's `accelerator.backend` name them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// tract (default; the only engine of the pure-Rust build).
    #[default]
    Tract,
    /// ONNX Runtime (cargo feature `ort`; `libonnxruntime.so` 1.17 or newer loaded at run time).
    Ort,
}

impl BackendKind {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Tract => "tract",
            BackendKind::Ort => "ort",
        }
    }
}

/// What happens when ONNX Runtime was chosen but cannot run the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// The load fails (default): the device shows nothing rather than run somewhere unplanned.
    #[default]
    Error,
    /// tract runs the model instead; the report and the audit record say so and why.
    Tract,
}

/// Which engine loads a model.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Backend {
    /// tract (default).
    #[default]
    Tract,
    /// ONNX Runtime from `library`, with `providers` in order, `threads` intra-op threads.
    Ort {
        /// Path of `libonnxruntime.so`.
        library: PathBuf,
        /// Execution providers in order of preference (include `Cpu` to allow the CPU).
        providers: Vec<Provider>,
        /// Intra-op threads.
        threads: usize,
        /// What to do when ONNX Runtime cannot run the model.
        fallback: Fallback,
    },
}

impl InferenceModel for engine::Model {
    fn path(&self) -> &Path {
        engine::Model::path(self)
    }
    fn sample_shape(&self) -> &[usize] {
        engine::Model::sample_shape(self)
    }
    fn batch_size(&self) -> usize {
        engine::Model::batch_size(self)
    }
    fn output_names(&self) -> &[String] {
        engine::Model::output_names(self)
    }
    fn run_raw(&self, data: &[f32]) -> Result<Vec<BatchOutput>> {
        engine::Model::run_raw(self, data)
    }
    fn input_name(&self) -> &str {
        engine::Model::input_name(self)
    }
    fn metadata(&self) -> &BTreeMap<String, String> {
        engine::Model::metadata(self)
    }
    fn engine(&self) -> &EngineInfo {
        static TRACT: LazyLock<EngineInfo> = LazyLock::new(EngineInfo::tract);
        &TRACT
    }
    fn kernels(&self) -> Vec<String> {
        self.matmul_kernels()
    }
}

/// tract running a model that ONNX Runtime was chosen for but could not run: tract's model with
/// an [`EngineInfo`] that says why.
struct FellBack {
    model: engine::Model,
    info: EngineInfo,
}

impl InferenceModel for FellBack {
    fn path(&self) -> &Path {
        self.model.path()
    }
    fn sample_shape(&self) -> &[usize] {
        self.model.sample_shape()
    }
    fn batch_size(&self) -> usize {
        self.model.batch_size()
    }
    fn output_names(&self) -> &[String] {
        self.model.output_names()
    }
    fn run_raw(&self, data: &[f32]) -> Result<Vec<BatchOutput>> {
        self.model.run_raw(data)
    }
    fn input_name(&self) -> &str {
        self.model.input_name()
    }
    fn metadata(&self) -> &BTreeMap<String, String> {
        self.model.metadata()
    }
    fn engine(&self) -> &EngineInfo {
        &self.info
    }
    fn kernels(&self) -> Vec<String> {
        self.model.matmul_kernels()
    }
}

/// The tract version this runtime is built on (pinned in Cargo.toml).
pub const TRACT_VERSION: &str = "0.23.9";

/// Loads a model file with the chosen engine.
pub fn load(path: &Path, options: &ModelOptions, backend: &Backend) -> Result<Box<dyn InferenceModel>> {
    match backend {
        Backend::Tract => Ok(Box::new(engine::Model::load_with(path, options)?)),
        Backend::Ort { .. } => {
            let bytes = crate::fsutil::read_regular(path, crate::fsutil::caps::BACKBONE, "model file")?;
            load_bytes(&bytes, path, options, backend)
        }
    }
}

/// Loads a model from bytes already in memory (a bundle file whose digest was checked on these
/// very bytes; `path` names it in messages) with the chosen engine. An NNEF archive is tract's
/// format: refused for ONNX Runtime, whatever the fallback (a bundle made for another engine is a
/// packaging mistake, not an engine failure).
///
/// With [`Fallback::Tract`], any failure to bring ONNX Runtime up on this model (library, version,
/// provider, session) loads it with tract instead, logged as a warning and recorded in
/// [`EngineInfo::fallback`]. A model that is itself broken still fails: tract parses and checks
/// the same bytes.
pub fn load_bytes(
    bytes: &[u8],
    path: &Path,
    options: &ModelOptions,
    backend: &Backend,
) -> Result<Box<dyn InferenceModel>> {
    match backend {
        Backend::Tract => Ok(Box::new(engine::Model::load_bytes(bytes, path, options)?)),
        Backend::Ort { library, providers, threads, fallback } => {
            if crate::nnef::is_nnef(bytes) {
                return Err(Error::new(
                    ErrorKind::ModelLoad,
                    format!(
                        "{}: an NNEF archive, which only tract runs: use the ONNX file (`panderm-tools bundle --format onnx`) or --backend tract",
                        path.display()
                    ),
                ));
            }
            match load_ort(bytes, path, options, library, providers, *threads) {
                Ok(model) => Ok(model),
                Err(e) if *fallback == Fallback::Tract => {
                    log::warn!("{}: ONNX Runtime cannot run it ({}); running it on tract", path.display(), e.message());
                    let model = engine::Model::load_bytes(bytes, path, options)?;
                    let info = EngineInfo { fallback: Some(e.message().to_owned()), ..EngineInfo::tract() };
                    Ok(Box::new(FellBack { model, info }))
                }
                Err(e) => Err(e),
            }
        }
    }
}

#[cfg(feature = "ort")]
fn load_ort(
    bytes: &[u8],
    path: &Path,
    options: &ModelOptions,
    library: &Path,
    providers: &[Provider],
    threads: usize,
) -> Result<Box<dyn InferenceModel>> {
    Ok(Box::new(crate::ort_engine::OrtModel::load_bytes(bytes, path, options, library, providers, threads)?))
}

#[cfg(not(feature = "ort"))]
fn load_ort(
    _bytes: &[u8],
    path: &Path,
    _options: &ModelOptions,
    _library: &Path,
    _providers: &[Provider],
    _threads: usize,
) -> Result<Box<dyn InferenceModel>> {
    Err(Error::new(
        ErrorKind::ModelLoad,
        format!(
            "{}: this panderm was built without ONNX Runtime support (cargo feature `ort`); use --backend tract",
            path.display()
        ),
    ))
}
