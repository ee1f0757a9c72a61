//! PanDerm's linear probe objective and training (`eval_features/logistic_regression.py`):
//!
//! ```text
//! loss(W, b) = CrossEntropy_mean(X·Wᵀ + b, y) + (1/C) · 0.5 · ‖W‖_F      (norm NOT squared)
//! ```
//!
//! with `W: [K, D]`, `b: [K]` (the bias is not penalised), `C = D·K/100`, minimised full-batch
//! by [`super::lbfgs::minimize`]. Optional class weights follow `torch.nn.CrossEntropyLoss(weight=w)`:
//! `Σ w_{y_i}·CE_i / Σ w_{y_i}`.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Uniform};

use super::lbfgs::{LbfgsOptions, LbfgsReport, minimize};
use super::linalg::{Mat, matmul};

/// A trained linear head: `probabilities = softmax(x · Wᵀ + b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearHead {
    /// Input width D.
    pub in_dim: usize,
    /// Classes K.
    pub classes: usize,
    /// `[K, D]`, row-major.
    pub weight: Vec<f64>,
    /// `[K]`.
    pub bias: Vec<f64>,
}

/// Training data for the probe: `n × d` features and their labels.
#[derive(Debug, Clone, Copy)]
pub struct TrainData<'a> {
    /// Row-major `[n, d]` features.
    pub x: &'a [f64],
    /// Labels in `0..k`.
    pub y: &'a [usize],
    /// Feature width.
    pub d: usize,
    /// Number of classes.
    pub k: usize,
}

/// PanDerm's cost: `C = D·K/100`.
pub fn panderm_c(d: usize, k: usize) -> f64 {
    (d * k) as f64 / 100.0
}

/// Row-wise softmax of `[n, k]` logits, in place.
pub fn softmax_rows(z: &mut [f64], k: usize) {
    for row in z.chunks_exact_mut(k) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

/// The objective, evaluated at a flat parameter vector `[W (K·D), b (K)]` (torch's order).
pub struct Objective<'a> {
    data: TrainData<'a>,
    inv_c: f64,
    /// Per-sample weight `w_{y_i} / Σ w_{y_j}`.
    sample_w: Vec<f64>,
    logits: Vec<f64>,
}

impl<'a> Objective<'a> {
    /// Builds the objective; `class_weights` (length K) default to 1.
    pub fn new(data: TrainData<'a>, c: f64, class_weights: Option<&[f64]>) -> Self {
        let n = data.y.len();
        let raw: Vec<f64> = data.y.iter().map(|&y| class_weights.map_or(1.0, |w| w[y])).collect();
        let total: f64 = raw.iter().sum();
        let sample_w = raw.into_iter().map(|w| w / total).collect();
        Objective { data, inv_c: 1.0 / c, sample_w, logits: vec![0.0; n * data.k] }
    }

    /// Loss at `params`; writes the gradient into `grad`.
    pub fn eval(&mut self, params: &[f64], grad: &mut [f64]) -> f64 {
        let TrainData { x, y, d, k } = self.data;
        let n = y.len();
        let (w, b) = params.split_at(k * d);
        matmul(Mat::new(x, n, d), false, Mat::new(w, k, d), true, &mut self.logits);
        let mut loss = 0.0;
        // logits -> dL/dz = (p - onehot) * sample weight
        for ((row, &yi), &sw) in self.logits.chunks_exact_mut(k).zip(y).zip(&self.sample_w) {
            for (v, bj) in row.iter_mut().zip(b) {
                *v += bj;
            }
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
            let log_z = max + sum.ln();
            loss += sw * (log_z - row[yi]);
            for v in row.iter_mut() {
                *v = (*v - log_z).exp() * sw;
            }
            row[yi] -= sw;
        }
        let (gw, gb) = grad.split_at_mut(k * d);
        matmul(Mat::new(&self.logits, n, k), true, Mat::new(x, n, d), false, gw);
        gb.fill(0.0);
        for row in self.logits.chunks_exact(k) {
            for (g, v) in gb.iter_mut().zip(row) {
                *g += v;
            }
        }
        let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
        loss += self.inv_c * 0.5 * norm;
        if norm > 0.0 {
            let s = self.inv_c * 0.5 / norm;
            for (g, v) in gw.iter_mut().zip(w) {
                *g += s * v;
            }
        }
        loss
    }
}

