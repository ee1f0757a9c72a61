//! Field-clinic batch mode: classify every photo in a folder and keep a re-runnable record.
//!
//! A [`BatchRunner`] takes a loaded [`Classifier`], an input folder and an output folder. Each
//! [`BatchRunner::run_once`] (one-shot runs) or [`BatchRunner::poll`] (watch mode, one polling
//! step) call:
//!
//! 1. lists the images in the input folder ([`scan::scan_dir`]: known extensions, any case,
//!    not recursive, sorted by name);
//! 2. computes each file's SHA-256 and skips the files whose name **and** content were already
//!    processed with the same bundle (the record of earlier runs is `OUT_DIR/results.jsonl`);
//! 3. classifies the others; a file that cannot be read or decoded becomes a row with status
//!    `error` and the one-line message, and processing continues;
//! 4. rewrites `results.jsonl`, `results.csv` and `report.html` atomically (temporary file,
//!    then rename: [`state::write_atomic`]).
//!
//! Thumbnails for the report are cached in `OUT_DIR/thumbs/<sha256>.jpg`.
//!
//! Everything read is untrusted: image files are read with [`read_image_file`] (regular files
//! within the decode limits, checked before reading), the rows read back from `results.jsonl`
//! are checked by [`state::validate_row`], thumbnail paths are made only from a
//! [`state::is_sha256_hex`] digest, and the CSV and HTML writers neutralise and escape every
//! text.
//!
//! See `docs/batch.md` for the command line, the columns and the re-run rules.

pub mod csv_out;
pub mod html;
pub mod scan;
pub mod state;
pub mod thumb;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::bundle::{BackboneKind, Bundle, Task};
use crate::classify::{Classifier, ClassifyReport, HeadResult, image_digest};
use crate::error::{Error, ErrorKind, Result};
use crate::preprocess::{DecodeLimits, PreprocessConfig, read_image_file};
use scan::{ScanEntry, StabilityTracker};

/// The per-image CSV in the output folder.
pub const RESULTS_CSV: &str = "results.csv";
/// The per-image JSON lines in the output folder (also the state read back by a re-run).
pub const RESULTS_JSONL: &str = "results.jsonl";
/// The self-contained HTML report in the output folder.
pub const REPORT_HTML: &str = "report.html";
/// The thumbnail cache folder inside the output folder.
pub const THUMBS_DIR: &str = "thumbs";

/// Whether an image produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    /// Classified.
    Ok,
    /// Could not be read, decoded or classified; see [`BatchRow::error`].
    Error,
}

impl RowStatus {
    /// `ok` or `error`, as written in the outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Ok => "ok",
            RowStatus::Error => "error",
        }
    }
}

/// A label with its probability (owned, so that rows outlive the classifier).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelProb {
    /// Class label.
    pub label: String,
    /// Probability.
    pub probability: f32,
}

/// One head's result, reduced to what the CSV and the HTML show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadSummary {
    /// Head (task) name.
    pub name: String,
    /// Binary or multiclass.
    pub task: Task,
    /// Binary heads with a threshold: the decided label; otherwise the top-1 label.
    pub label: String,
    /// Binary heads with a threshold: the decision score P(class 1); otherwise the top-1
    /// probability.
    pub score: f32,
    /// Binary heads: the operating threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Binary heads: `score >= threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive: Option<bool>,
    /// The top-k labels, highest first.
    pub top_k: Vec<LabelProb>,
}

impl HeadSummary {
    /// Summarises a classifier head result.
    pub fn from_head(h: &HeadResult<'_>) -> HeadSummary {
        let top_k: Vec<LabelProb> =
            h.top_k.iter().map(|r| LabelProb { label: r.label.to_owned(), probability: r.probability }).collect();
        let (label, score, threshold, positive) = match &h.decision {
            Some(d) => (d.label.to_owned(), d.score, Some(d.threshold), Some(d.positive)),
            None => match top_k.first() {
                Some(t) => (t.label.clone(), t.probability, None, None),
                None => (String::new(), 0.0, None, None),
            },
        };
        HeadSummary { name: h.name.to_owned(), task: h.task, label, score, threshold, positive, top_k }
    }

    /// The top-k list as `label:0.6120; label:0.2000` (4 decimals), the CSV's `<head>_top_k`.
    pub fn top_k_text(&self) -> String {
        self.top_k.iter().map(|t| format!("{}:{:.4}", t.label, t.probability)).collect::<Vec<_>>().join("; ")
    }
}

