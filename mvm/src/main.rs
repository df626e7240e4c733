//! mvm: the VM manager for VM0. Creates guest VMs on the Minos hypervisor from boot images
//! through `/dev/minos` (minos.ko), and lists, destroys, restarts and shuts them down.

mod backends;
mod block;
mod cli;
mod config;
mod console;
mod dev;
mod driver;
mod early;
mod guest_dtb;
mod image;
mod layout;
mod lifecycle;
mod log;
mod net;
mod prepare;
mod pty;
mod run;
mod signals;
mod size;
mod virtio;
mod virtqueue;

use std::time::Duration;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::dev::Minos;

fn main() {
    let cli = Cli::parse();
    if let Err(e) = dispatch(cli) {
        eprintln!("mvm: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => {
            let cfg = config::VmConfig::from_args(&cli.create)?;
            log::set_verbose(cfg.verbose);
            run::run(cfg)
        }
        Some(Command::List) => {
            let dev = Minos::open()?;
            print!("{}", lifecycle::table(&lifecycle::all(&dev)?));
            let m = dev.mem_info()?;
            print!("{}", lifecycle::pool_line(m.total, m.free));
            Ok(())
        }
        Some(Command::Destroy { vm }) => {
            let dev = Minos::open()?;
            let v = lifecycle::find(&lifecycle::all(&dev)?, &vm)?;
            lifecycle::destroy(&dev, &v)
        }
        Some(Command::Restart { vm }) => {
            let dev = Minos::open()?;
            let v = lifecycle::find(&lifecycle::all(&dev)?, &vm)?;
            lifecycle::restart(&v)
        }
        Some(Command::Shutdown { vm, timeout }) => {
            let dev = Minos::open()?;
            let v = lifecycle::find(&lifecycle::all(&dev)?, &vm)?;
            lifecycle::shutdown(&dev, &v, Duration::from_secs(timeout))
        }
    }
}
