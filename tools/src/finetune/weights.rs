//! Fine-tuning weights on the host: in from any checkpoint `convert` reads, out in PanDerm's
//! fine-tuned checkpoint layout.
//!
//! * From a **pretrained backbone** (`panderm_bb_data6_checkpoint-499.pth` and the like), as
//!   `run_class_finetuning.py` builds the model: the final `norm` becomes `fc_norm` (PanDerm renames
//!   `norm.*` to `fc_norm.*`), every relative-position table starts at zero, and the new head is
//!   `trunc_normal_(std=0.02)` times `init_scale` 0.001 with a zero bias.
//! * From a **fine-tuned checkpoint** (`checkpoint-best.pth`, mean pooling): every weight as saved,
//!   to continue training; its head must have the requested number of classes.
//!
//! [`StateDict::to_pth_root`] writes `{'model': state_dict, 'epoch', 'args'}` with the keys in
//! PanDerm's order (including each block's `relative_position_index` buffer), which `convert`,
//! `bundle` and PyTorch (`torch.load(..., weights_only=False)`) read back.

use std::path::Path;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

use super::model::{Param, Params};
use crate::convert::checkpoint::Checkpoint;
use crate::convert::vit::{ModelKind, PoolNorm, Pooling, VitConfig, VitOptions, VitWeights, relative_position_index};
use crate::error::{Error, Result};
use crate::synth::pth::{PthData, PthTensor, PyValue};

/// PanDerm's `init_scale` for the new head.
pub const HEAD_INIT_SCALE: f32 = 0.001;
/// Std of the head's truncated-normal initialisation (`trunc_normal_(std=.02)`, cut at ±2).
pub const HEAD_INIT_STD: f32 = 0.02;

/// One named float tensor on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// State-dict key.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// Where the starting weights came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InitSource {
    /// A pretrained backbone: new head, zero relative-position tables, `fc_norm` from `norm`.
    Pretrained,
    /// A fine-tuned checkpoint, continued.
    FineTuned,
}

/// A fine-tuning model's float weights in PanDerm's state-dict order.
#[derive(Debug, Clone, PartialEq)]
pub struct StateDict {
    /// The architecture: a mean-pooling classifier with relative-position bias.
    pub config: VitConfig,
    /// The weights, in state-dict order (without the integer `relative_position_index` buffers).
    pub tensors: Vec<HostTensor>,
}

impl StateDict {
    /// Reads `path` (any layout `convert` accepts) and builds the model to fine-tune with
    /// `classes` outputs. `seed` draws the new head of a pretrained backbone.
    pub fn from_checkpoint(path: &Path, classes: usize, seed: u64) -> Result<(StateDict, InitSource)> {
        let mut ck = Checkpoint::open(path)?;
        let w = VitWeights::from_checkpoint(&mut ck, &VitOptions::default())?;
        Self::from_weights(w, classes, seed, path)
    }

    /// [`StateDict::from_checkpoint`] on weights already read.
    pub fn from_weights(w: VitWeights, classes: usize, seed: u64, path: &Path) -> Result<(StateDict, InitSource)> {
        let VitWeights { config, cls_token, pos_embed, patch_w, patch_b, blocks, pool_norm, head } = w;
        let (d, h) = (config.embed_dim, config.num_heads);
        let source = match (&pool_norm, &head) {
            (PoolNorm::MeanPatch { .. }, Some(head)) if head.classes != classes => {
                return Err(Error::Invalid {
                    path: path.to_path_buf(),
                    reason: format!(
                        "this fine-tuned checkpoint's head has {} classes but --nb-classes is {classes}; start from the pretrained backbone to train a new head",
                        head.classes
                    ),
                });
            }
            (PoolNorm::MeanPatch { .. }, Some(_)) => InitSource::FineTuned,
            (PoolNorm::Cls { .. }, _) => InitSource::Pretrained,
            (PoolNorm::MeanPatch { .. }, None) => {
                return Err(Error::Invalid {
                    path: path.to_path_buf(),
                    reason: "has `fc_norm` but no `head`: neither a pretrained backbone nor a fine-tuned classifier"
                        .into(),
                });
            }
        };
        let config = VitConfig {
            rel_pos_bias: true,
            kind: ModelKind::Classifier,
            pooling: Pooling::MeanPatch,
            num_classes: Some(classes),
            ..config
        };
        let mut t = Vec::with_capacity(4 + 16 * blocks.len() + 4);
        let mut push = |name: String, shape: Vec<usize>, data: Vec<f32>| t.push(HostTensor { name, shape, data });
        push("cls_token".into(), vec![1, 1, d], cls_token);
        push("pos_embed".into(), vec![1, config.tokens(), d], pos_embed);
        push("patch_embed.proj.weight".into(), vec![d, 3, config.patch_size, config.patch_size], patch_w);
        push("patch_embed.proj.bias".into(), vec![d], patch_b);
        let (hidden, table_len) = (config.mlp_hidden, config.rel_table_len());
        for (i, b) in blocks.into_iter().enumerate() {
            let k = |s: &str| format!("blocks.{i}.{s}");
            push(k("gamma_1"), vec![d], b.gamma_1);
            push(k("gamma_2"), vec![d], b.gamma_2);
            push(k("norm1.weight"), vec![d], b.norm1_w);
            push(k("norm1.bias"), vec![d], b.norm1_b);
            push(k("attn.q_bias"), vec![d], b.q_bias);
            push(k("attn.v_bias"), vec![d], b.v_bias);
            let table = b.rel_pos_table.unwrap_or_else(|| vec![0.0; table_len * h]);
            push(k("attn.relative_position_bias_table"), vec![table_len, h], table);
            push(k("attn.qkv.weight"), vec![3 * d, d], b.qkv_w);
            push(k("attn.proj.weight"), vec![d, d], b.proj_w);
            push(k("attn.proj.bias"), vec![d], b.proj_b);
            push(k("norm2.weight"), vec![d], b.norm2_w);
            push(k("norm2.bias"), vec![d], b.norm2_b);
            push(k("mlp.fc1.weight"), vec![hidden, d], b.fc1_w);
            push(k("mlp.fc1.bias"), vec![hidden], b.fc1_b);
            push(k("mlp.fc2.weight"), vec![d, hidden], b.fc2_w);
            push(k("mlp.fc2.bias"), vec![d], b.fc2_b);
        }
        let (PoolNorm::Cls { weight, bias } | PoolNorm::MeanPatch { weight, bias }) = pool_norm;
        push("fc_norm.weight".into(), vec![d], weight);
        push("fc_norm.bias".into(), vec![d], bias);
        let (head_w, head_b) = match (source, head) {
            (InitSource::FineTuned, Some(head)) => (head.weight, head.bias),
            _ => (new_head(classes, d, seed), vec![0.0; classes]),
        };
        push("head.weight".into(), vec![classes, d], head_w);
        push("head.bias".into(), vec![classes], head_b);
        Ok((StateDict { config, tensors: t }, source))
    }

