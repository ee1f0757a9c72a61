//! The fine-tuning loop (`furnace/engine_for_finetuning.py::train_one_epoch` and the epoch loop
//! of `run_class_finetuning.py`).
//!
//! Per optimizer step `it`: every group's learning rate is `schedule[it] × lr_scale`; a batch of
//! `--batch-size` train images (drop last) is loaded, mixed (Mixup/CutMix), run forward in train
//! mode (stochastic depth), the soft-target loss is back-propagated and AdamW steps. One line per
//! step goes to `log.jsonl`. After every epoch the val split is scored and the best epoch saved
//! ([`super::select`]); at the end the best checkpoint is scored on the test split.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::activation::softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::FinetuneOptions;
use super::augment::TrainAugment;
use super::data::{self, Example, Transform};
use super::device::{self, Resolved};
use super::loss::soft_target_cross_entropy;
use super::mixup::{MixupConfig, mix_batch};
use super::model::{DropPathMasks, Params, forward};
use super::optim::{AdamW, AdamWConfig, Group};
use super::schedule::{LayerDecay, cosine_scheduler, no_weight_decay};
use super::select::{improves, selection_score};
use super::state::{self, ResumeState, RunKey};
use super::weights::{InitSource, StateDict};
use crate::dataset::{self, Dataset, LabelChoice, LoadOptions, Split};
use crate::error::{Error, Result};
use crate::evaluate::metrics::{FtMetrics, argmax, ft_metrics};
use crate::evaluate::predictions::{PredictionRow, write_predictions_csv};
use crate::synth::pth::PyValue;

/// What a run did, also written to `OUT/metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneReport {
    /// The device that trained.
    pub device: String,
    /// Pretrained backbone or a fine-tuned checkpoint.
    pub init: InitSource,
    /// Train / val / test images.
    pub train_images: usize,
    /// Val images.
    pub val_images: usize,
    /// Test images.
    pub test_images: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// Epochs trained in this invocation (fewer than `--epochs` after `--resume`).
    pub epochs_run: usize,
    /// Whether the run reached `--epochs` (false after `--stop-after`).
    pub finished: bool,
    /// The selection metric's name.
    pub selected_by: String,
    /// The best epoch and its score.
    pub best_epoch: Option<usize>,
    /// The best score.
    pub best_score: Option<f64>,
    /// The best epoch's val metrics.
    pub val: Option<FtMetrics>,
    /// The best checkpoint's test metrics (when the CSV has test rows and the run finished).
    pub test: Option<FtMetrics>,
    /// Images that could not be read (each counted once per time it was drawn).
    pub unreadable_images: usize,
    /// Training throughput (images per second, loading included).
    pub train_images_per_sec: f64,
    /// The last step's loss.
    pub last_loss: Option<f64>,
}

/// One `log.jsonl` line.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StepLog {
    /// Global optimizer step (from 0).
    pub step: u64,
    /// Epoch (from 0).
    pub epoch: usize,
    /// The schedule's learning rate (before layer decay).
    pub lr: f64,
    /// The batch's loss before the step.
    pub loss: f64,
}

/// Runs `panderm-tools finetune`.
pub fn finetune(opts: &FinetuneOptions) -> Result<FinetuneReport> {
    check_options(opts)?;
    let resolved = device::resolve(opts.device)?;
    log::info!("finetune: training on {}", resolved.name());
    let run = std::panic::AssertUnwindSafe(|| match resolved {
        Resolved::Cpu => {
            run::<burn::backend::Autodiff<burn::backend::NdArray<f32>>>(opts, &Default::default(), resolved)
        }
        #[cfg(feature = "cuda")]
        Resolved::Cuda => run::<burn::backend::Autodiff<burn::backend::Cuda<f32>>>(
            opts,
            &burn::backend::cuda::CudaDevice::default(),
            resolved,
        ),
    });
    std::panic::catch_unwind(run).unwrap_or_else(|panic| {
        let msg = panderm_edge::error::panic_message(panic.as_ref());
        let lower = msg.to_lowercase();
        if lower.contains("out of memory") || lower.contains("outofmemory") || lower.contains("out_of_memory") {
            Err(Error::Cuda(format!(
                "the device ran out of memory at --batch-size {}: try --batch-size {} ({msg})",
                opts.batch_size,
                (opts.batch_size / 2).max(1)
            )))
        } else {
            Err(Error::Panicked(format!("training stopped: {msg}")))
        }
    })
}

