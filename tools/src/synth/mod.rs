//! `panderm-tools synth`: random-weight checkpoints in PanDerm's exact on-disk layouts, so
//! that full-size benchmarks and tests need no download (PanDerm's weights are
//! CC-BY-NC-ND and never shipped).
//!
//! Values are seeded and PanDerm-like in scale (weights N(0, 0.02), LayerNorm weights near
//! 1, layer scale 0.1), and `pos_embed` is the exact fixed sin-cos embedding, so a synthetic
//! checkpoint passes every check `convert` applies to a real one.

use std::path::Path;

pub mod images;
pub mod pth;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

use crate::convert::vit::{relative_position_index, sincos_pos_embed};
use pth::{PthData, PthTensor, PyValue, write_pth};

/// Which released layout to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthLayout {
    /// `panderm_bb_*.pth`: flat state dict, bare keys.
    LinearProbe,
    /// `panderm_ll_*.pth`: flat, `encoder.`-prefixed keys plus CAE pretraining extras.
    LargeRelease,
    /// `checkpoint-best.pth`: `{'model': …, 'optimizer', 'epoch', 'scaler', 'args'}` with
    /// relative position bias, `fc_norm` and a `head` of this many classes.
    FineTuned {
        /// Classes of the head.
        classes: usize,
    },
}

/// What to synthesize.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Embedding width D.
    pub embed_dim: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads (D/64 by default).
    pub num_heads: usize,
    /// Layout to imitate.
    pub layout: SynthLayout,
    /// RNG seed.
    pub seed: u64,
}

/// Owned values of one synthetic tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum SynthData {
    /// float32 values.
    F32(Vec<f32>),
    /// int64 values.
    I64(Vec<i64>),
}

/// One tensor of a synthetic state dict (key as written in the file's state dict).
#[derive(Debug, Clone, PartialEq)]
pub struct SynthTensor {
    /// Key, e.g. `blocks.0.attn.qkv.weight` or `encoder.cls_token`.
    pub key: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values.
    pub data: SynthData,
}

struct Gen {
    rng: StdRng,
    normal: Normal<f32>,
}

impl Gen {
    fn normal(&mut self, n: usize, mean: f32) -> Vec<f32> {
        (0..n).map(|_| mean + self.normal.sample(&mut self.rng)).collect()
    }
}

