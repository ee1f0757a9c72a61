//! `panderm-tools convert`: checkpoint → validated weights → ONNX file, with a report of
//! what was found. The output file is written atomically: a failed conversion leaves no
//! file (and never a half-written one) at the destination.

pub mod checkpoint;
pub mod error;
pub mod export;
pub mod vit;

use std::path::Path;

use crate::onnx_graph::encode;
use checkpoint::Checkpoint;
pub use error::{ConvertError, Result};
use export::{Provenance, to_onnx};
use vit::{ModelKind, Pooling, VitOptions, VitWeights};

/// What `convert` found and wrote.
#[derive(Debug, Clone)]
pub struct ConvertReport {
    /// Container format of the `.pth` file.
    pub container: String,
    /// Layout description.
    pub layout: String,
    /// SHA-256 of the checkpoint.
    pub source_sha256: String,
    /// Inferred configuration.
    pub config: vit::VitConfig,
    /// Entries deliberately ignored (pretraining extras, optimizer state, LP head).
    pub ignored: Vec<String>,
    /// Size of the written ONNX file.
    pub onnx_bytes: usize,
}

impl std::fmt::Display for ConvertReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.config;
        writeln!(f, "checkpoint: {} container, {}", self.container, self.layout)?;
        writeln!(f, "sha256:     {}", self.source_sha256)?;
        writeln!(
            f,
            "variant:    {} (D={}, depth={}, heads={}, mlp={}, patch={})",
            c.variant(),
            c.embed_dim,
            c.depth,
            c.num_heads,
            c.mlp_hidden,
            c.patch_size
        )?;
        match c.kind {
            ModelKind::Features => {
                writeln!(f, "model:      feature extractor -> features [N,{}] (CLS after final norm)", c.embed_dim)?
            }
            ModelKind::Classifier => writeln!(
                f,
                "model:      classifier -> logits [N,{}] ({} pooling{})",
                c.num_classes.unwrap_or(0),
                match c.pooling {
                    Pooling::MeanPatch => "mean-patch + fc_norm",
                    Pooling::Cls => "CLS + norm",
                },
                if c.rel_pos_bias { ", relative position bias" } else { "" }
            )?,
        }
        if c.kind == ModelKind::Features {
            writeln!(f, "classes:    none (linear-probe backbone; train heads with `panderm-tools probe`)")?;
        } else {
            writeln!(f, "classes:    {}", c.num_classes.unwrap_or(0))?;
        }
        if !self.ignored.is_empty() {
            let shown: Vec<&str> = self.ignored.iter().take(8).map(String::as_str).collect();
            writeln!(
                f,
                "ignored:    {} entries not part of the encoder: {}{}",
                self.ignored.len(),
                shown.join(", "),
                if self.ignored.len() > 8 { ", …" } else { "" }
            )?;
        }
        write!(f, "onnx:       {:.1} MB", self.onnx_bytes as f64 / 1e6)
    }
}

/// Reads, validates and converts `checkpoint`, writing the ONNX model to `output`.
pub fn convert_file(checkpoint: &Path, output: &Path, opts: &VitOptions) -> Result<ConvertReport> {
    let mut ck = Checkpoint::open(checkpoint)?;
    let weights = VitWeights::from_checkpoint(&mut ck, opts)?;
    let prov = Provenance {
        source_sha256: ck.sha256.clone(),
        source_file: checkpoint.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        source_layout: ck.layout.describe(),
    };
    let model = to_onnx(&weights, &prov);
    let config = weights.config.clone();
    drop(weights);
    let bytes = encode(&model);
    drop(model);
    panderm_edge::fsutil::write_atomically(output, &bytes)?;
    Ok(ConvertReport {
        container: ck.container,
        layout: ck.layout.describe(),
        source_sha256: ck.sha256,
        config,
        ignored: ck.ignored,
        onnx_bytes: bytes.len(),
    })
}