fn check_options(o: &FinetuneOptions) -> Result<()> {
    let bad = |m: String| Err(Error::Refused(m));
    if o.nb_classes < 2 {
        return bad(format!("--nb-classes must be at least 2 (got {})", o.nb_classes));
    }
    if o.batch_size == 0 || o.epochs == 0 {
        return bad("--batch-size and --epochs must be at least 1".into());
    }
    if o.warmup_epochs > o.epochs {
        return bad(format!("--warmup-epochs {} is longer than --epochs {}", o.warmup_epochs, o.epochs));
    }
    for (name, v) in [
        ("--lr", o.lr),
        ("--min-lr", o.min_lr),
        ("--weight-decay", o.weight_decay),
        ("--mixup", o.mixup),
        ("--cutmix", o.cutmix),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return bad(format!("{name} must be a finite number >= 0 (got {v})"));
        }
    }
    for (name, v) in [("--layer-decay", o.layer_decay), ("--percent-data", o.percent_data)] {
        if !(v > 0.0 && v <= 1.0) {
            return bad(format!("{name} must be in (0, 1] (got {v})"));
        }
    }
    for (name, v) in [("--drop-path", o.drop_path), ("--smoothing", o.smoothing)] {
        if !(0.0..1.0).contains(&v) {
            return bad(format!("{name} must be in [0, 1) (got {v})"));
        }
    }
    if o.amp {
        return bad(
            "--amp is not supported yet: the trainer runs in fp32 on every device (docs/finetune.md explains the difference from PanDerm's AMP)".into(),
        );
    }
    Ok(())
}

/// The examples of one run.
struct Splits {
    ds: Dataset,
    train: Vec<Example>,
    val: Vec<Example>,
    test: Vec<Example>,
}

fn load_splits(o: &FinetuneOptions) -> Result<Splits> {
    // PanDerm reads `binary_label` when --nb_classes is 2, `label` otherwise.
    let label = if o.nb_classes == 2 { LabelChoice::Binary } else { LabelChoice::Multiclass };
    let load = |label| dataset::load(&o.csv, o.root.as_deref(), &LoadOptions { label, check_images: false });
    let ds = match load(label) {
        Err(_) if label == LabelChoice::Binary => load(LabelChoice::Auto)?,
        other => other?,
    };
    if let Some(row) = ds.rows.iter().find(|r| r.label >= o.nb_classes) {
        return Err(Error::Invalid {
            path: o.csv.clone(),
            reason: format!(
                "row {} ({}) has {} {} but --nb-classes is {}",
                row.index + 2,
                row.image,
                ds.label_column,
                row.label,
                o.nb_classes
            ),
        });
    }
    let example = |i: usize| {
        let r = &ds.rows[i];
        Example { path: ds.image_path(r), label: r.label, name: r.image.clone() }
    };
    let train: Vec<Example> = ds.train_subset(o.percent_data)?.into_iter().map(example).collect();
    let val: Vec<Example> = ds.split_indices(Split::Val).into_iter().map(example).collect();
    let test: Vec<Example> = ds.split_indices(Split::Test).into_iter().map(example).collect();
    if train.is_empty() {
        return Err(Error::Invalid { path: o.csv.clone(), reason: "no train rows (after --percent-data)".into() });
    }
    if val.is_empty() {
        return Err(Error::Invalid {
            path: o.csv.clone(),
            reason: "no val rows: PanDerm selects the best epoch on the val split".into(),
        });
    }
    Ok(Splits { ds, train, val, test })
}

