//! PanDerm's linear-probe metrics (`eval_features/metrics.py::get_eval_metrics`), with
//! scikit-learn's exact semantics, and stratified bootstrap confidence intervals.
//!
//! [`eval_metrics`] reproduces what PanDerm computes for one test split, including the way it
//! chooses between the binary and the multiclass scoring (`linear_probe.py::test_linear_probe`) and the way it loses
//! AUROC/AUPR when scikit-learn raises:
//!
//! * **binary branch** (the test labels have exactly 2 distinct values): the score is `probs[:, 1]`;
//!   AUROC is `roc_auc_score(y, p1)` (the larger of the two labels is the positive class), AUPR
//!   is `average_precision_score(y, p1)` with `pos_label=1` (so it is undefined when no test
//!   label equals 1);
//! * **multiclass branch** (any other number of distinct test labels): the score is the whole
//!   `[n, k]` matrix; AUROC is `roc_auc_score(multi_class="ovo", average="macro")` (Hand & Till),
//!   AUPR is `average_precision_score(average="macro")` one-vs-rest. Both need the number of
//!   distinct test labels to equal `k`, and AUROC needs every row to sum to 1
//!   (`np.allclose`); the `i`-th smallest test label is scored by column `i`.
//!
//! PanDerm computes AUROC then AUPR inside one `try`: when AUROC raises, AUPR is never computed,
//! so both are `None`; when only AUPR raises, AUROC is kept.
//!
//! Undefined values follow scikit-learn 1.9: a quantity scikit-learn *returns* as `nan` (with a
//! warning) is `NaN` here (e.g. kappa when the labels and predictions hold a single class;
//! AUROC when a 2-column problem has a single test class), whereas a quantity for which
//! scikit-learn *raises* is `None`. The golden test (`tools/tests/metrics_golden.rs`, data from
//! `scripts/reference_metrics.py`) checks all of this against scikit-learn to 1e-9.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Number of bootstrap resamples PanDerm's (unused) `get_eval_metrics_stats` draws, and our default.
pub const DEFAULT_RESAMPLES: usize = 1000;

/// Confidence level of the bootstrap intervals ([`bootstrap_ci`]): percentiles 2.5 and 97.5.
pub const CI_LEVEL: f64 = 0.95;

/// Metrics on one evaluation split, PanDerm's `lin_*` keys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalMetrics {
    /// `lin_acc`: fraction of predictions equal to the true label (`NaN` for an empty split).
    pub acc: f64,
    /// `lin_bacc`: `balanced_accuracy_score`, the mean recall over the classes present in
    /// `y_true` (predicted classes absent from `y_true` are ignored).
    pub bacc: f64,
    /// `lin_kappa`: `cohen_kappa_score(weights="quadratic")` over the sorted union of the
    /// true and predicted labels (weights use the label's *position* in that union, as
    /// scikit-learn does). `NaN` when undefined (a single label in common).
    pub kappa: f64,
    /// `lin_weighted_f1`: `classification_report(zero_division=0)["weighted avg"]["f1-score"]`,
    /// per-label F1 over the union of true and predicted labels, weighted by true support.
    pub weighted_f1: f64,
    /// `lin_auroc`: `None` where scikit-learn raises (PanDerm then writes `0.0000`);
    /// `Some(NaN)` where scikit-learn returns `nan` (single test class with a 2-column model).
    pub auroc: Option<f64>,
    /// `lin_aupr`: `None` where scikit-learn raises or where AUROC raised first.
    pub aupr: Option<f64>,
}

