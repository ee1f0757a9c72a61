//! `panderm-tools convert`: a PanDerm `.pth` checkpoint to an ONNX model.

use std::path::PathBuf;
use std::time::Instant;

use panderm_tools::convert::convert_file;
use panderm_tools::convert::vit::{KindRequest, VitOptions};

use crate::CmdResult;

#[derive(clap::Args)]
pub struct ConvertArgs {
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
    kind: KindRequest,
}

pub fn run(args: ConvertArgs) -> CmdResult {
    let ConvertArgs { checkpoint, output, heads, kind } = args;
    let t = Instant::now();
    let report = convert_file(&checkpoint, &output, &VitOptions { num_heads: heads, kind })?;
    println!("{report}");
    println!("wrote:      {} in {:.2} s", output.display(), t.elapsed().as_secs_f64());
    Ok(())
}
