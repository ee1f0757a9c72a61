//! `PandermLayerNorm`: ONNX `LayerNormalization` over the last axis as one operator, in place of
//! the five tract 0.23.9 decomposes it into (`Reduce<Sum>` → `Mul` by 1/n → `Sub` → `RmsNorm` →
//! `Mul` scale → `Add` bias: five passes over the activations, four of them on the calling
//! thread alone). Ours makes two passes over each row (mean, then variance with the output) and
//! spreads the rows over tract's inference threads. PanDerm_Base runs 25 of them per image.
//!
//! Same arithmetic as the decomposition, in float32: `mean = Σx · (1/n)` with tract's own `1/n`
//! constant, `d = x − mean`, `y = d · 1/√(Σd²/n + ε) · scale + bias`. Only the summation order
//! differs (16 partial sums instead of tract's), so results agree to a few float32 ulps, not bit
//! for bit (tests: [`tests`] and tests/simd_kernels.rs, against tract's decomposition). A NaN or
//! infinity in a row makes the whole row NaN, as in tract.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::BinMiniOp;
use tract_onnx::tract_core::ops::math::{Add, Mul, Sub};
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, RmsNorm};
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

use super::graph::{is_bin, single_successor};

/// The op: `[.., n]` float32 in, `[.., n]` float32 out.
#[derive(Debug, Clone)]
pub struct PandermLayerNorm {
    /// tract's `1/n` constant (the mean is `Σx · recip`, as in the decomposition).
    pub recip: f32,
    /// ε added to the variance.
    pub eps: f32,
    /// Per-channel scale (γ), `n` values.
    pub scale: Arc<[f32]>,
    /// Per-channel bias (β), `n` values, if the node had one.
    pub bias: Option<Arc<[f32]>>,
}

// Same op when the same numbers (bitwise: tract compares ops to merge duplicates).
impl PartialEq for PandermLayerNorm {
    fn eq(&self, other: &Self) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        self.recip.to_bits() == other.recip.to_bits()
            && self.eps.to_bits() == other.eps.to_bits()
            && bits(&self.scale) == bits(&other.scale)
            && self.bias.as_deref().map(bits) == other.bias.as_deref().map(bits)
    }
}

impl Eq for PandermLayerNorm {}

impl Op for PandermLayerNorm {
    fn name(&self) -> StaticName {
        "PandermLayerNorm".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "last axis, n = {}, eps = {:e}, {}",
            self.scale.len(),
            self.eps,
            if self.bias.is_some() { "scale and bias" } else { "scale" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for PandermLayerNorm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let n = self.scale.len();
        let shape = inputs[0].shape();
        ensure!(shape.last() == Some(&n), "PandermLayerNorm: input {shape:?} does not end in {n}");
        Ok(tvec!(super::map_rows(&inputs[0], |x, y| self.normalize_row(x, y))?.into_tvalue()))
    }
}

impl TypedOp for PandermLayerNorm {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

impl PandermLayerNorm {
    /// One row (`x`, `y`: `n` values).
    pub fn normalize_row(&self, x: &[f32], y: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA are present (checked just above).
            return unsafe { self.row_avx2(x, y) };
        }
        self.row(x, y)
    }

    /// [`Self::row`] compiled for AVX2 (the 16-lane partial sums become two `ymm` registers).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_avx2(&self, x: &[f32], y: &mut [f32]) {
        self.row(x, y)
    }

    #[inline(always)]
    fn row(&self, x: &[f32], y: &mut [f32]) {
        let n = x.len();
        let mean = lane_sum(x, |v| v) * self.recip;
        let var = lane_sum(x, |v| (v - mean) * (v - mean)) / n as f32;
        let inv = 1.0 / (var + self.eps).sqrt();
        match &self.bias {
            Some(bias) => {
                for (((y, &x), &s), &b) in y.iter_mut().zip(x).zip(self.scale.iter()).zip(bias.iter()) {
                    *y = (x - mean) * inv * s + b;
                }
            }
            None => {
                for ((y, &x), &s) in y.iter_mut().zip(x).zip(self.scale.iter()) {
                    *y = (x - mean) * inv * s;
                }
            }
        }
    }
}

/// `Σ f(x)` over 16 partial sums (vectorizable; float addition is not reassociated otherwise).
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    let mut sum = chunks.remainder().iter().map(|&v| f(v)).sum::<f32>();
    // Pairwise: 16 → 8 → 4 → 2 → 1.
    let mut width = 8;
    while width > 0 {
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
        width /= 2;
    }
    sum += lanes[0];
    sum
}

/// The float constant of a const outlet whose every dimension but the last is 1, as a vector.
fn channel_const(model: &TypedModel, outlet: OutletId, n: usize) -> Option<Arc<[f32]>> {
    let fact = model.outlet_fact(outlet).ok()?;
    let konst = fact.konst.as_ref()?;
    let shape = konst.shape();
    if konst.datum_type() != DatumType::F32 || shape.last() != Some(&n) || shape.iter().rev().skip(1).any(|&d| d != 1) {
        return None;
    }
    konst.try_as_plain_ram().ok()?.as_slice::<f32>().ok().map(Arc::from)
}

/// A scalar float constant (any rank, one element).
fn scalar_const(model: &TypedModel, outlet: OutletId) -> Option<f32> {
    let konst = model.outlet_fact(outlet).ok()?.konst.as_ref()?.clone();
    if konst.len() != 1 || konst.datum_type() != DatumType::F32 {
        return None;
    }
    konst.cast_to_scalar::<f32>().ok()
}

