//! The activation quantizer's inner loop: `q = clamp(round_half_even(x · m) + zp, lo, hi)` over a
//! float32 slice into 8-bit codes, with runtime CPU dispatch (x86_64 AVX2, aarch64 NEON) and a
//! scalar fallback (armv7, whose NEON intrinsics are not stable in Rust, and any other CPU).
//!
//! Semantics are tract's `quantize_linear_f32_u8`/`_i8` (tract-core src/ops/quant.rs: multiply by
//! the reciprocal scale, round half to even, add the zero point, saturate) for every finite input;
//! NaN becomes the zero point as there. An infinite or huge product saturates to `lo`/`hi` here,
//! which is what ONNX `QuantizeLinear` defines (tract's scalar code casts to i32 first and can wrap
//! or overflow there).

/// The quantization of one tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Multiplier: 1 / scale.
    pub mul: f32,
    /// Zero point.
    pub zero_point: i32,
    /// Saturation range: `(0, 255)` for uint8, `(-128, 127)` for int8.
    pub lo: i32,
    /// Upper end of the range.
    pub hi: i32,
}

/// Which implementation [`quantize`] uses on this CPU.
pub fn kernel_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return "avx2";
    }
    #[cfg(target_arch = "aarch64")]
    {
        return "neon";
    }
    #[allow(unreachable_code)]
    "scalar"
}

/// Quantizes `xs` into `out` (bytes: two's complement for int8). Panics if the lengths differ
/// (a bug in the caller).
pub fn quantize(xs: &[f32], p: Params, out: &mut [u8]) {
    assert_eq!(xs.len(), out.len(), "quantize: input and output lengths differ");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present (checked just above).
        unsafe { x86::quantize_avx2(xs, p, out) };
        return;
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { arm64::quantize_neon(xs, p, out) };
        return;
    }
    #[allow(unreachable_code)]
    quantize_scalar(xs, p, out)
}

/// One value, the definition every kernel must match.
#[inline]
pub fn quantize_one(x: f32, p: Params) -> u8 {
    let v = x * p.mul;
    if v.is_nan() {
        return (p.zero_point.clamp(p.lo, p.hi) & 0xff) as u8;
    }
    // Clamped to the codes reachable from the zero point before rounding: |v| ≤ 383, so the
    // rounding and the i32 conversion are exact.
    let v = v.clamp((p.lo - p.zero_point) as f32, (p.hi - p.zero_point) as f32);
    let q = v.round_ties_even() as i32 + p.zero_point;
    (q.clamp(p.lo, p.hi) & 0xff) as u8
}

