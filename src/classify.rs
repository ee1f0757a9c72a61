//! The device pipeline: one verified bundle, images in, reports out. The backbone runs
//! **once** per image; every head runs on that shared feature.
//!
//! With test-time augmentation ([`Classifier::set_tta`], PanDerm's TTA: [`crate::preprocess::tta`])
//! the backbone runs once per augmented image instead, every head runs on each of those
//! features, and each head's `N` outputs are combined the way PanDerm combines a fine-tuned
//! model's logits, `softmax(mean logits)`:
//!
//! * a classifier backbone (a fine-tuned model: its output *is* the logits): the mean of the `N`
//!   logit vectors, then softmax;
//! * a head model (its outputs are probabilities, the softmax — or, binary, the sigmoid pair —
//!   of its logits): `softmax(mean log p)`, which is the same number (softmax ignores each
//!   augmentation's `logsumexp` shift; [`crate::preprocess::tta::probabilities_from_mean_log`]).
//!
//! The image-quality gate still looks at the original image; the abstention rule's distance is
//! measured on the mean of the `N` features; every augmentation's outputs are checked for NaN/Inf
//! and for being probabilities, so a model error on any of them is reported as such.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::abstain::{Abstention, Centroids};
use crate::backend::{Backend, EngineInfo, InferenceModel};
use crate::bundle::{BackboneKind, Bundle, FileKind, HeadRole, Task};
use crate::engine::{Model, ModelOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::frame::{Frame, rgb_digest};
use crate::preprocess::tta::{self, Tta};
use crate::preprocess::{ImageTensor, PreprocessConfig, decode_bytes, preprocess_rgb};
use crate::quality::{CheckResult, NOT_SKIN, QualityReport, QualityThresholds, assess};
use crate::run_report::softmax;
use crate::signing::{SignatureStatus, Trust};

/// Largest top-k a report holds (fixed capacity, no allocation per head).
pub const MAX_TOP_K: usize = 16;

/// The top-k of [`Classifier::classify_frame`] and of the C ABI: `panderm classify`'s default.
pub const DEFAULT_TOP_K: usize = 3;

/// The notice printed with every result of a demo bundle.
pub const DEMO_NOTICE: &str =
    "PIPELINE DEMO: random-weight model, not a medical device; outputs mean nothing clinically";

/// One of the top-k classes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ranked {
    /// Class index.
    pub class: u16,
    /// Probability.
    pub probability: f32,
}

/// Fixed-capacity top-k, highest first (ties: lower class index first).
pub fn top_k(probs: &[f32], k: usize) -> heapless::Vec<Ranked, MAX_TOP_K> {
    let k = k.min(MAX_TOP_K).min(probs.len());
    let mut top: heapless::Vec<Ranked, MAX_TOP_K> = heapless::Vec::new();
    for (i, &p) in probs.iter().enumerate() {
        let pos = top.iter().position(|r| p > r.probability).unwrap_or(top.len());
        if pos < k {
            if top.len() == k {
                top.pop();
            }
            // Capacity was checked: len < k <= MAX_TOP_K here.
            let _ = top.insert(pos, Ranked { class: i as u16, probability: p });
        }
    }
    top
}

/// A binary decision at the manifest's operating threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision<'a> {
    /// P(class 1).
    pub score: f32,
    /// Operating threshold from the manifest.
    pub threshold: f64,
    /// `score >= threshold`.
    pub positive: bool,
    /// The label decided.
    pub label: &'a str,
}

/// One head's result for one image. Names and labels borrow from the loaded bundle and the
/// top-k list has fixed capacity, so producing a head's result allocates nothing beyond the
/// probabilities the head model returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadResult<'a> {
    /// Task name.
    pub name: &'a str,
    /// Binary or multiclass.
    pub task: Task,
    /// Top-k labels with probabilities.
    pub top_k: heapless::Vec<LabelledProb<'a>, MAX_TOP_K>,
    /// Binary tasks: the decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision<'a>>,
    /// Every class probability, in label order.
    pub probabilities: Vec<f32>,
    /// Every class label (borrowed from the bundle; not serialised).
    #[serde(skip)]
    pub labels: &'a [String],
}

/// A label and its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelledProb<'a> {
    /// Class label.
    pub label: &'a str,
    /// Probability.
    pub probability: f32,
}

