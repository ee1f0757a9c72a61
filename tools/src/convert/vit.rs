//! The PanDerm ViT: its configuration, inferred from a checkpoint's tensors, and its
//! validated weights. This is the single description of the network that the ONNX
//! export ([`crate::convert::export`]) lowers; see `docs/architecture.md`; PanDerm's model is `classification/models/modeling_finetune.py`.

use super::checkpoint::Checkpoint;
use super::error::{ConvertError, Result};

/// PanDerm's input side (asserted by `PatchEmbed.forward`).
pub const IMG_SIZE: usize = 224;
/// LayerNorm epsilon used everywhere in PanDerm.
pub const LN_EPS: f32 = 1e-6;
/// Width of one attention head in both released variants.
pub const HEAD_DIM: usize = 64;

// Caps on the sizes a checkpoint's tensor shapes imply. They are checked before anything
// sized from them is allocated or read: a checkpoint is untrusted input, and a ~1 MB file
// declaring a 1×1 patch would otherwise make the converter build a 50 177² relative-position
// index (20 GB). Each cap is far above PanDerm's (and ViT-g's) values.

/// Largest embedding width D accepted (PanDerm Base 768, Large 1024).
pub const MAX_EMBED_DIM: usize = 4096;
/// Most transformer blocks accepted (Base 12, Large 24).
pub const MAX_DEPTH: usize = 64;
/// Largest patch grid side accepted (PanDerm 14; 32 means a patch of at least 7 pixels).
pub const MAX_GRID: usize = 32;
/// Largest MLP hidden width accepted, as a multiple of D (PanDerm 4).
pub const MAX_MLP_RATIO: usize = 8;
/// Most classes accepted for a fine-tuned head.
pub const MAX_CLASSES: usize = 100_000;

/// What the exported graph computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Linear-probe feature extractor: CLS token after the final `norm` → `features [N,D]`.
    Features,
    /// Fine-tuned classifier: pooled feature → `head` → `logits [N,K]`.
    Classifier,
}

/// How a classifier pools the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// CLS token after the final LayerNorm `norm` (LP features; FT `--use_cls`).
    Cls,
    /// Mean of the patch tokens (CLS excluded), then LayerNorm `fc_norm` (FT default).
    MeanPatch,
}

/// The shape of a PanDerm ViT, inferred from its tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VitConfig {
    /// Embedding width D (768 Base, 1024 Large).
    pub embed_dim: usize,
    /// Number of transformer blocks (12 Base, 24 Large).
    pub depth: usize,
    /// Attention heads (D/64 unless told otherwise).
    pub num_heads: usize,
    /// MLP hidden width (4·D in PanDerm).
    pub mlp_hidden: usize,
    /// Patch side (16).
    pub patch_size: usize,
    /// Per-block relative position bias (fine-tuned models).
    pub rel_pos_bias: bool,
    /// What the graph outputs.
    pub kind: ModelKind,
    /// Token pooling.
    pub pooling: Pooling,
    /// Classes of the head (classifiers only).
    pub num_classes: Option<usize>,
}

impl VitConfig {
    /// Patches per side (14).
    pub fn grid(&self) -> usize {
        IMG_SIZE / self.patch_size
    }
    /// Tokens including CLS (197).
    pub fn tokens(&self) -> usize {
        self.grid() * self.grid() + 1
    }
    /// Rows of the relative position bias table: (2·14−1)² + 3 = 732.
    pub fn rel_table_len(&self) -> usize {
        (2 * self.grid() - 1).pow(2) + 3
    }
    /// A short variant name from the dimensions (`PanDerm_Base`, `PanDerm_Large` or custom).
    pub fn variant(&self) -> String {
        match (self.embed_dim, self.depth) {
            (768, 12) => "PanDerm_Base".into(),
            (1024, 24) => "PanDerm_Large".into(),
            (d, n) => format!("custom_D{d}_depth{n}"),
        }
    }
}

