//! `panderm-tools quantize`: int8 weight quantization of a PanDerm export, in the form that
//! measured fastest in tract and near-optimal in ONNX Runtime (see `docs/quantization.md`).
//!
//! * Every `MatMul` whose second input is a constant weight (q, k, v, proj, fc1, fc2 and a
//!   fine-tuned head) becomes `MatMulInteger` on int8 weights, symmetric per output channel.
//! * Activations ([`Scheme::StaticU8`], the default): uint8 with zero point 128 and one static
//!   scale per tensor from calibration images. The clipping value is `max |x|` or a high
//!   percentile of `|x|`, whichever gives the better mean cosine against fp32 on the
//!   calibration set. [`Scheme::Dynamic`] writes ONNX Runtime's `DynamicQuantizeLinear` form.
//! * Attention act×act MatMuls, LayerNorm, Softmax, GELU and the patch-embedding Conv stay fp32.
//! * The fp32 model runs in tract with the MatMul inputs exposed as extra graph outputs to
//!   collect the activation statistics; candidates and the chosen model are scored in tract
//!   (the same parse → declutter → optimize path as the runtime's `engine::Model`).
//! * Nothing is written unless everything succeeds; the model and then its JSON report are
//!   each written atomically.

pub mod calib;
pub mod graph;
pub mod report;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use panderm_edge::engine::Model;
use panderm_edge::preprocess::{ImageTensor, PreprocessConfig};
use tract_onnx::pb;
use tract_onnx::prelude::*;

pub use graph::Scheme;
use graph::{Activations, QuantWeight, SplitModel, WeightMatMul};
pub use report::{ClipCandidate, CosineStats, HeadAgreement, ImageCosine, QuantReport, SetAccuracy};

use panderm_edge::fsutil::write_atomically;

/// The default percentile of `|x|` tried against `max |x|` for the static activation scales.
pub const DEFAULT_PERCENTILE: f64 = 99.99;
/// The default number of built-in synthetic calibration images.
pub const DEFAULT_SYNTH_IMAGES: usize = 16;

/// An error of `quantize`: one line naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The input is not a backbone written by `panderm-tools convert`.
    #[error("{path}: not a PanDerm backbone export: {reason}")]
    NotPandermExport {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The input is already quantized.
    #[error("{path}: already quantized ({what}); quantize the fp32 export it was made from")]
    AlreadyQuantized {
        /// The file.
        path: PathBuf,
        /// The evidence (metadata entry or quantized node).
        what: String,
    },
    /// A calibration or evaluation directory cannot be used.
    #[error("{path}: {reason}")]
    Images {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// tract could not load or run a model.
    #[error("{path}: {reason}")]
    Model {
        /// The model file (or the file it is derived from).
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A head, a bundle, the output file or another runtime-side failure (the message names
    /// the file).
    #[error(transparent)]
    Runtime(#[from] panderm_edge::Error),
    /// Contradictory or invalid options.
    #[error("{0}")]
    InvalidOption(String),
}

/// Where calibration images come from.
#[derive(Debug, Clone, PartialEq)]
pub enum CalibrationSource {
    /// The built-in set of this many synthetic skin-like images
    /// ([`crate::synth::images`], seed [`calib::SYNTH_SEED`]). Not medical data.
    Synthetic(usize),
    /// Every image file in a directory.
    Dir(PathBuf),
}

/// Which task heads to score top-1 agreement with.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum HeadSource {
    /// None (a fine-tuned classifier is always scored on its own softmax).
    #[default]
    None,
    /// The heads of a bundle directory (digests verified).
    Bundle(PathBuf),
    /// Head ONNX files (`panderm-tools export-head` output).
    Files(Vec<PathBuf>),
}

/// Options of [`quantize_file`].
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// Activation scheme.
    pub scheme: Scheme,
    /// Calibration images.
    pub calibration: CalibrationSource,
    /// Held-out evaluation images (reported separately; not used for calibration).
    pub eval: Option<PathBuf>,
    /// Heads for the agreement report.
    pub heads: HeadSource,
    /// Percentiles of `|x|` tried against `max |x|` (static scheme).
    pub percentiles: Vec<f64>,
    /// Show progress bars.
    pub progress: bool,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            scheme: Scheme::StaticU8,
            calibration: CalibrationSource::Synthetic(DEFAULT_SYNTH_IMAGES),
            eval: None,
            heads: HeadSource::None,
            percentiles: vec![DEFAULT_PERCENTILE],
            progress: false,
        }
    }
}

