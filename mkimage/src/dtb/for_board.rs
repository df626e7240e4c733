//! The hypervisor's and VM0's DTBs for a board, from its `board.toml` and DTS.
//!
//! hyp: the base DTB (the kernel's upstream DTB, or QEMU's own dump) with the board's
//! hypervisor DTS laid over it by dtc (so the DTS may use labels and `&{/path}` references to
//! base nodes) and `/memory` set to the board's RAM.
//! vm0: the base DTB with `/memory` set to VM0's RAM, its command line, its vCPU count, CPUs
//! started through PSCI (HVC), no GIC virtualization regions and, when given, the initrd.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use dts::Tree;

use crate::board::{Board, IrqChip};

/// Which DTB to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The hypervisor's DTB (with /vms)
    Hyp,
    /// VM0's DTB
    Vm0,
}

/// Where the kernel package's DTBs are: `$MINOS_KDTBS`, else `$MINOS_CACHE/kernel/dtbs`, else
/// the cache `scripts/setup` fills.
pub fn kdtbs_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MINOS_KDTBS") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("MINOS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/minos-rs"));
    cache.join("kernel/dtbs")
}

/// The base DTB `role` starts from, when the board names one in the kernel package.
pub fn upstream_path(board: &Board, role: Role) -> Option<PathBuf> {
    let rel = match role {
        Role::Hyp => board.hypervisor.upstream_dtb.as_ref(),
        Role::Vm0 => board.vm0.upstream_dtb.as_ref(),
    }?;
    Some(kdtbs_dir().join(rel))
}

fn load_base(board: &Board, role: Role, base: Option<&[u8]>) -> anyhow::Result<Tree> {
    if let Some(b) = base {
        return Ok(Tree::from_dtb(b)?);
    }
    if let (Role::Vm0, Some(dts)) = (role, &board.vm0.dts) {
        return Ok(dts::dtc::compile_file(&board.dir.join(dts))?);
    }
    let Some(path) = upstream_path(board, role) else {
        bail!(
            "board `{}` builds on QEMU's own DTB: dump it (qemu-system-aarch64 -M ...,dumpdtb=FILE) \
             and give it as the input",
            board.name
        );
    };
    let blob = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {} (run scripts/setup, or set MINOS_KDTBS)",
            path.display()
        )
    })?;
    Tree::from_dtb(&blob).with_context(|| path.display().to_string())
}

/// End of the highest RAM range in the tree's memory nodes.
fn ram_end(t: &Tree) -> Option<u64> {
    let (ac, sc) = t.root.cells();
    let mut end = None;
    for n in &t.root.children {
        if n.prop_str("device_type") != Some("memory") {
            continue;
        }
        let cells = n.prop_cells("reg")?;
        let per = (ac + sc) as usize;
        if per == 0 || cells.len() % per != 0 {
            return None;
        }
        for r in cells.chunks_exact(per) {
            let num = |c: &[u32]| c.iter().fold(0u64, |a, &x| (a << 32) | u64::from(x));
            let e = num(&r[..ac as usize]).checked_add(num(&r[ac as usize..]))?;
            end = end.max(Some(e));
        }
    }
    end
}

