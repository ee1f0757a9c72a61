//! Bundles: a directory holding `manifest.toml`, a PanDerm backbone and any number of task
//! heads. Every file's SHA-256 is verified before anything is loaded; a manifest with an
//! unknown key, a missing field or an inconsistent shape is refused with a message that
//! names it. See `docs/bundles.md` for the format.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::fsutil::{caps, read_in_dir};
pub use crate::fsutil::{sha256_file, sha256_hex, sha256_reader};
use crate::manifest_range::check;
use crate::preprocess::PreprocessConfig;
use crate::signing::{SIGNATURE_FILE, SignatureStatus, Trust};

/// The manifest's file name inside a bundle directory.
pub const MANIFEST: &str = "manifest.toml";
/// The manifest format this runtime reads.
pub const FORMAT: u32 = 1;

/// `[bundle]`: identity of the bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BundleInfo {
    /// Manifest format version ([`FORMAT`]).
    pub format: u32,
    /// Bundle name.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// A pipeline demonstration, not a medical model: every output says so.
    #[serde(default)]
    pub demo: bool,
    /// The tool that wrote it.
    pub created_by: String,
}

/// `[preprocess]`: the eval transform's constants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PreprocessSpec {
    /// Shorter side after resize (256).
    pub resize_shorter: u32,
    /// Centre crop (224).
    pub crop: u32,
    /// Normalisation mean.
    pub mean: [f32; 3],
    /// Normalisation std (PanDerm: 0.228, 0.224, 0.225).
    pub std: [f32; 3],
    /// Apply EXIF orientation (PanDerm did not).
    #[serde(default)]
    pub exif_orientation: bool,
}

impl PreprocessSpec {
    /// PanDerm's eval transform.
    pub fn panderm() -> Self {
        let d = PreprocessConfig::default();
        PreprocessSpec {
            resize_shorter: d.resize_shorter,
            crop: d.crop,
            mean: d.mean,
            std: d.std,
            exif_orientation: false,
        }
    }

    /// As a runtime configuration.
    pub fn to_config(&self) -> PreprocessConfig {
        PreprocessConfig {
            resize_shorter: self.resize_shorter,
            crop: self.crop,
            mean: self.mean,
            std: self.std,
            apply_exif_orientation: self.exif_orientation,
            ..PreprocessConfig::default()
        }
    }
}

/// What the backbone outputs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackboneKind {
    /// Features `[N,D]` that the heads consume (linear-probe backbone).
    Features,
    /// Logits `[N,K]` of a fine-tuned model: the backbone is itself the classifier.
    Classifier,
}

/// Binary or multiclass.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Two classes; a decision at `threshold` on P(class 1).
    Binary,
    /// K classes; top-k.
    Multiclass,
}

/// `[backbone]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackboneSpec {
    /// Model file, relative to the bundle directory.
    pub file: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Features or classifier.
    pub kind: BackboneKind,
    /// ONNX output name used (`features` or `logits`).
    pub output: String,
    /// Output width: D for features, K for a classifier.
    pub dim: usize,
    /// Variant (`PanDerm_Base`, …).
    pub variant: String,
    /// Weight precision of the backbone file (absent in older manifests: fp32).
    #[serde(default)]
    pub precision: crate::board::Precision,
    /// File format of the backbone (absent in older manifests: ONNX). Checked against the
    /// file's content when the bundle is loaded.
    #[serde(default)]
    pub format: ModelFormat,
    /// SHA-256 of the source `.pth` checkpoint.
    pub source_sha256: String,
    /// Classifier only: task name.
    #[serde(default)]
    pub task_name: Option<String>,
    /// Classifier only: binary or multiclass.
    #[serde(default)]
    pub task: Option<Task>,
    /// Classifier only: class labels.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// Classifier only, binary: operating threshold on P(class 1).
    #[serde(default)]
    pub threshold: Option<f64>,
}

/// `[backbone_fallback]`: the same backbone in fp32, run instead of an int8 `[backbone]` on CPUs
/// where int8 is slower than fp32 ([`crate::precision`]). Everything but the file (kind, output,
/// dim, variant, labels) is the `[backbone]`'s.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FallbackBackboneSpec {
    /// Model file, relative to the bundle directory.
    pub file: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Its precision: `fp32` (the only fallback there is evidence for).
    pub precision: crate::board::Precision,
    /// Its file format.
    #[serde(default)]
    pub format: ModelFormat,
}

