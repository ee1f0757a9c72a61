//! PanDerm dataset CSVs (as `classification/linear_eval.py` and `run_class_finetuning.py` read
//! them) and the `percent_data` train subset.
//!
//! A PanDerm CSV has one row per image with at least
//!
//! * `image`: a file name or relative path under the image root;
//! * `split`: `train`, `val` or `test` (exactly; pandas compares the raw string);
//! * `label` (integer class `0..K-1`, multiclass) and/or `binary_label` (0/1, binary).
//!
//! Other columns (patient ids, metadata, a leading unnamed index column written by
//! `DataFrame.to_csv`) are ignored. A UTF-8 byte-order mark, quoted fields (with commas or line
//! breaks inside), CRLF line ends and blank lines are handled; blank lines are skipped, as pandas
//! skips them.
//!
//! # Which label column
//!
//! PanDerm picks the column from `--nb_classes`: `binary_label` when it is 2, `label` otherwise.
//! We have no `nb_classes`, so [`LabelChoice::Auto`] (the default) uses `label` when the CSV has
//! it and `binary_label` only when `label` is absent. To reproduce a PanDerm run with
//! `--nb_classes 2` on a CSV that has both columns, pass [`LabelChoice::Binary`].
//!
//! # Image paths
//!
//! PanDerm builds `root_path + image` by string concatenation (so its `--root_path` needs a
//! trailing `/`). We *join* paths instead ([`Path::join`]), which is what users mean: `root =
//! /data/ham` and `image = a.jpg` give `/data/ham/a.jpg` with or without the trailing slash. An
//! absolute `image` is used as is.
//!
//! # Validation
//!
//! [`load`] checks every row before returning and reports all problems in one
//! [`DatasetError::Invalid`], with line numbers as in the file (the header is line 1; a quoted
//! field spanning lines moves the numbers of later rows, as an editor shows them).
//!
//! # `percent_data`
//!
//! [`Dataset::train_subset`] reproduces PanDerm's `Derm_Dataset(train=True, data_percent=P)`:
//! the train rows in CSV order, shuffled by `df.sample(frac=1, random_state=42)`
//! ([`numpy_rng::pandas_sample_order`]), then the first `int(n_train * P)`. Val and test stay in
//! CSV order ([`Dataset::split_indices`]).

pub mod numpy_rng;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The seed PanDerm passes to `DataFrame.sample` for the `percent_data` shuffle.
pub const PERCENT_SEED: u32 = 42;

/// At most this many problems are listed in a [`BadCsv`] message; the rest are counted.
pub const MAX_LISTED_PROBLEMS: usize = 50;

/// The largest class label accepted. Labels index the classifier's output; a larger value is
/// almost certainly a wrong column, and `num_classes = max + 1` would make downstream
/// allocations explode.
pub const MAX_LABEL: u64 = 65_535;

/// The `split` column's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// `train`.
    Train,
    /// `val`.
    Val,
    /// `test`.
    Test,
}

impl Split {
    /// The value as written in the CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// Parses a CSV value. Exact and case-sensitive, like PanDerm's `df['split'] == 'train'`
    /// (which silently drops `Train` or ` train`; we reject them instead).
    pub fn parse(value: &str) -> Option<Split> {
        match value {
            "train" => Some(Split::Train),
            "val" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Binary (labels from `binary_label`, each 0 or 1) or multiclass (labels from `label`,
/// integers `0..K-1`): the runtime's task type, the one a bundle's manifest records.
pub use panderm_edge::bundle::Task;

/// Which label column [`load`] reads (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelChoice {
    /// `label` when present, else `binary_label`.
    #[default]
    Auto,
    /// `binary_label` (PanDerm with `--nb_classes 2`).
    Binary,
    /// `label` (PanDerm with `--nb_classes` other than 2).
    Multiclass,
}

/// Options for [`load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Which label column to read.
    pub label: LabelChoice,
    /// Also check that every image file exists ([`Dataset::image_path`] is a file); without a
    /// root, relative images are checked against the current directory.
    pub check_images: bool,
}

/// One data row of the CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 0-based data row in CSV order (the pandas index after `read_csv`).
    pub index: usize,
    /// The `image` value as written.
    pub image: String,
    /// The class label from the chosen label column.
    pub label: usize,
    /// The row's split.
    pub split: Split,
}

/// A validated PanDerm dataset CSV.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Every data row in CSV order (`rows[i].index == i`).
    pub rows: Vec<Row>,
    /// Binary (`binary_label`) or multiclass (`label`).
    pub task: Task,
    /// The label column read: `label` or `binary_label`.
    pub label_column: String,
    /// `max label + 1` over all rows, at least 2.
    pub num_classes: usize,
    /// SHA-256 (lowercase hex) of the CSV file's bytes.
    pub csv_sha256: String,
    /// The image root given to [`load`].
    pub root: Option<PathBuf>,
}

