//! PanDerm's linear-probe output files (`linear_probe.py`, `linear_eval.py`), written
//! byte-for-byte like PanDerm writes them where that is observable, plus a metrics JSON and a
//! confusion-matrix PNG.
//!
//! * [`write_predictions_csv`]: `{output_dir}/{dataset_name}.csv`, one row per test image;
//! * [`append_summary_csv`]: the `Dataset,W_F1,AUROC,BACC,ACC,AUPR` summary row;
//! * [`write_metrics_json`]: every metric and its bootstrap interval;
//! * [`write_confusion_png`]: a heat map of the confusion matrix with counts in the cells.
//!
//! PanDerm writes its CSVs with Python's `csv` module: fields are quoted only when they
//! contain `,`, `"`, CR or LF (a `"` is doubled), and every row ends with `\r\n`. Numbers are
//! written with `str()`. PanDerm's probabilities are numpy `float32` scalars (torch softmax
//! output), whose `str()` is numpy's shortest round-trip form; [`PyFloat`] reproduces it for
//! `f32`, and Python's `repr(float)` for `f64`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::iso_8859_1::{FONT_6X10, FONT_7X13, FONT_9X15_BOLD};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};
use serde_json::{Map, Value, json};

use super::metrics::{BootstrapCi, CI_LEVEL, EvalMetrics, Interval};

/// An error while writing a report file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be created or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The PNG encoder failed.
    #[error("{path}: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        source: image::ImageError,
    },
    /// The inputs disagree in length or shape.
    #[error("{0}")]
    Shape(String),
}

/// A float written the way PanDerm's CSV writer prints it (`str()` of the value).
pub trait PyFloat: Copy {
    /// The text Python writes for this value.
    fn py_str(self) -> String;
}

impl PyFloat for f64 {
    /// Python's `repr(float)` (also `str(np.float64)`): see [`python_repr_f64`].
    fn py_str(self) -> String {
        python_repr_f64(self)
    }
}

impl PyFloat for f32 {
    /// numpy's `str(np.float32)`: see [`numpy_str_f32`].
    fn py_str(self) -> String {
        numpy_str_f32(self)
    }
}

/// Python's `repr(x)` for a float: the shortest digits that round-trip, positional when
/// `1e-4 <= |x| < 1e16` (with a trailing `.0` for integers, e.g. `1.0`, `0.0001`), otherwise
/// scientific with a signed exponent of at least two digits (`1e-05`, `1.5e+16`);
/// `nan`, `inf`, `-inf`. Rust's `{}` differs: it never uses an exponent and drops `.0`.
pub fn python_repr_f64(x: f64) -> String {
    if let Some(s) = non_finite(x.is_nan(), x.is_infinite(), x.is_sign_negative()) {
        return s;
    }
    let (digits, exp) = shortest_digits(&format!("{:e}", x.abs()));
    layout(x.is_sign_negative(), &digits, exp, x == 0.0 || (-4..16).contains(&exp))
}

/// numpy 2's `str(np.float32(x))`: the shortest digits that round-trip *as float32*,
/// positional when `x == 0` or `1e-4 <= |x| < 1e6` (compared on the exact value, so the
/// float32 nearest `1e-4`, slightly below it, prints `1e-04`), otherwise scientific like
/// Python (`1e-05`, `1.234567e+06`).
pub fn numpy_str_f32(x: f32) -> String {
    if let Some(s) = non_finite(x.is_nan(), x.is_infinite(), x.is_sign_negative()) {
        return s;
    }
    let (digits, exp) = shortest_digits(&format!("{:e}", x.abs()));
    let abs = f64::from(x.abs());
    layout(x.is_sign_negative(), &digits, exp, x == 0.0 || (1e-4..1e6).contains(&abs))
}

/// Python's `f"{x:.4f}"`: correctly rounded (ties to even on the exact binary value, like
/// Rust's `{:.4}`), with Python's `nan` / `inf` / `-inf`.
pub fn format_4f(x: f64) -> String {
    non_finite(x.is_nan(), x.is_infinite(), x.is_sign_negative()).unwrap_or_else(|| format!("{x:.4}"))
}

