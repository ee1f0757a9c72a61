//! AdamW with PanDerm's parameter groups, as `torch.optim.AdamW` computes it.
//!
//! Each trainable weight belongs to a group (`furnace/optim_factory.py::get_parameter_groups`):
//! its learning rate is the schedule's value times its layer-decay scale, and its weight decay is
//! `--weight-decay` or 0 ([`super::schedule::no_weight_decay`]). For one weight `p` with gradient
//! `g` at step `t` (counted from 1):
//!
//! ```text
//! p ← p · (1 − lr·wd)
//! m ← β1·m + (1 − β1)·g
//! v ← β2·v + (1 − β2)·g²
//! p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
//! ```
//!
//! which is PyTorch's single-tensor and multi-tensor AdamW (`amsgrad=False`, `maximize=False`).
//! A step at learning rate 0 — PanDerm's first warmup step — still updates `m`, `v` and `t`, as
//! PyTorch does.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// AdamW's constants (PanDerm: betas (0.9, 0.999), eps 1e-8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// One weight's optimizer settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Group {
    /// Layer-decay scale of the learning rate.
    pub lr_scale: f64,
    /// Weight decay (0 for the no-decay group).
    pub weight_decay: f64,
}

/// The first and second moments of one weight.
#[derive(Debug, Clone)]
pub struct Moments<B: Backend> {
    /// `exp_avg`.
    pub m: Tensor<B, 1>,
    /// `exp_avg_sq`.
    pub v: Tensor<B, 1>,
}

/// AdamW state for a list of weights (one slot per weight, `None` for frozen ones).
#[derive(Debug, Clone)]
pub struct AdamW<B: Backend> {
    /// Constants.
    pub config: AdamWConfig,
    /// Per weight: its group, or `None` when it is not trained.
    pub groups: Vec<Option<Group>>,
    /// Per weight: its moments, once it has had a step.
    pub moments: Vec<Option<Moments<B>>>,
    /// Steps taken (PyTorch's per-parameter `step`, equal for all weights here).
    pub step: u64,
}

impl<B: Backend> AdamW<B> {
    /// A fresh optimizer for weights in `groups` order.
    pub fn new(config: AdamWConfig, groups: Vec<Option<Group>>) -> Self {
        let moments = groups.iter().map(|_| None).collect();
        AdamW { config, groups, moments, step: 0 }
    }

    /// One step at schedule learning rate `lr`: returns the new values of `params` given their
    /// `grads` (a frozen weight, or one without a gradient, is returned unchanged).
    pub fn step(&mut self, lr: f64, params: Vec<Tensor<B, 1>>, grads: Vec<Option<Tensor<B, 1>>>) -> Vec<Tensor<B, 1>> {
        self.step += 1;
        let t = self.step as i32;
        let AdamWConfig { beta1, beta2, eps } = self.config;
        let bc1 = 1.0 - beta1.powi(t);
        let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        params
            .into_iter()
            .zip(grads)
            .enumerate()
            .map(|(i, (p, g))| {
                let (Some(group), Some(g)) = (self.groups[i], g) else {
                    return p;
                };
                let lr = lr * group.lr_scale;
                let p = if group.weight_decay != 0.0 { p.mul_scalar(1.0 - lr * group.weight_decay) } else { p };
                let (m, v) = match self.moments[i].take() {
                    Some(Moments { m, v }) => (
                        m.mul_scalar(beta1).add(g.clone().mul_scalar(1.0 - beta1)),
                        v.mul_scalar(beta2).add(g.square().mul_scalar(1.0 - beta2)),
                    ),
                    None => (g.clone().mul_scalar(1.0 - beta1), g.square().mul_scalar(1.0 - beta2)),
                };
                let denom = v.clone().sqrt().div_scalar(bc2_sqrt).add_scalar(eps);
                let p = p.sub(m.clone().div(denom).mul_scalar(lr / bc1));
                self.moments[i] = Some(Moments { m, v });
                p
            })
            .collect()
    }
}