/// Weights of one transformer block (matrices as stored by PyTorch: `[out, in]`).
#[derive(Debug, Clone)]
pub struct BlockWeights {
    pub norm1_w: Vec<f32>,
    pub norm1_b: Vec<f32>,
    /// `[3D, D]`, rows q then k then v.
    pub qkv_w: Vec<f32>,
    pub q_bias: Vec<f32>,
    pub v_bias: Vec<f32>,
    pub proj_w: Vec<f32>,
    pub proj_b: Vec<f32>,
    pub gamma_1: Vec<f32>,
    pub norm2_w: Vec<f32>,
    pub norm2_b: Vec<f32>,
    pub fc1_w: Vec<f32>,
    pub fc1_b: Vec<f32>,
    pub fc2_w: Vec<f32>,
    pub fc2_b: Vec<f32>,
    pub gamma_2: Vec<f32>,
    /// `[732, H]` for fine-tuned models.
    pub rel_pos_table: Option<Vec<f32>>,
}

/// A validated PanDerm ViT: configuration plus every weight it uses.
#[derive(Debug, Clone)]
pub struct VitWeights {
    pub config: VitConfig,
    /// `[D]` (from `[1,1,D]`).
    pub cls_token: Vec<f32>,
    /// `[197, D]` (from `[1,197,D]`).
    pub pos_embed: Vec<f32>,
    /// `[D,3,p,p]`.
    pub patch_w: Vec<f32>,
    pub patch_b: Vec<f32>,
    pub blocks: Vec<BlockWeights>,
    /// The pooling and its LayerNorm (`config.pooling`).
    pub pool_norm: PoolNorm,
    /// The classification head: present exactly for a classifier (`config.kind`).
    pub head: Option<Head>,
}

/// How the tokens are pooled, with the LayerNorm PanDerm applies to the pooled feature.
#[derive(Debug, Clone)]
pub enum PoolNorm {
    /// The CLS token through the final LayerNorm `norm` ([`Pooling::Cls`]).
    Cls {
        /// `norm.weight` `[D]`.
        weight: Vec<f32>,
        /// `norm.bias` `[D]`.
        bias: Vec<f32>,
    },
    /// The mean of the patch tokens through `fc_norm` ([`Pooling::MeanPatch`]).
    MeanPatch {
        /// `fc_norm.weight` `[D]`.
        weight: Vec<f32>,
        /// `fc_norm.bias` `[D]`.
        bias: Vec<f32>,
    },
}

/// A classifier's linear head.
#[derive(Debug, Clone)]
pub struct Head {
    /// `head.weight` `[K, D]`.
    pub weight: Vec<f32>,
    /// `head.bias` `[K]`.
    pub bias: Vec<f32>,
    /// K.
    pub classes: usize,
}

/// What the caller asks the converter to build (`convert --kind`; `help` is the CLI's text).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum KindRequest {
    /// Classifier if the checkpoint has `fc_norm` + `head` (fine-tuned), else features.
    #[default]
    #[value(help = "Classifier if the checkpoint has `fc_norm` + `head` (fine-tuned), else feature extractor")]
    Auto,
    /// Force a feature extractor (CLS after `norm`); a head is ignored.
    #[value(help = "Feature extractor: CLS token after the final norm")]
    Features,
    /// Force a classifier (requires `head`).
    #[value(help = "Classifier: pooled feature -> head -> logits")]
    Classifier,
}

/// Options for [`VitWeights::from_checkpoint`].
#[derive(Debug, Clone, Default)]
pub struct VitOptions {
    /// Override the number of heads (default: from the relative-position table, else D/64).
    pub num_heads: Option<usize>,
    /// Which model to build.
    pub kind: KindRequest,
}

