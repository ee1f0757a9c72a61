//! PanDerm's fine-tuning metrics (`furnace/engine_for_finetuning.py::evaluate`), with
//! scikit-learn's exact semantics.
//!
//! PanDerm's `evaluate` takes, for one split, the true labels, the softmax probabilities `[n, K]`
//! and the predictions `argmax(probabilities)`, and computes with scikit-learn:
//!
//! | [`FtMetrics`] field | PanDerm key | scikit-learn call |
//! |---|---|---|
//! | `balanced_accuracy` | `balanced_accuracy` | `balanced_accuracy_score(y, pred)` |
//! | `accuracy` | `accuracy` | `accuracy_score(y, pred)` |
//! | `top3_accuracy` | `top3 accuracy` | `top_k_accuracy_score(y, probs, k=3, labels=arange(K))` |
//! | `top5_accuracy` | `top5 accuracy` | `top_k_accuracy_score(y, probs, k=5, labels=arange(K))` |
//! | `sensitivity` | `sensitivity` | mean over `multilabel_confusion_matrix(y, pred)` of TP/(TP+FN) (0 when 0/0) |
//! | `specificity` | `specificity` | mean over the same matrices of TN/(TN+FP) (0 when 0/0) |
//! | `auc_roc` | `auc_roc` | `roc_auc_score(one_hot(y, K), probs, multi_class='ovr', average='macro')` |
//! | `weighted_f1` | `weighted_f1` | `f1_score(y, pred, average='weighted')` |
//! | `recall_macro` | `recall_macro` | `recall_score(y, pred, average='macro')` |
//! | `recall_weighted` | `recall_weighted` | `recall_score(y, pred, average='weighted')` |
//!
//! What follows from scikit-learn's semantics (all checked by `tools/tests/ft_metrics_golden.rs`
//! against scikit-learn 1.9.1, data from `scripts/reference_ft_metrics.py`):
//!
//! * the confusion-based metrics (balanced accuracy, sensitivity, specificity, F1, recalls) run
//!   over the **labels present** in `y` or in the predictions (`unique_labels(y, pred)`), not over
//!   `0..K`: a class neither true nor predicted does not count. Balanced accuracy averages recall
//!   over the classes present in `y` only; macro recall (and macro sensitivity, which is the same
//!   number) also counts a predicted-only class, with recall 0. Weighted recall equals accuracy;
//! * the one-hot `y` makes `roc_auc_score` take its *multilabel* path: one binary AUROC per column
//!   (`y == c` against `probs[:, c]`, ties counted one half), averaged over all `K` columns. A class
//!   absent from `y` (or a split holding a single class) makes a column undefined: scikit-learn
//!   1.9 returns `nan` with a warning, the scikit-learn of PanDerm's time raised (a crash). Here it
//!   is `None`. Non-finite probabilities (which scikit-learn's `check_array` refuses) give `None`;
//! * top-k: a row is a hit when its true class is among the `k` highest scores, ties ranked as
//!   numpy's stable `argsort(...)[:, ::-1]` ranks them (the **higher class index first**). With
//!   `k >= K` every row is a hit (1.0, scikit-learn warns that the score is meaningless). For
//!   `K = 2` scikit-learn **raises** (binary `y` with 2-column scores), so a binary PanDerm
//!   run crashes in `evaluate` (spec gotcha 8): here the value is `None`;
//! * predictions are `argmax` of the probabilities, the **first** maximal class on ties, as
//!   `torch.max` returns it.
//!
//! PanDerm's `evaluate_tta` computes the same metrics without AUROC, with `pred = argmax(mean
//! logits)`; [`ft_metrics_with_predictions`] takes such predictions.

use serde::Serialize;

use crate::probe::metrics::{Confusion, accuracy, binary_roc_auc};

/// PanDerm's FT metrics for one split (see the module documentation for each field's exact
/// meaning). A value scikit-learn cannot give (it raises, or returns `nan`) is `None`; for an
/// empty split the plain ratios are `NaN` (written as `null` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FtMetrics {
    /// Mean recall over the classes present in `y_true`.
    pub balanced_accuracy: f64,
    /// Fraction of rows whose prediction is the true class.
    pub accuracy: f64,
    /// Top-3 accuracy; `None` for `K = 2` (scikit-learn raises), 1.0 for `K <= 3`.
    pub top3_accuracy: Option<f64>,
    /// Top-5 accuracy; `None` for `K = 2` (scikit-learn raises), 1.0 for `K <= 5`.
    pub top5_accuracy: Option<f64>,
    /// Macro sensitivity over the labels present in `y_true` or the predictions.
    pub sensitivity: f64,
    /// Macro specificity over the labels present in `y_true` or the predictions.
    pub specificity: f64,
    /// One-vs-rest macro AUROC over all `K` classes; `None` when a class is absent from `y_true`,
    /// when `y_true` holds a single class, or when a probability is not finite.
    pub auc_roc: Option<f64>,
    /// Support-weighted F1 over the labels present in `y_true` or the predictions.
    pub weighted_f1: f64,
    /// Macro recall over the labels present in `y_true` or the predictions (a predicted-only
    /// class counts with recall 0).
    pub recall_macro: f64,
    /// Support-weighted recall (equal to accuracy).
    pub recall_weighted: f64,
}

