//! `panderm info` and `panderm verify`: describe a bundle or model, check a bundle's digests.

use std::path::PathBuf;
use std::process::ExitCode;

use panderm_edge::bundle::Bundle;

use crate::fail;

#[derive(clap::Args)]
pub struct InfoArgs {
    /// A bundle directory.
    #[arg(long, conflicts_with = "model", required_unless_present = "model")]
    bundle: Option<PathBuf>,
    /// An ONNX model.
    #[arg(long)]
    model: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The bundle directory.
    #[arg(long)]
    bundle: PathBuf,
}

pub fn info(args: InfoArgs) -> ExitCode {
    match (args.bundle, args.model) {
        (Some(b), _) => bundle_info(&b),
        (None, Some(m)) => crate::run_cmd::model_info(&m),
        (None, None) => fail("give --bundle DIR or --model FILE"),
    }
}

pub fn verify(args: VerifyArgs) -> ExitCode {
    verify_dir(&args.bundle)
}

fn bundle_info(dir: &std::path::Path) -> ExitCode {
    let b = match Bundle::open(dir) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let m = &b.manifest;
    println!(
        "bundle:    {} {}{}",
        m.bundle.name,
        m.bundle.version,
        if m.bundle.demo { "  (PIPELINE DEMO, not a medical model)" } else { "" }
    );
    if !m.bundle.description.is_empty() {
        println!("           {}", m.bundle.description);
    }
    println!("created:   {}", m.bundle.created_by);
    println!(
        "backbone:  {} ({} {}, {:?}, output `{}` [{}], source sha256 {})",
        m.backbone.file,
        m.backbone.variant,
        m.backbone.precision.name(),
        m.backbone.kind,
        m.backbone.output,
        m.backbone.dim,
        m.backbone.source_sha256
    );
    for h in &m.heads {
        let thr = h.threshold.map(|t| format!(", threshold {t}")).unwrap_or_default();
        println!("head:      {} -> {} ({:?}, labels {}{thr})", h.name, h.file, h.task, h.labels.join("/"));
    }
    let checks = b.check_files();
    let bad = checks.iter().filter(|c| !c.ok()).count();
    println!(
        "verified:  {}",
        if bad == 0 {
            format!("yes ({} files)", checks.len())
        } else {
            format!("NO: {bad} of {} files do not match", checks.len())
        }
    );
    ExitCode::SUCCESS
}

fn verify_dir(dir: &std::path::Path) -> ExitCode {
    let b = match Bundle::open(dir) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let mut bad = 0;
    for c in b.check_files() {
        let status = match &c.actual {
            Some(_) if c.ok() => "ok".to_owned(),
            Some(a) => format!("MISMATCH (file {a})"),
            None => "MISSING".to_owned(),
        };
        if !c.ok() {
            bad += 1;
        }
        println!("{:<40} {} {status}", c.file, c.expected);
    }
    if bad == 0 {
        println!("bundle verified");
        ExitCode::SUCCESS
    } else {
        fail(format!("{}: {bad} file(s) failed verification", dir.display()))
    }
}