    /// The weights on `device` for training: every tensor but `pos_embed` requires a gradient.
    pub fn to_params<B: AutodiffBackend>(&self, device: &B::Device) -> Params<B> {
        let entries = self
            .tensors
            .iter()
            .map(|t| {
                let trainable = t.name != "pos_embed";
                let value = Tensor::<B, 1>::from_data(TensorData::new(t.data.clone(), [t.data.len()]), device);
                let value = if trainable { value.require_grad() } else { value };
                Param { name: t.name.clone(), shape: t.shape.clone(), value, trainable }
            })
            .collect();
        Params::new(self.config.clone(), entries, device)
    }

    /// Downloads `params` (any backend) into a state dict.
    pub fn from_params<B: Backend>(params: &Params<B>) -> Result<StateDict> {
        let tensors = params
            .entries
            .iter()
            .map(|p| {
                let data =
                    p.value.clone().into_data().into_vec::<f32>().map_err(|e| {
                        Error::Refused(format!("reading weight {} back from the device: {e:?}", p.name))
                    })?;
                Ok(HostTensor { name: p.name.clone(), shape: p.shape.clone(), data })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StateDict { config: params.config.clone(), tensors })
    }

    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&HostTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The pickle tree of PanDerm's fine-tuned checkpoint: `{'model': state_dict, 'epoch': epoch,
    /// 'args': Namespace(...)}`. `rel_index` must be [`relative_position_index`] of the grid
    /// (borrowed by every block's buffer).
    pub fn to_pth_root<'a>(
        &'a self,
        rel_index: &'a [i64],
        epoch: PyValue<'a>,
        args: Vec<(String, PyValue<'a>)>,
    ) -> PyValue<'a> {
        let n = self.config.tokens();
        let mut sd: Vec<(String, PyValue<'a>)> = Vec::with_capacity(self.tensors.len() + self.config.depth);
        for t in &self.tensors {
            sd.push((
                t.name.clone(),
                PyValue::Tensor(PthTensor { shape: t.shape.clone(), data: PthData::F32(&t.data) }),
            ));
            if let Some(block) = t.name.strip_suffix(".attn.relative_position_bias_table") {
                sd.push((
                    format!("{block}.attn.relative_position_index"),
                    PyValue::Tensor(PthTensor::i64(vec![n, n], rel_index)),
                ));
            }
        }
        PyValue::Dict(vec![
            ("model".into(), PyValue::OrderedDict(sd)),
            ("epoch".into(), epoch),
            ("args".into(), PyValue::Namespace(args)),
        ])
    }

    /// BEiT's relative-position index for this model's grid (`[tokens²]`).
    pub fn rel_index(&self) -> Vec<i64> {
        relative_position_index(self.config.grid())
    }
}

/// `trunc_normal_(head.weight, std=.02)` (cut at ±2, as timm's default absolute bounds) times
/// `init_scale`, from a seeded generator.
fn new_head(classes: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    // std 0.02 > 0 and finite, so the distribution is valid.
    let normal = Normal::new(0.0f32, HEAD_INIT_STD).unwrap_or_else(|_| unreachable!("valid normal"));
    (0..classes * d)
        .map(|_| {
            loop {
                let v = normal.sample(&mut rng);
                if (-2.0..=2.0).contains(&v) {
                    break v * HEAD_INIT_SCALE;
                }
            }
        })
        .collect()
}
