//! The inference engine: an ONNX model or an NNEF archive ([`crate::nnef`]) loaded with tract
//! into an optimized, runnable plan.
//!
//! The model's single input is an image batch `[N, 3, H, W]` (float32, already normalized)
//! or a batch of feature vectors `[N, D]` (task heads); the batch size is fixed when the
//! model is loaded (tract optimizes a concrete shape about
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

impl BatchOutput {
    /// An engine's output `name` of `shape`, refused unless its leading dimension is `batch`.
    pub fn checked(name: &str, shape: Vec<usize>, values: Vec<f32>, batch: usize) -> Result<BatchOutput> {
        if shape.first() != Some(&batch) {
            return Err(Error::new(
                ErrorKind::Inference,
                format!("output `{name}` has shape {shape:?}, expected a leading batch dimension of {batch}"),
            ));
        }
        Ok(BatchOutput { name: name.to_owned(), shape, values })
    }
}

/// A loaded, optimized model ready to run.
pub struct Model {
    path: PathBuf,
    plan: Arc<TypedRunnableModel>,
    input_name: String,
    batch_size: usize,
    /// Input shape without the batch dimension: `[3, H, W]` or `[D]`.
    sample_shape: Vec<usize>,
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

/// Sets the number of threads tract's matrix products use, process-wide (1 = no thread pool).
///
/// Applies to every model run afterwards. tract parallelizes matrix products and large
/// element-wise kernels; the rest of a forward pass stays on the calling thread, so the speed-up
/// is below the thread count (measured numbers: `docs/performance.md`).
pub fn set_threads(threads: usize) -> Result<()> {
    use tract_linalg::multithread::{Executor, set_default_executor};
    if threads == 0 {
        return Err(Error::new(ErrorKind::InvalidInput, "the thread count must be at least 1"));
    }
    let executor = if threads == 1 {
        Executor::SingleThread
    } else {
        // rayon's builder only fails when the OS refuses to start threads.
        std::panic::catch_unwind(|| Executor::multithread_with_name(threads, "panderm"))
            .map_err(|_| Error::new(ErrorKind::Inference, format!("could not start {threads} inference threads")))?
    };
    set_default_executor(executor);
    Ok(())
}

/// Runs `f` — a whole forward pass — on one of tract's inference threads when there is a pool
/// ([`set_threads`] > 1), else on the calling thread.
///
/// Why: the operators that split their work over the pool (our GEMM, attention products and
/// softmax, tract's large element-wise kernels) then fork from a pool thread, which runs a share
/// itself and steals back the rest while it waits, instead of parking the caller and waking it
/// afterwards. With N threads that is N busy threads rather than N workers plus a caller that
/// sleeps and wakes around every parallel operator — and competes with the idle workers' spinning
/// for the N cores during the serial ones (measured: docs/performance.md, "Threads").
fn on_inference_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match tract_linalg::multithread::current_tract_executor() {
        tract_linalg::multithread::Executor::MultiThread(pool) => pool.install(f),
        _ => f(),
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
        let bytes = read_model_file(path)?;
        Model::load_bytes(&bytes, path, options)
    }

