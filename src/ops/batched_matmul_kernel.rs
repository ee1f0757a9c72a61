//! Float32 batched matrix products with strided operands, one batch per task on tract's threads:
//!
//! ```text
//! C[b, i, j] = Σ_k A[b, i, k] · B[b, k, j]        (each operand at its own strides)
//! ```
//!
//! The attention products of a ViT (`q · kᵀ` and `attn · v` per head) are such products. tract runs
//! them one head after the other on one thread (24 products per PanDerm_Base image: 19–20 ms on 1
//! and on 2 threads, a fifth of the int8 model's time), so here the heads are spread over the
//! threads. Per batch, `B` is packed into panels of columns and a register-blocked FMA kernel
//! (AVX-512F 8 × 32 or AVX2+FMA 6 × 16) runs over it; each output element is one fused
//! multiply-add chain in increasing `k`, so every kernel equals the scalar definition
//! ([`Strides::reference`]) bit for bit.

use super::OutPtr;

/// The shape and element strides of one batched product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strides {
    /// Batches, rows (i), columns (j), depth (k).
    pub batch: usize,
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Depth.
    pub k: usize,
    /// A's strides: batch, i, k.
    pub a: [usize; 3],
    /// B's strides: batch, k, j.
    pub b: [usize; 3],
    /// C's strides: batch, i (j's is 1).
    pub c: [usize; 2],
}

/// Which implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// AVX-512F, 8 rows × 32 columns.
    Avx512,
    /// AVX2 + FMA, 6 rows × 16 columns.
    Avx2,
    /// Plain Rust (`f32::mul_add`), the definition.
    Scalar,
}

