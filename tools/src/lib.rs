//! # PanDerm Edge workstation tools
//!
//! Everything that happens on the workstation before a bundle reaches a board, in pure Rust
//! (no Python, no protoc). The modules follow the pipeline, one folder per stage:
//!
//! ```text
//! checkpoint.pth ─convert─▶ backbone.onnx ─quantize─▶ backbone.int8.onnx
//!                                 │
//! dataset.csv ───────────extract──┴──▶ features.npy ─probe─▶ head.json + PanDerm's report
//!                                                              │
//!                     backbone + heads ─package (bundle, sign)─┴──▶ bundle/ for the device
//! ```
//!
//! * [`convert`]: read `.pth` files ([`convert::checkpoint`]: every `torch.save` container and
//!   the key policy), validate the PanDerm ViT ([`convert::vit`]) and lower it to ONNX
//!   ([`convert::export`], on the graph builder [`onnx_graph`]);
//! * [`dataset`]: PanDerm dataset CSVs, splits and the numpy-exact `percent_data` subset
//!   ([`dataset::numpy_rng`]);
//! * [`extract`]: run the backbone over a dataset into `features.npy`, resumable, on CPU or
//!   GPU ([`extract::backend`]);
//! * [`probe`]: PanDerm's linear probe (logistic regression + L-BFGS), its metrics
//!   ([`probe::metrics`]), report files ([`probe::report`]) and the head's ONNX form
//!   ([`probe::onnx_head`]);
//! * [`quantize`]: int8 weight quantization of an export, with calibration and a report;
//! * [`package`]: assemble a verifiable bundle from a backbone and heads, and sign it
//!   ([`package::sign`]);
//! * [`synth`]: random-weight checkpoints in PanDerm's exact layouts and synthetic images, for
//!   tests and benchmarks without downloading PanDerm's weights;
//! * [`finetune`] (feature `train`, on by default): PanDerm's fine-tuning recipe on burn, on the
//!   CPU or a CUDA GPU (`cuda`), writing PanDerm's fine-tuned checkpoint layout for `convert`;
//! * [`evaluate`]: a bundle or classifier over a labelled split with PanDerm's fine-tuning metrics
//!   and test-time augmentation.
//!
//! [`error`] holds the crate's error type, [`Error`], into which every stage's error converts.

pub mod convert;
pub mod dataset;
pub mod error;
pub mod evaluate;
pub mod extract;
#[cfg(feature = "train")]
pub mod finetune;
pub mod onnx_graph;
pub mod package;
pub mod probe;
pub mod quantize;
pub mod synth;

/// Former module paths, kept for callers.
pub use convert::{checkpoint, export, vit};
/// Former module paths, kept for callers.
pub use dataset::numpy_rng;
pub use error::{ConvertError, Error, Result};
/// Former module paths, kept for callers.
pub use extract::backend;
/// Former module paths, kept for callers.
pub use package::sign;
/// Former module paths, kept for callers.
pub use probe::{metrics, onnx_head as head_export, report as probe_report};
/// Former module paths, kept for callers.
pub use synth::{images as synth_images, pth as pth_writer};