/// PanDerm's fixed 2-D sin-cos position embedding `[tokens, D]` (CLS row zero), computed
/// exactly as `build_2d_sincos_position_embedding` (float32; 'ij' meshgrid, so the first
/// half encodes the patch row and the second the column).
pub fn sincos_pos_embed(grid: usize, dim: usize) -> Vec<f32> {
    let p = dim / 4;
    let omega: Vec<f32> = (0..p)
        .map(|d| {
            let e = d as f32 / p as f32;
            1.0 / 10000f32.powf(e)
        })
        .collect();
    let mut pe = vec![0f32; (grid * grid + 1) * dim];
    for r in 0..grid {
        for c in 0..grid {
            let row = &mut pe[(1 + r * grid + c) * dim..(2 + r * grid + c) * dim];
            for d in 0..p {
                let a = r as f32 * omega[d];
                let b = c as f32 * omega[d];
                row[d] = a.sin();
                row[p + d] = a.cos();
                row[2 * p + d] = b.sin();
                row[3 * p + d] = b.cos();
            }
        }
    }
    pe
}

/// BEiT's relative position index `[tokens, tokens]` (`modeling_finetune.py::Attention.__init__`).
pub fn relative_position_index(grid: usize) -> Vec<i64> {
    let n = grid * grid + 1;
    let side = (2 * grid - 1) as i64;
    let num_rel = side * side;
    let mut idx = vec![0i64; n * n];
    for i in 0..n {
        for j in 0..n {
            idx[i * n + j] = match (i, j) {
                (0, 0) => num_rel + 2,
                (0, _) => num_rel,
                (_, 0) => num_rel + 1,
                _ => {
                    let (ri, ci) = (((i - 1) / grid) as i64, ((i - 1) % grid) as i64);
                    let (rj, cj) = (((j - 1) / grid) as i64, ((j - 1) % grid) as i64);
                    (ri - rj + grid as i64 - 1) * side + (ci - cj + grid as i64 - 1)
                }
            };
        }
    }
    idx
}

/// Max |a−b| over two equal-length slices.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Tolerance for comparing the checkpoint's `pos_embed` with the regenerated one: both are
/// float32 sin/cos of the same arguments (≤ 13 rad); libm implementations differ by a few ulp.
const POS_EMBED_TOL: f32 = 1e-4;

fn block_indices(ck: &Checkpoint) -> Result<usize> {
    let mut idx: Vec<usize> =
        ck.tensors.keys().filter_map(|k| k.strip_prefix("blocks.")?.split('.').next()?.parse().ok()).collect();
    idx.sort_unstable();
    idx.dedup();
    if idx.is_empty() {
        return Err(ConvertError::UnknownLayout("no `blocks.N.*` tensors".into()));
    }
    let depth = idx.len();
    if idx.last() != Some(&(depth - 1)) {
        let missing = (0..*idx.last().unwrap_or(&0)).find(|i| !idx.contains(i)).unwrap_or(0);
        return Err(ConvertError::MissingKey {
            key: format!("blocks.{missing}.*"),
            expected: vec![],
            hint: format!(" (block indices found: {idx:?})"),
        });
    }
    Ok(depth)
}

