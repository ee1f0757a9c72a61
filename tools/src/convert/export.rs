//! Lowering a validated [`VitWeights`] to an ONNX graph that reproduces PanDerm's PyTorch
//! forward pass (`modeling_finetune.py::VisionTransformer.forward_features`) op for op:
//!
//! ```text
//! pixel_values [N,3,224,224]
//!   Conv(16x16, stride 16) -> Reshape [N,D,196] -> Transpose -> [N,196,D]
//!   Pad one zero token in front -> Add (pos_embed with cls_token folded into row 0)
//!   blocks × depth:
//!     x += gamma_1 * proj(attention(LN(x)))      q/k/v via separate MatMuls (k bias = 0),
//!                                                 q·0.125, [+ rel-pos bias], Softmax
//!     x += gamma_2 * fc2(GELU_erf(fc1(LN(x))))
//!   features: LN(x; norm)[:, 0]                   (linear-probe feature extractor)
//!   logits:   head(LN(mean(x[:, 1:]); fc_norm))   (fine-tuned classifier)
//! ```
//!
//! Folding the CLS token into the position-embedding constant is exact: PanDerm's CLS row of
//! `pos_embed` is added to `cls_token` in float32 either way, and the padded zero adds nothing.

use tract_onnx::pb;

use crate::convert::vit::{Head, LN_EPS, ModelKind, PoolNorm, Pooling, VitWeights};
use crate::onnx_graph::{Attr, Dim, GraphBuilder};

/// Name of the graph input.
pub const INPUT_NAME: &str = "pixel_values";
/// Output name of feature extractors.
pub const FEATURES_OUTPUT: &str = "features";
/// Output name of classifiers.
pub const LOGITS_OUTPUT: &str = "logits";

/// Provenance recorded in the ONNX `metadata_props`.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// SHA-256 of the source checkpoint file.
    pub source_sha256: String,
    /// File name of the source checkpoint.
    pub source_file: String,
    /// Human description of the checkpoint layout.
    pub source_layout: String,
}

/// Transposes a row-major `[rows, cols]` matrix.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

/// `x @ W^T + b` for a PyTorch `Linear` with weight `[out, in]`.
fn linear(g: &mut GraphBuilder, x: &str, name: &str, w: &[f32], b: Option<&[f32]>, out: usize, inp: usize) -> String {
    let wt = g.const_f32(&format!("{name}.weight_t"), &[inp, out], &transpose(w, out, inp));
    let y = g.matmul(x, &wt);
    match b {
        Some(b) => {
            let bn = g.const_f32(&format!("{name}.bias"), &[out], b);
            g.add(&y, &bn)
        }
        None => y,
    }
}