/// Stage timings in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    /// File read + decode.
    pub decode_ms: f64,
    /// The image-quality gate.
    pub quality_ms: f64,
    /// Resize, crop, normalize.
    pub preprocess_ms: f64,
    /// Backbone forward pass.
    pub backbone_ms: f64,
    /// All heads together.
    pub heads_ms: f64,
    /// Everything.
    pub total_ms: f64,
}

/// What a report amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The model's result may be shown.
    Assessed,
    /// "Cannot assess" for this image (quality, out of distribution, low confidence): retake
    /// or refer.
    CannotAssess,
    /// "Cannot assess (model error)": the model produced numbers that cannot back a decision;
    /// the bundle is broken or tampered and should not be used.
    ModelError,
}

impl Status {
    /// The status of a report with this "cannot assess" reason.
    pub fn of(cannot_assess: Option<&CannotAssess>) -> Status {
        match cannot_assess {
            None => Status::Assessed,
            Some(c) if c.why.is_model_error() => Status::ModelError,
            Some(_) => Status::CannotAssess,
        }
    }

    /// The process exit code the CLI uses for this status: 0, [`EXIT_CANNOT_ASSESS`] or
    /// [`EXIT_MODEL_ERROR`].
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Assessed => 0,
            Status::CannotAssess => EXIT_CANNOT_ASSESS,
            Status::ModelError => EXIT_MODEL_ERROR,
        }
    }
}

/// Exit code of `panderm classify` when an image got "cannot assess" (and no worse outcome).
pub const EXIT_CANNOT_ASSESS: u8 = 4;
/// Exit code of `panderm classify` when the model produced unusable numbers (NaN/Inf, or head
/// outputs that are not probabilities).
pub const EXIT_MODEL_ERROR: u8 = 5;

/// The result for one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassifyReport<'a> {
    /// The image path as given.
    pub image: String,
    /// Whether a result may be shown (`assessed`), or why not.
    pub status: Status,
    /// Bundle name and version.
    pub bundle: &'a str,
    /// Whether (and by whom) the bundle's manifest is signed.
    pub signature: &'a SignatureStatus,
    /// Demo notice, when the bundle is a demo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<&'static str>,
    /// SHA-256 of the image file.
    pub image_sha256: String,
    /// The image-quality gate's checks.
    pub quality: QualityReport,
    /// Set when the report must be read as "cannot assess" (no decision shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cannot_assess: Option<CannotAssess>,
    /// Cosine distance of the feature to the nearest training-class centroid, when the bundle
    /// has an abstention rule and the backbone ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ood_distance: Option<f64>,
    /// The test-time augmentation the probabilities come from (absent without TTA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tta: Option<Tta>,
    /// The backbone file that ran (the bundle's `[backbone]`, or its `[backbone_fallback]`).
    pub backbone: &'a BackboneRan,
    /// The engine that ran the backbone (tract, or ONNX Runtime with its providers; `fallback`
    /// set when ONNX Runtime was configured but tract ran).
    pub engine: &'a EngineInfo,
    /// Per-head results (empty when the quality gate stopped the image).
    pub heads: Vec<HeadResult<'a>>,
    /// The backbone feature (empty when the quality gate stopped the image; not serialised).
    #[serde(skip)]
    pub feature: Vec<f32>,
    /// Stage timings.
    pub timings: Timings,
}

/// Why a report is "cannot assess", with the sentence shown to people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CannotAssess {
    /// The structured reason.
    #[serde(flatten)]
    pub why: Abstention,
    /// One line starting with "cannot assess".
    pub message: String,
}

impl From<Abstention> for CannotAssess {
    fn from(why: Abstention) -> Self {
        CannotAssess { message: why.message(), why }
    }
}

/// Which of a bundle's backbone files a classifier runs: the manifest's `[backbone]`, or its
/// `[backbone_fallback]` where int8 is slow on this CPU ([`crate::precision`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackboneRan {
    /// The file, relative to the bundle.
    pub file: String,
    /// Its SHA-256, as the manifest lists it (verified at load).
    pub sha256: String,
    /// Its precision.
    pub precision: crate::board::Precision,
}

struct LoadedHead {
    model: Option<Model>,
    name: String,
    task: Task,
    labels: Vec<String>,
    threshold: Option<f64>,
    role: HeadRole,
}

/// A bundle loaded for classification.
pub struct Classifier {
    bundle: Bundle,
    preprocess: PreprocessConfig,
    backbone: Box<dyn InferenceModel>,
    backbone_output: usize,
    ran: BackboneRan,
    heads: Vec<LoadedHead>,
    bundle_id: String,
    quality: QualityThresholds,
    quality_blocks: bool,
    centroids: Option<Centroids>,
    tta: Option<Tta>,
}