    /// Loads a model (ONNX or NNEF, told apart by content) from bytes already in memory — a
    /// bundle file whose digest was checked on these very bytes. `path` names it in messages.
    pub fn load_bytes(bytes: &[u8], path: &Path, options: &ModelOptions) -> Result<Model> {
        let (typed, info) = load_decluttered_bytes(bytes, path, options)?;
        let plan = guard(path, "cannot optimize the model for this CPU", || {
            let mut typed = typed;
            let ours = crate::ops::install_decluttered(&mut typed)?;
            let mut optimized = typed.into_optimized()?;
            log::debug!(
                "{}: int8 weight MatMuls on our GEMM: {}; float batched MatMuls on ours: {}; layer norms: {}; \
                 attention cores fused: {}",
                path.display(),
                ours.int8_gemms,
                ours.batched_matmuls,
                ours.layer_norms,
                ours.attentions
            );
            let installed = crate::ops::install(&mut optimized)?;
            log::debug!("{}: our SIMD ops in the plan: {installed:?}", path.display());
            optimized.into_runnable()
        })?;
        if info.output_names.is_empty() {
            return Err(load_err(path, "unsupported model", "it has no output"));
        }
        Ok(Model {
            path: path.to_owned(),
            plan,
            input_name: info.input_name,
            batch_size: options.batch_size,
            sample_shape: info.sample_shape,
            output_names: info.output_names,
            metadata: info.metadata,
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

    /// The input shape without the batch dimension: `[3, H, W]` for image models, `[D]` for
    /// heads that take feature vectors.
    pub fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    /// The input image size `(height, width)`, for image models.
    pub fn input_size(&self) -> Option<(usize, usize)> {
        crate::backend::InferenceModel::input_size(self)
    }

    /// The matrix-multiply kernels the optimized plan uses, one entry per distinct kernel name
    /// (`fma_mmm_f32_16x6`, `arm64simd_mmm_f32_8x8_gen`, …), read from the plan's node
    /// descriptions. Used to check that a build picked its CPU's SIMD kernels and did not fall back
    /// to tract's portable `generic_*` ones.
    pub fn matmul_kernels(&self) -> Vec<String> {
        let mut kernels = std::collections::BTreeSet::new();
        for node in self.plan.model().nodes() {
            if let Some(q) = node.op_as::<crate::ops::qmatmul::PandermQMatMul>() {
                kernels.insert(format!("panderm_{}", q.weights.kernel().name()));
                continue;
            }
            let Ok(info) = node.op.info() else { continue };
            for line in info {
                // OptMatMul describes itself as "... with [<kernel>, ...]".
                if let Some(rest) = line.split_once("with [").map(|(_, r)| r) {
                    let list = rest.split(']').next().unwrap_or("");
                    for k in list.split(',') {
                        let k = k.trim().trim_matches('"');
                        if k.contains("mmm") || k.contains("mmv") {
                            kernels.insert(k.to_owned());
                        }
                    }
                }
            }
        }
        kernels.into_iter().collect()
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

    /// Runs an image model on up to `batch_size` images; returns, per image, its outputs.
    pub fn run(&self, images: &[&ImageTensor]) -> Result<Vec<Vec<Output>>> {
        crate::backend::InferenceModel::run(self, images)
    }

    /// Runs the model on up to `batch_size` samples, each `sample_shape` values (an image
    /// tensor or a feature vector); shorter batches are zero-padded. Returns, per sample, its
    /// outputs.
    pub fn run_samples(&self, samples: &[&[f32]]) -> Result<Vec<Vec<Output>>> {
        crate::backend::InferenceModel::run_samples(self, samples)
    }

    /// Runs the model on a raw `[batch_size, 3, H, W]` buffer; returns every output for the
    /// whole batch.
    pub fn run_raw(&self, data: &[f32]) -> Result<Vec<BatchOutput>> {
        let mut shape = vec![self.batch_size];
        shape.extend_from_slice(&self.sample_shape);
        let input = Tensor::from_shape(&shape, data)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("bad input buffer: {e}")))?;
        on_inference_threads(|| {
            let outputs = self.plan.run(tvec!(input.into_tvalue())).map_err(|e| {
                Error::new(ErrorKind::Inference, format!("{}: inference failed: {e:#}", self.path.display()))
            })?;
            let mut result = Vec::with_capacity(outputs.len());
            for (name, value) in self.output_names.iter().zip(outputs.iter()) {
                let view = value
                    .to_plain_array_view::<f32>()
                    .map_err(|e| Error::new(ErrorKind::Inference, format!("output `{name}` is not float32: {e}")))?;
                let shape = view.shape().to_vec();
                result.push(BatchOutput::checked(name, shape, view.iter().copied().collect(), self.batch_size)?);
            }
            Ok(result)
        })
    }
}

/// Time spent in one kind of operator of the optimized plan (see [`Model::profile`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OpTime {
    /// tract's operator name in the optimized plan (`OptMatMul`, `QuantizeLinearU8`, …).
    pub op: String,
    /// How many nodes of the plan are this operator.
    pub nodes: usize,
    /// Mean time per run spent in those nodes, milliseconds.
    pub ms_per_run: f64,
}

impl Model {
    /// Runs `image` `runs` times, timing every node of tract's optimized plan, and returns the
    /// time per operator kind, slowest first: where the time goes. The timer wraps tract's own
    /// node evaluation, so the sum is slightly above an untimed run.
    pub fn profile(&self, image: &ImageTensor, runs: usize) -> Result<Vec<OpTime>> {
        let mut shape = vec![self.batch_size];
        shape.extend_from_slice(&self.sample_shape);
        if self.batch_size != 1 || image.data.len() != shape.iter().product::<usize>() {
            return Err(Error::new(ErrorKind::InvalidInput, "profile takes one image of the model's input size"));
        }
        let input = Tensor::from_shape(&shape, &image.data)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("bad input buffer: {e}")))?;
        let fail = |e: TractError| {
            Error::new(ErrorKind::Inference, format!("{}: inference failed: {e:#}", self.path.display()))
        };
        let per_op = on_inference_threads(|| {
            let mut state = self.plan.spawn().map_err(fail)?;
            let mut per_op: BTreeMap<String, (std::collections::BTreeSet<usize>, f64)> = BTreeMap::new();
            for _ in 0..runs.max(1) {
                state
                    .run_plan_with_eval(tvec!(input.clone().into_tvalue()), |ctx, op_state, node, inputs| {
                        let t = std::time::Instant::now();
                        let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                        let entry = per_op.entry(node.op().name().to_string()).or_default();
                        entry.0.insert(node.id);
                        entry.1 += t.elapsed().as_secs_f64() * 1e3;
                        out
                    })
                    .map_err(fail)?;
            }
            Ok::<_, Error>(per_op)
        })?;
        let runs = runs.max(1) as f64;
        let mut times: Vec<OpTime> = per_op
            .into_iter()
            .map(|(op, (nodes, ms))| OpTime { op, nodes: nodes.len(), ms_per_run: ms / runs })
            .collect();
        times.sort_by(|a, b| b.ms_per_run.total_cmp(&a.ms_per_run));
        Ok(times)
    }
}

