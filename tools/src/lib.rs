//! # PanDerm Edge workstation tools
//!
//! Convert PanDerm's released PyTorch checkpoints to ONNX in pure Rust (no Python, no
//! protoc), and synthesize random-weight checkpoints in PanDerm's exact layouts.
//!
//! * [`checkpoint`]: read `.pth` files (every `torch.save` container) and apply the key policy;
//! * [`vit`]: the PanDerm ViT configuration and validated weights;
//! * [`export`]: lower the ViT to an ONNX graph; [`onnx_graph`]: the graph builder;
//! * [`convert`]: the `convert` command; [`synth`] + [`pth_writer`]: the `synth` command.

pub mod checkpoint;
pub mod convert;
pub mod error;
pub mod export;
pub mod onnx_graph;
pub mod pth_writer;
pub mod synth;
pub mod vit;

pub use error::{ConvertError, Result};
