//! VM descriptions from the `/vms` node (the Minos format) and their checks against the board.

use fdt::node::FdtNode;

use crate::board::{prop, read_cells, Board, BoardError, Region, MAX_CPUS};
use crate::fixed::{FixedStr, FixedVec};

#[derive(Debug, Clone, Copy, Default)]
pub struct VmConfig {
    pub vmid: u32,
    pub name: FixedStr<32>,
    pub os_type: FixedStr<16>,
    pub vcpus: u32,
    /// Guest physical address of the kernel entry point.
    pub entry: u64,
    /// Physical CPU index for each vCPU.
    pub affinity: FixedVec<u32, MAX_CPUS>,
    pub memory: Option<Region>,
    /// Where this VM's DTB goes (guest physical).
    pub setup_data: Option<u64>,
    pub native_wfi: bool,
    /// Paths (in the hypervisor's DT) of the devices passed through to this VM only.
    pub devices: FixedVec<FixedStr<64>, MAX_PASSTHROUGH>,
}

/// Devices one VM may own.
pub const MAX_PASSTHROUGH: usize = 4;

/// Reads an address written with one or two cells (Minos DTS use both).
fn addr(v: &[u8]) -> Option<u64> {
    match v.len() {
        4 => read_cells(v, 1, 0),
        8 => read_cells(v, 2, 0),
        _ => None,
    }
}

fn string<const N: usize>(v: &[u8]) -> FixedStr<N> {
    let s = v.split(|&b| b == 0).next().unwrap_or(&[]);
    FixedStr::new(core::str::from_utf8(s).unwrap_or("?"))
}

impl VmConfig {
    pub fn parse(node: FdtNode<'_, '_>) -> Result<Self, BoardError> {
        let bad = BoardError::Malformed;
        let u32_prop = |name| {
            prop(node, name)
                .and_then(|v| read_cells(v, 1, 0))
                .map(|v| v as u32)
        };
        let mut vm = VmConfig {
            vmid: u32_prop("vmid").ok_or(bad("vm vmid"))?,
            name: prop(node, "vm_name")
                .map(string)
                .unwrap_or(FixedStr::new(node.name)),
            os_type: prop(node, "type")
                .map(string)
                .unwrap_or(FixedStr::new("linux")),
            vcpus: u32_prop("vcpus").ok_or(bad("vm vcpus"))?,
            entry: prop(node, "entry").and_then(addr).ok_or(bad("vm entry"))?,
            native_wfi: prop(node, "native_wfi").is_some(),
            ..VmConfig::default()
        };
        if vm.vcpus == 0 || vm.vcpus as usize > MAX_CPUS {
            return Err(bad("vm vcpus"));
        }
        if let Some(v) = prop(node, "devices") {
            for path in v.split(|&b| b == 0).filter(|p| !p.is_empty()) {
                let path = core::str::from_utf8(path).map_err(|_| bad("vm devices"))?;
                if !path.starts_with('/') || path.len() > 64 {
                    return Err(bad("vm devices"));
                }
                vm.devices
                    .push(FixedStr::new(path))
                    .map_err(|_| bad("vm devices: more than 4"))?;
            }
        }
        if let Some(v) = prop(node, "setup_data") {
            vm.setup_data = Some(addr(v).ok_or(bad("vm setup_data"))?);
        }
        if let Some(v) = prop(node, "memory") {
            let cells = match v.len() {
                8 => 1,
                16 => 2,
                _ => return Err(bad("vm memory")),
            };
            let base = read_cells(v, cells, 0).ok_or(bad("vm memory"))?;
            let size = read_cells(&v[cells * 4..], cells, 0).ok_or(bad("vm memory"))?;
            vm.memory = Some(Region::new(base, size));
        }
        match prop(node, "vcpu_affinity") {
            Some(v) => {
                for i in 0..vm.vcpus as usize {
                    let cpu = read_cells(v, 1, i).ok_or(bad("vm vcpu_affinity"))? as u32;
                    vm.affinity.push(cpu).map_err(|_| bad("vm vcpu_affinity"))?;
                }
            }
            None => {
                for i in 0..vm.vcpus {
                    vm.affinity.push(i).map_err(|_| bad("vm vcpu_affinity"))?;
                }
            }
        }
        Ok(vm)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmError {
    NoMemory,
    MemoryOutsideRam(Region),
    OverlapsHypervisor(Region),
    TooManyVcpus { vcpus: u32, cpus: usize },
    BadAffinity(u32),
    EntryOutsideMemory(u64),
    SetupDataOutsideMemory(u64),
}

impl core::fmt::Display for VmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VmError::NoMemory => write!(f, "no RAM left for the VM"),
            VmError::MemoryOutsideRam(r) => write!(f, "memory {r} is not inside one RAM range"),
            VmError::OverlapsHypervisor(r) => write!(f, "memory overlaps the hypervisor {r}"),
            VmError::TooManyVcpus { vcpus, cpus } => {
                write!(f, "{vcpus} vCPUs but the board has {cpus} CPUs")
            }
            VmError::BadAffinity(c) => write!(f, "vcpu_affinity names CPU {c}, not on this board"),
            VmError::EntryOutsideMemory(a) => write!(f, "entry {a:#x} outside its memory"),
            VmError::SetupDataOutsideMemory(a) => write!(f, "setup_data {a:#x} outside its memory"),
        }
    }
}