/// What is wrong with the header or a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file has no header row.
    NoHeader,
    /// A required column is absent (for the label: `label or binary_label`).
    MissingColumn {
        /// The column name.
        column: String,
        /// A header that matches after trimming spaces and ignoring case, if any.
        near_miss: Option<String>,
    },
    /// A header name appears more than once.
    DuplicateColumn(String),
    /// The row has a different number of fields than the header.
    FieldCount {
        /// Fields in the header.
        expected: usize,
        /// Fields in this row.
        found: usize,
    },
    /// A field that is read is not valid UTF-8.
    InvalidUtf8 {
        /// The column name.
        column: String,
    },
    /// The `image` value is empty or blank.
    EmptyImage,
    /// The `split` value is not `train`, `val` or `test`.
    UnknownSplit(String),
    /// The label is empty or not an integer.
    NonIntegerLabel {
        /// The label column.
        column: String,
        /// The value as written.
        value: String,
    },
    /// The label is a negative integer.
    NegativeLabel {
        /// The label column.
        column: String,
        /// The value as written.
        value: String,
    },
    /// The label exceeds [`MAX_LABEL`].
    LabelTooLarge {
        /// The label column.
        column: String,
        /// The value as written.
        value: String,
    },
    /// A `binary_label` other than 0 or 1.
    BinaryLabelOutOfRange(u64),
    /// The image file does not exist (only with [`LoadOptions::check_images`]).
    ImageMissing(PathBuf),
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::NoHeader => f.write_str("no header row (empty file)"),
            ProblemKind::MissingColumn { column, near_miss: None } => write!(f, "missing column `{column}`"),
            ProblemKind::MissingColumn { column, near_miss: Some(near) } => {
                write!(f, "missing column `{column}` (there is {near:?}; names must match exactly)")
            }
            ProblemKind::DuplicateColumn(name) => write!(f, "duplicate column `{name}`"),
            ProblemKind::FieldCount { expected, found } => write!(f, "{found} fields, the header has {expected}"),
            ProblemKind::InvalidUtf8 { column } => write!(f, "`{column}` is not valid UTF-8"),
            ProblemKind::EmptyImage => f.write_str("empty `image`"),
            ProblemKind::UnknownSplit(value) => {
                write!(f, "unknown split {value:?} (expected \"train\", \"val\" or \"test\")")
            }
            ProblemKind::NonIntegerLabel { column, value } => write!(f, "`{column}` {value:?} is not an integer"),
            ProblemKind::NegativeLabel { column, value } => write!(f, "`{column}` {value:?} is negative"),
            ProblemKind::LabelTooLarge { column, value } => {
                write!(f, "`{column}` {value:?} is larger than {MAX_LABEL}")
            }
            ProblemKind::BinaryLabelOutOfRange(value) => write!(f, "`binary_label` {value} is not 0 or 1"),
            ProblemKind::ImageMissing(path) => write!(f, "image file {} not found", path.display()),
        }
    }
}

/// One problem, located by its line in the file (header = line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line where the record starts.
    pub line: u64,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// Every problem found in a CSV. `Display` gives a short first line (`lp.csv: 3 bad rows`) and
/// then one line per problem, at most [`MAX_LISTED_PROBLEMS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCsv {
    /// The file as named to [`load`].
    pub file: String,
    /// All problems, in file order.
    pub problems: Vec<Problem>,
}

impl BadCsv {
    /// Number of distinct data rows (not the header) with at least one problem.
    pub fn bad_rows(&self) -> usize {
        let mut lines: Vec<u64> = self.problems.iter().filter(|p| p.line > 1).map(|p| p.line).collect();
        lines.dedup();
        lines.len()
    }

    /// Whether the header itself has problems.
    pub fn bad_header(&self) -> bool {
        self.problems.iter().any(|p| p.line == 1)
    }
}

