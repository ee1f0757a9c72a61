//! # PanDerm Edge workstation tools
//!
//! Convert PanDerm's released PyTorch checkpoints to ONNX in pure Rust (no Python, no
//! protoc), and synthesize random-weight checkpoints in PanDerm's exact layouts.
//!
//! * [`checkpoint`]: read `.pth` files (every `torch.save` container) and apply the key policy;
//! * [`vit`]: the PanDerm ViT configuration and validated weights;
//! * [`export`]: lower the ViT to an ONNX graph; [`onnx_graph`]: the graph builder;
//! * [`convert`]: the `convert` command; [`synth`] + [`pth_writer`]: the `synth` command.

pub mod backend;
pub mod checkpoint;
pub mod convert;
pub mod dataset;
pub mod error;
pub mod export;
pub mod extract;
pub mod head_export;
pub mod metrics;
pub mod numpy_rng;
pub mod onnx_graph;
pub mod package;
pub mod probe;
pub mod probe_report;
pub mod quantize;
pub mod sign;
pub mod synth;
pub mod vit;

pub use error::{ConvertError, Result};
/// Former module paths, kept for callers.
pub use synth::{images as synth_images, pth as pth_writer};