/// What [`load_decluttered`] learned about a model besides its graph.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The ONNX input name.
    pub input_name: String,
    /// Input shape without the batch dimension.
    pub sample_shape: Vec<usize>,
    /// ONNX output names, in order.
    pub output_names: Vec<String>,
    /// ONNX `metadata_props`.
    pub metadata: BTreeMap<String, String>,
}

/// Parses an ONNX file, pins its batch dimension and declutters it, without optimizing for
/// the CPU — the form other tract runtimes (e.g. tract-cuda in the workstation tools)
/// prepare from. [`Model::load_with`] optimizes it for the CPU.
pub fn load_decluttered(path: &Path, options: &ModelOptions) -> Result<(TypedModel, ModelInfo)> {
    let bytes = read_model_file(path)?;
    load_decluttered_bytes(&bytes, path, options)
}

/// Reads a model file: a regular file of at most [`crate::fsutil::caps::BACKBONE`] bytes.
fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    crate::fsutil::read_regular(path, crate::fsutil::caps::BACKBONE, "model file").map_err(|e| {
        Error::new(if e.kind() == ErrorKind::Io { ErrorKind::Io } else { ErrorKind::ModelLoad }, e.message())
    })
}

/// Runs a tract parsing/analysis step so that neither its error nor a panic inside tract on a
/// malformed model escapes as anything but a [`ErrorKind::ModelLoad`] error naming the file.
/// (Builds with `panic = "abort"` cannot catch a panic: the pre-checks — [`crate::nnef::check_archive`],
/// [`check_onnx_graph`], sizes, formats — are what keep files away from tract's known panics there.)
fn guard<T>(path: &Path, what: &str, f: impl FnOnce() -> TractResult<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| load_err(path, what, format!("{e:#}"))),
        Err(panic) => {
            let msg = crate::error::panic_message(panic.as_ref());
            Err(load_err(path, what, format!("tract failed on this file ({msg})")))
        }
    }
}