/// Computes PanDerm's metrics for one split.
///
/// `y_true`/`y_pred` are class indices; `probs` is row-major `[n, k]` (`k` = number of model
/// classes, i.e. logistic-regression outputs). See the module documentation for the binary /
/// multiclass choice and for which values can be `NaN` or `None`.
///
/// # Panics
///
/// If `y_true` and `y_pred` differ in length or `probs.len() != y_true.len() * k` (caller bug).
pub fn eval_metrics(y_true: &[usize], y_pred: &[usize], probs: &[f64], k: usize) -> EvalMetrics {
    assert_eq!(y_true.len(), y_pred.len(), "eval_metrics: y_true and y_pred lengths differ");
    assert_eq!(probs.len(), y_true.len() * k, "eval_metrics: probs is not [n, k]");
    let confusion = Confusion::new(y_true, y_pred);
    let (auroc, aupr) = ranking_metrics(y_true, probs, k);
    EvalMetrics {
        acc: accuracy(y_true, y_pred),
        bacc: confusion.balanced_accuracy(),
        kappa: confusion.quadratic_kappa(),
        weighted_f1: confusion.weighted_f1(),
        auroc,
        aupr,
    }
}

/// `accuracy_score`: mean of `pred == true` (`NaN` for empty input).
pub(crate) fn accuracy(y_true: &[usize], y_pred: &[usize]) -> f64 {
    let correct = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    correct as f64 / y_true.len() as f64
}

/// A confusion matrix over the sorted union of the true and predicted labels
/// (scikit-learn's `unique_labels(y_true, y_pred)`); rows = true, columns = predicted.
/// Shared with the fine-tuning metrics (`crate::evaluate::metrics`).
pub(crate) struct Confusion {
    /// Number of labels in the union.
    pub(crate) m: usize,
    /// Row-major `[m, m]` counts.
    counts: Vec<u64>,
}

impl Confusion {
    pub(crate) fn new(y_true: &[usize], y_pred: &[usize]) -> Self {
        let mut labels: Vec<usize> = y_true.iter().chain(y_pred).copied().collect();
        labels.sort_unstable();
        labels.dedup();
        let m = labels.len();
        let pos = |y: &usize| match labels.binary_search(y) {
            Ok(i) | Err(i) => i,
        };
        let mut counts = vec![0u64; m * m];
        for (t, p) in y_true.iter().zip(y_pred) {
            counts[pos(t) * m + pos(p)] += 1;
        }
        Self { m, counts }
    }

    /// Count of (true label `i`, predicted label `j`), by position in the union.
    pub(crate) fn at(&self, i: usize, j: usize) -> f64 {
        self.counts[i * self.m + j] as f64
    }

    /// True support of each label (row sums).
    pub(crate) fn row_sums(&self) -> Vec<f64> {
        (0..self.m).map(|i| (0..self.m).map(|j| self.at(i, j)).sum()).collect()
    }

    /// Predicted count of each label (column sums).
    pub(crate) fn col_sums(&self) -> Vec<f64> {
        (0..self.m).map(|j| (0..self.m).map(|i| self.at(i, j)).sum()).collect()
    }

    /// `balanced_accuracy_score(adjusted=False)`: mean recall over labels with true support.
    pub(crate) fn balanced_accuracy(&self) -> f64 {
        let rows = self.row_sums();
        let recalls: Vec<f64> = (0..self.m).filter(|&i| rows[i] > 0.0).map(|i| self.at(i, i) / rows[i]).collect();
        recalls.iter().sum::<f64>() / recalls.len() as f64
    }

    /// `cohen_kappa_score(weights="quadratic")`, `NaN` where scikit-learn returns its
    /// `replace_undefined_by=np.nan`.
    fn quadratic_kappa(&self) -> f64 {
        let rows = self.row_sums();
        let cols = self.col_sums();
        let total: f64 = cols.iter().sum();
        if total == 0.0 {
            return f64::NAN;
        }
        let mut observed = 0.0;
        let mut expected = 0.0;
        for (i, col) in cols.iter().enumerate() {
            for (j, row) in rows.iter().enumerate() {
                let w = (i as f64 - j as f64).powi(2);
                observed += w * self.at(i, j);
                // scikit-learn: expected = outer(col sums, row sums) / N; w is symmetric.
                expected += w * col * row / total;
            }
        }
        if expected == 0.0 {
            return f64::NAN;
        }
        1.0 - observed / expected
    }