fn non_finite(nan: bool, inf: bool, negative: bool) -> Option<String> {
    if nan {
        Some("nan".into())
    } else if inf {
        Some(if negative { "-inf" } else { "inf" }.into())
    } else {
        None
    }
}

/// Splits Rust's shortest `{:e}` output of a non-negative finite value (`1.2345e-5`, `0e0`)
/// into its significant digits and the decimal exponent of the first one.
fn shortest_digits(sci: &str) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Lays out `0.d1d2d3… × 10^(exp+1)` the way CPython's `float_repr_style = 'short'` does.
fn layout(negative: bool, digits: &str, exp: i32, positional: bool) -> String {
    let mut out = String::from(if negative { "-" } else { "" });
    if positional {
        let point = exp + 1; // digits before the decimal point
        let len = digits.len() as i32;
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(digits);
        } else if point >= len {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', (point - len) as usize));
            out.push_str(".0");
        } else {
            let (int, frac) = digits.split_at(point as usize);
            let _ = write!(out, "{int}.{frac}");
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    }
    out
}

/// A field as Python's `csv.writer` (QUOTE_MINIMAL) writes it.
pub(crate) fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// Joins fields into one CSV row with Python's `\r\n` terminator.
pub(crate) fn csv_row<I: IntoIterator<Item = String>>(fields: I) -> String {
    let mut row = fields.into_iter().collect::<Vec<_>>().join(",");
    row.push_str("\r\n");
    row
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io { path: path.to_path_buf(), source }
}

/// PanDerm's dataset name: `str(csv_path).split('/')[-1].split('.')[0]`, i.e. the part of
/// the file name before its first `.` (`pad-ufes/2000.csv` → `2000`, `HAM_clean.csv` → `HAM_clean`).
pub fn dataset_name(csv_path: impl AsRef<Path>) -> String {
    let text = csv_path.as_ref().to_string_lossy();
    let base = text.rsplit('/').next().unwrap_or_default();
    base.split('.').next().unwrap_or_default().to_owned()
}

/// Writes PanDerm's per-image predictions CSV (`{output_dir}/{dataset_name}.csv`).
///
/// Columns: `filename,true_label,predicted_label`, then `probability` (= P(class 1)) when
/// `binary`, otherwise `probability_class_{i}` for `i` in `0..k`. `probs` is row-major
/// `[n, k]`; pass the model's `f32` probabilities to get PanDerm's exact text (numpy float32
/// `str()`), or `f64` for Python-float `repr`. PanDerm's `binary` is "the test split has
/// exactly 2 distinct labels" (`linear_probe.py::test_linear_probe`).
pub fn write_predictions_csv<T: PyFloat>(
    path: impl AsRef<Path>,
    filenames: &[String],
    y_true: &[usize],
    y_pred: &[usize],
    probs: &[T],
    k: usize,
    binary: bool,
) -> Result<(), ReportError> {
    let n = filenames.len();
    if y_true.len() != n || y_pred.len() != n || probs.len() != n * k {
        return Err(ReportError::Shape(format!(
            "predictions CSV: {n} filenames, {} true labels, {} predictions, {} probabilities for k = {k}",
            y_true.len(),
            y_pred.len(),
            probs.len()
        )));
    }
    if binary && k < 2 {
        return Err(ReportError::Shape(format!("predictions CSV: binary output needs k >= 2, got {k}")));
    }
    let path = path.as_ref();
    let mut header: Vec<String> = ["filename", "true_label", "predicted_label"].map(String::from).into();
    if binary {
        header.push("probability".into());
    } else {
        header.extend((0..k).map(|i| format!("probability_class_{i}")));
    }
    let mut out = BufWriter::new(File::create(path).map_err(io_err(path))?);
    out.write_all(csv_row(header).as_bytes()).map_err(io_err(path))?;
    for i in 0..n {
        let row = &probs[i * k..(i + 1) * k];
        let mut fields = vec![csv_field(&filenames[i]), y_true[i].to_string(), y_pred[i].to_string()];
        if binary {
            fields.push(row[1].py_str());
        } else {
            fields.extend(row.iter().map(|p| p.py_str()));
        }
        out.write_all(csv_row(fields).as_bytes()).map_err(io_err(path))?;
    }
    out.flush().map_err(io_err(path))
}

