//! What the guest learns from its DTB: console, PSCI conduit, GIC, CPUs, RAM and every address
//! range something lives at.

use fdt::Fdt;

use crate::ranges::Ranges;
use crate::smccc::Conduit;

#[derive(Clone, Copy)]
pub enum GicDesc {
    V2 { dist: usize, cpu: usize },
    V3 { dist: usize, redist: usize },
}

pub const MAX_CPUS: usize = 8;
/// The virtual timer's INTID on QEMU virt and most boards (PPI 11).
const VTIMER_DEFAULT: u32 = 27;

pub struct Platform {
    pub uart: Option<usize>,
    pub conduit: Conduit,
    pub gic: Option<GicDesc>,
    /// MPIDR affinity values of the CPUs, in DTB order.
    pub cpus: [u64; MAX_CPUS],
    pub ncpus: usize,
    /// INTID of the EL1 virtual timer (a PPI).
    pub vtimer_intid: u32,
    pub ram: Ranges,
    /// RAM, device `reg`s and bus windows: everything that answers an access.
    pub occupied: Ranges,
}

#[derive(Debug)]
pub enum DtbError {
    BadHeader,
}

impl Platform {
    /// # Safety
    /// `dtb` must point to readable memory holding a flattened device tree.
    pub unsafe fn from_dtb(dtb: usize) -> Result<Self, DtbError> {
        // SAFETY: per this function's contract.
        let fdt = unsafe { Fdt::from_ptr(dtb as *const u8) }.map_err(|_| DtbError::BadHeader)?;
        Ok(Self::from_fdt(&fdt))
    }

    pub fn from_fdt(fdt: &Fdt) -> Self {
        let mut p = Platform {
            uart: None,
            conduit: Conduit::Hvc,
            gic: None,
            cpus: [0; MAX_CPUS],
            ncpus: 0,
            vtimer_intid: VTIMER_DEFAULT,
            ram: Ranges::new(),
            occupied: Ranges::new(),
        };

        p.uart = fdt
            .find_compatible(&["arm,pl011"])
            .and_then(|n| n.reg()?.next())
            .map(|r| r.starting_address as usize);

        if let Some(m) = fdt.find_node("/psci").and_then(|n| n.property("method")) {
            if m.as_str() == Some("smc") {
                p.conduit = Conduit::Smc;
            }
        }

        if let Some(n) = fdt.find_compatible(&["arm,gic-v3"]) {
            let mut reg = n.reg().into_iter().flatten();
            if let (Some(d), Some(r)) = (reg.next(), reg.next()) {
                p.gic = Some(GicDesc::V3 {
                    dist: d.starting_address as usize,
                    redist: r.starting_address as usize,
                });
            }
        } else if let Some(n) =
            fdt.find_compatible(&["arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a9-gic"])
        {
            let mut reg = n.reg().into_iter().flatten();
            if let (Some(d), Some(c)) = (reg.next(), reg.next()) {
                p.gic = Some(GicDesc::V2 {
                    dist: d.starting_address as usize,
                    cpu: c.starting_address as usize,
                });
            }
        }

        // Secure, non-secure physical, virtual, hypervisor timers; 3 cells each (type, number,
        // flags), PPI numbers counted from INTID 16.
        if let Some(irqs) = fdt
            .find_compatible(&["arm,armv8-timer"])
            .and_then(|n| n.property("interrupts"))
        {
            if irqs.value.len() >= 36 && irqs.value.len() % 12 == 0 {
                if let Some(ppi) = be_cells(&irqs.value[28..32]) {
                    p.vtimer_intid = ppi as u32 + 16;
                }
            }
        }

        if let Some(cpus) = fdt.find_node("/cpus") {
            for cpu in cpus.children() {
                if cpu.property("device_type").and_then(|d| d.as_str()) != Some("cpu") {
                    continue;
                }
                let Some(id) = cpu.property("reg").and_then(|r| be_cells(r.value)) else {
                    continue;
                };
                if p.ncpus < MAX_CPUS {
                    p.cpus[p.ncpus] = id;
                    p.ncpus += 1;
                }
            }
        }

        for r in fdt.memory().regions() {
            let size = r.size.unwrap_or(0) as u64;
            p.ram.add(r.starting_address as u64, size);
        }

        for node in fdt.all_nodes() {
            if node.name.starts_with("cpu") {
                continue;
            }
            if let Some(reg) = node.reg() {
                for r in reg {
                    p.occupied
                        .add(r.starting_address as u64, r.size.unwrap_or(0) as u64);
                }
            }
        }

        // Bus windows (PCIe MMIO, platform bus): children there may appear at run time.
        if let Some(root) = fdt.find_node("/") {
            let parent_cells = root.cell_sizes().address_cells;
            for bus in root.children() {
                let Some(ranges) = bus.property("ranges") else {
                    continue;
                };
                let cells = bus.cell_sizes();
                let entry = cells.address_cells + parent_cells + cells.size_cells;
                if entry == 0 {
                    continue;
                }
                for e in ranges.value.chunks_exact(entry * 4) {
                    let parent =
                        &e[cells.address_cells * 4..(cells.address_cells + parent_cells) * 4];
                    let size = &e[(cells.address_cells + parent_cells) * 4..];
                    if let (Some(a), Some(s)) = (be_cells(parent), be_cells(size)) {
                        p.occupied.add(a, s);
                    }
                }
            }
        }

        p
    }
}

