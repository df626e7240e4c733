//! `mkimage env`: not implemented yet.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`mkimage env` is not implemented yet")
}
