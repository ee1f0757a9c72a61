//! `PandermAttention`: a ViT's attention core per head, `softmax(q · kᵀ) · v`, as one operator in
//! place of [`super::batched_matmul::PandermBatchedMatMul`] → `Softmax` (last axis) →
//! `PandermBatchedMatMul`.
//!
//! Unfused, the scores of every head (`[heads, tokens, tokens]`: 1.9 MB per PanDerm_Base block)
//! are written by the first product, read and written by the softmax, and read by the second
//! product, in three operators with a fork and join each. Here each task takes one head and walks
//! its rows a block at a time: the block's scores, their softmax and their share of the output
//! are computed while the block (a few KB) is in L1. The heads are spread over tract's inference
//! threads.
//!
//! The arithmetic is the unfused operators', element for element: each score is the same fused
//! multiply-add chain in increasing `k` ([`super::batched_matmul_kernel`]), each row goes through
//! the same [`super::softmax_kernel::softmax_row`], and each output element is again one chain in
//! increasing `k`, so the output is bit-identical to the unfused operators' (tested in
//! tests/model_parity.rs).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

use super::OutPtr;
use super::batched_matmul::PandermBatchedMatMul;
use super::batched_matmul_kernel::{Kernel, Strides};
use super::graph::single_successor;
use super::softmax_kernel;

/// The op: `q`, `k`, `v` float32 in (any layout the two products had), the attention output out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PandermAttention {
    /// The scores product `q · kᵀ` (A = q, B = k; C = the scores, not materialized).
    pub scores: Strides,
    /// The output product `p · v` (A = the softmaxed scores, B = v, C = the output).
    pub output: Strides,
    /// The kernel of both products.
    pub kernel: Kernel,
    /// The output's shape.
    pub output_shape: TVec<usize>,
}