/// Where a VM lives, after checking its description against the board and the hypervisor's
/// own region.
#[derive(Debug, Clone, Copy)]
pub struct VmLayout {
    pub memory: Region,
    pub dtb: u64,
}

/// Space kept for the VM's DTB when `setup_data` is absent: the top of its memory.
pub const DTB_SLOT: u64 = 2 << 20;

impl VmConfig {
    /// Checks the VM against the board. Without a `memory` property the VM gets the RAM above
    /// the hypervisor in the range holding its entry point.
    pub fn layout(&self, board: &Board, hyp: Region) -> Result<VmLayout, VmError> {
        if self.vcpus as usize > board.cpus.len() {
            return Err(VmError::TooManyVcpus {
                vcpus: self.vcpus,
                cpus: board.cpus.len(),
            });
        }
        if let Some(&bad) = self
            .affinity
            .iter()
            .find(|&&c| c as usize >= board.cpus.len())
        {
            return Err(VmError::BadAffinity(bad));
        }
        let memory = match self.memory {
            Some(m) => m,
            None => {
                let ram = board.ram_containing(self.entry).ok_or(VmError::NoMemory)?;
                let base = if ram.overlaps(&hyp) {
                    hyp.end().max(ram.base)
                } else {
                    ram.base
                };
                if base >= ram.end() {
                    return Err(VmError::NoMemory);
                }
                Region::new(base, ram.end() - base)
            }
        };
        if memory.size == 0 || !board.memory.iter().any(|r| r.contains_region(&memory)) {
            return Err(VmError::MemoryOutsideRam(memory));
        }
        if memory.overlaps(&hyp) {
            return Err(VmError::OverlapsHypervisor(hyp));
        }
        if !memory.contains(self.entry) {
            return Err(VmError::EntryOutsideMemory(self.entry));
        }
        let dtb = match self.setup_data {
            Some(a) if memory.contains(a) => a,
            Some(a) => return Err(VmError::SetupDataOutsideMemory(a)),
            None => memory.end() - DTB_SLOT,
        };
        Ok(VmLayout { memory, dtb })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::tests::VIRT_V3;

    #[test]
    fn reads_vm0_from_vms_node() {
        let b = Board::parse(VIRT_V3).unwrap();
        let vm = b.vms.as_slice()[0];
        assert_eq!(vm.vmid, 0);
        assert_eq!(vm.name.as_str(), "vm0");
        assert_eq!(vm.os_type.as_str(), "linux");
        assert_eq!(vm.vcpus, 2);
        assert_eq!(vm.entry, 0x4400_0000);
        assert_eq!(vm.affinity.as_slice(), &[0, 1]);
        assert_eq!(vm.memory, Some(Region::new(0x4400_0000, 0x1c00_0000)));
        assert_eq!(vm.setup_data, Some(0x4700_0000));
    }

    #[test]
    fn layout_checks_against_board_and_hypervisor() {
        let b = Board::parse(VIRT_V3).unwrap();
        let vm = b.vms.as_slice()[0];
        let hyp = Region::new(0x4020_0000, 0x80_0000);
        let l = vm.layout(&b, hyp).unwrap();
        assert_eq!(l.memory, Region::new(0x4400_0000, 0x1c00_0000));
        assert_eq!(l.dtb, 0x4700_0000);

        let big_hyp = Region::new(0x4000_0000, 0x800_0000);
        assert_eq!(
            vm.layout(&b, big_hyp).unwrap_err(),
            VmError::OverlapsHypervisor(big_hyp)
        );

        let mut no_mem = vm;
        no_mem.memory = None;
        no_mem.setup_data = None;
        let l = no_mem.layout(&b, hyp).unwrap();
        assert_eq!(
            l.memory,
            Region::new(0x40a0_0000, 0x6000_0000 - 0x40a0_0000)
        );
        assert_eq!(l.dtb, 0x6000_0000 - DTB_SLOT);

        let mut greedy = vm;
        greedy.vcpus = 3;
        assert!(matches!(
            greedy.layout(&b, hyp),
            Err(VmError::TooManyVcpus { .. })
        ));
        let mut outside = vm;
        outside.memory = Some(Region::new(0x5000_0000, 0x2000_0000));
        assert!(matches!(
            outside.layout(&b, hyp),
            Err(VmError::MemoryOutsideRam(_))
        ));
    }
}
