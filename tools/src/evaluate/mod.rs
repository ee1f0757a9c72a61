//! Evaluating a fine-tuned model as PanDerm's `furnace/engine_for_finetuning.py::evaluate` does:
//! its metrics ([`metrics`]) and its per-image predictions file ([`predictions`]).

pub mod metrics;
pub mod predictions;
