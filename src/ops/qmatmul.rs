//! `PandermQMatMul`: a weight MatMul of an int8 model and its float rescale as one op,
//!
//! ```text
//! EinSum(a: u8|i8, W: const i8, zero points, unit scales) -> i32 → Cast<f32> → Mul(scale[n]) [→ Add(bias[n])]
//! ```
//!
//! (what `MatMulInteger → Cast → Mul → Add` becomes in tract's decluttered model: our static-u8
//! form and ONNX Runtime's forms after `crate::onnx_quant`), replaced by [`super::qmatmul_kernel`]'s
//! GEMM on packed weights, with the rescale in its epilogue: tract's int8 GEMM was 75 % of int8
//! PanDerm_Base on an AMX Xeon and 93 % on an AVX2-only CPU, where it ran 2.8× slower than fp32
//! (issue 15, docs/performance.md). Installed on the decluttered model, before tract's optimizer
//! (which would otherwise turn the chain into its own GEMM), on x86_64 CPUs with AVX2 or AVX-512
//! VNNI; on ARM tract's NEON kernels stay. The output is bit-identical to tract's unfused chain
//! (tested).

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cast::Cast;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::{Add, Mul};
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

use super::graph::{is_bin, single_successor};
use super::qmatmul_kernel::{Kernel, SharedWeights, Weights};

/// The op: `[.., k]` 8-bit codes in, `[.., n]` float32 out.
#[derive(Debug, Clone)]
pub struct PandermQMatMul {
    /// Packed weights, zero point, scales and bias.
    pub weights: SharedWeights,
    /// Whether the activation codes are int8 (taken as uint8 + 128).
    pub signed: bool,
    /// The output shape (that of the last op it replaces).
    pub output_shape: TVec<usize>,
}

impl PartialEq for PandermQMatMul {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.weights, &other.weights)
            && self.signed == other.signed
            && self.output_shape == other.output_shape
    }
}

impl Eq for PandermQMatMul {}