/// A big-endian value of one or two cells.
fn be_cells(b: &[u8]) -> Option<u64> {
    match b.len() {
        4 => Some(u64::from(u32::from_be_bytes(b.try_into().ok()?))),
        8 => Some(u64::from_be_bytes(b.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(dtb: &[u8]) -> Platform {
        Platform::from_fdt(&Fdt::new(dtb).unwrap())
    }

    /// The hole the abort check picks in QEMU virt's device area.
    fn hole(p: &Platform) -> Option<u64> {
        p.occupied
            .first_hole(0x0800_0000, 0x1000_0000, 0x1_0000, 0x1_0000)
    }

    #[test]
    fn qemu_virt_gicv3() {
        let p = platform(include_bytes!("../testdata/virt-gicv3.dtb"));
        assert_eq!(p.uart, Some(0x0900_0000));
        assert_eq!(p.conduit, Conduit::Hvc);
        assert!(matches!(
            p.gic,
            Some(GicDesc::V3 {
                dist: 0x0800_0000,
                redist: 0x080a_0000
            })
        ));
        assert_eq!(&p.cpus[..p.ncpus], &[0, 1]);
        assert_eq!(p.vtimer_intid, 27);
        assert_eq!((p.ram.bottom(), p.ram.top()), (0x4000_0000, 0x6000_0000));
        // Between GICD and the ITS.
        assert_eq!(hole(&p), Some(0x0801_0000));
        assert!(!p.occupied.overlaps(0x1_0000_0000, 0x1_0000_0008));
        assert!(!p.occupied.overlaps(0x3fff_f000, 0x3fff_f008));
        // The PCIe MMIO window is a bus range, not a hole.
        assert!(p.occupied.overlaps(0x1000_0000, 0x1000_0008));
    }

    #[test]
    fn qemu_virt_gicv2() {
        let p = platform(include_bytes!("../testdata/virt-gicv2.dtb"));
        assert!(matches!(
            p.gic,
            Some(GicDesc::V2 {
                dist: 0x0800_0000,
                cpu: 0x0801_0000
            })
        ));
        // Where GICH would be: QEMU has none without virtualization=on.
        assert_eq!(hole(&p), Some(0x0803_0000));
    }

    #[test]
    fn qemu_virt_gicv2_with_el2() {
        let p = platform(include_bytes!("../testdata/virt-gicv2-el2.dtb"));
        assert_eq!(p.conduit, Conduit::Smc);
        // GICH and GICV are described now: the hole moves past them.
        assert_eq!(hole(&p), Some(0x0805_0000));
    }

    #[test]
    fn truncated_blob_is_refused() {
        let dtb = include_bytes!("../testdata/virt-gicv3.dtb");
        assert!(Fdt::new(&dtb[..dtb.len() / 2]).is_err());
    }
}