/// The file format of a bundle's backbone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelFormat {
    /// ONNX protobuf (parsed and analysed by tract at load).
    #[default]
    Onnx,
    /// tract's NNEF tar (see [`crate::nnef`]): no protobuf parsing or ONNX analysis at load.
    Nnef,
}

impl ModelFormat {
    /// The format a file's first bytes show.
    pub fn sniff(path: &Path) -> Result<ModelFormat> {
        Ok(if crate::nnef::is_nnef_file(path)? { ModelFormat::Nnef } else { ModelFormat::Onnx })
    }

    /// The format the bytes of a model file show.
    pub fn of_bytes(bytes: &[u8]) -> ModelFormat {
        if crate::nnef::is_nnef(bytes) { ModelFormat::Nnef } else { ModelFormat::Onnx }
    }

    /// Lower-case name as written in manifests.
    pub fn as_str(&self) -> &'static str {
        match self {
            ModelFormat::Onnx => "onnx",
            ModelFormat::Nnef => "nnef",
        }
    }
}

/// What a head's output is used for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadRole {
    /// A clinical task: reported, shown on the screen, logged.
    #[default]
    Task,
    /// The quality gate's learned not-skin check: a binary head whose class 1 is "skin"; below
    /// its threshold the image is "cannot assess (not-skin)". It replaces the colour heuristic.
    SkinCheck,
}

impl HeadRole {
    /// Whether this is the default role (kept out of written manifests).
    pub fn is_task(&self) -> bool {
        *self == HeadRole::Task
    }
}

/// `[[heads]]`: one task head on the backbone's features.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// Task name (e.g. `melanoma`).
    pub name: String,
    /// Model file, relative to the bundle directory (`features [N,D] → probabilities [N,K]`).
    pub file: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Binary or multiclass.
    pub task: Task,
    /// Class labels, in output order.
    pub labels: Vec<String>,
    /// Input width; must equal the backbone's `dim`.
    pub input_dim: usize,
    /// Binary: operating threshold on P(class 1).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// What the head is for (absent: a clinical task).
    #[serde(default, skip_serializing_if = "HeadRole::is_task")]
    pub role: HeadRole,
    /// Training provenance (features digest, CSV digest, recipe).
    #[serde(default)]
    pub provenance: Option<toml::Table>,
    /// Test-split metrics at training time.
    #[serde(default)]
    pub metrics: Option<toml::Table>,
}

/// The whole manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Identity.
    pub bundle: BundleInfo,
    /// Preprocessing constants.
    pub preprocess: PreprocessSpec,
    /// The backbone.
    pub backbone: BackboneSpec,
    /// An fp32 form of an int8 backbone, for CPUs where int8 is slow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_fallback: Option<FallbackBackboneSpec>,
    /// Task heads (none for a fine-tuned classifier bundle).
    #[serde(default)]
    pub heads: Vec<HeadSpec>,
    /// Image-quality gate thresholds (absent: the defaults of [`crate::quality::QualityThresholds`]).
    #[serde(default)]
    pub quality: crate::quality::QualityThresholds,
    /// Limits of `panderm compare` (absent: the defaults of [`CompareSpec`]).
    #[serde(default)]
    pub compare: CompareSpec,
    /// When to say "cannot assess" (out-of-distribution rule, probability floor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abstention: Option<crate::abstain::AbstentionSpec>,
}

/// A bundle file whose digest is not the manifest's.
fn digest_mismatch(path: &Path, expected: &str, actual: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "{}: SHA-256 mismatch (manifest {expected}, file {actual}); the bundle was modified or corrupted, nothing was run",
            path.display()
        ),
    )
}

fn invalid(dir: &Path, msg: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("{}: invalid manifest: {msg}", dir.join(MANIFEST).display()))
}

impl Manifest {
    /// Parses `manifest.toml` text.
    pub fn parse(text: &str, dir: &Path) -> Result<Manifest> {
        let m: Manifest =
            toml::from_str(text).map_err(|e| invalid(dir, e.message().to_owned() + &span_hint(text, e.span())))?;
        m.validate(dir)?;
        Ok(m)
    }