/// Index of the first maximal value of `row` (`torch.max`'s index on ties); 0 for an empty row.
/// NaN values are never the maximum unless every value is NaN.
pub fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || (row[best].is_nan() && !v.is_nan()) {
            best = i;
        }
    }
    best
}

/// PanDerm's `evaluate` metrics: the predictions are [`argmax`] of each row of `probs`.
///
/// `y_true` holds class indices in `0..k`; `probs` is row-major `[n, k]` (softmax
/// probabilities).
///
/// # Panics
///
/// When `probs.len() != y_true.len() * k` or a label is `>= k` (a caller bug: the caller
/// validates its labels against the model's `K` first).
pub fn ft_metrics(y_true: &[usize], probs: &[f64], k: usize) -> FtMetrics {
    check_shapes(y_true, probs, k);
    let y_pred: Vec<usize> = if k == 0 { Vec::new() } else { probs.chunks_exact(k).map(argmax).collect() };
    ft_metrics_with_predictions(y_true, &y_pred, probs, k)
}

/// [`ft_metrics`] with the predictions given (PanDerm's `evaluate_tta` predicts `argmax` of the
/// mean logits, which can differ from `argmax` of their softmax where rounding makes two
/// probabilities equal).
///
/// # Panics
///
/// As [`ft_metrics`], and when `y_pred` and `y_true` differ in length.
pub fn ft_metrics_with_predictions(y_true: &[usize], y_pred: &[usize], probs: &[f64], k: usize) -> FtMetrics {
    check_shapes(y_true, probs, k);
    assert_eq!(y_true.len(), y_pred.len(), "ft_metrics: y_true and y_pred lengths differ");
    let confusion = Confusion::new(y_true, y_pred);
    let (sensitivity, specificity, recall_macro) = one_vs_rest_rates(&confusion);
    FtMetrics {
        balanced_accuracy: confusion.balanced_accuracy(),
        accuracy: accuracy(y_true, y_pred),
        top3_accuracy: top_k_accuracy(y_true, probs, k, 3),
        top5_accuracy: top_k_accuracy(y_true, probs, k, 5),
        sensitivity,
        specificity,
        auc_roc: ovr_macro_auroc(y_true, probs, k),
        weighted_f1: confusion.weighted_f1(),
        recall_macro,
        recall_weighted: weighted_recall(&confusion),
    }
}

fn check_shapes(y_true: &[usize], probs: &[f64], k: usize) {
    assert_eq!(probs.len(), y_true.len() * k, "ft_metrics: probs is not [n, k] with k = {k}");
    if let Some(bad) = y_true.iter().find(|&&y| y >= k) {
        panic!("ft_metrics: label {bad} is not below k = {k}");
    }
}