/// Trains the head with PanDerm's recipe (seeded `nn.Linear`-style init: weight and bias
/// uniform in ±1/√D) and returns it with the optimizer's report.
pub fn train(
    data: TrainData<'_>,
    c: f64,
    class_weights: Option<&[f64]>,
    opts: &LbfgsOptions,
    seed: u64,
) -> (LinearHead, LbfgsReport) {
    let TrainData { d, k, .. } = data;
    let bound = 1.0 / (d as f64).sqrt();
    let mut rng = StdRng::seed_from_u64(seed);
    let dist = Uniform::new(-bound, bound).expect("bound is positive and finite");
    let mut params: Vec<f64> = (0..k * d + k).map(|_| dist.sample(&mut rng)).collect();
    let mut obj = Objective::new(data, c, class_weights);
    let report = minimize(|p, g| obj.eval(p, g), &mut params, opts);
    let bias = params.split_off(k * d);
    (LinearHead { in_dim: d, classes: k, weight: params, bias }, report)
}

impl LinearHead {
    /// Class probabilities `[n, K]` for row-major `[n, D]` features.
    pub fn predict_proba(&self, x: &[f64]) -> Vec<f64> {
        let n = x.len() / self.in_dim;
        let mut z = vec![0.0; n * self.classes];
        matmul(Mat::new(x, n, self.in_dim), false, Mat::new(&self.weight, self.classes, self.in_dim), true, &mut z);
        for row in z.chunks_exact_mut(self.classes) {
            for (v, b) in row.iter_mut().zip(&self.bias) {
                *v += b;
            }
        }
        softmax_rows(&mut z, self.classes);
        z
    }
}

/// Index of the largest value per row (first on ties, like `torch.argmax`).
pub fn argmax_rows(p: &[f64], k: usize) -> Vec<usize> {
    p.chunks_exact(k)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) })
                .0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let (n, d, k) = (13, 5, 3);
        let x: Vec<f64> = (0..n * d).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
        let y: Vec<usize> = (0..n).map(|i| i % k).collect();
        let data = TrainData { x: &x, y: &y, d, k };
        let weights = [1.0, 2.0, 0.5];
        let mut obj = Objective::new(data, 0.15, Some(&weights));
        let p: Vec<f64> = (0..k * d + k).map(|i| (i as f64 * 0.3).sin()).collect();
        let mut g = vec![0.0; p.len()];
        obj.eval(&p, &mut g);
        for i in 0..p.len() {
            let h = 1e-6;
            let (mut pp, mut pm) = (p.clone(), p.clone());
            pp[i] += h;
            pm[i] -= h;
            let mut scratch = vec![0.0; p.len()];
            let fd = (obj.eval(&pp, &mut scratch) - obj.eval(&pm, &mut scratch)) / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-6, "param {i}: {fd} vs {}", g[i]);
        }
    }

    #[test]
    fn separable_data_is_learned() {
        let (n, d, k) = (60, 2, 3);
        let centers = [(3.0, 0.0), (0.0, 3.0), (-3.0, -3.0)];
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = i % k;
            x.push(centers[c].0 + ((i * 37) % 10) as f64 / 20.0);
            x.push(centers[c].1 - ((i * 53) % 10) as f64 / 20.0);
            y.push(c);
        }
        let data = TrainData { x: &x, y: &y, d, k };
        // PanDerm's C = D·K/100 is 0.06 here (a 2-d toy), which regularises W to almost zero;
        // a weak penalty shows that the optimizer separates the classes.
        assert!((panderm_c(d, k) - 0.06).abs() < 1e-12);
        let (head, rep) = train(data, 100.0, None, &LbfgsOptions::default(), 0);
        assert!(rep.loss < rep.initial_loss);
        let pred = argmax_rows(&head.predict_proba(&x), k);
        assert_eq!(pred, y);
    }
}