    /// Serialises to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the manifest types always serialise")
    }

    /// Consistency checks that serde cannot express.
    pub fn validate(&self, dir: &Path) -> Result<()> {
        if self.bundle.format != FORMAT {
            return Err(invalid(
                dir,
                format!("format {} is not supported (this runtime reads {FORMAT})", self.bundle.format),
            ));
        }
        self.preprocess.validate().map_err(|e| invalid(dir, e))?;
        let b = &self.backbone;
        safe_relative(&b.file).map_err(|e| invalid(dir, format!("backbone.file: {e}")))?;
        if b.dim == 0 || b.dim > MAX_DIM {
            return Err(invalid(dir, format!("[backbone] dim = {} is outside [1, {MAX_DIM}]", b.dim)));
        }
        check_digest("backbone.sha256", &b.sha256).map_err(|e| invalid(dir, e))?;
        match b.kind {
            BackboneKind::Features => {
                if b.labels.is_some() || b.task.is_some() || b.threshold.is_some() {
                    return Err(invalid(dir, "backbone: labels/task/threshold only apply to kind = \"classifier\""));
                }
            }
            BackboneKind::Classifier => {
                let labels =
                    b.labels.as_ref().ok_or_else(|| invalid(dir, "backbone: kind = \"classifier\" needs labels"))?;
                if labels.len() != b.dim {
                    return Err(invalid(dir, format!("backbone: {} labels for {} logits", labels.len(), b.dim)));
                }
                check_labels("backbone", labels).map_err(|e| invalid(dir, e))?;
                check_task(dir, "backbone", b.task.unwrap_or(Task::Multiclass), labels.len(), b.threshold)?;
                if !self.heads.is_empty() {
                    return Err(invalid(dir, "a classifier backbone cannot have heads"));
                }
            }
        }
        if let Some(f) = &self.backbone_fallback {
            safe_relative(&f.file).map_err(|e| invalid(dir, format!("backbone_fallback.file: {e}")))?;
            check_digest("backbone_fallback.sha256", &f.sha256).map_err(|e| invalid(dir, e))?;
            if b.precision != crate::board::Precision::Int8 || f.precision != crate::board::Precision::Fp32 {
                return Err(invalid(
                    dir,
                    format!(
                        "[backbone_fallback] must be the fp32 form of an int8 [backbone] (here {} backbone, {} fallback)",
                        b.precision.name(),
                        f.precision.name()
                    ),
                ));
            }
            if f.file == b.file {
                return Err(invalid(dir, "backbone_fallback.file is the backbone's own file"));
            }
        }
        let mut names = std::collections::HashSet::new();
        for h in &self.heads {
            let what = format!("head `{}`", h.name);
            if !names.insert(h.name.as_str()) {
                return Err(invalid(dir, format!("{what} appears twice")));
            }
            safe_relative(&h.file).map_err(|e| invalid(dir, format!("{what}: file: {e}")))?;
            if h.name.trim().is_empty() {
                return Err(invalid(dir, "a head has an empty name"));
            }
            check_digest(&format!("{what}: sha256"), &h.sha256).map_err(|e| invalid(dir, e))?;
            check_labels(&what, &h.labels).map_err(|e| invalid(dir, e))?;
            if h.input_dim != b.dim {
                return Err(invalid(
                    dir,
                    format!("{what} takes {}-d features but the backbone outputs {}-d", h.input_dim, b.dim),
                ));
            }
            check_task(dir, &what, h.task, h.labels.len(), h.threshold)?;
            if h.role == HeadRole::SkinCheck && h.task != Task::Binary {
                return Err(invalid(
                    dir,
                    format!("{what}: role = \"skin-check\" needs a binary head (class 1 = skin)"),
                ));
            }
        }
        if self.heads.iter().filter(|h| h.role == HeadRole::SkinCheck).count() > 1 {
            return Err(invalid(dir, "at most one head can have role = \"skin-check\""));
        }
        self.quality.validate().map_err(|e| invalid(dir, e.message()))?;
        self.compare.validate().map_err(|e| invalid(dir, e))?;
        if let Some(a) = &self.abstention {
            safe_relative(&a.centroids_file).map_err(|e| invalid(dir, format!("abstention.centroids_file: {e}")))?;
            check_digest("abstention.centroids_sha256", &a.centroids_sha256).map_err(|e| invalid(dir, e))?;
            a.validate().map_err(|e| invalid(dir, e))?;
            if !self.heads.iter().any(|h| h.name == a.source_head) {
                return Err(invalid(dir, format!("abstention.source_head `{}` is not a head", a.source_head)));
            }
        }
        Ok(())
    }
}