impl fmt::Display for BadCsv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.bad_rows();
        let rows_text = format!("{rows} bad row{}", if rows == 1 { "" } else { "s" });
        match (self.bad_header(), rows) {
            (true, 0) => write!(f, "{}: bad header", self.file)?,
            (true, _) => write!(f, "{}: bad header and {rows_text}", self.file)?,
            (false, _) => write!(f, "{}: {rows_text}", self.file)?,
        }
        for problem in self.problems.iter().take(MAX_LISTED_PROBLEMS) {
            if problem.line == 1 {
                write!(f, "\n  header: {}", problem.kind)?;
            } else {
                write!(f, "\n  line {}: {}", problem.line, problem.kind)?;
            }
        }
        let rest = self.problems.len().saturating_sub(MAX_LISTED_PROBLEMS);
        if rest > 0 {
            write!(f, "\n  ... and {rest} more problem{}", if rest == 1 { "" } else { "s" })?;
        }
        Ok(())
    }
}

/// Errors from loading a dataset CSV or selecting a subset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The CSV could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CSV reader failed (malformed beyond the per-row checks).
    #[error("{file}: {source}")]
    Csv {
        /// The file as named.
        file: String,
        /// The reader's error.
        #[source]
        source: csv::Error,
    },
    /// The header or rows are invalid; every problem is listed.
    #[error("{0}")]
    Invalid(BadCsv),
    /// `percent_data` outside (0, 1].
    #[error("percent_data must be in (0, 1], got {0}")]
    Percent(f64),
}

/// SHA-256 (lowercase hex) of a file's bytes.
pub fn csv_digest(csv: &Path) -> Result<String, DatasetError> {
    let bytes = std::fs::read(csv).map_err(|source| DatasetError::Io { path: csv.to_path_buf(), source })?;
    Ok(panderm_edge::fsutil::sha256_hex(&bytes))
}

/// The number of rows PanDerm keeps: Python's `int(n * percent)` (float product, truncated).
/// For example 100 rows at 0.29 keep 28, because `100 * 0.29 == 28.999999999999996`.
pub fn percent_count(n: usize, percent: f64) -> usize {
    // Exact like Python for n < 2^53; `as` truncates toward zero and saturates.
    (n as f64 * percent) as usize
}

/// Loads and validates a PanDerm CSV. `root` is the image root (see the module docs); the file's
/// SHA-256 is recorded in [`Dataset::csv_sha256`].
pub fn load(csv: &Path, root: Option<&Path>, opts: &LoadOptions) -> Result<Dataset, DatasetError> {
    let bytes = std::fs::read(csv).map_err(|source| DatasetError::Io { path: csv.to_path_buf(), source })?;
    load_from_bytes(&csv.display().to_string(), &bytes, root, opts)
}

/// [`load`] on CSV bytes already in memory; `name` is used in error messages.
pub fn load_from_bytes(
    name: &str,
    bytes: &[u8],
    root: Option<&Path>,
    opts: &LoadOptions,
) -> Result<Dataset, DatasetError> {
    let csv_sha256 = panderm_edge::fsutil::sha256_hex(bytes);
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
    let csv_error = |source| DatasetError::Csv { file: name.to_string(), source };
    let invalid = |problems| DatasetError::Invalid(BadCsv { file: name.to_string(), problems });

    let mut record = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut record).map_err(csv_error)? {
        return Err(invalid(vec![Problem { line: 1, kind: ProblemKind::NoHeader }]));
    }
    let header: Vec<String> = record.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect();
    // csv's `Position::line` does not count line breaks inside quoted fields or blank lines;
    // count line ends up to each record's start instead so that numbers match an editor's.
    let mut lines = LineCounter::new(body);
    let header_line = lines.line_at(record.position().map_or(0, |p| p.byte()));
    let (columns, mut problems) = resolve_columns(&header, opts.label, header_line);

    let mut rows = Vec::new();
    let mut max_label = 0usize;
    let mut data_rows = 0usize;
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        let line = lines.line_at(record.position().map_or(0, |p| p.byte()));
        let before = problems.len();
        let mut report = |kind| problems.push(Problem { line, kind });
        if record.len() != header.len() {
            report(ProblemKind::FieldCount { expected: header.len(), found: record.len() });
        }
        let field = |col: Option<usize>, report: &mut dyn FnMut(ProblemKind)| -> Option<String> {
            let col = col?;
            let raw = record.get(col)?;
            match std::str::from_utf8(raw) {
                Ok(text) => Some(text.to_string()),
                Err(_) => {
                    report(ProblemKind::InvalidUtf8 { column: header[col].clone() });
                    None
                }
            }
        };
        let image = field(columns.image, &mut report);
        let split = field(columns.split, &mut report);
        let label = field(columns.label, &mut report);

        let image = image.filter(|image| {
            let ok = !image.trim().is_empty();
            if !ok {
                report(ProblemKind::EmptyImage);
            }
            ok
        });
        let split = split.and_then(|value| {
            let split = Split::parse(&value);
            if split.is_none() {
                report(ProblemKind::UnknownSplit(value));
            }
            split
        });
        let label = label.and_then(|value| match check_label(&value, &columns.label_name, columns.task) {
            Ok(label) => Some(label),
            Err(kind) => {
                report(kind);
                None
            }
        });
        if opts.check_images
            && let Some(image) = &image
        {
            let path = join_image(root, image);
            if !path.is_file() {
                report(ProblemKind::ImageMissing(path));
            }
        }
        let index = data_rows;
        data_rows += 1;
        if let (Some(image), Some(split), Some(label), true) = (image, split, label, problems.len() == before) {
            max_label = max_label.max(label);
            rows.push(Row { index, image, label, split });
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok(Dataset {
        rows,
        task: columns.task,
        label_column: columns.label_name,
        num_classes: (max_label + 1).max(2),
        csv_sha256,
        root: root.map(Path::to_path_buf),
    })
}