/// The SHA-256 (hex) of an image file's bytes, as reports and the audit log record it.
pub fn image_digest(image: &Path, bytes: &[u8]) -> Result<String> {
    crate::bundle::sha256_reader(bytes).map_err(|e| Error::io(image, e))
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl Classifier {
    /// [`Classifier::load_with`] with no trusted key configured (unsigned bundles load).
    pub fn load(dir: &Path) -> Result<Classifier> {
        Classifier::load_with(dir, &Trust::none())
    }

    /// Checks the manifest's signature against `trust` (before anything is parsed), then reads
    /// each bundle file once, verifies its digest on the bytes read and loads the model from those
    /// same bytes.
    pub fn load_with(dir: &Path, trust: &Trust) -> Result<Classifier> {
        Classifier::load_with_engine(dir, trust, None, &Backend::Tract)
    }

    /// [`Classifier::load_with`], with the backbone of the `preferred` precision (a board
    /// profile's `model.precision`) when the bundle carries it in `[backbone]` or
    /// `[backbone_fallback]`, else as [`crate::precision::choose`] decides for this CPU; and on
    /// the chosen engine (tract, or ONNX Runtime: then the bundle's own `[backbone]` runs, since
    /// the fp32 fallback answers tract's int8 speed, and it must be ONNX). Heads always run on
    /// tract.
    pub fn load_with_engine(
        dir: &Path,
        trust: &Trust,
        preferred: Option<crate::board::Precision>,
        engine: &Backend,
    ) -> Result<Classifier> {
        let bundle = Bundle::open_with(dir, trust)?;
        let m = &bundle.manifest;
        // An int8 backbone with an fp32 fallback: the fallback runs where int8 is slow here.
        let speed = crate::precision::int8_speed()?;
        let fallback = m.backbone_fallback.as_ref().filter(|_| *engine == Backend::Tract);
        let backbone_precision =
            crate::precision::choose_preferring(m.backbone.precision, fallback.map(|f| f.precision), speed, preferred);
        let (file, sha256) = match fallback {
            Some(f) if backbone_precision == f.precision => (&f.file, &f.sha256),
            _ => (&m.backbone.file, &m.backbone.sha256),
        };
        if fallback.is_some() {
            log::info!("{} backbone `{file}` ({})", backbone_precision.name(), speed.reason());
        }
        // The other backbone is not loaded, but a modified bundle must not load at all: its
        // digest is checked too (streamed, never in memory).
        if let Some(f) = &m.backbone_fallback {
            let (other, other_sha) =
                if file == &f.file { (&m.backbone.file, &m.backbone.sha256) } else { (&f.file, &f.sha256) };
            bundle.check_digest(other, other_sha, FileKind::Backbone)?;
        }
        let backbone = {
            let bytes = bundle.read_verified(file, sha256, FileKind::Backbone)?;
            bundle.check_model_format(file, &bytes)?;
            crate::backend::load_bytes(&bytes, &bundle.path_of(file), &ModelOptions::default(), engine)?
        };
        let backbone_output =
            backbone.output_names().iter().position(|n| *n == m.backbone.output).ok_or_else(|| {
                Error::new(
                    ErrorKind::ModelLoad,
                    format!("backbone has no output `{}` (it has {:?})", m.backbone.output, backbone.output_names()),
                )
            })?;
        let mut heads = Vec::new();
        match m.backbone.kind {
            BackboneKind::Classifier => heads.push(LoadedHead {
                model: None,
                name: m.backbone.task_name.clone().unwrap_or_else(|| "classifier".into()),
                task: m.backbone.task.unwrap_or(Task::Multiclass),
                labels: m.backbone.labels.clone().unwrap_or_default(),
                threshold: m.backbone.threshold,
                role: HeadRole::Task,
            }),
            BackboneKind::Features => {
                for h in &m.heads {
                    let bytes = bundle.read_verified(&h.file, &h.sha256, FileKind::Head)?;
                    let model = Model::load_bytes(&bytes, &bundle.path_of(&h.file), &ModelOptions::default())?;
                    if model.sample_shape() != [h.input_dim] {
                        return Err(Error::new(
                            ErrorKind::ModelLoad,
                            format!(
                                "head `{}` model takes {:?}, the manifest says [{}]",
                                h.name,
                                model.sample_shape(),
                                h.input_dim
                            ),
                        ));
                    }
                    heads.push(LoadedHead {
                        model: Some(model),
                        name: h.name.clone(),
                        task: h.task,
                        labels: h.labels.clone(),
                        threshold: h.threshold,
                        role: h.role,
                    });
                }
            }
        }
        let centroids = match &m.abstention {
            Some(a) => {
                let bytes = bundle.read_verified(&a.centroids_file, &a.centroids_sha256, FileKind::Centroids)?;
                let c = Centroids::from_npy_bytes(&bytes, &bundle.path_of(&a.centroids_file))?;
                if c.dim() != m.backbone.dim {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("abstention centroids are {}-d, the backbone outputs {}-d", c.dim(), m.backbone.dim),
                    ));
                }
                Some(c)
            }
            None => None,
        };
        let preprocess = m.preprocess.to_config();
        let bundle_id = format!("{} {}", m.bundle.name, m.bundle.version);
        let quality = m.quality.clone();
        log::info!(
            "bundle {bundle_id} loaded from {}: {} {} backbone on {}, {} head(s), {}",
            dir.display(),
            m.backbone.variant,
            backbone_precision.name(),
            backbone.engine(),
            heads.len(),
            bundle.signature.describe()
        );
        let ran = BackboneRan { file: file.clone(), sha256: sha256.clone(), precision: backbone_precision };
        Ok(Classifier {
            bundle,
            preprocess,
            backbone,
            backbone_output,
            ran,
            heads,
            bundle_id,
            quality,
            quality_blocks: true,
            centroids,
            tta: None,
        })
    }

    /// The engine that runs the backbone (tract, or ONNX Runtime with its providers).
    pub fn engine(&self) -> &EngineInfo {
        self.backbone.engine()
    }

    /// The precision of the backbone that runs: the bundle's `[backbone]`, or its fp32
    /// `[backbone_fallback]` on a CPU where int8 is slow ([`crate::precision`]).
    pub fn backbone_precision(&self) -> crate::board::Precision {
        self.ran.precision
    }

    /// The backbone file that runs, its digest and precision.
    pub fn backbone_ran(&self) -> &BackboneRan {
        &self.ran
    }

    /// Whether a failed quality check stops the image ("cannot assess", the default) or is only
    /// reported as a warning while the model still runs (for re-evaluating research datasets,
    /// never for patients).
    pub fn set_quality_gate_blocks(&mut self, blocks: bool) {
        self.quality_blocks = blocks;
    }

    /// Turns PanDerm's test-time augmentation on (`Some`) or off (`None`, the default): see the
    /// module documentation. Refused for a backbone whose input is not `3 × 224 × 224`
    /// (PanDerm's TTA crops 224 pixels).
    pub fn set_tta(&mut self, tta: Option<Tta>) -> Result<()> {
        if tta.is_some() && self.backbone.input_size() != Some((tta::TTA_CROP, tta::TTA_CROP)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "test-time augmentation feeds {0}x{0} crops; this backbone takes {1:?}",
                    tta::TTA_CROP,
                    self.backbone.sample_shape()
                ),
            ));
        }
        self.tta = tta;
        Ok(())
    }

    /// The test-time augmentation in use, if any.
    pub fn tta(&self) -> Option<Tta> {
        self.tta
    }

    /// The loaded bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// The limits images and frames are checked against before decoding (from the manifest's
    /// preprocessing).
    pub fn decode_limits(&self) -> crate::preprocess::DecodeLimits {
        self.preprocess.limits
    }

    /// Classifies one image file: quality gate, then (if it passes) backbone, heads and the
    /// bundle's abstention rule.
    pub fn classify(&self, image: &Path, k: usize) -> Result<ClassifyReport<'_>> {
        let t0 = Instant::now();
        // A regular file within the decode limits' byte cap, checked before it is read.
        let bytes = crate::preprocess::read_image_file(image, self.preprocess.limits)?;
        let image_sha256 = image_digest(image, &bytes)?;
        self.classify_read(image, bytes, image_sha256, k, t0)
    }

    /// [`classify`](Self::classify) for a file the caller has already read and hashed (batch mode
    /// hashes every file to skip unchanged ones): `image_sha256` must be [`image_digest`] of
    /// `bytes`; `image` only names the file in the report and in errors.
    pub fn classify_bytes(
        &self,
        image: &Path,
        bytes: Vec<u8>,
        image_sha256: String,
        k: usize,
    ) -> Result<ClassifyReport<'_>> {
        self.classify_read(image, bytes, image_sha256, k, Instant::now())
    }

    /// Classifies a camera frame (RGB8, RGBA8, BGR8, BGRA8 or NV12, any stride) with the
    /// [`DEFAULT_TOP_K`]: converted to RGB in memory, then the same quality gate, preprocessing,
    /// backbone, heads and abstention rule as a decoded file. The report names the image
    /// [`Frame::describe`] (`frame:WIDTHxHEIGHT:FORMAT`) and its `image_sha256` is
    /// [`rgb_digest`] of the converted pixels (see [`crate::frame`]).
    pub fn classify_frame(&self, frame: &Frame<'_>) -> Result<ClassifyReport<'_>> {
        self.classify_frame_as(frame, &frame.describe(), DEFAULT_TOP_K)
    }

    /// [`classify_frame`](Self::classify_frame) with the name the report gives the image (a raw
    /// dump's path) and the top-k. The frame's size is checked against the bundle's decode limits
    /// before the RGB image is allocated.
    pub fn classify_frame_as(&self, frame: &Frame<'_>, name: &str, k: usize) -> Result<ClassifyReport<'_>> {
        let t0 = Instant::now();
        let image = Path::new(name);
        let rgb = frame
            .to_rgb(self.preprocess.limits)
            .map_err(|e| Error::new(e.kind(), format!("{name}: {}", e.message())))?;
        let image_sha256 = rgb_digest(&rgb);
        self.classify_rgb(image, rgb, image_sha256, k, t0)
    }

    fn classify_read(
        &self,
        image: &Path,
        bytes: Vec<u8>,
        image_sha256: String,
        k: usize,
        t0: Instant,
    ) -> Result<ClassifyReport<'_>> {
        let rgb = decode_bytes(&bytes, self.preprocess.apply_exif_orientation, self.preprocess.limits)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", image.display(), e.message())))?;
        drop(bytes);
        self.classify_rgb(image, rgb, image_sha256, k, t0)
    }

    /// Everything after decoding: quality gate, preprocessing, backbone, heads, abstention.
    /// `t0` is when reading (or converting) the image started.
    fn classify_rgb(
        &self,
        image: &Path,
        rgb: image::RgbImage,
        image_sha256: String,
        k: usize,
        t0: Instant,
    ) -> Result<ClassifyReport<'_>> {
        let decode_ms = ms(t0);
        let m = &self.bundle.manifest.bundle;
        let mut quality = assess(&rgb, &self.quality);
        let quality_ms = quality.total_ms;
        // With a learned skin head, the colour heuristic's not-skin verdict is provisional: the
        // head (which needs the backbone's feature) decides it below.
        let has_skin_head = self.heads.iter().any(|h| h.role == HeadRole::SkinCheck);
        let blocking: Vec<String> =
            quality.flags().into_iter().filter(|c| !(has_skin_head && *c == NOT_SKIN)).map(str::to_owned).collect();
        if self.quality_blocks && !blocking.is_empty() {
            let codes = blocking;
            log::debug!(
                "{}: quality gate failed ({}) in {decode_ms:.1} + {quality_ms:.1} ms",
                image.display(),
                codes.join(", ")
            );
            return Ok(ClassifyReport {
                image: image.to_string_lossy().into_owned(),
                status: Status::CannotAssess,
                bundle: &self.bundle_id,
                signature: &self.bundle.signature,
                notice: m.demo.then_some(DEMO_NOTICE),
                image_sha256,
                quality,
                cannot_assess: Some(Abstention::Quality { codes }.into()),
                ood_distance: None,
                tta: self.tta,
                backbone: &self.ran,
                engine: self.backbone.engine(),
                heads: Vec::new(),
                feature: Vec::new(),
                timings: Timings { decode_ms, quality_ms, total_ms: ms(t0), ..Timings::default() },
            });
        }
        let t1 = Instant::now();
        let tensors = self
            .model_inputs(&rgb, &image_sha256)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", image.display(), e.message())))?;
        drop(rgb);
        let preprocess_ms = ms(t1);
        let t2 = Instant::now();
        let features = tensors.iter().map(|t| self.backbone_feature(t)).collect::<Result<Vec<_>>>();
        drop(tensors);
        let backbone_ms = ms(t2);
        let mut timings = Timings { decode_ms, quality_ms, preprocess_ms, backbone_ms, ..Timings::default() };
        let model_error = |stage: String, detail: String, quality: QualityReport, mut timings: Timings| {
            timings.total_ms = ms(t0);
            log::warn!("{}: model error in {stage}: {detail}", image.display());
            let why = Abstention::ModelError { stage, detail };
            ClassifyReport {
                image: image.to_string_lossy().into_owned(),
                status: Status::ModelError,
                bundle: &self.bundle_id,
                signature: &self.bundle.signature,
                notice: m.demo.then_some(DEMO_NOTICE),
                image_sha256: image_sha256.clone(),
                quality,
                cannot_assess: Some(why.into()),
                ood_distance: None,
                tta: self.tta,
                backbone: &self.ran,
                engine: self.backbone.engine(),
                heads: Vec::new(),
                feature: Vec::new(),
                timings,
            }
        };
        // The verified backbone failing on a valid input tensor (an int8 quantizer meeting a NaN,
        // src/ops/quantize.rs, or any other inference failure) is a model error like NaN
        // features: "cannot assess", the report, the audit record and the screen say so.
        let features = match features {
            Ok(features) => features,
            Err(e) if e.kind() == ErrorKind::Inference => {
                return Ok(model_error("backbone".into(), e.message().to_owned(), quality, timings));
            }
            Err(e) => return Err(e),
        };
        if let Some(detail) = features.iter().find_map(|f| non_finite(f, "feature")) {
            return Ok(model_error("backbone".into(), detail, quality, timings));
        }
        let feature = if features.len() == 1 { features[0].clone() } else { tta::mean_logits(&features) };
        let t3 = Instant::now();
        let mut heads = Vec::with_capacity(self.heads.len());
        let mut skin_failed = false;
        for h in &self.heads {
            let th = Instant::now();
            let probs = match self.head_probabilities(h, &features)? {
                Ok(probs) => probs,
                Err(detail) => {
                    timings.heads_ms = ms(t3);
                    return Ok(model_error(format!("head {}", h.name), detail, quality, timings));
                }
            };
            if h.role == HeadRole::SkinCheck {
                // The learned not-skin check replaces the colour heuristic's verdict.
                let p = f64::from(probs.get(1).copied().unwrap_or(0.0));
                let threshold = h.threshold.unwrap_or(0.5);
                skin_failed = p < threshold;
                quality.override_check(CheckResult {
                    code: NOT_SKIN,
                    passed: !skin_failed,
                    value: p,
                    threshold,
                    ms: ms(th),
                });
                continue;
            }
            heads.push(self.head_result(h, probs, k));
        }
        timings.heads_ms = ms(t3);
        let (ood_distance, mut cannot_assess) = self.abstention(&feature, &heads)?;
        if skin_failed && self.quality_blocks {
            // Same as the pre-backbone gate: no clinical answer for an image that is not skin.
            cannot_assess = Some(Abstention::Quality { codes: vec![NOT_SKIN.to_owned()] }.into());
            heads.clear();
        }
        timings.total_ms = ms(t0);
        log::debug!(
            "{}: {} in {:.1} ms (decode {:.1}, quality {:.1}, preprocess {:.1}, backbone {:.1}, heads {:.2})",
            image.display(),
            cannot_assess.as_ref().map_or("assessed", |c| c.message.as_str()),
            timings.total_ms,
            timings.decode_ms,
            timings.quality_ms,
            timings.preprocess_ms,
            timings.backbone_ms,
            timings.heads_ms
        );
        Ok(ClassifyReport {
            image: image.to_string_lossy().into_owned(),
            status: Status::of(cannot_assess.as_ref()),
            bundle: &self.bundle_id,
            signature: &self.bundle.signature,
            notice: m.demo.then_some(DEMO_NOTICE),
            image_sha256,
            quality,
            cannot_assess,
            ood_distance,
            tta: self.tta,
            backbone: &self.ran,
            engine: self.backbone.engine(),
            heads,
            feature,
            timings,
        })
    }

    /// The backbone's input tensors for a decoded image: the eval transform's one, or with TTA
    /// the `N` augmentations (seeded by the image's digest).
    fn model_inputs(&self, rgb: &image::RgbImage, image_sha256: &str) -> Result<Vec<ImageTensor>> {
        match &self.tta {
            None => Ok(vec![preprocess_rgb(rgb, &self.preprocess)?]),
            Some(tta) => tta.tensors(rgb, image_sha256),
        }
    }

    /// The backbone's output (the manifest's `output`) for one input tensor.
    fn backbone_feature(&self, tensor: &ImageTensor) -> Result<Vec<f32>> {
        let mut out = self.backbone.run(&[tensor])?;
        out.first_mut()
            .and_then(|o| o.get_mut(self.backbone_output))
            .map(|o| std::mem::take(&mut o.values))
            .ok_or_else(|| Error::new(ErrorKind::Inference, "the backbone returned no output"))
    }

    /// One head's probabilities from the backbone's feature(s): `Ok(Err(detail))` when an output
    /// is not a probability distribution (a model error). With several features (TTA) they are
    /// combined as the module documentation says.
    fn head_probabilities(
        &self,
        h: &LoadedHead,
        features: &[Vec<f32>],
    ) -> Result<std::result::Result<Vec<f32>, String>> {
        let Some(model) = &h.model else {
            // A classifier backbone: its features are the logits.
            let logits = if features.len() == 1 { features[0].clone() } else { tta::mean_logits(features) };
            let probs = softmax(&logits);
            return Ok(match not_a_distribution(&probs, h.labels.len()) {
                Some(detail) => Err(detail),
                None => Ok(probs),
            });
        };
        let mut per_feature = Vec::with_capacity(features.len());
        for feature in features {
            let probs = model
                .run_samples(&[feature])?
                .into_iter()
                .next()
                .and_then(|outputs| outputs.into_iter().next())
                .map(|o| o.values)
                .unwrap_or_default();
            if let Some(detail) = not_a_distribution(&probs, h.labels.len()) {
                return Ok(Err(detail));
            }
            per_feature.push(probs);
        }
        Ok(Ok(match per_feature.len() {
            1 => per_feature.swap_remove(0),
            _ => tta::probabilities_from_mean_log(&per_feature),
        }))
    }

    /// The bundle's abstention rule on a feature and the heads' results.
    fn abstention(&self, feature: &[f32], heads: &[HeadResult<'_>]) -> Result<(Option<f64>, Option<CannotAssess>)> {
        let Some(spec) = &self.bundle.manifest.abstention else { return Ok((None, None)) };
        let distance = match &self.centroids {
            Some(c) => Some(c.distance(feature)?),
            None => None,
        };
        if let Some(d) = distance
            && !d.is_finite()
        {
            // Unreachable with a finite feature and finite centroids (both checked); kept so a
            // NaN distance can never read as "close enough".
            let why = Abstention::ModelError { stage: "abstention".into(), detail: format!("distance is {d}") };
            return Ok((distance, Some(why.into())));
        }
        if let Some(d) = distance
            && d > spec.max_distance
        {
            let why = Abstention::OutOfDistribution {
                distance: d,
                max_distance: spec.max_distance,
                percentile: spec.percentile,
            };
            return Ok((distance, Some(why.into())));
        }
        if let (Some(floor), Some(primary)) = (spec.min_top_probability, primary_head(heads))
            && let Some(top) = primary.top_k.first()
            && f64::from(top.probability) < floor
        {
            let why = Abstention::LowConfidence { probability: f64::from(top.probability), min_top_probability: floor };
            return Ok((distance, Some(why.into())));
        }
        Ok((distance, None))
    }

    fn head_result<'a>(&self, h: &'a LoadedHead, probs: Vec<f32>, k: usize) -> HeadResult<'a> {
        // Labels always cover the outputs of a validated bundle; "?" only if a model lies.
        let label = |i: usize| h.labels.get(i).map_or("?", String::as_str);
        let top = top_k(&probs, k.max(1));
        let decision = match (h.task, h.threshold) {
            (Task::Binary, Some(threshold)) => {
                let score = probs.get(1).copied().unwrap_or(0.0);
                let positive = f64::from(score) >= threshold;
                Some(Decision { score, threshold, positive, label: label(usize::from(positive)) })
            }
            _ => None,
        };
        let mut top_k = heapless::Vec::new();
        for r in &top {
            // Same capacity as `top`: cannot overflow.
            let _ = top_k.push(LabelledProb { label: label(usize::from(r.class)), probability: r.probability });
        }
        HeadResult { name: &h.name, task: h.task, top_k, decision, probabilities: probs, labels: &h.labels }
    }
}

