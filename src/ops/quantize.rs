//! `PandermQuantizeLinear`: tract's float → 8-bit activation quantizer (`QuantizeLinearU8` /
//! `QuantizeLinearI8`, a scalar loop: 17 % of int8 PanDerm_Base in our static-u8 form, ~60 % in
//! ONNX Runtime's QDQ form, docs/performance.md) replaced by the SIMD loop of
//! [`super::quantize_kernel`]. Same codes as tract's op for every finite input (tested); a NaN
//! input is an error instead of tract's zero point.
//!
//! Where the quantizer's input is tract's exact GELU (`GeluExact`, a ViT MLP's activation, read by
//! nothing else), [`fuse_gelu`] folds it in: the op then computes tract's GELU on each row —
//! tract's own `erf` kernel and arithmetic, `(x · 0.5) · (erf(x · 1/√2) + 1)`, so the same floats —
//! and quantizes them while they are in cache, one pass over the MLP's widest tensor instead of
//! two (tested bit for bit against the two ops).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::nn::GeluExact;
use tract_onnx::tract_core::ops::quant::{QuantizeLinearI8, QuantizeLinearU8};
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

use super::quantize_kernel::{self, Params};

/// The op: float32 in, uint8 or int8 out, same shape.
#[derive(Debug, Clone, PartialEq)]
pub struct PandermQuantizeLinear {
    /// Multiplier (1/scale), zero point and range.
    pub params: Params,
    /// Whether tract's exact GELU is applied first (see the module doc).
    pub gelu: bool,
}

// The scale is never NaN (tract's quantizer is built from a finite constant), so equality is total.
impl Eq for PandermQuantizeLinear {}

impl PandermQuantizeLinear {
    /// The replacement for a node of tract's own quantizer on a float32 input, if it is one.
    pub fn replacing(op: &dyn TypedOp, input: DatumType) -> Option<PandermQuantizeLinear> {
        let ew = op.downcast_ref::<ElementWiseOp>()?;
        if input != DatumType::F32 {
            return None;
        }
        let params = if let Some(q) = ew.0.downcast_ref::<QuantizeLinearU8>() {
            Params { mul: q.scale, zero_point: q.zero_point.into(), lo: 0, hi: 255 }
        } else if let Some(q) = ew.0.downcast_ref::<QuantizeLinearI8>() {
            Params { mul: q.scale, zero_point: q.zero_point.into(), lo: -128, hi: 127 }
        } else {
            return None;
        };
        Some(PandermQuantizeLinear { params, gelu: false })
    }

    fn output_type(&self) -> DatumType {
        if self.params.lo < 0 { DatumType::I8 } else { DatumType::U8 }
    }
}

impl Op for PandermQuantizeLinear {
    fn name(&self) -> StaticName {
        "PandermQuantizeLinear".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}1/scale: {} zero_point: {} -> {:?} ({} kernel)",
            if self.gelu { "GELU (exact), then " } else { "" },
            self.params.mul,
            self.params.zero_point,
            self.output_type(),
            quantize_kernel::kernel_name()
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for PandermQuantizeLinear {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = inputs[0].try_as_plain_ram()?;
        let xs = input.as_slice::<f32>()?;
        // SAFETY: every byte is written by `quantize` below before the tensor is read (or the
        // tensor is dropped with the error).
        let mut output = unsafe { Tensor::uninitialized_dt(self.output_type(), inputs[0].shape())? };
        {
            let mut plain = output.try_as_plain_ram_mut()?;
            let out: &mut [u8] = if self.output_type() == DatumType::U8 {
                plain.as_slice_mut::<u8>()?
            } else {
                let s = plain.as_slice_mut::<i8>()?;
                // SAFETY: i8 and u8 have the same size and alignment; the kernel writes two's
                // complement bytes for int8.
                unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut u8, s.len()) }
            };
            // Rows (the last axis) spread over tract's inference threads.
            let row = inputs[0].shape().last().copied().filter(|&r| r > 0).unwrap_or(1);
            let total = out.len();
            tract_linalg::multithread::par_chunks_mut(out, row, total, |first_row, chunk| {
                let xs = &xs[first_row * row..first_row * row + chunk.len()];
                let activated: Vec<f32>;
                let xs = if self.gelu {
                    activated = gelu_exact(xs)?;
                    &activated[..]
                } else {
                    xs
                };
                // tract's op (and ONNX's definition, via the i32 cast) turns NaN into the zero
                // point: a NaN-poisoned activation would then leave the int8 model as finite,
                // plausible numbers. Refuse instead, so the runtime reports a model error ("cannot
                // assess"). A branch-free fold (vectorised) over data the quantizer reads next.
                if xs.iter().fold(false, |nan, v| nan | v.is_nan()) {
                    bail!("NaN in the activations of an int8 quantizer: the model or its input is broken");
                }
                quantize_kernel::quantize(xs, self.params, chunk);
                Ok(())
            })?;
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

/// tract 0.23.9's `GeluExact` on `xs`, the same floats: its `erf` kernel on `x · 1/√2` in blocks
/// of 1024, then `(x · 0.5) · (erf + 1)`.
fn gelu_exact(xs: &[f32]) -> TractResult<Vec<f32>> {
    const BLOCK: usize = 1024;
    let erf = tract_linalg::routines::Func::Erf.ew_f32()?;
    let c = 2.0f32.sqrt().recip();
    let mut out = Vec::with_capacity(xs.len());
    let mut scaled = [0f32; BLOCK];
    for block in xs.chunks(BLOCK) {
        let scaled = &mut scaled[..block.len()];
        scaled.iter_mut().zip(block).for_each(|(s, x)| *s = *x * c);
        erf.run(scaled)?;
        out.extend(block.iter().zip(scaled.iter()).map(|(x, e)| (*x * 0.5) * (*e + 1.0)));
    }
    Ok(out)
}

/// Folds each tract `GeluExact` whose only reader is one of our quantizers into that quantizer
/// (an optimized model, after [`super::install`] put the quantizers in); returns how many.
pub fn fuse_gelu(model: &mut TypedModel) -> TractResult<usize> {
    let mut count = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(q) = node.op_as::<PandermQuantizeLinear>().filter(|q| !q.gelu) else { continue };
        let Some(&input) = node.inputs.first() else { continue };
        let gelu_node = model.node(input.node);
        let is_gelu = gelu_node.op_as::<ElementWiseOp>().is_some_and(|ew| ew.0.is::<GeluExact>());
        let only_reader = model.outlet_successors(input).len() == 1 && !model.outputs.contains(&input);
        let Some(&x) = gelu_node.inputs.first() else { continue };
        if !is_gelu || !only_reader || model.outlet_fact(x)?.datum_type != DatumType::F32 {
            continue;
        }
        let fused = PandermQuantizeLinear { params: q.params, gelu: true };
        let patch = TypedModelPatch::replace_single_op(model, node, &[x], fused)?;
        patch.apply(model)?;
        count += 1;
    }
    Ok(count)
}

impl TypedOp for PandermQuantizeLinear {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.output_type().fact(inputs[0].shape.clone())))
    }

    fn axes_mapping(&self, inputs: &[&TypedFact], outputs: &[&TypedFact]) -> TractResult<AxesMapping> {
        AxesMapping::natural(inputs, outputs)
    }

    as_op!();
}