/// Appends one summary row `Dataset,W_F1,AUROC,BACC,ACC,AUPR` (values `.4f`, a missing AUROC or
/// AUPR as `0.0000`, a `NaN` one as `nan`, as PanDerm's `record_metrics_to_csv` formats them),
/// writing the header first when the file is new or empty.
///
/// PanDerm itself opens this file with mode `'w'` (so a second run truncates it and, the file
/// existing, writes the row without header); this appends instead, which is what the
/// "header written once" logic evidently intends.
pub fn append_summary_csv(
    path: impl AsRef<Path>,
    dataset_name: &str,
    metrics: &EvalMetrics,
) -> Result<(), ReportError> {
    let path = path.as_ref();
    let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(io_err(path))?;
    let empty = file.metadata().map_err(io_err(path))?.len() == 0;
    let mut text = String::new();
    if empty {
        text.push_str(&csv_row(["Dataset", "W_F1", "AUROC", "BACC", "ACC", "AUPR"].map(String::from)));
    }
    let or_zero = |v: Option<f64>| v.map_or_else(|| format_4f(0.0), format_4f);
    text.push_str(&csv_row([
        csv_field(dataset_name),
        format_4f(metrics.weighted_f1),
        or_zero(metrics.auroc),
        format_4f(metrics.bacc),
        format_4f(metrics.acc),
        or_zero(metrics.aupr),
    ]));
    file.write_all(text.as_bytes()).map_err(io_err(path))
}

/// A finite value as a JSON number, anything else (`None`, `NaN`) as `null`.
fn num(v: Option<f64>) -> Value {
    v.filter(|v| v.is_finite()).map_or(Value::Null, Value::from)
}

fn interval_json(i: Option<Interval>) -> Value {
    i.map_or(Value::Null, |i| {
        json!({"lower": num(Some(i.lower)), "upper": num(Some(i.upper)), "mean": num(Some(i.mean)),
               "std": num(Some(i.std)), "valid_resamples": i.valid})
    })
}

/// Writes every metric and its bootstrap interval as pretty-printed JSON:
///
/// ```json
/// { "metrics": {"lin_acc": …, "lin_bacc": …, "lin_kappa": …, "lin_weighted_f1": …,
///               "lin_auroc": … | null, "lin_aupr": … | null},
///   "ci": {"lin_acc": {"lower", "upper", "mean", "std", "valid_resamples"} | null, …},
///   "bootstrap": {"resamples", "seed", "level": 0.95, "method": "stratified percentile"},
///   "extra": <extra> }
/// ```
///
/// Undefined values (`None` or `NaN`) are `null`.
pub fn write_metrics_json(
    path: impl AsRef<Path>,
    metrics: &EvalMetrics,
    ci: &BootstrapCi,
    extra: Value,
) -> Result<(), ReportError> {
    let path = path.as_ref();
    let pairs = [
        ("lin_acc", Some(metrics.acc), ci.acc),
        ("lin_bacc", Some(metrics.bacc), ci.bacc),
        ("lin_kappa", Some(metrics.kappa), ci.kappa),
        ("lin_weighted_f1", Some(metrics.weighted_f1), ci.weighted_f1),
        ("lin_auroc", metrics.auroc, ci.auroc),
        ("lin_aupr", metrics.aupr, ci.aupr),
    ];
    let mut values = Map::new();
    let mut intervals = Map::new();
    for (key, value, interval) in pairs {
        values.insert(key.into(), num(value));
        intervals.insert(key.into(), interval_json(interval));
    }
    let doc = json!({
        "metrics": values,
        "ci": intervals,
        "bootstrap": {"resamples": ci.resamples, "seed": ci.seed, "level": CI_LEVEL,
                      "method": "stratified percentile"},
        "extra": extra,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    std::fs::write(path, text).map_err(io_err(path))
}

/// An RGB image that embedded-graphics can draw on (pixels outside are dropped).
struct Canvas(image::RgbImage);

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(&mut self, pixels: I) -> Result<(), Infallible> {
        let (w, h) = self.0.dimensions();
        for Pixel(p, c) in pixels {
            if let (Ok(x), Ok(y)) = (u32::try_from(p.x), u32::try_from(p.y))
                && x < w
                && y < h
            {
                self.0.put_pixel(x, y, image::Rgb([c.r(), c.g(), c.b()]));
            }
        }
        Ok(())
    }
}

impl Canvas {
    fn fill(&mut self, x: i32, y: i32, w: u32, h: u32, color: Rgb888) {
        let Ok(()) =
            Rectangle::new(Point::new(x, y), Size::new(w, h)).into_styled(PrimitiveStyle::with_fill(color)).draw(self);
    }

    fn text(&mut self, s: &str, at: Point, style: MonoTextStyle<'_, Rgb888>, align: Alignment) {
        let layout = TextStyleBuilder::new().alignment(align).baseline(Baseline::Middle).build();
        let Ok(_) = Text::with_text_style(s, at, style, layout).draw(self);
    }
}

/// matplotlib's "Blues" colour map, approximated linearly between its ends, at `t` in `[0, 1]`.
fn blues(t: f64) -> Rgb888 {
    let lerp = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t.clamp(0.0, 1.0)).round() as u8;
    Rgb888::new(lerp(247, 8), lerp(251, 48), lerp(255, 107))
}