/// `Some(description)` when `values` holds a NaN or an infinity.
fn non_finite(values: &[f32], what: &str) -> Option<String> {
    let bad = values.iter().filter(|v| !v.is_finite()).count();
    (bad > 0).then(|| {
        let first = values.iter().find(|v| !v.is_finite()).copied().unwrap_or(f32::NAN);
        format!("{bad} of {} {what} values are not finite (first: {first})", values.len())
    })
}

/// How far a probability may stray outside [0, 1], and a distribution's sum from 1: float32
/// softmax rounding is ~1e-7 per class; 1e-3 leaves room for int8 heads and refuses any output
/// that is not a probability distribution (logits, a tampered head).
const PROBABILITY_TOLERANCE: f32 = 1e-3;

/// `Some(description)` unless `probs` is a probability distribution over `classes` classes.
fn not_a_distribution(probs: &[f32], classes: usize) -> Option<String> {
    if probs.len() != classes {
        return Some(format!("{} outputs for {classes} labels", probs.len()));
    }
    if let Some(d) = non_finite(probs, "probability") {
        return Some(d);
    }
    let t = PROBABILITY_TOLERANCE;
    if let Some(p) = probs.iter().find(|p| !(-t..=1.0 + t).contains(*p)) {
        return Some(format!("output {p} is not a probability"));
    }
    let sum: f32 = probs.iter().sum();
    if (sum - 1.0).abs() > t {
        return Some(format!("probabilities sum to {sum}, not 1"));
    }
    None
}