    /// Weighted-average F1 of `classification_report(zero_division=0)`.
    pub(crate) fn weighted_f1(&self) -> f64 {
        let rows = self.row_sums();
        let cols = self.col_sums();
        let support: f64 = rows.iter().sum();
        let mut acc = 0.0;
        for i in 0..self.m {
            let tp = self.at(i, i);
            let denom = rows[i] + cols[i];
            let f1 = if denom > 0.0 { 2.0 * tp / denom } else { 0.0 };
            acc += f1 * rows[i];
        }
        acc / support
    }
}

/// AUROC and AUPR exactly as PanDerm's `try` block obtains them from scikit-learn.
fn ranking_metrics(y_true: &[usize], probs: &[f64], k: usize) -> (Option<f64>, Option<f64>) {
    let n = y_true.len();
    if n == 0 || k == 0 {
        return (None, None);
    }
    let mut classes: Vec<usize> = y_true.to_vec();
    classes.sort_unstable();
    classes.dedup();

    if classes.len() == 2 {
        // Binary branch: scores = probs[:, 1].
        if k < 2 {
            return (None, None);
        }
        let scores: Vec<f64> = (0..n).map(|i| probs[i * k + 1]).collect();
        if scores.iter().any(|s| !s.is_finite()) {
            return (None, None);
        }
        // roc_auc_score label-binarizes y_true: the larger label is the positive class.
        let pos: Vec<bool> = y_true.iter().map(|&y| y == classes[1]).collect();
        let auroc = binary_roc_auc(&pos, &scores);
        // average_precision_score(pos_label=1) raises unless 1 is one of the two labels.
        let aupr = classes.contains(&1).then(|| {
            let pos1: Vec<bool> = y_true.iter().map(|&y| y == 1).collect();
            average_precision(&pos1, &scores)
        });
        return (Some(auroc), aupr);
    }

    // Multiclass branch: scores = probs [n, k]; check_array rejects non-finite values.
    if probs.iter().any(|p| !p.is_finite()) {
        return (None, None);
    }
    if classes.len() == 1 {
        // type_of_target(y_true) is "binary". With k <= 2 columns roc_auc_score takes its binary
        // path and returns nan ("Only one class is present"); average_precision_score then
        // raises on the 2-D scores. With k > 2 roc_auc_score's multiclass path raises.
        return if k <= 2 { (Some(f64::NAN), None) } else { (None, None) };
    }
    if classes.len() != k || !rows_sum_to_one(probs, k) {
        return (None, None);
    }
    let encoded: Vec<usize> = y_true
        .iter()
        .map(|y| match classes.binary_search(y) {
            Ok(i) | Err(i) => i,
        })
        .collect();
    (Some(ovo_macro_auroc(&encoded, probs, k)), Some(ovr_macro_average_precision(&encoded, probs, k)))
}

/// `np.allclose(1, probs.sum(axis=1))`: `|1 - s| <= 1e-8 + 1e-5 * |s|` for every row.
fn rows_sum_to_one(probs: &[f64], k: usize) -> bool {
    probs.chunks_exact(k).all(|row| {
        let s: f64 = row.iter().sum();
        (1.0 - s).abs() <= 1e-8 + 1e-5 * s.abs()
    })
}

/// Hand & Till one-vs-one macro AUROC (`_average_multiclass_ovo_score`) on encoded labels
/// `0..k`, all present.
fn ovo_macro_auroc(encoded: &[usize], probs: &[f64], k: usize) -> f64 {
    let mut pair_scores = Vec::with_capacity(k * (k - 1) / 2);
    for a in 0..k {
        for b in a + 1..k {
            let rows: Vec<usize> = (0..encoded.len()).filter(|&i| encoded[i] == a || encoded[i] == b).collect();
            let auc_for = |c: usize| {
                let pos: Vec<bool> = rows.iter().map(|&i| encoded[i] == c).collect();
                let scores: Vec<f64> = rows.iter().map(|&i| probs[i * k + c]).collect();
                binary_roc_auc(&pos, &scores)
            };
            pair_scores.push((auc_for(a) + auc_for(b)) / 2.0);
        }
    }
    pair_scores.iter().sum::<f64>() / pair_scores.len() as f64
}

