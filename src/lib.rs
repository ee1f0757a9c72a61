//! # PanDerm Edge runtime
//!
//! Runs the PanDerm dermatology foundation model (a ViT converted to ONNX by
//! `panderm-tools convert`) on CPU boards with tract: no Python, no network.
//!
//! * [`preprocess`]: PanDerm's exact eval transform (decode, Pillow bilinear resize to 256,
//!   centre crop 224, normalize with PanDerm's constants).
//! * [`engine`]: load an ONNX model into an optimized tract plan and run it.
//! * [`ops`]: our own tract operators (a SIMD activation quantizer) swapped into optimized plans.
//! * [`onnx_quant`]: ONNX Runtime's quantized forms (QDQ, QOperator) rewritten at load so that
//!   tract computes what their definition says, on its integer GEMM.
//! * [`error`]: the typed error ([`Error`] with an [`ErrorKind`]).
//! * [`classify`]: a verified bundle on images or camera [`frame`]s (RGB8, RGBA8, BGR8, BGRA8,
//!   NV12, any stride): quality gate, backbone once, every head, abstention.
//! * [`capi`]: the C ABI (`include/panderm.h`, docs/c-api.md); [`logging`]: the library logs
//!   through the `log` facade, the binaries' logger lives here.
//!
//! ```no_run
//! use panderm_edge::{engine::Model, preprocess::{preprocess_file, PreprocessConfig}};
//! let model = Model::load("model.onnx".as_ref())?;
//! let pixels = preprocess_file("lesion.jpg".as_ref(), &PreprocessConfig::default())?;
//! let outputs = model.run(&[&pixels])?;
//! println!("{:?}", outputs[0][0].values);
//! # Ok::<(), panderm_edge::Error>(())
//! ```

pub mod abstain;
pub mod audit_log;
pub mod backend;
pub mod batch;
pub mod bench;
pub mod board;
pub mod bundle;
pub mod capi;
pub mod classify;
pub mod compare;
pub mod cpu;
pub mod device_view;
pub mod engine;
pub mod error;
pub mod frame;
pub mod fsutil;
pub mod logging;
pub mod manifest_range;
pub mod nnef;
pub mod npy;
pub mod onnx_quant;
pub mod ops;
#[cfg(feature = "ort")]
pub mod ort_engine;
pub mod precision;
pub mod preprocess;
pub mod quality;
pub mod run_report;
pub mod screen;
pub mod signing;
pub mod stats;

pub use error::{Error, ErrorKind, Result};
