//! Softmax of one row, `y = exp(x − max x) / Σ exp(x − max x)`, with runtime CPU dispatch
//! (x86_64 AVX2+FMA, aarch64 NEON) and a scalar fallback.
//!
//! tract 0.23.9 has a fast row kernel only for rows whose length is a multiple of 4; PanDerm's
//! attention rows are 197 long (196 patches + CLS), so it took a slower path: 12 % of int8
//! PanDerm_Base's time (docs/performance.md).
//!
//! `exp` is the Cephes single-precision polynomial (range reduction by ln 2 in two parts, degree-5
//! polynomial; about 2 ulp), evaluated on `x − max ≤ 0`, clamped at −87.3 (e^−87.3 ≈ 1e−38, far
//! below the row sum ≥ 1). A NaN anywhere in a row makes the whole row NaN, as in tract: the
//! runtime's abstention then refuses the result instead of showing a number.

/// Which implementation [`softmax_row`] uses on this CPU.
pub fn kernel_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return "avx2+fma";
    }
    #[cfg(target_arch = "aarch64")]
    {
        return "neon";
    }
    #[allow(unreachable_code)]
    "scalar"
}

/// Softmax of `x` into `y` (same length; a bug in the caller otherwise).
pub fn softmax_row(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "softmax_row: lengths differ");
    if x.is_empty() {
        return;
    }
    // The SIMD max reductions may drop a NaN; one check here for every kernel.
    if x.iter().any(|v| v.is_nan()) {
        y.fill(f32::NAN);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: AVX2 and FMA are present (checked just above).
        unsafe { x86::softmax_avx2(x, y) };
        return;
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { arm64::softmax_neon(x, y) };
        return;
    }
    #[allow(unreachable_code)]
    softmax_scalar(x, y)
}

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const EXP_MIN: f32 = -87.3;
const P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5];

/// The same `exp` as the SIMD kernels, one value (for `x ≤ 0`).
#[inline]
pub fn exp_neg(x: f32) -> f32 {
    let x = if x.is_nan() { x } else { x.max(EXP_MIN) };
    let n = (x * LOG2E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + c;
    }
    let e = p * r * r + r + 1.0;
    if e.is_nan() {
        return e;
    }
    e * f32::from_bits((((n as i32) + 127) as u32) << 23)
}