impl VitWeights {
    /// Infers the configuration from `ck`, consumes and validates every tensor, and fails
    /// on anything missing, mis-shaped or left unused.
    pub fn from_checkpoint(ck: &mut Checkpoint, opts: &VitOptions) -> Result<VitWeights> {
        let config = infer_config(ck, opts)?;
        // Every size below is bounded by the caps `infer_config` checked.
        let (d, n) = (config.embed_dim, config.tokens());
        let cls_token = take_f32(ck, "cls_token", &[1, 1, d])?;
        let pos_embed = take_f32(ck, "pos_embed", &[1, n, d])?;
        check_pos_embed(&pos_embed, config.grid(), d)?;
        let patch_w = take_f32(ck, "patch_embed.proj.weight", &[d, 3, config.patch_size, config.patch_size])?;
        let patch_b = take_f32(ck, "patch_embed.proj.bias", &[d])?;
        // BEiT's index for this grid, built only if a block stores its copy to compare with,
        // and only once that block's table has been checked against the grid.
        let mut expected_index: Option<Vec<i64>> = None;
        let blocks =
            (0..config.depth).map(|i| take_block(ck, &config, i, &mut expected_index)).collect::<Result<Vec<_>>>()?;
        let pool_norm = match config.pooling {
            Pooling::Cls => {
                let (weight, bias) = take_pair(ck, "norm", d, None)?;
                PoolNorm::Cls { weight, bias }
            }
            Pooling::MeanPatch => {
                let (weight, bias) = take_pair(ck, "fc_norm", d, None)?;
                PoolNorm::MeanPatch { weight, bias }
            }
        };
        // `infer_config` gives a class count exactly to a classifier.
        let head = match config.num_classes {
            Some(classes) => {
                let (weight, bias) = take_pair(ck, "head", d, Some(classes))?;
                Some(Head { weight, bias, classes })
            }
            None => {
                ignore_lp_head(ck);
                None
            }
        };
        check_all_used(ck, config.kind)?;
        Ok(VitWeights { config, cls_token, pos_embed, patch_w, patch_b, blocks, pool_norm, head })
    }
}

/// The configuration a checkpoint implies (embed dim, depth, heads, MLP width, patch size,
/// pooling, classes), each checked against the converter's caps and against `opts`, before any
/// tensor is read.
fn infer_config(ck: &Checkpoint, opts: &VitOptions) -> Result<VitConfig> {
    let d = embed_dim(ck)?;
    let patch_size = patch_size(ck, d)?;
    let depth = depth(ck)?;
    let mlp_hidden = mlp_hidden(ck, d)?;
    let rel_pos_bias = ck.has("blocks.0.attn.relative_position_bias_table");
    let num_heads = num_heads(ck, opts, d)?;
    let (kind, pooling) = kind_and_pooling(ck, opts, d)?;
    let num_classes = num_classes(ck, kind, d)?;
    Ok(VitConfig { embed_dim: d, depth, num_heads, mlp_hidden, patch_size, rel_pos_bias, kind, pooling, num_classes })
}

/// The embed dim D, from `cls_token` `[1, 1, D]`.
fn embed_dim(ck: &Checkpoint) -> Result<usize> {
    let cls_shape = ck.shape_of("cls_token").map(<[usize]>::to_vec).ok_or_else(|| ConvertError::MissingKey {
        key: "cls_token".into(),
        expected: vec![1, 1, 0],
        hint: format!(" ({})", ck.layout.describe()),
    })?;
    let d = match cls_shape.as_slice() {
        [1, 1, d] if *d > 0 => *d,
        _ => {
            return Err(ConvertError::WrongShape {
                key: "cls_token".into(),
                expected: vec![1, 1, 0],
                found: cls_shape,
            });
        }
    };
    if d > MAX_EMBED_DIM {
        return Err(ConvertError::BadTensor {
            key: "cls_token".into(),
            reason: format!(
                "embed dim {d} is above the {MAX_EMBED_DIM} this converter accepts (PanDerm: 768 Base, 1024 Large)"
            ),
        });
    }
    if d % 4 != 0 {
        return Err(ConvertError::BadTensor {
            key: "cls_token".into(),
            reason: format!("embed dim {d} is not a multiple of 4"),
        });
    }
    Ok(d)
}