impl Kernel {
    /// The kernel's name in plans.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Avx512 => "avx512f_f32_8x32",
            Kernel::Avx2 => "fma_f32_6x16",
            Kernel::Scalar => "scalar",
        }
    }

    /// Whether this CPU runs it.
    pub fn available(self) -> bool {
        match self {
            Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The kernel for this CPU, or `None` to keep tract's (ARM: its NEON kernels; x86 without
    /// AVX2+FMA).
    pub fn best() -> Option<Kernel> {
        [Kernel::Avx512, Kernel::Avx2].into_iter().find(|k| k.available())
    }

    /// Rows per register block (the product of fewer rows runs a smaller block).
    pub(crate) fn mr(self) -> usize {
        match self {
            Kernel::Avx512 => 8,
            Kernel::Avx2 => 6,
            Kernel::Scalar => 1,
        }
    }

    fn nr(self) -> usize {
        match self {
            Kernel::Avx512 => 32,
            Kernel::Avx2 => 16,
            Kernel::Scalar => 1,
        }
    }
}

impl Strides {
    /// The largest element offset each operand is read or written at, plus one: the buffer
    /// lengths a product needs.
    pub fn extents(&self) -> (usize, usize, usize) {
        let last = |dims: &[(usize, usize)]| -> usize {
            if dims.iter().any(|&(n, _)| n == 0) {
                0
            } else {
                1 + dims.iter().map(|&(n, s)| (n - 1) * s).sum::<usize>()
            }
        };
        (
            last(&[(self.batch, self.a[0]), (self.m, self.a[1]), (self.k, self.a[2])]),
            last(&[(self.batch, self.b[0]), (self.k, self.b[1]), (self.n, self.b[2])]),
            last(&[(self.batch, self.c[0]), (self.m, self.c[1]), (self.n, 1)]),
        )
    }

    /// The definition: one `mul_add` chain per element, `k` increasing.
    pub fn reference(&self, a: &[f32], b: &[f32], c: &mut [f32]) {
        for h in 0..self.batch {
            for i in 0..self.m {
                for j in 0..self.n {
                    let mut acc = 0f32;
                    for kk in 0..self.k {
                        let x = a[h * self.a[0] + i * self.a[1] + kk * self.a[2]];
                        let y = b[h * self.b[0] + kk * self.b[1] + j * self.b[2]];
                        acc = x.mul_add(y, acc);
                    }
                    c[h * self.c[0] + i * self.c[1] + j] = acc;
                }
            }
        }
    }

    /// `C = A · B` on `kernel`, batches spread over tract's inference threads. Panics if a buffer
    /// is shorter than [`Strides::extents`] (a bug in the caller).
    pub fn run(&self, kernel: Kernel, a: &[f32], b: &[f32], c: &mut [f32]) {
        let (ea, eb, ec) = self.extents();
        assert!(a.len() >= ea && b.len() >= eb && c.len() >= ec, "batched matmul: buffers shorter than the strides");
        if kernel == Kernel::Scalar {
            return self.reference(a, b, c);
        }
        let out = OutPtr(c.as_mut_ptr());
        // SAFETY: batch h writes only its own elements of C (extents checked above), which
        // outlives the tasks.
        super::spread(self.batch, |h| unsafe { self.batch_product(kernel, a, b, out, h) });
    }

    /// One batch: pack its B into column panels, then the kernel.
    ///
    /// # Safety
    /// `kernel` is available; `c` points to at least `extents().2` floats of which no other task
    /// writes batch `h`.
    unsafe fn batch_product(&self, kernel: Kernel, a: &[f32], b: &[f32], c: OutPtr, h: usize) {
        let packed = self.pack_b(kernel, b, h);
        // SAFETY: batch h's elements of C start at h · c[0] (within the extents); the caller's
        // contract for the rest.
        unsafe { self.product_packed(kernel, &a[h * self.a[0]..], &packed, c.0.add(h * self.c[0])) }
    }

    /// Batch `h` of B packed into `kernel`'s column panels (`k` rows of the panel width each, the
    /// last panel padded with zeros).
    pub(crate) fn pack_b(&self, kernel: Kernel, b: &[f32], h: usize) -> Vec<f32> {
        let nr = kernel.nr();
        let panels = self.n.div_ceil(nr);
        let mut packed = vec![0f32; panels * nr * self.k];
        for p in 0..panels {
            for kk in 0..self.k {
                let row = &mut packed[(p * self.k + kk) * nr..(p * self.k + kk + 1) * nr];
                for (col, slot) in row.iter_mut().enumerate() {
                    let j = p * nr + col;
                    if j < self.n {
                        *slot = b[h * self.b[0] + kk * self.b[1] + j * self.b[2]];
                    }
                }
            }
        }
        packed
    }

    /// `C = A · B` for one batch, B already packed by [`Strides::pack_b`]; `a` and `c` start at
    /// the batch (its first row), read and written at the `a[1]`, `a[2]` and `c[1]` strides.
    ///
    /// # Safety
    /// `kernel` is available and not the scalar one; `a` holds `m` rows at these strides, `packed`
    /// the packed panels, `c` is valid for `m` rows of `n` floats at stride `c[1]`, written by no
    /// other task.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    pub(crate) unsafe fn product_packed(&self, kernel: Kernel, a: &[f32], packed: &[f32], c: *mut f32) {
        match kernel {
            // SAFETY: the caller's contract.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { x86::product_avx512(self, a, packed, c) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::product_avx2(self, a, packed, c) },
            _ => unreachable!("the scalar kernel runs the definition"),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Strides;

    /// `match rows { 1 => f::<1>(args), … }` for the listed block heights.
    macro_rules! rows_dispatch {
        ($rows:expr, $f:ident, [$($mr:literal)*], $args:tt) => {
            match $rows {
                $($mr => $f::<$mr> $args,)*
                _ => unreachable!("1 ..= MR rows"),
            }
        };
    }

    /// # Safety
    /// AVX-512F present; `a` holds batch h's A at `s.a[1]`, `s.a[2]` strides, `packed` its B in
    /// 32-column panels, `c` batch h's C (row stride `s.c[1]`, n columns).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn product_avx512(s: &Strides, a: &[f32], packed: &[f32], c: *mut f32) {
        const MR: usize = 8;
        for p in 0..s.n.div_ceil(32) {
            let cols = (s.n - 32 * p).min(32);
            let bp = unsafe { packed.as_ptr().add(p * s.k * 32) };
            let mut i = 0;
            while i < s.m {
                let rows = (s.m - i).min(MR);
                let ap = unsafe { a.as_ptr().add(i * s.a[1]) };
                let cp = unsafe { c.add(i * s.c[1] + 32 * p) };
                unsafe { rows_dispatch!(rows, block_avx512, [1 2 3 4 5 6 7 8], (s, ap, bp, cp, cols)) };
                i += rows;
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn block_avx512<const MR: usize>(s: &Strides, ap: *const f32, bp: *const f32, cp: *mut f32, cols: usize) {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for kk in 0..s.k {
            // SAFETY (whole loop): the panel holds k × 32 floats; A's element (r, kk) is within
            // the batch's A.
            let b0 = unsafe { _mm512_loadu_ps(bp.add(kk * 32)) };
            let b1 = unsafe { _mm512_loadu_ps(bp.add(kk * 32 + 16)) };
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(unsafe { *ap.add(r * s.a[1] + kk * s.a[2]) });
                acc[0] = _mm512_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(x, b1, acc[1]);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (h, &v) in acc.iter().enumerate() {
                let first = 16 * h;
                if first >= cols {
                    break;
                }
                let valid = (cols - first).min(16);
                // SAFETY: row r of this block has `cols` columns of C from cp.
                unsafe { crate::ops::x86_store::store_ps512_first(cp.add(r * s.c[1] + first), v, valid) };
            }
        }
    }

    /// # Safety
    /// AVX2 and FMA present; as [`product_avx512`] with 16-column panels.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn product_avx2(s: &Strides, a: &[f32], packed: &[f32], c: *mut f32) {
        const MR: usize = 6;
        for p in 0..s.n.div_ceil(16) {
            let cols = (s.n - 16 * p).min(16);
            let bp = unsafe { packed.as_ptr().add(p * s.k * 16) };
            let mut i = 0;
            while i < s.m {
                let rows = (s.m - i).min(MR);
                let ap = unsafe { a.as_ptr().add(i * s.a[1]) };
                let cp = unsafe { c.add(i * s.c[1] + 16 * p) };
                unsafe { rows_dispatch!(rows, block_avx2, [1 2 3 4 5 6], (s, ap, bp, cp, cols)) };
                i += rows;
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_avx2<const MR: usize>(s: &Strides, ap: *const f32, bp: *const f32, cp: *mut f32, cols: usize) {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for kk in 0..s.k {
            // SAFETY: as in block_avx512, with 16-column panels.
            let b0 = unsafe { _mm256_loadu_ps(bp.add(kk * 16)) };
            let b1 = unsafe { _mm256_loadu_ps(bp.add(kk * 16 + 8)) };
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_set1_ps(unsafe { *ap.add(r * s.a[1] + kk * s.a[2]) });
                acc[0] = _mm256_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(x, b1, acc[1]);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (h, &v) in acc.iter().enumerate() {
                let first = 8 * h;
                if first >= cols {
                    break;
                }
                let valid = (cols - first).min(8);
                // SAFETY: row r of this block has `cols` columns of C from cp.
                unsafe { crate::ops::x86_store::store_ps256_first(cp.add(r * s.c[1] + first), v, valid) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tract_linalg::multithread::{Executor, multithread_tract_scope};

    use super::*;

    /// Both attention layouts of a ViT (`q · kᵀ`: A [m, b, k], B [n, b, k] → C [b, m, n];
    /// `attn · v`: A [b, m, k], B [k, b, n] → C [m, b, n]) and odd sizes: every kernel this CPU
    /// has equals the definition bit for bit, on 1 and 3 threads.
    #[test]
    fn every_kernel_equals_the_definition() {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for (batch, m, n, k) in [(12, 197, 197, 64), (3, 9, 37, 5), (2, 1, 1, 1), (5, 17, 64, 33)] {
            let layouts = [
                // q · kᵀ
                Strides { batch, m, n, k, a: [k, batch * k, 1], b: [k, 1, batch * k], c: [m * n, n] },
                // attn · v
                Strides { batch, m, n, k, a: [m * k, k, 1], b: [n, batch * n, 1], c: [n, batch * n] },
            ];
            for s in layouts {
                let (ea, eb, ec) = s.extents();
                let a: Vec<f32> = (0..ea).map(|_| next()).collect();
                let b: Vec<f32> = (0..eb).map(|_| next()).collect();
                let mut want = vec![0f32; ec];
                s.reference(&a, &b, &mut want);
                for kernel in [Kernel::Avx512, Kernel::Avx2] {
                    if !kernel.available() {
                        continue;
                    }
                    for threads in [1, 3] {
                        let mut got = vec![f32::NAN; ec];
                        let executor =
                            if threads == 1 { Executor::SingleThread } else { Executor::multithread(threads) };
                        multithread_tract_scope(executor, || s.run(kernel, &a, &b, &mut got));
                        let same = want.iter().zip(&got).all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "{} {s:?} threads={threads}", kernel.name());
                    }
                }
            }
        }
    }
}