/// Portable loop (armv7 and others).
pub fn softmax_scalar(x: &[f32], y: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, |m, v| if v > m || v.is_nan() { v } else { m });
    let mut sum = 0.0f32;
    for (e, &v) in y.iter_mut().zip(x) {
        *e = exp_neg(v - max);
        sum += *e;
    }
    let inv = 1.0 / sum;
    for e in y.iter_mut() {
        *e *= inv;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{EXP_MIN, LN2_HI, LN2_LO, LOG2E, P, exp_neg};

    #[target_feature(enable = "avx2,fma")]
    fn exp8(x: __m256) -> __m256 {
        // max(lo, x): returns x when x is NaN, so NaN propagates.
        let x = _mm256_max_ps(_mm256_set1_ps(EXP_MIN), x);
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
            x,
            _mm256_set1_ps(LOG2E),
        ));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        let mut p = _mm256_set1_ps(P[0]);
        for c in &P[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*c));
        }
        let e = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0));
        let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        )));
        _mm256_mul_ps(e, pow2)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn softmax_avx2(x: &[f32], y: &mut [f32]) {
        let len = x.len();
        let body = len / 8 * 8;
        // SAFETY (all loads and stores below): offsets i + 8 ≤ body ≤ len = x.len() = y.len().
        let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut i = 0;
        while i < body {
            vmax = _mm256_max_ps(vmax, unsafe { _mm256_loadu_ps(x.as_ptr().add(i)) });
            i += 8;
        }
        let mut lanes = [0f32; 8];
        // SAFETY: 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), vmax) };
        // No NaN here (softmax_row checked).
        let max = lanes.iter().chain(&x[body..]).copied().fold(f32::NEG_INFINITY, f32::max);
        let m = _mm256_set1_ps(max);
        let mut vsum = _mm256_setzero_ps();
        let mut i = 0;
        while i < body {
            let e = exp8(_mm256_sub_ps(unsafe { _mm256_loadu_ps(x.as_ptr().add(i)) }, m));
            unsafe { _mm256_storeu_ps(y.as_mut_ptr().add(i), e) };
            vsum = _mm256_add_ps(vsum, e);
            i += 8;
        }
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), vsum) };
        let mut sum: f32 = lanes.iter().sum();
        for j in body..len {
            y[j] = exp_neg(x[j] - max);
            sum += y[j];
        }
        let inv = _mm256_set1_ps(1.0 / sum);
        let mut i = 0;
        while i < body {
            unsafe { _mm256_storeu_ps(y.as_mut_ptr().add(i), _mm256_mul_ps(_mm256_loadu_ps(y.as_ptr().add(i)), inv)) };
            i += 8;
        }
        for v in &mut y[body..] {
            *v *= 1.0 / sum;
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm64 {
    use std::arch::aarch64::*;

    use super::{EXP_MIN, LN2_HI, LN2_LO, LOG2E, P, exp_neg};

    #[target_feature(enable = "neon")]
    fn exp4(x: float32x4_t) -> float32x4_t {
        // NEON max propagates NaN.
        let x = vmaxq_f32(x, vdupq_n_f32(EXP_MIN));
        let n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(LOG2E)));
        let r = vfmsq_f32(x, n, vdupq_n_f32(LN2_HI));
        let r = vfmsq_f32(r, n, vdupq_n_f32(LN2_LO));
        let mut p = vdupq_n_f32(P[0]);
        for c in &P[1..] {
            p = vfmaq_f32(vdupq_n_f32(*c), p, r);
        }
        let e = vaddq_f32(vfmaq_f32(r, vmulq_f32(p, r), r), vdupq_n_f32(1.0));
        let pow2 = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127))));
        vmulq_f32(e, pow2)
    }

    #[target_feature(enable = "neon")]
    pub unsafe fn softmax_neon(x: &[f32], y: &mut [f32]) {
        let len = x.len();
        let body = len / 4 * 4;
        // SAFETY (all loads and stores below): offsets i + 4 ≤ body ≤ len = x.len() = y.len().
        let mut vmax = vdupq_n_f32(f32::NEG_INFINITY);
        let mut i = 0;
        while i < body {
            vmax = vmaxq_f32(vmax, unsafe { vld1q_f32(x.as_ptr().add(i)) });
            i += 4;
        }
        // No NaN here (softmax_row checked).
        let max = x[body..].iter().copied().fold(vmaxvq_f32(vmax), f32::max);
        let m = vdupq_n_f32(max);
        let mut vsum = vdupq_n_f32(0.0);
        let mut i = 0;
        while i < body {
            let e = exp4(vsubq_f32(unsafe { vld1q_f32(x.as_ptr().add(i)) }, m));
            unsafe { vst1q_f32(y.as_mut_ptr().add(i), e) };
            vsum = vaddq_f32(vsum, e);
            i += 4;
        }
        let mut sum = vaddvq_f32(vsum);
        for j in body..len {
            y[j] = exp_neg(x[j] - max);
            sum += y[j];
        }
        let inv = vdupq_n_f32(1.0 / sum);
        let mut i = 0;
        while i < body {
            unsafe { vst1q_f32(y.as_mut_ptr().add(i), vmulq_f32(vld1q_f32(y.as_ptr().add(i)), inv)) };
            i += 4;
        }
        for v in &mut y[body..] {
            *v *= 1.0 / sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32]) -> Vec<f64> {
        let max = x.iter().map(|&v| f64::from(v)).fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = x.iter().map(|&v| (f64::from(v) - max).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    #[test]
    fn exp_is_within_a_few_ulp() {
        for k in 0..=100_000 {
            let x = -(k as f32) * 0.000_87;
            let (got, want) = (f64::from(exp_neg(x)), f64::from(x).exp());
            // Cephes expf: ≤ 2 ulp ≈ 2.4e-7 relative.
            assert!(((got - want) / want).abs() < 3e-7, "exp({x}) = {got}, want {want}");
        }
        assert!(exp_neg(f32::NAN).is_nan());
        assert!(exp_neg(-1000.0) < 1e-37);
    }

    #[test]
    fn rows_of_every_length_match_the_definition() {
        let mut s = 12345u32;
        let mut rnd = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as f32 / u32::MAX as f32
        };
        for len in [1usize, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 33, 196, 197, 1000] {
            for spread in [0.1f32, 5.0, 40.0] {
                let x: Vec<f32> = (0..len).map(|_| (rnd() - 0.5) * spread).collect();
                let mut y = vec![0.0; len];
                softmax_row(&x, &mut y);
                let mut scalar = vec![0.0; len];
                softmax_scalar(&x, &mut scalar);
                let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for (i, want) in reference(&x).into_iter().enumerate() {
                    // exp within 3e-7 relative, a sum of ≤ 1000 terms and one multiply: 2e-6;
                    // plus the rounding of x − max in f32 (half an ulp of |x − max|, which exp
                    // turns into that much relative error): |x − max|·2⁻²³.
                    let tol = 2e-6 + f64::from((x[i] - max).abs()) * 1.2e-7;
                    for (what, got) in [(kernel_name(), y[i]), ("scalar", scalar[i])] {
                        let err = (f64::from(got) - want).abs() / want.max(1e-30);
                        assert!(err < tol, "{what} len {len} spread {spread} [{i}]: {got} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_nan_poisons_its_row() {
        for len in [1usize, 5, 8, 197] {
            for at in [0, len / 2, len - 1] {
                let mut x: Vec<f32> = (0..len).map(|i| i as f32 * 0.01).collect();
                x[at] = f32::NAN;
                let mut y = vec![0.0; len];
                softmax_row(&x, &mut y);
                assert!(y.iter().all(|v| v.is_nan()), "len {len}, NaN at {at}: {y:?}");
            }
        }
    }
}
