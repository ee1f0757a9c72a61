//! `panderm-tools extract`: run a converted backbone over every row of a PanDerm CSV and
//! write `features.npy` (float32 `[rows, D]`, row i = CSV row i) plus a JSON sidecar.
//!
//! * every row is validated (and every image checked to exist) before the first image is
//!   decoded;
//! * images are decoded and preprocessed on worker threads while the model runs the
//!   previous batch;
//! * the run is resumable: rows are written in place into `OUT.partial` and the number of
//!   rows durably written is recorded in `OUT.progress.json` with the model and CSV digests.
//!   A killed run continues where it stopped; a partial file from another job (model, CSV,
//!   shard and row range, preprocessing, device or tool), or one that holds fewer rows than
//!   its record says, is refused, never mixed or zero-padded. On completion `OUT.partial` is
//!   renamed to `OUT`;
//! * `--device cuda|auto` runs the same graph on a GPU through tract-cuda ([`backend`]);
//! * `--shard I/N` extracts a contiguous slice of the rows, so N machines can share a data set;
//!   [`merge`] joins the shards in CSV order, taking only the complete shards 1..N of one job.

pub mod backend;

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use panderm_edge::npy::header_f32;
use panderm_edge::preprocess::{ImageTensor, PreprocessConfig, preprocess_file};
use serde::{Deserialize, Serialize};

use crate::dataset::{self, LoadOptions};
use crate::error::{Error, Result};
use backend::{Backbone, DeviceChoice};

/// One of N shards of a CSV's rows: shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based shard number.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Parses `I/N` (1 ≤ I ≤ N).
    pub fn parse(s: &str) -> Result<Shard> {
        let refused = |why: String| Error::refused(format!("--shard {s:?}: {why}"));
        let (i, n) = s.split_once('/').ok_or_else(|| refused("expected I/N, e.g. 2/8".into()))?;
        let index: usize = i.trim().parse().map_err(|_| refused(format!("{i:?} is not a number")))?;
        let count: usize = n.trim().parse().map_err(|_| refused(format!("{n:?} is not a number")))?;
        if count == 0 || index == 0 || index > count {
            return Err(refused("need 1 <= I <= N".into()));
        }
        Ok(Shard { index, count })
    }

    /// The contiguous CSV row range `[start, end)` of this shard out of `rows` (computed
    /// without overflow for any `rows`, e.g. one read from an untrusted sidecar).
    pub fn range(&self, rows: usize) -> (usize, usize) {
        let at = |i: usize| (i as u128 * rows as u128 / self.count.max(1) as u128) as usize;
        (at(self.index.saturating_sub(1)), at(self.index))
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Options of an extraction run.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Images per forward pass (default: per device).
    pub batch_size: Option<usize>,
    /// Decode/preprocess worker threads.
    pub decode_threads: usize,
    /// Show a progress bar.
    pub progress: bool,
    /// Discard an existing partial output instead of resuming.
    pub restart: bool,
    /// Where to run the backbone.
    pub device: DeviceChoice,
    /// Only this shard of the rows.
    pub shard: Option<Shard>,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            batch_size: None,
            decode_threads: 2,
            progress: true,
            restart: false,
            device: DeviceChoice::Cpu,
            shard: None,
        }
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
    /// Rows in this features file.
    pub rows: usize,
    /// Data rows in the whole CSV.
    pub csv_rows: usize,
    /// First CSV row in this file (0 unless sharded).
    pub row_start: usize,
    /// One past the last CSV row in this file.
    pub row_end: usize,
    /// `I/N` when this file is one shard of the CSV.
    pub shard: Option<String>,
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
    /// Where the backbone ran.
    pub device: String,
}

