//! Weight MatMuls of a QDQ graph → tract's fast integer GEMM.
//!
//! ONNX Runtime's QDQ form writes a weight MatMul as `MatMul(DQ(x_q), DQ(W_q))` with constant
//! int8 weights. tract constant-folds `DQ(W_q)` to float and runs a float GEMM, so the int8 file
//! is no faster than fp32. The same product in integers:
//!
//! ```text
//! Σ_k s_x (x_k − z_x) · s_w[n] W[k,n]  =  s_x s_w[n] · ( Σ_k (x_k − z0) W[k,n]  −  (z_x − z0) Σ_k W[k,n] )
//!
//! y = Mul( Sub( Cast<float>( MatMulInteger(x_q, W_q [, z0 = 128u8]) ), c ), s_x · s_w )
//!       with c[n] = (z_x − z0) · Σ_k W[k,n], a constant
//! ```
//!
//! z0 is 128 for uint8 activations (a zero point tract folds into its kernel for free; the form
//! `panderm-tools quantize` writes) and 0 for int8 ones; the activation's own zero point becomes
//! the constant per-column correction `c`, because handing it to `MatMulInteger` makes tract add
//! a `Reduce<Sum>` over the activations (30 % of PanDerm_Base's run time, docs/quantization.md).
//! `c` is subtracted in float: it and the int32 sum are exact integers below 2²⁴ for PanDerm
//! (|c| ≤ 255·127·K = 2.5·10⁷ for K = 768 rounds to at most 1 unit, i.e. 1/255 of one activation
//! step times one weight step — far below the quantization error itself).
//!
//! Only what ONNX Runtime writes is rewritten: a 2-D constant int8 weight, zero weight zero point,
//! per-tensor or per-column (last axis) weight scale, per-tensor activation scale and zero point.
//! Anything else is left as it is (correct, float speed).

use tract_onnx::pb;

use super::graph::{self, Constants, Names};
use super::tensor::{self, QType, Values};

/// Rewrites every eligible weight MatMul; returns how many.
pub fn to_matmul_integer(graph: &mut pb::GraphProto, names: &mut Names) -> Result<usize, String> {
    let producers = graph::producers(graph);
    let consts = Constants::new(graph);
    let mut replace: std::collections::HashMap<usize, Vec<pb::NodeProto>> = Default::default();
    let mut extra = Vec::new();
    for (i, mm) in graph.node.iter().enumerate() {
        if mm.op_type != "MatMul" || mm.input.len() != 2 {
            continue;
        }
        let dq = |v: &str| {
            producers.get(v).map(|&p| &graph.node[p]).filter(|n| n.op_type == "DequantizeLinear" && !n.input.is_empty())
        };
        let (Some(da), Some(db)) = (dq(&mm.input[0]), dq(&mm.input[1])) else { continue };
        let Some(plan) = plan(&consts, da, db)? else { continue };
        let Some(out) = mm.output.first() else { continue };
        let stem = graph::stem(mm);
        let mut fresh = |what: &str| names.fresh(&format!("{stem}_mmi_{what}"));
        let (acc, accf, scale_name) = (fresh("acc"), fresh("accf"), fresh("scale"));
        let mut ins = vec![da.input[0].as_str(), db.input[0].as_str()];
        let zp128 = (plan.act == QType::U8).then(|| fresh("zp128"));
        if let Some(z) = &zp128 {
            extra.push(tensor::u8_scalar(z, 128));
            ins.push(z);
        }
        let mut nodes = vec![
            graph::node("MatMulInteger", &acc, &ins, &[&acc], vec![]),
            graph::node("Cast", &accf, &[&acc], &[&accf], vec![graph::int_attr("to", 1)]),
        ];
        let mut last = accf;
        if let Some(c) = plan.correction {
            let (c_name, sub) = (fresh("zpcorr"), fresh("sub"));
            extra.push(tensor::f32_tensor(&c_name, &[c.len() as i64], &c));
            nodes.push(graph::node("Sub", &sub, &[&last, &c_name], &[&sub], vec![]));
            last = sub;
        }
        let dims: Vec<i64> = if plan.scale.len() == 1 { vec![] } else { vec![plan.scale.len() as i64] };
        extra.push(tensor::f32_tensor(&scale_name, &dims, &plan.scale));
        nodes.push(graph::node("Mul", &stem, &[&last, &scale_name], &[out], vec![]));
        replace.insert(i, nodes);
    }
    let count = replace.len();
    graph::splice(graph, replace);
    graph.initializer.extend(extra);
    // The weights' DequantizeLinear nodes (and activation ones nobody else reads) are dead now.
    graph::remove_dead(graph);
    Ok(count)
}

/// What one eligible MatMul becomes.
struct Plan {
    act: QType,
    /// `(z_x − z0) · Σ_k W[k,n]`, when not all zero.
    correction: Option<Vec<f32>>,
    /// `s_x · s_w` (one value, or one per column).
    scale: Vec<f32>,
}

fn plan(consts: &Constants, da: &pb::NodeProto, db: &pb::NodeProto) -> Result<Option<Plan>, String> {
    // Activation: per-tensor scale and zero point.
    let Some(sx) = graph::input(da, 1).map(|s| consts.get(s)).transpose()?.flatten().and_then(|c| c.scalar_f32())
    else {
        return Ok(None);
    };
    let (zx, act) = match graph::input(da, 2) {
        None => (0, QType::U8),
        Some(z) => match consts.get(z)? {
            Some(c) => match (c.scalar_int(), QType::of(&c)) {
                (Some(v), Some(t)) => (v, t),
                _ => return Ok(None),
            },
            None => return Ok(None),
        },
    };
    // Weight: a 2-D int8 constant, zero point absent or all zero.
    let Some(w) = consts.get(&db.input[0])? else { return Ok(None) };
    let (Values::I8(wv), [k, n]) = (&w.values, w.dims.as_slice()) else { return Ok(None) };
    let (k, n) = (*k as usize, *n as usize);
    if k == 0 || n == 0 {
        return Ok(None);
    }
    if let Some(z) = graph::input(db, 2) {
        match consts.get(z)?.and_then(|c| c.as_i64()) {
            Some(v) if v.iter().all(|&x| x == 0) => {}
            _ => return Ok(None),
        }
    }
    let Some(sw) = graph::input(db, 1).map(|s| consts.get(s)).transpose()?.flatten() else { return Ok(None) };
    let Values::F32(sw) = sw.values else { return Ok(None) };
    if sw.len() != 1 {
        let axis = graph::attr_int(db, "axis", 1);
        if sw.len() != n || !(axis == 1 || axis == -1) {
            return Ok(None);
        }
    }
    let z0 = if act == QType::U8 { 128 } else { 0 };
    let shift = zx - z0;
    let correction = (shift != 0).then(|| {
        let mut col = vec![0i64; n];
        for row in wv.chunks_exact(n).take(k) {
            for (c, &x) in col.iter_mut().zip(row) {
                *c += i64::from(x);
            }
        }
        col.into_iter().map(|s| (shift * s) as f32).collect()
    });
    let scale = sw.iter().map(|s| sx * s).collect();
    Ok(Some(Plan { act, correction, scale }))
}