/// [`load_decluttered`] from bytes already in memory (ONNX or NNEF, told apart by content).
pub fn load_decluttered_bytes(bytes: &[u8], path: &Path, options: &ModelOptions) -> Result<(TypedModel, ModelInfo)> {
    if options.batch_size == 0 {
        return Err(Error::new(ErrorKind::InvalidInput, "batch size must be at least 1"));
    }
    if crate::nnef::is_nnef(bytes) {
        return load_nnef(bytes, path, options);
    }
    if bytes.is_empty() {
        return Err(load_err(path, "not an ONNX model", "the file is empty"));
    }
    // Declared output shapes use the symbolic batch `N`; we pin the batch, so they are
    // ignored (tract re-infers them).
    let onnx = tract_onnx::onnx().with_ignore_output_shapes(true).with_ignore_value_info(true);
    let mut proto =
        guard(path, "not a valid ONNX file (truncated or corrupt?)", || onnx.proto_model_for_read(&mut &bytes[..]))?;
    check_onnx_graph(&proto).map_err(|e| load_err(path, "refused ONNX graph", e))?;
    // ONNX Runtime's quantized forms (QDQ, QOperator) rewritten into what tract runs right.
    // Under catch_unwind like tract's steps (`guard`): a crafted file must be refused, not crash.
    let rewritten = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::onnx_quant::import(&mut proto)))
        .unwrap_or_else(|p| {
            Err(format!("the quantized-graph import failed on this file ({})", crate::error::panic_message(p.as_ref())))
        })
        .map_err(|e| load_err(path, "unsupported quantized model", e))?;
    if rewritten.changed() {
        log::info!("{}: quantized graph imported: {rewritten}", path.display());
    }
    let mut model = guard(path, "cannot parse ONNX graph", || onnx.model_for_proto_model(&proto))?;
    drop(proto);

    let (input_name, output_names) = interface(&model, path)?;
    let fact = model.input_fact(0).map_err(|e| load_err(path, "bad input", e))?;
    let rank = fact.shape.rank().concretize().and_then(|r| usize::try_from(r).ok());
    let rank =
        rank.ok_or_else(|| load_err(path, "unsupported model", format!("input `{input_name}` has an unknown rank")))?;
    // Every dimension but the batch must be fixed.
    let mut sample_shape = Vec::with_capacity(rank.saturating_sub(1));
    for i in 1..rank {
        let d = fact
            .shape
            .dim(i)
            .and_then(|d| d.concretize())
            .and_then(|d| d.as_i64())
            .and_then(|v| usize::try_from(v).ok());
        match d {
            Some(d) => sample_shape.push(d),
            None => {
                return Err(load_err(
                    path,
                    "unsupported model",
                    format!("input `{input_name}` dimension {i} is not fixed"),
                ));
            }
        }
    }
    match sample_shape.as_slice() {
        [3, _, _] | [_] => {}
        other => {
            return Err(load_err(
                path,
                "unsupported model",
                format!("input `{input_name}` is [N,{other:?}], expected an image [N,3,H,W] or vectors [N,D]"),
            ));
        }
    }
    let mut full = vec![options.batch_size];
    full.extend_from_slice(&sample_shape);
    model.set_input_fact(0, f32::fact(&full).into()).map_err(|e| load_err(path, "cannot set input shape", e))?;
    let metadata = model
        .properties
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("onnx.metadata_props.")?;
            Some((key.to_owned(), v.try_as_plain_ram().ok()?.to_scalar::<String>().ok()?.clone()))
        })
        .collect();
    let typed = guard(path, "cannot analyse the model", || model.into_typed())?;
    let softmaxes = count_softmax(&typed);
    let typed = guard(path, "cannot analyse the model", || typed.into_decluttered())?;
    check_softmax_kept(softmaxes, &typed).map_err(|e| load_err(path, "unsupported quantized model", e))?;
    Ok((typed, ModelInfo { input_name, sample_shape, output_names, metadata }))
}