/// A seed for one random draw, from the run's seed and where the draw happens (SplitMix64's
/// finaliser over the combined words), so resumed and threaded runs draw the same values.
fn derive_seed(seed: u64, parts: &[u64]) -> u64 {
    let mut z = seed;
    for &p in parts {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15).wrapping_add(p);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// Tags of [`derive_seed`]'s first part.
mod tag {
    pub const ORDER: u64 = 1;
    pub const IMAGE: u64 = 2;
    pub const MIX: u64 = 3;
    pub const DROP_PATH: u64 = 4;
    pub const HEAD: u64 = 5;
}

fn run<B: AutodiffBackend>(o: &FinetuneOptions, device: &B::Device, resolved: Resolved) -> Result<FinetuneReport> {
    let Splits { ds, train, val, test } = load_splits(o)?;
    let k = o.nb_classes;
    let steps_per_epoch = train.len() / o.batch_size;
    if steps_per_epoch == 0 {
        return Err(Error::Refused(format!(
            "{} train images are fewer than one batch of {} (PanDerm drops the last partial batch); lower --batch-size",
            train.len(),
            o.batch_size
        )));
    }
    let out = &o.output_dir;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let key = RunKey {
        csv_sha256: ds.csv_sha256.clone(),
        nb_classes: k,
        epochs: o.epochs,
        batch_size: o.batch_size,
        steps_per_epoch,
        lr: o.lr,
        min_lr: o.min_lr,
        warmup_epochs: o.warmup_epochs,
        layer_decay: o.layer_decay,
        weight_decay: o.weight_decay,
        seed: o.seed,
    };
    let schedule = cosine_scheduler(o.lr, o.min_lr, o.epochs, steps_per_epoch, o.warmup_epochs)
        .ok_or_else(|| Error::Refused("the warmup is longer than the run".into()))?;

    // Starting point: a fresh model, or the last finished epoch of the run in OUT.
    let resumed = if o.resume { Some(resume_state(out, &key)?) } else { refuse_existing_run(out)? };
    let (sd, init) = match &resumed {
        Some(_) => StateDict::from_checkpoint(&out.join(state::LAST), k, 0)?,
        None => StateDict::from_checkpoint(&o.init, k, derive_seed(o.seed, &[tag::HEAD]))?,
    };
    let init = if resumed.is_some() { InitSource::FineTuned } else { init };
    let mut params: Params<B> = sd.to_params(device);
    let names: Vec<(String, Vec<usize>)> = params.entries.iter().map(|p| (p.name.clone(), p.shape.clone())).collect();
    let decay = LayerDecay::new(o.layer_decay, sd.config.depth);
    let groups = params
        .entries
        .iter()
        .map(|p| {
            p.trainable.then(|| Group {
                lr_scale: decay.scale(&p.name),
                weight_decay: if no_weight_decay(&p.name, &p.shape) { 0.0 } else { o.weight_decay },
            })
        })
        .collect();
    let mut opt: AdamW<B::InnerBackend> = AdamW::new(AdamWConfig::default(), groups);
    let (first_epoch, mut best) = match &resumed {
        Some(r) => {
            state::load_optimizer(out, &names, &mut opt, device)?;
            opt.step = r.steps_done;
            (r.epochs_done, r.best)
        }
        None => (0, None),
    };
    drop(sd);
    let mut log = open_log(&out.join("log.jsonl"), opt.step)?;

    let augment = TrainAugment::default();
    let transform = if o.augment { Transform::Train(&augment) } else { Transform::Eval };
    let mix = MixupConfig { mixup: o.mixup, cutmix: o.cutmix, smoothing: o.smoothing };
    let sampler_weights =
        o.weighted_sampler.then(|| data::class_weights(&train.iter().map(|e| e.label).collect::<Vec<_>>(), k));
    let end_epoch = o.stop_after.map_or(o.epochs, |n| first_epoch.saturating_add(n).min(o.epochs));
    let total_steps = end_epoch.saturating_sub(first_epoch) * steps_per_epoch;
    let bar = progress_bar(o.progress, total_steps);
    let args = checkpoint_args(o, &params.config.variant());
    let (mut unreadable, mut trained_images, mut last_loss) = (0usize, 0usize, None);
    let mut val_at_best: Option<FtMetrics> = None;
    let started = Instant::now();

    for epoch in first_epoch..end_epoch {
        let mut order_rng = StdRng::seed_from_u64(derive_seed(o.seed, &[tag::ORDER, epoch as u64]));
        let order = data::epoch_order(train.len(), sampler_weights.as_deref(), &mut order_rng);
        for s in 0..steps_per_epoch {
            let it = (epoch * steps_per_epoch + s) as u64;
            let lr = schedule[it as usize];
            let batch_examples: Vec<&Example> =
                order[s * o.batch_size..(s + 1) * o.batch_size].iter().map(|&i| &train[i]).collect();
            let seeds: Vec<u64> =
                (0..batch_examples.len()).map(|j| derive_seed(o.seed, &[tag::IMAGE, it, j as u64])).collect();
            let mut batch = data::load_batch(&batch_examples, transform, &seeds, o.threads);
            unreadable += report_failures(&batch.failed, &bar);
            if mix.active() && batch.len() % 2 == 1 {
                // timm's Mixup needs an even batch; an unreadable image made it odd.
                batch.labels.pop();
                batch.pixels.truncate(batch.labels.len() * data::IMAGE_LEN);
            }
            if batch.is_empty() {
                return Err(Error::Refused(format!(
                    "no image of the batch at step {it} could be read ({} failed); fix the dataset",
                    batch.failed.len()
                )));
            }
            let n = batch.len();
            let mut mix_rng = StdRng::seed_from_u64(derive_seed(o.seed, &[tag::MIX, it]));
            let (targets, _) = mix_batch(&mut batch.pixels, &batch.labels, k, &mix, &mut mix_rng);
            let x = Tensor::<B, 4>::from_data(TensorData::new(batch.pixels, [n, 3, data::SIDE, data::SIDE]), device);
            let masks = drop_path_masks::<B>(
                o.drop_path,
                params.config.depth,
                n,
                derive_seed(o.seed, &[tag::DROP_PATH, it]),
                device,
            );
            let logits = forward(&params, x, masks.as_ref());
            let loss = soft_target_cross_entropy(logits, &targets);
            let loss_value: f64 = loss.clone().into_scalar().elem();
            if !loss_value.is_finite() {
                return Err(Error::Refused(format!(
                    "the loss is {loss_value} at step {it} (epoch {epoch}); stopping, as PanDerm does. Lower --lr or check the data"
                )));
            }
            params = backward_and_step(&params, &loss, &mut opt, lr);
            writeln!(log, "{}", serde_json::to_string(&StepLog { step: it, epoch, lr, loss: loss_value })?)
                .map_err(|e| Error::io(out.join("log.jsonl"), e))?;
            trained_images += n;
            last_loss = Some(loss_value);
            bar.set_message(format!(
                "epoch {}/{} loss {loss_value:.4} {:.1} img/s",
                epoch + 1,
                o.epochs,
                trained_images as f64 / started.elapsed().as_secs_f64()
            ));
            bar.inc(1);
        }
        log.flush().map_err(|e| Error::io(out.join("log.jsonl"), e))?;

        // Validation and model selection.
        let eval_params = params.inner();
        let (val_metrics, val_rows, val_failed) = evaluate_split(&eval_params, &val, k, o, device)?;
        unreadable += val_failed;
        let (score, _) = selection_score(&val_metrics, k, o.monitor);
        let host = StateDict::from_params(&eval_params)?;
        if improves(score, best.map(|b| b.0)) {
            best = Some((score, epoch));
            state::save_model(out, state::BEST, &host, PyValue::Str("best".into()), args.clone())?;
            write_predictions_csv(&out.join("val.csv"), k, &val_rows)?;
            val_at_best = Some(val_metrics);
        }
        bar.println(format!(
            "epoch {epoch}: val {score:.4} (best {:.4} at epoch {})",
            best.map_or(f64::NAN, |b| b.0),
            best.map_or(0, |b| b.1)
        ));
        state::save_model(out, state::LAST, &host, PyValue::Int(epoch as i64), args.clone())?;
        state::save_optimizer(out, &names, &opt)?;
        state::save_resume(out, &ResumeState { key: key.clone(), epochs_done: epoch + 1, steps_done: opt.step, best })?;
    }
    bar.finish_and_clear();
    let train_images_per_sec = trained_images as f64 / started.elapsed().as_secs_f64().max(1e-9);

    // The best checkpoint on the test split.
    let finished = end_epoch == o.epochs;
    let test_metrics = if test.is_empty() || best.is_none() || !finished {
        None
    } else {
        let (best_sd, _) = StateDict::from_checkpoint(&out.join(state::BEST), k, 0)?;
        let best_params: Params<B> = best_sd.to_params(device);
        let (m, rows, failed) = evaluate_split(&best_params.inner(), &test, k, o, device)?;
        unreadable += failed;
        write_predictions_csv(&out.join("test.csv"), k, &rows)?;
        Some(m)
    };
    if val_at_best.is_none() && best.is_some() {
        // Resumed after the best epoch: score the best checkpoint on val again for the report.
        let (best_sd, _) = StateDict::from_checkpoint(&out.join(state::BEST), k, 0)?;
        let best_params: Params<B> = best_sd.to_params(device);
        val_at_best = Some(evaluate_split(&best_params.inner(), &val, k, o, device)?.0);
    }
    let report = FinetuneReport {
        device: resolved.name().into(),
        init,
        train_images: train.len(),
        val_images: val.len(),
        test_images: test.len(),
        steps_per_epoch,
        epochs_run: end_epoch.saturating_sub(first_epoch),
        finished,
        selected_by: selection_score(&val_at_best.unwrap_or_else(empty_metrics), k, o.monitor).1.into(),
        best_epoch: best.map(|b| b.1),
        best_score: best.map(|b| b.0),
        val: val_at_best,
        test: test_metrics,
        unreadable_images: unreadable,
        train_images_per_sec,
        last_loss,
    };
    let path = out.join("metrics.json");
    panderm_edge::fsutil::write_atomically(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(report)
}

/// Back-propagates `loss` and takes one AdamW step at schedule learning rate `lr`: the new
/// weights, trainable ones again requiring a gradient (shared by the loop and `bench-finetune`).
pub(super) fn backward_and_step<B: AutodiffBackend>(
    params: &Params<B>,
    loss: &Tensor<B, 1>,
    opt: &mut AdamW<B::InnerBackend>,
    lr: f64,
) -> Params<B> {
    let grads = loss.backward();
    let grads = params.entries.iter().map(|p| if p.trainable { p.value.grad(&grads) } else { None }).collect();
    let values = params.entries.iter().map(|p| p.value.clone().inner()).collect();
    let values = opt
        .step(lr, values, grads)
        .into_iter()
        .zip(&params.entries)
        .map(|(v, p)| {
            let v = Tensor::<B, 1>::from_inner(v);
            if p.trainable { v.require_grad() } else { v }
        })
        .collect();
    params.with_values(values)
}

fn empty_metrics() -> FtMetrics {
    ft_metrics(&[], &[], 2)
}

/// `resume.json` of the run in `out`, checked against this invocation's settings.
fn resume_state(out: &Path, key: &RunKey) -> Result<ResumeState> {
    if !out.join(state::RESUME).is_file() {
        return Err(Error::Refused(format!(
            "--resume: {} holds no run to resume (no {})",
            out.display(),
            state::RESUME
        )));
    }
    let r = state::load_resume(out)?;
    let diffs = state::key_differences(&r.key, key);
    if !diffs.is_empty() {
        return Err(Error::Refused(format!(
            "--resume: the settings differ from the run in {}: {}",
            out.display(),
            diffs.join("; ")
        )));
    }
    Ok(r)
}

/// A fresh run refuses to overwrite another run's state.
fn refuse_existing_run(out: &Path) -> Result<Option<ResumeState>> {
    if out.join(state::RESUME).exists() {
        return Err(Error::Refused(format!(
            "{} already holds a fine-tuning run; pass --resume to continue it or choose another --output-dir",
            out.display()
        )));
    }
    Ok(None)
}

/// Opens `log.jsonl` for appending, keeping only the lines of steps before `steps_done` (a
/// resumed run replays the unfinished epoch).
fn open_log(path: &Path, steps_done: u64) -> Result<File> {
    let mut kept = Vec::new();
    if steps_done > 0 && path.is_file() {
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|e| Error::io(path, e))?;
            if serde_json::from_str::<StepLog>(&line).is_ok_and(|l| l.step < steps_done) {
                kept.push(line);
            }
        }
    }
    let mut f =
        OpenOptions::new().create(true).write(true).truncate(true).open(path).map_err(|e| Error::io(path, e))?;
    for line in kept {
        writeln!(f, "{line}").map_err(|e| Error::io(path, e))?;
    }
    Ok(f)
}