impl Op for PandermQMatMul {
    fn name(&self) -> StaticName {
        "PandermQMatMul".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let (k, n) = self.weights.dims();
        Ok(vec![format!(
            "k: {k} n: {n} {} codes, bias: {} ({} kernel, {} packed bytes)",
            if self.signed { "i8" } else { "u8" },
            self.weights.has_bias(),
            self.weights.kernel().name(),
            self.weights.packed_bytes()
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for PandermQMatMul {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = inputs[0].try_as_plain_ram()?;
        let (k, n) = self.weights.dims();
        let flipped: Vec<u8>;
        let codes: &[u8] = if self.signed {
            // int8 codes as uint8: x + 128 (the zero point was moved by 128 when packed).
            flipped = input.as_slice::<i8>()?.iter().map(|&v| (v as u8) ^ 0x80).collect();
            &flipped
        } else {
            input.as_slice::<u8>()?
        };
        let m = codes.len() / k;
        ensure!(
            codes.len() == m * k && m * n == self.output_shape.iter().product::<usize>(),
            "PandermQMatMul: input of {} codes for k = {k}, output {:?}",
            codes.len(),
            self.output_shape
        );
        // SAFETY: every element is written by the GEMM before the tensor is read.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        self.weights.gemm(codes, output.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?);
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PandermQMatMul {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(self.output_shape.clone())))
    }

    fn cost(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let (k, n) = self.weights.dims();
        let m = self.output_shape.iter().product::<usize>() / n;
        Ok(tvec!((Cost::FMA(DatumType::I32), (m * k * n).to_dim())))
    }

    as_op!();
}

/// The constant of an outlet, if it has one.
fn konst(model: &TypedModel, outlet: OutletId) -> Option<Arc<Tensor>> {
    model.outlet_fact(outlet).ok()?.konst.clone()
}

fn scalar_is(model: &TypedModel, outlet: OutletId, value: f64) -> bool {
    konst(model, outlet).is_some_and(|t| t.len() == 1 && t.cast_to_scalar::<f64>().is_ok_and(|v| v == value))
}

/// A per-column float constant `[1, …, 1, n]` (or a scalar) of a binary op's other input, as `n`
/// values.
fn per_column(model: &TypedModel, node: &TypedNode, from: OutletId, n: usize) -> Option<Vec<f32>> {
    let [x, y] = node.inputs[..] else { return None };
    let other = if x == from {
        y
    } else if y == from {
        x
    } else {
        return None;
    };
    let t = konst(model, other)?;
    if t.datum_type() != DatumType::F32 {
        return None;
    }
    let shape = t.shape();
    let values = t.try_as_plain_ram().ok()?.as_slice::<f32>().ok()?.to_vec();
    if values.len() == 1 {
        return Some(vec![values[0]; n]);
    }
    let last = *shape.last()?;
    (last == n && shape.iter().rev().skip(1).all(|&d| d == 1)).then_some(values)
}

/// `(m, k, n)` when the EinSum is a plain `[m…, k…] × [k…, n] → [m…, n]` product in row-major
/// memory (size-1 axes anywhere are ignored: they do not change the layout).
fn gemm_layout(op: &EinSum, a: &[usize], b: &[usize], out: &[usize]) -> Option<(usize, usize, usize)> {
    let seq = |io: InOut, shape: &[usize]| -> Option<Vec<char>> {
        let axes: Vec<&Axis> = op.axes.axes(io).collect();
        if axes.len() != shape.len() {
            return None;
        }
        Some(axes.iter().zip(shape).filter(|(_, d)| **d != 1).map(|(ax, _)| ax.repr).collect())
    };
    let (sa, sb, so) = (seq(InOut::In(0), a)?, seq(InOut::In(1), b)?, seq(InOut::Out(0), out)?);
    let ks: Vec<char> = sa.iter().copied().filter(|c| sb.contains(c) && !so.contains(c)).collect();
    let ms: Vec<char> = sa.iter().copied().filter(|c| so.contains(c) && !sb.contains(c)).collect();
    let ns: Vec<char> = sb.iter().copied().filter(|c| so.contains(c) && !sa.contains(c)).collect();
    let concat = |x: &[char], y: &[char]| -> Vec<char> { x.iter().chain(y).copied().collect() };
    if ns.len() != 1 || sa != concat(&ms, &ks) || sb != concat(&ks, &ns) || so != concat(&ms, &ns) {
        return None;
    }
    let n = *b.iter().rev().find(|&&d| d != 1)?;
    let k: usize = b.iter().product::<usize>() / n;
    let m: usize = a.iter().product::<usize>() / k.max(1);
    Some((m, k, n))
}

/// What one replacement takes: the activation outlet, the op, the outlet it stands for.
struct Replacement {
    input: OutletId,
    op: PandermQMatMul,
    last: OutletId,
    name: String,
}

fn matching(model: &TypedModel, node: &TypedNode, kernel: Kernel) -> Option<Replacement> {
    let op = node.op_as::<EinSum>()?;
    if op.q_params != Some(DatumType::I32) || node.inputs.len() != 9 {
        return None;
    }
    let a_fact = model.outlet_fact(node.inputs[0]).ok()?;
    let signed = match a_fact.datum_type {
        DatumType::U8 => false,
        DatumType::I8 => true,
        _ => return None,
    };
    let w = konst(model, node.inputs[1])?;
    if w.datum_type() != DatumType::I8 {
        return None;
    }
    // bias 0, a_scale 1, b0 0, b_scale 1, c0 0, c_scale 1: a plain integer product.
    let plain = [(2, 0.0), (4, 1.0), (5, 0.0), (6, 1.0), (7, 0.0), (8, 1.0)];
    if !plain.iter().all(|&(i, v)| scalar_is(model, node.inputs[i], v)) {
        return None;
    }
    let a0 = konst(model, node.inputs[3]).filter(|t| t.len() == 1)?.cast_to_scalar::<i32>().ok()?;
    let a0 = if signed { a0 + 128 } else { a0 };
    if !(0..=255).contains(&a0) {
        return None;
    }
    let a_shape = a_fact.shape.as_concrete()?.to_vec();
    let out_fact = model.outlet_fact(OutletId::new(node.id, 0)).ok()?;
    let (_, k, n) = gemm_layout(op, &a_shape, w.shape(), out_fact.shape.as_concrete()?)?;
    if k == 0 || n == 0 {
        return None;
    }
    // → Cast<f32> → Mul(per-column scale) [→ Add(per-column bias)]
    let cast = model.node(single_successor(model, OutletId::new(node.id, 0))?);
    if cast.op_as::<Cast>()?.to != DatumType::F32 {
        return None;
    }
    let mul = model.node(single_successor(model, OutletId::new(cast.id, 0))?);
    if !is_bin::<Mul>(mul) {
        return None;
    }
    let scale = per_column(model, mul, OutletId::new(cast.id, 0), n)?;
    let mut last = OutletId::new(mul.id, 0);
    let mut bias = None;
    if let Some(add) = single_successor(model, last).map(|id| model.node(id))
        && is_bin::<Add>(add)
        && let Some(b) = per_column(model, add, last, n)
    {
        bias = Some(b);
        last = OutletId::new(add.id, 0);
    }
    let out = model.outlet_fact(last).ok()?;
    if out.datum_type != DatumType::F32 {
        return None;
    }
    let output_shape: TVec<usize> = out.shape.as_concrete()?.into();
    // The rescaled output keeps the product's row-major [m, n] layout (only size-1 axes added).
    let product: Vec<usize> = out_fact.shape.as_concrete()?.iter().copied().filter(|&d| d != 1).collect();
    let fused: Vec<usize> = output_shape.iter().copied().filter(|&d| d != 1).collect();
    if product != fused {
        return None;
    }
    let wv = w.try_as_plain_ram().ok()?.as_slice::<i8>().ok()?.to_vec();
    let weights = Weights::pack(kernel, &wv, k, n, a0, &scale, bias.as_deref());
    Some(Replacement {
        input: node.inputs[0],
        op: PandermQMatMul { weights: Arc::new(weights), signed, output_shape },
        last,
        name: node.name.clone(),
    })
}

/// Replaces every matching chain of a decluttered model by [`PandermQMatMul`] on `kernel`;
/// returns how many.
pub fn install(model: &mut TypedModel, kernel: Kernel) -> TractResult<usize> {
    let mut count = 0;
    for id in model.eval_order()? {
        let Some(r) = matching(model, model.node(id), kernel) else { continue };
        let mut patch = TypedModelPatch::default();
        let input = patch.tap_model(model, r.input)?;
        let out = patch.wire_node(format!("{}.panderm_qmatmul", r.name), r.op, &[input])?;
        patch.shunt_outside(model, r.last, out[0])?;
        patch.apply(model)?;
        count += 1;
    }
    Ok(count)
}