/// The patch size, from `patch_embed.proj.weight` `[D, 3, p, p]` (16 when absent: reported
/// as missing when the weights are read); its grid must fit the caps.
fn patch_size(ck: &Checkpoint, d: usize) -> Result<usize> {
    let patch_size = match ck.shape_of("patch_embed.proj.weight") {
        Some([dd, 3, p, q]) if *dd == d && p == q && *p > 0 && IMG_SIZE.is_multiple_of(*p) => *p,
        Some(s) => {
            return Err(ConvertError::WrongShape {
                key: "patch_embed.proj.weight".into(),
                expected: vec![d, 3, 16, 16],
                found: s.to_vec(),
            });
        }
        None => 16, // reported as missing when the weights are read
    };
    let grid = IMG_SIZE / patch_size;
    if grid > MAX_GRID {
        return Err(ConvertError::BadTensor {
            key: "patch_embed.proj.weight".into(),
            reason: format!(
                "a {patch_size}×{patch_size} patch makes a {grid}×{grid} grid ({} tokens) of the {IMG_SIZE}-pixel input; at most {MAX_GRID}×{MAX_GRID} (patch size >= {}) is accepted (PanDerm: 16, a 14×14 grid)",
                grid * grid + 1,
                IMG_SIZE.div_ceil(MAX_GRID)
            ),
        });
    }
    Ok(patch_size)
}

/// The number of blocks, from the `blocks.N.*` keys.
fn depth(ck: &Checkpoint) -> Result<usize> {
    let depth = block_indices(ck)?;
    if depth > MAX_DEPTH {
        return Err(ConvertError::BadTensor {
            key: format!("blocks.{}", depth - 1),
            reason: format!(
                "{depth} blocks are more than the {MAX_DEPTH} this converter accepts (PanDerm: 12 Base, 24 Large)"
            ),
        });
    }
    Ok(depth)
}

/// The MLP width, from block 0's `fc1`.
fn mlp_hidden(ck: &Checkpoint, d: usize) -> Result<usize> {
    let mlp_hidden = match ck.shape_of("blocks.0.mlp.fc1.weight") {
        Some([h, dd]) if *dd == d => *h,
        _ => 4 * d, // the shape check of the weights reports the problem
    };
    if mlp_hidden == 0 || mlp_hidden > MAX_MLP_RATIO * d {
        return Err(ConvertError::BadTensor {
            key: "blocks.0.mlp.fc1.weight".into(),
            reason: format!(
                "MLP width {mlp_hidden} is outside 1..={} ({MAX_MLP_RATIO}× the embed dim {d}; PanDerm uses 4×)",
                MAX_MLP_RATIO * d
            ),
        });
    }
    Ok(mlp_hidden)
}

/// The attention heads: `--heads`, the relative position tables, or D/64; they must agree and
/// divide D.
fn num_heads(ck: &Checkpoint, opts: &VitOptions, d: usize) -> Result<usize> {
    let heads_from_table = ck.shape_of("blocks.0.attn.relative_position_bias_table").and_then(|s| s.get(1).copied());
    let num_heads = match (opts.num_heads, heads_from_table) {
        (Some(h), Some(t)) if h != t => {
            return Err(ConvertError::InvalidOption(format!(
                "--heads {h} contradicts the relative position bias tables, which have {t} heads"
            )));
        }
        (Some(h), _) => h,
        (None, Some(t)) => t,
        (None, None) => d / HEAD_DIM,
    };
    if num_heads == 0 || !d.is_multiple_of(num_heads) {
        return Err(ConvertError::InvalidOption(format!(
            "{num_heads} heads do not divide embed dim {d} (pass --heads)"
        )));
    }
    Ok(num_heads)
}

/// What to build and how to pool, from `--kind` and the presence of `fc_norm` and `head`.
fn kind_and_pooling(ck: &Checkpoint, opts: &VitOptions, d: usize) -> Result<(ModelKind, Pooling)> {
    let has_fc_norm = ck.has("fc_norm.weight");
    let has_head = ck.has("head.weight");
    let (kind, pooling) = match opts.kind {
        KindRequest::Auto if has_fc_norm => (ModelKind::Classifier, Pooling::MeanPatch),
        KindRequest::Auto | KindRequest::Features => (ModelKind::Features, Pooling::Cls),
        KindRequest::Classifier if !has_head => {
            return Err(ConvertError::MissingKey {
                key: "head.weight".into(),
                expected: vec![0, d],
                hint: " (needed for a classifier)".into(),
            });
        }
        KindRequest::Classifier => (ModelKind::Classifier, if has_fc_norm { Pooling::MeanPatch } else { Pooling::Cls }),
    };
    Ok((kind, pooling))
}