/// Stochastic depth masks for one step (`None` when `--drop-path` is 0): block `i` drops each
/// sample's branch with probability `drop_path · i / (depth − 1)` (`torch.linspace(0, rate,
/// depth)`), and scales kept ones by `1/keep`.
fn drop_path_masks<B: Backend>(
    rate: f64,
    depth: usize,
    n: usize,
    seed: u64,
    device: &B::Device,
) -> Option<DropPathMasks<B>> {
    if rate <= 0.0 {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let masks = (0..depth)
        .flat_map(|i| {
            let r = if depth > 1 { rate * i as f64 / (depth - 1) as f64 } else { 0.0 };
            let keep = 1.0 - r;
            let mut two = Vec::with_capacity(2);
            for _ in 0..2 {
                let m: Vec<f32> = (0..n)
                    .map(|_| if (keep + rng.random::<f64>()).floor() >= 1.0 { (1.0 / keep) as f32 } else { 0.0 })
                    .collect();
                two.push(Tensor::<B, 3>::from_data(TensorData::new(m, [n, 1, 1]), device));
            }
            two
        })
        .collect();
    Some(DropPathMasks { masks })
}

/// Scores `examples` with the eval transform: PanDerm's FT metrics, the prediction rows, and
/// how many images could not be read (left out).
fn evaluate_split<B: Backend>(
    params: &Params<B>,
    examples: &[Example],
    k: usize,
    o: &FinetuneOptions,
    device: &B::Device,
) -> Result<(FtMetrics, Vec<PredictionRow>, usize)> {
    // PanDerm's val/test batch is 1.5 × the train batch.
    let batch = (o.batch_size * 3 / 2).max(1);
    let (mut y, mut probs, mut rows, mut failed) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for chunk in examples.chunks(batch) {
        let refs: Vec<&Example> = chunk.iter().collect();
        let b = data::load_batch(&refs, Transform::Eval, &[], o.threads);
        failed += b.failed.len();
        for (path, why) in &b.failed {
            log::warn!("unreadable image {}: {why}", path.display());
        }
        if b.is_empty() {
            continue;
        }
        let n = b.len();
        let x = Tensor::<B, 4>::from_data(TensorData::new(b.pixels, [n, 3, data::SIDE, data::SIDE]), device);
        let p = softmax(forward(params, x, None), 1)
            .into_data()
            .into_vec::<f32>()
            .map_err(|e| Error::Refused(format!("reading probabilities back from the device: {e:?}")))?;
        for (row, &i) in p.chunks_exact(k).zip(&b.loaded) {
            let pr: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let ex = chunk[i].clone();
            rows.push(PredictionRow {
                filename: ex.name,
                true_label: ex.label,
                predicted_label: argmax(&pr),
                probabilities: pr.clone(),
            });
            y.push(ex.label);
            probs.extend(pr);
        }
    }
    Ok((ft_metrics(&y, &probs, k), rows, failed))
}

fn report_failures(failed: &[(PathBuf, String)], bar: &ProgressBar) -> usize {
    for (path, why) in failed {
        bar.suspend(|| log::warn!("unreadable image {} (left out of its batch): {why}", path.display()));
    }
    failed.len()
}

fn progress_bar(show: bool, steps: usize) -> ProgressBar {
    let bar = if show { ProgressBar::new(steps as u64) } else { ProgressBar::hidden() };
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// The `args` namespace saved with each checkpoint (PanDerm's argparse names).
fn checkpoint_args(o: &FinetuneOptions, variant: &str) -> Vec<(String, PyValue<'static>)> {
    vec![
        ("model".into(), PyValue::Str(format!("{variant}_FT"))),
        ("nb_classes".into(), PyValue::Int(o.nb_classes as i64)),
        ("epochs".into(), PyValue::Int(o.epochs as i64)),
        ("batch_size".into(), PyValue::Int(o.batch_size as i64)),
        ("lr".into(), PyValue::Float(o.lr)),
        ("min_lr".into(), PyValue::Float(o.min_lr)),
        ("warmup_epochs".into(), PyValue::Int(o.warmup_epochs as i64)),
        ("layer_decay".into(), PyValue::Float(o.layer_decay)),
        ("weight_decay".into(), PyValue::Float(o.weight_decay)),
        ("drop_path".into(), PyValue::Float(o.drop_path)),
        ("smoothing".into(), PyValue::Float(o.smoothing)),
        ("mixup".into(), PyValue::Float(o.mixup)),
        ("cutmix".into(), PyValue::Float(o.cutmix)),
        ("seed".into(), PyValue::Int(o.seed as i64)),
        ("rel_pos_bias".into(), PyValue::Bool(true)),
        ("use_mean_pooling".into(), PyValue::Bool(true)),
        ("finetune".into(), PyValue::Str(o.init.display().to_string())),
        ("tool".into(), PyValue::Str(format!("panderm-tools {}", env!("CARGO_PKG_VERSION")))),
    ]
}