fn count_softmax(model: &TypedModel) -> usize {
    model.nodes().iter().filter(|n| n.op_is::<tract_onnx::tract_core::ops::nn::Softmax>()).count()
}

/// tract 0.23.9 folds a `DequantizeLinear → … → QuantizeLinear` chain it believes element-wise
/// into a per-element lookup table, and `Softmax` passes its test although it is not element-wise:
/// the folded softmax is 1.0 everywhere, silently (docs/quantization.md, "Root cause").
/// [`crate::onnx_quant`] rewrites the shapes ONNX Runtime writes; this catches every other one
/// (e.g. an element-wise op between the Softmax and its `QuantizeLinear`): a Softmax that
/// simplification removed is refused rather than run wrong.
fn check_softmax_kept(before: usize, model: &TypedModel) -> std::result::Result<(), String> {
    let after = count_softmax(model);
    if after < before {
        return Err(format!(
            "{} of {before} Softmax operator(s) were folded into a lookup table by tract's quantization \
             simplification, which computes them wrongly; quantize the model in ONNX Runtime's QDQ \
             format (QuantizeLinear directly after Softmax) or with `panderm-tools quantize`",
            before - after
        ));
    }
    Ok(())
}

/// ONNX tensor data types whose `raw_data` tract 0.23.9 can load (float, uint8, int8, uint16,
/// int16, int32, int64, bool, float16, double, uint32, uint64); any other type with raw data
/// reaches an `unimplemented!` in tract.
const RAW_LOADABLE: [i32; 12] = [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13];

/// Checks what tract-onnx 0.23.9 indexes without checking, before it sees the graph (both found
/// by fuzzing, docs/reliability.md): every graph output (of the main graph and of every
/// sub-graph) must name a value that is defined (an input, an initializer, a node output, or for
/// a sub-graph a value of an enclosing graph), and every tensor holding `raw_data` must be of a
/// type tract loads raw. One line saying what is wrong.
pub fn check_onnx_graph(model: &tract_onnx::pb::ModelProto) -> std::result::Result<(), String> {
    let Some(graph) = &model.graph else { return Err("the model has no graph".into()) };
    check_graph(graph, &std::collections::HashSet::new(), 0)
}

fn check_graph(
    graph: &tract_onnx::pb::GraphProto,
    outer: &std::collections::HashSet<&str>,
    depth: usize,
) -> std::result::Result<(), String> {
    if depth > 16 {
        return Err("sub-graphs nested more than 16 deep".into());
    }
    let mut defined: std::collections::HashSet<&str> = outer.clone();
    defined.extend(graph.input.iter().map(|i| i.name.as_str()));
    defined.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    defined.extend(graph.node.iter().flat_map(|n| n.output.iter().map(String::as_str)));
    for t in &graph.initializer {
        check_raw_tensor(t)?;
    }
    for o in &graph.output {
        if !defined.contains(o.name.as_str()) {
            return Err(format!("graph output `{}` is not produced by any node, input or initializer", o.name));
        }
    }
    for node in &graph.node {
        for a in &node.attribute {
            if let Some(t) = &a.t {
                check_raw_tensor(t)?;
            }
            for t in &a.tensors {
                check_raw_tensor(t)?;
            }
            for g in a.g.iter().chain(&a.graphs) {
                check_graph(g, &defined, depth + 1)?;
            }
        }
    }
    Ok(())
}

