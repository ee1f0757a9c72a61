//! Evaluating a classifier as PanDerm's `furnace/engine_for_finetuning.py::evaluate` does, on the
//! device runtime: its metrics ([`metrics`]), its per-image predictions file ([`predictions`]),
//! the model under evaluation ([`model`]: a bundle's head or a classifier ONNX, fp32 or int8,
//! with or without PanDerm's test-time augmentation) and the command ([`run`],
//! `panderm-tools evaluate`). See `docs/evaluate.md`.

pub mod metrics;
pub mod model;
pub mod predictions;
pub mod run;