/// One image's line in `results.jsonl` (and row in the CSV, card in the HTML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    /// File name inside the input folder: the row's key.
    pub file: String,
    /// SHA-256 of the file's bytes (empty if the file could not be read).
    pub sha256: String,
    /// `ok` or `error`.
    pub status: RowStatus,
    /// The one-line error message of an `error` row.
    #[serde(default)]
    pub error: Option<String>,
    /// The error's kind ([`ErrorKind::as_str`]) of an `error` row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// Bundle name and version that produced the row.
    #[serde(default)]
    pub bundle: String,
    /// [`state::bundle_fingerprint`] of that bundle: rows from another bundle are redone.
    #[serde(default)]
    pub bundle_fingerprint: String,
    /// When the row was made (RFC 3339, UTC).
    #[serde(default)]
    pub processed_at: String,
    /// Per-head summaries (empty for an `error` row).
    #[serde(default)]
    pub heads: Vec<HeadSummary>,
    /// Human-readable warnings (image quality, …) for the person reviewing the result.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Why the result cannot be assessed ("cannot assess"), when it cannot.
    #[serde(default)]
    pub abstain: Option<String>,
    /// Total time for this image in milliseconds (`ok` rows).
    #[serde(default)]
    pub total_ms: Option<f64>,
    /// The full report exactly as `panderm classify --json` prints it (`ok` rows).
    #[serde(default)]
    pub report: Option<serde_json::Value>,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl BatchRow {
    /// The row for a classified image. **The single place** where a [`ClassifyReport`] becomes
    /// a row: the CSV, the JSONL and the HTML all read the row.
    pub fn from_report(file: &str, sha256: &str, bundle_fingerprint: &str, report: &ClassifyReport<'_>) -> BatchRow {
        let warnings = report.quality.warnings();
        let abstain = report.cannot_assess.as_ref().map(|c| c.message.clone());
        BatchRow {
            file: file.to_owned(),
            sha256: sha256.to_owned(),
            status: RowStatus::Ok,
            error: None,
            error_kind: None,
            bundle: report.bundle.to_owned(),
            bundle_fingerprint: bundle_fingerprint.to_owned(),
            processed_at: now_rfc3339(),
            heads: report.heads.iter().map(HeadSummary::from_head).collect(),
            warnings,
            abstain,
            total_ms: Some(report.timings.total_ms),
            // A report is plain data (strings, numbers, lists): converting it cannot fail.
            report: serde_json::to_value(report).ok(),
        }
    }

    /// Whether the row's report is "cannot assess (model error)".
    pub fn is_model_error(&self) -> bool {
        self.report.as_ref().and_then(|r| r.get("status")).is_some_and(|s| s == "model-error")
    }

    /// The row for an image that could not be processed.
    pub fn from_error(file: &str, sha256: &str, bundle: &str, bundle_fingerprint: &str, error: &Error) -> BatchRow {
        BatchRow {
            file: file.to_owned(),
            sha256: sha256.to_owned(),
            status: RowStatus::Error,
            error: Some(error.message().to_owned()),
            error_kind: Some(error.kind().as_str().to_owned()),
            bundle: bundle.to_owned(),
            bundle_fingerprint: bundle_fingerprint.to_owned(),
            processed_at: now_rfc3339(),
            heads: Vec::new(),
            warnings: Vec::new(),
            abstain: None,
            total_ms: None,
            report: None,
        }
    }
}

/// Receives progress while a run processes files (the CLI draws a progress bar). Every method
/// has an empty default; `()` ignores everything.
pub trait Progress {
    /// A run is about to look at `total` files.
    fn start(&mut self, _total: usize) {}
    /// One file is done (processed, or unchanged and skipped).
    fn advance(&mut self, _file: &str) {}
    /// The run is done.
    fn finish(&mut self) {}
}

impl Progress for () {}

/// Where a batch reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchConfig {
    /// The folder of photos.
    pub input_dir: PathBuf,
    /// The output folder (created if missing).
    pub out_dir: PathBuf,
    /// Classes reported per head.
    pub top_k: usize,
}

