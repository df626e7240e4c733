//! mkimage: builds what a board needs to boot the hypervisor.

mod board;
mod bundle;
mod config;
mod dtb;
mod env;
mod initramfs;

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
    let cli = Cli::parse();
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