/// Truncates to `max` characters, marking the cut with `~`.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { s.chars().take(max - 1).chain(['~']).collect() }
}

/// Draws the confusion matrix (rows = true class, columns = predicted class) as a PNG heat map
/// coloured by row fraction (recall), with the count and the row fraction in every cell, axis titles "true" and "predicted", and
/// the class labels (`labels[i]` names class `i`; missing names fall back to the index). Long
/// labels are shown on the rows as `i: label` with only indices above the columns.
/// PanDerm draws the same matrix with mlxtend (`confusion_matrix_{dataset_name}.jpg`).
pub fn write_confusion_png(
    path: impl AsRef<Path>,
    y_true: &[usize],
    y_pred: &[usize],
    k: usize,
    labels: &[String],
) -> Result<(), ReportError> {
    let path = path.as_ref();
    if y_true.len() != y_pred.len() {
        return Err(ReportError::Shape(format!(
            "confusion matrix: {} true labels but {} predictions",
            y_true.len(),
            y_pred.len()
        )));
    }
    let m = y_true.iter().chain(y_pred).map(|&c| c + 1).max().unwrap_or(0).max(k);
    let mut counts = vec![0u64; m * m];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        counts[t * m + p] += 1;
    }
    let max_count = counts.iter().copied().max().unwrap_or(0).max(1);
    let names: Vec<String> =
        (0..m).map(|i| labels.get(i).map_or_else(|| i.to_string(), |s| clip(s.trim(), 24))).collect();

    // Geometry (pixels). Fonts: counts 9x15 bold, fractions 6x10, labels 7x13.
    let digits = max_count.to_string().len() as u32;
    let cell_w = (digits * 9 + 20).max(64);
    let cell_h = 44u32;
    let fits = names.iter().all(|s| (s.chars().count() as u32) * 7 + 6 <= cell_w);
    let row_names: Vec<String> =
        if fits { names.clone() } else { names.iter().enumerate().map(|(i, s)| format!("{i}: {s}")).collect() };
    let col_names: Vec<String> = if fits { names } else { (0..m).map(|i| i.to_string()).collect() };
    let label_w = row_names.iter().map(|s| s.chars().count() as u32).max().unwrap_or(1) * 7 + 12;
    let (margin, title_h, axis_h, header_h, true_w) = (16u32, 26u32, 20u32, 20u32, 18u32);
    let grid_x = margin + true_w + label_w;
    let grid_y = margin + title_h + axis_h + header_h;
    let m32 = m as u32;
    let width = grid_x + m32 * cell_w + margin;
    let height = grid_y + m32 * cell_h + margin;
    let mut canvas = Canvas(image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255])));

    let black = MonoTextStyle::new(&FONT_7X13, Rgb888::BLACK);
    let n: u64 = counts.iter().sum();
    let title = format!("Confusion matrix (n = {n})");
    let Ok(_) = Text::with_baseline(&title, Point::new(margin as i32, (margin + 8) as i32), black, Baseline::Middle)
        .draw(&mut canvas);
    let grid_mid_x = (grid_x + m32 * cell_w / 2) as i32;
    canvas.text("predicted", Point::new(grid_mid_x, (margin + title_h + axis_h / 2) as i32), black, Alignment::Center);
    // "true", written top to bottom, centred on the rows.
    let true_x = (margin + true_w / 2) as i32;
    let true_top = (grid_y + m32 * cell_h / 2) as i32 - 2 * 13 + 6;
    for (i, ch) in "true".chars().enumerate() {
        canvas.text(&ch.to_string(), Point::new(true_x, true_top + 13 * i as i32), black, Alignment::Center);
    }
    for (j, name) in col_names.iter().enumerate() {
        let x = (grid_x + j as u32 * cell_w + cell_w / 2) as i32;
        canvas.text(name, Point::new(x, (grid_y - header_h / 2) as i32), black, Alignment::Center);
    }
    let grid_line = Rgb888::new(200, 200, 200);
    for i in 0..m {
        let y = grid_y + i as u32 * cell_h;
        let row_total: u64 = counts[i * m..(i + 1) * m].iter().sum();
        canvas.text(&row_names[i], Point::new((grid_x - 6) as i32, (y + cell_h / 2) as i32), black, Alignment::Right);
        for j in 0..m {
            let x = grid_x + j as u32 * cell_w;
            let count = counts[i * m + j];
            // Colour by the row fraction, as mlxtend does with `show_normed=True`.
            let t = if row_total > 0 { count as f64 / row_total as f64 } else { 0.0 };
            canvas.fill(x as i32, y as i32, cell_w, cell_h, grid_line);
            canvas.fill(x as i32 + 1, y as i32 + 1, cell_w - 2, cell_h - 2, blues(t));
            let ink = if t > 0.5 { Rgb888::WHITE } else { Rgb888::BLACK };
            let cx = (x + cell_w / 2) as i32;
            let big = MonoTextStyle::new(&FONT_9X15_BOLD, ink);
            canvas.text(&count.to_string(), Point::new(cx, (y + 16) as i32), big, Alignment::Center);
            if row_total > 0 {
                let frac = format!("({:.2})", count as f64 / row_total as f64);
                let small = MonoTextStyle::new(&FONT_6X10, ink);
                canvas.text(&frac, Point::new(cx, (y + 33) as i32), small, Alignment::Center);
            }
        }
    }
    canvas
        .0
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| ReportError::Image { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("panderm-probe-report-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir.join(name)
    }

    #[test]
    fn float_text_matches_python() {
        let f64_cases = [
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-4, "0.0001"),
            (1e16, "1e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (1.5e-7, "1.5e-07"),
            (123456789.0, "123456789.0"),
            (2.0 / 3.0, "0.6666666666666666"),
            (1e300, "1e+300"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (x, want) in f64_cases {
            assert_eq!(python_repr_f64(x), want, "{x:e}");
        }
        let f32_cases = [
            (0.1f32, "0.1"),
            (1e-5, "1e-05"),
            (1e-4, "1e-04"),
            (1.0, "1.0"),
            (999999.94, "999999.94"),
            (1e6, "1e+06"),
            (123456789.0, "1.2345679e+08"),
            (0.00010001, "0.00010001"),
        ];
        for (x, want) in f32_cases {
            assert_eq!(numpy_str_f32(x), want, "{x:e}");
        }
        assert_eq!(format_4f(0.03125), "0.0312");
        assert_eq!(format_4f(f64::NAN), "nan");
        assert_eq!(format_4f(0.92247), "0.9225");
    }

    #[test]
    fn dataset_name_is_basename_before_first_dot() {
        assert_eq!(dataset_name("/data/pad-ufes/2000.csv"), "2000");
        assert_eq!(dataset_name("HAM10000_clean/ISIC2018_splits/HAM_clean.csv"), "HAM_clean");
        assert_eq!(dataset_name("a/b.c.csv"), "b");
        assert_eq!(dataset_name("noext"), "noext");
    }

    #[test]
    fn predictions_csv_binary_and_multiclass() -> Result<(), ReportError> {
        let names = vec!["a.jpg".to_string(), "dir/b,c.jpg".to_string()];
        let path = temp_path("binary.csv");
        write_predictions_csv(&path, &names, &[0, 1], &[1, 1], &[0.75f32, 0.25, 1e-5, 0.99999], 2, true)?;
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        assert_eq!(
            text,
            "filename,true_label,predicted_label,probability\r\na.jpg,0,1,0.25\r\n\"dir/b,c.jpg\",1,1,0.99999\r\n"
        );
        let path = temp_path("multi.csv");
        write_predictions_csv(&path, &names, &[2, 0], &[2, 1], &[0.1, 0.2, 0.7, 1e-5, 0.5, 0.49999], 3, false)?;
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        assert_eq!(
            text,
            "filename,true_label,predicted_label,probability_class_0,probability_class_1,probability_class_2\r\n\
             a.jpg,2,2,0.1,0.2,0.7\r\n\"dir/b,c.jpg\",0,1,1e-05,0.5,0.49999\r\n"
        );
        assert!(write_predictions_csv(&path, &names, &[0], &[0, 1], &[0.5f64; 4], 2, true).is_err());
        Ok(())
    }

    #[test]
    fn summary_header_once() -> Result<(), ReportError> {
        let path = temp_path("summary.csv");
        let _ = std::fs::remove_file(&path);
        let m = EvalMetrics {
            acc: 0.923701,
            bacc: 0.796631,
            kappa: 0.880742,
            weighted_f1: 0.922471,
            auroc: Some(0.977242),
            aupr: None,
        };
        append_summary_csv(&path, "HAM_clean", &m)?;
        append_summary_csv(&path, "2000", &EvalMetrics { auroc: Some(f64::NAN), ..m })?;
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        assert_eq!(
            text,
            "Dataset,W_F1,AUROC,BACC,ACC,AUPR\r\nHAM_clean,0.9225,0.9772,0.7966,0.9237,0.0000\r\n\
             2000,0.9225,nan,0.7966,0.9237,0.0000\r\n"
        );
        Ok(())
    }

    #[test]
    fn metrics_json_has_every_metric() -> Result<(), ReportError> {
        let (y, p) = ([0, 0, 1, 1, 0, 1], [0, 1, 1, 1, 0, 0]);
        let probs = [0.8, 0.2, 0.4, 0.6, 0.3, 0.7, 0.1, 0.9, 0.6, 0.4, 0.55, 0.45];
        let m = crate::probe::metrics::eval_metrics(&y, &p, &probs, 2);
        let ci = crate::probe::metrics::bootstrap_ci(&y, &p, &probs, 2, 50, 1);
        let path = temp_path("metrics.json");
        write_metrics_json(&path, &m, &ci, json!({"model": "tiny"}))?;
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| ReportError::Shape(e.to_string()))?;
        for key in ["lin_acc", "lin_bacc", "lin_kappa", "lin_weighted_f1", "lin_auroc", "lin_aupr"] {
            assert!(doc["metrics"][key].is_number(), "{key}");
            assert!(doc["ci"][key]["lower"].is_number(), "{key}");
        }
        assert_eq!(doc["bootstrap"]["resamples"], 50);
        assert_eq!(doc["extra"]["model"], "tiny");
        Ok(())
    }

    #[test]
    fn confusion_png_is_drawn() -> Result<(), ReportError> {
        let path = temp_path("confusion.png");
        let labels: Vec<String> = ["akiec", "bcc", "melanocytic nevus (long name)"].map(String::from).into();
        write_confusion_png(&path, &[0, 0, 1, 2, 2, 2], &[0, 1, 1, 2, 2, 0], 3, &labels)?;
        let img = image::open(&path).map_err(|source| ReportError::Image { path: path.clone(), source })?.to_rgb8();
        assert!(img.width() > 3 * 64 && img.height() > 3 * 44);
        // The only full row (true 1, predicted 1: fraction 1) is filled with the darkest blue.
        let dark = img.pixels().filter(|p| p.0 == [8, 48, 107]).count();
        assert!(dark > 500, "{dark} dark pixels");
        Ok(())
    }
}
