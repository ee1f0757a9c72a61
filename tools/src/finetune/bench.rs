//! `panderm-tools bench-finetune`: training and inference throughput of the fine-tuning engine on
//! synthetic batches (no image decoding), for docs/finetune.md and docs/gpu.md.
//!
//! One warm-up step (CUDA compiles its kernels then), then `steps` timed training steps (forward,
//! backward, AdamW at a fixed learning rate) and `steps` timed forward-only batches (eval mode,
//! what `extract` would run).

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::data::SIDE;
use super::device::{self, DeviceChoice, Resolved};
use super::loss::{soft_target_cross_entropy, soft_targets};
use super::model::forward;
use super::optim::{AdamW, AdamWConfig, Group};
use super::train::backward_and_step;
use super::weights::StateDict;
use crate::error::{Error, Result};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The model (any checkpoint `finetune --init` takes).
    pub init: std::path::PathBuf,
    /// Classes of the head.
    pub classes: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Timed steps (and timed forward batches).
    pub steps: usize,
    /// Where to run.
    pub device: DeviceChoice,
}

/// Measured throughput.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The device.
    pub device: String,
    /// Images per step.
    pub batch_size: usize,
    /// Timed steps.
    pub steps: usize,
    /// Training images per second (forward + backward + AdamW).
    pub train_images_per_sec: f64,
    /// Inference images per second (forward only).
    pub forward_images_per_sec: f64,
    /// The warm-up step's seconds (kernel compilation on CUDA).
    pub warmup_secs: f64,
}

/// Runs the benchmark.
pub fn bench(o: &BenchOptions) -> Result<BenchReport> {
    if o.batch_size == 0 || o.steps == 0 || o.classes < 2 {
        return Err(Error::Refused("--batch-size and --steps must be at least 1 and --nb-classes at least 2".into()));
    }
    let resolved = device::resolve(o.device)?;
    match resolved {
        Resolved::Cpu => run::<burn::backend::Autodiff<burn::backend::NdArray<f32>>>(o, &Default::default(), resolved),
        #[cfg(feature = "cuda")]
        Resolved::Cuda => run::<burn::backend::Autodiff<burn::backend::Cuda<f32>>>(
            o,
            &burn::backend::cuda::CudaDevice::default(),
            resolved,
        ),
    }
}

fn run<B: AutodiffBackend>(o: &BenchOptions, device: &B::Device, resolved: Resolved) -> Result<BenchReport> {
    let (sd, _) = StateDict::from_checkpoint(&o.init, o.classes, 0)?;
    let mut params = sd.to_params::<B>(device);
    drop(sd);
    let groups =
        params.entries.iter().map(|p| p.trainable.then_some(Group { lr_scale: 1.0, weight_decay: 0.05 })).collect();
    let mut opt: AdamW<B::InnerBackend> = AdamW::new(AdamWConfig::default(), groups);
    let n = o.batch_size;
    let mut rng = StdRng::seed_from_u64(0);
    let pixels: Vec<f32> = (0..n * 3 * SIDE * SIDE).map(|_| rng.random_range(-2.0f32..2.0)).collect();
    let labels: Vec<usize> = (0..n).map(|i| i % o.classes).collect();
    let targets = soft_targets(&labels, o.classes, 0.1);
    let batch = || Tensor::<B, 4>::from_data(TensorData::new(pixels.clone(), [n, 3, SIDE, SIDE]), device);

    let mut step = |params: &mut super::model::Params<B>| -> f64 {
        let loss = soft_target_cross_entropy(forward(params, batch(), None), &targets);
        *params = backward_and_step(params, &loss, &mut opt, 1e-5);
        // Reading the loss waits for the device.
        loss.into_scalar().elem::<f64>()
    };
    let t = Instant::now();
    step(&mut params);
    let warmup_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..o.steps {
        step(&mut params);
    }
    // Wait for the last update before stopping the clock.
    let _: f64 = params.entries[0].value.clone().sum().into_scalar().elem();
    let train = t.elapsed().as_secs_f64();

    let eval = params.inner();
    let inner_batch =
        || Tensor::<B::InnerBackend, 4>::from_data(TensorData::new(pixels.clone(), [n, 3, SIDE, SIDE]), device);
    let _: f64 = forward(&eval, inner_batch(), None).sum().into_scalar().elem();
    let t = Instant::now();
    for _ in 0..o.steps {
        let _: f64 = forward(&eval, inner_batch(), None).sum().into_scalar().elem();
    }
    let fwd = t.elapsed().as_secs_f64();
    Ok(BenchReport {
        device: resolved.name().into(),
        batch_size: n,
        steps: o.steps,
        train_images_per_sec: (n * o.steps) as f64 / train,
        forward_images_per_sec: (n * o.steps) as f64 / fwd,
        warmup_secs,
    })
}
