//! `panderm-tools synth` and `synth-images`: random-weight checkpoints in PanDerm's layouts, and
//! synthetic skin-like images with toy labels.

use std::path::PathBuf;
use std::time::Instant;

use clap::ValueEnum;
use panderm_tools::synth::images::write_set;
use panderm_tools::synth::{SynthLayout, SynthSpec, state_dict, write_checkpoint};

use crate::CmdResult;

/// `--layout`: the library's [`SynthLayout`] without its data (`ft` takes `--classes`).
#[derive(Clone, Copy, ValueEnum)]
enum Layout {
    /// Flat state dict with bare keys, like panderm_bb_*.pth (linear-probe backbone).
    Lp,
    /// Flat state dict with `encoder.` keys plus pretraining extras, like panderm_ll_*.pth.
    Ll,
    /// Fine-tuned checkpoint-best.pth: {'model', 'optimizer', 'epoch', 'scaler', 'args'}.
    Ft,
}

#[derive(clap::Args)]
pub struct SynthImagesArgs {
    /// Number of images.
    #[arg(long, default_value_t = 60)]
    count: usize,
    /// Image width.
    #[arg(long, default_value_t = 320)]
    width: u32,
    /// Image height.
    #[arg(long, default_value_t = 256)]
    height: u32,
    /// RNG seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(clap::Args)]
pub struct SynthArgs {
    /// Embedding width D (768 = PanDerm_Base, 1024 = PanDerm_Large).
    #[arg(long, default_value_t = 768)]
    embed_dim: usize,
    /// Number of transformer blocks (12 = Base, 24 = Large).
    #[arg(long, default_value_t = 12)]
    depth: usize,
    /// Attention heads (default D/64).
    #[arg(long)]
    heads: Option<usize>,
    /// Which released layout to imitate.
    #[arg(long, value_enum, default_value = "lp")]
    layout: Layout,
    /// Classes of the head (fine-tuned layout only).
    #[arg(long, default_value_t = 7)]
    classes: usize,
    /// RNG seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output .pth file.
    #[arg(short, long)]
    output: PathBuf,
}

pub fn synth_images(args: SynthImagesArgs) -> CmdResult {
    let SynthImagesArgs { count, width, height, seed, output } = args;
    let set = write_set(&output, count, (width, height), seed)?;
    println!("wrote {} images with multiclass.csv and binary.csv to {}", set.len(), output.display());
    Ok(())
}

pub fn synth(args: SynthArgs) -> CmdResult {
    let SynthArgs { embed_dim, depth, heads, layout, classes, seed, output } = args;
    if embed_dim == 0 || embed_dim % 4 != 0 || depth == 0 {
        anyhow::bail!("--embed-dim must be a positive multiple of 4 and --depth positive");
    }
    let num_heads = heads.unwrap_or(embed_dim / 64).max(1);
    if embed_dim % num_heads != 0 {
        anyhow::bail!("{num_heads} heads do not divide --embed-dim {embed_dim}");
    }
    let layout = match layout {
        Layout::Lp => SynthLayout::LinearProbe,
        Layout::Ll => SynthLayout::LargeRelease,
        Layout::Ft => SynthLayout::FineTuned { classes },
    };
    let t = Instant::now();
    let spec = SynthSpec { embed_dim, depth, num_heads, layout, seed };
    let tensors = state_dict(&spec);
    let params: usize = tensors.iter().map(|t| t.shape.iter().product::<usize>()).sum();
    write_checkpoint(&output, &tensors, layout)?;
    println!(
        "wrote {} ({} tensors, {:.1} M values, {:?}, D={embed_dim}, depth={depth}, heads={num_heads}) in {:.2} s",
        output.display(),
        tensors.len(),
        params as f64 / 1e6,
        layout,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
