//! `mkimage dtb`: guest (and hypervisor) DTB patching through the `dts` library.

pub mod for_board;

use std::path::PathBuf;

use anyhow::Context;
use dts::Tree;

use crate::env::{read_input, write_output};

#[derive(clap::Args)]
#[command(
    after_long_help = "Patch a device tree blob. With --board and --role, first build the \
    board's hypervisor DTB (the base DTB with the board's DTS and its /vms laid over it, /memory \
    set to the board's RAM) or VM0's DTB (VM0's RAM, vCPUs and command line, CPUs started by \
    PSCI, no GIC virtualization regions); the base is INPUT, or else the kernel's DTB the board \
    names, from $MINOS_KDTBS or the setup cache. Edits then run in this order: --delete, \
    --add-dts, --cpus, --memory, --bootargs, --initrd, --stdout-path, --virtio-mmio. \
    Everything else in the tree (phandles, /memreserve/ entries, property order) is kept. \
    Numbers are decimal or 0x-prefixed hex; sizes may end in K, M or G."
)]
pub struct Args {
    /// Input DTB (`-` reads standard input); optional with --board
    #[arg(required_unless_present = "board")]
    input: Option<PathBuf>,
    /// Start from this board's hypervisor or VM0 DTB (see --role)
    #[arg(long, requires = "role")]
    board: Option<String>,
    /// Which of the board's DTBs to build
    #[arg(long, value_enum, requires = "board")]
    role: Option<for_board::Role>,
    /// Output DTB (`-` writes standard output)
    #[arg(short, long)]
    output: PathBuf,
    /// Keep only the first N CPU nodes (and drop cpu-map, interrupt-affinity and cooling
    /// entries of the others)
    #[arg(long, value_name = "N")]
    cpus: Option<usize>,
    /// RAM range for /memory; repeat for several ranges (replaces all memory nodes)
    #[arg(long, value_name = "BASE,SIZE", value_parser = parse_range)]
    memory: Vec<(u64, u64)>,
    /// Kernel command line (/chosen/bootargs)
    #[arg(long, value_name = "S")]
    bootargs: Option<String>,
    /// Initrd location (/chosen/linux,initrd-start and -end; END is exclusive)
    #[arg(long, value_name = "START,END", value_parser = parse_pair)]
    initrd: Option<(u64, u64)>,
    /// /chosen/stdout-path
    #[arg(long, value_name = "PATH")]
    stdout_path: Option<String>,
    /// Add a virtio,mmio node (0x200 bytes of registers; IRQ is the GIC interrupt ID, an SPI)
    #[arg(long, value_name = "ADDR,IRQ", value_parser = parse_pair)]
    virtio_mmio: Vec<(u64, u64)>,
    /// Delete a node, or a property when PATH names one (e.g. /chosen/kaslr-seed)
    #[arg(long, value_name = "PATH")]
    delete: Vec<String>,
    /// Lay a .dts fragment over the tree with dtc (like a second `/ { };`; labels and
    /// `&{/path}` references to the tree's nodes work)
    #[arg(long, value_name = "FILE")]
    add_dts: Vec<PathBuf>,
}

/// Parses `0x..` hex or decimal, with an optional K/M/G suffix (binary units).
pub fn parse_num(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.as_bytes().last() {
        Some(b'K' | b'k') => (&t[..t.len() - 1], 10),
        Some(b'M' | b'm') => (&t[..t.len() - 1], 20),
        Some(b'G' | b'g') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(h) => u64::from_str_radix(h, 16),
        None => digits.parse(),
    }
    .map_err(|_| format!("`{s}` is not a number"))?;
    v.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

fn parse_pair(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}`: expected two numbers separated by a comma"))?;
    Ok((parse_num(a)?, parse_num(b)?))
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (base, size) = parse_pair(s)?;
    if size == 0 || base.checked_add(size).is_none() {
        return Err(format!("`{s}`: empty or wrapping range"));
    }
    Ok((base, size))
}

/// Deletes the node at `path`, or else the property its last component names.
pub fn delete(tree: &mut Tree, path: &str) -> Result<(), dts::DtsError> {
    match tree.delete_node(path) {
        Ok(_) => Ok(()),
        Err(node_err) => {
            let (parent, prop) = path.rsplit_once('/').ok_or(node_err)?;
            let parent = if parent.is_empty() { "/" } else { parent };
            tree.delete_property(parent, prop)
                .map_err(|_| dts::DtsError::Invalid(format!("no node or property {path}")))
        }
    }
}

/// Applies the edits `args` asks for, in the documented order.
fn apply(tree: &mut Tree, args: &Args) -> anyhow::Result<()> {
    for p in &args.delete {
        delete(tree, p)?;
    }
    for f in &args.add_dts {
        *tree = dts::dtc::overlay_file(tree, f)?;
    }
    if let Some(n) = args.cpus {
        tree.trim_cpus(n)?;
    }
    if !args.memory.is_empty() {
        tree.set_memory(&args.memory)?;
    }
    if let Some(b) = &args.bootargs {
        tree.set_bootargs(b)?;
    }
    if let Some((s, e)) = args.initrd {
        tree.set_initrd(s, e)?;
    }
    if let Some(p) = &args.stdout_path {
        tree.set_stdout_path(p)?;
    }
    for &(addr, irq) in &args.virtio_mmio {
        let irq = u32::try_from(irq).context("virtio-mmio IRQ too large")?;
        tree.add_virtio_mmio(addr, irq)?;
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let blob = args.input.as_deref().map(read_input).transpose()?;
    let in_context = |e: anyhow::Error| match &args.input {
        Some(p) => e.context(p.display().to_string()),
        None => e,
    };
    let mut tree = match (&args.board, args.role) {
        (Some(b), Some(role)) => {
            let board = crate::board::Board::load(b)?;
            // The initrd goes in with the other edits below.
            for_board::build(&board, role, blob.as_deref(), None).map_err(in_context)?
        }
        _ => {
            let blob = blob.context("give an input DTB")?;
            Tree::from_dtb(&blob).map_err(|e| in_context(e.into()))?
        }
    };
    apply(&mut tree, &args)?;
    write_output(&args.output, &tree.to_dtb()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_num("0x4000"), Ok(0x4000));
        assert_eq!(parse_num("512M"), Ok(512 << 20));
        assert_eq!(parse_num("0x10M"), Ok(16 << 20));
        assert_eq!(parse_num("10"), Ok(10));
        assert!(parse_num("0x").is_err() && parse_num("1T").is_err());
        assert!(parse_num("0xffffffffffffffffG").is_err());
        assert_eq!(parse_pair("0x40000000,1G"), Ok((0x4000_0000, 1 << 30)));
        assert!(parse_pair("1").is_err());
        assert!(parse_range("0,0").is_err());
    }
}