/// Portable loop.
pub fn quantize_scalar(xs: &[f32], p: Params, out: &mut [u8]) {
    for (x, y) in xs.iter().zip(out.iter_mut()) {
        *y = quantize_one(*x, p);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Params, quantize_one};

    /// 32 values per iteration: 4 × 8 lanes → one 32-byte store.
    #[target_feature(enable = "avx2")]
    pub unsafe fn quantize_avx2(xs: &[f32], p: Params, out: &mut [u8]) {
        let n = xs.len() / 32 * 32;
        let mul = _mm256_set1_ps(p.mul);
        let lo = _mm256_set1_ps((p.lo - p.zero_point) as f32);
        let hi = _mm256_set1_ps((p.hi - p.zero_point) as f32);
        let zero = _mm256_setzero_ps();
        let zp = _mm256_set1_epi32(p.zero_point);
        // packs/packus work within 128-bit lanes: this puts the 8 groups of 4 bytes back in order.
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let unsigned = p.lo >= 0;
        let mut i = 0;
        while i < n {
            // SAFETY: i + 32 ≤ n ≤ xs.len() = out.len(); unaligned loads and stores.
            let q = |k: usize| unsafe {
                let v = _mm256_mul_ps(_mm256_loadu_ps(xs.as_ptr().add(i + 8 * k)), mul);
                let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v);
                let v = _mm256_blendv_ps(_mm256_min_ps(_mm256_max_ps(v, lo), hi), zero, nan);
                // cvtps rounds with MXCSR's mode: round to nearest, ties to even (Rust never changes it).
                _mm256_add_epi32(_mm256_cvtps_epi32(v), zp)
            };
            let (a, b, c, d) = (q(0), q(1), q(2), q(3));
            let ab = _mm256_packs_epi32(a, b);
            let cd = _mm256_packs_epi32(c, d);
            let bytes = if unsigned { _mm256_packus_epi16(ab, cd) } else { _mm256_packs_epi16(ab, cd) };
            let bytes = _mm256_permutevar8x32_epi32(bytes, order);
            // SAFETY: as above.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(i) as *mut __m256i, bytes) };
            i += 32;
        }
        for (x, y) in xs[n..].iter().zip(out[n..].iter_mut()) {
            *y = quantize_one(*x, p);
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm64 {
    use std::arch::aarch64::*;

    use super::{Params, quantize_one};

    /// 16 values per iteration: 4 × 4 lanes → one 16-byte store.
    #[target_feature(enable = "neon")]
    pub unsafe fn quantize_neon(xs: &[f32], p: Params, out: &mut [u8]) {
        let n = xs.len() / 16 * 16;
        let mul = vdupq_n_f32(p.mul);
        let lo = vdupq_n_f32((p.lo - p.zero_point) as f32);
        let hi = vdupq_n_f32((p.hi - p.zero_point) as f32);
        let zero = vdupq_n_f32(0.0);
        let zp = vdupq_n_s32(p.zero_point);
        let unsigned = p.lo >= 0;
        let mut i = 0;
        while i < n {
            // SAFETY: i + 16 ≤ n ≤ xs.len() = out.len().
            let q = |k: usize| unsafe {
                let v = vmulq_f32(vld1q_f32(xs.as_ptr().add(i + 4 * k)), mul);
                // NEON's min/max propagate NaN: replace NaN by 0 (→ the zero point) first.
                let v = vbslq_f32(vceqq_f32(v, v), v, zero);
                let v = vminq_f32(vmaxq_f32(v, lo), hi);
                // FCVTNS: round to nearest, ties to even.
                vaddq_s32(vcvtnq_s32_f32(v), zp)
            };
            let (a, b, c, d) = (q(0), q(1), q(2), q(3));
            let ab = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
            let cd = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
            let bytes = if unsigned {
                vcombine_u8(vqmovun_s16(ab), vqmovun_s16(cd))
            } else {
                vreinterpretq_u8_s8(vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd)))
            };
            // SAFETY: as above.
            unsafe { vst1q_u8(out.as_mut_ptr().add(i), bytes) };
            i += 16;
        }
        for (x, y) in xs[n..].iter().zip(out[n..].iter_mut()) {
            *y = quantize_one(*x, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::quant::{quantize_linear_f32_i8, quantize_linear_f32_u8};

    /// Every rounding tie, both signs, saturation, NaN, signed zero, subnormals, and a long
    /// pseudo-random run (so the SIMD body, not just the scalar tail, sees them).
    fn inputs() -> Vec<f32> {
        let mut v: Vec<f32> = (-600..=600).map(|k| k as f32 * 0.25).collect();
        v.extend([f32::NAN, -0.0, 0.0, f32::MIN_POSITIVE, -f32::MIN_POSITIVE, 1e-40, 1e30, -1e30, f32::INFINITY]);
        v.extend([f32::NEG_INFINITY, 127.5, 128.5, -128.5, -127.5, 254.5, 255.5, 0.5, 1.5, 2.5, -0.5, -1.5]);
        let mut s = 0x9e3779b9u32;
        for _ in 0..4099 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            v.push((s as f32 / u32::MAX as f32 - 0.5) * 700.0);
        }
        v
    }

    #[test]
    fn every_kernel_matches_tract_on_finite_inputs_and_saturates_infinities() {
        let xs = inputs();
        for (mul, zp, lo, hi) in [(1.0, 128, 0, 255), (1.0, 0, -128, 127), (7.3, 3, 0, 255), (0.37, -5, -128, 127)] {
            let p = Params { mul, zero_point: zp, lo, hi };
            let mut fast = vec![0u8; xs.len()];
            quantize(&xs, p, &mut fast);
            let mut scalar = vec![0u8; xs.len()];
            quantize_scalar(&xs, p, &mut scalar);
            assert_eq!(fast, scalar, "{} kernel vs scalar, {p:?}", kernel_name());
            for (i, &x) in xs.iter().enumerate() {
                let got = fast[i];
                if (x * mul).is_infinite() || (x * mul).abs() > 1e9 {
                    let want = if x > 0.0 { hi } else { lo };
                    assert_eq!(if lo < 0 { i32::from(got as i8) } else { i32::from(got) }, want, "{x}");
                    continue;
                }
                let want =
                    if lo < 0 { quantize_linear_f32_i8(x, mul, zp) as u8 } else { quantize_linear_f32_u8(x, mul, zp) };
                assert_eq!(got, want, "x = {x}, {p:?}: ours {got}, tract {want}");
            }
        }
    }
}