/// The classifier's class count, from `head.weight` `[K, D]`.
fn num_classes(ck: &Checkpoint, kind: ModelKind, d: usize) -> Result<Option<usize>> {
    let num_classes = match kind {
        ModelKind::Classifier => match ck.shape_of("head.weight") {
            Some([k, dd]) if *dd == d && *k > MAX_CLASSES => {
                return Err(ConvertError::BadTensor {
                    key: "head.weight".into(),
                    reason: format!("{k} classes are more than the {MAX_CLASSES} this converter accepts"),
                });
            }
            Some([k, dd]) if *dd == d && *k > 0 => Some(*k),
            Some(s) => {
                return Err(ConvertError::WrongShape {
                    key: "head.weight".into(),
                    expected: vec![0, d],
                    found: s.to_vec(),
                });
            }
            None => {
                return Err(ConvertError::MissingKey {
                    key: "head.weight".into(),
                    expected: vec![0, d],
                    hint: " (fine-tuned checkpoints need `head`)".into(),
                });
            }
        },
        ModelKind::Features => None,
    };
    Ok(num_classes)
}

/// Takes `key` from the checkpoint as float32 values of `shape`.
fn take_f32(ck: &mut Checkpoint, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
    ck.take(key, shape)?.f32(key)
}

/// `pos_embed` must be PanDerm's fixed 2-D sin-cos embedding for the grid.
fn check_pos_embed(pos_embed: &[f32], grid: usize, d: usize) -> Result<()> {
    let generated = sincos_pos_embed(grid, d);
    let diff = max_abs_diff(pos_embed, &generated);
    // NaN-safe: a NaN difference must fail too.
    if diff.is_nan() || diff > POS_EMBED_TOL {
        return Err(ConvertError::BadTensor {
            key: "pos_embed".into(),
            reason: format!(
                "differs from PanDerm's fixed 2-D sin-cos embedding by up to {diff:.3e} (tolerance {POS_EMBED_TOL:e}); not a PanDerm checkpoint?"
            ),
        });
    }
    Ok(())
}

/// Takes block `i`'s weights; a stored relative position index must equal BEiT's for the grid
/// (`expected_index` caches it).
fn take_block(
    ck: &mut Checkpoint,
    config: &VitConfig,
    i: usize,
    expected_index: &mut Option<Vec<i64>>,
) -> Result<BlockWeights> {
    let (d, n, grid, mlp_hidden) = (config.embed_dim, config.tokens(), config.grid(), config.mlp_hidden);
    let p = |s: &str| format!("blocks.{i}.{s}");
    let rel_pos_table = if config.rel_pos_bias {
        let t = take_f32(ck, &p("attn.relative_position_bias_table"), &[config.rel_table_len(), config.num_heads])?;
        let key = p("attn.relative_position_index");
        if ck.has(&key) {
            let idx = ck.take(&key, &[n, n])?.i64(&key)?;
            if idx != *expected_index.get_or_insert_with(|| relative_position_index(grid)) {
                return Err(ConvertError::BadTensor {
                    key,
                    reason: format!("differs from BEiT's relative position index for a {grid}×{grid} grid"),
                });
            }
        }
        Some(t)
    } else {
        None
    };
    Ok(BlockWeights {
        gamma_1: take_f32(ck, &p("gamma_1"), &[d])?,
        gamma_2: take_f32(ck, &p("gamma_2"), &[d])?,
        norm1_w: take_f32(ck, &p("norm1.weight"), &[d])?,
        norm1_b: take_f32(ck, &p("norm1.bias"), &[d])?,
        q_bias: take_f32(ck, &p("attn.q_bias"), &[d])?,
        v_bias: take_f32(ck, &p("attn.v_bias"), &[d])?,
        qkv_w: take_f32(ck, &p("attn.qkv.weight"), &[3 * d, d])?,
        proj_w: take_f32(ck, &p("attn.proj.weight"), &[d, d])?,
        proj_b: take_f32(ck, &p("attn.proj.bias"), &[d])?,
        norm2_w: take_f32(ck, &p("norm2.weight"), &[d])?,
        norm2_b: take_f32(ck, &p("norm2.bias"), &[d])?,
        fc1_w: take_f32(ck, &p("mlp.fc1.weight"), &[mlp_hidden, d])?,
        fc1_b: take_f32(ck, &p("mlp.fc1.bias"), &[mlp_hidden])?,
        fc2_w: take_f32(ck, &p("mlp.fc2.weight"), &[d, mlp_hidden])?,
        fc2_b: take_f32(ck, &p("mlp.fc2.bias"), &[d])?,
        rel_pos_table,
    })
}

