//! Fine-tuning PanDerm (`panderm-tools finetune`): PanDerm's recipe (`run_class_finetuning.py`
//! with `furnace/*`), on burn, on the CPU or a CUDA GPU with the same code.
//!
//! | module | job |
//! |---|---|
//! | [`model`] | the fine-tuning ViT's forward pass over named flat weights |
//! | [`weights`] | weights in from any checkpoint `convert` reads, out in PanDerm's FT layout |
//! | [`optim`] | AdamW with PanDerm's parameter groups |
//! | [`schedule`] | `cosine_scheduler`, layer decay, the no-weight-decay rule |
//! | [`loss`] | soft-target cross-entropy (label smoothing, Mixup targets) |
//! | [`mixup`] | timm's Mixup/CutMix in `batch` mode |
//! | [`augment`] | the train augmentations |
//! | [`data`] | batches on worker threads, epoch order, the weighted sampler |
//! | [`select`] | validation metrics and PanDerm's model selection |
//! | [`state`] | `checkpoint-{best,last}.pth`, the optimizer file and `--resume` |
//! | [`device`] | `--device cpu|cuda|auto` |
//! | [`train`] | the loop: steps, `log.jsonl`, validation, checkpoints, the report |
//! | [`bench`] | training and inference throughput on synthetic batches |
//!
//! docs/finetune.md maps every PanDerm flag to ours.

pub mod augment;
pub mod bench;
pub mod data;
pub mod device;
pub mod loss;
pub mod mixup;
pub mod model;
pub mod optim;
pub mod schedule;
pub mod select;
pub mod state;
pub mod train;
pub mod weights;

use std::path::PathBuf;

pub use device::DeviceChoice;
pub use select::Monitor;
pub use train::{FinetuneReport, finetune};

/// Everything `panderm-tools finetune` takes; [`FinetuneOptions::new`] fills in PanDerm's recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct FinetuneOptions {
    /// Starting weights: a pretrained backbone or a fine-tuned checkpoint.
    pub init: PathBuf,
    /// The dataset CSV (`image`, `label`/`binary_label`, `split`).
    pub csv: PathBuf,
    /// Image root.
    pub root: Option<PathBuf>,
    /// Classes K.
    pub nb_classes: usize,
    /// Where checkpoints, logs and predictions go.
    pub output_dir: PathBuf,
    /// Epochs (50).
    pub epochs: usize,
    /// Batch size (128).
    pub batch_size: usize,
    /// Peak learning rate (5e-4).
    pub lr: f64,
    /// Final learning rate (1e-6).
    pub min_lr: f64,
    /// Linear warmup epochs (10).
    pub warmup_epochs: usize,
    /// Layer-wise learning-rate decay (0.65).
    pub layer_decay: f64,
    /// AdamW weight decay (0.05).
    pub weight_decay: f64,
    /// Stochastic depth rate of the last block (0.2; linear over depth).
    pub drop_path: f64,
    /// Label smoothing (0.1).
    pub smoothing: f64,
    /// Mixup α (0.8; 0 disables).
    pub mixup: f64,
    /// CutMix α (1.0; 0 disables).
    pub cutmix: f64,
    /// Class-balanced sampling with replacement (`--weights`).
    pub weighted_sampler: bool,
    /// Model selection for K > 2 (binary always uses AUROC).
    pub monitor: Monitor,
    /// Fraction of the train split to use (PanDerm's `percent_data`).
    pub percent_data: f64,
    /// PanDerm's train augmentations (`false`: the eval transform).
    pub augment: bool,
    /// Seed of every random choice.
    pub seed: u64,
    /// Where to train.
    pub device: DeviceChoice,
    /// Mixed precision (CUDA only).
    pub amp: bool,
    /// Continue the run in `output_dir`.
    pub resume: bool,
    /// Stop after this many epochs of this invocation (continue later with `resume`).
    pub stop_after: Option<usize>,
    /// Image decoding threads.
    pub threads: usize,
    /// Show a progress bar.
    pub progress: bool,
}

impl FinetuneOptions {
    /// PanDerm's recipe (`script/finetune_train.sh`) for the given inputs.
    pub fn new(init: PathBuf, csv: PathBuf, root: Option<PathBuf>, nb_classes: usize, output_dir: PathBuf) -> Self {
        FinetuneOptions {
            init,
            csv,
            root,
            nb_classes,
            output_dir,
            epochs: 50,
            batch_size: 128,
            lr: 5e-4,
            min_lr: 1e-6,
            warmup_epochs: 10,
            layer_decay: 0.65,
            weight_decay: 0.05,
            drop_path: 0.2,
            smoothing: 0.1,
            mixup: 0.8,
            cutmix: 1.0,
            weighted_sampler: false,
            monitor: Monitor::Acc,
            percent_data: 1.0,
            augment: true,
            seed: 0,
            device: DeviceChoice::Auto,
            amp: false,
            resume: false,
            stop_after: None,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            progress: false,
        }
    }
}
