//! `panderm classify`: a bundle on images; the backbone runs once per image, every head on its
//! feature.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use panderm_edge::Error;
use panderm_edge::audit_log::{AuditLog, AuditLogConfig};
use panderm_edge::board::Board;
use panderm_edge::classify::{Classifier, ClassifyReport, EXIT_CANNOT_ASSESS, EXIT_MODEL_ERROR, Status};
use panderm_edge::device_view::{ScreenData, audit_error_record, audit_record};
use panderm_edge::frame::RawSpec;
use panderm_edge::preprocess::read_image_file;
use panderm_edge::preprocess::tta::Tta;
use panderm_edge::screen::{self, Framebuffer};

use crate::{BoardArgs, TrustArgs, fail, load_classifier};

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
    #[command(flatten)]
    trust: TrustArgs,
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
    /// Read every image as a raw camera frame of this geometry, e.g. `1920x1080:nv12` (formats:
    /// rgb8, rgba8, bgr8, bgra8, nv12 in BT.601 full range). A file holds the packed frame, or
    /// every row padded to one stride. The report's image_sha256 is then the SHA-256 of the
    /// frame's packed RGB8 pixels.
    #[arg(long, value_name = "WIDTHxHEIGHT:FORMAT", value_parser = raw_spec)]
    raw: Option<RawSpec>,
    /// PanDerm's test-time augmentation: N random augmentations per image (Resize 246, crop 224,
    /// flips, p=0.3 rotation, p=0.3 colour jitter), the heads' outputs combined as
    /// softmax(mean logits). 0 or absent: no TTA. See docs/evaluate.md.
    #[arg(long, value_name = "N", default_value_t = 0)]
    tta: usize,
    /// The seed of --tta's random augmentations (each image's generator is keyed by this seed and
    /// the image's SHA-256, so a run repeats exactly).
    #[arg(long, value_name = "S", default_value_t = panderm_edge::preprocess::tta::DEFAULT_SEED, requires = "tta")]
    seed: u64,
    /// Images (JPEG, PNG, BMP, TIFF, WebP), or raw frames with --raw.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

fn raw_spec(s: &str) -> Result<RawSpec, String> {
    s.parse().map_err(|e: Error| e.message().to_owned())
}

/// Exit codes: 0 every image assessed; 4 ([`EXIT_CANNOT_ASSESS`]) some image got "cannot
/// assess"; 1 an error (unreadable image, refused bundle, audit log not writable); 5
/// ([`EXIT_MODEL_ERROR`]) the model produced unusable numbers — the worst outcome wins.
pub fn classify(args: ClassifyArgs) -> ExitCode {
    if (args.screen.is_some() || args.fbdev.is_some()) && args.images.len() != 1 {
        return fail("--screen and --fbdev show one result: give exactly one image");
    }
    let audit_path = args.audit_log.clone().or_else(|| std::env::var_os("PANDERM_AUDIT_LOG").map(PathBuf::from));
    let audit = match open_audit(audit_path.as_deref()) {
        Ok(a) => a,
        Err(e) => return fail(format!("{e:#}")),
    };
    let board_name = args.board.board.clone();
    let (mut classifier, board) = match load_classifier(&args.bundle, &args.board, &args.trust) {
        Ok(c) => c,
        Err(e) => {
            // A refused bundle is evidence too: log it before saying so.
            if let Some(log) = &audit {
                let record = audit_error_record("bundle-refused", None, None, &args.bundle, board_name.as_deref(), &e);
                if let Err(le) = log.append(&record) {
                    eprintln!("error: audit log: {le}");
                }
            }
            return fail(e);
        }
    };
    let screen_size = match screen_size(args.screen_size.as_deref(), board.as_ref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    classifier.set_quality_gate_blocks(!args.no_quality_gate);
    if args.tta > 0
        && let Err(e) = Tta::new(args.tta, args.seed).and_then(|t| classifier.set_tta(Some(t)))
    {
        return fail(e);
    }
    let board_name = board.as_ref().map(|b| b.board.name.as_str());
    let mut outcome = Outcome::default();
    for path in &args.images {
        let result = match args.raw {
            Some(spec) => classify_raw(&classifier, path, spec, args.top_k),
            None => classifier.classify(path, args.top_k),
        };
        match result {
            Ok(report) => {
                // The record is on disk before anyone sees the result; a result that could not
                // be logged is not shown.
                if let Some(log) = &audit
                    && let Err(e) = log.append(&audit_record(&report, classifier.bundle(), board_name))
                {
                    eprintln!("error: audit log: {e}; the result for {} is withheld", path.display());
                    outcome.failed();
                    continue;
                }
                outcome.status(report.status);
                if args.json {
                    println!("{}", serde_json::to_string(&report).expect("reports always serialise"));
                } else {
                    print!("{}", report.human());
                }
                if let Err(e) = show(&report, args.screen.as_deref(), screen_size, args.fbdev.as_deref()) {
                    eprintln!("error: {e}");
                    outcome.failed();
                }
            }
            Err(e) => {
                if let Some(log) = &audit {
                    let image = path.to_string_lossy();
                    let record = audit_error_record(
                        "classify-error",
                        Some(&image),
                        Some(classifier.bundle()),
                        &args.bundle,
                        board_name,
                        &e,
                    );
                    if let Err(le) = log.append(&record) {
                        eprintln!("error: audit log: {le}");
                    }
                }
                if args.json {
                    let line = serde_json::json!({
                        "image": path.to_string_lossy(),
                        "status": "error",
                        "error": {"kind": e.kind().as_str(), "message": e.message()},
                    });
                    println!("{line}");
                }
                eprintln!("error: {e}");
                outcome.failed();
            }
        }
    }
    outcome.exit_code()
}

/// Opens the audit log (creating its folder) when one is configured.
fn open_audit(path: Option<&Path>) -> anyhow::Result<Option<AuditLog>> {
    let Some(path) = path else { return Ok(None) };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the audit log's folder {}", dir.display()))?;
    }
    Ok(Some(AuditLog::open(path, AuditLogConfig::default())?))
}

/// A raw camera dump: read like an image file (a regular file within the bundle's decode
/// limits), converted in memory, classified like a decoded image and named by its path.
fn classify_raw<'c>(
    classifier: &'c Classifier,
    path: &Path,
    spec: RawSpec,
    k: usize,
) -> panderm_edge::Result<ClassifyReport<'c>> {
    let bytes = read_image_file(path, classifier.decode_limits())?;
    let frame = spec.frame(&bytes).map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))?;
    classifier.classify_frame_as(&frame, &path.to_string_lossy(), k)
}

/// The worst outcome over all images.
#[derive(Default)]
struct Outcome {
    model_error: bool,
    failed: bool,
    cannot_assess: bool,
}

impl Outcome {
    fn status(&mut self, s: Status) {
        match s {
            Status::Assessed => {}
            Status::CannotAssess => self.cannot_assess = true,
            Status::ModelError => self.model_error = true,
        }
    }

    fn failed(&mut self) {
        self.failed = true;
    }

    fn exit_code(&self) -> ExitCode {
        if self.model_error {
            ExitCode::from(EXIT_MODEL_ERROR)
        } else if self.failed {
            ExitCode::FAILURE
        } else if self.cannot_assess {
            ExitCode::from(EXIT_CANNOT_ASSESS)
        } else {
            ExitCode::SUCCESS
        }
    }
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
