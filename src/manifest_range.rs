//! One range check for every number a bundle manifest or board profile carries, so that all of
//! them are refused the same way, with the same message shape
//! (`[section] key = value is outside [lo, hi] (meaning)`), and NaN is always refused.

use std::ops::RangeInclusive;

/// `Ok` when `value` lies in `range` (NaN never does); otherwise a one-line message naming the
/// manifest `section`, the `key`, the value, the range and what the number means.
pub fn check(section: &str, key: &str, value: f64, range: RangeInclusive<f64>, meaning: &str) -> Result<(), String> {
    if range.contains(&value) {
        return Ok(());
    }
    let (lo, hi) = (range.start(), range.end());
    let hi = if hi.is_infinite() { "inf".to_owned() } else { hi.to_string() };
    Err(format!("[{section}] {key} = {value} is outside [{lo}, {hi}] ({meaning})"))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn table() {
        // (value, range, accepted)
        let cases = [
            (0.0, 0.0..=1.0, true),
            (1.0, 0.0..=1.0, true),
            (-0.0, 0.0..=1.0, true),
            (1.0000001, 0.0..=1.0, false),
            (-1e-9, 0.0..=1.0, false),
            (f64::NAN, 0.0..=1.0, false),
            (f64::INFINITY, 0.0..=f64::INFINITY, true),
            (f64::NAN, f64::NEG_INFINITY..=f64::INFINITY, false),
        ];
        for (v, r, ok) in cases {
            assert_eq!(check("s", "k", v, r.clone(), "m").is_ok(), ok, "{v} in {r:?}");
        }
        assert_eq!(
            check("compare", "x", 3.0, 0.0..=2.0, "a cosine distance").unwrap_err(),
            "[compare] x = 3 is outside [0, 2] (a cosine distance)"
        );
        assert_eq!(
            check("q", "v", -1.0, 0.0..=f64::INFINITY, "a variance").unwrap_err(),
            "[q] v = -1 is outside [0, inf] (a variance)"
        );
    }
}