/// One-vs-rest macro average precision on encoded labels `0..k` (column `c` scores label `c`).
fn ovr_macro_average_precision(encoded: &[usize], probs: &[f64], k: usize) -> f64 {
    let total: f64 = (0..k)
        .map(|c| {
            let pos: Vec<bool> = encoded.iter().map(|&e| e == c).collect();
            let scores: Vec<f64> = (0..encoded.len()).map(|i| probs[i * k + c]).collect();
            average_precision(&pos, &scores)
        })
        .sum();
    total / k as f64
}

/// Cumulative `(true positives, false positives)` at each distinct score threshold, from the
/// highest score down (scikit-learn's `_binary_clf_curve`; ties form one threshold).
fn clf_curve(pos: &[bool], scores: &[f64]) -> Vec<(u64, u64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut curve = Vec::new();
    let (mut tp, mut fp) = (0u64, 0u64);
    for (idx, &i) in order.iter().enumerate() {
        if pos[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_group = order.get(idx + 1).is_none_or(|&next| scores[next] != scores[i]);
        if last_of_group {
            curve.push((tp, fp));
        }
    }
    curve
}

/// Binary ROC AUC (`roc_auc_score` on one positive class): the trapezoid over the ROC points of
/// the distinct thresholds, i.e. the Mann–Whitney statistic with ties counted one half.
/// `NaN` when `pos` holds a single class (scikit-learn warns and returns `nan`).
pub fn binary_roc_auc(pos: &[bool], scores: &[f64]) -> f64 {
    let positives = pos.iter().filter(|&&p| p).count() as u128;
    let negatives = pos.len() as u128 - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    let (mut prev_tp, mut prev_fp) = (0u128, 0u128);
    let mut twice_area = 0u128;
    for (tp, fp) in clf_curve(pos, scores) {
        let (tp, fp) = (u128::from(tp), u128::from(fp));
        twice_area += (fp - prev_fp) * (tp + prev_tp);
        (prev_tp, prev_fp) = (tp, fp);
    }
    twice_area as f64 / (2 * positives * negatives) as f64
}

/// Binary average precision (`average_precision_score`): `Σ (R_n − R_{n−1}) P_n` over the
/// distinct thresholds, without interpolation. With no positive sample scikit-learn sets the
/// recall to 1 everywhere, which gives 0.
pub fn average_precision(pos: &[bool], scores: &[f64]) -> f64 {
    let positives = pos.iter().filter(|&&p| p).count() as f64;
    let mut prev_recall = 0.0;
    let mut ap = 0.0;
    for (tp, fp) in clf_curve(pos, scores) {
        let (tp, fp) = (tp as f64, fp as f64);
        let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
        let recall = if positives > 0.0 { tp / positives } else { 1.0 };
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    ap.max(0.0)
}

/// A percentile bootstrap interval for one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// 2.5th percentile of the resampled values (numpy's default linear interpolation).
    pub lower: f64,
    /// 97.5th percentile of the resampled values.
    pub upper: f64,
    /// Mean of the resampled values.
    pub mean: f64,
    /// Population standard deviation (`np.std`, ddof = 0) of the resampled values.
    pub std: f64,
    /// Number of resamples where the metric was defined (finite); the others are skipped.
    pub valid: usize,
}

/// Stratified bootstrap 95% intervals for every metric of [`EvalMetrics`].
/// A field is `None` when no resample gave a finite value for that metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapCi {
    /// Interval of [`EvalMetrics::acc`].
    pub acc: Option<Interval>,
    /// Interval of [`EvalMetrics::bacc`].
    pub bacc: Option<Interval>,
    /// Interval of [`EvalMetrics::kappa`].
    pub kappa: Option<Interval>,
    /// Interval of [`EvalMetrics::weighted_f1`].
    pub weighted_f1: Option<Interval>,
    /// Interval of [`EvalMetrics::auroc`].
    pub auroc: Option<Interval>,
    /// Interval of [`EvalMetrics::aupr`].
    pub aupr: Option<Interval>,
    /// Number of resamples drawn.
    pub resamples: usize,
    /// Seed of the `StdRng` that drew them.
    pub seed: u64,
}

