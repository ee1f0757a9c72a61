//! What a fine-tuning run leaves in its output folder, and how `--resume` picks it up.
//!
//! | file | content |
//! |---|---|
//! | `checkpoint-best.pth` | PanDerm's FT checkpoint (`{'model', 'epoch': 'best', 'args'}`) of the best val epoch |
//! | `checkpoint-last.pth` | the same after the last finished epoch (`'epoch'`: its index) |
//! | `optimizer-last.npy` | AdamW's moments after that epoch: float32 `[2, P]`, `exp_avg` then `exp_avg_sq`, the trained weights concatenated in state-dict order |
//! | `resume.json` | epochs done, optimizer steps, the best score so far, and the settings that must not change |
//!
//! Every file is written to a temporary name and renamed, so a kill leaves either the previous
//! epoch's files or the new ones. A resumed run restarts at the first unfinished epoch; its random
//! draws are derived from `(seed, epoch, step)`, so it continues exactly as the killed run would have.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::optim::{AdamW, Moments};
use super::weights::StateDict;
use crate::error::{Error, Result};
use crate::synth::pth::{PyValue, write_pth};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// `checkpoint-best.pth`.
pub const BEST: &str = "checkpoint-best.pth";
/// `checkpoint-last.pth`.
pub const LAST: &str = "checkpoint-last.pth";
/// `optimizer-last.npy`.
pub const OPTIMIZER: &str = "optimizer-last.npy";
/// `resume.json`.
pub const RESUME: &str = "resume.json";

/// The settings a resumed run must share with the run it continues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunKey {
    /// SHA-256 of the dataset CSV.
    pub csv_sha256: String,
    /// Classes.
    pub nb_classes: usize,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// Peak and final learning rate, warmup epochs.
    pub lr: f64,
    /// Final learning rate.
    pub min_lr: f64,
    /// Warmup epochs.
    pub warmup_epochs: usize,
    /// Layer decay.
    pub layer_decay: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Seed.
    pub seed: u64,
}

/// `resume.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    /// The run's fixed settings.
    pub key: RunKey,
    /// Finished epochs.
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub steps_done: u64,
    /// Best selection score so far and its epoch.
    pub best: Option<(f64, usize)>,
}

/// Writes `root` to `dir/name` through a temporary file.
pub fn write_pth_atomically(dir: &Path, name: &str, root: &PyValue) -> Result<PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    write_pth(&tmp, root)?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Writes a model checkpoint in PanDerm's FT layout.
pub fn save_model(
    dir: &Path,
    name: &str,
    sd: &StateDict,
    epoch: PyValue,
    args: Vec<(String, PyValue)>,
) -> Result<PathBuf> {
    let rel_index = sd.rel_index();
    let root = sd.to_pth_root(&rel_index, epoch, args);
    write_pth_atomically(dir, name, &root)
}

/// Writes AdamW's moments as one float32 `.npy` `[2, P]`: row 0 `exp_avg`, row 1 `exp_avg_sq`,
/// each the trained weights' values concatenated in state-dict order (`names`, `P` values in
/// all).
pub fn save_optimizer<B: Backend>(dir: &Path, names: &[(String, Vec<usize>)], opt: &AdamW<B>) -> Result<PathBuf> {
    let (mut m_all, mut v_all) = (Vec::new(), Vec::new());
    for ((name, _), slot) in names.iter().zip(&opt.moments) {
        if let Some(Moments { m, v }) = slot {
            m_all.extend(to_vec(m, name)?);
            v_all.extend(to_vec(v, name)?);
        }
    }
    let p = m_all.len();
    m_all.extend(v_all);
    let path = dir.join(OPTIMIZER);
    let tmp = dir.join(format!(".{OPTIMIZER}.tmp"));
    panderm_edge::npy::write_f32(&tmp, &[2, p], &m_all)?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Reads the moments [`save_optimizer`] wrote into `opt` (weights in `names` order); the file
/// must hold exactly the trained weights' sizes.
pub fn load_optimizer<B: Backend>(
    dir: &Path,
    names: &[(String, Vec<usize>)],
    opt: &mut AdamW<B>,
    device: &B::Device,
) -> Result<()> {
    let path = dir.join(OPTIMIZER);
    let npy = panderm_edge::npy::read_f32(&path)?;
    let sizes: Vec<usize> = names.iter().map(|(_, shape)| shape.iter().product()).collect();
    let p: usize = sizes.iter().zip(&opt.groups).filter(|(_, g)| g.is_some()).map(|(n, _)| n).sum();
    if npy.shape != [2, p] {
        return Err(Error::Invalid {
            path,
            reason: format!(
                "holds moments of shape {:?}, but this model trains {p} values (expected [2, {p}])",
                npy.shape
            ),
        });
    }
    let (m_all, v_all) = npy.data.split_at(p);
    let mut at = 0;
    for (i, n) in sizes.iter().enumerate() {
        if opt.groups[i].is_none() {
            continue;
        }
        let t = |src: &[f32]| Tensor::<B, 1>::from_data(TensorData::new(src[at..at + n].to_vec(), [*n]), device);
        opt.moments[i] = Some(Moments { m: t(m_all), v: t(v_all) });
        at += n;
    }
    Ok(())
}

/// Reads `resume.json`.
pub fn load_resume(dir: &Path) -> Result<ResumeState> {
    let path = dir.join(RESUME);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Invalid { path, reason: format!("not a resume record: {e}") })
}

/// Writes `resume.json` atomically.
pub fn save_resume(dir: &Path, state: &ResumeState) -> Result<()> {
    let path = dir.join(RESUME);
    let text = serde_json::to_string_pretty(state)?;
    panderm_edge::fsutil::write_atomically(&path, text.as_bytes())?;
    Ok(())
}

/// The fields of `want` that differ from `have` (for a refused `--resume`).
pub fn key_differences(have: &RunKey, want: &RunKey) -> Vec<String> {
    let (a, b) = (serde_json::to_value(have).ok(), serde_json::to_value(want).ok());
    match (a, b) {
        (Some(serde_json::Value::Object(a)), Some(serde_json::Value::Object(b))) => a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: {v} in the run, {} now", b.get(k).cloned().unwrap_or_default()))
            .collect(),
        _ => vec!["the settings could not be compared".into()],
    }
}

fn to_vec<B: Backend>(t: &Tensor<B, 1>, name: &str) -> Result<Vec<f32>> {
    t.clone()
        .into_data()
        .into_vec::<f32>()
        .map_err(|e| Error::Refused(format!("reading optimizer state of {name} back from the device: {e:?}")))
}