/// The head whose decision a device shows: the first binary head with an operating threshold,
/// else the first head.
pub fn primary_head<'h, 'a>(heads: &'h [HeadResult<'a>]) -> Option<&'h HeadResult<'a>> {
    heads.iter().find(|h| h.decision.is_some()).or_else(|| heads.first())
}

/// The differential (the first multiclass head that is not the primary one).
pub fn differential_head<'h, 'a>(heads: &'h [HeadResult<'a>]) -> Option<&'h HeadResult<'a>> {
    let primary = primary_head(heads).map(|h| h.name);
    heads.iter().find(|h| h.task == Task::Multiclass && Some(h.name) != primary)
}

impl ClassifyReport<'_> {
    /// A short human-readable summary.
    pub fn human(&self) -> String {
        let mut s = format!("{}  [{}]\n", self.image, self.bundle);
        if let Some(n) = self.notice {
            s.push_str(&format!("  !! {n}\n"));
        }
        for w in self.quality.warnings() {
            s.push_str(&format!("  warning: {w}\n"));
        }
        if *self.signature == SignatureStatus::Unsigned {
            s.push_str("  bundle: unsigned\n");
        } else {
            s.push_str(&format!("  bundle: {}\n", self.signature.describe()));
        }
        if let Some(c) = &self.cannot_assess {
            s.push_str(&format!("  => {}\n", c.message.to_uppercase()));
        }
        for h in &self.heads {
            let top: Vec<String> =
                h.top_k.iter().map(|r| format!("{} {:.1}%", r.label, r.probability * 100.0)).collect();
            s.push_str(&format!("  {}: {}", h.name, top.join(", ")));
            if let Some(d) = &h.decision {
                s.push_str(&format!("  -> {} (score {:.3} vs threshold {:.3})", d.label, d.score, d.threshold));
            }
            s.push('\n');
        }
        let t = &self.timings;
        s.push_str(&format!(
            "  time: decode {:.1} ms, quality {:.1} ms, preprocess {:.1} ms, backbone {:.1} ms, heads {:.2} ms, \
             total {:.1} ms\n",
            t.decode_ms, t.quality_ms, t.preprocess_ms, t.backbone_ms, t.heads_ms, t.total_ms
        ));
        s.push_str(&format!("  engine: {}\n", self.engine));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_probability_distributions_pass() {
        // (probabilities, classes, passes)
        let cases: [(&[f32], usize, bool); 9] = [
            (&[0.25, 0.75], 2, true),
            (&[1.0, 0.0, 0.0], 3, true),
            (&[0.5, 0.5], 3, false),
            (&[f32::NAN, 0.5], 2, false),
            (&[f32::INFINITY, 0.0], 2, false),
            (&[1.5, -0.5], 2, false),
            (&[0.4, 0.4], 2, false),
            (&[3.0, -1.0], 2, false),
            (&[], 0, false),
        ];
        for (p, k, ok) in cases {
            assert_eq!(not_a_distribution(p, k).is_none(), ok && k > 0, "{p:?} over {k}");
        }
        assert!(non_finite(&[1.0, f32::NAN, f32::NEG_INFINITY], "x").unwrap().starts_with("2 of 3"));
    }

    #[test]
    fn top_k_orders_and_truncates() {
        let t = top_k(&[0.1, 0.5, 0.2, 0.5, 0.05], 3);
        let got: Vec<u16> = t.iter().map(|r| r.class).collect();
        assert_eq!(got, vec![1, 3, 2]);
        assert_eq!(top_k(&[0.3, 0.7], 5).len(), 2);
        assert_eq!(top_k(&[0.01; 40], 100).len(), MAX_TOP_K);
    }
}
