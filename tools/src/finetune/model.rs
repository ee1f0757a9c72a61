//! PanDerm's fine-tuning ViT (`models/modeling_finetune.py::VisionTransformer` with mean pooling,
//! `fc_norm`, per-block relative-position bias and layer scale) written once over burn's tensor
//! API, so the same code runs on the CPU (ndarray) and on CUDA, with or without autodiff.
//!
//! The weights are kept as flat tensors named exactly as PanDerm's state dict names them
//! ([`Params`]); the forward pass reshapes them where it needs them. That keeps one description
//! of the model ([`VitConfig`], the converter's) and makes saving PanDerm's checkpoint layout a
//! matter of walking the list.

use std::collections::HashMap;

use burn::tensor::activation::softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};

use crate::convert::vit::{LN_EPS, VitConfig, relative_position_index};

/// One named weight on a device, flattened to one dimension.
#[derive(Debug, Clone)]
pub struct Param<B: Backend> {
    /// PanDerm's state-dict key (`blocks.0.attn.qkv.weight`).
    pub name: String,
    /// The tensor's shape in the state dict.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub value: Tensor<B, 1>,
    /// Whether the optimizer updates it (`pos_embed` is a fixed sin-cos table in PanDerm:
    /// `requires_grad=False`).
    pub trainable: bool,
}

/// The model's weights on one device, in PanDerm's state-dict order.
#[derive(Debug, Clone)]
pub struct Params<B: Backend> {
    /// The architecture (a mean-pooling classifier with relative-position bias).
    pub config: VitConfig,
    /// Every weight, in state-dict order.
    pub entries: Vec<Param<B>>,
    index: HashMap<String, usize>,
    /// BEiT's relative-position index `[tokens²]` (a buffer, not trained).
    rel_index: Tensor<B, 1, Int>,
}

impl<B: Backend> Params<B> {
    /// Builds the device-side weights. `entries` must hold every key [`forward`] reads.
    pub fn new(config: VitConfig, entries: Vec<Param<B>>, device: &B::Device) -> Self {
        let index = entries.iter().enumerate().map(|(i, p)| (p.name.clone(), i)).collect();
        let idx = relative_position_index(config.grid());
        let n = idx.len();
        let rel_index = Tensor::from_data(TensorData::new(idx, [n]), device);
        Params { config, entries, index, rel_index }
    }

    /// Replaces the values of the entries, keeping names, shapes and flags (after an optimizer
    /// step).
    pub fn with_values(&self, values: Vec<Tensor<B, 1>>) -> Params<B> {
        let entries = self.entries.iter().zip(values).map(|(p, value)| Param { value, ..p.clone() }).collect();
        Params { config: self.config.clone(), entries, index: self.index.clone(), rel_index: self.rel_index.clone() }
    }

    /// The weight named `name`, reshaped to `shape`.
    ///
    /// # Panics
    /// If the key is absent: the entries are built from the same [`VitConfig`] the forward pass
    /// reads, so a missing key is a bug.
    fn get<const D: usize>(&self, name: &str, shape: [usize; D]) -> Tensor<B, D> {
        let i = *self.index.get(name).unwrap_or_else(|| panic!("finetune model: no weight named {name}"));
        self.entries[i].value.clone().reshape(shape)
    }
}

impl<B: AutodiffBackend> Params<B> {
    /// The same weights without autodiff, on the inner backend (evaluation and saving).
    pub fn inner(&self) -> Params<B::InnerBackend> {
        let entries = self
            .entries
            .iter()
            .map(|p| Param {
                name: p.name.clone(),
                shape: p.shape.clone(),
                value: p.value.clone().inner(),
                trainable: p.trainable,
            })
            .collect();
        Params {
            config: self.config.clone(),
            entries,
            index: self.index.clone(),
            rel_index: self.rel_index.clone().inner(),
        }
    }
}

/// Per-sample keep masks of stochastic depth (timm's `DropPath`), already divided by the keep
/// probability: `[batch]` values of 0 or `1/keep`, one mask per residual branch (attention and
/// MLP of every block, in that order).
#[derive(Debug, Clone)]
pub struct DropPathMasks<B: Backend> {
    /// `2 × depth` masks of shape `[batch, 1, 1]`.
    pub masks: Vec<Tensor<B, 3>>,
}

/// PanDerm's `LayerNorm(eps=1e-6)` over the last axis (biased variance), then the affine map.
fn layer_norm<B: Backend, const D: usize>(x: Tensor<B, D>, weight: Tensor<B, D>, bias: Tensor<B, D>) -> Tensor<B, D> {
    let mean = x.clone().mean_dim(D - 1);
    let centered = x - mean;
    let var = centered.clone().square().mean_dim(D - 1);
    centered.div(var.add_scalar(LN_EPS).sqrt()).mul(weight).add(bias)
}

/// PanDerm's `nn.GELU()`: the exact erf form `0.5·x·(1 + erf(x/√2))`, composed from
/// differentiable ops. burn 0.21's fused `gelu` computes this forward but back-propagates the
/// derivative of the *tanh approximation*, which moved `fc1` updates 1 % away from PyTorch's
/// (tools/tests/finetune.rs); erf's own backward is exact (`2/√π·e^(−x²)`).
fn gelu_erf<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone().mul(x.div_scalar(std::f64::consts::SQRT_2).erf().add_scalar(1.0)).mul_scalar(0.5)
}

