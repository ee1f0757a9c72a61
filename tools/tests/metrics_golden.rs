//! PanDerm's metrics against scikit-learn: every case of `tests/fixtures/metrics_golden.json`
//! (written by `scripts/reference_metrics.py`) must match within 1e-9, `nan` for `nan` and
//! missing for missing; plus the float formatting of the report files against Python/numpy.

use std::path::PathBuf;

use panderm_tools::metrics::eval_metrics;
use panderm_tools::probe_report::{format_4f, numpy_str_f32, python_repr_f64};
use serde_json::Value;

const TOLERANCE: f64 = 1e-9;

fn golden() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics_golden.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An expected value: `null` → missing, `"nan"` → NaN, else the number.
fn expected(v: &Value) -> Option<f64> {
    match v {
        Value::Null => None,
        Value::String(s) if s == "nan" => Some(f64::NAN),
        other => Some(other.as_f64().unwrap_or_else(|| panic!("bad expected value {other}"))),
    }
}

fn matches(got: Option<f64>, want: Option<f64>) -> bool {
    match (got, want) {
        (None, None) => true,
        (Some(g), Some(w)) if w.is_nan() => g.is_nan(),
        (Some(g), Some(w)) => (g - w).abs() <= TOLERANCE,
        _ => false,
    }
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array"))
        .iter()
        .map(|x| x.as_u64().unwrap_or_else(|| panic!("bad label {x}")) as usize)
        .collect()
}

#[test]
fn eval_metrics_matches_sklearn() {
    let doc = golden();
    let cases = doc["cases"].as_array().unwrap_or_else(|| panic!("no cases"));
    assert!(cases.len() >= 50, "only {} golden cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let k = case["k"].as_u64().unwrap_or_else(|| panic!("{name}: no k")) as usize;
        let y_true = usizes(&case["y_true"]);
        let y_pred = usizes(&case["y_pred"]);
        let probs: Vec<f64> = case["probs"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no probs"))
            .iter()
            .map(|x| x.as_f64().unwrap_or_else(|| panic!("{name}: bad prob {x}")))
            .collect();
        let got = eval_metrics(&y_true, &y_pred, &probs, k);
        let e = &case["expected"];
        let checks = [
            ("acc", Some(got.acc), expected(&e["acc"])),
            ("bacc", Some(got.bacc), expected(&e["bacc"])),
            ("kappa", Some(got.kappa), expected(&e["kappa"])),
            ("weighted_f1", Some(got.weighted_f1), expected(&e["weighted_f1"])),
            ("auroc", got.auroc, expected(&e["auroc"])),
            ("aupr", got.aupr, expected(&e["aupr"])),
        ];
        for (metric, g, w) in checks {
            if !matches(g, w) {
                failures.push(format!("{name}: {metric} = {g:?}, sklearn {w:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

fn bits(v: &Value) -> u64 {
    let s = v.as_str().unwrap_or_else(|| panic!("bits not a string: {v}"));
    u64::from_str_radix(s, 16).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// `[[hex bits, expected text], …]` from the golden file.
fn pairs(section: &str) -> Vec<(u64, String)> {
    let doc = golden();
    doc["float_formats"][section]
        .as_array()
        .unwrap_or_else(|| panic!("no {section}"))
        .iter()
        .map(|p| (bits(&p[0]), p[1].as_str().unwrap_or_else(|| panic!("{section}: bad text")).to_owned()))
        .collect()
}

#[test]
fn float_text_matches_python_and_numpy() {
    let mut failures = Vec::new();
    for (b, want) in pairs("f64_repr") {
        let got = python_repr_f64(f64::from_bits(b));
        if got != want {
            failures.push(format!("repr(float) {b:016x}: {got} != {want}"));
        }
    }
    for (b, want) in pairs("f32_str") {
        let x = f32::from_bits(u32::try_from(b).unwrap_or_else(|_| panic!("{b:x} is not f32 bits")));
        let got = numpy_str_f32(x);
        if got != want {
            failures.push(format!("str(np.float32) {b:08x}: {got} != {want}"));
        }
    }
    for (b, want) in pairs("fixed4") {
        let got = format_4f(f64::from_bits(b));
        if got != want {
            failures.push(format!(".4f {b:016x}: {got} != {want}"));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
