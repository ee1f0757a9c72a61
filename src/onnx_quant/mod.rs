//! Import of ONNX Runtime's quantized forms: a load-time rewrite of the ONNX graph so that tract
//! computes what ONNX Runtime computes on the same file, fast.
//!
//! Users quantize with `onnxruntime.quantization` (the standard tool). Of the files it writes,
//! tract 0.23.9 ran the dynamic forms right, refused QOperator (`Unimplemented(QLinearAdd)`) and —
//! worst — ran the QDQ forms with **silently wrong** features (cosine 0.40–0.72 to ONNX Runtime):
//! it folds `DequantizeLinear → Softmax → QuantizeLinear` into a per-element lookup table, so every
//! attention probability becomes 1.0 (docs/quantization.md, "Root cause"). [`import`] runs
//! between parsing the protobuf and handing it to tract ([`crate::engine`]), in three steps:
//!
//! 1. [`qoperator`]: QOperator nodes → `DequantizeLinear → float op → QuantizeLinear` (the QDQ
//!    graph ONNX Runtime fuses back into the same kernels); other QOperator nodes are refused by
//!    name.
//! 2. [`softmax`]: every `QuantizeLinear` on a `Softmax`/`LogSoftmax` output becomes the same
//!    arithmetic in float, so tract's folding never sees it.
//! 3. [`matmul`]: `MatMul(DQ(x), DQ(constant int8 W))` → `MatMulInteger` with the activation zero
//!    point moved into a constant, tract's fast integer GEMM.
//!
//! Graphs without `QuantizeLinear`/`DequantizeLinear`/QOperator nodes are returned untouched, so
//! fp32 models and our own `panderm-tools quantize` output (no `DequantizeLinear`) load as before.
//! The engine also checks after tract's simplification that no `Softmax` disappeared
//! (`engine::check_softmax_kept`), which refuses any other graph shape that would hit the same bug.

mod graph;
mod matmul;
mod qoperator;
mod softmax;
mod tensor;

use tract_onnx::pb;

/// What [`import`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// QOperator nodes expanded to QDQ.
    pub qoperator_expanded: usize,
    /// `QuantizeLinear` nodes after a (Log)Softmax computed in float instead.
    pub softmax_requantized: usize,
    /// Weight MatMuls turned into `MatMulInteger`.
    pub matmuls_integer: usize,
}

impl ImportReport {
    /// Whether anything was rewritten.
    pub fn changed(&self) -> bool {
        *self != ImportReport::default()
    }
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} QOperator node(s) expanded, {} Softmax re-quantization(s) in float, {} weight MatMul(s) as MatMulInteger",
            self.qoperator_expanded, self.softmax_requantized, self.matmuls_integer
        )
    }
}

/// Whether the graph holds anything [`import`] looks at.
fn is_quantized(graph: &pb::GraphProto) -> bool {
    graph.node.iter().any(|n| {
        matches!(n.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear")
            || n.op_type.starts_with("QLinear")
            || n.domain == "com.microsoft"
    })
}

/// Rewrites ONNX Runtime's quantized forms in `model` (see the module docs). On error (one line:
/// which node, what to do instead) the model must not be used.
pub fn import(model: &mut pb::ModelProto) -> Result<ImportReport, String> {
    let Some(graph) = model.graph.as_mut() else { return Ok(ImportReport::default()) };
    if !is_quantized(graph) {
        return Ok(ImportReport::default());
    }
    let mut names = graph::Names::new(graph);
    let qoperator_expanded = qoperator::expand(graph, &mut names)?;
    let softmax_requantized = softmax::requantize_in_float(graph, &mut names)?;
    let matmuls_integer = matmul::to_matmul_integer(graph, &mut names)?;
    Ok(ImportReport { qoperator_expanded, softmax_requantized, matmuls_integer })
}

#[cfg(test)]
mod tests;
