//! `panderm bench`: how fast and how large a model is on this machine.
//!
//! Measures, in one process: load time (parse + optimize), the first run (caches cold), then
//! `runs` timed runs of one image-sized input after one warm-up, reporting the median, p90 and
//! images/s, and the process's peak resident memory. The input is PanDerm's preprocessing of a
//! real image when one is given, else a fixed pseudo-random tensor (the timing of a dense ViT does
//! not depend on the pixel values). `--profile` adds where the time goes, per tract operator.
//! Compare against ONNX Runtime with `scripts/bench-vs-ort.sh`.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::backend::{Backend, EngineInfo, InferenceModel};
use crate::engine::{Model, ModelOptions, OpTime};
use crate::error::{Error, ErrorKind, Result};
use crate::preprocess::{ImageTensor, PreprocessConfig, preprocess_file};

/// What one benchmark measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The engine that ran it.
    pub engine: EngineInfo,
    /// The CPU it ran on: every speed figure names its SIMD features.
    pub cpu: CpuReport,
    /// The matrix-multiply kernels the engine chose (tract: from its plan; empty where the
    /// engine does not say).
    pub kernels: Vec<String>,
    /// The model file.
    pub model: String,
    /// Its size in bytes.
    pub file_bytes: u64,
    /// Inference threads.
    pub threads: usize,
    /// Parse + optimize, seconds.
    pub load_s: f64,
    /// The first run after loading, milliseconds.
    pub first_run_ms: f64,
    /// Timed runs (after one warm-up).
    pub runs: usize,
    /// Median latency, milliseconds.
    pub median_ms: f64,
    /// 90th-percentile latency, milliseconds.
    pub p90_ms: f64,
    /// Fastest run, milliseconds.
    pub min_ms: f64,
    /// 1000 / median.
    pub images_per_s: f64,
    /// Peak resident memory of the process so far (VmHWM), MiB; `None` where /proc is absent.
    pub peak_rss_mib: Option<f64>,
    /// With `--profile`: time per operator kind of the optimized plan, slowest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Vec<OpTime>>,
}

/// The CPU of a [`BenchReport`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CpuReport {
    /// `/proc/cpuinfo`'s model name, if any.
    pub model: Option<String>,
    /// Logical CPUs available to this process.
    pub logical_cpus: usize,
    /// The kernel-relevant SIMD features ([`crate::cpu::simd_features`]).
    pub simd: Vec<String>,
}

impl CpuReport {
    /// This machine's.
    pub fn here() -> CpuReport {
        CpuReport {
            model: crate::cpu::model_name(),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            simd: crate::cpu::simd_features().into_iter().map(str::to_owned).collect(),
        }
    }
}

/// Peak resident set size of this process in MiB, from `/proc/self/status` (Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A deterministic input of the model's sample shape (an LCG in [-2, 2), like normalized pixels).
fn synthetic_input(shape: &[usize]) -> Result<ImageTensor> {
    let [c, h, w] = shape else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("bench needs an image model, this one takes {shape:?}"),
        ));
    };
    let mut state = 0x2545_f491_u32;
    let data = (0..c * h * w)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
        })
        .collect();
    Ok(ImageTensor { data, height: *h, width: *w })
}

fn percentile_ms(sorted: &[f64], p: f64) -> f64 {
    crate::stats::percentile(sorted, p).unwrap_or(f64::NAN)
}