/// The manifest's `[compare]` limits (used by [`crate::compare`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompareSpec {
    /// Feature cosine distance (1 − cosine) above which the pair is flagged. Default 0.10.
    pub max_feature_distance: f64,
    /// Largest change of any class probability of any head before the pair is flagged.
    /// Default 0.20.
    pub max_probability_change: f64,
}

impl Default for CompareSpec {
    fn default() -> Self {
        CompareSpec { max_feature_distance: 0.10, max_probability_change: 0.20 }
    }
}

impl CompareSpec {
    /// Range checks.
    pub fn validate(&self) -> std::result::Result<(), String> {
        check("compare", "max_feature_distance", self.max_feature_distance, 0.0..=2.0, "a cosine distance")?;
        check("compare", "max_probability_change", self.max_probability_change, 0.0..=1.0, "a probability")?;
        Ok(())
    }
}

/// Largest feature width or class count a manifest may declare (PanDerm Large: D = 1024).
pub const MAX_DIM: usize = 65536;

/// Largest `resize_shorter` / `crop` a manifest may declare (PanDerm: 256 / 224).
pub const MAX_PREPROCESS_SIDE: u32 = 4096;

impl PreprocessSpec {
    /// Range checks: sizes in `[1, MAX_PREPROCESS_SIDE]`, crop no larger than the resize, mean
    /// finite, std finite and positive (a zero std divides by zero: every pixel becomes ±inf or
    /// NaN and every probability NaN).
    pub fn validate(&self) -> std::result::Result<(), String> {
        let side = 1.0..=f64::from(MAX_PREPROCESS_SIDE);
        check("preprocess", "resize_shorter", f64::from(self.resize_shorter), side.clone(), "pixels")?;
        check("preprocess", "crop", f64::from(self.crop), side, "pixels")?;
        if self.crop > self.resize_shorter {
            return Err(format!(
                "[preprocess] crop = {} is larger than resize_shorter = {} (the centre crop must fit the resized image)",
                self.crop, self.resize_shorter
            ));
        }
        for (i, (&m, &s)) in self.mean.iter().zip(&self.std).enumerate() {
            check("preprocess", &format!("mean[{i}]"), f64::from(m), -1e3..=1e3, "a finite channel mean")?;
            check("preprocess", &format!("std[{i}]"), f64::from(s), 1e-6..=1e3, "a positive, finite channel std")?;
        }
        Ok(())
    }
}

/// Labels must be non-empty (after trimming) and unique.
fn check_labels(what: &str, labels: &[String]) -> std::result::Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, l) in labels.iter().enumerate() {
        if l.trim().is_empty() {
            return Err(format!("{what}: label {i} is empty"));
        }
        if !seen.insert(l.as_str()) {
            return Err(format!("{what}: label `{l}` appears twice"));
        }
    }
    Ok(())
}

/// A SHA-256 in the manifest: 64 lowercase hex digits.
fn check_digest(key: &str, digest: &str) -> std::result::Result<(), String> {
    if crate::fsutil::is_sha256_hex(digest) {
        Ok(())
    } else {
        Err(format!("{key} = \"{digest}\" is not a SHA-256 (64 lowercase hex digits)"))
    }
}

