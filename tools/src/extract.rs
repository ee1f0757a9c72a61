//! `panderm-tools extract`: run a converted backbone over every row of a PanDerm CSV and
//! write `features.npy` (float32 `[rows, D]`, row i = CSV row i) plus a JSON sidecar.
//!
//! * every row is validated (and every image checked to exist) before the first image is
//!   decoded;
//! * images are decoded and preprocessed on worker threads while the model runs the
//!   previous batch;
//! * the run is resumable: rows are written in place into `OUT.partial` and the number of
//!   rows durably written is recorded in `OUT.progress.json` with the model and CSV digests.
//!   A killed run continues where it stopped; a partial file from another model or CSV is
//!   refused, never mixed. On completion `OUT.partial` is renamed to `OUT`.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use panderm_edge::engine::{Model, ModelOptions};
use panderm_edge::npy::header_f32;
use panderm_edge::preprocess::{ImageTensor, PreprocessConfig, preprocess_file};
use serde::{Deserialize, Serialize};

use crate::dataset::{self, LoadOptions};

/// Options of an extraction run.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Images per forward pass.
    pub batch_size: usize,
    /// Decode/preprocess worker threads.
    pub decode_threads: usize,
    /// Show a progress bar.
    pub progress: bool,
    /// Discard an existing partial output instead of resuming.
    pub restart: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions { batch_size: 8, decode_threads: 2, progress: true, restart: false }
    }
}

/// The sidecar written next to the features (`OUT.json`) and, during a run, the progress
/// record (`OUT.progress.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sidecar {
    /// SHA-256 of the ONNX model.
    pub model_sha256: String,
    /// SHA-256 of the CSV.
    pub csv_sha256: String,
    /// Rows of the CSV (= rows of the features).
    pub rows: usize,
    /// Feature width.
    pub dim: usize,
    /// Rows durably written so far (equals `rows` when complete).
    pub rows_done: usize,
    /// Preprocessing applied.
    pub preprocess: String,
    /// Where the model ran.
    pub device: String,
    /// Tool and version.
    pub tool: String,
}

/// Summary of a finished run.
#[derive(Debug, Clone)]
pub struct ExtractSummary {
    /// Rows in the output.
    pub rows: usize,
    /// Rows computed in this run (less than `rows` when resumed).
    pub computed: usize,
    /// Feature width.
    pub dim: usize,
    /// Wall time of this run.
    pub seconds: f64,
}