impl Op for PandermAttention {
    fn name(&self) -> StaticName {
        "PandermAttention".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let (s, o) = (&self.scores, &self.output);
        Ok(vec![format!(
            "{} heads: softmax([{} x {}] . [{} x {}]) . [{} x {}] ({} kernel)",
            s.batch,
            s.m,
            s.k,
            s.k,
            s.n,
            o.k,
            o.n,
            self.kernel.name()
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for PandermAttention {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let plain: Vec<_> = inputs.iter().map(|t| t.try_as_plain_ram()).collect::<TractResult<_>>()?;
        let (q, k, v) = (plain[0].as_slice::<f32>()?, plain[1].as_slice::<f32>()?, plain[2].as_slice::<f32>()?);
        let (eq, ek, _) = self.scores.extents();
        let (_, ev, eo) = self.output.extents();
        ensure!(
            q.len() >= eq && k.len() >= ek && v.len() >= ev && self.output_shape.iter().product::<usize>() >= eo,
            "PandermAttention: inputs of {}, {} and {} values for {:?} and {:?}",
            q.len(),
            k.len(),
            v.len(),
            self.scores,
            self.output
        );
        // SAFETY: every element of the output is written (the output product's strides cover it).
        let mut output = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        {
            let mut out = output.try_as_plain_ram_mut()?;
            let out = OutPtr(out.as_slice_mut::<f32>()?.as_mut_ptr());
            // SAFETY: head h writes only its own output elements (extents checked), and the
            // output outlives the tasks.
            super::spread(self.scores.batch, |h| unsafe { self.head(q, k, v, out, h) });
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PandermAttention {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(self.output_shape.clone())))
    }

    fn cost(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let (s, o) = (&self.scores, &self.output);
        Ok(tvec!((Cost::FMA(DatumType::F32), (s.batch * (s.m * s.n * s.k + o.m * o.n * o.k)).to_dim())))
    }

    as_op!();
}

impl PandermAttention {
    /// One head: its `kᵀ` and `v` packed once, then its rows a block at a time.
    ///
    /// # Safety
    /// The buffers hold the extents of both products; no other task writes head `h`'s output.
    unsafe fn head(&self, q: &[f32], k: &[f32], v: &[f32], out: OutPtr, h: usize) {
        let (s, o) = (&self.scores, &self.output);
        let tokens = s.n;
        let packed_k = s.pack_b(self.kernel, k, h);
        let packed_v = o.pack_b(self.kernel, v, h);
        let q = &q[h * s.a[0]..];
        // SAFETY: head h's output starts at h · o.c[0] (within the extents).
        let out = unsafe { out.0.add(h * o.c[0]) };
        // One register block of rows at a time (8 with AVX-512, 6 with AVX2: the scores block is
        // 6.3 KB for 197 tokens); blocks of other heights left the AVX2 product with a 2-row tail
        // per block and ran slower.
        let block_rows = self.kernel.mr();
        let mut scores = vec![0f32; block_rows * tokens];
        let mut probs = vec![0f32; block_rows * tokens];
        let mut i = 0;
        while i < s.m {
            let rows = (s.m - i).min(block_rows);
            // The block's scores, rows × tokens, contiguous.
            let block = Strides { batch: 1, m: rows, a: [0, s.a[1], s.a[2]], c: [0, tokens], ..*s };
            // SAFETY: the kernel is available (checked at install); `scores` holds rows × tokens.
            unsafe { block.product_packed(self.kernel, &q[i * s.a[1]..], &packed_k, scores.as_mut_ptr()) };
            for (x, y) in scores.chunks_exact(tokens).zip(probs.chunks_exact_mut(tokens)).take(rows) {
                softmax_kernel::softmax_row(x, y);
            }
            // The block's share of the output: rows × o.n at the output's strides.
            let block = Strides { batch: 1, m: rows, a: [0, tokens, 1], ..*o };
            // SAFETY: as above; the output rows i.. of head h are this task's.
            unsafe { block.product_packed(self.kernel, &probs, &packed_v, out.add(i * o.c[1])) };
            i += rows;
        }
    }
}

/// Replaces every `PandermBatchedMatMul → Softmax(last axis) → PandermBatchedMatMul` chain of a
/// decluttered model (after [`super::batched_matmul::install`]) whose second product reads the
/// softmaxed scores as the first wrote them, by one [`PandermAttention`]; returns how many.
pub fn install(model: &mut TypedModel) -> TractResult<usize> {
    let mut count = 0;
    for id in model.eval_order()? {
        let Some((inputs, op, last)) = matching(model, id) else { continue };
        let mut patch = TypedModelPatch::default();
        let wires: TVec<OutletId> = inputs.iter().map(|&i| patch.tap_model(model, i)).collect::<TractResult<_>>()?;
        let name = format!("{}.panderm_attention", model.node(last).name);
        let out = patch.wire_node(name, op, &wires)?;
        patch.shunt_outside(model, OutletId::new(last, 0), out[0])?;
        patch.apply(model)?;
        count += 1;
    }
    Ok(count)
}

fn matching(model: &TypedModel, id: usize) -> Option<([OutletId; 3], PandermAttention, usize)> {
    let first = model.node(id);
    let scores = first.op_as::<PandermBatchedMatMul>()?;
    let softmax_node = model.node(single_successor(model, OutletId::new(id, 0))?);
    let softmax = softmax_node.op_as::<Softmax>()?;
    let fact = model.outlet_fact(OutletId::new(id, 0)).ok()?;
    let rank = fact.rank();
    if rank == 0
        || softmax.kind != SoftmaxKind::Softmax
        || softmax.quant_output_dt.is_some()
        || softmax.axes.as_slice() != [rank - 1]
        || fact.datum_type != DatumType::F32
    {
        return None;
    }
    let second_node = model.node(single_successor(model, OutletId::new(softmax_node.id, 0))?);
    let output = second_node.op_as::<PandermBatchedMatMul>()?;
    if second_node.inputs[0] != OutletId::new(softmax_node.id, 0) || output.kernel != scores.kernel {
        return None;
    }
    let (s, o) = (&scores.strides, &output.strides);
    // The scores are rows of `s.n` contiguous floats (the softmax's last axis), and the second
    // product reads them in that layout: head by head, row by row, depth = the scores' columns.
    let scores_contiguous = s.c[1] == s.n && s.c[0] == s.m * s.n && fact.shape.as_concrete()?.last() == Some(&s.n);
    let read_as_written = o.batch == s.batch && o.m == s.m && o.k == s.n && o.a == [s.c[0], s.c[1], 1];
    if !scores_contiguous || !read_as_written {
        return None;
    }
    let op =
        PandermAttention { scores: *s, output: *o, kernel: scores.kernel, output_shape: output.output_shape.clone() };
    Some(([first.inputs[0], first.inputs[1], second_node.inputs[1]], op, second_node.id))
}