/// `x @ weight^T + bias` for `x [rows, in]` and a PyTorch `Linear` weight `[out, in]`.
fn linear<B: Backend>(x: Tensor<B, 2>, weight: Tensor<B, 2>, bias: Tensor<B, 2>) -> Tensor<B, 2> {
    x.matmul(weight.transpose()).add(bias)
}

/// The classifier's logits `[batch, K]` for normalised images `[batch, 3, 224, 224]`
/// (`model.forward`). `drop_path` applies stochastic depth (training); `None` is eval mode.
pub fn forward<B: Backend>(p: &Params<B>, images: Tensor<B, 4>, drop_path: Option<&DropPathMasks<B>>) -> Tensor<B, 2> {
    let c = &p.config;
    let [b, _, _, _] = images.dims();
    let (d, ps, g, n) = (c.embed_dim, c.patch_size, c.grid(), c.tokens());
    let h = c.num_heads;
    let hd = d / h;

    // Patch embedding: the stride-16 convolution as a matmul over flattened patches, patch
    // tokens row-major (`flatten(2).transpose(1, 2)`), each patch flattened as (channel, y, x)
    // to match the conv weight `[D, 3, p, p]`.
    let patches = images.reshape([b, 3, g, ps, g, ps]).permute([0, 2, 4, 1, 3, 5]).reshape([b * g * g, 3 * ps * ps]);
    let w = p.get("patch_embed.proj.weight", [d, 3 * ps * ps]);
    let tokens = linear(patches, w, p.get("patch_embed.proj.bias", [1, d])).reshape([b, g * g, d]);
    let cls = p.get("cls_token", [1, 1, d]).expand([b, 1, d]);
    let mut x = Tensor::cat(vec![cls, tokens], 1).add(p.get("pos_embed", [1, n, d]));

    let scale = (hd as f64).powf(-0.5);
    for i in 0..c.depth {
        let key = |s: &str| format!("blocks.{i}.{s}");
        // Attention.
        let y = layer_norm(x.clone(), p.get(&key("norm1.weight"), [1, 1, d]), p.get(&key("norm1.bias"), [1, 1, d]));
        let zeros = Tensor::<B, 1>::zeros([d], &y.device());
        let qkv_bias = Tensor::cat(vec![p.get(&key("attn.q_bias"), [d]), zeros, p.get(&key("attn.v_bias"), [d])], 0);
        let qkv =
            linear(y.reshape([b * n, d]), p.get(&key("attn.qkv.weight"), [3 * d, d]), qkv_bias.reshape([1, 3 * d]))
                .reshape([b, n, 3, h, hd])
                .permute([2, 0, 3, 1, 4]);
        let q = qkv.clone().narrow(0, 0, 1).reshape([b, h, n, hd]).mul_scalar(scale);
        let k = qkv.clone().narrow(0, 1, 1).reshape([b, h, n, hd]);
        let v = qkv.narrow(0, 2, 1).reshape([b, h, n, hd]);
        let mut logits = q.matmul(k.swap_dims(2, 3));
        if c.rel_pos_bias {
            let table = p.get(&key("attn.relative_position_bias_table"), [c.rel_table_len(), h]);
            let bias = table.select(0, p.rel_index.clone()).reshape([n, n, h]).permute([2, 0, 1]).reshape([1, h, n, n]);
            logits = logits.add(bias);
        }
        let attn = softmax(logits, 3);
        let o = attn.matmul(v).swap_dims(1, 2).reshape([b * n, d]);
        let o = linear(o, p.get(&key("attn.proj.weight"), [d, d]), p.get(&key("attn.proj.bias"), [1, d]))
            .reshape([b, n, d]);
        let mut branch = o.mul(p.get(&key("gamma_1"), [1, 1, d]));
        if let Some(m) = drop_path {
            branch = branch.mul(m.masks[2 * i].clone());
        }
        x = x.add(branch);

        // MLP.
        let y = layer_norm(x.clone(), p.get(&key("norm2.weight"), [1, 1, d]), p.get(&key("norm2.bias"), [1, 1, d]));
        let hidden = c.mlp_hidden;
        let y = linear(
            y.reshape([b * n, d]),
            p.get(&key("mlp.fc1.weight"), [hidden, d]),
            p.get(&key("mlp.fc1.bias"), [1, hidden]),
        );
        let y = linear(gelu_erf(y), p.get(&key("mlp.fc2.weight"), [d, hidden]), p.get(&key("mlp.fc2.bias"), [1, d]))
            .reshape([b, n, d]);
        let mut branch = y.mul(p.get(&key("gamma_2"), [1, 1, d]));
        if let Some(m) = drop_path {
            branch = branch.mul(m.masks[2 * i + 1].clone());
        }
        x = x.add(branch);
    }

    // Mean of the patch tokens (CLS excluded), `fc_norm`, head.
    let pooled = x.narrow(1, 1, n - 1).mean_dim(1).reshape([b, d]);
    let f = layer_norm(pooled, p.get("fc_norm.weight", [1, d]), p.get("fc_norm.bias", [1, d]));
    let k = c.num_classes.unwrap_or(0);
    linear(f, p.get("head.weight", [k, d]), p.get("head.bias", [1, k]))
}