/// Fills `@NAME@` placeholders (the convention of the QEMU boards' hypervisor DTS).
fn fill_placeholders(text: &str, vars: &BTreeMap<&str, String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('@') {
        let after = &rest[i + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('@') {
            let name = &after[..name_len];
            let v = vars
                .get(name)
                .with_context(|| format!("unknown placeholder @{name}@"))?;
            out.push_str(&rest[..i]);
            out.push_str(v);
            rest = &after[name_len + 1..];
        } else {
            out.push_str(&rest[..=i]);
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// VM0's RAM size: board.toml's, or on QEMU boards (whose RAM is whatever `-m` said) from
/// VM0's base to the end of the RAM in QEMU's DTB.
fn vm0_size(board: &Board, base: &Tree, from_qemu: bool) -> anyhow::Result<u64> {
    if !from_qemu {
        return Ok(board.vm0.size);
    }
    let end = ram_end(base).context("the base DTB has no usable /memory")?;
    end.checked_sub(board.vm0.base)
        .filter(|&s| s > 0)
        .with_context(|| {
            format!(
                "RAM ends at {end:#x}, below VM0's base {:#x}",
                board.vm0.base
            )
        })
}

/// The hypervisor DTS of `board` with its placeholders filled, laid over `base` by dtc.
fn overlay_hyp_dts(board: &Board, base: &Tree) -> anyhow::Result<Tree> {
    let path = board.hyp_dts_path();
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let vm0_size = vm0_size(board, base, board.hypervisor.qemu_dtb)?;
    let vars = BTreeMap::from([
        ("VCPUS", board.vm0.vcpus.to_string()),
        (
            "AFFINITY",
            (0..board.vm0.vcpus)
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        ("VM0_MEM_SIZE", format!("{vm0_size:#x}")),
    ]);
    let src = fill_placeholders(&text, &vars).with_context(|| path.display().to_string())?;
    Ok(dts::dtc::overlay_source(base, &src, &path, path.parent())?)
}

/// The `compatible` strings that identify each interrupt controller kind.
fn irqchip_compatibles(chip: IrqChip) -> &'static [&'static str] {
    match chip {
        IrqChip::Gicv3 => &["arm,gic-v3"],
        IrqChip::Gicv2 => &[
            "arm,cortex-a15-gic",
            "arm,cortex-a7-gic",
            "arm,gic-400",
            "arm,cortex-a9-gic",
        ],
        IrqChip::Bcm2836 => &["brcm,bcm2836-l1-intc"],
    }
}

/// Refuses a base DTB whose interrupt controller is not the board's (say, a GICv2 dump of
/// QEMU given for the GICv3 board).
fn check_irqchip(board: &Board, t: &Tree) -> anyhow::Result<()> {
    let want = irqchip_compatibles(board.irqchip);
    let mut found = false;
    t.root.walk(&mut |n| {
        if n.prop("interrupt-controller").is_some() {
            if let Some(p) = n.prop("compatible") {
                found |= p
                    .value
                    .split(|&b| b == 0)
                    .any(|c| want.iter().any(|w| c == w.as_bytes()));
            }
        }
    });
    if !found {
        bail!(
            "board `{}` has a {} interrupt controller, but the base DTB has none",
            board.name,
            board.irqchip
        );
    }
    Ok(())
}

/// Builds the `role` DTB of `board` from `base` (or the board's upstream DTB).
pub fn build(
    board: &Board,
    role: Role,
    base: Option<&[u8]>,
    initrd: Option<(u64, u64)>,
) -> anyhow::Result<Tree> {
    let mut t = load_base(board, role, base)?;
    check_irqchip(board, &t)?;
    match role {
        Role::Hyp => {
            t = overlay_hyp_dts(board, &t)?;
            if !board.hypervisor.qemu_dtb {
                t.set_memory(&[(board.memory.base, board.memory.size)])?;
            }
        }
        Role::Vm0 => {
            let cpus = {
                let mut n = 0usize;
                if let Ok(c) = t.node("/cpus") {
                    n = c
                        .children
                        .iter()
                        .filter(|c| c.prop_str("device_type") == Some("cpu"))
                        .count();
                }
                n
            };
            if (board.vm0.vcpus as usize) < cpus {
                t.trim_cpus(board.vm0.vcpus as usize)?;
            }
            let size = vm0_size(board, &t, board.vm0.qemu_dtb)?;
            t.set_memory(&[(board.vm0.base, size)])?;
            t.set_bootargs(&board.vm0.cmdline)?;
            // VM0 runs at EL1: CPUs start through the hypervisor's PSCI, and the GIC's
            // virtualization interface is the hypervisor's.
            t.use_psci("hvc")?;
            t.strip_gic_virtualization()?;
            for seed in ["kaslr-seed", "rng-seed"] {
                // QEMU's random seeds would make the DTB differ on every dump.
                if let Ok(c) = t.node_mut("/chosen") {
                    c.remove(seed);
                }
            }
            if let Some((s, e)) = initrd {
                t.set_initrd(s, e)?;
            }
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boards() -> Vec<Board> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards");
        crate::board::list_in(&dir)
            .iter()
            .map(|n| Board::load_from(&dir, n).unwrap())
            .collect()
    }

    fn cells64(v: &[u32]) -> Vec<u64> {
        v.chunks_exact(2)
            .map(|c| (u64::from(c[0]) << 32) | u64::from(c[1]))
            .collect()
    }

    /// The hypervisor DTS's /vms/vm0 must say what board.toml says.
    #[test]
    fn hyp_dts_vms_agree_with_board_toml() {
        let mut checked = 0;
        for b in boards() {
            // A minimal base: the fragment is what is checked.
            let mut base = Tree::default();
            base.root.set_u32("#address-cells", 2);
            base.root.set_u32("#size-cells", 2);
            let m = base.root.child_or_insert("memory@0");
            m.set_str("device_type", "memory");
            let end = b.vm0.base + b.vm0.size;
            m.set_cells("reg", &[0, 0, (end >> 32) as u32, end as u32]);
            let path = b.hyp_dts_path();
            if !path.exists() {
                continue;
            }
            let frag = overlay_hyp_dts(&b, &base).unwrap_or_else(|e| panic!("{}: {e:#}", b.name));
            let vm0 = frag.node("/vms/vm0").unwrap();
            assert_eq!(vm0.prop_str("device_type"), Some("virtual_machine"));
            assert_eq!(vm0.prop_u32("vcpus"), Some(b.vm0.vcpus), "{}", b.name);
            let entry = cells64(&vm0.prop_cells("entry").unwrap());
            assert_eq!(entry, [b.load.vm0_image.addr], "{} entry", b.name);
            let mem = cells64(&vm0.prop_cells("memory").unwrap());
            assert_eq!(mem, [b.vm0.base, b.vm0.size], "{} memory", b.name);
            let sd = cells64(&vm0.prop_cells("setup_data").unwrap());
            assert_eq!(sd, [b.load.vm0_dtb.addr], "{} setup_data", b.name);
            let aff = vm0.prop_cells("vcpu_affinity").unwrap();
            assert_eq!(aff.len(), b.vm0.vcpus as usize, "{}", b.name);
            assert!(aff.iter().all(|&c| c < b.cpus), "{}", b.name);
            checked += 1;
        }
        assert!(checked >= 3, "only {checked} hypervisor DTS checked");
    }

    #[test]
    fn placeholders() {
        let v = BTreeMap::from([("A", "1".to_string())]);
        assert_eq!(fill_placeholders("x @A@ y@A@", &v).unwrap(), "x 1 y1");
        assert_eq!(
            fill_placeholders("a@b.c @ @@ @x@", &v).unwrap(),
            "a@b.c @ @@ @x@"
        );
        assert!(fill_placeholders("@B@", &v).is_err());
    }
}