/// Loads `model` and times it. `threads` must already be applied with
/// [`crate::engine::set_threads`]; it is recorded in the report.
/// With `profile`, `runs` more runs are timed per operator ([`Model::profile`]) after the
/// latency runs (so they do not disturb them).
pub fn bench(
    model: &Path,
    image: Option<&Path>,
    runs: usize,
    threads: usize,
    profile: bool,
    backend: &Backend,
) -> Result<BenchReport> {
    if runs == 0 {
        return Err(Error::new(ErrorKind::InvalidInput, "--runs must be at least 1"));
    }
    if profile && *backend != Backend::Tract {
        return Err(Error::new(ErrorKind::InvalidInput, "--profile times tract's plan; it needs --backend tract"));
    }
    let file_bytes = std::fs::metadata(model).map_err(|e| Error::io(model, e))?.len();
    let t = Instant::now();
    // tract's Model directly (its per-operator profile), any other engine behind the seam.
    let (tract, other) = match backend {
        Backend::Tract => (Some(Model::load_with(model, &ModelOptions::default())?), None),
        other => (None, Some(crate::backend::load(model, &ModelOptions::default(), other)?)),
    };
    let m: &dyn InferenceModel = match (&tract, &other) {
        (Some(t), _) => t,
        (None, Some(o)) => o.as_ref(),
        (None, None) => unreachable!("one engine was loaded just above"),
    };
    let load_s = t.elapsed().as_secs_f64();
    let input = match image {
        Some(p) => preprocess_file(p, &PreprocessConfig::default())?,
        None => synthetic_input(m.sample_shape())?,
    };
    let t = Instant::now();
    m.run(&[&input])?;
    let first_run_ms = t.elapsed().as_secs_f64() * 1e3;
    m.run(&[&input])?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        m.run(&[&input])?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median_ms = percentile_ms(&times, 50.0);
    let peak_rss_mib = peak_rss_mib();
    let profile = match (&tract, profile) {
        (Some(t), true) => Some(t.profile(&input, runs)?),
        _ => None,
    };
    Ok(BenchReport {
        engine: m.engine().clone(),
        cpu: CpuReport::here(),
        kernels: m.kernels(),
        model: model.to_string_lossy().into_owned(),
        file_bytes,
        threads,
        load_s,
        first_run_ms,
        runs,
        median_ms,
        p90_ms: percentile_ms(&times, 90.0),
        min_ms: times[0],
        images_per_s: 1e3 / median_ms,
        peak_rss_mib,
        profile,
    })
}

impl BenchReport {
    /// A short human-readable summary.
    pub fn human(&self) -> String {
        format!(
            "{}: {:.1} MB, {} thread(s), {}\n  cpu: {} ({} logical), SIMD: {}{}\n  load {:.2} s, first run {:.1} ms\n  {} runs: median {:.1} ms, p90 {:.1} ms, min {:.1} ms, {:.2} images/s\n  peak RSS {}\n",
            self.model,
            self.file_bytes as f64 / 1e6,
            self.threads,
            self.engine,
            self.cpu.model.as_deref().unwrap_or("unknown"),
            self.cpu.logical_cpus,
            if self.cpu.simd.is_empty() { "none detected".to_owned() } else { self.cpu.simd.join(" ") },
            if self.kernels.is_empty() { String::new() } else { format!("; kernels: {}", self.kernels.join(", ")) },
            self.load_s,
            self.first_run_ms,
            self.runs,
            self.median_ms,
            self.p90_ms,
            self.min_ms,
            self.images_per_s,
            self.peak_rss_mib.map_or("n/a".to_owned(), |m| format!("{m:.0} MiB"))
        ) + &self.profile.as_deref().map(profile_table).unwrap_or_default()
    }
}

/// The per-operator profile as text: operator, nodes, ms per run, share of the total.
fn profile_table(ops: &[OpTime]) -> String {
    let total: f64 = ops.iter().map(|o| o.ms_per_run).sum();
    let mut s = format!("  profile ({total:.1} ms per run in timed nodes):\n");
    for o in ops.iter().filter(|o| o.ms_per_run >= 0.001 * total) {
        s += &format!(
            "    {:<28} {:>4} nodes {:>9.2} ms {:>5.1}%\n",
            o.op,
            o.nodes,
            o.ms_per_run,
            100.0 * o.ms_per_run / total.max(f64::MIN_POSITIVE)
        );
    }
    s
}