fn suffixed(out: &Path, suffix: &str) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Sidecar {
    /// "shard 1/2 (rows 0..5)" or "the whole CSV (rows 0..10)".
    fn describe(&self) -> String {
        match &self.shard {
            Some(s) => format!("shard {s} (rows {}..{})", self.row_start, self.row_end),
            None => format!("the whole CSV (rows {}..{})", self.row_start, self.row_end),
        }
    }

    /// Why a partial output recorded by `prev` is not a part of the job `self`, if it is not.
    /// A job is one model, one CSV and one row range (shard) of it, with one preprocessing,
    /// feature width, device and tool; resuming across any difference would mix rows.
    fn foreign(&self, prev: &Sidecar) -> Option<String> {
        let short = |h: &str| h.get(..12).unwrap_or(h).to_owned();
        Some(if prev.model_sha256 != self.model_sha256 {
            format!(
                "from a different model or CSV: model {}… there, {}… here",
                short(&prev.model_sha256),
                short(&self.model_sha256)
            )
        } else if prev.csv_sha256 != self.csv_sha256 || prev.csv_rows != self.csv_rows {
            format!(
                "from a different model or CSV: CSV {}… of {} rows there, {}… of {} rows here",
                short(&prev.csv_sha256),
                prev.csv_rows,
                short(&self.csv_sha256),
                self.csv_rows
            )
        } else if prev.shard != self.shard || prev.row_start != self.row_start || prev.row_end != self.row_end {
            format!("of {}, this run is {}", prev.describe(), self.describe())
        } else if prev.rows != self.rows || prev.rows_done > prev.rows {
            format!("with an inconsistent progress record ({} of {} rows)", prev.rows_done, prev.rows)
        } else if prev.dim != self.dim {
            format!("of {}-wide features, this model gives {}", prev.dim, self.dim)
        } else if prev.preprocess != self.preprocess {
            format!("with other preprocessing ({})", prev.preprocess)
        } else if prev.device != self.device {
            format!("computed on {}, this run is on {}", prev.device, self.device)
        } else if prev.tool != self.tool {
            format!("written by {}, this is {}", prev.tool, self.tool)
        } else {
            return None;
        })
    }
}

fn write_json_atomically(path: &Path, value: &Sidecar) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    Ok(panderm_edge::fsutil::write_atomically(path, text.as_bytes())?)
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
) -> Result<ExtractSummary> {
    let started = Instant::now();
    let ds = dataset::load(csv, root, &LoadOptions { check_images: true, ..LoadOptions::default() })?;
    // PANDERM_EXTRACT_TIMINGS=1 prints where the time goes (load, first batch, per batch).
    let timings = std::env::var_os("PANDERM_EXTRACT_TIMINGS").is_some();
    let (model, (h, w), dim) = load_backbone(model_path, opts, timings)?;
    let batch = model.batch_size();
    let cfg = PreprocessConfig::default();
    let csv_rows = ds.rows.len();
    let (row_start, row_end) = opts.shard.map_or((0, csv_rows), |s| s.range(csv_rows));
    let rows = row_end - row_start;
    let mut record = Sidecar {
        model_sha256: panderm_edge::bundle::sha256_file(model_path)?,
        csv_sha256: ds.csv_sha256.clone(),
        rows,
        csv_rows,
        row_start,
        row_end,
        shard: opts.shard.map(|s| format!("{}/{}", s.index, s.count)),
        dim,
        rows_done: 0,
        preprocess: preprocess_description(&cfg),
        device: model.device().to_owned(),
        tool: format!("panderm-tools {}", env!("CARGO_PKG_VERSION")),
    };
    let partial = suffixed(out, ".partial");
    let progress = suffixed(out, ".progress.json");
    let header = header_f32(&[rows, dim]);
    let row_bytes = dim as u64 * 4;
    let (mut file, start_row) = open_partial(&partial, &progress, &mut record, &header, row_bytes, opts.restart)?;
    let bar = progress_bar(opts.progress, rows, start_row);
    let paths: Vec<PathBuf> = ds.rows[row_start..row_end].iter().map(|r| ds.image_path(r)).collect();
    let threads = opts.decode_threads.max(1);
    let (tx, rx) = sync_channel::<Result<(usize, Vec<ImageTensor>)>>(2);
    let computed = std::thread::scope(|scope| -> Result<usize> {
        let paths = &paths;
        let cfg = &cfg;
        scope.spawn(move || {
            let mut first = start_row;
            while first < rows {
                // Batches are aligned to the whole CSV (global rows k·B .. (k+1)·B), so every
                // row sits at the same position of a same-sized batch whether the run is
                // whole, sharded or resumed: results are bit-identical (tract's kernels tile
                // a batch the same way each time).
                let global_next = ((row_start + first) / batch + 1) * batch;
                let last = (global_next - row_start).min(rows);
                let decoded = decode_batch(&paths[first..last], threads, cfg).map(|tensors| (first, tensors));
                let failed = decoded.is_err();
                if tx.send(decoded).is_err() || failed {
                    return;
                }
                first = last;
            }
        });
        let mut done = start_row;
        let zero = ImageTensor { data: vec![0.0; 3 * h * w], height: h, width: w };
        let mut t_wait = Instant::now();
        for msg in rx {
            let waited = t_wait.elapsed().as_secs_f64();
            let t_run = Instant::now();
            let (first, tensors) = msg?;
            debug_assert_eq!(first, done);
            // Leading slots of a batch that belong to rows outside this run stay zero.
            let offset = (row_start + first) % batch;
            let mut refs: Vec<&ImageTensor> = vec![&zero; offset];
            refs.extend(tensors.iter());
            let mut outputs = model.run(&refs)?;
            if outputs.len() != refs.len() || outputs.iter().any(|o| o.len() != dim) {
                return Err(Error::invalid(
                    model_path,
                    format!(
                        "the model gave {} outputs for {} images (or a feature width other than {dim})",
                        outputs.len(),
                        refs.len()
                    ),
                ));
            }
            outputs.drain(..offset);
            if timings {
                log::info!(
                    "timing: batch waited {waited:.3} s for decoding, ran {:.3} s",
                    t_run.elapsed().as_secs_f64()
                );
            }
            let bytes = le_bytes(&outputs, dim);
            file.write_all(&bytes).and_then(|_| file.sync_data()).map_err(|e| Error::io(&partial, e))?;
            done += tensors.len();
            record.rows_done = done;
            write_json_atomically(&progress, &record)?;
            bar.set_position(done as u64);
            t_wait = Instant::now();
        }
        Ok(done - start_row)
    })?;
    bar.finish_and_clear();
    if record.rows_done != rows {
        return Err(Error::refused(format!("extraction stopped at row {} of {rows}", record.rows_done)));
    }
    std::fs::rename(&partial, out).map_err(|e| Error::io(out, e))?;
    write_json_atomically(&suffixed(out, ".json"), &record)?;
    let _ = std::fs::remove_file(&progress);
    Ok(ExtractSummary { rows, computed, dim, seconds: started.elapsed().as_secs_f64(), device: record.device })
}

