//! `panderm boards`: list the built-in board profiles, or show and validate one.

use std::process::ExitCode;

use panderm_edge::board::{BUILTIN, Board};

use crate::fail;

#[derive(clap::Args)]
pub struct BoardsArgs {
    /// A built-in profile name or a path to a profile .toml to show and check.
    board: Option<String>,
}

pub fn boards(args: BoardsArgs) -> ExitCode {
    let Some(which) = args.board else {
        for (name, _) in BUILTIN {
            match Board::resolve(name) {
                Ok(b) => println!(
                    "{name:<10} {:<31} {} threads, {}x{}, {} {}  {}",
                    b.board.target,
                    b.cpu.threads,
                    b.display.width,
                    b.display.height,
                    b.model.precision.name(),
                    format!("{:?}", b.model.variant).to_lowercase(),
                    b.board.description
                ),
                Err(e) => return fail(e),
            }
        }
        return ExitCode::SUCCESS;
    };
    match Board::resolve(&which) {
        Ok(b) => {
            let w = b.working_set();
            println!("board:    {} ({})", b.board.name, b.board.description);
            println!("target:   {}", b.board.target);
            println!("cpu:      {} -> {} inference threads", b.cpu.description, b.cpu.threads);
            if let Some(q) = &b.cpu.qemu_cpu {
                println!("emulated: qemu -cpu {q} (CI's test runs for this board's cores)");
            }
            println!(
                "display:  {}x{} {:?} on {}",
                b.display.width,
                b.display.height,
                b.display.pixel_format,
                b.display.fbdev.display()
            );
            println!("model:    {:?} {}", b.model.variant, b.model.precision.name());
            println!("camera:   {}x{}", b.camera.width, b.camera.height);
            println!(
                "memory:   ~{} MiB needed (backbone {} + display {} + camera {}) of a {} MiB budget, {} MiB RAM",
                w.total_mib(),
                w.backbone_mib,
                w.display_mib,
                w.camera_mib,
                b.memory.runtime_budget_mib,
                b.memory.ram_mib
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
