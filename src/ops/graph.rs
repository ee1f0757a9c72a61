//! Small queries on tract's typed graph shared by our ops' pattern matchers (`install` functions).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::{BinMiniOp, TypedBinOp};

/// The only node reading `outlet`, if exactly one does and the outlet is not a model output (so
/// replacing what produces it changes nothing else).
pub(crate) fn single_successor(model: &TypedModel, outlet: OutletId) -> Option<usize> {
    if model.outputs.contains(&outlet) {
        return None;
    }
    match model.outlet_successors(outlet) {
        [one] => Some(one.node),
        _ => None,
    }
}

/// Whether `node` is tract's binary operator `T` (`Add`, `Mul`, `Sub`, …) on two inputs.
pub(crate) fn is_bin<T: BinMiniOp>(node: &TypedNode) -> bool {
    node.inputs.len() == 2 && node.op_as::<TypedBinOp>().is_some_and(|op| op.0.is::<T>())
}