/// Loads the backbone on the requested device and runs one zero image to learn the feature
/// width (the file header needs it before the first real batch); returns the backbone, its
/// input `(height, width)` and the feature width.
fn load_backbone(model_path: &Path, opts: &ExtractOptions, timings: bool) -> Result<(Backbone, (usize, usize), usize)> {
    let t_load = Instant::now();
    let (model, notice) = Backbone::load(model_path, opts.batch_size.map(|b| b.max(1)), opts.device)?;
    if timings {
        log::info!("timing: load {:.2} s", t_load.elapsed().as_secs_f64());
    }
    if let Some(n) = notice {
        log::info!("{n}");
    }
    let Some((h, w)) = model.input_size() else {
        return Err(Error::invalid(model_path, "not an image model"));
    };
    check_input_size(model_path, h, w)?;
    let t_probe = Instant::now();
    let probe = model.run(&[&ImageTensor { data: vec![0.0; 3 * h * w], height: h, width: w }])?;
    if timings {
        log::info!("timing: first batch {:.2} s", t_probe.elapsed().as_secs_f64());
    }
    let dim = probe.first().map_or(0, Vec::len);
    if dim == 0 {
        return Err(Error::invalid(model_path, "the model gives no features"));
    }
    Ok((model, (h, w), dim))
}

/// Resumes `partial` (when its progress record belongs to this job, `record`, and it holds
/// the rows the record says) or starts it fresh; returns the file positioned after the last
/// durable row, and that row. An unusable partial is refused unless `restart`.
fn open_partial(
    partial: &Path,
    progress: &Path,
    record: &mut Sidecar,
    header: &[u8],
    row_bytes: u64,
    restart: bool,
) -> Result<(File, usize)> {
    let mut start_row = 0;
    if partial.exists() && progress.exists() && !restart {
        let text = std::fs::read_to_string(progress).map_err(|e| Error::io(progress, e))?;
        let prev: Sidecar = serde_json::from_str(&text)
            .map_err(|e| Error::invalid(progress, format!("unreadable progress record: {e}")))?;
        if let Some(why) = record.foreign(&prev) {
            return Err(Error::invalid(
                partial,
                format!("a partial extraction {why}; refusing to mix rows (use --restart to discard it)"),
            ));
        }
        start_row = prev.rows_done;
        check_partial(partial, header, row_bytes, start_row)?;
    } else if partial.exists() && !restart {
        return Err(Error::invalid(partial, "partial output without a progress record; use --restart to discard it"));
    }
    let mut file = if start_row > 0 {
        let f = OpenOptions::new().write(true).open(partial).map_err(|e| Error::io(partial, e))?;
        // Drop anything written after the last durable batch.
        f.set_len(header.len() as u64 + start_row as u64 * row_bytes).map_err(|e| Error::io(partial, e))?;
        f
    } else {
        let mut f = File::create(partial).map_err(|e| Error::io(partial, e))?;
        f.write_all(header).map_err(|e| Error::io(partial, e))?;
        record.rows_done = 0;
        write_json_atomically(progress, record)?;
        f
    };
    file.seek(SeekFrom::Start(header.len() as u64 + start_row as u64 * row_bytes))
        .map_err(|e| Error::io(partial, e))?;
    Ok((file, start_row))
}