/// Macro sensitivity, macro specificity and macro recall over the union labels, from the
/// one-vs-rest confusion matrices (`multilabel_confusion_matrix`); 0/0 counts as 0, as in
/// PanDerm's loop and in `recall_score`'s default `zero_division`.
fn one_vs_rest_rates(c: &Confusion) -> (f64, f64, f64) {
    let rows = c.row_sums();
    let cols = c.col_sums();
    let n: f64 = rows.iter().sum();
    let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
    let (mut sens, mut spec) = (Vec::with_capacity(c.m), Vec::with_capacity(c.m));
    for i in 0..c.m {
        let tp = c.at(i, i);
        let fn_ = rows[i] - tp;
        let fp = cols[i] - tp;
        let tn = n - tp - fn_ - fp;
        sens.push(ratio(tp, tp + fn_));
        spec.push(ratio(tn, tn + fp));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let sensitivity = mean(&sens);
    // recall_score(average='macro') is the same per-label TP / support over the same labels.
    (sensitivity, mean(&spec), sensitivity)
}

/// `recall_score(average='weighted')`: per-label recall weighted by support.
fn weighted_recall(c: &Confusion) -> f64 {
    let rows = c.row_sums();
    let total: f64 = rows.iter().sum();
    let weighted: f64 = (0..c.m).filter(|&i| rows[i] > 0.0).map(|i| c.at(i, i) / rows[i] * rows[i]).sum();
    weighted / total
}

/// `top_k_accuracy_score(y, probs, k=top, labels=arange(k))`; `None` where scikit-learn raises
/// (`k == 2` columns with a binary `y`, or non-finite scores).
fn top_k_accuracy(y_true: &[usize], probs: &[f64], k: usize, top: usize) -> Option<f64> {
    if k == 2 || probs.iter().any(|p| !p.is_finite()) {
        return None;
    }
    if y_true.is_empty() {
        return Some(f64::NAN);
    }
    let hits = y_true
        .iter()
        .zip(probs.chunks_exact(k.max(1)))
        .filter(|&(&t, row)| {
            // Position of t in argsort(row, mergesort)[::-1]: every higher score, and every equal
            // score of a higher class index, comes first.
            let ahead = row.iter().enumerate().filter(|&(c, &s)| s > row[t] || (s == row[t] && c > t)).count();
            ahead < top
        })
        .count();
    Some(hits as f64 / y_true.len() as f64)
}

/// `roc_auc_score(one_hot(y), probs, multi_class='ovr', average='macro')`: the mean over the
/// `k` columns of the binary AUROC of `y == c` against `probs[:, c]`; `None` when a column is
/// undefined (its class absent from `y`, or the only class) or a score is not finite.
fn ovr_macro_auroc(y_true: &[usize], probs: &[f64], k: usize) -> Option<f64> {
    if k < 2 || y_true.is_empty() || probs.iter().any(|p| !p.is_finite()) {
        return None;
    }
    let mut total = 0.0;
    for c in 0..k {
        let pos: Vec<bool> = y_true.iter().map(|&y| y == c).collect();
        let scores: Vec<f64> = probs.chunks_exact(k).map(|row| row[c]).collect();
        let auc = binary_roc_auc(&pos, &scores);
        if auc.is_nan() {
            return None;
        }
        total += auc;
    }
    Some(total / k as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.2, 0.4, 0.4]), 1);
        assert_eq!(argmax(&[0.5, 0.5]), 0);
        assert_eq!(argmax(&[f64::NAN, 0.1, 0.3]), 2);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn hand_computed_three_classes() {
        // y = [0, 0, 1, 2]; rows predict 0, 1, 1, 2 (row 2 ties 0.4/0.4 between classes 1 and 2:
        // argmax takes 1).
        let y = [0, 0, 1, 2];
        let probs = [0.7, 0.2, 0.1, 0.3, 0.5, 0.2, 0.2, 0.4, 0.4, 0.1, 0.2, 0.7];
        let m = ft_metrics(&y, &probs, 3);
        assert!(close(m.accuracy, 0.75));
        // recalls: class 0 = 1/2, class 1 = 1, class 2 = 1.
        assert!(close(m.balanced_accuracy, 2.5 / 3.0));
        assert!(close(m.recall_macro, 2.5 / 3.0) && close(m.sensitivity, m.recall_macro));
        assert!(close(m.recall_weighted, m.accuracy));
        // specificities: class 0 TN=2 FP=0 -> 1; class 1 TN=2 FP=1 -> 2/3; class 2 -> 1.
        assert!(close(m.specificity, (1.0 + 2.0 / 3.0 + 1.0) / 3.0));
        // F1: class 0 = 2/3 (support 2), class 1 = 2/3 (support 1), class 2 = 1 (support 1).
        assert!(close(m.weighted_f1, (2.0 * 2.0 / 3.0 + 2.0 / 3.0 + 1.0) / 4.0));
        assert_eq!(m.top3_accuracy, Some(1.0));
        assert_eq!(m.top5_accuracy, Some(1.0));
        // AUROC per column: class 0 {.7,.3} vs {.2,.1} = 1; class 1 {.4} vs {.2,.5,.2} = 2/3;
        // class 2 {.7} vs {.1,.2,.4} = 1.
        let auc = m.auc_roc.unwrap_or(f64::NAN);
        assert!(close(auc, (1.0 + 2.0 / 3.0 + 1.0) / 3.0), "{auc}");
    }

    #[test]
    fn top_k_ties_rank_the_higher_class_first() {
        // Four classes, every score tied: argsort(mergesort)[::-1] = [3, 2, 1, 0], so top-3
        // misses class 0 only.
        let y = [0, 1, 2, 3];
        let probs = [0.25; 16];
        assert_eq!(top_k_accuracy(&y, &probs, 4, 3), Some(0.75));
        assert_eq!(top_k_accuracy(&y, &probs, 4, 1), Some(0.25));
        assert_eq!(top_k_accuracy(&y, &probs, 4, 5), Some(1.0));
    }

    #[test]
    fn binary_top_k_and_missing_classes_are_none() {
        let m = ft_metrics(&[0, 1, 1], &[0.6, 0.4, 0.3, 0.7, 0.8, 0.2], 2);
        assert_eq!((m.top3_accuracy, m.top5_accuracy), (None, None));
        // Column 1: positives .7, .2 against .4 -> 1/2; column 0: .6 against .3, .8 -> 1/2.
        assert_eq!(m.auc_roc, Some(0.5));
        // Class 2 never true: its AUROC column is undefined.
        let m = ft_metrics(&[0, 1], &[0.6, 0.2, 0.2, 0.1, 0.8, 0.1], 3);
        assert_eq!(m.auc_roc, None);
        assert_eq!(m.accuracy, 1.0);
        let m = ft_metrics(&[0, 1], &[f64::NAN, 0.2, 0.8, 0.1, 0.8, 0.1], 3);
        assert_eq!((m.auc_roc, m.top3_accuracy), (None, None));
    }

    #[test]
    #[should_panic(expected = "label 3 is not below k = 3")]
    fn labels_beyond_k_are_a_caller_bug() {
        ft_metrics(&[3], &[0.2, 0.3, 0.5], 3);
    }
}
