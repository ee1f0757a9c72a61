//! `panderm-tools bundle`: package a converted backbone and trained heads into a verifiable
//! bundle directory (`manifest.toml` + model files with SHA-256 digests) that the device's
//! `panderm classify` loads. The manifest types are the runtime's own
//! ([`panderm_edge::bundle`]), so what the tools write is exactly what the device parses.

pub mod sign;

use std::path::{Path, PathBuf};

use panderm_edge::abstain::{AbstentionSpec, Centroids};
use panderm_edge::board::Precision;
use panderm_edge::bundle::{
    BackboneKind, BackboneSpec, BundleInfo, FallbackBackboneSpec, HeadRole, HeadSpec, MANIFEST, Manifest, ModelFormat,
    PreprocessSpec, Task, sha256_file,
};
use panderm_edge::engine::convert_to_nnef;

use crate::error::{Error, Result};
use crate::onnx_graph::{decode, encode};
use crate::probe::head_file::HeadFile;
use crate::probe::onnx_head::head_to_onnx;

/// A head to include.
#[derive(Debug, Clone)]
pub struct HeadInput {
    /// Task name.
    pub name: String,
    /// `head.json`, or a probe output directory containing one.
    pub path: PathBuf,
    /// Binary operating threshold (default 0.5).
    pub threshold: Option<f64>,
    /// Class label override.
    pub labels: Option<Vec<String>>,
}

/// For a fine-tuned (classifier) backbone: how to describe its output.
#[derive(Debug, Clone, Default)]
pub struct ClassifierInput {
    /// Task name (default `classifier`).
    pub task_name: Option<String>,
    /// Class labels (default `class_i`).
    pub labels: Option<Vec<String>>,
    /// Binary threshold (binary tasks; default 0.5).
    pub threshold: Option<f64>,
}

/// What to package.
#[derive(Debug, Clone)]
pub struct BundleRequest {
    /// Converted backbone ONNX (from `convert`).
    pub backbone: PathBuf,
    /// For an int8 `backbone`: its fp32 export, carried as `[backbone_fallback]`.
    pub fallback_backbone: Option<PathBuf>,
    /// Heads.
    pub heads: Vec<HeadInput>,
    /// Classifier description (fine-tuned backbones).
    pub classifier: ClassifierInput,
    /// Bundle name.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// Description.
    pub description: String,
    /// Mark as a pipeline demo.
    pub demo: bool,
    /// The abstention rule to write.
    pub abstention: AbstentionRequest,
    /// The head (binary, class 1 = skin) that serves as the quality gate's learned not-skin check.
    pub skin_head: Option<String>,
    /// The backbone's file format in the bundle (the input is always ONNX); `None`: NNEF when
    /// tract can write the graph as NNEF (it loads faster and in half the memory,
    /// docs/performance.md), else ONNX.
    pub format: Option<ModelFormat>,
}

/// How the bundle's `[abstention]` table is made.
#[derive(Debug, Clone, Default)]
pub struct AbstentionRequest {
    /// Write none, even if heads carry out-of-distribution statistics.
    pub disabled: bool,
    /// The head whose centroid statistics to use (default: the first head that has them).
    pub head: Option<String>,
    /// Floor on the primary head's top probability.
    pub min_top_probability: Option<f64>,
}

fn meta(model: &tract_onnx::pb::ModelProto, key: &str) -> Option<String> {
    model.metadata_props.iter().find(|e| e.key == key).map(|e| e.value.clone())
}

fn to_toml_table(v: &serde_json::Value) -> Option<toml::Table> {
    // JSON null has no TOML form; drop nulls (e.g. an undefined AUROC) rather than fail.
    fn strip(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.iter().filter(|(_, x)| !x.is_null()).map(|(k, x)| (k.clone(), strip(x))).collect(),
            ),
            other => other.clone(),
        }
    }
    toml::Table::try_from(strip(v)).ok()
}

