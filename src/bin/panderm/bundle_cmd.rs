//! `panderm info` and `panderm verify`: describe a bundle or model, check a bundle's digests.

use std::path::PathBuf;
use std::process::ExitCode;

use panderm_edge::board::Board;
use panderm_edge::bundle::Bundle;
use panderm_edge::signing::Trust;

use crate::{TrustArgs, fail};

#[derive(clap::Args)]
pub struct InfoArgs {
    /// A bundle directory.
    #[arg(long, conflicts_with = "model", required_unless_present = "model")]
    bundle: Option<PathBuf>,
    /// An ONNX model.
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    trust: TrustArgs,
    /// Print the description as JSON.
    #[arg(long)]
    json: bool,
    /// With --model: the engine to load it with (`--backend ort` shows which execution provider
    /// takes which nodes).
    #[command(flatten)]
    engine: crate::EngineArgs,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The bundle directory.
    #[arg(long)]
    bundle: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// Board profile whose `trusted_keys` apply (name or path).
    #[arg(long)]
    board: Option<String>,
}

pub fn info(args: InfoArgs) -> ExitCode {
    match (args.bundle, args.model) {
        (Some(_), _) if args.engine.backend.is_some() || args.engine.ort_library.is_some() => fail(
            "--backend and --ort-library describe a --model; for a bundle's engine run `panderm classify --backend ...`",
        ),
        (Some(b), _) => match args.trust.trust(None) {
            Ok(trust) => bundle_info(&b, &trust, args.json),
            Err(e) => fail(e),
        },
        (None, Some(m)) => match args.engine.backend(1, None) {
            Ok(backend) => crate::run_cmd::model_info(&m, &backend),
            Err(e) => fail(e),
        },
        (None, None) => fail("give --bundle DIR or --model FILE"),
    }
}

pub fn verify(args: VerifyArgs) -> ExitCode {
    let board = match args.board.as_deref().map(Board::resolve).transpose() {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    match args.trust.trust(board.as_ref()) {
        Ok(trust) => verify_dir(&args.bundle, &trust),
        Err(e) => fail(e),
    }
}

fn bundle_info(dir: &std::path::Path, trust: &Trust, json: bool) -> ExitCode {
    let b = match Bundle::open_with(dir, trust) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let m = &b.manifest;
    let checks = b.check_files();
    let bad = checks.iter().filter(|c| !c.ok()).count();
    if json {
        let files: Vec<_> =
            checks.iter().map(|c| serde_json::json!({"file": c.file, "ok": c.ok(), "problem": c.problem})).collect();
        let v = serde_json::json!({
            "bundle": {"name": m.bundle.name, "version": m.bundle.version, "demo": m.bundle.demo},
            "manifest_sha256": b.manifest_sha256,
            "signature": b.signature,
            "signed": b.signature.key_id().is_some(),
            "backbone": m.backbone,
            "heads": m.heads.iter().map(|h| &h.name).collect::<Vec<_>>(),
            "verified": bad == 0,
            "files": files,
        });
        println!("{v}");
        return ExitCode::SUCCESS;
    }
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
    println!("signature: {}", b.signature.describe());
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

fn verify_dir(dir: &std::path::Path, trust: &Trust) -> ExitCode {
    let b = match Bundle::open_with(dir, trust) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    println!("signature: {}", b.signature.describe());
    let mut bad = 0;
    let mut first_problem = None;
    for c in b.check_files() {
        let status = match (&c.actual, &c.problem) {
            (Some(_), _) if c.ok() => "ok".to_owned(),
            (Some(a), _) => format!("MISMATCH (file {a})"),
            (None, Some(p)) => format!("REFUSED ({p})"),
            (None, None) => "MISSING".to_owned(),
        };
        if !c.ok() {
            bad += 1;
            first_problem.get_or_insert_with(|| format!("{}: {status}", c.file));
        }
        println!("{:<40} {} {status}", c.file, c.expected);
    }
    if bad == 0 {
        // The digests match; now check that every model parses as what the manifest says, so
        // that `verify` passing means `classify` will load (a crafted archive with a matching
        // digest is refused here, not at the first patient).
        if let Err(e) = panderm_edge::classify::Classifier::load_with(dir, trust) {
            return fail(format!("{}: the files match their digests but do not load: {e}", dir.display()));
        }
        println!("bundle verified");
        ExitCode::SUCCESS
    } else {
        let first = first_problem.unwrap_or_default();
        fail(format!("{}: {bad} file(s) failed verification (first: {first})", dir.display()))
    }
}
