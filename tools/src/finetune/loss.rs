//! The training loss: cross-entropy against soft targets.
//!
//! PanDerm picks one of three criteria (`run_class_finetuning.py`):
//!
//! | Mixup/CutMix | `--smoothing` | criterion |
//! |---|---|---|
//! | on | any | `timm.loss.SoftTargetCrossEntropy` on Mixup's smoothed, mixed one-hot targets |
//! | off | > 0 | `timm.loss.LabelSmoothingCrossEntropy(smoothing)` |
//! | off | 0 | `torch.nn.CrossEntropyLoss()` |
//!
//! All three are `mean_b Σ_k −t[b,k]·log_softmax(logits)[b,k]` for the right targets `t`:
//! label smoothing's `(1 − s)·nll + s·mean_k(−log p)` is the soft target
//! `(1 − s)·onehot + s/K`, and plain cross-entropy is the one-hot target. [`soft_targets`] builds
//! them (Mixup's `on = 1 − s + s/K`, `off = s/K` form), [`soft_target_cross_entropy`] computes the
//! loss on any backend.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// Smoothed one-hot targets `[labels.len() × k]`, row-major: `1 − s + s/k` at the label, `s/k`
/// elsewhere.
pub fn soft_targets(labels: &[usize], k: usize, smoothing: f64) -> Vec<f32> {
    let off = smoothing / k as f64;
    let on = 1.0 - smoothing + off;
    let mut t = vec![off as f32; labels.len() * k];
    for (row, &y) in labels.iter().enumerate() {
        t[row * k + y] = on as f32;
    }
    t
}

/// `mean_b Σ_k −targets[b,k] · log_softmax(logits)[b,k]` (a scalar tensor of shape `[1]`).
pub fn soft_target_cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: &[f32]) -> Tensor<B, 1> {
    let [b, k] = logits.dims();
    let t = Tensor::<B, 2>::from_data(TensorData::new(targets.to_vec(), [b, k]), &logits.device());
    log_softmax(logits, 1).mul(t).sum_dim(1).neg().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = burn::backend::NdArray<f32>;

    #[test]
    fn label_smoothing_matches_timm_formula() {
        // timm LabelSmoothingCrossEntropy(0.1) on logits [[1, 2, 0.5]], target 1:
        // logp = logits − logsumexp; loss = 0.9·(−logp[1]) + 0.1·mean(−logp).
        let logits = [1.0f64, 2.0, 0.5];
        let lse = logits.iter().map(|v| v.exp()).sum::<f64>().ln();
        let logp: Vec<f64> = logits.iter().map(|v| v - lse).collect();
        let want = 0.9 * -logp[1] + 0.1 * -(logp.iter().sum::<f64>() / 3.0);
        let t = soft_targets(&[1], 3, 0.1);
        let x = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 2.0, 0.5], [1, 3]), &Default::default());
        let got: f32 = soft_target_cross_entropy(x, &t).into_scalar();
        assert!((f64::from(got) - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn targets_rows_sum_to_one() {
        let t = soft_targets(&[0, 2], 4, 0.2);
        assert_eq!(t[..4], [0.85, 0.05, 0.05, 0.05]);
        assert!((t[4..].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(soft_targets(&[1], 2, 0.0), vec![0.0, 1.0]);
    }
}
