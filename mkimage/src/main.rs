//! mkimage: builds what a board needs to boot the hypervisor.

mod board;
mod bundle;
mod config;
mod dtb;
mod env;
mod initramfs;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mkimage",
    version,
    about = "Build what a board needs to boot Minos"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a U-Boot environment image (uboot.env) from key=value lines
    Env(env::Args),
    /// Write a Raspberry Pi config.txt
    Config(config::Args),
    /// Patch a guest device tree blob
    Dtb(dtb::Args),
    /// Pack a directory into a reproducible newc cpio.gz initramfs
    Initramfs(initramfs::Args),
    /// Build a complete bootable SD card image for a board
    Bundle(bundle::Args),
}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| usage_error(e));
    let res = match cli.cmd {
        Cmd::Env(a) => env::run(a),
        Cmd::Config(a) => config::run(a),
        Cmd::Dtb(a) => dtb::run(a),
        Cmd::Initramfs(a) => initramfs::run(a),
        Cmd::Bundle(a) => bundle::run(a),
    };
    if let Err(e) = res {
        eprintln!("mkimage: {e:#}");
        std::process::exit(1);
    }
}

/// Prints a command-line error as one line (clap's own is three), keeping help and version
/// output as they are.
fn usage_error(e: clap::Error) -> ! {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    // The message runs up to the usage block; required-argument errors list them on lines
    // of their own.
    let message: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    eprintln!(
        "mkimage: {} (see `mkimage --help`)",
        message.join(" ").trim_start_matches("error: ")
    );
    std::process::exit(2);
}
