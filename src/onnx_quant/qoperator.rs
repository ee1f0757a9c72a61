//! QOperator → QDQ: ONNX Runtime's `quantize_static(quant_format=QOperator)` writes fused integer
//! operators (`QLinearConv`, `QLinearMatMul`, and its own `com.microsoft` `QLinearAdd`,
//! `QLinearMul`, `QLinearSoftmax`) that tract 0.23.9 partly lacks (`Unimplemented(QLinearAdd)`).
//! Each becomes `DequantizeLinear` of its inputs → the float operator → `QuantizeLinear`, which is
//! exactly the QDQ graph ONNX Runtime itself fuses back into those kernels (same output, cosine
//! 1.00000, measured in docs/quantization.md). Any other QOperator node is refused by name.

use tract_onnx::pb;

use super::graph::{self, Constants, Names};
use super::tensor::{self, Values};

/// The operators handled here, as `(domain, op_type)`.
pub const EXPANDED: [(&str, &str); 5] = [
    ("", "QLinearConv"),
    ("", "QLinearMatMul"),
    ("com.microsoft", "QLinearAdd"),
    ("com.microsoft", "QLinearMul"),
    ("com.microsoft", "QLinearSoftmax"),
];

/// Whether a node is an ONNX Runtime quantized operator (fused QOperator form or another
/// `com.microsoft` integer kernel) that tract cannot run as it is.
fn is_qoperator(n: &pb::NodeProto) -> bool {
    n.op_type.starts_with("QLinear")
        || (n.domain == "com.microsoft"
            && matches!(
                n.op_type.as_str(),
                "QGemm" | "QAttention" | "QEmbedLayerNormalization" | "DynamicQuantizeMatMul" | "MatMulIntegerToFloat"
            ))
}

/// Expands every QOperator node; returns how many. Refuses (one line, naming the node and what to
/// do instead) a QOperator node it has no expansion for.
pub fn expand(graph: &mut pb::GraphProto, names: &mut Names) -> Result<usize, String> {
    if !graph.node.iter().any(is_qoperator) {
        return Ok(0);
    }
    let consts = Constants::new(graph);
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut extra_inits = Vec::new();
    let mut count = 0;
    for n in &graph.node {
        if !is_qoperator(n) {
            nodes.push(n.clone());
            continue;
        }
        let known = EXPANDED.iter().any(|(d, t)| {
            *t == n.op_type && (n.domain == *d || (d.is_empty() && (n.domain == "ai.onnx" || n.domain.is_empty())))
        });
        if !known {
            let domain = if n.domain.is_empty() { String::new() } else { format!("{}:", n.domain) };
            return Err(format!(
                "quantized operator {domain}{} (node `{}`) is not supported; quantize in QDQ format \
                 (onnxruntime.quantization quant_format=QuantFormat.QDQ) or with `panderm-tools quantize`",
                n.op_type,
                graph::stem(n)
            ));
        }
        let mut x = Expansion { node: n, names, nodes: &mut nodes, stem: graph::stem(n) };
        match n.op_type.as_str() {
            "QLinearMatMul" => {
                let a = x.dq(0, None)?;
                let axis = per_axis(&consts, n, 4, "b", |rank| rank - 1)?;
                let b = x.dq(3, axis)?;
                x.float_then_q("MatMul", &[&a, &b], vec![], 6)?;
            }
            "QLinearConv" => {
                let xin = x.dq(0, None)?;
                let axis = per_axis(&consts, n, 4, "w", |_| 0)?;
                let w = x.dq(3, axis)?;
                let mut ins = vec![xin, w];
                if let Some(bias) = graph::input(n, 8) {
                    // The int32 bias is in units of x_scale · w_scale (per output channel).
                    let sx = scalar_scale(&consts, n, 1)?;
                    let sw = consts.get(required(n, 4, "w_scale")?)?.ok_or_else(|| not_const(n, "w_scale"))?;
                    let Values::F32(sw) = sw.values else { return Err(not_const(n, "w_scale")) };
                    let scale: Vec<f32> = sw.iter().map(|s| sx * s).collect();
                    let dims: Vec<i64> = if scale.len() == 1 { vec![] } else { vec![scale.len() as i64] };
                    let name = x.names.fresh(&format!("{}_bias_scale", x.stem));
                    extra_inits.push(tensor::f32_tensor(&name, &dims, &scale));
                    let out = x.names.fresh(&format!("{}_bias_dq", x.stem));
                    let attrs = if scale.len() == 1 { vec![] } else { vec![graph::int_attr("axis", 0)] };
                    x.nodes.push(graph::node("DequantizeLinear", &out, &[bias, &name], &[&out], attrs));
                    ins.push(out);
                }
                let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
                x.float_then_q("Conv", &refs, n.attribute.clone(), 6)?;
            }
            "QLinearAdd" | "QLinearMul" => {
                let a = x.dq(0, None)?;
                let b = x.dq(3, None)?;
                let op = &n.op_type["QLinear".len()..];
                x.float_then_q(op, &[&a, &b], vec![], 6)?;
            }
            "QLinearSoftmax" => {
                let axis = graph::attr_int(n, "axis", -1);
                // com.microsoft QLinearSoftmax carries the opset whose Softmax semantics it
                // follows; before opset 13 Softmax flattened to 2-D around `axis`, which equals the
                // per-axis softmax only when `axis` is the last one.
                if graph::attr_int(n, "opset", 13) < 13 && axis != -1 {
                    return Err(format!(
                        "QLinearSoftmax node `{}` uses opset<13 softmax semantics on axis {axis}; re-quantize in QDQ format",
                        x.stem
                    ));
                }
                let a = x.dq(0, None)?;
                x.float_then_q("Softmax", &[&a], vec![graph::int_attr("axis", axis)], 3)?;
            }
            _ => unreachable!("EXPANDED lists the op types matched above"),
        }
        count += 1;
    }
    graph.node = nodes;
    graph.initializer.extend(extra_inits);
    Ok(count)
}