/// Maps increasing byte offsets to 1-based line numbers. A line ends at `\n`, `\r\n` or a lone
/// `\r`, the terminators the CSV reader accepts.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter { bytes, offset: 0, line: 1 }
    }

    /// The line of the record the CSV reader says starts at byte `start`; `start` must not
    /// decrease between calls. The reader's record positions point just past the previous
    /// record's first terminator byte, so line ends and blank lines are skipped first.
    fn line_at(&mut self, start: u64) -> u64 {
        let mut target = usize::try_from(start).unwrap_or(usize::MAX).min(self.bytes.len());
        while matches!(self.bytes.get(target), Some(b'\r' | b'\n')) {
            target += 1;
        }
        while self.offset < target {
            match self.bytes[self.offset] {
                b'\n' => self.line += 1,
                b'\r' if self.bytes.get(self.offset + 1) != Some(&b'\n') => self.line += 1,
                _ => {}
            }
            self.offset += 1;
        }
        self.line
    }
}

/// Column positions resolved from the header.
struct Columns {
    image: Option<usize>,
    split: Option<usize>,
    label: Option<usize>,
    label_name: String,
    task: Task,
}

fn resolve_columns(header: &[String], choice: LabelChoice, line: u64) -> (Columns, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut reported: Vec<&str> = Vec::new();
    for (i, name) in header.iter().enumerate() {
        if first.contains_key(name.as_str()) {
            if !name.is_empty() && !reported.contains(&name.as_str()) {
                reported.push(name);
                problems.push(Problem { line, kind: ProblemKind::DuplicateColumn(name.clone()) });
            }
        } else {
            first.insert(name, i);
        }
    }
    let require = |name: &str, problems: &mut Vec<Problem>| -> Option<usize> {
        let found = first.get(name).copied();
        if found.is_none() {
            let near_miss = header.iter().find(|h| h.trim().eq_ignore_ascii_case(name)).cloned();
            problems.push(Problem { line, kind: ProblemKind::MissingColumn { column: name.to_string(), near_miss } });
        }
        found
    };
    let image = require("image", &mut problems);
    let split = require("split", &mut problems);
    let (label, label_name, task) = match choice {
        LabelChoice::Binary => (require("binary_label", &mut problems), "binary_label", Task::Binary),
        LabelChoice::Multiclass => (require("label", &mut problems), "label", Task::Multiclass),
        LabelChoice::Auto => match (first.get("label"), first.get("binary_label")) {
            (Some(&i), _) => (Some(i), "label", Task::Multiclass),
            (None, Some(&i)) => (Some(i), "binary_label", Task::Binary),
            (None, None) => {
                problems.push(Problem {
                    line,
                    kind: ProblemKind::MissingColumn { column: "label or binary_label".to_string(), near_miss: None },
                });
                (None, "label", Task::Multiclass)
            }
        },
    };
    (Columns { image, split, label, label_name: label_name.to_string(), task }, problems)
}

