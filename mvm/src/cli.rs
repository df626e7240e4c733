//! The command line: Minos' mvm options (same letters, same meanings) plus the lifecycle
//! subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "mvm",
    version,
    about = "Create and manage guest VMs on the Minos hypervisor (runs in VM0, needs minos.ko)",
    args_conflicts_with_subcommands = true,
    // -V is Minos' virtio option: the version is --version only.
    disable_version_flag = true,
    after_help = "Example: mvm -c 2 -m 84M -i boot.img -n elinux -t linux -b 64 -v -d \
                  -C \"console=hvc0\" -V virtio_console,@pty:"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub create: CreateArgs,
    /// Print version
    #[arg(long, action = clap::ArgAction::Version)]
    version: Option<bool>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the guest VMs
    List,
    /// Destroy a VM now (its mvm exits and its memory returns to the hypervisor)
    Destroy { vm: String },
    /// Restart a VM: its mvm reloads the images and starts it again
    Restart { vm: String },
    /// Ask the guest to power off; stop it if it has not after the timeout
    Shutdown {
        vm: String,
        /// Seconds to wait for the guest before stopping it
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

/// Creating a VM: Minos' options.
#[derive(Args, Debug, Default)]
pub struct CreateArgs {
    /// Number of vCPUs of the VM
    #[arg(
        short = 'c',
        long = "vcpus",
        visible_alias = "vcpu_number",
        value_name = "N"
    )]
    pub vcpus: Option<u32>,
    /// Memory size with an M or G suffix, a multiple of 2M (e.g. 84M)
    #[arg(
        short = 'm',
        long = "mem",
        visible_alias = "mem_size",
        value_name = "SIZE"
    )]
    pub mem: Option<String>,
    /// The Android boot.img (kernel, ramdisk, DTB as second stage) to boot
    #[arg(short = 'i', long = "image", value_name = "BOOT.IMG")]
    pub image: Option<PathBuf>,
    /// Guest memory base (hex) when not booting a boot.img (default 0x80000000)
    #[arg(
        short = 's',
        long = "mem-base",
        visible_alias = "mem_base",
        value_name = "ADDR"
    )]
    pub mem_base: Option<String>,
    /// Name of the VM
    #[arg(short = 'n', long = "name")]
    pub name: Option<String>,
    /// OS type of the VM (linux or other)
    #[arg(
        short = 't',
        long = "os-type",
        visible_alias = "os_type",
        value_name = "TYPE"
    )]
    pub os_type: Option<String>,
    /// 32 or 64 bit guest
    #[arg(short = 'b', long = "bit", value_name = "32|64")]
    pub bits: Option<u32>,
    /// Do not load the ramdisk
    #[arg(short = 'r', long = "no-ramdisk", visible_alias = "no_ramdisk")]
    pub no_ramdisk: bool,
    /// Verbose: print debug information
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Run as a daemon once the VM is started
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,
    /// Create a platform bus device (repeatable)
    #[arg(short = 'D', long = "platform-device", value_name = "DEVICE")]
    pub platform: Vec<String>,
    /// Create a virtio device: virtio_console,@pty: | virtio_blk,FILE | virtio_net,TAP[,mac=MAC] (repeatable)
    #[arg(short = 'V', long = "virtio", value_name = "TYPE,ARG")]
    pub virtio: Vec<String>,
    /// Kernel command line, added to the boot image's
    #[arg(short = 'C', long = "cmdline", value_name = "CMDLINE")]
    pub cmdline: Option<String>,
    /// Kernel image file (instead of a boot.img; loaded at membase + 0x80000)
    #[arg(short = 'K', long = "kernel", value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Second image file, the DTB (instead of a boot.img; loaded at membase + 0x3e00000)
    #[arg(short = 'S', long = "second", value_name = "FILE")]
    pub second: Option<PathBuf>,
    /// Ramdisk file (instead of a boot.img; loaded at membase + 0x3000000)
    #[arg(short = 'R', long = "ramdisk", value_name = "FILE")]
    pub ramdisk: Option<PathBuf>,
    /// Give the guest a GICv2
    #[arg(long, group = "gic")]
    pub gicv2: bool,
    /// Give the guest a GICv3 (the default)
    #[arg(long, group = "gic")]
    pub gicv3: bool,
    /// Give the guest a GICv4 (not supported)
    #[arg(long, group = "gic")]
    pub gicv4: bool,
    /// Show the guest kernel's early output (earlycon on a PL011 the hypervisor emulates) on
    /// the first virtio console's pty, ahead of its own console; needs -V virtio_console,@pty:
    #[arg(long)]
    pub earlyprintk: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
