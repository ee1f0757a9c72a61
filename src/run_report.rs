//! The records `panderm run` prints: one JSON object per image, or a short human summary.

use serde::Serialize;

use crate::engine::Output;

/// One image's result as printed by `panderm run --json` (one object per line):
/// `{"image": "<path as given>", "outputs": {"<output name>": [numbers…]}}`.
#[derive(Debug, Serialize)]
pub struct RunRecord<'a> {
    /// The image path exactly as given on the command line.
    pub image: &'a str,
    /// Output name → flattened values (batch dimension removed), in ONNX output order.
    pub outputs: serde_json::Map<String, serde_json::Value>,
}

impl<'a> RunRecord<'a> {
    /// Builds the record for one image.
    pub fn new(image: &'a str, outputs: &[Output]) -> Self {
        let outputs = outputs
            .iter()
            .map(|o| {
                (o.name.clone(), serde_json::Value::from(o.values.iter().map(|&v| f64_for_json(v)).collect::<Vec<_>>()))
            })
            .collect();
        RunRecord { image, outputs }
    }

    /// The record as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a map of strings and finite numbers always serializes")
    }
}

/// f32 → JSON number: the shortest decimal that reads back as the same f32
/// (non-finite values, which JSON cannot hold, become null).
fn f64_for_json(v: f32) -> serde_json::Value {
    if v.is_finite() {
        // Parse the shortest f32 representation so that JSON shows 0.55237746, not 0.5523774623870850.
        let s = format!("{v}");
        serde_json::Value::Number(
            serde_json::Number::from_f64(s.parse::<f64>().unwrap_or(f64::from(v))).unwrap_or_else(|| 0.into()),
        )
    } else {
        serde_json::Value::Null
    }
}

pub use crate::stats::softmax;

/// A short human-readable summary of one image's outputs.
pub fn human_summary(image: &str, outputs: &[Output]) -> String {
    let mut s = format!("{image}\n");
    for o in outputs {
        if o.name == "logits" {
            let probs = softmax(&o.values);
            let mut order: Vec<usize> = (0..probs.len()).collect();
            order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
            let top: Vec<String> =
                order.iter().take(3).map(|&i| format!("class {i}: {:.1}%", probs[i] * 100.0)).collect();
            s.push_str(&format!("  logits ({} classes), top: {}\n", probs.len(), top.join(", ")));
        } else {
            let norm = o.values.iter().map(|v| v * v).sum::<f32>().sqrt();
            let head: Vec<String> = o.values.iter().take(4).map(|v| format!("{v:.4}")).collect();
            s.push_str(&format!(
                "  {} {:?}: L2 norm {norm:.3}, first values [{} …]\n",
                o.name,
                o.shape,
                head.join(", ")
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_the_contract_shape() {
        let out = vec![Output { name: "features".into(), shape: vec![2], values: vec![0.55237746, -1.5] }];
        let line = RunRecord::new("a/b.png", &out).to_json_line();
        assert_eq!(line, r#"{"image":"a/b.png","outputs":{"features":[0.55237746,-1.5]}}"#);
    }

    #[test]
    fn softmax_sums_to_one() {
        let p = softmax(&[1000.0, 1001.0, -5.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[0] && p[0] > p[2]);
    }
}
