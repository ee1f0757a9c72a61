//! Small numeric helpers shared by the runtime and the tools, so that both compute them the same
//! way: softmax, numpy-style percentiles, cosine similarity and distance.

/// Numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The `p`-th percentile (0–100) of `values` with numpy's default linear interpolation; `None`
/// for no values, a `p` outside [0, 100] or a NaN among the values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=100.0).contains(&p) || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = p / 100.0 * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// Cosine similarity of two vectors, computed in f64; 0 if either is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 { 0.0 } else { ab / (aa.sqrt() * bb.sqrt()) }
}

/// Cosine distance `1 − cosine`: 0 for the same direction, 1 if either is all zeros.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    1.0 - cosine(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let p = softmax(&[1.0, 3.0, 2.0, 4.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[3] > p[1] && p[1] > p[2] && p[2] > p[0]);
        // Stable for large logits (no inf/inf).
        let p = softmax(&[1000.0, 0.0]);
        assert!(p[0] == 1.0 && p[1] == 0.0);
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 90, 100]) = 1, 1.75, 2.5, 3.7, 4
        let v = [4.0, 1.0, 3.0, 2.0];
        for (p, want) in [(0.0, 1.0), (25.0, 1.75), (50.0, 2.5), (90.0, 3.7), (100.0, 4.0)] {
            assert!((percentile(&v, p).unwrap() - want).abs() < 1e-12, "{p}");
        }
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1.0, f64::NAN], 50.0), None);
        assert_eq!(percentile(&v, 101.0), None);
    }

    #[test]
    fn cosine_table() {
        // (a, b, cosine)
        let cases: [(&[f32], &[f32], f64); 4] = [
            (&[1.0, 0.0], &[2.0, 0.0], 1.0),
            (&[1.0, 0.0], &[0.0, 3.0], 0.0),
            (&[1.0, 1.0], &[-1.0, -1.0], -1.0),
            (&[0.0, 0.0], &[1.0, 2.0], 0.0),
        ];
        for (a, b, want) in cases {
            assert!((cosine(a, b) - want).abs() < 1e-12, "{a:?} {b:?}");
            assert!((cosine_distance(a, b) - (1.0 - want)).abs() < 1e-12);
        }
    }
}
