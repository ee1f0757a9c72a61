//! The model under evaluation, run through the device runtime (tract): a bundle's classification
//! head, or a classifier ONNX as `panderm-tools convert` writes it for a fine-tuned checkpoint.
//!
//! # Which head of a bundle
//!
//! Only task heads count (not a learned skin check). A classifier bundle (a fine-tuned model)
//! has exactly one. When a bundle has several, the one whose class count equals the dataset's
//! `K` is used; none or more than one is refused, naming the heads and their class counts (make
//! a bundle with the one head to evaluate, `panderm-tools bundle --head …`). The dataset's `K`
//! for a class count `k` is read from the label column PanDerm would read with
//! `--nb_classes k` ([`super::run`]).
//!
//! # What runs
//!
//! A bundle runs through [`Classifier`] exactly as `panderm classify --no-quality-gate` runs it:
//! the bundle's preprocessing, its backbone (fp32 or int8, ONNX or NNEF) and the head, with the
//! quality gate and abstention rule reported to nobody (an evaluation scores every image, as
//! PanDerm does). A classifier ONNX runs on PanDerm's evaluation transform (Resize 256,
//! CenterCrop 224, std 0.228) and its `logits` output goes through softmax. With TTA both use
//! [`panderm_edge::preprocess::tta`] and combine the augmentations as PanDerm does
//! (`softmax(mean logits)`).

use std::path::{Path, PathBuf};

use panderm_edge::ErrorKind;
use panderm_edge::bundle::HeadRole;
use panderm_edge::classify::{Classifier, Status, image_digest};
use panderm_edge::engine::Model;
use panderm_edge::preprocess::tta::{self, Tta};
use panderm_edge::preprocess::{DecodeLimits, PreprocessConfig, decode_bytes, preprocess_rgb, read_image_file};
use panderm_edge::signing::Trust;
use panderm_edge::stats::softmax;
use serde::Serialize;

use crate::error::{Error, Result};

/// A bundle task head: its name and class count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeadChoice {
    /// The head's name in the manifest (a classifier backbone's task name).
    pub name: String,
    /// Its number of classes.
    pub classes: usize,
}

/// What was evaluated, for `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// `bundle` or `onnx`.
    pub kind: &'static str,
    /// The bundle directory or the model file, as given.
    pub path: PathBuf,
    /// Bundle: `name version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// Bundle: the head evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Bundle: the backbone's weight precision (`fp32`, `int8`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// SHA-256 of the model file (ONNX) or of the bundle's `manifest.toml` (which holds every
    /// file's digest).
    pub sha256: String,
    /// Number of classes the model outputs.
    pub num_classes: usize,
}

/// One image's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The `K` class probabilities (float32, as the device computes them).
    pub probabilities: Vec<f32>,
}

/// Why an image gave no prediction: it could not be read or decoded. Anything else (a model
/// error, a refused tensor) is an [`Error`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// The image path.
    pub path: PathBuf,
    /// The reader's or decoder's message.
    pub error: String,
}

enum Engine {
    Bundle { classifier: Box<Classifier>, head: String },
    Onnx { model: Model, output: usize, preprocess: PreprocessConfig, tta: Option<Tta> },
}

/// A model ready to evaluate images.
pub struct Evaluator {
    engine: Engine,
    info: ModelInfo,
}

/// The task heads of a loaded bundle (classifier backbone or head models), in manifest order.
pub fn task_heads(classifier: &Classifier) -> Vec<HeadChoice> {
    let m = &classifier.bundle().manifest;
    match m.backbone.kind {
        panderm_edge::bundle::BackboneKind::Classifier => vec![HeadChoice {
            name: m.backbone.task_name.clone().unwrap_or_else(|| "classifier".into()),
            classes: m.backbone.labels.as_ref().map_or(m.backbone.dim, Vec::len),
        }],
        panderm_edge::bundle::BackboneKind::Features => m
            .heads
            .iter()
            .filter(|h| h.role == HeadRole::Task)
            .map(|h| HeadChoice { name: h.name.clone(), classes: h.labels.len() })
            .collect(),
    }
}