/// `Some(axis)` when the scale at input `scale_input` is per-axis (1-D with more than one value),
/// `None` when per-tensor.
fn per_axis(
    consts: &Constants,
    n: &pb::NodeProto,
    scale_input: usize,
    what: &str,
    axis_for_rank: impl Fn(usize) -> usize,
) -> Result<Option<i64>, String> {
    let scale_name = format!("{what}_scale");
    let scale = consts.get(required(n, scale_input, &scale_name)?)?.ok_or_else(|| not_const(n, &scale_name))?;
    if scale.dims.iter().product::<i64>() <= 1 {
        return Ok(None);
    }
    let value = consts.get(required(n, scale_input - 1, what)?)?.ok_or_else(|| {
        format!("node `{}`: a per-channel {what} that is not a constant is not supported", graph::stem(n))
    })?;
    Ok(Some(axis_for_rank(value.rank()) as i64))
}

fn scalar_scale(consts: &Constants, n: &pb::NodeProto, i: usize) -> Result<f32, String> {
    consts.get(required(n, i, "x_scale")?)?.and_then(|c| c.scalar_f32()).ok_or_else(|| not_const(n, "x_scale"))
}

/// Input `i` of a QOperator node, or an error naming the node and the missing input (a malformed
/// file: ONNX Runtime's tool always writes them).
fn required<'a>(n: &'a pb::NodeProto, i: usize, what: &str) -> Result<&'a str, String> {
    graph::input(n, i).ok_or_else(|| format!("node `{}` ({}) lacks its input {i} ({what})", graph::stem(n), n.op_type))
}

fn not_const(n: &pb::NodeProto, what: &str) -> String {
    format!("node `{}` ({}): {what} is not a constant scalar/vector initializer", graph::stem(n), n.op_type)
}

/// Writes the nodes that replace one QOperator node.
struct Expansion<'a> {
    node: &'a pb::NodeProto,
    names: &'a mut Names,
    nodes: &'a mut Vec<pb::NodeProto>,
    stem: String,
}

impl Expansion<'_> {
    /// `DequantizeLinear(input[i], input[i+1], input[i+2])`, per-axis when `axis` is given.
    fn dq(&mut self, i: usize, axis: Option<i64>) -> Result<String, String> {
        let n = self.node;
        let (Some(x), Some(scale)) = (graph::input(n, i), graph::input(n, i + 1)) else {
            return Err(format!("node `{}` ({}) lacks input {i} or its scale", self.stem, n.op_type));
        };
        let out = self.names.fresh(&format!("{}_dq{i}", self.stem));
        let mut ins = vec![x, scale];
        if let Some(zp) = graph::input(n, i + 2) {
            ins.push(zp);
        }
        let attrs = axis.map(|a| vec![graph::int_attr("axis", a)]).unwrap_or_default();
        self.nodes.push(graph::node("DequantizeLinear", &out, &ins, &[&out], attrs));
        Ok(out)
    }

    /// The float operator on `inputs`, then `QuantizeLinear` with the output scale and zero point
    /// at inputs `q` and `q + 1`, writing the QOperator node's own output name.
    fn float_then_q(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<pb::AttributeProto>,
        q: usize,
    ) -> Result<(), String> {
        let n = self.node;
        let (Some(out), Some(scale)) = (n.output.first(), graph::input(n, q)) else {
            return Err(format!("node `{}` ({}) lacks its output or output scale", self.stem, n.op_type));
        };
        let f = self.names.fresh(&format!("{}_float", self.stem));
        self.nodes.push(graph::node(op, &f, inputs, &[&f], attrs));
        let mut ins = vec![f.as_str(), scale];
        if let Some(zp) = graph::input(n, q + 1) {
            ins.push(zp);
        }
        let qname = self.names.fresh(&format!("{}_q", self.stem));
        self.nodes.push(graph::node("QuantizeLinear", &qname, &ins, &[out], vec![]));
        Ok(())
    }
}
