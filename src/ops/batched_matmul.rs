//! `PandermBatchedMatMul`: a float32 EinSum that is a batched matrix product (a batch axis in
//! both operands and the output, one row, one column and one depth axis, any order), run by
//! [`super::batched_matmul_kernel`] with the batches (a ViT's attention heads) spread over the
//! inference threads. Installed on the decluttered model on x86_64 (AVX-512F or AVX2+FMA); ARM
//! keeps tract's kernels. Same result as the scalar definition bit for bit (one fused
//! multiply-add chain per element); tract's own kernels sum in another order, so the outputs
//! differ from tract's by float rounding (tested with a stated tolerance).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

use super::batched_matmul_kernel::{Kernel, Strides};

/// The op: A and B float32 in, C float32 out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PandermBatchedMatMul {
    /// Shape and strides of the product.
    pub strides: Strides,
    /// The kernel.
    pub kernel: Kernel,
    /// C's shape.
    pub output_shape: TVec<usize>,
}

impl Op for PandermBatchedMatMul {
    fn name(&self) -> StaticName {
        "PandermBatchedMatMul".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let s = &self.strides;
        Ok(vec![format!("{} x [{} x {}] . [{} x {}] ({} kernel)", s.batch, s.m, s.k, s.k, s.n, self.kernel.name())])
    }

    op_as_typed_op!();
}

impl EvalOp for PandermBatchedMatMul {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (a, b) = (inputs[0].try_as_plain_ram()?, inputs[1].try_as_plain_ram()?);
        let (a, b) = (a.as_slice::<f32>()?, b.as_slice::<f32>()?);
        let (ea, eb, ec) = self.strides.extents();
        ensure!(
            a.len() >= ea && b.len() >= eb && self.output_shape.iter().product::<usize>() >= ec,
            "PandermBatchedMatMul: inputs of {} and {} values for {:?}",
            a.len(),
            b.len(),
            self.strides
        );
        // SAFETY: every element of C is written by the product (its strides cover C exactly).
        let mut output = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        self.strides.run(self.kernel, a, b, output.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?);
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PandermBatchedMatMul {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(self.output_shape.clone())))
    }

    fn cost(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let s = &self.strides;
        Ok(tvec!((Cost::FMA(DatumType::F32), (s.batch * s.m * s.n * s.k).to_dim())))
    }

    as_op!();
}

/// Row-major strides of a shape.
fn row_major(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// The product's strides when the EinSum is `C[b, i, j] = Σ_k A[b, i, k] · B[b, k, j]` with each
/// of the four axes once in each operand it belongs to (any order) and j C's last axis.
fn strides_of(op: &EinSum, a: &[usize], b: &[usize], c: &[usize]) -> Option<Strides> {
    if op.axes.iter_all_axes().count() != 4 || a.len() != 3 || b.len() != 3 || c.len() != 3 {
        return None;
    }
    let (sa, sb, sc) = (row_major(a), row_major(b), row_major(c));
    let (mut batch, mut m, mut n, mut k) = (None, None, None, None);
    for axis in op.axes.iter_all_axes() {
        let (ia, ib, ic) = (&axis.inputs[0], &axis.inputs[1], &axis.outputs[0]);
        if ia.len() > 1 || ib.len() > 1 || ic.len() > 1 {
            return None;
        }
        let (pa, pb, pc) = (ia.first().copied(), ib.first().copied(), ic.first().copied());
        match (pa, pb, pc) {
            (Some(pa), Some(pb), Some(pc)) => batch = Some((a[pa], sa[pa], sb[pb], sc[pc])),
            (Some(pa), None, Some(pc)) => m = Some((a[pa], sa[pa], sc[pc])),
            (None, Some(pb), Some(pc)) => n = Some((b[pb], sb[pb], sc[pc], pc)),
            (Some(pa), Some(pb), None) => k = Some((a[pa], sa[pa], sb[pb])),
            _ => return None,
        }
    }
    let ((nb, ab, bb, cb), (nm, am, cm), (nn, bn, cn, pn), (nk, ak, bk)) = (batch?, m?, n?, k?);
    if cn != 1 || pn != 2 {
        return None;
    }
    Some(Strides { batch: nb, m: nm, n: nn, k: nk, a: [ab, am, ak], b: [bb, bk, bn], c: [cb, cm] })
}

/// Replaces every float32 batched-product EinSum of a decluttered model by
/// [`PandermBatchedMatMul`] on `kernel`; returns how many.
pub fn install(model: &mut TypedModel, kernel: Kernel) -> TractResult<usize> {
    let mut count = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(op) = node.op_as::<EinSum>() else { continue };
        if op.q_params.is_some() || op.operating_dt != DatumType::F32 || node.inputs.len() != 2 {
            continue;
        }
        let facts: Vec<&TypedFact> = node.inputs.iter().map(|i| model.outlet_fact(*i)).collect::<TractResult<_>>()?;
        if facts.iter().any(|f| f.datum_type != DatumType::F32) {
            continue;
        }
        let out = model.outlet_fact(OutletId::new(id, 0))?;
        let (Some(a), Some(b), Some(c)) =
            (facts[0].shape.as_concrete(), facts[1].shape.as_concrete(), out.shape.as_concrete())
        else {
            continue;
        };
        if out.datum_type != DatumType::F32 {
            continue;
        }
        let Some(strides) = strides_of(op, a, b, c) else { continue };
        let new = PandermBatchedMatMul { strides, kernel, output_shape: c.into() };
        let patch = TypedModelPatch::replace_single_op(model, node, &node.inputs, new)?;
        patch.apply(model)?;
        count += 1;
    }
    Ok(count)
}