/// The head to evaluate among `heads` for a dataset whose class count, read as PanDerm would for
/// a model of `k` classes, is `dataset_classes(k)` (see the module documentation).
pub fn choose_head(heads: &[HeadChoice], dataset_classes: impl Fn(usize) -> Result<usize>) -> Result<HeadChoice> {
    let list = || heads.iter().map(|h| format!("{} ({} classes)", h.name, h.classes)).collect::<Vec<_>>().join(", ");
    match heads {
        [] => Err(Error::refused("the bundle has no classification head to evaluate")),
        [only] => Ok(only.clone()),
        _ => {
            let mut matching = Vec::new();
            for h in heads {
                if dataset_classes(h.classes)? == h.classes {
                    matching.push(h.clone());
                }
            }
            match matching.len() {
                1 => Ok(matching.remove(0)),
                0 => Err(Error::refused(format!(
                    "no head of the bundle has as many classes as the CSV's labels (heads: {})",
                    list()
                ))),
                _ => Err(Error::refused(format!(
                    "several heads match the CSV's class count ({}); evaluate a bundle holding only the head you mean",
                    matching.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")
                ))),
            }
        }
    }
}

impl Evaluator {
    /// Loads a bundle (signature reported, not required) and picks its head with
    /// [`choose_head`]. `tta` turns on test-time augmentation.
    pub fn open_bundle(
        dir: &Path,
        tta: Option<Tta>,
        dataset_classes: impl Fn(usize) -> Result<usize>,
    ) -> Result<Evaluator> {
        let mut classifier = Classifier::load_with(dir, &Trust::none())?;
        classifier.set_quality_gate_blocks(false);
        classifier.set_tta(tta)?;
        let head = choose_head(&task_heads(&classifier), dataset_classes)?;
        let m = &classifier.bundle().manifest;
        let info = ModelInfo {
            kind: "bundle",
            path: dir.to_path_buf(),
            bundle: Some(format!("{} {}", m.bundle.name, m.bundle.version)),
            head: Some(head.name.clone()),
            precision: serde_json::to_value(m.backbone.precision)?.as_str().map(str::to_owned),
            sha256: classifier.bundle().manifest_sha256.clone(),
            num_classes: head.classes,
        };
        Ok(Evaluator { engine: Engine::Bundle { classifier: Box::new(classifier), head: head.name }, info })
    }

    /// Loads a classifier ONNX (an output named `logits`, `[N, K]`).
    pub fn open_onnx(path: &Path, tta: Option<Tta>) -> Result<Evaluator> {
        let model = Model::load(path)?;
        let output = model.output_names().iter().position(|n| n == "logits").ok_or_else(|| {
            Error::invalid(
                path,
                format!(
                    "not a classifier: no `logits` output (it has {:?}); a feature extractor is evaluated through a bundle with heads",
                    model.output_names()
                ),
            )
        })?;
        let Some((h, w)) = model.input_size() else {
            return Err(Error::invalid(path, "not an image model"));
        };
        if tta.is_some() && (h, w) != (tta::TTA_CROP, tta::TTA_CROP) {
            return Err(Error::invalid(
                path,
                format!("test-time augmentation feeds {0}x{0} crops; the model takes {h}x{w}", tta::TTA_CROP),
            ));
        }
        let zero = panderm_edge::preprocess::ImageTensor { data: vec![0.0; 3 * h * w], height: h, width: w };
        let num_classes = model.run(&[&zero])?.first().and_then(|o| o.get(output)).map_or(0, |o| o.values.len());
        if num_classes < 2 {
            return Err(Error::invalid(
                path,
                format!("the `logits` output has {num_classes} values; a classifier has at least 2"),
            ));
        }
        let info = ModelInfo {
            kind: "onnx",
            path: path.to_path_buf(),
            bundle: None,
            head: None,
            precision: None,
            sha256: panderm_edge::fsutil::sha256_file(path)?,
            num_classes,
        };
        Ok(Evaluator { engine: Engine::Onnx { model, output, preprocess: PreprocessConfig::default(), tta }, info })
    }

    /// What is evaluated.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The number of classes the model outputs.
    pub fn num_classes(&self) -> usize {
        self.info.num_classes
    }

