//! PanDerm's per-image predictions file of fine-tuning, `{output_dir}/{val|test}.csv`
//! (`furnace/engine_for_finetuning.py::evaluate` and `evaluate_tta`).
//!
//! PanDerm writes it with Python's `csv.writer`: the header
//! `filename,true_label,predicted_label,probability_class_0,…,probability_class_{K-1}`, then one
//! row per image with the CSV's `image` value as written, the true and predicted class as
//! integers and every probability as `f"{p:.8f}"`; fields are quoted only when they hold `,`,
//! `"`, CR or LF, and every row ends with `\r\n`. Rust's `{:.8}` rounds the exact binary value
//! half to even like Python's, so a float32 probability widened to `f64` gives PanDerm's text.

use std::path::Path;

use crate::error::{Error, Result};
use crate::probe::report::{csv_field, csv_row};

/// One image's row of the predictions file.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    /// The dataset CSV's `image` value (PanDerm's `filename` column).
    pub filename: String,
    /// The true class.
    pub true_label: usize,
    /// The predicted class.
    pub predicted_label: usize,
    /// The `K` class probabilities (float32 model outputs widened to `f64` give PanDerm's text).
    pub probabilities: Vec<f64>,
}

/// The header row's fields for `num_classes` classes.
pub fn header(num_classes: usize) -> Vec<String> {
    let mut fields: Vec<String> = ["filename", "true_label", "predicted_label"].map(String::from).into();
    fields.extend((0..num_classes).map(|i| format!("probability_class_{i}")));
    fields
}

/// The text of the predictions file (header and rows, `\r\n` line ends).
///
/// Refuses a row whose probability count is not `num_classes`.
pub fn predictions_csv(num_classes: usize, rows: &[PredictionRow]) -> Result<String> {
    let mut text = csv_row(header(num_classes));
    for (i, row) in rows.iter().enumerate() {
        if row.probabilities.len() != num_classes {
            return Err(Error::refused(format!(
                "predictions row {i} ({}) has {} probabilities for {num_classes} classes",
                row.filename,
                row.probabilities.len()
            )));
        }
        let mut fields = vec![csv_field(&row.filename), row.true_label.to_string(), row.predicted_label.to_string()];
        fields.extend(row.probabilities.iter().map(|p| format!("{p:.8}")));
        text.push_str(&csv_row(fields));
    }
    Ok(text)
}

/// Writes PanDerm's predictions file to `path` atomically (a complete file or none). Refuses a
/// row whose probability count is not `num_classes`, before writing anything.
pub fn write_predictions_csv(path: &Path, num_classes: usize, rows: &[PredictionRow]) -> Result<()> {
    let text = predictions_csv(num_classes, rows)?;
    panderm_edge::fsutil::write_atomically(path, text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, t: usize, p: usize, probs: &[f64]) -> PredictionRow {
        PredictionRow { filename: name.into(), true_label: t, predicted_label: p, probabilities: probs.to_vec() }
    }

    #[test]
    fn text_is_what_python_csv_writes() -> Result<()> {
        // Python: csv.writer(f).writerow([...] + [f"{p:.8f}" for p in probs]) with newline=''.
        // 2**-9 = 0.001953125 rounds half to even (…312), float32(0.1) widened prints its
        // binary value's rounding (0.10000000).
        let rows = [
            row("a.jpg", 0, 1, &[0.001953125, f64::from(0.1f32), 1.0 - 0.001953125 - f64::from(0.1f32)]),
            row("dir/b,c.png", 2, 2, &[0.0, 1e-9, 1.0]),
        ];
        let text = predictions_csv(3, &rows)?;
        assert_eq!(
            text,
            "filename,true_label,predicted_label,probability_class_0,probability_class_1,probability_class_2\r\n\
             a.jpg,0,1,0.00195312,0.10000000,0.89804687\r\n\
             \"dir/b,c.png\",2,2,0.00000000,0.00000000,1.00000000\r\n"
        );
        Ok(())
    }

    #[test]
    fn wrong_probability_count_is_refused() {
        let err = predictions_csv(3, &[row("a.jpg", 0, 0, &[0.5, 0.5])]).map(|_| ());
        assert!(matches!(err, Err(Error::Refused(ref m)) if m.contains("2 probabilities for 3 classes")), "{err:?}");
    }

    #[test]
    fn written_atomically() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("panderm-ft-predictions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join("test.csv");
        write_predictions_csv(&path, 2, &[row("x.jpg", 1, 0, &[0.75, 0.25])])?;
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        assert!(text.ends_with("x.jpg,1,0,0.75000000,0.25000000\r\n"), "{text}");
        assert!(write_predictions_csv(&dir.join("bad.csv"), 2, &[row("y", 0, 0, &[1.0])]).is_err());
        assert!(!dir.join("bad.csv").exists());
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