/// Stratified bootstrap confidence intervals (percentiles 2.5 / 97.5) of [`eval_metrics`].
///
/// Each resample draws, for every class present in `y_true` (in increasing class order), as
/// many samples as that class has, uniformly with replacement among that class's samples, so
/// class counts (and hence PanDerm's binary/multiclass branch) are kept. Metrics that are
/// undefined on a resample (`NaN` or `None`) skip it. Deterministic for a given `seed`
/// (rand 0.9 `StdRng::seed_from_u64`). PanDerm's own `get_eval_metrics_stats` is unused and
/// reports mean ± t·std instead; [`Interval`] carries the mean and std too.
///
/// # Panics
///
/// As [`eval_metrics`], on inconsistent input lengths.
pub fn bootstrap_ci(
    y_true: &[usize],
    y_pred: &[usize],
    probs: &[f64],
    k: usize,
    resamples: usize,
    seed: u64,
) -> BootstrapCi {
    assert_eq!(y_true.len(), y_pred.len(), "bootstrap_ci: y_true and y_pred lengths differ");
    assert_eq!(probs.len(), y_true.len() * k, "bootstrap_ci: probs is not [n, k]");
    let mut classes: Vec<usize> = y_true.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let strata: Vec<Vec<usize>> =
        classes.iter().map(|&c| (0..y_true.len()).filter(|&i| y_true[i] == c).collect()).collect();

    let mut rng = StdRng::seed_from_u64(seed);
    let mut values: [Vec<f64>; 6] = Default::default();
    let (mut t, mut p, mut pr) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..resamples {
        t.clear();
        p.clear();
        pr.clear();
        for stratum in &strata {
            for _ in 0..stratum.len() {
                let i = stratum[rng.random_range(0..stratum.len())];
                t.push(y_true[i]);
                p.push(y_pred[i]);
                pr.extend_from_slice(&probs[i * k..(i + 1) * k]);
            }
        }
        let m = eval_metrics(&t, &p, &pr, k);
        let sample = [Some(m.acc), Some(m.bacc), Some(m.kappa), Some(m.weighted_f1), m.auroc, m.aupr];
        for (store, v) in values.iter_mut().zip(sample) {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                store.push(v);
            }
        }
    }
    let [acc, bacc, kappa, weighted_f1, auroc, aupr] = values.map(interval);
    BootstrapCi { acc, bacc, kappa, weighted_f1, auroc, aupr, resamples, seed }
}

/// Percentile interval, mean and std of finite values (`None` if there are none).
fn interval(mut values: Vec<f64>) -> Option<Interval> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let tail = (1.0 - CI_LEVEL) / 2.0;
    Some(Interval {
        lower: percentile(&values, tail),
        upper: percentile(&values, 1.0 - tail),
        mean,
        std,
        valid: values.len(),
    })
}

