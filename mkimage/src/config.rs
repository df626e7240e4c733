//! `mkimage config`: not implemented yet.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`mkimage config` is not implemented yet")
}
