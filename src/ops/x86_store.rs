//! Partial-vector stores shared by our x86_64 kernels (the last columns of a panel).

use std::arch::x86_64::*;

/// Stores the first `valid` (1 ..= 8) lanes of `v` at `dst`.
///
/// # Safety
/// AVX present; `dst` valid for `valid` floats.
#[inline]
#[target_feature(enable = "avx")]
pub unsafe fn store_ps256_first(dst: *mut f32, v: __m256, valid: usize) {
    // SAFETY: the caller's contract; a full store when all 8 lanes are valid.
    unsafe {
        if valid >= 8 {
            _mm256_storeu_ps(dst, v);
        } else {
            let mut tmp = [0f32; 8];
            _mm256_storeu_ps(tmp.as_mut_ptr(), v);
            std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, valid);
        }
    }
}

/// Stores the first `valid` (1 ..= 16) lanes of `v` at `dst` (a masked store).
///
/// # Safety
/// AVX-512F present; `dst` valid for `valid` floats.
#[inline]
#[target_feature(enable = "avx512f")]
pub unsafe fn store_ps512_first(dst: *mut f32, v: __m512, valid: usize) {
    let mask: __mmask16 = if valid >= 16 { 0xffff } else { (1u16 << valid) - 1 };
    // SAFETY: the caller's contract; masked-off lanes are not written.
    unsafe { _mm512_mask_storeu_ps(dst, mask, v) };
}
