//! PanDerm's fine-tuning metrics against scikit-learn: every case of
//! `tests/fixtures/ft_metrics_golden.json` (written by `scripts/reference_ft_metrics.py` with
//! scikit-learn 1.9.1: K = 2, 3, 4, 5, 6, 7, ties, absent classes) must match, missing for missing.

use std::path::PathBuf;

use panderm_tools::evaluate::metrics::{FtMetrics, ft_metrics};
use serde_json::Value;

/// Every metric is a ratio of small integer counts (at most 60 rows here); we and scikit-learn
/// compute them in different orders (numpy's pairwise sums; scikit-learn's trapezoid over float
/// FPR/TPR arrays against our exact integer Mann–Whitney count), which differ by a few ulps
/// (< 1e-15). One wrong count moves a value by at least 1/(60·60) ≈ 3e-4, so 1e-12 cannot hide a
/// semantic difference.
const TOLERANCE: f64 = 1e-12;

fn golden() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ft_metrics_golden.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

fn matches(got: Option<f64>, want: Option<f64>) -> bool {
    match (got, want) {
        (None, None) => true,
        (Some(g), Some(w)) => (g - w).abs() <= TOLERANCE,
        _ => false,
    }
}

fn fields(m: &FtMetrics) -> [(&'static str, Option<f64>); 10] {
    [
        ("balanced_accuracy", Some(m.balanced_accuracy)),
        ("accuracy", Some(m.accuracy)),
        ("top3_accuracy", m.top3_accuracy),
        ("top5_accuracy", m.top5_accuracy),
        ("sensitivity", Some(m.sensitivity)),
        ("specificity", Some(m.specificity)),
        ("auc_roc", m.auc_roc),
        ("weighted_f1", Some(m.weighted_f1)),
        ("recall_macro", Some(m.recall_macro)),
        ("recall_weighted", Some(m.recall_weighted)),
    ]
}

#[test]
fn ft_metrics_match_sklearn() {
    let doc = golden();
    let cases = doc["cases"].as_array().unwrap_or_else(|| panic!("no cases"));
    assert!(cases.len() >= 10, "only {} golden cases", cases.len());
    let mut failures = Vec::new();
    let mut seen_none = [false; 2];
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let k = case["k"].as_u64().unwrap_or_else(|| panic!("{name}: no k")) as usize;
        let y: Vec<usize> = numbers(&case["y_true"]).into_iter().map(|v| v as usize).collect();
        let probs = numbers(&case["probs"]);
        let got = ft_metrics(&y, &probs, k);
        for (metric, g) in fields(&got) {
            let want = case["expected"][metric].as_f64();
            seen_none[0] |= metric == "auc_roc" && want.is_none();
            seen_none[1] |= metric == "top3_accuracy" && want.is_none();
            if !matches(g, want) {
                failures.push(format!("{name}: {metric} = {g:?}, sklearn {want:?}"));
            }
        }
        // metrics.json carries the same numbers under the same names.
        let json = serde_json::to_value(got).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(json.as_object().map(|o| o.len()), Some(10), "{name}: {json}");
    }
    assert!(seen_none.iter().all(|&s| s), "the table must hold undefined AUROC and top-k cases");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