/// Takes `{name}.weight` (`[rows, d]`, or `[d]` for a norm) and `{name}.bias`.
fn take_pair(ck: &mut Checkpoint, name: &str, d: usize, rows: Option<usize>) -> Result<(Vec<f32>, Vec<f32>)> {
    let w_shape = match rows {
        Some(k) => vec![k, d],
        None => vec![d],
    };
    let b_len = rows.unwrap_or(d);
    Ok((take_f32(ck, &format!("{name}.weight"), &w_shape)?, take_f32(ck, &format!("{name}.bias"), &[b_len])?))
}

/// The LP model replaces `head` by Identity: a head in an LP checkpoint is unused by design
/// (PanDerm Large carries a random 1000-way one), not an error; it is listed as ignored.
fn ignore_lp_head(ck: &mut Checkpoint) {
    let head_keys: Vec<String> = ck.tensors.keys().filter(|k| k.starts_with("head.")).cloned().collect();
    for k in head_keys {
        ck.tensors.remove(&k);
        ck.ignored.push(ck.layout.original_key(&k));
    }
}

/// Nothing may be left over: a non-strict loader would silently drop it.
fn check_all_used(ck: &Checkpoint, kind: ModelKind) -> Result<()> {
    if !ck.tensors.is_empty() {
        let model = match kind {
            ModelKind::Features => "feature extractor (CLS after `norm`)",
            ModelKind::Classifier => "classifier",
        };
        return Err(ConvertError::UnusedKeys {
            model: model.into(),
            keys: ck.tensors.keys().map(|k| ck.layout.original_key(k)).collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_index_matches_the_spec() {
        let idx = relative_position_index(14);
        let n = 197;
        assert_eq!(idx[0], 731); // CLS -> CLS
        assert_eq!(idx[5], 729); // CLS -> patch
        assert_eq!(idx[5 * n], 730); // patch -> CLS
        assert_eq!(idx[n + 1], 13 * 27 + 13); // same patch
        // patch (0,0) -> patch (13,13): (0-13+13)*27 + (0-13+13) = 0
        assert_eq!(idx[n + 196], 0);
        assert_eq!(*idx.iter().max().unwrap(), 731);
    }

    #[test]
    fn sincos_layout() {
        let pe = sincos_pos_embed(14, 8); // P = 2
        assert!(pe[..8].iter().all(|&v| v == 0.0), "CLS row is zero");
        // token m = r*14 + c; take r = 1, c = 0: first block sin(1*omega0)=sin(1)
        let row = &pe[(1 + 14) * 8..(2 + 14) * 8];
        assert!((row[0] - 1f32.sin()).abs() < 1e-7);
        assert!((row[2] - 1f32.cos()).abs() < 1e-7);
        assert_eq!(row[4], 0.0); // sin(c * w) with c = 0
        assert_eq!(row[6], 1.0); // cos(0)
    }
}
