//! The re-quantization of a `Softmax` / `LogSoftmax` output, done in float.
//!
//! tract 0.23.9 turns a `DequantizeLinear → … → QuantizeLinear` chain of ops it believes
//! element-wise into a 256-entry lookup table (`DequantizeLinearF32::declutter`,
//! tract-core src/ops/quant.rs). `Softmax` declares a natural axes mapping although it reduces
//! over its axis, so ONNX Runtime's QDQ sandwich `DQ → Softmax → Q` becomes a table of the softmax
//! of single elements: every attention probability 1.0, silently (docs/quantization.md, "Root
//! cause"). Here every `QuantizeLinear` reading a (Log)Softmax output is replaced by the same
//! arithmetic in float, so no `QuantizeLinear` is left for tract's walk to find:
//!
//! ```text
//! c = Clip(Round(p / s) + zp, qmin, qmax)          the integer code, held in float (exact)
//! DequantizeLinear(q, s', zp') consumers  →  (c − zp') · s'
//! any other consumer / graph output       →  Cast(c, int8|uint8)
//! ```
//!
//! ONNX `Round` rounds half to even, as `QuantizeLinear` does, so the values are identical.

use tract_onnx::pb;

use super::graph::{self, Constants, Names};
use super::tensor::{self, QType};

/// Rewrites every `QuantizeLinear` fed by a `Softmax`/`LogSoftmax`; returns how many. A
/// `QuantizeLinear` whose scale or zero point is not a per-tensor constant is left alone (the
/// load-time check in `engine` then refuses the model if tract would fold it).
pub fn requantize_in_float(graph: &mut pb::GraphProto, names: &mut Names) -> Result<usize, String> {
    let consumers = graph::consumers(graph);
    let consts = Constants::new(graph);
    // (index of the QuantizeLinear, its replacement) and (index of a DequantizeLinear consumer,
    // its replacement); applied after the scan.
    let mut replace: Vec<(usize, Vec<pb::NodeProto>)> = Vec::new();
    let mut extra = Vec::new();
    let mut count = 0;
    for sm in graph.node.iter().filter(|n| matches!(n.op_type.as_str(), "Softmax" | "LogSoftmax")) {
        let Some(p) = sm.output.first() else { continue };
        for &qi in consumers.get(p).map(Vec::as_slice).unwrap_or_default() {
            let q = &graph.node[qi];
            if q.op_type != "QuantizeLinear" || q.input.first() != Some(p) {
                continue;
            }
            let Some((scale, zp, qtype)) = per_tensor(&consts, q, 1)? else { continue };
            let Some(q_out) = q.output.first() else { continue };
            let stem = graph::stem(q);
            let mut constant = |what: &str, v: f32| {
                let name = names.fresh(&format!("{stem}_fq_{what}"));
                extra.push(tensor::f32_tensor(&name, &[], &[v]));
                name
            };
            let (lo, hi) = qtype.range();
            let (s, z, lo, hi) =
                (constant("scale", scale), constant("zp", zp as f32), constant("min", lo), constant("max", hi));
            let mut fresh = |what: &str| names.fresh(&format!("{stem}_fq_{what}"));
            let (div, round, add, code) = (fresh("div"), fresh("round"), fresh("add"), fresh("code"));
            let mut nodes = vec![
                graph::node("Div", &div, &[p, &s], &[&div], vec![]),
                graph::node("Round", &round, &[&div], &[&round], vec![]),
                graph::node("Add", &add, &[&round, &z], &[&add], vec![]),
                graph::node("Clip", &code, &[&add, &lo, &hi], &[&code], vec![]),
            ];
            let mut needs_cast = graph.output.iter().any(|o| &o.name == q_out);
            for &di in consumers.get(q_out).map(Vec::as_slice).unwrap_or_default() {
                let d = &graph.node[di];
                let dq = match d.op_type.as_str() {
                    "DequantizeLinear" if d.input.first() == Some(q_out) => per_tensor(&consts, d, 1)?,
                    _ => None,
                };
                match (dq, d.output.first()) {
                    (Some((ds, dz, _)), Some(d_out)) => {
                        let dstem = graph::stem(d);
                        let dz_name = names.fresh(&format!("{dstem}_fq_zp"));
                        let ds_name = names.fresh(&format!("{dstem}_fq_scale"));
                        extra.push(tensor::f32_tensor(&dz_name, &[], &[dz as f32]));
                        extra.push(tensor::f32_tensor(&ds_name, &[], &[ds]));
                        let sub = names.fresh(&format!("{dstem}_fq_sub"));
                        replace.push((
                            di,
                            vec![
                                graph::node("Sub", &sub, &[&code, &dz_name], &[&sub], vec![]),
                                graph::node("Mul", &dstem, &[&sub, &ds_name], &[d_out], vec![]),
                            ],
                        ));
                    }
                    _ => needs_cast = true,
                }
            }
            if needs_cast {
                let cast = names.fresh(&format!("{stem}_fq_cast"));
                nodes.push(graph::node(
                    "Cast",
                    &cast,
                    &[&code],
                    &[q_out],
                    vec![graph::int_attr("to", qtype.onnx() as i64)],
                ));
            }
            replace.push((qi, nodes));
            count += 1;
        }
    }
    graph::splice(graph, replace.into_iter().collect());
    graph.initializer.extend(extra);
    // Each replaced DequantizeLinear comes after its QuantizeLinear's replacement (ONNX graphs are
    // topologically sorted), so `c` is defined before it is read.
    Ok(count)
}

/// `(scale, zero point, element type)` of a Q/DQ node whose scale (input `i`) and zero point
/// (input `i + 1`, absent = 0 as uint8) are per-tensor constants; `None` otherwise.
fn per_tensor(consts: &Constants, n: &pb::NodeProto, i: usize) -> Result<Option<(f32, i64, QType)>, String> {
    let Some(scale) = graph::input(n, i).map(|s| consts.get(s)).transpose()?.flatten().and_then(|c| c.scalar_f32())
    else {
        return Ok(None);
    };
    match graph::input(n, i + 1) {
        None => Ok(Some((scale, 0, QType::U8))),
        Some(z) => {
            let Some(zp) = consts.get(z)? else { return Ok(None) };
            match (zp.scalar_int(), QType::of(&zp)) {
                (Some(v), Some(t)) => Ok(Some((scale, v, t))),
                _ => Ok(None),
            }
        }
    }
}
