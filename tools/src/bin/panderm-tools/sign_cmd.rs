//! `panderm-tools keygen` and `sign`: a bundle-signing key pair, and a signature for an existing
//! bundle.

use std::path::PathBuf;

use panderm_tools::package::sign::{keygen as write_key_pair, public_path, sign_bundle};

use crate::CmdResult;

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// The secret key file to write (KEY.pub is written beside it); never overwritten.
    #[arg(short, long, value_name = "KEY")]
    output: PathBuf,
    /// A comment stored in KEY.pub (who owns the key).
    #[arg(long, default_value = "")]
    comment: String,
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// The bundle directory.
    #[arg(long)]
    bundle: PathBuf,
    /// The secret key file (`keygen` output).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
}

pub fn keygen(args: KeygenArgs) -> CmdResult {
    let id = write_key_pair(&args.output, &args.comment)?;
    println!(
        "wrote secret key {} (keep it private) and public key {} (key id {id})",
        args.output.display(),
        public_path(&args.output).display()
    );
    Ok(())
}

pub fn sign(args: SignArgs) -> CmdResult {
    let id = sign_bundle(&args.bundle, &args.key)?;
    println!("signed {} with key {id}", args.bundle.display());
    Ok(())
}
