//! PanDerm's model selection (`run_class_finetuning.py`): after every epoch the model is scored
//! on the val split; a **strict** improvement saves `checkpoint-best.pth`.
//!
//! * Binary (`K = 2`): val AUROC (of class 1's probability).
//! * Otherwise `--monitor acc` (val accuracy, the default) or `--monitor recall` (val macro
//!   recall).

use crate::evaluate::metrics::FtMetrics;

/// The val metric that picks the best epoch for `K > 2`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Val accuracy.
    #[default]
    Acc,
    /// Val macro recall.
    Recall,
}

/// The score an epoch is selected by, and its name.
pub fn selection_score(metrics: &FtMetrics, k: usize, monitor: Monitor) -> (f64, &'static str) {
    if k == 2 {
        (metrics.auc_roc.unwrap_or(f64::NAN), "val AUROC")
    } else {
        match monitor {
            Monitor::Acc => (metrics.accuracy, "val accuracy"),
            Monitor::Recall => (metrics.recall_macro, "val macro recall"),
        }
    }
}

/// Whether `score` strictly improves on `best` (a NaN score never does; anything beats no best).
pub fn improves(score: f64, best: Option<f64>) -> bool {
    !score.is_nan() && best.is_none_or(|b| score > b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_improvement_only() {
        assert!(improves(0.5, None));
        assert!(improves(0.6, Some(0.5)));
        assert!(!improves(0.5, Some(0.5)));
        assert!(!improves(f64::NAN, None));
    }
}