fn check_task(dir: &Path, what: &str, task: Task, labels: usize, threshold: Option<f64>) -> Result<()> {
    match task {
        Task::Binary => {
            if labels != 2 {
                return Err(invalid(dir, format!("{what}: a binary task needs 2 labels, has {labels}")));
            }
            match threshold {
                Some(t) if (0.0..=1.0).contains(&t) => Ok(()),
                Some(t) => Err(invalid(dir, format!("{what}: threshold {t} is outside [0, 1]"))),
                None => Err(invalid(dir, format!("{what}: a binary task needs a threshold"))),
            }
        }
        Task::Multiclass => {
            if labels < 2 {
                return Err(invalid(dir, format!("{what}: needs at least 2 labels")));
            }
            if threshold.is_some() {
                return Err(invalid(dir, format!("{what}: threshold only applies to binary tasks")));
            }
            Ok(())
        }
    }
}

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(s) => format!(" (line {})", text[..s.start.min(text.len())].lines().count().max(1)),
        None => String::new(),
    }
}

/// A bundle file name must stay inside the bundle directory.
fn safe_relative(file: &str) -> std::result::Result<(), String> {
    let p = Path::new(file);
    if file.is_empty() || p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!("`{file}` must be a plain relative path inside the bundle"));
    }
    Ok(())
}

/// One file's verification result.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCheck {
    /// Path relative to the bundle.
    pub file: String,
    /// Digest from the manifest.
    pub expected: String,
    /// Digest of the file's bytes (`None` if it could not be read; see `problem`).
    pub actual: Option<String>,
    /// Why the file could not be read (missing, not a regular file, too large, a link leaving
    /// the bundle).
    pub problem: Option<String>,
}

impl FileCheck {
    /// Whether the file is present and matches.
    pub fn ok(&self) -> bool {
        self.actual.as_deref() == Some(self.expected.as_str())
    }
}

/// What kind of bundle file, for size caps and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The backbone model.
    Backbone,
    /// A task head model.
    Head,
    /// The abstention centroids (`.npy`).
    Centroids,
}

impl FileKind {
    /// The largest file of this kind that is read ([`crate::fsutil::caps`]).
    pub fn cap(self) -> u64 {
        match self {
            FileKind::Backbone => caps::BACKBONE,
            FileKind::Head => caps::HEAD,
            FileKind::Centroids => caps::CENTROIDS,
        }
    }

    /// Name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Backbone => "backbone",
            FileKind::Head => "head model",
            FileKind::Centroids => "centroids file",
        }
    }
}

/// A bundle directory with its parsed manifest.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The parsed, validated manifest.
    pub manifest: Manifest,
    /// SHA-256 of `manifest.toml`: one digest that identifies the whole bundle, since the
    /// manifest holds every other file's digest.
    pub manifest_sha256: String,
    /// Whether (and by whom) the manifest is signed.
    pub signature: SignatureStatus,
}

impl Bundle {
    /// Reads and validates the manifest with no trusted key configured (an unsigned bundle
    /// loads; see [`Bundle::open_with`]). Does not verify file digests.
    pub fn open(dir: &Path) -> Result<Bundle> {
        Bundle::open_with(dir, &Trust::none())
    }