/// The node producing `outlet`, if it is tract's binary operator `T`.
fn bin_op<T: BinMiniOp>(model: &TypedModel, outlet: OutletId) -> Option<&TypedNode> {
    let node = model.node(outlet.node);
    is_bin::<T>(node).then_some(node)
}

/// `(x, op, last node)` when `rms` (an `RmsNorm` node) ends tract's decomposition of a layer
/// normalization of `x` over its last axis, followed by a channel scale and optionally a bias.
fn match_layer_norm(model: &TypedModel, rms: &TypedNode) -> Option<(OutletId, PandermLayerNorm, usize)> {
    let op = rms.op_as::<RmsNorm>()?;
    let d_outlet = *rms.inputs.first()?;
    let d_fact = model.outlet_fact(d_outlet).ok()?;
    let n = *d_fact.shape.as_concrete()?.last()?;
    if d_fact.datum_type != DatumType::F32 || op.axis + 1 != d_fact.rank() || n == 0 {
        return None;
    }
    let eps = op.eps.cast_to_scalar::<f32>().ok()?;
    // d = x − mean, mean = Σx · (1/n) over the last axis.
    let sub = bin_op::<Sub>(model, d_outlet)?;
    let (x, mean) = (sub.inputs[0], sub.inputs[1]);
    let mul = bin_op::<Mul>(model, mean)?;
    let (sum, recip) = match (scalar_const(model, mul.inputs[0]), scalar_const(model, mul.inputs[1])) {
        (None, Some(r)) => (mul.inputs[0], r),
        (Some(r), None) => (mul.inputs[1], r),
        _ => return None,
    };
    if ((recip * n as f32) - 1.0).abs() > 1e-6 {
        return None;
    }
    let reduce_node = model.node(sum.node);
    let reduce = reduce_node.op_as::<Reduce>()?;
    if reduce.reducer != Reducer::Sum || reduce.axes.as_slice() != [op.axis] || reduce_node.inputs.first() != Some(&x) {
        return None;
    }
    // y = normalized · scale [+ bias].
    let scale_node = model.node(single_successor(model, OutletId::new(rms.id, 0))?);
    bin_op::<Mul>(model, OutletId::new(scale_node.id, 0))?;
    let scale_in = *scale_node.inputs.iter().find(|i| i.node != rms.id)?;
    let scale = channel_const(model, scale_in, n)?;
    let mut last = scale_node.id;
    let mut bias = None;
    if let Some(add) = single_successor(model, OutletId::new(scale_node.id, 0))
        .and_then(|next| bin_op::<Add>(model, OutletId::new(next, 0)))
        && let Some(b) = add.inputs.iter().find(|i| i.node != scale_node.id).and_then(|&i| channel_const(model, i, n))
    {
        bias = Some(b);
        last = add.id;
    }
    // The output must keep the input's shape (no broadcast from the constants).
    if model.outlet_fact(OutletId::new(last, 0)).ok()?.shape != d_fact.shape {
        return None;
    }
    Some((x, PandermLayerNorm { recip, eps, scale, bias }, last))
}

/// Replaces every layer normalization tract decomposed (see the module doc) in a decluttered
/// model by one [`PandermLayerNorm`]; returns how many. The decomposition's nodes are left
/// without consumers and dropped when the model is optimized.
pub fn install(model: &mut TypedModel) -> TractResult<usize> {
    let mut count = 0;
    for id in model.eval_order()? {
        let Some((x, op, last)) = match_layer_norm(model, model.node(id)) else { continue };
        let patch = TypedModelPatch::replace_single_op(model, model.node(last), &[x], op)?;
        patch.apply(model)?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the decomposition's arithmetic, one pass each, in float64 (what the float32
    /// results approximate).
    fn reference(x: &[f32], scale: &[f32], bias: &[f32], eps: f32) -> Vec<f32> {
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        let inv = 1.0 / (var + f64::from(eps)).sqrt();
        x.iter()
            .zip(scale)
            .zip(bias)
            .map(|((&v, &s), &b)| ((f64::from(v) - mean) * inv * f64::from(s) + f64::from(b)) as f32)
            .collect()
    }

    #[test]
    fn rows_match_the_definition_in_float64() {
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        // Lengths: PanDerm's 768 and 1024, a tail (not a multiple of 16), tiny.
        for n in [768usize, 1024, 37, 1] {
            let scale: Vec<f32> = (0..n).map(|_| 1.0 + 0.1 * next()).collect();
            let bias: Vec<f32> = (0..n).map(|_| 0.05 * next()).collect();
            // An offset row (mean far from 0) as in a residual stream.
            let x: Vec<f32> = (0..n).map(|_| 3.0 + 4.0 * next()).collect();
            let op = PandermLayerNorm {
                recip: 1.0 / n as f32,
                eps: 1e-6,
                scale: scale.clone().into(),
                bias: Some(bias.clone().into()),
            };
            let mut y = vec![0f32; n];
            op.normalize_row(&x, &mut y);
            let want = reference(&x, &scale, &bias, 1e-6);
            for (a, b) in y.iter().zip(&want) {
                // Outputs are O(1); float32 sums of ≤1024 terms: a few ulps of 1.
                assert!((a - b).abs() < 2e-5, "n={n}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn a_nan_or_infinity_makes_the_row_nan() {
        let op = PandermLayerNorm { recip: 0.25, eps: 1e-6, scale: vec![1.0; 4].into(), bias: None };
        for bad in [f32::NAN, f32::INFINITY] {
            let mut y = [0f32; 4];
            op.normalize_row(&[1.0, bad, 2.0, 3.0], &mut y);
            assert!(y.iter().all(|v| v.is_nan()), "{bad}: {y:?}");
        }
    }
}
