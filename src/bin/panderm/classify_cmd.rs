//! `panderm classify`: a bundle on images; the backbone runs once per image, every head on its
//! feature.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use panderm_edge::audit_log::{AuditLog, AuditLogConfig};
use panderm_edge::board::Board;
use panderm_edge::classify::{Classifier, ClassifyReport};
use panderm_edge::device_view::{ScreenData, audit_record};
use panderm_edge::screen::{self, Framebuffer};

use crate::{BoardArgs, fail};

#[derive(clap::Args)]
pub struct ClassifyArgs {
    /// The bundle directory (manifest.toml + model files).
    #[arg(long)]
    bundle: PathBuf,
    /// Print one JSON report per image and line.
    #[arg(long)]
    json: bool,
    /// How many classes to report per head.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    #[command(flatten)]
    board: BoardArgs,
    /// Run the model even when the image-quality gate fails (the failures are still reported).
    /// For re-evaluating research datasets with small or synthetic images; never for patients.
    #[arg(long)]
    no_quality_gate: bool,
    /// Draw the result screen into this PNG (one image only).
    #[arg(long)]
    screen: Option<PathBuf>,
    /// Screen size for --screen, WxH (default: the board's display, else 480x320).
    #[arg(long)]
    screen_size: Option<String>,
    /// Draw the result screen on a Linux framebuffer (e.g. /dev/fb0), at its own size and format.
    #[arg(long)]
    fbdev: Option<PathBuf>,
    /// Append one JSON line per result to this audit log (fsynced, rotated by size; check it with
    /// `panderm log verify`). Default: $PANDERM_AUDIT_LOG when set.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Images (JPEG, PNG, BMP, TIFF, WebP).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn classify(args: ClassifyArgs) -> ExitCode {
    let board = match args.board.apply() {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    if (args.screen.is_some() || args.fbdev.is_some()) && args.images.len() != 1 {
        return fail("--screen and --fbdev show one result: give exactly one image");
    }
    let screen_size = match screen_size(args.screen_size.as_deref(), board.as_ref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let audit_path = args.audit_log.clone().or_else(|| std::env::var_os("PANDERM_AUDIT_LOG").map(PathBuf::from));
    if let Some(dir) = audit_path.as_deref().and_then(Path::parent).filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return fail(format!("{}: {e}", dir.display()));
    }
    let audit = match audit_path.as_deref().map(|p| AuditLog::open(p, AuditLogConfig::default())).transpose() {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let mut classifier = match Classifier::load(&args.bundle) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    classifier.set_quality_gate_blocks(!args.no_quality_gate);
    if let Some(b) = &board {
        let spec = &classifier.bundle().manifest.backbone;
        match b.check_backbone(&spec.variant, spec.precision) {
            Ok(Some(warning)) => eprintln!("warning: {warning}"),
            Ok(None) => {}
            Err(e) => return fail(e),
        }
    }
    let mut failures = 0usize;
    for path in &args.images {
        match classifier.classify(path, args.top_k) {
            Ok(report) => {
                if args.json {
                    println!("{}", serde_json::to_string(&report).expect("reports always serialise"));
                } else {
                    print!("{}", report.human());
                }
                if let Some(log) = &audit {
                    let record =
                        audit_record(&report, classifier.bundle(), board.as_ref().map(|b| b.board.name.as_str()));
                    if let Err(e) = log.append(&record) {
                        eprintln!("error: audit log: {e}");
                        failures += 1;
                    }
                }
                if let Err(e) = show(&report, args.screen.as_deref(), screen_size, args.fbdev.as_deref()) {
                    eprintln!("error: {e}");
                    failures += 1;
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failures += 1;
            }
        }
    }
    if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The --screen size: explicit, else the board's display, else 480x320.
fn screen_size(arg: Option<&str>, board: Option<&Board>) -> panderm_edge::Result<(u32, u32)> {
    match (arg, board) {
        (Some(s), _) => screen::parse_size(s),
        (None, Some(b)) => Ok((b.display.width, b.display.height)),
        (None, None) => Ok((480, 320)),
    }
}

/// Draws the result screen into a PNG and/or onto a framebuffer.
fn show(
    report: &ClassifyReport<'_>,
    png: Option<&Path>,
    size: (u32, u32),
    fbdev: Option<&Path>,
) -> panderm_edge::Result<()> {
    if png.is_none() && fbdev.is_none() {
        return Ok(());
    }
    let data = ScreenData::new(report);
    let view = data.screen();
    if let Some(path) = png {
        screen::render_to_buffer(&view, size.0, size.1)?.save_png(path)?;
    }
    if let Some(path) = fbdev {
        Framebuffer::open(path)?.show(&view)?;
    }
    Ok(())
}