    /// The model's probabilities for one image file; `Ok(Err(_))` when the file cannot be read or
    /// decoded.
    pub fn predict(&self, image: &Path) -> Result<std::result::Result<Prediction, Unreadable>> {
        let unreadable = |e: &panderm_edge::Error| {
            // Runtime messages usually start with the path; keep the reason only.
            let prefix = format!("{}: ", image.display());
            let error = e.message().strip_prefix(&prefix).unwrap_or(e.message()).to_owned();
            Unreadable { path: image.to_path_buf(), error }
        };
        let is_unreadable = |e: &panderm_edge::Error| {
            matches!(e.kind(), ErrorKind::Io | ErrorKind::ImageDecode | ErrorKind::ImageTooLarge)
        };
        match &self.engine {
            Engine::Bundle { classifier, head } => {
                let report = match classifier.classify(image, 1) {
                    Ok(r) => r,
                    Err(e) if is_unreadable(&e) => return Ok(Err(unreadable(&e))),
                    Err(e) => return Err(e.into()),
                };
                if report.status == Status::ModelError {
                    let why = report.cannot_assess.as_ref().map_or("", |c| c.message.as_str());
                    return Err(Error::refused(format!("{}: {why}", image.display())));
                }
                let probabilities =
                    report.heads.iter().find(|h| h.name == head).map(|h| h.probabilities.clone()).ok_or_else(|| {
                        Error::refused(format!("{}: the bundle gave no `{head}` result", image.display()))
                    })?;
                Ok(Ok(Prediction { probabilities }))
            }
            Engine::Onnx { model, output, preprocess, tta } => {
                let decoded = read_image_file(image, DecodeLimits::default()).and_then(|bytes| {
                    let digest = image_digest(image, &bytes)?;
                    let rgb = decode_bytes(&bytes, false, DecodeLimits::default())?;
                    Ok((digest, rgb))
                });
                let (digest, rgb) = match decoded {
                    Ok(d) => d,
                    Err(e) if is_unreadable(&e) => return Ok(Err(unreadable(&e))),
                    Err(e) => return Err(e.into()),
                };
                let tensors = match tta {
                    None => vec![preprocess_rgb(&rgb, preprocess)?],
                    Some(t) => t.tensors(&rgb, &digest)?,
                };
                let mut logits = Vec::with_capacity(tensors.len());
                for t in &tensors {
                    let out = model.run(&[t])?;
                    let values = out
                        .into_iter()
                        .next()
                        .and_then(|mut o| o.get_mut(*output).map(|o| std::mem::take(&mut o.values)));
                    let values = values.unwrap_or_default();
                    if values.len() != self.info.num_classes || values.iter().any(|v| !v.is_finite()) {
                        return Err(Error::refused(format!(
                            "{}: the model gave {} logits, not {} finite values",
                            image.display(),
                            values.len(),
                            self.info.num_classes
                        )));
                    }
                    logits.push(values);
                }
                let mean = if logits.len() == 1 { logits.swap_remove(0) } else { tta::mean_logits(&logits) };
                Ok(Ok(Prediction { probabilities: softmax(&mean) }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(name: &str, classes: usize) -> HeadChoice {
        HeadChoice { name: name.into(), classes }
    }

    #[test]
    fn head_choice_rule() {
        // One head: used whatever the CSV says (its labels are checked later).
        assert_eq!(choose_head(&[head("a", 3)], |_| Ok(7)).map(|h| h.name).ok(), Some("a".into()));
        // Several: the one whose class count the CSV's labels give.
        let heads = [head("pattern", 2), head("colour", 3)];
        // A CSV with only `label`, 3 classes: read for a 2-class head it still gives 3.
        assert_eq!(choose_head(&heads, |_| Ok(3)).map(|h| h.name).ok(), Some("colour".into()));
        // With `binary_label` too, both heads match: refused as ambiguous.
        let e = choose_head(&heads, Ok).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("several heads"), "{e}");
        let e = choose_head(&heads, |_| Ok(5)).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("pattern (2 classes), colour (3 classes)"), "{e}");
        let e = choose_head(&[head("a", 3), head("b", 3)], |_| Ok(3)).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("several heads") && e.contains("a, b"), "{e}");
        assert!(choose_head(&[], |_| Ok(2)).is_err());
    }
}
