//! `PandermSoftmax`: tract's float32 `Softmax` over the last axis, on the row kernel of
//! [`super::softmax_kernel`] (any row length; tract's fast kernel needs a multiple of 4, and
//! PanDerm's attention rows are 197 long). Rows are split across tract's inference threads as
//! tract's own op does.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

use super::softmax_kernel;

/// The op: float32 in, float32 out, softmax over the last axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PandermSoftmax;

impl PandermSoftmax {
    /// The replacement for tract's `Softmax` node, if it is a float32 softmax (not log-softmax,
    /// not quantized) over exactly the last axis of an input of known rank.
    pub fn replacing(op: &dyn TypedOp, input: &TypedFact) -> Option<PandermSoftmax> {
        let sm = op.downcast_ref::<Softmax>()?;
        let rank = input.rank();
        let last_axis_only = rank > 0 && sm.axes.as_slice() == [rank - 1];
        let plain = sm.kind == SoftmaxKind::Softmax && sm.quant_output_dt.is_none();
        (input.datum_type == DatumType::F32 && last_axis_only && plain).then_some(PandermSoftmax)
    }
}

impl Op for PandermSoftmax {
    fn name(&self) -> StaticName {
        "PandermSoftmax".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("last axis ({} kernel)", softmax_kernel::kernel_name())])
    }

    op_as_typed_op!();
}

impl EvalOp for PandermSoftmax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        Ok(tvec!(super::map_rows(&inputs[0], softmax_kernel::softmax_row)?.into_tvalue()))
    }
}

impl TypedOp for PandermSoftmax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}