fn suffixed(out: &Path, suffix: &str) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn write_json_atomically(path: &Path, value: &Sidecar) -> Result<(), String> {
    let tmp = suffixed(path, ".tmp");
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    let mut f = File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn preprocess_description(cfg: &PreprocessConfig) -> String {
    format!(
        "resize_shorter={} pillow-bilinear; center_crop={}; mean={:?}; std={:?}; exif_orientation={}",
        cfg.resize_shorter, cfg.crop, cfg.mean, cfg.std, cfg.apply_exif_orientation
    )
}

/// Runs the extraction. See the module docs for the resume contract.
pub fn extract(
    model_path: &Path,
    csv: &Path,
    root: Option<&Path>,
    out: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractSummary, String> {
    let started = Instant::now();
    let ds = dataset::load(csv, root, &LoadOptions { check_images: true, ..LoadOptions::default() })
        .map_err(|e| e.to_string())?;
    let batch = opts.batch_size.max(1);
    let model = Model::load_with(model_path, &ModelOptions { batch_size: batch }).map_err(|e| e.to_string())?;
    if model.input_size().is_none() {
        return Err(format!("{}: not an image model (input {:?})", model_path.display(), model.sample_shape()));
    }
    // The feature width: run nothing yet; the first output's shape is known after one batch,
    // but the file header needs it now, so probe with a zero image.
    let (h, w) = model.input_size().unwrap_or((224, 224));
    let probe =
        model.run(&[&ImageTensor { data: vec![0.0; 3 * h * w], height: h, width: w }]).map_err(|e| e.to_string())?;
    let dim = probe[0][0].values.len();
    let cfg = PreprocessConfig::default();
    let rows = ds.rows.len();
    let mut record = Sidecar {
        model_sha256: panderm_edge::bundle::sha256_file(model_path).map_err(|e| e.to_string())?,
        csv_sha256: ds.csv_sha256.clone(),
        rows,
        dim,
        rows_done: 0,
        preprocess: preprocess_description(&cfg),
        device: "cpu".into(),
        tool: format!("panderm-tools {}", env!("CARGO_PKG_VERSION")),
    };
    let partial = suffixed(out, ".partial");
    let progress = suffixed(out, ".progress.json");
    let header = header_f32(&[rows, dim]);
    let row_bytes = (dim * 4) as u64;
    // Resume or start fresh.
    let mut start_row = 0;
    if partial.exists() && progress.exists() && !opts.restart {
        let text = std::fs::read_to_string(&progress).map_err(|e| format!("{}: {e}", progress.display()))?;
        let prev: Sidecar = serde_json::from_str(&text)
            .map_err(|e| format!("{}: unreadable progress record: {e}", progress.display()))?;
        let same = prev.model_sha256 == record.model_sha256
            && prev.csv_sha256 == record.csv_sha256
            && prev.rows == rows
            && prev.dim == dim
            && prev.preprocess == record.preprocess;
        if !same {
            return Err(format!(
                "{}: a partial extraction from a different model or CSV exists; refusing to mix rows (use --restart to discard it)",
                partial.display()
            ));
        }
        start_row = prev.rows_done.min(rows);
    } else if partial.exists() && !opts.restart {
        return Err(format!(
            "{}: partial output without a progress record; use --restart to discard it",
            partial.display()
        ));
    }
    let mut file = if start_row > 0 {
        let f = OpenOptions::new().write(true).open(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        // Drop anything written after the last durable batch.
        f.set_len(header.len() as u64 + start_row as u64 * row_bytes)
            .map_err(|e| format!("{}: {e}", partial.display()))?;
        f
    } else {
        let mut f = File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        f.write_all(&header).map_err(|e| format!("{}: {e}", partial.display()))?;
        record.rows_done = 0;
        write_json_atomically(&progress, &record)?;
        f
    };
    file.seek(SeekFrom::Start(header.len() as u64 + start_row as u64 * row_bytes)).map_err(|e| e.to_string())?;

    let bar = if opts.progress { ProgressBar::new(rows as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} images  {per_sec}  ETA {eta}")
            .expect("valid template"),
    );
    bar.set_position(start_row as u64);
    if start_row > 0 {
        bar.println(format!("resuming at row {start_row} of {rows}"));
    }
    let paths: Vec<PathBuf> = ds.rows.iter().map(|r| ds.image_path(r)).collect();
    let threads = opts.decode_threads.max(1);
    let (tx, rx) = sync_channel::<Result<(usize, Vec<ImageTensor>), String>>(2);
    let computed = std::thread::scope(|scope| -> Result<usize, String> {
        let paths = &paths;
        let cfg = &cfg;
        scope.spawn(move || {
            let mut first = start_row;
            while first < rows {
                let last = (first + batch).min(rows);
                let chunk = &paths[first..last];
                // Decode the batch on `threads` workers, keeping order.
                let per = chunk.len().div_ceil(threads);
                let results: Vec<Result<Vec<ImageTensor>, String>> = std::thread::scope(|s| {
                    let handles: Vec<_> = chunk
                        .chunks(per.max(1))
                        .map(|part| {
                            s.spawn(move || {
                                part.iter()
                                    .map(|p| preprocess_file(p, cfg).map_err(|e| e.to_string()))
                                    .collect::<Result<Vec<_>, _>>()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|_| Err("a decode worker panicked".into())))
                        .collect()
                });
                let mut tensors = Vec::with_capacity(chunk.len());
                for r in results {
                    match r {
                        Ok(mut t) => tensors.append(&mut t),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
                if tx.send(Ok((first, tensors))).is_err() {
                    return;
                }
                first = last;
            }
        });
        let mut done = start_row;
        for msg in rx {
            let (first, tensors) = msg?;
            debug_assert_eq!(first, done);
            let refs: Vec<&ImageTensor> = tensors.iter().collect();
            let outputs = model.run(&refs).map_err(|e| e.to_string())?;
            let mut bytes = Vec::with_capacity(tensors.len() * dim * 4);
            for o in &outputs {
                for v in &o[0].values {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
            file.write_all(&bytes).and_then(|_| file.sync_data()).map_err(|e| format!("{}: {e}", partial.display()))?;
            done += tensors.len();
            record.rows_done = done;
            write_json_atomically(&progress, &record)?;
            bar.set_position(done as u64);
        }
        Ok(done - start_row)
    })?;
    bar.finish_and_clear();
    if record.rows_done != rows {
        return Err(format!("extraction stopped at row {} of {rows}", record.rows_done));
    }
    std::fs::rename(&partial, out).map_err(|e| format!("{}: {e}", out.display()))?;
    write_json_atomically(&suffixed(out, ".json"), &record)?;
    let _ = std::fs::remove_file(&progress);
    Ok(ExtractSummary { rows, computed, dim, seconds: started.elapsed().as_secs_f64() })
}