/// Parses a label as pandas would read an integer column: surrounding spaces allowed, an
/// optional sign, and an integral float spelling such as `2.0` (a column pandas reads as float
/// and PanDerm casts to `long`) accepted as 2.
fn check_label(value: &str, column: &str, task: Task) -> Result<usize, ProblemKind> {
    let text = value.trim();
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let integral =
        !int_part.is_empty() && int_part.bytes().all(|b| b.is_ascii_digit()) && frac_part.bytes().all(|b| b == b'0');
    let non_integer = || ProblemKind::NonIntegerLabel { column: column.to_string(), value: value.to_string() };
    if !integral {
        return Err(non_integer());
    }
    let digits = int_part.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0); // 0, -0, 00, 0.0
    }
    if negative {
        return Err(ProblemKind::NegativeLabel { column: column.to_string(), value: value.to_string() });
    }
    let too_large = || ProblemKind::LabelTooLarge { column: column.to_string(), value: value.to_string() };
    let label: u64 = digits.parse().map_err(|_| too_large())?;
    if task == Task::Binary && label > 1 {
        return Err(ProblemKind::BinaryLabelOutOfRange(label));
    }
    if label > MAX_LABEL {
        return Err(too_large());
    }
    usize::try_from(label).map_err(|_| too_large())
}

fn join_image(root: Option<&Path>, image: &str) -> PathBuf {
    match root {
        Some(root) => root.join(image),
        None => PathBuf::from(image),
    }
}

impl Dataset {
    /// Row indices of one split, in CSV order (PanDerm's val/test order).
    pub fn split_indices(&self, s: Split) -> Vec<usize> {
        self.rows.iter().filter(|r| r.split == s).map(|r| r.index).collect()
    }

    /// The image file of a row: the root joined with `image` (an absolute `image` as is; no root:
    /// `image` relative to the current directory). See the module docs for how this differs
    /// from PanDerm's string concatenation.
    pub fn image_path(&self, row: &Row) -> PathBuf {
        join_image(self.root.as_deref(), &row.image)
    }