/// The JSON report written next to `output`: `OUTPUT.quant.json`.
pub fn report_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".quant.json");
    PathBuf::from(s)
}

/// What the input export is.
struct ExportInfo {
    kind: String,
    variant: String,
    sample_shape: Vec<usize>,
    /// Width of the output (D features or K logits).
    out_dim: usize,
}

fn one_line(e: impl std::fmt::Display) -> String {
    format!("{e:#}").lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(": ")
}

/// Checks that `src` is an fp32 PanDerm backbone written by `convert`.
fn validate(src: &SplitModel, path: &Path) -> Result<ExportInfo, QuantizeError> {
    let not = |reason: String| QuantizeError::NotPandermExport { path: path.to_owned(), reason };
    let meta = src.metadata();
    let Some(format) = meta.get("panderm.format") else {
        return Err(not(
            "no `panderm.format` metadata (quantize takes a backbone written by `panderm-tools convert`)".into()
        ));
    };
    if let Some(q) = meta.get("panderm.quantization") {
        return Err(QuantizeError::AlreadyQuantized {
            path: path.to_owned(),
            what: format!("panderm.quantization = {q}"),
        });
    }
    let parts = src.quantized_parts();
    if !parts.is_empty() {
        return Err(QuantizeError::AlreadyQuantized { path: path.to_owned(), what: parts });
    }
    if format != "1" {
        return Err(not(format!("panderm.format = {format} is not supported (this tool reads 1)")));
    }
    let kind = meta.get("panderm.kind").cloned().unwrap_or_default();
    match kind.as_str() {
        "features" | "classifier" => {}
        "head" => {
            return Err(not(
                "panderm.kind = head: a task head, not a backbone (heads stay fp32; pass them with --head)".into(),
            ));
        }
        other => return Err(not(format!("panderm.kind = {other:?}, expected features or classifier"))),
    }
    let g = &src.graph_header;
    let inits: std::collections::HashSet<&str> = src.initializers.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> = g.input.iter().filter(|i| !inits.contains(i.name.as_str())).collect();
    let [input] = inputs.as_slice() else {
        return Err(not(format!("expected 1 graph input, found {}", inputs.len())));
    };
    let sample_shape: Vec<usize> = match fixed_dims(input).as_slice() {
        [_, Some(3), Some(h), Some(w)] if *h > 0 && *w > 0 => vec![3, *h as usize, *w as usize],
        _ => return Err(not(format!("input `{}` is not an image batch [N,3,H,W]", input.name))),
    };
    let [output] = g.output.as_slice() else {
        return Err(not(format!("expected 1 graph output, found {}", g.output.len())));
    };
    let out_dim = match fixed_dims(output).as_slice() {
        [_, Some(d)] if *d > 0 => *d as usize,
        _ => return Err(not(format!("output `{}` is not [N,D] with a fixed D", output.name))),
    };
    Ok(ExportInfo { kind, variant: meta.get("panderm.variant").cloned().unwrap_or_default(), sample_shape, out_dim })
}

/// The dimensions of a graph input or output; `None` for symbolic or unknown ones.
fn fixed_dims(v: &pb::ValueInfoProto) -> Vec<Option<i64>> {
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) => t
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) => Some(v),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A model loaded in tract from memory, batch 1.
struct Plan {
    plan: Arc<TypedRunnableModel>,
    path: PathBuf,
}

