//! PanDerm's per-step learning-rate schedule and layer-wise learning-rate decay.
//!
//! * [`cosine_scheduler`] is `furnace/utils.py::cosine_scheduler` (BEiT's), value for value:
//!   `np.linspace(start_warmup_value, base_value, warmup_iters)` (so the first warmup step has
//!   learning rate 0 and the last one reaches `base_value`), then
//!   `final + 0.5·(base − final)·(1 + cos(π·i / n))` for the remaining `n` steps.
//! * [`layer_id`] and [`LayerDecay`] are `furnace/optim_factory.py`'s `get_layer_id_for_vit` and
//!   `LayerDecayValueAssigner`: `cls_token`, `pos_embed`, `patch_embed.*` are layer 0, `blocks.i.*`
//!   layer `i + 1`, everything else (`fc_norm`, `head`) layer `depth + 1`; the scale of layer `l`
//!   is `decay^(depth + 1 − l)`.
//! * [`no_weight_decay`] is the parameter grouping of `get_parameter_groups`: no weight decay for
//!   1-D tensors, `*.bias`, and the model's skip list (`pos_embed`, `cls_token`).

/// `cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs)` with
/// `start_warmup_value = 0` and no `warmup_steps` override: one value per optimizer step,
/// `epochs × niter_per_ep` in all.
///
/// Returns `None` when the warmup is longer than the run (PanDerm's assertion on the length
/// would fail).
pub fn cosine_scheduler(
    base_value: f64,
    final_value: f64,
    epochs: usize,
    niter_per_ep: usize,
    warmup_epochs: usize,
) -> Option<Vec<f64>> {
    let total = epochs.checked_mul(niter_per_ep)?;
    let warmup_iters = warmup_epochs.checked_mul(niter_per_ep)?;
    if warmup_iters > total {
        return None;
    }
    let mut schedule = linspace(0.0, base_value, warmup_iters);
    let n = total - warmup_iters;
    schedule.extend((0..n).map(|i| {
        final_value + 0.5 * (base_value - final_value) * (1.0 + (std::f64::consts::PI * i as f64 / n as f64).cos())
    }));
    Some(schedule)
}

/// `np.linspace(start, stop, num)` (endpoint included): `start + i·step` with
/// `step = (stop − start)/(num − 1)`, the last value exactly `stop`; `[start]` for `num = 1`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    match num {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (stop - start) / (num - 1) as f64;
            let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
            v[num - 1] = stop;
            v
        }
    }
}

/// The layer id of a state-dict key in a ViT of `depth` blocks (`get_layer_id_for_vit` with
/// `num_layers = depth + 2`).
pub fn layer_id(name: &str, depth: usize) -> usize {
    if matches!(name, "cls_token" | "mask_token" | "pos_embed") || name.starts_with("patch_embed") {
        0
    } else if let Some(rest) = name.strip_prefix("blocks.") {
        rest.split('.').next().and_then(|i| i.parse::<usize>().ok()).map_or(depth + 1, |i| i + 1)
    } else {
        depth + 1
    }
}

/// Layer-wise learning-rate decay (`--layer_decay`).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerDecay {
    /// `decay^(depth + 1 − l)` for `l = 0..=depth + 1`.
    pub scales: Vec<f64>,
}

impl LayerDecay {
    /// The scales for a ViT of `depth` blocks. A decay of 1 (PanDerm's `--layer_decay 1.0`)
    /// gives every layer scale 1.
    pub fn new(decay: f64, depth: usize) -> Self {
        let num_layers = depth + 2;
        LayerDecay { scales: (0..num_layers).map(|l| decay.powi((num_layers - 1 - l) as i32)).collect() }
    }

    /// The learning-rate scale of a state-dict key.
    pub fn scale(&self, name: &str) -> f64 {
        let depth = self.scales.len() - 2;
        self.scales[layer_id(name, depth).min(depth + 1)]
    }
}

/// Whether PanDerm's optimizer puts the weight in the no-weight-decay group.
pub fn no_weight_decay(name: &str, shape: &[usize]) -> bool {
    shape.len() == 1 || name.ends_with(".bias") || matches!(name, "pos_embed" | "cls_token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_the_fixture_values() {
        // ../shared/data/fixtures/ft_steps/expected.json: lr 5e-4, min 1e-6, 4 epochs × 1 step,
        // 1 warmup epoch.
        let s = cosine_scheduler(5e-4, 1e-6, 4, 1, 1).unwrap();
        let want = [0.0, 0.0005, 0.00037525000000000004, 0.00012575000000000005];
        for (a, b) in s.iter().zip(want) {
            assert!((a - b).abs() <= 1e-18, "{s:?}");
        }
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn warmup_is_a_linspace_from_zero_to_the_base() {
        let s = cosine_scheduler(1.0, 0.0, 3, 2, 2).unwrap();
        assert_eq!(s[..4], [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]);
        assert_eq!(s[4], 1.0);
        assert!((s[5] - 0.5).abs() < 1e-15);
        assert!(cosine_scheduler(1.0, 0.0, 2, 5, 3).is_none());
        assert_eq!(cosine_scheduler(1.0, 0.0, 2, 0, 1).unwrap(), Vec::<f64>::new());
    }

    #[test]
    fn layer_ids_and_scales() {
        let cases = [
            ("cls_token", 0),
            ("pos_embed", 0),
            ("patch_embed.proj.weight", 0),
            ("blocks.0.attn.qkv.weight", 1),
            ("blocks.11.gamma_2", 12),
            ("fc_norm.weight", 13),
            ("head.bias", 13),
        ];
        for (name, id) in cases {
            assert_eq!(layer_id(name, 12), id, "{name}");
        }
        let ld = LayerDecay::new(0.65, 2);
        assert_eq!(ld.scales, vec![0.65f64.powi(3), 0.65f64.powi(2), 0.65, 1.0]);
        assert_eq!(ld.scale("blocks.1.norm1.weight"), 0.65);
    }

    #[test]
    fn weight_decay_groups() {
        let cases: [(&str, &[usize], bool); 7] = [
            ("cls_token", &[1, 1, 8], true),
            ("pos_embed", &[1, 197, 8], true),
            ("blocks.0.gamma_1", &[8], true),
            ("blocks.0.attn.proj.bias", &[8], true),
            ("blocks.0.attn.relative_position_bias_table", &[732, 2], false),
            ("blocks.0.attn.qkv.weight", &[24, 8], false),
            ("head.weight", &[3, 8], false),
        ];
        for (name, shape, skip) in cases {
            assert_eq!(no_weight_decay(name, shape), skip, "{name}");
        }
    }
}
