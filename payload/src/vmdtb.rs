//! Deriving a VM's DTB from the hypervisor's, in place: drop `/vms` and every
//! hypervisor-only node, shrink `/memory` to the VM's RAM, keep only the CPUs it has.

use crate::board::Region;
use crate::fdt_edit::{self, EditError};

fn be_cells(out: &mut [u8], cells: usize, v: u64) -> usize {
    if cells == 2 {
        out[..8].copy_from_slice(&v.to_be_bytes());
        8
    } else {
        out[..4].copy_from_slice(&(v as u32).to_be_bytes());
        4
    }
}

fn cells_of(
    dtb: &[u8],
    node: (usize, usize),
    name: &str,
    default: usize,
) -> Result<usize, EditError> {
    Ok(match fdt_edit::find_prop(dtb, node, name)? {
        Some((_, off, 4)) => {
            u32::from_be_bytes([dtb[off], dtb[off + 1], dtb[off + 2], dtb[off + 3]]) as usize
        }
        _ => default,
    })
}

/// Edits `dtb` (a copy of the hypervisor's) for a VM owning `memory` and the first `vcpus`
/// CPU nodes. `remove` lists the node paths to drop: `/vms` for VM0 (a static guest keeps it:
/// the partition table is how the hostile test guest finds what it must not reach), the GIC
/// ITS under a vGIC.
pub fn derive(
    dtb: &mut [u8],
    memory: Region,
    vcpus: usize,
    remove: &[&str],
) -> Result<(), EditError> {
    for path in remove {
        fdt_edit::remove_node(dtb, path)?;
    }

    let root = fdt_edit::find_node(dtb, "/")?
        .ok_or(EditError::BadHeader)?
        .range();
    let ac = cells_of(dtb, root, "#address-cells", 2)?;
    let sc = cells_of(dtb, root, "#size-cells", 1)?;
    if !(1..=2).contains(&ac) || !(1..=2).contains(&sc) {
        return Err(EditError::BadHeader);
    }
    let mut reg = [0u8; 16];
    let n = be_cells(&mut reg, ac, memory.base);
    let n = n + be_cells(&mut reg[n..], sc, memory.size);

    // Every memory node: the first becomes the VM's RAM, the others go.
    let nodes = fdt_edit::find_nodes::<8>(dtb, |p| {
        p.len() == 2 && p[1].name.split(|&b| b == b'@').next() == Some(b"memory")
    })?;
    let mut first = true;
    for &(start, end) in nodes.iter() {
        if first && fdt_edit::set_prop(dtb, (start, end), "reg", &reg[..n])? {
            first = false;
        } else {
            fdt_edit::nop_range(dtb, start, end);
        }
    }

    let cpus = fdt_edit::find_nodes::<64>(dtb, |p| {
        p.len() == 3
            && p[1].name == b"cpus"
            && p[2].name.split(|&b| b == b'@').next() == Some(b"cpu")
    })?;
    if cpus.len() > vcpus {
        for &(start, end) in &cpus.as_slice()[vcpus..] {
            fdt_edit::nop_range(dtb, start, end);
        }
        // The topology map names the removed CPUs by phandle.
        fdt_edit::remove_node(dtb, "/cpus/cpu-map")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::tests::VIRT_V3;
    use crate::fdt_edit::{find_node, find_prop};

    #[test]
    fn derives_vm0_dtb() {
        let mut dtb = VIRT_V3.to_vec();
        derive(
            &mut dtb,
            Region::new(0x4400_0000, 0x1c00_0000),
            1,
            &["/vms", "/intc/its"],
        )
        .unwrap();
        assert!(find_node(&dtb, "/vms").unwrap().is_none());
        assert!(find_node(&dtb, "/intc/its").unwrap().is_none());
        assert!(find_node(&dtb, "/intc").unwrap().is_some());
        assert!(find_node(&dtb, "/cpus/cpu@0").unwrap().is_some());
        assert!(find_node(&dtb, "/cpus/cpu@1").unwrap().is_none());
        assert!(find_node(&dtb, "/cpus/cpu-map").unwrap().is_none());
        let mem = find_node(&dtb, "/memory").unwrap().unwrap().range();
        let (_, off, len) = find_prop(&dtb, mem, "reg").unwrap().unwrap();
        assert_eq!(
            &dtb[off..off + len],
            &[0, 0, 0, 0, 0x44, 0, 0, 0, 0, 0, 0, 0, 0x1c, 0, 0, 0]
        );
    }

    #[test]
    fn keeps_all_cpus_when_vm_has_them_all() {
        let mut dtb = VIRT_V3.to_vec();
        derive(&mut dtb, Region::new(0x4400_0000, 0x1000), 2, &["/vms"]).unwrap();
        assert!(find_node(&dtb, "/cpus/cpu@1").unwrap().is_some());
        assert!(find_node(&dtb, "/cpus/cpu-map").unwrap().is_some());
        // The result is still a tree the fdt crate reads.
        let b = crate::board::Board::parse(&dtb).unwrap();
        assert_eq!(b.cpus.len(), 2);
        assert!(b.vms.is_empty());
    }

    #[test]
    fn keeps_vms_unless_asked() {
        let mut dtb = VIRT_V3.to_vec();
        derive(&mut dtb, Region::new(0x4400_0000, 0x1000), 1, &[]).unwrap();
        assert!(find_node(&dtb, "/vms").unwrap().is_some());
    }
}
