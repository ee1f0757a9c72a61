//! `panderm-tools`: workstation commands for PanDerm Edge. Thin wrapper over `panderm_tools`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use panderm_tools::convert::convert_file;
use panderm_tools::synth::{SynthLayout, SynthSpec, state_dict, write_checkpoint};
use panderm_tools::vit::{KindRequest, VitOptions};

#[derive(Parser)]
#[command(
    name = "panderm-tools",
    version,
    about = "Workstation tools for PanDerm Edge: convert PanDerm checkpoints to ONNX, synthesize test checkpoints."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Classifier if the checkpoint has `fc_norm` + `head` (fine-tuned), else feature extractor.
    Auto,
    /// Feature extractor: CLS token after the final norm.
    Features,
    /// Classifier: pooled feature -> head -> logits.
    Classifier,
}

#[derive(Clone, Copy, ValueEnum)]
enum Layout {
    /// Flat state dict with bare keys, like panderm_bb_*.pth (linear-probe backbone).
    Lp,
    /// Flat state dict with `encoder.` keys plus pretraining extras, like panderm_ll_*.pth.
    Ll,
    /// Fine-tuned checkpoint-best.pth: {'model', 'optimizer', 'epoch', 'scaler', 'args'}.
    Ft,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a PanDerm .pth checkpoint to an ONNX model (feature extractor or classifier).
    Convert {
        /// The checkpoint: panderm_bb_*.pth, panderm_ll_*.pth or a fine-tuned checkpoint-best.pth.
        checkpoint: PathBuf,
        /// Output ONNX file.
        #[arg(short, long)]
        output: PathBuf,
        /// Number of attention heads (default: from the relative position tables, else D/64).
        #[arg(long)]
        heads: Option<usize>,
        /// What to build.
        #[arg(long, value_enum, default_value = "auto")]
        kind: Kind,
    },
    /// Write a random-weight checkpoint in PanDerm's exact layout (for benchmarks and tests).
    Synth {
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
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Command) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        Command::Convert { checkpoint, output, heads, kind } => {
            let kind = match kind {
                Kind::Auto => KindRequest::Auto,
                Kind::Features => KindRequest::Features,
                Kind::Classifier => KindRequest::Classifier,
            };
            let t = Instant::now();
            let report = convert_file(&checkpoint, &output, &VitOptions { num_heads: heads, kind })?;
            println!("{report}");
            println!("wrote:      {} in {:.2} s", output.display(), t.elapsed().as_secs_f64());
        }
        Command::Synth { embed_dim, depth, heads, layout, classes, seed, output } => {
            if embed_dim == 0 || embed_dim % 4 != 0 || depth == 0 {
                return Err("--embed-dim must be a positive multiple of 4 and --depth positive".into());
            }
            let num_heads = heads.unwrap_or(embed_dim / 64).max(1);
            if embed_dim % num_heads != 0 {
                return Err(format!("{num_heads} heads do not divide --embed-dim {embed_dim}").into());
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
        }
    }
    Ok(())
}