    /// Reads `manifest.toml` (a regular file inside the bundle, at most
    /// [`caps::MANIFEST`] bytes), checks its signature against `trust` **before parsing it**,
    /// then parses and validates it. Does not verify the other files' digests: each is checked
    /// when it is read ([`Bundle::read_verified`]).
    pub fn open_with(dir: &Path, trust: &Trust) -> Result<Bundle> {
        let bytes = read_in_dir(dir, MANIFEST, caps::MANIFEST, "manifest")?;
        let signature = if crate::fsutil::exists_in_dir(dir, SIGNATURE_FILE) {
            Some(read_in_dir(dir, SIGNATURE_FILE, caps::SIGNATURE, "signature")?)
        } else {
            None
        };
        let status = trust.check(dir, &bytes, signature.as_deref())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid(dir, "the manifest is not UTF-8 text"))?;
        let manifest = Manifest::parse(text, dir)?;
        let manifest_sha256 = sha256_hex(&bytes);
        Ok(Bundle { dir: dir.to_owned(), manifest, manifest_sha256, signature: status })
    }

    /// Opens the bundle (no trusted key) and verifies every file's digest; fails on the first
    /// mismatch, naming the file.
    pub fn open_verified(dir: &Path) -> Result<Bundle> {
        Bundle::open_verified_with(dir, &Trust::none())
    }

    /// [`Bundle::open_with`], then reads every file once and verifies its digest and the
    /// backbone's format; fails on the first problem, naming the file.
    pub fn open_verified_with(dir: &Path, trust: &Trust) -> Result<Bundle> {
        let b = Bundle::open_with(dir, trust)?;
        for (file, expected, kind) in b.files() {
            let bytes = b.read_verified(&file, &expected, kind)?;
            if kind == FileKind::Backbone {
                b.check_model_format(&file, &bytes)?;
            }
        }
        Ok(b)
    }

    /// Every file the manifest lists: (path relative to the bundle, expected SHA-256, kind).
    pub fn files(&self) -> Vec<(String, String, FileKind)> {
        let m = &self.manifest;
        let mut files = vec![(m.backbone.file.clone(), m.backbone.sha256.clone(), FileKind::Backbone)];
        if let Some(f) = &m.backbone_fallback {
            files.push((f.file.clone(), f.sha256.clone(), FileKind::Backbone));
        }
        files.extend(m.heads.iter().map(|h| (h.file.clone(), h.sha256.clone(), FileKind::Head)));
        if let Some(a) = &m.abstention {
            files.push((a.centroids_file.clone(), a.centroids_sha256.clone(), FileKind::Centroids));
        }
        files
    }

    /// Reads one bundle file once (a regular file inside the bundle, within its kind's size cap)
    /// and checks its SHA-256 against `expected`: the bytes returned are the bytes verified, so
    /// parse these and never open the file again by path.
    pub fn read_verified(&self, file: &str, expected: &str, kind: FileKind) -> Result<Vec<u8>> {
        let path = self.dir.join(file);
        let bytes = read_in_dir(&self.dir, file, kind.cap(), kind.as_str()).map_err(|e| {
            let msg = match e.kind() {
                ErrorKind::Io => format!(
                    "{}: missing or unreadable bundle file ({}); nothing was run",
                    path.display(),
                    e.message().rsplit(": ").next().unwrap_or("")
                ),
                _ => format!("{}; nothing was run", e.message()),
            };
            Error::new(e.kind(), msg)
        })?;
        let actual = sha256_hex(&bytes);
        if actual != expected {
            return Err(digest_mismatch(&path, expected, &actual));
        }
        Ok(bytes)
    }

    /// Checks a bundle file's SHA-256 against `expected` without keeping its bytes (for a
    /// backbone that is verified but not loaded: the other precision of the bundle).
    pub fn check_digest(&self, file: &str, expected: &str, kind: FileKind) -> Result<()> {
        let path = self.dir.join(file);
        let actual = crate::fsutil::sha256_in_dir(&self.dir, file, kind.cap(), kind.as_str())
            .map_err(|e| Error::new(e.kind(), format!("{}; nothing was run", e.message())))?;
        if actual != expected {
            return Err(digest_mismatch(&path, expected, &actual));
        }
        Ok(())
    }

    /// Checks a backbone file's bytes (`[backbone]` or `[backbone_fallback]`, by file name)
    /// against the format its table declares.
    pub fn check_model_format(&self, file: &str, bytes: &[u8]) -> Result<()> {
        let m = &self.manifest;
        let (table, declared) = match &m.backbone_fallback {
            Some(f) if f.file == file => ("backbone_fallback", f.format),
            _ => ("backbone", m.backbone.format),
        };
        let actual = ModelFormat::of_bytes(bytes);
        if actual != declared {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{}: the manifest says {table}.format = \"{}\" but the file is {}; nothing was run",
                    self.dir.join(file).display(),
                    declared.as_str(),
                    actual.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// Reads and hashes every file listed in the manifest (for `info` and `verify`).
    pub fn check_files(&self) -> Vec<FileCheck> {
        self.files()
            .into_iter()
            .map(|(file, expected, kind)| match read_in_dir(&self.dir, &file, kind.cap(), kind.as_str()) {
                Ok(bytes) => FileCheck { actual: Some(sha256_hex(&bytes)), file, expected, problem: None },
                Err(e) => FileCheck { actual: None, file, expected, problem: Some(e.message().to_owned()) },
            })
            .collect()
    }

    /// Absolute path of a bundle file.
    pub fn path_of(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}