/// The state dict (in PanDerm's `state_dict()` order) for `spec`.
pub fn state_dict(spec: &SynthSpec) -> Vec<SynthTensor> {
    let d = spec.embed_dim;
    let hidden = 4 * d;
    let grid = 14;
    let n = grid * grid + 1;
    let ft = matches!(spec.layout, SynthLayout::FineTuned { .. });
    let mut g = Gen { rng: StdRng::seed_from_u64(spec.seed), normal: Normal::new(0.0, 0.02).expect("valid std") };
    let mut out = Vec::new();
    let mut push = |key: String, shape: Vec<usize>, data: SynthData| out.push(SynthTensor { key, shape, data });
    let f = SynthData::F32;
    push("cls_token".into(), vec![1, 1, d], f(g.normal(d, 0.0)));
    push("pos_embed".into(), vec![1, n, d], f(sincos_pos_embed(grid, d)));
    push("patch_embed.proj.weight".into(), vec![d, 3, 16, 16], f(g.normal(d * 3 * 256, 0.0)));
    push("patch_embed.proj.bias".into(), vec![d], f(g.normal(d, 0.0)));
    let rel_len = (2 * grid - 1).pow(2) + 3;
    for i in 0..spec.depth {
        let p = |s: &str| format!("blocks.{i}.{s}");
        let gamma = 0.1;
        push(p("gamma_1"), vec![d], f(g.normal(d, gamma)));
        push(p("gamma_2"), vec![d], f(g.normal(d, gamma)));
        push(p("norm1.weight"), vec![d], f(g.normal(d, 1.0)));
        push(p("norm1.bias"), vec![d], f(g.normal(d, 0.0)));
        push(p("attn.q_bias"), vec![d], f(g.normal(d, 0.0)));
        push(p("attn.v_bias"), vec![d], f(g.normal(d, 0.0)));
        if ft {
            push(
                p("attn.relative_position_bias_table"),
                vec![rel_len, spec.num_heads],
                f(g.normal(rel_len * spec.num_heads, 0.0)),
            );
            push(p("attn.relative_position_index"), vec![n, n], SynthData::I64(relative_position_index(grid)));
        }
        push(p("attn.qkv.weight"), vec![3 * d, d], f(g.normal(3 * d * d, 0.0)));
        push(p("attn.proj.weight"), vec![d, d], f(g.normal(d * d, 0.0)));
        push(p("attn.proj.bias"), vec![d], f(g.normal(d, 0.0)));
        push(p("norm2.weight"), vec![d], f(g.normal(d, 1.0)));
        push(p("norm2.bias"), vec![d], f(g.normal(d, 0.0)));
        push(p("mlp.fc1.weight"), vec![hidden, d], f(g.normal(hidden * d, 0.0)));
        push(p("mlp.fc1.bias"), vec![hidden], f(g.normal(hidden, 0.0)));
        push(p("mlp.fc2.weight"), vec![d, hidden], f(g.normal(d * hidden, 0.0)));
        push(p("mlp.fc2.bias"), vec![d], f(g.normal(d, 0.0)));
    }
    match spec.layout {
        SynthLayout::LinearProbe => {
            push("norm.weight".into(), vec![d], f(g.normal(d, 1.0)));
            push("norm.bias".into(), vec![d], f(g.normal(d, 0.0)));
        }
        SynthLayout::LargeRelease => {
            push("norm.weight".into(), vec![d], f(g.normal(d, 1.0)));
            push("norm.bias".into(), vec![d], f(g.normal(d, 0.0)));
            for t in out.iter_mut() {
                t.key = format!("encoder.{}", t.key);
            }
            let mut extra = |key: &str, shape: Vec<usize>, g: &mut Gen| {
                let len = shape.iter().product();
                out.push(SynthTensor { key: key.into(), shape, data: SynthData::F32(g.normal(len, 0.0)) });
            };
            extra("rd_pos_embed", vec![1, n, d], &mut g);
            extra("mask_token", vec![1, 1, d], &mut g);
            for r in 0..2 {
                extra(&format!("regresser.regressor_blocks.{r}.norm1_q.weight"), vec![d], &mut g);
                extra(&format!("regresser.regressor_blocks.{r}.cross_attn.q.weight"), vec![d, d], &mut g);
            }
            extra("regresser.norm.weight", vec![d], &mut g);
            extra("teacher.proj.weight", vec![d, d], &mut g);
            extra("decoder.norm.weight", vec![d], &mut g);
        }
        SynthLayout::FineTuned { classes } => {
            push("fc_norm.weight".into(), vec![d], f(g.normal(d, 1.0)));
            push("fc_norm.bias".into(), vec![d], f(g.normal(d, 0.0)));
            let w: Vec<f32> = g.normal(classes * d, 0.0).into_iter().map(|v| v * 10.0).collect();
            push("head.weight".into(), vec![classes, d], f(w));
            push("head.bias".into(), vec![classes], f(g.normal(classes, 0.0)));
        }
    }
    out
}

/// Writes `tensors` to `path` in the file layout of `layout` (flat, or nested under
/// `model` with the other entries of PanDerm's `checkpoint-best.pth`).
pub fn write_checkpoint(
    path: &Path,
    tensors: &[SynthTensor],
    layout: SynthLayout,
) -> std::result::Result<(), pth::PthWriteError> {
    let entries: Vec<(String, PyValue)> = tensors
        .iter()
        .map(|t| {
            let data = match &t.data {
                SynthData::F32(v) => PthData::F32(v),
                SynthData::I64(v) => PthData::I64(v),
            };
            (t.key.clone(), PyValue::Tensor(PthTensor { shape: t.shape.clone(), data }))
        })
        .collect();
    let sd = PyValue::OrderedDict(entries);
    let root = match layout {
        SynthLayout::FineTuned { .. } => PyValue::Dict(vec![
            ("model".into(), sd),
            (
                "optimizer".into(),
                PyValue::Dict(vec![
                    ("state".into(), PyValue::Dict(vec![])),
                    ("param_groups".into(), PyValue::List(vec![])),
                ]),
            ),
            ("epoch".into(), PyValue::Str("best".into())),
            ("scaler".into(), PyValue::Dict(vec![("scale".into(), PyValue::Float(65536.0))])),
            (
                "args".into(),
                PyValue::Namespace(vec![
                    ("model".into(), PyValue::Str("PanDerm_Base_FT".into())),
                    (
                        "nb_classes".into(),
                        PyValue::Int(tensors.iter().find(|t| t.key == "head.bias").map_or(0, |t| t.shape[0] as i64)),
                    ),
                    ("rel_pos_bias".into(), PyValue::Bool(true)),
                    ("layer_scale_init_value".into(), PyValue::Float(0.1)),
                    ("seed".into(), PyValue::Int(0)),
                    ("finetune".into(), PyValue::None),
                ]),
            ),
        ]),
        _ => sd,
    };
    write_pth(path, &root)
}