impl Plan {
    fn load(model: &pb::ModelProto, sample_shape: &[usize], path: &Path, what: &str) -> Result<Plan, QuantizeError> {
        let err =
            |e: TractError| QuantizeError::Model { path: path.to_owned(), reason: format!("{what}: {}", one_line(e)) };
        let onnx = tract_onnx::onnx().with_ignore_output_shapes(true).with_ignore_value_info(true);
        let mut m = onnx.model_for_proto_model(model).map_err(err)?;
        let mut shape = vec![1usize];
        shape.extend_from_slice(sample_shape);
        m.set_input_fact(0, f32::fact(&shape).into()).map_err(err)?;
        let plan = m.into_optimized().and_then(|t| t.into_runnable()).map_err(err)?;
        Ok(Plan { plan, path: path.to_owned() })
    }

    /// Runs one image; returns every output, flattened.
    fn run(&self, x: &ImageTensor) -> Result<Vec<Vec<f32>>, QuantizeError> {
        let err = |e: TractError| QuantizeError::Model { path: self.path.clone(), reason: one_line(e) };
        let input = Tensor::from_shape(&[1, 3, x.height, x.width], &x.data).map_err(err)?;
        let outputs = self.plan.run(tvec!(input.into_tvalue())).map_err(err)?;
        outputs
            .iter()
            .map(|o| o.to_plain_array_view::<f32>().map(|v| v.iter().copied().collect()).map_err(err))
            .collect()
    }
}

fn progress(show: bool, n: usize, msg: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:28} [{elapsed_precise}] {bar:30} {pos}/{len} images  {per_sec}  ETA {eta}")
    {
        bar.set_style(style);
    }
    bar.set_message(msg.to_owned());
    bar
}