/// `np.percentile(values, 100 q)` with the default "linear" method on sorted, non-empty values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = pos - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    // numpy's _lerp: a + (b - a) t, computed from the nearer end for t >= 0.5.
    if t >= 0.5 { b - (b - a) * (1.0 - t) } else { a + (b - a) * t }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One hand-computed case: inputs and the expected metrics.
    struct Case {
        name: &'static str,
        y_true: &'static [usize],
        y_pred: &'static [usize],
        probs: &'static [f64],
        k: usize,
        expected: EvalMetrics,
    }

    fn close(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || (a - b).abs() < 1e-12
    }

    fn close_opt(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => close(a, b),
            _ => false,
        }
    }

    #[test]
    fn hand_computed_cases() {
        let cases = [
            Case {
                name: "perfect binary",
                y_true: &[0, 0, 1, 1],
                y_pred: &[0, 0, 1, 1],
                probs: &[0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.1, 0.9],
                k: 2,
                expected: EvalMetrics {
                    acc: 1.0,
                    bacc: 1.0,
                    kappa: 1.0,
                    weighted_f1: 1.0,
                    auroc: Some(1.0),
                    aupr: Some(1.0),
                },
            },
            Case {
                // p1 = [.5, .5, .2, .8]: one positive/negative tie counts 1/2 -> AUC 3.5/4.
                // AP: thresholds .8 (P=1, R=.5), .5 (P=2/3, R=1) -> .5 + .5 * 2/3.
                // Kappa: O = 1, E = (3*2 + 1*2)/4 = 2 -> 1/2. F1: class 0 = 4/5, class 1 = 2/3.
                name: "binary with ties",
                y_true: &[0, 1, 0, 1],
                y_pred: &[0, 0, 0, 1],
                probs: &[0.5, 0.5, 0.5, 0.5, 0.8, 0.2, 0.2, 0.8],
                k: 2,
                expected: EvalMetrics {
                    acc: 0.75,
                    bacc: 0.75,
                    kappa: 0.5,
                    weighted_f1: (0.8 + 2.0 / 3.0) / 2.0,
                    auroc: Some(0.875),
                    aupr: Some(0.5 + 0.5 * 2.0 / 3.0),
                },
            },
            Case {
                // Predicted class 2 is absent from y_true: bacc ignores it; kappa over {0,1,2}
                // gives O = 4, E = 16/4 = 4 -> 0; F1 weights 2/3 and 1 by support 2, 2.
                // Binary branch on p1 = [.6, .1, .7, .8]: perfectly ranked.
                name: "predicted class absent from y_true",
                y_true: &[0, 0, 1, 1],
                y_pred: &[0, 2, 1, 1],
                probs: &[0.3, 0.6, 0.1, 0.1, 0.1, 0.8, 0.2, 0.7, 0.1, 0.1, 0.8, 0.1],
                k: 3,
                expected: EvalMetrics {
                    acc: 0.75,
                    bacc: 0.75,
                    kappa: 0.0,
                    weighted_f1: (2.0 / 3.0 + 1.0) / 2.0,
                    auroc: Some(1.0),
                    aupr: Some(1.0),
                },
            },
            Case {
                // Single class everywhere: kappa undefined (nan); a 2-column AUROC is nan and
                // AUPR raises.
                name: "single class",
                y_true: &[1, 1, 1],
                y_pred: &[1, 1, 1],
                probs: &[0.2, 0.8, 0.4, 0.6, 0.1, 0.9],
                k: 2,
                expected: EvalMetrics {
                    acc: 1.0,
                    bacc: 1.0,
                    kappa: f64::NAN,
                    weighted_f1: 1.0,
                    auroc: Some(f64::NAN),
                    aupr: None,
                },
            },
            Case {
                name: "perfect multiclass",
                y_true: &[0, 1, 2, 2],
                y_pred: &[0, 1, 2, 2],
                probs: &[0.8, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.8, 0.2, 0.2, 0.6],
                k: 3,
                expected: EvalMetrics {
                    acc: 1.0,
                    bacc: 1.0,
                    kappa: 1.0,
                    weighted_f1: 1.0,
                    auroc: Some(1.0),
                    aupr: Some(1.0),
                },
            },
            Case {
                // 3 test classes but 4 model columns: sklearn raises -> both missing.
                name: "class absent from y_true, multiclass",
                y_true: &[0, 1, 2],
                y_pred: &[0, 1, 2],
                probs: &[0.7, 0.1, 0.1, 0.1, 0.1, 0.7, 0.1, 0.1, 0.1, 0.1, 0.7, 0.1],
                k: 4,
                expected: EvalMetrics { acc: 1.0, bacc: 1.0, kappa: 1.0, weighted_f1: 1.0, auroc: None, aupr: None },
            },
            Case {
                // Rows that do not sum to 1: multiclass roc_auc_score raises.
                name: "unnormalised multiclass scores",
                y_true: &[0, 1, 2],
                y_pred: &[0, 1, 2],
                probs: &[0.9, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.9],
                k: 3,
                expected: EvalMetrics { acc: 1.0, bacc: 1.0, kappa: 1.0, weighted_f1: 1.0, auroc: None, aupr: None },
            },
        ];
        for case in &cases {
            let got = eval_metrics(case.y_true, case.y_pred, case.probs, case.k);
            let e = case.expected;
            assert!(
                close(got.acc, e.acc)
                    && close(got.bacc, e.bacc)
                    && close(got.kappa, e.kappa)
                    && close(got.weighted_f1, e.weighted_f1)
                    && close_opt(got.auroc, e.auroc)
                    && close_opt(got.aupr, e.aupr),
                "{}: got {got:?}, expected {e:?}",
                case.name
            );
        }
    }

    #[test]
    fn binary_labels_other_than_zero_one() {
        // Labels {0, 2}: roc_auc_score binarizes (2 is positive); average_precision_score with
        // pos_label=1 raises.
        let m = eval_metrics(
            &[0, 2, 0, 2],
            &[0, 1, 0, 1],
            &[0.8, 0.1, 0.1, 0.05, 0.9, 0.05, 0.7, 0.2, 0.1, 0.1, 0.8, 0.1],
            3,
        );
        assert_eq!(m.auroc, Some(1.0));
        assert_eq!(m.aupr, None);
        // Labels {1, 2}: AUROC uses 2 as positive, AUPR uses 1 as positive.
        let m = eval_metrics(&[1, 2], &[1, 2], &[0.1, 0.2, 0.7, 0.1, 0.8, 0.1], 3);
        assert_eq!(m.auroc, Some(1.0));
        assert_eq!(m.aupr, Some(0.5));
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 1.0), 5.0);
        assert_eq!(percentile(&v, 0.025), 1.1);
        assert!((percentile(&v, 0.975) - 4.9).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 0.5), 7.0);
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_estimate() {
        let n = 60;
        let k = 3;
        let y_true: Vec<usize> = (0..n).map(|i| i % k).collect();
        let y_pred: Vec<usize> = (0..n).map(|i| if i % 7 == 0 { (i + 1) % k } else { i % k }).collect();
        let probs: Vec<f64> = (0..n)
            .flat_map(|i| {
                let hot = y_pred[i];
                let noise = (i % 5) as f64 * 0.05;
                (0..k).map(move |c| if c == hot { 0.6 + noise } else { (0.4 - noise) / 2.0 })
            })
            .collect();
        let point = eval_metrics(&y_true, &y_pred, &probs, k);
        let a = bootstrap_ci(&y_true, &y_pred, &probs, k, 200, 7);
        let b = bootstrap_ci(&y_true, &y_pred, &probs, k, 200, 7);
        assert_eq!(a, b);
        assert_ne!(a, bootstrap_ci(&y_true, &y_pred, &probs, k, 200, 8));
        let acc = a.acc.unwrap_or_else(|| panic!("acc interval missing"));
        assert_eq!(acc.valid, 200);
        assert!(acc.lower <= point.acc && point.acc <= acc.upper, "{acc:?} vs {}", point.acc);
        assert!(a.auroc.is_some() && a.aupr.is_some());
        assert!(bootstrap_ci(&y_true, &y_pred, &probs, k, 0, 7).acc.is_none());
    }

    #[test]
    fn bootstrap_skips_undefined_metrics() {
        // A single test class: kappa and AUROC are NaN and AUPR is None on every resample.
        let ci = bootstrap_ci(&[1, 1, 1], &[1, 1, 1], &[0.2, 0.8, 0.4, 0.6, 0.1, 0.9], 2, 50, 0);
        assert!(ci.kappa.is_none() && ci.auroc.is_none() && ci.aupr.is_none());
        assert_eq!(ci.acc.map(|i| (i.lower, i.upper, i.valid)), Some((1.0, 1.0, 50)));
    }
}