fn check_raw_tensor(t: &tract_onnx::pb::TensorProto) -> std::result::Result<(), String> {
    if !t.raw_data.is_empty() && !RAW_LOADABLE.contains(&t.data_type) {
        return Err(format!("tensor `{}` holds raw data of ONNX type {}, which is not supported", t.name, t.data_type));
    }
    Ok(())
}

/// The single input's name and the output names (outlet labels, else node names) of an ONNX
/// (inference) or NNEF (typed) graph; more than one input is refused.
fn interface<F, O>(model: &Graph<F, O>, path: &Path) -> Result<(String, Vec<String>)>
where
    F: Fact + Clone + 'static,
    O: std::fmt::Debug + std::fmt::Display + AsRef<dyn Op> + AsMut<dyn Op> + Clone + 'static,
{
    let inputs = model.input_outlets().map_err(|e| load_err(path, "bad inputs", e))?;
    if inputs.len() != 1 {
        return Err(load_err(path, "unsupported model", format!("expected 1 image input, found {}", inputs.len())));
    }
    let input_name = model.node(inputs[0].node).name.clone();
    let output_names = model
        .output_outlets()
        .map_err(|e| load_err(path, "bad outputs", e))?
        .iter()
        .map(|o| model.outlet_label(*o).map(str::to_owned).unwrap_or_else(|| model.node(o.node).name.clone()))
        .collect();
    Ok((input_name, output_names))
}

/// Loads an NNEF archive written by [`crate::nnef::write`] (batch 1, already decluttered once;
/// decluttered again because reading re-expands a few ops).
fn load_nnef(bytes: &[u8], path: &Path, options: &ModelOptions) -> Result<(TypedModel, ModelInfo)> {
    crate::nnef::check_archive(bytes)
        .map_err(|e| load_err(path, "not a valid NNEF archive (refused before parsing)", e))?;
    let model = guard(path, "not a valid NNEF archive (truncated or corrupt?)", || crate::nnef::read_bytes(bytes))?;
    let (input_name, output_names) = interface(&model, path)?;
    let fact = model.input_fact(0).map_err(|e| load_err(path, "bad input", e))?;
    let shape: Option<Vec<usize>> = fact.shape.as_concrete().map(<[usize]>::to_vec);
    let Some(shape) = shape else {
        return Err(load_err(path, "unsupported model", format!("input `{input_name}` has a symbolic shape")));
    };
    if shape.first() != Some(&options.batch_size) {
        return Err(load_err(
            path,
            "unsupported batch size",
            format!(
                "this NNEF archive is written for input {shape:?}; batch {} needs the ONNX file",
                options.batch_size
            ),
        ));
    }
    let sample_shape = shape[1..].to_vec();
    let metadata = model
        .properties
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix(crate::nnef::METADATA_PREFIX)?;
            let value = v.try_as_plain_ram().ok()?.to_scalar::<String>().ok()?;
            Some((key.to_owned(), crate::nnef::decode_metadata(value)))
        })
        .collect();
    let typed = guard(path, "cannot analyse the model", || model.into_decluttered())?;
    Ok((typed, ModelInfo { input_name, sample_shape, output_names, metadata }))
}

/// Writes `model` (an ONNX file) as an NNEF archive for batch 1 — the form bundles ship for
/// faster start-up — and checks that the archive loads back with the same input, outputs and
/// metadata.
pub fn convert_to_nnef(onnx: &Path, nnef: &Path) -> Result<()> {
    let options = ModelOptions::default();
    let (typed, info) = load_decluttered(onnx, &options)?;
    crate::nnef::write(&typed, nnef)?;
    let bytes = read_model_file(nnef)?;
    let (_, back) = load_nnef(&bytes, nnef, &options)?;
    if back.input_name != info.input_name || back.output_names != info.output_names || back.metadata != info.metadata {
        let _ = std::fs::remove_file(nnef);
        return Err(load_err(
            nnef,
            "NNEF round trip changed the model's interface",
            format!("{info:?} became {back:?}"),
        ));
    }
    Ok(())
}