/// Runs `plan` over `set`, returning output 0 per image and handing the other outputs to `extra`.
fn run_set(
    plan: &Plan,
    set: &calib::ImageSet,
    bar: ProgressBar,
    mut extra: impl FnMut(&[Vec<f32>]),
) -> Result<Vec<Vec<f32>>, QuantizeError> {
    let mut first = Vec::with_capacity(set.images.len());
    for (_, img) in &set.images {
        let mut outs = plan.run(img)?;
        extra(&outs[1..]);
        first.push(std::mem::take(&mut outs[0]));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(first)
}

/// A quantized model scored on the calibration set.
struct Candidate {
    /// Clipping percentile (100 = max; also for the dynamic scheme).
    percentile: f64,
    model: pb::ModelProto,
    plan: Plan,
    /// Output 0 per calibration image.
    outputs: Vec<Vec<f32>>,
    cosine: CosineStats,
}

/// A head scored for top-1 agreement; `model: None` = softmax of the backbone's logits.
struct EvalHead {
    name: String,
    model: Option<Model>,
}

use panderm_edge::stats::softmax;

fn argmax(p: &[f32]) -> usize {
    p.iter().enumerate().fold(0, |best, (i, v)| if *v > p[best] { i } else { best })
}

fn load_heads(
    source: &HeadSource,
    info: &ExportInfo,
    input_sha: &str,
    input: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<EvalHead>, QuantizeError> {
    let mut heads = Vec::new();
    if info.kind == "classifier" {
        heads.push(EvalHead { name: "classifier".into(), model: None });
    }
    let files: Vec<(String, PathBuf)> = match source {
        HeadSource::None => Vec::new(),
        HeadSource::Bundle(dir) => {
            let b = panderm_edge::bundle::Bundle::open_verified(dir)?;
            if b.manifest.backbone.sha256 != input_sha {
                warnings.push(format!(
                    "the bundle {} holds another backbone than {}: its heads are scored on this model's features",
                    dir.display(),
                    input.display()
                ));
            }
            if b.manifest.heads.is_empty() {
                warnings.push(format!("the bundle {} has no heads", dir.display()));
            }
            b.manifest.heads.iter().map(|h| (h.name.clone(), b.path_of(&h.file))).collect()
        }
        HeadSource::Files(files) => files
            .iter()
            .map(|f| (f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(), f.clone()))
            .collect(),
    };
    if !files.is_empty() && info.kind != "features" {
        return Err(QuantizeError::InvalidOption(format!(
            "{}: a classifier has no feature output for heads; it is scored on its own softmax",
            input.display()
        )));
    }
    for (name, path) in files {
        let model = Model::load(&path)?;
        let name = model.metadata().get("panderm.head_name").cloned().unwrap_or(name);
        if model.sample_shape() != [info.out_dim] {
            return Err(QuantizeError::Model {
                reason: format!(
                    "head takes {:?} inputs, the backbone outputs {} features",
                    model.sample_shape(),
                    info.out_dim
                ),
                path,
            });
        }
        heads.push(EvalHead { name, model: Some(model) });
    }
    Ok(heads)
}

fn head_probs(h: &EvalHead, feature: &[f32]) -> Result<Vec<f32>, QuantizeError> {
    match &h.model {
        None => Ok(softmax(feature)),
        Some(m) => {
            let mut out = m.run_samples(&[feature])?;
            out.first_mut().and_then(|o| o.first_mut()).map(|o| std::mem::take(&mut o.values)).ok_or_else(|| {
                QuantizeError::Model {
                    path: m.path().to_owned(),
                    reason: format!("head `{}` produced no output", h.name),
                }
            })
        }
    }
}

fn score_set(
    set: &calib::ImageSet,
    fp32: &[Vec<f32>],
    int8: &[Vec<f32>],
    heads: &[EvalHead],
) -> Result<SetAccuracy, QuantizeError> {
    let per_image: Vec<ImageCosine> = set
        .images
        .iter()
        .zip(fp32.iter().zip(int8))
        .map(|((name, _), (a, b))| ImageCosine { image: name.clone(), cosine: report::cosine(b, a) })
        .collect();
    let cos: Vec<f64> = per_image.iter().map(|c| c.cosine).collect();
    let mut agreements = Vec::with_capacity(heads.len());
    for h in heads {
        let (mut agree, mut max_change) = (0usize, 0f64);
        for (a, b) in fp32.iter().zip(int8) {
            let (pa, pb) = (head_probs(h, a)?, head_probs(h, b)?);
            agree += usize::from(argmax(&pa) == argmax(&pb));
            for (x, y) in pa.iter().zip(&pb) {
                max_change = max_change.max(f64::from((x - y).abs()));
            }
        }
        let n = fp32.len();
        agreements.push(HeadAgreement {
            head: h.name.clone(),
            top1_agree: agree,
            images: n,
            top1_agreement: if n == 0 { 0.0 } else { agree as f64 / n as f64 },
            max_abs_prob_change: max_change,
        });
    }
    Ok(SetAccuracy {
        source: set.source.clone(),
        images: set.images.len(),
        skipped: set.skipped.clone(),
        list_sha256: set.list_sha256.clone(),
        cosine: CosineStats::of(&cos),
        per_image,
        heads: agreements,
    })
}

fn clip_name(p: f64) -> String {
    if p >= 100.0 { "max".into() } else { format!("p{p}") }
}

/// Loads the full model in tract, with `extra_outputs` added as graph outputs for this plan
/// only (`src` is reassembled for the parse and split again, without copying weights).
fn load_full(
    src: &mut SplitModel,
    info: &ExportInfo,
    extra_outputs: &[String],
    input: &Path,
    what: &str,
) -> Result<Plan, QuantizeError> {
    let mut model = std::mem::take(src).assemble();
    let graph = model.graph.get_or_insert_with(Default::default);
    let n_outputs = graph.output.len();
    graph::add_probe_outputs(graph, extra_outputs);
    let plan = Plan::load(&model, &info.sample_shape, input, what);
    if let Some(g) = model.graph.as_mut() {
        g.output.truncate(n_outputs);
    }
    *src = SplitModel::split(model);
    plan
}

/// Runs the fp32 model over the calibration set: output 0 per image, and the `|x|` statistics
/// of the tensors `acts` (exposed as extra graph outputs for this run).
fn calibrate(
    src: &mut SplitModel,
    info: &ExportInfo,
    acts: &[String],
    set: &calib::ImageSet,
    input: &Path,
    show: bool,
) -> Result<(Vec<Vec<f32>>, Vec<calib::AbsStats>), QuantizeError> {
    let plan = load_full(src, info, acts, input, "fp32 model with calibration outputs")?;
    let mut stats = vec![calib::AbsStats::default(); acts.len()];
    let bar = progress(show, set.images.len(), "calibrating (fp32)");
    let fp32 = run_set(&plan, set, bar, |extra| {
        for (s, x) in stats.iter_mut().zip(extra) {
            s.update(x);
        }
    })?;
    Ok((fp32, stats))
}

/// Static per-tensor scales `s_x = clip / 127` with `clip` the `p`-th percentile of `|x|`.
fn activation_scales(acts: &[String], stats: &[calib::AbsStats], p: f64) -> HashMap<String, f32> {
    acts.iter()
        .zip(stats)
        .map(|(a, s)| {
            let clip = s.percentile(p);
            (a.clone(), if clip > 0.0 && clip.is_finite() { clip / 127.0 } else { 1.0 })
        })
        .collect()
}

/// The metadata describing the activations: static with clip percentile `p`, or dynamic.
fn activation_metadata(p: Option<f64>, calibration: &calib::ImageSet) -> Vec<(String, String)> {
    let Some(p) = p else {
        return vec![(
            "panderm.quantization.activations".into(),
            "uint8 asymmetric, per-tensor scale and zero point computed per input (DynamicQuantizeLinear)".into(),
        )];
    };
    vec![
        (
            "panderm.quantization.activations".into(),
            "uint8 zero point 128, static per-tensor scale s_x = clip/127".into(),
        ),
        ("panderm.quantization.clip".into(), clip_name(p)),
        ("panderm.quantization.percentile".into(), p.to_string()),
        ("panderm.quantization.calibration_source".into(), calibration.source.clone()),
        ("panderm.quantization.calibration_count".into(), calibration.images.len().to_string()),
        ("panderm.quantization.calibration_sha256".into(), calibration.list_sha256.clone()),
    ]
}

/// Quantizes the PanDerm export `input` into `output` and reports the accuracy against fp32.
///
/// Writes `output` and [`report_path`]`(output)` only if everything succeeds.
pub fn quantize_file(input: &Path, output: &Path, opts: &QuantizeOptions) -> Result<QuantReport, QuantizeError> {
    let t0 = Instant::now();
    check_options(input, output, opts)?;
    let Export { mut src, info, bytes: input_bytes, sha256: input_sha } = read_export(input)?;
    let mms = src.weight_matmuls();
    if mms.is_empty() {
        return Err(QuantizeError::NotPandermExport {
            path: input.to_owned(),
            reason: "no MatMul with a constant weight to quantize".into(),
        });
    }
    let acts = distinct_activations(&mms);

    // Images and heads first: a bad directory or head fails before any long computation.
    let (calibration, evaluation) = image_sets(opts, &info)?;
    let mut warnings = Vec::new();
    let heads = load_heads(&opts.heads, &info, &input_sha, input, &mut warnings)?;

    let qweights: Vec<QuantWeight> = mms
        .iter()
        .map(|m| src.quantize_weight(m))
        .collect::<Result<_, graph::GraphError>>()
        .map_err(|e| QuantizeError::NotPandermExport { path: input.to_owned(), reason: e.to_string() })?;

    let static_scheme = opts.scheme == Scheme::StaticU8;
    let probes = if static_scheme { acts.as_slice() } else { &[] };
    let (fp32_calib, stats) = calibrate(&mut src, &info, probes, &calibration, input, opts.progress)?;
    if let Some(v) = fp32_calib.iter().find(|v| v.len() != info.out_dim) {
        return Err(QuantizeError::Model {
            path: input.to_owned(),
            reason: format!("the model output has {} values, its declared width is {}", v.len(), info.out_dim),
        });
    }

    let base_meta = base_metadata(opts, mms.len(), &input_sha, input);
    let mut candidates = Vec::new();
    let mut best: Option<Candidate> = None;
    for p in clip_tries(opts) {
        let scales = p.map(|p| activation_scales(&acts, &stats, p));
        let mut meta = base_meta.clone();
        meta.extend(activation_metadata(p, &calibration));
        let acts_mode = match &scales {
            Some(s) => Activations::Static(s),
            None => Activations::Dynamic,
        };
        let doc = format!(" Quantized to int8 ({}) by panderm-tools quantize.", opts.scheme.metadata_name());
        let q = graph::rewrite(&src, &mms, &qweights, &acts_mode, &meta, &doc)
            .map_err(|e| QuantizeError::Model { path: input.to_owned(), reason: e.to_string() })?;
        let label = p.map_or_else(|| "dynamic".to_owned(), clip_name);
        let plan = Plan::load(&q, &info.sample_shape, output, &format!("int8 model ({label})"))?;
        let bar = progress(opts.progress, calibration.images.len(), &format!("scoring int8 ({label})"));
        let outs = run_set(&plan, &calibration, bar, |_| {})?;
        let cos: Vec<f64> = fp32_calib.iter().zip(&outs).map(|(a, b)| report::cosine(b, a)).collect();
        let c = CosineStats::of(&cos);
        if let Some(p) = p {
            candidates.push(ClipCandidate { clip: clip_name(p), percentile: p, cosine: c });
        }
        if best.as_ref().is_none_or(|b| c.mean > b.cosine.mean) {
            best = Some(Candidate { percentile: p.unwrap_or(100.0), model: q, plan, outputs: outs, cosine: c });
        }
    }
    let Some(Candidate { percentile: best_p, model: mut qmodel, plan: qplan, outputs: int8_calib, .. }) = best else {
        return Err(QuantizeError::InvalidOption("no quantization candidate was built".into()));
    };

    let calib_acc = score_set(&calibration, &fp32_calib, &int8_calib, &heads)?;
    let eval_acc = match &evaluation {
        None => None,
        Some(set) => {
            let plan = load_full(&mut src, &info, &[], input, "fp32 model")?;
            let a = run_set(&plan, set, progress(opts.progress, set.images.len(), "evaluation (fp32)"), |_| {})?;
            drop(plan);
            let b = run_set(&qplan, set, progress(opts.progress, set.images.len(), "evaluation (int8)"), |_| {})?;
            Some(score_set(set, &a, &b, &heads)?)
        }
    };
    drop(qplan);
    drop(src);
    let c = &calib_acc.cosine;
    qmodel.metadata_props.push(pb::StringStringEntryProto {
        key: "panderm.quantization.calibration_cosine".into(),
        value: format!(
            "min {:.5} median {:.5} mean {:.5} vs fp32 over {} images",
            c.min, c.median, c.mean, calib_acc.images
        ),
    });

    let bytes = crate::onnx_graph::encode(&qmodel);
    drop(qmodel);
    let output_bytes = bytes.len() as u64;
    let report_file = report_path(output);
    let report = QuantReport {
        input: input.display().to_string(),
        output: output.display().to_string(),
        report_file: report_file.display().to_string(),
        scheme: opts.scheme,
        quantization: opts.scheme.metadata_name().into(),
        kind: info.kind.clone(),
        variant: info.variant.clone(),
        matmuls: mms.len(),
        activation_quantizers: acts.len(),
        int8_weights: mms.iter().map(|m: &WeightMatMul| m.k * m.n).sum(),
        input_bytes,
        output_bytes,
        size_ratio: output_bytes as f64 / input_bytes.max(1) as f64,
        clip: static_scheme.then(|| clip_name(best_p)),
        candidates,
        calibration: calib_acc,
        evaluation: eval_acc,
        warnings,
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_outputs(output, &bytes, &report)?;
    Ok(report)
}

/// The output must not be the input; every percentile must be in (50, 100].
fn check_options(input: &Path, output: &Path, opts: &QuantizeOptions) -> Result<(), QuantizeError> {
    if output == input || (output.exists() && output.canonicalize().ok() == input.canonicalize().ok()) {
        return Err(QuantizeError::InvalidOption(format!(
            "{}: the output must not overwrite the fp32 input",
            output.display()
        )));
    }
    for &p in &opts.percentiles {
        if !(p > 50.0 && p <= 100.0) {
            return Err(QuantizeError::InvalidOption(format!("--percentile {p}: expected a value in (50, 100]")));
        }
    }
    Ok(())
}

/// The fp32 export as read: its graph, what [`validate`] found, its size and SHA-256.
struct Export {
    src: SplitModel,
    info: ExportInfo,
    bytes: u64,
    sha256: String,
}

/// Reads, hashes, decodes and validates the fp32 export.
fn read_export(input: &Path) -> Result<Export, QuantizeError> {
    let bytes = std::fs::read(input).map_err(|source| QuantizeError::Io { path: input.to_owned(), source })?;
    let size = bytes.len() as u64;
    let sha256 = panderm_edge::fsutil::sha256_hex(&bytes);
    let model = crate::onnx_graph::decode(&bytes).map_err(|e| QuantizeError::NotPandermExport {
        path: input.to_owned(),
        reason: format!("not an ONNX model ({e})"),
    })?;
    drop(bytes);
    let src = SplitModel::split(model);
    let info = validate(&src, input)?;
    Ok(Export { src, info, bytes: size, sha256 })
}

/// Distinct activation tensors of the weight MatMuls, in graph order.
fn distinct_activations(mms: &[WeightMatMul]) -> Vec<String> {
    let mut acts: Vec<String> = Vec::new();
    for m in mms {
        if !acts.contains(&m.activation) {
            acts.push(m.activation.clone());
        }
    }
    acts
}

/// The calibration set and the optional evaluation set, each image preprocessed to the
/// model's input shape.
fn image_sets(
    opts: &QuantizeOptions,
    info: &ExportInfo,
) -> Result<(calib::ImageSet, Option<calib::ImageSet>), QuantizeError> {
    let cfg = PreprocessConfig::default();
    let calibration = match &opts.calibration {
        CalibrationSource::Synthetic(n) => calib::synthetic(*n, &cfg)?,
        CalibrationSource::Dir(dir) => calib::from_dir(dir, &cfg, "calibration")?,
    };
    let evaluation = opts.eval.as_deref().map(|d| calib::from_dir(d, &cfg, "evaluation")).transpose()?;
    for set in std::iter::once(&calibration).chain(evaluation.as_ref()) {
        if let Some((name, t)) = set.images.iter().find(|(_, t)| [3, t.height, t.width] != info.sample_shape[..]) {
            return Err(QuantizeError::InvalidOption(format!(
                "{name}: preprocessed to 3x{}x{}, the model takes {:?}",
                t.height, t.width, info.sample_shape
            )));
        }
    }
    Ok((calibration, evaluation))
}

/// The `panderm.quantization*` metadata every candidate model carries.
fn base_metadata(opts: &QuantizeOptions, matmuls: usize, input_sha: &str, input: &Path) -> Vec<(String, String)> {
    vec![
        ("panderm.quantization".into(), opts.scheme.metadata_name().into()),
        (
            "panderm.quantization.weights".into(),
            "int8 symmetric per output channel, zero point 0, s_w[n] = max|W[:,n]|/127".into(),
        ),
        ("panderm.quantization.matmuls".into(), matmuls.to_string()),
        ("panderm.quantization.fp32_sha256".into(), input_sha.to_owned()),
        (
            "panderm.quantization.fp32_file".into(),
            input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        ),
        ("panderm.quantization.tool".into(), format!("panderm-tools {}", env!("CARGO_PKG_VERSION"))),
    ]
}

/// The clipping values to try. Static: `max |x|` (100) and every requested percentile, scored
/// on the calibration set; the best mean cosine wins (ties keep `max`). Dynamic: one model.
fn clip_tries(opts: &QuantizeOptions) -> Vec<Option<f64>> {
    if opts.scheme == Scheme::StaticU8 {
        let mut ps = vec![100.0];
        for &p in &opts.percentiles {
            if !ps.contains(&p) {
                ps.push(p);
            }
        }
        ps.into_iter().map(Some).collect()
    } else {
        vec![None]
    }
}

/// Writes the model and its report (`OUTPUT.quant.json`) atomically; no model is left without
/// its report.
fn write_outputs(output: &Path, model: &[u8], report: &QuantReport) -> Result<(), QuantizeError> {
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| QuantizeError::InvalidOption(format!("cannot serialise the report: {e}")))?;
    write_atomically(output, model)?;
    if let Err(e) = write_atomically(&report_path(output), &json) {
        let _ = std::fs::remove_file(output);
        return Err(e.into());
    }
    Ok(())
}