/// The exported model's metadata entries.
pub fn metadata(w: &VitWeights, prov: &Provenance) -> Vec<(String, String)> {
    let c = &w.config;
    let kind = match c.kind {
        ModelKind::Features => "features",
        ModelKind::Classifier => "classifier",
    };
    let pooling = match c.pooling {
        Pooling::Cls => "cls+norm",
        Pooling::MeanPatch => "mean-patch+fc_norm",
    };
    let mut m = vec![
        ("panderm.format", "1".to_owned()),
        ("panderm.source_sha256", prov.source_sha256.clone()),
        ("panderm.source_file", prov.source_file.clone()),
        ("panderm.source_layout", prov.source_layout.clone()),
        ("panderm.variant", c.variant()),
        ("panderm.kind", kind.to_owned()),
        ("panderm.pooling", pooling.to_owned()),
        ("panderm.embed_dim", c.embed_dim.to_string()),
        ("panderm.depth", c.depth.to_string()),
        ("panderm.num_heads", c.num_heads.to_string()),
        ("panderm.mlp_hidden", c.mlp_hidden.to_string()),
        ("panderm.patch_size", c.patch_size.to_string()),
        ("panderm.rel_pos_bias", c.rel_pos_bias.to_string()),
        ("panderm.image_size", crate::convert::vit::IMG_SIZE.to_string()),
        (
            "panderm.preprocess",
            "resize_shorter=256 pillow-bilinear; center_crop=224; mean=0.485,0.456,0.406; std=0.228,0.224,0.225"
                .to_owned(),
        ),
        ("panderm.tool", format!("panderm-tools {}", env!("CARGO_PKG_VERSION"))),
    ];
    if let Some(k) = c.num_classes {
        m.push(("panderm.num_classes", k.to_string()));
    }
    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Builds the ONNX model for `w`.
pub fn to_onnx(w: &VitWeights, prov: &Provenance) -> pb::ModelProto {
    let c = &w.config;
    let (d, h, hd) = (c.embed_dim, c.num_heads, c.embed_dim / c.num_heads);
    let (grid, n, p) = (c.grid(), c.tokens(), c.patch_size);
    let mut g = GraphBuilder::new();
    let img = crate::convert::vit::IMG_SIZE as i64;
    let x = g.input(INPUT_NAME, &[Dim::Symbolic("N"), Dim::Fixed(3), Dim::Fixed(img), Dim::Fixed(img)]);

    // --- patch embedding + tokens ---
    g.set_scope("patch_embed");
    let pw = g.const_f32("patch_embed.proj.weight", &[d, 3, p, p], &w.patch_w);
    let pb_ = g.const_f32("patch_embed.proj.bias", &[d], &w.patch_b);
    let t = g.op(
        "Conv",
        &[&x, &pw, &pb_],
        vec![("kernel_shape", Attr::Ints(vec![p as i64; 2])), ("strides", Attr::Ints(vec![p as i64; 2]))],
    );
    let t = g.reshape(&t, &[0, d as i64, (grid * grid) as i64]);
    let t = g.transpose(&t, &[0, 2, 1]);
    let pads = g.const_i64("patch_embed/cls_pads", &[6], &[0, 1, 0, 0, 0, 0]);
    let t = g.op("Pad", &[&t, &pads], vec![]);
    let mut pos = w.pos_embed.clone();
    for (slot, cls) in pos[..d].iter_mut().zip(&w.cls_token) {
        *slot += *cls;
    }
    let pos = g.const_f32("pos_embed_with_cls", &[1, n, d], &pos);
    let mut x = g.add(&t, &pos);

    // Shared constants.
    let scale = g.scalar_f32("attn_scale", (hd as f32).powf(-0.5));
    let sqrt2 = g.scalar_f32("sqrt2", std::f32::consts::SQRT_2);
    let one = g.scalar_f32("one", 1.0);
    let half = g.scalar_f32("half", 0.5);
    let rel_index = c.rel_pos_bias.then(|| {
        let idx = crate::convert::vit::relative_position_index(grid);
        g.const_i64("relative_position_index", &[n * n], &idx)
    });

    for (i, b) in w.blocks.iter().enumerate() {
        let pre = format!("blocks.{i}");
        g.set_scope(&pre);
        // --- attention ---
        let n1w = g.const_f32(&format!("{pre}.norm1.weight"), &[d], &b.norm1_w);
        let n1b = g.const_f32(&format!("{pre}.norm1.bias"), &[d], &b.norm1_b);
        let hx = g.layer_norm(&x, &n1w, &n1b, LN_EPS);
        let rows = |k: usize| &b.qkv_w[k * d * d..(k + 1) * d * d];
        let q = linear(&mut g, &hx, &format!("{pre}.attn.q"), rows(0), Some(&b.q_bias), d, d);
        let k = linear(&mut g, &hx, &format!("{pre}.attn.k"), rows(1), None, d, d);
        let v = linear(&mut g, &hx, &format!("{pre}.attn.v"), rows(2), Some(&b.v_bias), d, d);
        let heads = |g: &mut GraphBuilder, t: &str, perm: &[i64]| {
            let r = g.reshape(t, &[0, n as i64, h as i64, hd as i64]);
            g.transpose(&r, perm)
        };
        let q = heads(&mut g, &q, &[0, 2, 1, 3]); // [N,H,197,hd]
        let kt = heads(&mut g, &k, &[0, 2, 3, 1]); // [N,H,hd,197]
        let v = heads(&mut g, &v, &[0, 2, 1, 3]);
        let q = g.mul(&q, &scale);
        let mut logits = g.matmul(&q, &kt); // [N,H,197,197]
        if let (Some(table), Some(idx)) = (&b.rel_pos_table, &rel_index) {
            let tb = g.const_f32(&format!("{pre}.attn.relative_position_bias_table"), &[c.rel_table_len(), h], table);
            let gathered = g.op("Gather", &[&tb, idx], vec![("axis", Attr::Int(0))]); // [197*197, H]
            let bias = g.reshape(&gathered, &[n as i64, n as i64, h as i64]);
            let bias = g.transpose(&bias, &[2, 0, 1]); // [H,197,197]
            logits = g.add(&logits, &bias);
        }
        let a = g.op("Softmax", &[&logits], vec![("axis", Attr::Int(-1))]);
        let o = g.matmul(&a, &v); // [N,H,197,hd]
        let o = g.transpose(&o, &[0, 2, 1, 3]);
        let o = g.reshape(&o, &[0, n as i64, d as i64]);
        let o = linear(&mut g, &o, &format!("{pre}.attn.proj"), &b.proj_w, Some(&b.proj_b), d, d);
        let g1 = g.const_f32(&format!("{pre}.gamma_1"), &[d], &b.gamma_1);
        let o = g.mul(&o, &g1);
        x = g.add(&x, &o);
        // --- MLP with exact GELU: 0.5·y·(1 + erf(y/√2)) ---
        let n2w = g.const_f32(&format!("{pre}.norm2.weight"), &[d], &b.norm2_w);
        let n2b = g.const_f32(&format!("{pre}.norm2.bias"), &[d], &b.norm2_b);
        let hx = g.layer_norm(&x, &n2w, &n2b, LN_EPS);
        let y = linear(&mut g, &hx, &format!("{pre}.mlp.fc1"), &b.fc1_w, Some(&b.fc1_b), c.mlp_hidden, d);
        let e = g.op("Div", &[&y, &sqrt2], vec![]);
        let e = g.op("Erf", &[&e], vec![]);
        let e = g.add(&e, &one);
        let y = g.mul(&y, &e);
        let y = g.mul(&y, &half);
        let y = linear(&mut g, &y, &format!("{pre}.mlp.fc2"), &b.fc2_w, Some(&b.fc2_b), d, c.mlp_hidden);
        let g2 = g.const_f32(&format!("{pre}.gamma_2"), &[d], &b.gamma_2);
        let y = g.mul(&y, &g2);
        x = g.add(&x, &y);
    }

    // --- pooling and head ---
    g.set_scope("head");
    let pooled = match &w.pool_norm {
        PoolNorm::Cls { weight: nw, bias: nb } => {
            // LayerNorm acts per token, so normalizing only the CLS token is exact and
            // 197× cheaper than PyTorch's `norm(x)[:, 0]`.
            let zero = g.const_i64("cls_index", &[], &[0]);
            let cls = g.op("Gather", &[&x, &zero], vec![("axis", Attr::Int(1))]); // [N,D]
            let nw = g.const_f32("norm.weight", &[d], nw);
            let nb = g.const_f32("norm.bias", &[d], nb);
            g.layer_norm(&cls, &nw, &nb, LN_EPS)
        }
        PoolNorm::MeanPatch { weight: fw, bias: fb } => {
            let starts = g.const_i64("patch_slice/starts", &[1], &[1]);
            let ends = g.const_i64("patch_slice/ends", &[1], &[n as i64]);
            let axes = g.const_i64("patch_slice/axes", &[1], &[1]);
            let patches = g.op("Slice", &[&x, &starts, &ends, &axes], vec![]);
            let mean = g.op("ReduceMean", &[&patches], vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))]);
            let fw = g.const_f32("fc_norm.weight", &[d], fw);
            let fb = g.const_f32("fc_norm.bias", &[d], fb);
            g.layer_norm(&mean, &fw, &fb, LN_EPS)
        }
    };
    match &w.head {
        None => g.output(&pooled, FEATURES_OUTPUT, &[Dim::Symbolic("N"), Dim::Fixed(d as i64)]),
        Some(Head { weight: hw, bias: hb, classes: k }) => {
            let k = *k;
            let logits = linear(&mut g, &pooled, "head", hw, Some(hb), k, d);
            g.output(&logits, LOGITS_OUTPUT, &[Dim::Symbolic("N"), Dim::Fixed(k as i64)]);
        }
    }
    let doc = format!(
        "PanDerm ViT ({}) converted from {} by panderm-tools. Input: pixel_values [N,3,224,224], normalized with PanDerm's eval transform.",
        c.variant(),
        prov.source_file
    );
    g.finish("panderm", env!("CARGO_PKG_VERSION"), &doc, &metadata(w, prov))
}
