//! `panderm-tools finetune`: PanDerm's fine-tuning recipe (docs/finetune.md).

use std::path::PathBuf;

use panderm_tools::finetune::{DeviceChoice, FinetuneOptions, Monitor, finetune};

use crate::CmdResult;

#[derive(clap::Args)]
pub struct FinetuneArgs {
    /// Starting weights: a pretrained PanDerm backbone (new head) or a fine-tuned checkpoint (continued).
    #[arg(long)]
    init: PathBuf,
    /// PanDerm dataset CSV (`image`, `label` or `binary_label`, `split` train/val/test).
    #[arg(long)]
    csv: PathBuf,
    /// Directory the `image` paths are relative to.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Number of classes K (2 reads `binary_label`, as PanDerm does).
    #[arg(long)]
    nb_classes: usize,
    /// Where checkpoint-best.pth, checkpoint-last.pth, log.jsonl, val.csv, test.csv and metrics.json go.
    #[arg(long)]
    output_dir: PathBuf,
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Peak learning rate (not scaled by the batch size).
    #[arg(long, default_value_t = 5e-4)]
    lr: f64,
    #[arg(long, default_value_t = 1e-6)]
    min_lr: f64,
    /// Linear warmup from 0 over this many epochs, then cosine to --min-lr.
    #[arg(long, default_value_t = 10)]
    warmup_epochs: usize,
    /// Layer-wise learning-rate decay: layer l gets lr · decay^(depth+1−l).
    #[arg(long, default_value_t = 0.65)]
    layer_decay: f64,
    #[arg(long, default_value_t = 0.05)]
    weight_decay: f64,
    /// Stochastic depth of the last block (linear from 0 over the blocks).
    #[arg(long, default_value_t = 0.2)]
    drop_path: f64,
    /// Label smoothing.
    #[arg(long, default_value_t = 0.1)]
    smoothing: f64,
    /// Mixup α (0 disables).
    #[arg(long, default_value_t = 0.8)]
    mixup: f64,
    /// CutMix α (0 disables).
    #[arg(long, default_value_t = 1.0)]
    cutmix: f64,
    /// Class-balanced sampling with replacement (PanDerm's --weights).
    #[arg(long)]
    weighted_sampler: bool,
    /// Model selection for K > 2: val accuracy or val macro recall (binary: val AUROC).
    #[arg(long, value_enum, default_value = "acc")]
    monitor: Monitor,
    /// Train on this fraction of the train split (PanDerm's percent_data: shuffled with seed 42, head kept).
    #[arg(long, default_value_t = 1.0)]
    percent_data: f64,
    /// No train augmentations: the eval transform (Resize 256, CenterCrop 224).
    #[arg(long)]
    no_augment: bool,
    /// Seed of every random draw (sampling, augmentations, Mixup, drop path, the new head).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda, or auto (CUDA when this build has it and a GPU answers).
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// Mixed precision (PanDerm trains under AMP); not supported yet: training is fp32.
    #[arg(long)]
    amp: bool,
    /// Continue the run in --output-dir from its last finished epoch.
    #[arg(long)]
    resume: bool,
    /// Stop after N epochs of this invocation; continue later with --resume.
    #[arg(long, value_name = "N")]
    stop_after: Option<usize>,
    /// Image decoding threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: FinetuneArgs) -> CmdResult {
    let mut o = FinetuneOptions::new(a.init, a.csv, a.root, a.nb_classes, a.output_dir);
    o.epochs = a.epochs;
    o.batch_size = a.batch_size;
    o.lr = a.lr;
    o.min_lr = a.min_lr;
    o.warmup_epochs = a.warmup_epochs;
    o.layer_decay = a.layer_decay;
    o.weight_decay = a.weight_decay;
    o.drop_path = a.drop_path;
    o.smoothing = a.smoothing;
    o.mixup = a.mixup;
    o.cutmix = a.cutmix;
    o.weighted_sampler = a.weighted_sampler;
    o.monitor = a.monitor;
    o.percent_data = a.percent_data;
    o.augment = !a.no_augment;
    o.seed = a.seed;
    o.device = a.device;
    o.amp = a.amp;
    o.resume = a.resume;
    o.stop_after = a.stop_after;
    if let Some(t) = a.threads {
        o.threads = t.max(1);
    }
    o.progress = !a.quiet;
    let report = finetune(&o)?;
    println!(
        "fine-tuned on {} ({} train / {} val / {} test images, {} steps per epoch, {:.1} images/s)",
        report.device,
        report.train_images,
        report.val_images,
        report.test_images,
        report.steps_per_epoch,
        report.train_images_per_sec
    );
    match (report.best_epoch, report.best_score) {
        (Some(e), Some(s)) => println!("best epoch {e}: {} {s:.4}", report.selected_by),
        _ => println!("no epoch improved the val score (it was NaN every time): no checkpoint-best.pth"),
    }
    if let Some(t) = &report.test {
        println!("test: accuracy {:.4}, balanced accuracy {:.4}", t.accuracy, t.balanced_accuracy);
    }
    if report.unreadable_images > 0 {
        println!("warning: {} image reads failed (see the warnings above)", report.unreadable_images);
    }
    if !report.finished {
        println!("stopped after {} epochs as asked: continue with --resume", report.epochs_run);
    }
    println!("wrote {}", o.output_dir.display());
    Ok(())
}

#[derive(clap::Args)]
pub struct BenchFinetuneArgs {
    /// The model: a pretrained backbone or a fine-tuned checkpoint (e.g. `synth --embed-dim 768 --depth 12`).
    #[arg(long)]
    init: PathBuf,
    /// Classes of the head.
    #[arg(long, default_value_t = 7)]
    nb_classes: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Timed training steps (and as many timed forward batches), after one warm-up step.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// cpu, cuda or auto.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
}

pub fn bench(a: BenchFinetuneArgs) -> CmdResult {
    let r = panderm_tools::finetune::bench::bench(&panderm_tools::finetune::bench::BenchOptions {
        init: a.init,
        classes: a.nb_classes,
        batch_size: a.batch_size,
        steps: a.steps,
        device: a.device,
    })?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}