    /// PanDerm's `percent_data` train subset as CSV row indices, in PanDerm's order: the train
    /// rows in CSV order, reordered by `df.sample(frac=1, random_state=42)`, then the first
    /// [`percent_count`]`(n_train, percent)`. Subsets for different percentages are nested
    /// prefixes of one another. The result is empty when `n_train * percent < 1`.
    ///
    /// Errors with [`DatasetError::Percent`] unless `0 < percent <= 1`.
    pub fn train_subset(&self, percent: f64) -> Result<Vec<usize>, DatasetError> {
        if !(percent > 0.0 && percent <= 1.0) {
            return Err(DatasetError::Percent(percent));
        }
        let train = self.split_indices(Split::Train);
        let keep = percent_count(train.len(), percent);
        let order = numpy_rng::pandas_sample_order(PERCENT_SEED, train.len());
        Ok(order.into_iter().take(keep).map(|i| train[i]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse(text: &str) -> Result<Dataset, DatasetError> {
        load_from_bytes("t.csv", text.as_bytes(), None, &LoadOptions::default())
    }

    fn problems(text: &str, opts: &LoadOptions, root: Option<&Path>) -> Vec<(u64, ProblemKind)> {
        match load_from_bytes("t.csv", text.as_bytes(), root, opts) {
            Err(DatasetError::Invalid(bad)) => bad.problems.into_iter().map(|p| (p.line, p.kind)).collect(),
            other => panic!("expected Invalid for {text:?}, got {other:?}"),
        }
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    /// A fresh, empty directory under the system temp dir.
    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("panderm-dataset-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    /// Expected `(line, problem)` pairs.
    type Expected = Vec<(u64, ProblemKind)>;

    #[test]
    fn each_bad_row_kind_is_reported() {
        use ProblemKind as K;
        let label = |v: &str| K::NonIntegerLabel { column: s("label"), value: s(v) };
        let cases: Vec<(&str, &str, Expected)> = vec![
            ("empty file", "", vec![(1, K::NoHeader)]),
            (
                "missing image",
                "img,label,split\na.jpg,0,train\n",
                vec![(1, K::MissingColumn { column: s("image"), near_miss: None })],
            ),
            (
                "missing split, near miss",
                "image,label, Split\na.jpg,0,train\n",
                vec![(1, K::MissingColumn { column: s("split"), near_miss: Some(s(" Split")) })],
            ),
            (
                "both label columns missing",
                "image,split,diag\na.jpg,train,0\n",
                vec![(1, K::MissingColumn { column: s("label or binary_label"), near_miss: None })],
            ),
            (
                "duplicate header",
                "image,label,split,label\na.jpg,0,train,1\n",
                vec![(1, K::DuplicateColumn(s("label")))],
            ),
            ("empty image", "image,label,split\n,0,train\n  ,1,val\n", vec![(2, K::EmptyImage), (3, K::EmptyImage)]),
            (
                "unknown split",
                "image,label,split\na,0,Train\nb,0, val\nc,0,\n",
                vec![(2, K::UnknownSplit(s("Train"))), (3, K::UnknownSplit(s(" val"))), (4, K::UnknownSplit(s("")))],
            ),
            (
                "non-integer label",
                "image,label,split\na,x,train\nb,1.5,train\nc,,train\nd,1e3,test\n",
                vec![(2, label("x")), (3, label("1.5")), (4, label("")), (5, label("1e3"))],
            ),
            (
                "negative label",
                "image,label,split\na,-1,train\n",
                vec![(2, K::NegativeLabel { column: s("label"), value: s("-1") })],
            ),
            (
                "label too large",
                "image,label,split\na,70000,train\nb,99999999999999999999999,val\n",
                vec![
                    (2, K::LabelTooLarge { column: s("label"), value: s("70000") }),
                    (3, K::LabelTooLarge { column: s("label"), value: s("99999999999999999999999") }),
                ],
            ),
            (
                "binary label not 0/1",
                "image,binary_label,split\na,2,train\nb,1,val\n",
                vec![(2, K::BinaryLabelOutOfRange(2))],
            ),
            (
                "field count",
                "image,label,split\na,0\nb,0,train,extra\n",
                vec![(2, K::FieldCount { expected: 3, found: 2 }), (3, K::FieldCount { expected: 3, found: 4 })],
            ),
        ];
        for (what, text, expected) in cases {
            assert_eq!(problems(text, &LoadOptions::default(), None), expected, "{what}");
        }
    }

    #[test]
    fn invalid_utf8_is_reported_only_for_read_columns() {
        let bytes = b"image,label,split,note\n\xff.jpg,0,train,ok\nb.jpg,0,train,\xff\n";
        match load_from_bytes("t.csv", bytes, None, &LoadOptions::default()) {
            Err(DatasetError::Invalid(bad)) => assert_eq!(
                bad.problems,
                vec![Problem { line: 2, kind: ProblemKind::InvalidUtf8 { column: s("image") } }]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_images_are_checked_only_on_request() {
        let dir = temp_dir("images");
        std::fs::write(dir.join("a.jpg"), b"x").expect("write");
        let text = "image,label,split\na.jpg,0,train\nb.jpg,1,test\n";
        let opts = LoadOptions { check_images: true, ..LoadOptions::default() };
        assert_eq!(problems(text, &opts, Some(&dir)), vec![(3, ProblemKind::ImageMissing(dir.join("b.jpg")))]);
        assert!(load_from_bytes("t.csv", text.as_bytes(), Some(&dir), &LoadOptions::default()).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn all_problems_are_reported_together() {
        let dir = temp_dir("all");
        let text = "image,binary_label,split,split\n\
                    ok.jpg,0,train,x\n\
                    ,0,train,x\n\
                    b.jpg,0,training,x\n\
                    c.jpg,yes,val,x\n\
                    d.jpg,-3,test,x\n\
                    e.jpg,5,test,x\n\
                    f.jpg,1,test\n\
                    ,7,nope,x\n";
        std::fs::write(dir.join("ok.jpg"), b"x").expect("write");
        let opts = LoadOptions { check_images: true, label: LabelChoice::Auto };
        let err = load_from_bytes("lp.csv", text.as_bytes(), Some(&dir), &opts).expect_err("invalid");
        let DatasetError::Invalid(bad) = &err else { panic!("{err:?}") };
        let lines: Vec<u64> = bad.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 9]);
        assert_eq!(bad.bad_rows(), 7);
        let message = err.to_string();
        let mut out = message.lines();
        assert_eq!(out.next(), Some("lp.csv: bad header and 7 bad rows"));
        assert_eq!(out.next(), Some("  header: duplicate column `split`"));
        assert_eq!(out.next(), Some("  line 3: empty `image`"));
        assert_eq!(out.next(), Some(r#"  line 4: unknown split "training" (expected "train", "val" or "test")"#));
        assert_eq!(message.lines().count(), 16);
        assert!(message.contains("line 7: `binary_label` 5 is not 0 or 1"), "{message}");
        assert!(message.contains("line 8: 3 fields, the header has 4"), "{message}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn message_listing_is_capped() {
        let mut text = s("image,label,split\n");
        for i in 0..60 {
            text.push_str(&format!("img{i},0,bad\n"));
        }
        let message = parse(&text).expect_err("invalid").to_string();
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines[0], "t.csv: 60 bad rows");
        assert_eq!(lines.len(), 1 + MAX_LISTED_PROBLEMS + 1);
        assert_eq!(lines[MAX_LISTED_PROBLEMS + 1], "  ... and 10 more problems");
        assert!(lines[1].starts_with("  line 2: unknown split \"bad\""));
    }

    #[test]
    fn bom_crlf_quotes_and_extra_columns() {
        let text = "\u{feff},image,label,split,patient\r\n\
                    0,\"a,b.jpg\",2,train,\"P \"\"1\"\"\"\r\n\
                    1,\"multi\r\nline.jpg\",0,val,P2\r\n\
                    \r\n\
                    2, c.jpg , 1 ,test,P3\r\n";
        let ds = parse(text).expect("valid");
        assert_eq!(ds.task, Task::Multiclass);
        assert_eq!(ds.label_column, "label");
        assert_eq!(ds.num_classes, 3);
        let images: Vec<&str> = ds.rows.iter().map(|r| r.image.as_str()).collect();
        assert_eq!(images, ["a,b.jpg", "multi\r\nline.jpg", " c.jpg "]);
        assert_eq!(ds.rows.iter().map(|r| r.label).collect::<Vec<_>>(), [2, 0, 1]);
        assert_eq!(ds.rows.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(ds.csv_sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())));
        // A quoted line break moves later line numbers; a blank line is skipped but counted.
        let bad = "image,label,split\r\n\"x\ny\",0,train\r\n\r\nz,0,tst\r\n";
        assert_eq!(problems(bad, &LoadOptions::default(), None), vec![(5, ProblemKind::UnknownSplit(s("tst")))]);
        let lf = "\n\nimage,label,split\n\"x\n\ny\",0,tst\n\n\nz,0,tst\n";
        let tst = ProblemKind::UnknownSplit(s("tst"));
        assert_eq!(problems(lf, &LoadOptions::default(), None), vec![(4, tst.clone()), (9, tst.clone())]);
        let cr = "image,label,split\r\"x\ry\",0,train\rz,0,tst\r";
        assert_eq!(problems(cr, &LoadOptions::default(), None), vec![(4, tst)]);
    }

    #[test]
    fn label_spellings() {
        let ds = parse("image,label,split\na,+3,train\nb,2.0,train\nc,0.,val\nd,-0,test\ne,007,test\n").expect("valid");
        assert_eq!(ds.rows.iter().map(|r| r.label).collect::<Vec<_>>(), [3, 2, 0, 0, 7]);
        assert_eq!(ds.num_classes, 8);
    }

    #[test]
    fn label_column_choice() {
        let both = "image,label,binary_label,split\na,4,1,train\nb,0,0,test\n";
        let auto = parse(both).expect("valid");
        assert_eq!((auto.task, auto.label_column.as_str(), auto.num_classes), (Task::Multiclass, "label", 5));
        let opts = LoadOptions { label: LabelChoice::Binary, ..LoadOptions::default() };
        let binary = load_from_bytes("t.csv", both.as_bytes(), None, &opts).expect("valid");
        assert_eq!((binary.task, binary.label_column.as_str(), binary.num_classes), (Task::Binary, "binary_label", 2));
        assert_eq!(binary.rows[0].label, 1);

        let only_binary = "image,binary_label,split\na,0,train\nb,0,test\n";
        let auto = parse(only_binary).expect("valid");
        assert_eq!((auto.task, auto.num_classes), (Task::Binary, 2), "num_classes is at least 2");
        let opts = LoadOptions { label: LabelChoice::Multiclass, ..LoadOptions::default() };
        assert_eq!(
            problems(only_binary, &opts, None),
            vec![(1, ProblemKind::MissingColumn { column: s("label"), near_miss: None })]
        );
        let multi = parse("image,label,split\na,0,train\n").expect("valid");
        assert_eq!((multi.task, multi.num_classes), (Task::Multiclass, 2));
    }

    #[test]
    fn header_only_is_an_empty_dataset() {
        let ds = parse("image,label,split\n").expect("valid");
        assert!(ds.rows.is_empty());
        assert_eq!(ds.train_subset(1.0).expect("subset"), Vec::<usize>::new());
    }

    #[test]
    fn image_paths_are_joined() {
        let text = "image,label,split\na.jpg,0,train\nsub/b.jpg,1,val\n/abs/c.jpg,0,test\n";
        let root = Path::new("/data/ham");
        let ds = load_from_bytes("t.csv", text.as_bytes(), Some(root), &LoadOptions::default()).expect("valid");
        let paths: Vec<PathBuf> = ds.rows.iter().map(|r| ds.image_path(r)).collect();
        assert_eq!(paths, [PathBuf::from("/data/ham/a.jpg"), "/data/ham/sub/b.jpg".into(), "/abs/c.jpg".into()]);
        let no_root = parse(text).expect("valid");
        assert_eq!(no_root.image_path(&no_root.rows[0]), PathBuf::from("a.jpg"));
    }

    #[test]
    fn repo_fixtures_load_with_expected_splits() {
        let binary = load(&fixture("../tests/fixtures/lp_binary.csv"), None, &LoadOptions::default()).expect("binary");
        assert_eq!((binary.task, binary.label_column.as_str(), binary.num_classes), (Task::Binary, "binary_label", 2));
        let sizes = |d: &Dataset| [Split::Train, Split::Val, Split::Test].map(|s| d.split_indices(s).len());
        assert_eq!(sizes(&binary), [240, 60, 120]);
        let multi =
            load(&fixture("../tests/fixtures/lp_multiclass.csv"), None, &LoadOptions::default()).expect("multi");
        assert_eq!((multi.task, multi.label_column.as_str()), (Task::Multiclass, "label"));
        assert_eq!(sizes(&multi), [300, 60, 150]);
        let digest = csv_digest(&fixture("../tests/fixtures/lp_multiclass.csv")).expect("digest");
        assert_eq!(digest, multi.csv_sha256);
        let val = multi.split_indices(Split::Val);
        assert!(val.windows(2).all(|w| w[0] < w[1]), "val keeps CSV order");
    }

    fn golden() -> Value {
        let text = std::fs::read_to_string(fixture("tests/fixtures/numpy_permutation_golden.json")).expect("golden");
        serde_json::from_str(&text).expect("golden JSON")
    }

    #[test]
    fn train_subset_matches_pandas() {
        let g = golden();
        let ds = load(&fixture("tests/fixtures/percent_50.csv"), None, &LoadOptions::default()).expect("percent_50");
        assert_eq!(ds.rows.len(), 50);
        let cases = g["percent_subsets"].as_array().expect("percent_subsets");
        for p in [0.1, 0.3, 1.0] {
            assert!(cases.iter().any(|c| c["percent"].as_f64() == Some(p)), "golden lacks {p}");
        }
        for case in cases {
            let percent = case["percent"].as_f64().expect("percent");
            let n_train = case["n_train"].as_u64().expect("n_train") as usize;
            assert_eq!(ds.split_indices(Split::Train).len(), n_train);
            let want: Vec<usize> =
                case["rows"].as_array().expect("rows").iter().map(|v| v.as_u64().expect("row") as usize).collect();
            let got = ds.train_subset(percent).expect("subset");
            assert_eq!(got, want, "percent {percent}");
            assert!(got.iter().all(|&i| ds.rows[i].split == Split::Train));
        }
    }

    #[test]
    fn percent_count_uses_python_float_semantics() {
        for case in golden()["percent_counts"].as_array().expect("percent_counts") {
            let n = case["n"].as_u64().expect("n") as usize;
            let percent = case["percent"].as_f64().expect("percent");
            assert_eq!(percent_count(n, percent), case["count"].as_u64().expect("count") as usize, "{n} * {percent}");
        }
        assert_eq!(percent_count(100, 0.29), 28);
    }

    #[test]
    fn train_subset_rejects_bad_percent() {
        let ds = parse("image,label,split\na,0,train\nb,1,train\n").expect("valid");
        for p in [0.0, -0.5, 1.0000001, 2.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(ds.train_subset(p), Err(DatasetError::Percent(_))), "{p}");
        }
        assert_eq!(ds.train_subset(0.4).expect("subset"), Vec::<usize>::new(), "int(2 * 0.4) = 0");
        let full = ds.train_subset(1.0).expect("subset");
        assert_eq!(full.len(), 2);
    }
}
