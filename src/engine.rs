//! The inference engine: an ONNX model loaded with tract into an optimized, runnable plan.
//!
//! The model's single input is an image batch `[N, 3, H, W]` (float32, already normalized);
//! the batch size is fixed when the model is loaded (tract optimizes a concrete shape about
//! 5% better than a symbolic one). Every output is returned with its ONNX name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use crate::error::{Error, ErrorKind, Result};
use crate::preprocess::ImageTensor;

/// How a model is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOptions {
    /// The batch size the plan is optimized for. Shorter batches are zero-padded.
    pub batch_size: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions { batch_size: 1 }
    }
}

/// One named output of a run, for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The ONNX output name (`features`, `logits`, …).
    pub name: String,
    /// Shape without the batch dimension.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// One named output of a raw run, for the whole batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutput {
    /// The ONNX output name.
    pub name: String,
    /// Shape, batch dimension first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// A loaded, optimized model ready to run.
pub struct Model {
    path: PathBuf,
    plan: Arc<TypedRunnableModel>,
    input_name: String,
    batch_size: usize,
    height: usize,
    width: usize,
    output_names: Vec<String>,
    metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("input", &self.input_name)
            .field("batch_size", &self.batch_size)
            .field("outputs", &self.output_names)
            .finish()
    }
}

fn load_err(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::ModelLoad, format!("{}: {what}: {e}", path.display()))
}

impl Model {
    /// Loads an ONNX image model for batch size 1.
    pub fn load(path: &Path) -> Result<Model> {
        Model::load_with(path, &ModelOptions::default())
    }

    /// Loads an ONNX image model with explicit options.
    pub fn load_with(path: &Path, options: &ModelOptions) -> Result<Model> {
        if options.batch_size == 0 {
            return Err(Error::new(ErrorKind::InvalidInput, "batch size must be at least 1"));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        if bytes.is_empty() {
            return Err(load_err(path, "not an ONNX model", "the file is empty"));
        }
        // Declared output shapes use the symbolic batch `N`; we pin the batch, so they are
        // ignored (tract re-infers them).
        let onnx = tract_onnx::onnx().with_ignore_output_shapes(true).with_ignore_value_info(true);
        let proto = onnx
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| load_err(path, "not a valid ONNX file (truncated or corrupt?)", e))?;
        drop(bytes);
        let mut model = onnx.model_for_proto_model(&proto).map_err(|e| load_err(path, "cannot parse ONNX graph", e))?;
        drop(proto);

        let inputs = model.input_outlets().map_err(|e| load_err(path, "bad inputs", e))?.to_vec();
        if inputs.len() != 1 {
            return Err(load_err(path, "unsupported model", format!("expected 1 image input, found {}", inputs.len())));
        }
        let input_name = model.node(inputs[0].node).name.clone();
        let fact = model.input_fact(0).map_err(|e| load_err(path, "bad input", e))?;
        let dim = |i: usize| -> Option<usize> {
            fact.shape
                .dim(i)
                .and_then(|d| d.concretize())
                .and_then(|d| d.as_i64())
                .and_then(|v| usize::try_from(v).ok())
        };
        let (channels, height, width) = match (dim(1), dim(2), dim(3)) {
            (Some(c), Some(h), Some(w)) => (c, h, w),
            _ => {
                return Err(load_err(
                    path,
                    "unsupported model",
                    format!("input `{input_name}` must be [N,3,H,W] with fixed C, H, W"),
                ));
            }
        };
        if channels != 3 {
            return Err(load_err(
                path,
                "unsupported model",
                format!("input `{input_name}` has {channels} channels, expected 3"),
            ));
        }
        model
            .set_input_fact(0, f32::fact([options.batch_size, 3, height, width]).into())
            .map_err(|e| load_err(path, "cannot set input shape", e))?;

        let output_names: Vec<String> = model
            .output_outlets()
            .map_err(|e| load_err(path, "bad outputs", e))?
            .iter()
            .map(|o| model.outlet_label(*o).map(str::to_owned).unwrap_or_else(|| model.node(o.node).name.clone()))
            .collect();
        let metadata = model
            .properties
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("onnx.metadata_props.")?;
                Some((key.to_owned(), v.try_as_plain_ram().ok()?.to_scalar::<String>().ok()?.clone()))
            })
            .collect();
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| load_err(path, "cannot optimize the model for this CPU", e))?;
        Ok(Model {
            path: path.to_owned(),
            plan,
            input_name,
            batch_size: options.batch_size,
            height,
            width,
            output_names,
            metadata,
        })
    }

    /// The file the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ONNX input name (`pixel_values` for PanDerm exports).
    pub fn input_name(&self) -> &str {
        &self.input_name
    }

    /// The input image size `(height, width)` the model expects.
    pub fn input_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    /// The batch size the plan was optimized for.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The ONNX output names, in graph order.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// ONNX `metadata_props` (PanDerm exports record their provenance here).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Runs the model on up to `batch_size` images; returns, per image, its outputs.
    pub fn run(&self, images: &[&ImageTensor]) -> Result<Vec<Vec<Output>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        if images.len() > self.batch_size {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} images given to a model loaded for batches of {}", images.len(), self.batch_size),
            ));
        }
        let plane = 3 * self.height * self.width;
        let mut data = vec![0f32; self.batch_size * plane];
        for (i, img) in images.iter().enumerate() {
            if img.data.len() != plane || img.height != self.height || img.width != self.width {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "image tensor is 3x{}x{}, the model expects 3x{}x{}",
                        img.height, img.width, self.height, self.width
                    ),
                ));
            }
            data[i * plane..(i + 1) * plane].copy_from_slice(&img.data);
        }
        let outputs = self.run_raw(&data)?;
        let mut per_image = vec![Vec::with_capacity(outputs.len()); images.len()];
        for out in outputs {
            let per = out.values.len() / self.batch_size;
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

    /// Runs the model on a raw `[batch_size, 3, H, W]` buffer; returns every output for the
    /// whole batch.
    pub fn run_raw(&self, data: &[f32]) -> Result<Vec<BatchOutput>> {
        let input = Tensor::from_shape(&[self.batch_size, 3, self.height, self.width], data)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("bad input buffer: {e}")))?;
        let outputs = self.plan.run(tvec!(input.into_tvalue())).map_err(|e| {
            Error::new(ErrorKind::Inference, format!("{}: inference failed: {e:#}", self.path.display()))
        })?;
        let mut result = Vec::with_capacity(outputs.len());
        for (name, value) in self.output_names.iter().zip(outputs.iter()) {
            let view = value
                .to_plain_array_view::<f32>()
                .map_err(|e| Error::new(ErrorKind::Inference, format!("output `{name}` is not float32: {e}")))?;
            let shape = view.shape().to_vec();
            if shape.first() != Some(&self.batch_size) {
                return Err(Error::new(
                    ErrorKind::Inference,
                    format!(
                        "output `{name}` has shape {shape:?}, expected a leading batch dimension of {}",
                        self.batch_size
                    ),
                ));
            }
            result.push(BatchOutput { name: name.clone(), shape, values: view.iter().copied().collect() });
        }
        Ok(result)
    }
}