/// The progress bar (hidden unless `show`), at `start_row` of `rows`.
fn progress_bar(show: bool, rows: usize, start_row: usize) -> ProgressBar {
    let bar = if show { ProgressBar::new(rows as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} images  {per_sec}  ETA {eta}")
            .expect("valid template"),
    );
    bar.set_position(start_row as u64);
    if start_row > 0 {
        bar.println(format!("resuming at row {start_row} of {rows}"));
    }
    bar
}

/// Decodes and preprocesses one batch of images on `threads` workers, keeping their order.
fn decode_batch(chunk: &[PathBuf], threads: usize, cfg: &PreprocessConfig) -> Result<Vec<ImageTensor>> {
    let per = chunk.len().div_ceil(threads);
    let results: Vec<Result<Vec<ImageTensor>>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunk
            .chunks(per.max(1))
            .map(|part| {
                s.spawn(move || {
                    part.iter().map(|p| preprocess_file(p, cfg).map_err(Error::from)).collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Panicked("a decode worker panicked".into()))))
            .collect()
    });
    let mut tensors = Vec::with_capacity(chunk.len());
    for r in results {
        tensors.append(&mut r?);
    }
    Ok(tensors)
}

/// Feature rows as the little-endian float32 bytes of the `.npy` data.
fn le_bytes(outputs: &[Vec<f32>], dim: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(outputs.len() * dim * 4);
    for o in outputs {
        for v in o {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    bytes
}

/// Checks that a partial output to be resumed is what its progress record says: the array
/// header this run writes, then at least `rows_done` complete rows. Anything else (a partial
/// from another job, one truncated by a crash of the file system, a hand-edited record) would
/// be padded with zeros or mixed, so it is refused and left untouched.
fn check_partial(partial: &Path, header: &[u8], row_bytes: u64, rows_done: usize) -> Result<()> {
    use std::io::Read;
    let err = |e: std::io::Error| Error::io(partial, e);
    let mut f = File::open(partial).map_err(err)?;
    let len = f.metadata().map_err(err)?.len();
    let mut head = Vec::with_capacity(header.len());
    Read::take(&mut f, header.len() as u64).read_to_end(&mut head).map_err(err)?;
    if head != header {
        return Err(Error::invalid(
            partial,
            "its array header is not the one this run writes (torn, or from another job); refusing to resume (use --restart to discard it)",
        ));
    }
    let complete = len.saturating_sub(header.len() as u64) / row_bytes.max(1);
    if complete < rows_done as u64 {
        return Err(Error::invalid(
            partial,
            format!(
                "holds {complete} complete rows but its progress record says {rows_done} were written; refusing to resume (use --restart to discard it)"
            ),
        ));
    }
    Ok(())
}

fn read_sidecar(features: &Path) -> Result<Sidecar> {
    let p = suffixed(features, ".json");
    let text = std::fs::read_to_string(&p)
        .map_err(|e| Error::invalid(&p, format!("{e} (every features file needs its sidecar)")))?;
    serde_json::from_str(&text).map_err(|e| Error::invalid(&p, format!("not a features sidecar: {e}")))
}

/// `merge-features`: joins shard outputs (any order) into one features file in CSV order.
///
/// Only the complete, disjoint shards 1..N of one job are accepted: every file must be a
/// complete shard `I/N` (the same N for all, each I once, none missing) whose sidecar covers
/// exactly the rows of shard `I/N` of the CSV, from the same model, CSV, preprocessing and
/// feature width, with an array of the size its sidecar states. Everything is checked before
/// the output is created; a refused merge leaves nothing behind.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<Sidecar> {
    if shards.is_empty() {
        return Err(Error::refused("no shards given"));
    }
    let mut parts: Vec<(Sidecar, &PathBuf, Option<Shard>)> = Vec::new();
    for p in shards {
        let s = read_sidecar(p)?;
        if s.rows_done != s.rows {
            return Err(Error::invalid(p, format!("incomplete shard ({} of {} rows)", s.rows_done, s.rows)));
        }
        if s.row_start > s.row_end || s.row_end > s.csv_rows || s.rows != s.row_end - s.row_start {
            return Err(Error::invalid(
                p,
                format!(
                    "its sidecar is inconsistent (rows {}..{} of a {}-row CSV, {} rows)",
                    s.row_start, s.row_end, s.csv_rows, s.rows
                ),
            ));
        }
        let shard = match &s.shard {
            Some(label) => {
                let shard = Shard::parse(label)
                    .map_err(|_| Error::invalid(p, format!("its sidecar names shard {label:?}, which is not I/N")))?;
                let (a, b) = shard.range(s.csv_rows);
                if (a, b) != (s.row_start, s.row_end) {
                    return Err(Error::invalid(
                        p,
                        format!(
                            "its sidecar says shard {shard} covers rows {}..{}, but shard {shard} of {} rows is rows {a}..{b}",
                            s.row_start, s.row_end, s.csv_rows
                        ),
                    ));
                }
                Some(shard)
            }
            None if shards.len() > 1 => {
                return Err(Error::refused(format!(
                    "{} is not a shard (it covers the whole CSV); merge the outputs of one `extract --shard I/N` run",
                    p.display()
                )));
            }
            None if (s.row_start, s.row_end) != (0, s.csv_rows) => {
                return Err(Error::invalid(
                    p,
                    format!(
                        "its sidecar names no shard but covers only rows {}..{} of {}",
                        s.row_start, s.row_end, s.csv_rows
                    ),
                ));
            }
            None => None,
        };
        parts.push((s, p, shard));
    }
    let (first, first_path, first_shard) = (parts[0].0.clone(), parts[0].1, parts[0].2);
    let first = &first;
    for (s, p, shard) in &parts[1..] {
        let what = if s.model_sha256 != first.model_sha256 {
            Some("a different model".to_owned())
        } else if s.csv_sha256 != first.csv_sha256 {
            Some("a different CSV".to_owned())
        } else if s.preprocess != first.preprocess {
            Some("different preprocessing".to_owned())
        } else if s.dim != first.dim || s.csv_rows != first.csv_rows {
            Some("a different feature width or row count".to_owned())
        } else {
            None
        };
        if let Some(w) = what {
            return Err(Error::refused(format!(
                "{} comes from {w} than {}; refusing to merge",
                p.display(),
                first_path.display()
            )));
        }
        if let (Some(a), Some(b)) = (shard, first_shard)
            && a.count != b.count
        {
            return Err(Error::refused(format!(
                "{} is shard {a} but {} is shard {b}: outputs of different --shard runs; refusing to merge",
                p.display(),
                first_path.display()
            )));
        }
    }
    if let Some(count) = first_shard.map(|s| s.count) {
        // A map, not a table of `count` slots: N comes from an untrusted sidecar.
        let mut seen: std::collections::BTreeMap<usize, &PathBuf> = std::collections::BTreeMap::new();
        for (_, p, shard) in &parts {
            let index = shard.map_or(0, |s| s.index);
            if let Some(other) = seen.insert(index, p) {
                return Err(Error::refused(format!(
                    "shard {index}/{count} is given twice ({} and {}); refusing to merge",
                    other.display(),
                    p.display()
                )));
            }
        }
        if seen.len() != count {
            // At most `seen.len() + 3` indices are looked at, whatever N is.
            let missing: Vec<String> = (1..=count)
                .filter(|i| !seen.contains_key(i))
                .take(3)
                .map(|i| {
                    let shard = Shard { index: i, count };
                    let (a, b) = shard.range(first.csv_rows);
                    format!("shard {shard} (rows {a}..{b})")
                })
                .collect();
            let more = count - seen.len() - missing.len();
            return Err(Error::refused(format!(
                "missing {}{}: every shard 1..{count} is needed; refusing to merge",
                missing.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            )));
        }
    }
    parts.sort_by_key(|(s, _, _)| s.row_start);
    // Implied by the checks above; kept as the invariant the output relies on.
    let mut next = 0;
    for (s, p, _) in &parts {
        if s.row_start != next {
            return Err(Error::refused(if s.row_start > next {
                format!("rows {next}..{} are missing (no shard covers them)", s.row_start)
            } else {
                format!("{} overlaps rows already covered by another shard", p.display())
            }));
        }
        next = s.row_end;
    }
    if next != first.csv_rows {
        return Err(Error::refused(format!("rows {next}..{} are missing (no shard covers them)", first.csv_rows)));
    }
    let dim = first.dim;
    // Every array's header and size, before the output exists.
    let mut arrays = Vec::with_capacity(parts.len());
    for (s, p, _) in &parts {
        let (h, file) = panderm_edge::npy::open_f32(p)?;
        if h.shape != [s.rows, dim] {
            return Err(Error::invalid(
                p,
                format!("shape {:?} does not match its sidecar ({} x {dim})", h.shape, s.rows),
            ));
        }
        arrays.push((h.data_len, file, *p));
    }
    let tmp = suffixed(out, ".partial");
    let written = (|| -> Result<()> {
        let mut f = std::io::BufWriter::new(File::create(&tmp).map_err(|e| Error::io(&tmp, e))?);
        f.write_all(&header_f32(&[first.csv_rows, dim])).map_err(|e| Error::io(&tmp, e))?;
        for (len, file, p) in arrays {
            let copied = std::io::copy(&mut std::io::Read::take(file, len), &mut f).map_err(|e| Error::io(p, e))?;
            if copied != len {
                return Err(Error::invalid(p, format!("changed while merging ({copied} of {len} data bytes)")));
            }
        }
        f.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let devices: std::collections::BTreeSet<&str> = parts.iter().map(|(s, _, _)| s.device.as_str()).collect();
    let merged = Sidecar {
        rows: first.csv_rows,
        row_start: 0,
        row_end: first.csv_rows,
        rows_done: first.csv_rows,
        shard: None,
        device: devices.into_iter().collect::<Vec<_>>().join("+"),
        ..first.clone()
    };
    write_json_atomically(&suffixed(out, ".json"), &merged)?;
    Ok(merged)
}

/// Largest model input side accepted (PanDerm: 224): the zero and random input images are
/// allocated from the model's declared input shape.
const MAX_INPUT_SIDE: usize = 8192;

fn check_input_size(model: &Path, h: usize, w: usize) -> Result<()> {
    if h == 0 || w == 0 || h > MAX_INPUT_SIDE || w > MAX_INPUT_SIDE {
        return Err(Error::invalid(model, format!("input of {h}×{w} pixels is outside 1..={MAX_INPUT_SIDE} per side")));
    }
    Ok(())
}

/// Result of [`bench()`].
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// `cpu` or `cuda`.
    pub device: String,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Model load and preparation, seconds.
    pub load_s: f64,
    /// First (warm-up) batch, seconds (includes GPU kernel compilation).
    pub first_batch_s: f64,
    /// Steady-state throughput.
    pub images_per_s: f64,
    /// Operations of the prepared plan and their counts (GPU plans only).
    pub plan_ops: std::collections::BTreeMap<String, usize>,
}

/// `bench-extract`: backbone throughput on one device, without decoding (random inputs),
/// after one warm-up batch.
pub fn bench(model: &Path, device: DeviceChoice, batch_size: Option<usize>, images: usize) -> Result<BenchResult> {
    let t0 = Instant::now();
    let (m, notice) = Backbone::load(model, batch_size, device)?;
    let load_s = t0.elapsed().as_secs_f64();
    if let Some(n) = notice {
        log::info!("{n}");
    }
    let Some((h, w)) = m.input_size() else { return Err(Error::refused("not an image model")) };
    check_input_size(model, h, w)?;
    let b = m.batch_size();
    let tensors: Vec<ImageTensor> = (0..b)
        .map(|i| ImageTensor {
            data: (0..3 * h * w).map(|j| ((i * 7919 + j) % 255) as f32 / 64.0 - 2.0).collect(),
            height: h,
            width: w,
        })
        .collect();
    let refs: Vec<&ImageTensor> = tensors.iter().collect();
    let t1 = Instant::now();
    m.run(&refs)?; // warm-up (kernel compilation on CUDA)
    let first_batch_s = t1.elapsed().as_secs_f64();
    let batches = images.div_ceil(b).max(1);
    let t = Instant::now();
    for _ in 0..batches {
        m.run(&refs)?;
    }
    let secs = t.elapsed().as_secs_f64();
    Ok(BenchResult {
        device: m.device().to_owned(),
        batch_size: b,
        load_s,
        first_batch_s,
        images_per_s: (batches * b) as f64 / secs,
        plan_ops: m.plan_ops(),
    })
}