/// What one run (or poll) did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// Rows in the outputs after the run (all runs together).
    pub total: usize,
    /// Images processed by this run (new, changed, or made with another bundle).
    pub new: usize,
    /// `error` rows in the outputs after the run.
    pub failed: usize,
    /// `error` rows made by this run.
    pub failed_new: usize,
    /// Images of this run whose result is "cannot assess (model error)": the model produced
    /// NaN/Inf or outputs that are not probabilities. The bundle should not be used.
    pub model_errors_new: usize,
    /// Images skipped because their name and content were already processed.
    pub unchanged: usize,
    /// Watch mode: images seen but still changing (or seen for the first time).
    pub waiting: usize,
    /// The file names this run processed, in order.
    pub processed: Vec<String>,
    /// The error messages of this run's `error` rows.
    pub errors: Vec<String>,
    /// Whether the three outputs were rewritten.
    pub outputs_written: bool,
}

impl fmt::Display for RunSummary {
    /// `N processed, M new, K failed`: N and K count every row in the outputs, M this run.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} processed, {} new, {} failed", self.total, self.new, self.failed)
    }
}

#[derive(Debug, Clone)]
struct Hashed {
    stamp: (u64, Option<SystemTime>),
    sha256: String,
}

/// Runs a bundle over a folder, remembering results in the output folder between runs.
pub struct BatchRunner<'c> {
    classifier: &'c Classifier,
    config: BatchConfig,
    fingerprint: String,
    bundle_id: String,
    preprocess: PreprocessConfig,
    rows: BTreeMap<String, BatchRow>,
    hashes: HashMap<String, Hashed>,
    tracker: StabilityTracker,
    outputs_written: bool,
    state_warnings: Vec<String>,
}