/// Writes the bundle into `out_dir` (must be empty or absent) and returns its manifest.
/// The bundle is assembled in a staging directory and moved into place only when complete,
/// so a failure leaves nothing behind.
pub fn make_bundle(req: &BundleRequest, out_dir: &Path) -> Result<Manifest> {
    if out_dir.exists() && std::fs::read_dir(out_dir).map_err(|e| Error::io(out_dir, e))?.next().is_some() {
        return Err(Error::invalid(out_dir, "output directory is not empty"));
    }
    let name = out_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "bundle".into());
    let staging = out_dir.with_file_name(format!(".{name}.staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let result = assemble(req, &staging).and_then(|m| {
        if out_dir.exists() {
            std::fs::remove_dir(out_dir).map_err(|e| Error::io(out_dir, e))?;
        }
        std::fs::rename(&staging, out_dir).map_err(|e| Error::io(out_dir, e))?;
        Ok(m)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn assemble(req: &BundleRequest, out_dir: &Path) -> Result<Manifest> {
    let bytes = std::fs::read(&req.backbone).map_err(|e| Error::io(&req.backbone, e))?;
    let info = backbone_info(&req.backbone, &bytes)?;
    // Read and check every head before writing anything.
    let head_files = read_heads(req, info.dim)?;

    let fallback = match &req.fallback_backbone {
        Some(path) => Some(read_fallback(path, &info)?),
        None => None,
    };

    std::fs::create_dir_all(out_dir.join("heads")).map_err(|e| Error::io(out_dir, e))?;
    let (backbone_file, format) = write_backbone(req.format, &req.backbone, &bytes, out_dir, "backbone")?;
    drop(bytes);
    let backbone_fallback = match fallback {
        Some((path, bytes)) => {
            let (file, format) = write_backbone(req.format, &path, &bytes, out_dir, "backbone.fp32")?;
            let sha256 = sha256_file(&out_dir.join(&file))?;
            Some(FallbackBackboneSpec { file, sha256, precision: Precision::Fp32, format })
        }
        None => None,
    };
    let backbone = backbone_spec(req, info, backbone_file, format, out_dir)?;
    let heads = write_heads(req, &head_files, out_dir)?;
    if let Some(name) = &req.skin_head
        && !req.heads.iter().any(|h| &h.name == name)
    {
        return Err(Error::refused(format!("--skin-head `{name}` is not one of the bundle's heads")));
    }
    let abstention = abstention_spec(req, &head_files, out_dir)?;
    let manifest = Manifest {
        bundle: BundleInfo {
            format: panderm_edge::bundle::FORMAT,
            name: req.name.clone(),
            version: req.version.clone(),
            description: req.description.clone(),
            demo: req.demo,
            created_by: format!("panderm-tools {}", env!("CARGO_PKG_VERSION")),
        },
        preprocess: PreprocessSpec::panderm(),
        backbone,
        backbone_fallback,
        heads,
        quality: Default::default(),
        compare: Default::default(),
        abstention,
    };
    manifest.validate(out_dir)?;
    std::fs::write(out_dir.join(MANIFEST), manifest.to_toml()).map_err(|e| Error::io(out_dir, e))?;
    Ok(manifest)
}

/// What the backbone's `panderm.*` metadata says (written by `convert` and `quantize`).
struct BackboneInfo {
    kind: BackboneKind,
    variant: String,
    source_sha256: String,
    precision: Precision,
    /// Feature width, or class count of a classifier.
    dim: usize,
}

/// Reads the backbone's metadata; a model without PanDerm metadata or a usable output width is
/// refused.
fn backbone_info(path: &Path, bytes: &[u8]) -> Result<BackboneInfo> {
    let model = decode(bytes).map_err(|e| Error::invalid(path, format!("not an ONNX model: {e}")))?;
    let kind = meta(&model, "panderm.kind")
        .ok_or_else(|| Error::invalid(path, "no PanDerm metadata; convert it with `panderm-tools convert`"))?;
    let variant = meta(&model, "panderm.variant").unwrap_or_default();
    let source_sha256 = meta(&model, "panderm.source_sha256").unwrap_or_default();
    // `panderm-tools quantize` records its scheme; everything else is the converter's fp32.
    let precision = if meta(&model, "panderm.quantization").is_some() { Precision::Int8 } else { Precision::Fp32 };
    let parse_usize = |k: &str| meta(&model, k).and_then(|v| v.parse::<usize>().ok());
    let kind = match kind.as_str() {
        "features" => BackboneKind::Features,
        "classifier" => BackboneKind::Classifier,
        other => return Err(Error::invalid(path, format!("panderm.kind = {other:?} is not a backbone"))),
    };
    let dim = match kind {
        BackboneKind::Features => parse_usize("panderm.embed_dim"),
        BackboneKind::Classifier => parse_usize("panderm.num_classes"),
    }
    .ok_or_else(|| Error::invalid(path, "metadata lacks its output width"))?;
    Ok(BackboneInfo { kind, variant, source_sha256, precision, dim })
}

/// Reads every head file, applies its `--labels`, and checks it against the backbone's width.
fn read_heads(req: &BundleRequest, dim: usize) -> Result<Vec<HeadFile>> {
    let mut head_files = Vec::new();
    for h in &req.heads {
        let head_json = if h.path.is_dir() { h.path.join("head.json") } else { h.path.clone() };
        let mut hf = HeadFile::read(&head_json)?;
        if let Some(l) = &h.labels {
            if l.len() != hf.classes {
                return Err(Error::refused(format!(
                    "head `{}`: {} labels given for {} classes",
                    h.name,
                    l.len(),
                    hf.classes
                )));
            }
            hf.labels = l.clone();
        }
        if hf.in_dim != dim {
            return Err(Error::refused(format!(
                "head `{}` was trained on {}-d features but the backbone outputs {dim}-d",
                h.name, hf.in_dim
            )));
        }
        head_files.push(hf);
    }
    Ok(head_files)
}

/// Reads `--fallback-backbone` and checks that it is the fp32 form of the int8 `--backbone`
/// (`main`): same checkpoint, kind, variant and width.
fn read_fallback(path: &Path, main: &BackboneInfo) -> Result<(PathBuf, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let info = backbone_info(path, &bytes)?;
    if main.precision != Precision::Int8 || info.precision != Precision::Fp32 {
        return Err(Error::refused(format!(
            "--fallback-backbone is the fp32 form of an int8 --backbone (here: {} backbone, {} fallback)",
            main.precision.name(),
            info.precision.name()
        )));
    }
    let same = info.kind == main.kind
        && info.variant == main.variant
        && info.dim == main.dim
        && info.source_sha256 == main.source_sha256;
    if !same {
        return Err(Error::refused(format!(
            "--fallback-backbone {} is not the same model as --backbone: {} {:?} {}-d from checkpoint {} vs {} {:?} {}-d from {}",
            path.display(),
            info.variant,
            info.kind,
            info.dim,
            info.source_sha256,
            main.variant,
            main.kind,
            main.dim,
            main.source_sha256
        )));
    }
    Ok((path.to_owned(), bytes))
}

/// Writes a backbone ONNX file (`source`, whose bytes are `bytes`) in the requested format
/// (`None`: NNEF when tract can write it, else ONNX) as `STEM.nnef.tar` or `STEM.onnx`; returns
/// its file name in the bundle and the format written.
fn write_backbone(
    requested: Option<ModelFormat>,
    source: &Path,
    bytes: &[u8],
    out_dir: &Path,
    stem: &str,
) -> Result<(String, ModelFormat)> {
    // NNEF is written for batch 1 and read back with the same interface (engine::convert_to_nnef).
    let nnef_file = format!("{stem}.nnef.tar");
    let format = match requested {
        Some(ModelFormat::Nnef) => {
            convert_to_nnef(source, &out_dir.join(&nnef_file))?;
            ModelFormat::Nnef
        }
        Some(ModelFormat::Onnx) => ModelFormat::Onnx,
        None => match convert_to_nnef(source, &out_dir.join(&nnef_file)) {
            Ok(()) => ModelFormat::Nnef,
            Err(e) => {
                log::info!("note: keeping the backbone as ONNX ({e})");
                ModelFormat::Onnx
            }
        },
    };
    let backbone_file = match format {
        ModelFormat::Nnef => nnef_file,
        ModelFormat::Onnx => {
            let file = format!("{stem}.onnx");
            std::fs::write(out_dir.join(&file), bytes).map_err(|e| Error::io(out_dir, e))?;
            file
        }
    };
    Ok((backbone_file, format))
}

/// The manifest's `[backbone]` table (digest of the written file); a classifier backbone gets
/// its task, labels and threshold, and takes no heads.
fn backbone_spec(
    req: &BundleRequest,
    info: BackboneInfo,
    backbone_file: String,
    format: ModelFormat,
    out_dir: &Path,
) -> Result<BackboneSpec> {
    let BackboneInfo { kind, variant, source_sha256, precision, dim } = info;
    let mut backbone = BackboneSpec {
        file: backbone_file.clone(),
        sha256: sha256_file(&out_dir.join(&backbone_file))?,
        kind,
        output: match kind {
            BackboneKind::Features => "features".into(),
            BackboneKind::Classifier => "logits".into(),
        },
        dim,
        variant,
        precision,
        format,
        source_sha256,
        task_name: None,
        task: None,
        labels: None,
        threshold: None,
    };
    if kind == BackboneKind::Classifier {
        if !req.heads.is_empty() {
            return Err(Error::refused("a fine-tuned (classifier) backbone outputs logits; it takes no heads"));
        }
        let labels = req.classifier.labels.clone().unwrap_or_else(|| (0..dim).map(|i| format!("class_{i}")).collect());
        let task = if dim == 2 { Task::Binary } else { Task::Multiclass };
        backbone.task_name = Some(req.classifier.task_name.clone().unwrap_or_else(|| "classifier".into()));
        backbone.threshold = (task == Task::Binary).then(|| req.classifier.threshold.unwrap_or(0.5));
        backbone.task = Some(task);
        backbone.labels = Some(labels);
    }
    Ok(backbone)
}

/// Writes each head as ONNX under `heads/` and returns its manifest entry.
fn write_heads(req: &BundleRequest, head_files: &[HeadFile], out_dir: &Path) -> Result<Vec<HeadSpec>> {
    let mut heads = Vec::new();
    for (h, hf) in req.heads.iter().zip(head_files) {
        let file = format!("heads/{}.onnx", h.name);
        let path = out_dir.join(&file);
        std::fs::write(&path, encode(&head_to_onnx(hf, &h.name))).map_err(|e| Error::io(&path, e))?;
        let task = hf.task();
        heads.push(HeadSpec {
            role: if req.skin_head.as_deref() == Some(h.name.as_str()) { HeadRole::SkinCheck } else { HeadRole::Task },
            name: h.name.clone(),
            sha256: sha256_file(&path)?,
            file,
            task,
            labels: hf.labels.clone(),
            input_dim: hf.in_dim,
            threshold: (task == Task::Binary).then(|| h.threshold.unwrap_or(0.5)),
            provenance: to_toml_table(&hf.provenance),
            metrics: to_toml_table(&hf.metrics),
        });
    }
    Ok(heads)
}

/// Writes the centroids of the chosen head and returns the `[abstention]` table.
fn abstention_spec(req: &BundleRequest, head_files: &[HeadFile], out_dir: &Path) -> Result<Option<AbstentionSpec>> {
    let a = &req.abstention;
    if a.disabled {
        return Ok(None);
    }
    let chosen = match &a.head {
        Some(name) => {
            let i =
                req.heads.iter().position(|h| &h.name == name).ok_or_else(|| {
                    Error::refused(format!("--abstain-head `{name}` is not one of the bundle's heads"))
                })?;
            let ood = head_files[i].ood.as_ref().ok_or_else(|| {
                Error::refused(format!(
                    "head `{name}` has no out-of-distribution statistics (re-run `probe` with this version)"
                ))
            })?;
            Some((name.clone(), ood))
        }
        None => req.heads.iter().zip(head_files).find_map(|(h, f)| f.ood.as_ref().map(|o| (h.name.clone(), o))),
    };
    let Some((source_head, ood)) = chosen else {
        if a.min_top_probability.is_some() {
            return Err(Error::refused(
                "--min-probability needs a head with out-of-distribution statistics (from `probe`)",
            ));
        }
        return Ok(None);
    };
    let dim = ood.centroids.first().map_or(0, Vec::len);
    let rows: Vec<f32> = ood.centroids.iter().flatten().copied().collect();
    let centroids =
        Centroids::from_rows(rows, dim).map_err(|e| Error::refused(format!("head `{source_head}`: {e}")))?;
    let file = "abstention/centroids.npy".to_owned();
    let path = out_dir.join(&file);
    std::fs::create_dir_all(out_dir.join("abstention")).map_err(|e| Error::io(out_dir, e))?;
    centroids.write(&path)?;
    let spec = AbstentionSpec {
        centroids_file: file,
        centroids_sha256: sha256_file(&path)?,
        source_head,
        percentile: ood.percentile,
        max_distance: ood.max_distance,
        min_top_probability: a.min_top_probability,
    };
    spec.validate().map_err(Error::Refused)?;
    Ok(Some(spec))
}
