//! The probe's only matrix primitive: a general f64 matrix product with optional transposes,
//! backed by the `matrixmultiply` crate (pure Rust, AVX2/FMA kernels, already in tract's
//! dependency tree). Keeping every matrix operation behind this one function means a GPU or
//! BLAS backend would replace a single function.

/// A row-major matrix view: `rows × cols` values.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    /// Values, row-major.
    pub data: &'a [f64],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
}

impl<'a> Mat<'a> {
    /// A view; panics if the length does not match (a caller bug).
    pub fn new(data: &'a [f64], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "matrix data does not match {rows}x{cols}");
        Mat { data, rows, cols }
    }
}

/// `out = op(a) · op(b)` where `op` transposes when asked. `out` is row-major and is
/// overwritten; its length must be `rows(op(a)) × cols(op(b))`.
pub fn matmul(a: Mat<'_>, transpose_a: bool, b: Mat<'_>, transpose_b: bool, out: &mut [f64]) {
    let (m, k) = if transpose_a { (a.cols, a.rows) } else { (a.rows, a.cols) };
    let (k2, n) = if transpose_b { (b.cols, b.rows) } else { (b.rows, b.cols) };
    assert_eq!(k, k2, "inner dimensions differ");
    assert_eq!(out.len(), m * n, "output has the wrong size");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out.fill(0.0);
        return;
    }
    // Strides of op(a) and op(b) in elements.
    let (rsa, csa) = if transpose_a { (1, a.cols as isize) } else { (a.cols as isize, 1) };
    let (rsb, csb) = if transpose_b { (1, b.cols as isize) } else { (b.cols as isize, 1) };
    // SAFETY: the asserts above guarantee that every index matrixmultiply forms from these
    // dimensions and strides lies inside the three slices, and `out` does not alias `a`/`b`
    // (it is a distinct `&mut`).
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            rsa,
            csa,
            b.data.as_ptr(),
            rsb,
            csb,
            0.0,
            out.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], m: usize, k: usize, b: &[f64], n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
        let mut t = vec![0.0; a.len()];
        for i in 0..r {
            for j in 0..c {
                t[j * r + i] = a[i * c + j];
            }
        }
        t
    }

    #[test]
    fn all_transpose_combinations_match_naive() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        let want = naive(&a, m, k, &b, n);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let am = if ta { Mat::new(&at, k, m) } else { Mat::new(&a, m, k) };
            let bm = if tb { Mat::new(&bt, n, k) } else { Mat::new(&b, k, n) };
            let mut out = vec![f64::NAN; m * n];
            matmul(am, ta, bm, tb, &mut out);
            for (x, y) in out.iter().zip(&want) {
                assert!((x - y).abs() < 1e-12, "{ta} {tb}");
            }
        }
    }
}