impl<'c> BatchRunner<'c> {
    /// Checks the input folder, creates the output folder (and checks that it can be written),
    /// and reads the results of earlier runs from `OUT_DIR/results.jsonl`.
    pub fn open(classifier: &'c Classifier, config: BatchConfig) -> Result<BatchRunner<'c>> {
        let input = &config.input_dir;
        match std::fs::metadata(input) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Error::new(ErrorKind::InvalidInput, format!("{}: not a folder", input.display()))),
            Err(e) => return Err(Error::io(input, e)),
        }
        let out = &config.out_dir;
        let thumbs = out.join(THUMBS_DIR);
        std::fs::create_dir_all(&thumbs).map_err(|e| Error::io(&thumbs, e))?;
        state::remove_stale_temporaries(out);
        state::remove_stale_temporaries(&thumbs);
        // Fail now, not after processing every image, if the outputs cannot be written.
        let probe = out.join(format!(".panderm-batch-probe-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(|e| Error::io(&probe, e))?;
        let _ = std::fs::remove_file(&probe);
        let (rows, state_warnings) = state::load_rows(&out.join(RESULTS_JSONL))?;
        let bundle = classifier.bundle();
        let fingerprint = state::bundle_fingerprint(bundle);
        let m = &bundle.manifest.bundle;
        let bundle_id = format!("{} {}", m.name, m.version);
        let preprocess = bundle.manifest.preprocess.to_config();
        Ok(BatchRunner {
            classifier,
            config,
            fingerprint,
            bundle_id,
            preprocess,
            rows,
            hashes: HashMap::new(),
            tracker: StabilityTracker::new(),
            outputs_written: false,
            state_warnings,
        })
    }

    /// Problems met while reading the earlier results (lines that were skipped).
    pub fn state_warnings(&self) -> &[String] {
        &self.state_warnings
    }

    /// The configuration.
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// The current rows, sorted by file name.
    pub fn rows(&self) -> impl Iterator<Item = &BatchRow> {
        self.rows.values()
    }

    /// The loaded bundle's fingerprint ([`state::bundle_fingerprint`]).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// One-shot run: processes every image in the folder that is new or changed (including
    /// files that may still be being written: use [`BatchRunner::poll`] for a folder that is
    /// being filled) and always rewrites the three outputs.
    pub fn run_once(&mut self, progress: &mut dyn Progress) -> Result<RunSummary> {
        let entries = scan::scan_dir(&self.config.input_dir)?;
        self.process(entries, 0, true, progress)
    }

    /// One step of watch mode: lists the folder and processes the new or changed images whose
    /// size and modification time did not change since the previous `poll` (so a file is
    /// processed, at the earliest, on the second poll that sees it). Rewrites the outputs when
    /// something was processed, and on the first call.
    pub fn poll(&mut self, progress: &mut dyn Progress) -> Result<RunSummary> {
        let entries = scan::scan_dir(&self.config.input_dir)?;
        let (ready, waiting) = self.tracker.observe(entries);
        let force = !self.outputs_written;
        self.process(ready, waiting, force, progress)
    }

    fn process(
        &mut self,
        entries: Vec<ScanEntry>,
        waiting: usize,
        force_write: bool,
        progress: &mut dyn Progress,
    ) -> Result<RunSummary> {
        let mut summary = RunSummary { waiting, ..RunSummary::default() };
        progress.start(entries.len());
        for e in &entries {
            match self.process_entry(e) {
                Some(row) => {
                    summary.new += 1;
                    summary.processed.push(e.name.clone());
                    if let Some(err) = &row.error {
                        summary.failed_new += 1;
                        summary.errors.push(err.clone());
                    }
                    if row.is_model_error() {
                        summary.model_errors_new += 1;
                        let why = row.abstain.as_deref().unwrap_or("model error");
                        summary.errors.push(format!("{}: {why}", e.name));
                    }
                    self.rows.insert(e.name.clone(), row);
                }
                None => summary.unchanged += 1,
            }
            progress.advance(&e.name);
        }
        progress.finish();
        if summary.new > 0 || force_write {
            self.write_outputs(summary.new)?;
            self.outputs_written = true;
            summary.outputs_written = true;
        }
        summary.total = self.rows.len();
        summary.failed = self.rows.values().filter(|r| r.status == RowStatus::Error).count();
        Ok(summary)
    }

    fn limits(&self) -> DecodeLimits {
        self.preprocess.limits
    }

    /// Reads a file with [`read_image_file`] (a regular file within the decode limits, checked
    /// before reading) and hashes it, remembering the digest for its size and modification time.
    fn read_and_hash(&mut self, e: &ScanEntry) -> Result<(String, Vec<u8>)> {
        let bytes = read_image_file(&e.path, self.limits())?;
        let sha256 = image_digest(&e.path, &bytes)?;
        self.hashes.insert(e.name.clone(), Hashed { stamp: e.stamp(), sha256: sha256.clone() });
        Ok((sha256, bytes))
    }

    /// SHA-256 of a file, reusing the last digest while its size and modification time are
    /// unchanged (watch mode polls would otherwise hash the whole folder every time). When the
    /// file had to be read, its bytes come back too, so that classifying it reads it only once.
    fn hash(&mut self, e: &ScanEntry) -> Result<(String, Option<Vec<u8>>)> {
        if let Some(h) = self.hashes.get(&e.name)
            && h.stamp == e.stamp()
            && e.modified.is_some()
        {
            return Ok((h.sha256.clone(), None));
        }
        let (sha256, bytes) = self.read_and_hash(e)?;
        Ok((sha256, Some(bytes)))
    }

    /// `None` when the file was already processed (same name, content and bundle).
    fn process_entry(&mut self, e: &ScanEntry) -> Option<BatchRow> {
        let error_row = |r: &Self, sha256: &str, err: &Error| {
            BatchRow::from_error(&e.name, sha256, &r.bundle_id, &r.fingerprint, err)
        };
        let (sha256, bytes) = match self.hash(e) {
            Ok(s) => s,
            Err(err) => return Some(error_row(self, "", &err)),
        };
        if let Some(old) = self.rows.get(&e.name)
            && old.sha256 == sha256
            && old.bundle_fingerprint == self.fingerprint
        {
            if old.status == RowStatus::Ok && self.thumb_path(&sha256).is_some_and(|p| !p.exists()) {
                // A deleted thumbnail is made again, from the bytes whose digest names it.
                let bytes = bytes.or_else(|| read_image_file(&e.path, self.limits()).ok());
                if let Some(bytes) = bytes
                    && image_digest(&e.path, &bytes).is_ok_and(|d| d == sha256)
                {
                    self.write_thumbnail(&bytes, &e.path, &sha256);
                }
            }
            return None;
        }
        // The bytes that are classified are the bytes that are hashed (read again when the
        // cached digest was reused: the file may have changed under an unchanged stamp).
        let (sha256, bytes) = match bytes {
            Some(bytes) => (sha256, bytes),
            None => match self.read_and_hash(e) {
                Ok(read) => read,
                Err(err) => return Some(error_row(self, "", &err)),
            },
        };
        // The thumbnail is made from the same bytes, before they are handed to the classifier.
        let thumbnail = self
            .thumb_path(&sha256)
            .filter(|p| !p.exists())
            .and_then(|_| thumb::jpeg_thumbnail_bytes(&bytes, &e.path, &self.preprocess).ok());
        let k = self.config.top_k;
        Some(match self.classifier.classify_bytes(&e.path, bytes, sha256.clone(), k) {
            Ok(report) => {
                let row = BatchRow::from_report(&e.name, &report.image_sha256, &self.fingerprint, &report);
                if let (Some(jpeg), Some(path)) = (thumbnail, self.thumb_path(&report.image_sha256)) {
                    let _ = state::write_atomic(&path, &jpeg);
                }
                row
            }
            Err(err) => error_row(self, &sha256, &err),
        })
    }

    /// `OUT_DIR/thumbs/<sha256>.jpg`, only for a digest of 64 lowercase hex digits: no path is
    /// made from any other text (rows read back from `results.jsonl` are untrusted).
    fn thumb_path(&self, sha256: &str) -> Option<PathBuf> {
        state::is_sha256_hex(sha256).then(|| self.config.out_dir.join(THUMBS_DIR).join(format!("{sha256}.jpg")))
    }

    /// Writes the cached thumbnail of `bytes`. Thumbnails are cosmetic: a failure only leaves
    /// "no preview" in the report.
    fn write_thumbnail(&self, bytes: &[u8], file: &Path, sha256: &str) {
        if let Some(path) = self.thumb_path(sha256)
            && let Ok(jpeg) = thumb::jpeg_thumbnail_bytes(bytes, file, &self.preprocess)
        {
            let _ = state::write_atomic(&path, &jpeg);
        }
    }

    /// Head columns for the CSV: the bundle's heads in manifest order, then any other head
    /// that older rows (another bundle) carry.
    fn head_names(&self) -> Vec<String> {
        let m = &self.classifier.bundle().manifest;
        let mut names: Vec<String> = match m.backbone.kind {
            BackboneKind::Classifier => vec![m.backbone.task_name.clone().unwrap_or_else(|| "classifier".into())],
            BackboneKind::Features => m.heads.iter().map(|h| h.name.clone()).collect(),
        };
        for r in self.rows.values() {
            for h in &r.heads {
                if !names.contains(&h.name) {
                    names.push(h.name.clone());
                }
            }
        }
        names
    }

    /// Rewrites `results.jsonl`, `results.csv` and `report.html` (each atomically) and deletes
    /// thumbnails no row refers to any more.
    fn write_outputs(&self, new: usize) -> Result<()> {
        let out = &self.config.out_dir;
        let rows: Vec<&BatchRow> = self.rows.values().collect();
        let mut jsonl = String::new();
        for r in &rows {
            let line = serde_json::to_string(r).map_err(|e| {
                Error::new(ErrorKind::InvalidInput, format!("{}: cannot serialise the result: {e}", r.file))
            })?;
            jsonl.push_str(&line);
            jsonl.push('\n');
        }
        state::write_atomic(&out.join(RESULTS_JSONL), jsonl.as_bytes())?;
        state::write_atomic(&out.join(RESULTS_CSV), csv_out::render(&rows, &self.head_names()).as_bytes())?;

        let mut thumbs = HashMap::new();
        for r in rows.iter().filter(|r| r.status == RowStatus::Ok && !r.sha256.is_empty()) {
            if thumbs.contains_key(&r.sha256) {
                continue;
            }
            if let Some(bytes) = self.thumb_path(&r.sha256).and_then(|p| thumb::read_cached(&p))
                && let Some((width, height)) = thumb::encoded_dims(&bytes)
            {
                let data_uri =
                    format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(&bytes));
                thumbs.insert(r.sha256.clone(), html::Thumb { data_uri, width, height });
            }
        }
        let counts = html::Counts {
            total: rows.len(),
            ok: rows.iter().filter(|r| r.status == RowStatus::Ok).count(),
            failed: rows.iter().filter(|r| r.status == RowStatus::Error).count(),
            abstained: rows.iter().filter(|r| r.abstain.is_some()).count(),
            warned: rows.iter().filter(|r| !r.warnings.is_empty()).count(),
            new,
        };
        let bundle: &Bundle = self.classifier.bundle();
        let ctx = html::ReportContext {
            manifest: &bundle.manifest,
            fingerprint: &self.fingerprint,
            generated_at: now_rfc3339(),
            input_dir: self.config.input_dir.display().to_string(),
            top_k: self.config.top_k,
            counts,
        };
        state::write_atomic(&out.join(REPORT_HTML), html::render(&rows, &thumbs, &ctx).as_bytes())?;

        if let Ok(read) = std::fs::read_dir(out.join(THUMBS_DIR)) {
            for e in read.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let referenced =
                    name.strip_suffix(".jpg").is_some_and(|sha| state::is_sha256_hex(sha) && thumbs.contains_key(sha));
                if !referenced {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }
}
