//! The hypervisor's partition table as a static guest sees it: the `/vms` node (Minos
//! format) kept in its DTB, from which the hostile mode takes what it must not reach.

use fdt::Fdt;

pub const MAX_VMS: usize = 8;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmInfo {
    pub vmid: u32,
    pub base: u64,
    pub size: u64,
    /// `vm_name = "crash"`: the hostile guest ends by crashing instead of spinning.
    pub crash: bool,
}

impl VmInfo {
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr - self.base < self.size
    }

    pub fn last_page(&self) -> u64 {
        (self.base + self.size - 0x1000) & !0xfff
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Partition {
    vms: [VmInfo; MAX_VMS],
    n: usize,
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |v, &b| (v << 8) | u64::from(b))
}

impl Partition {
    /// Every `/vms` child with a `vmid` and a `memory` of 1- or 2-cell address and size.
    pub fn from_fdt(fdt: &Fdt) -> Self {
        let mut p = Partition::default();
        let Some(vms) = fdt.find_node("/vms") else {
            return p;
        };
        for node in vms.children() {
            let vmid = node.property("vmid").map(|v| be(v.value));
            let mem = node.property("memory").map(|m| m.value);
            let (Some(vmid), Some(mem)) = (vmid, mem) else {
                continue;
            };
            let half = match mem.len() {
                8 | 16 => mem.len() / 2,
                _ => continue,
            };
            let (base, size) = (be(&mem[..half]), be(&mem[half..]));
            if size == 0 || p.n == MAX_VMS {
                continue;
            }
            p.vms[p.n] = VmInfo {
                vmid: vmid as u32,
                base,
                size,
                crash: node.property("vm_name").and_then(|n| n.as_str()) == Some("crash"),
            };
            p.n += 1;
        }
        p
    }

    pub fn vms(&self) -> &[VmInfo] {
        &self.vms[..self.n]
    }

    /// The VM whose memory holds `addr` (the guest's own image).
    pub fn owner_of(&self, addr: u64) -> Option<VmInfo> {
        self.vms().iter().copied().find(|v| v.contains(addr))
    }

    /// The lowest address any VM owns: below it is memory only the hypervisor has.
    pub fn lowest_base(&self) -> Option<u64> {
        self.vms().iter().map(|v| v.base).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_static_layout() {
        let dtb = std::fs::read("testdata/minos-static.dtb").unwrap();
        let fdt = Fdt::new(&dtb).unwrap();
        let p = Partition::from_fdt(&fdt);
        assert_eq!(
            p.vms(),
            &[
                VmInfo {
                    vmid: 0,
                    base: 0x4400_0000,
                    size: 0x3a00_0000,
                    crash: false
                },
                VmInfo {
                    vmid: 1,
                    base: 0x7e00_0000,
                    size: 0x200_0000,
                    crash: false
                }
            ]
        );
        assert_eq!(p.owner_of(0x7e00_1000).map(|v| v.vmid), Some(1));
        assert_eq!(p.owner_of(0x4000_0000), None);
        assert_eq!(p.lowest_base(), Some(0x4400_0000));
        assert_eq!(p.vms()[1].last_page(), 0x7fff_f000);
    }

    #[test]
    fn no_vms_node_means_an_empty_table() {
        let dtb = std::fs::read("testdata/virt-gicv3.dtb").unwrap();
        let fdt = Fdt::new(&dtb).unwrap();
        let p = Partition::from_fdt(&fdt);
        assert!(p.vms().is_empty());
        assert_eq!(p.lowest_base(), None);
    }
}
