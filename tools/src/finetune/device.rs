//! Where fine-tuning runs (`--device cpu|cuda|auto`).
//!
//! * `cpu`: burn's ndarray backend (SIMD kernels, multithreaded matrix multiply), fp32.
//! * `cuda`: burn's CUDA backend (CubeCL; kernels compiled by NVRTC at run time, `libcuda`
//!   loaded at run time) — only in a build with the `cuda` feature. A machine without a driver
//!   makes CubeCL's loader panic; that is caught and reported as [`Error::Cuda`].
//! * `auto`: CUDA when the build has it and a device answers, else the CPU.

use crate::error::{Error, Result};

/// `--device`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// The CPU.
    Cpu,
    /// The first CUDA GPU.
    Cuda,
    /// CUDA if available, else the CPU.
    #[default]
    Auto,
}

/// The device a run actually uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// burn's ndarray backend.
    Cpu,
    /// burn's CUDA backend, device 0.
    #[cfg(feature = "cuda")]
    Cuda,
}

impl Resolved {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Resolved::Cpu => "cpu (burn ndarray, fp32)",
            #[cfg(feature = "cuda")]
            Resolved::Cuda => "cuda:0 (burn CubeCL, fp32)",
        }
    }
}

/// Resolves `choice`, probing the GPU for `cuda`/`auto`.
pub fn resolve(choice: DeviceChoice) -> Result<Resolved> {
    match choice {
        DeviceChoice::Cpu => Ok(Resolved::Cpu),
        DeviceChoice::Cuda => cuda(),
        DeviceChoice::Auto => Ok(cuda().unwrap_or(Resolved::Cpu)),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Resolved> {
    Err(Error::Cuda(
        "this panderm-tools was built without CUDA support; rebuild with `--features cuda` or pass --device cpu".into(),
    ))
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Resolved> {
    use std::sync::{Arc, Mutex};

    use burn::tensor::Tensor;
    type B = burn::backend::Cuda<f32>;
    // CubeCL panics when libcuda or a device is missing — first in its device thread (cudarc's
    // loader, with the useful message), then in the caller (a closed channel). Catch the
    // caller's panic and report the first message, with the default hook silenced meanwhile so
    // no backtrace reaches the user.
    let messages: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&messages);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut m) = sink.lock() {
            m.push(panderm_edge::error::panic_message(info.payload()));
        }
    }));
    let probe = std::panic::catch_unwind(|| {
        let device = burn::backend::cuda::CudaDevice::default();
        let t = Tensor::<B, 1>::from_floats([1.0, 2.0], &device);
        t.sum().into_scalar()
    });
    std::panic::set_hook(previous);
    match probe {
        Ok(3.0) => Ok(Resolved::Cuda),
        Ok(v) => Err(Error::Cuda(format!("the CUDA device gave a wrong result for a test sum ({v} instead of 3)"))),
        Err(_) => {
            let first = messages.lock().ok().and_then(|m| m.first().cloned()).unwrap_or_else(|| "unknown error".into());
            // cudarc lists every library name it tried; the first sentence says what happened.
            let short: String = first.split(" - ").next().unwrap_or(&first).chars().take(300).collect();
            Err(Error::Cuda(format!(
                "no usable CUDA device: {short} (is the NVIDIA driver installed and libcuda.so.1 on the library path?)"
            )))
        }
    }
}
