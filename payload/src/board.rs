//! What the hypervisor learns from its device tree: memory, CPUs, GIC, timer, console UART,
//! the devices it may pass through, and the VMs to start (`/vms`, Minos format).
//!
//! Only the `fdt` crate's non-panicking accessors are used: a malformed DTB is an error.

use core::fmt;

use fdt::node::FdtNode;
use fdt::Fdt;

use crate::fixed::{FixedStr, FixedVec, Full};
use crate::vm::VmConfig;

pub const MAX_CPUS: usize = 8;
pub const MAX_MEMORY: usize = 8;
pub const MAX_DEVICES: usize = 96;
pub const MAX_VMS: usize = 4;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Region {
    pub base: u64,
    pub size: u64,
}

impl Region {
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.end()
    }
    pub fn overlaps(&self, other: &Region) -> bool {
        self.base < other.end() && other.base < self.end()
    }
    pub fn contains_region(&self, other: &Region) -> bool {
        other.base >= self.base && other.end() <= self.end()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}..{:#x})", self.base, self.end())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GicVersion {
    #[default]
    V2,
    V3,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct GicInfo {
    pub version: GicVersion,
    pub dist: Region,
    /// GICv3: the redistributor range (all CPUs).
    pub redist: Region,
    /// GICv2: the physical CPU interface (GICC).
    pub cpu: Region,
    /// GICv2: the virtual interface control (GICH).
    pub hyp: Region,
    /// GICv2: the virtual CPU interface (GICV).
    pub vcpu: Region,
    /// Maintenance interrupt (PPI INTID), 0 if the DT names none.
    pub maintenance_irq: u32,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TimerInfo {
    /// INTIDs of the secure physical, non-secure physical, virtual and hypervisor timer PPIs.
    pub sec_phys: u32,
    pub phys: u32,
    pub virt: u32,
    pub hyp: u32,
}

/// A device region a VM may be given, with the DT node name it came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Device {
    pub name: FixedStr<32>,
    pub region: Region,
    /// Part of the interrupt controller (never passed through once the vGIC emulates it).
    pub is_gic: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PsciMethod {
    #[default]
    None,
    Smc,
    Hvc,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Board {
    pub model: FixedStr<64>,
    pub memory: FixedVec<Region, MAX_MEMORY>,
    /// MPIDR affinity values, in DT order (logical CPU index).
    pub cpus: FixedVec<u64, MAX_CPUS>,
    pub gic: GicInfo,
    pub timer: TimerInfo,
    pub uart: Option<Region>,
    /// The console UART's interrupt (INTID), when its node has one.
    pub uart_irq: Option<u32>,
    pub devices: FixedVec<Device, MAX_DEVICES>,
    pub vms: FixedVec<VmConfig, MAX_VMS>,
    pub psci: PsciMethod,
    pub loglevel: Option<FixedStr<8>>,
    /// `/chosen/minos,gic-passthrough`: give VM0 the physical GIC instead of a vGIC.
    pub gic_passthrough: bool,
    pub dtb_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardError {
    BadFdt,
    Missing(&'static str),
    Malformed(&'static str),
    TooMany(&'static str),
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoardError::BadFdt => write!(f, "not a valid flattened device tree"),
            BoardError::Missing(what) => write!(f, "device tree has no {what}"),
            BoardError::Malformed(what) => write!(f, "device tree: malformed {what}"),
            BoardError::TooMany(what) => write!(f, "device tree: too many {what}"),
        }
    }
}

fn too_many(what: &'static str) -> impl Fn(Full) -> BoardError {
    move |_| BoardError::TooMany(what)
}

fn be32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

/// Reads a property of `cells`-sized big-endian numbers (1 or 2 cells each).
pub fn read_cells(bytes: &[u8], cells: usize, index: usize) -> Option<u64> {
    let start = index.checked_mul(cells * 4)?;
    let v = bytes.get(start..start + cells * 4)?;
    match cells {
        1 => be32(v).map(u64::from),
        2 => Some((u64::from(be32(v)?) << 32) | u64::from(be32(&v[4..])?)),
        _ => None,
    }
}

pub(crate) fn prop<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a [u8]> {
    node.properties().find(|p| p.name == name).map(|p| p.value)
}

fn prop_str<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    let v = prop(node, name)?;
    let v = v.split(|&b| b == 0).next()?;
    core::str::from_utf8(v).ok()
}

fn compatible_with(node: FdtNode<'_, '_>, any: &[&str]) -> bool {
    match prop(node, "compatible") {
        Some(list) => list
            .split(|&b| b == 0)
            .any(|c| any.iter().any(|want| want.as_bytes() == c)),
        None => false,
    }
}

/// `(#address-cells, #size-cells)` a node declares for its children (DT defaults 2, 1).
fn child_cells(node: FdtNode<'_, '_>) -> (usize, usize) {
    let a = prop(node, "#address-cells").and_then(be32).unwrap_or(2) as usize;
    let s = prop(node, "#size-cells").and_then(be32).unwrap_or(1) as usize;
    (a, s)
}

/// The `reg` entries of `node`, whose parent declares `cells`.
fn regs<'a>(node: FdtNode<'_, 'a>, cells: (usize, usize)) -> impl Iterator<Item = Region> + 'a {
    let value = prop(node, "reg").unwrap_or(&[]);
    let (a, s) = cells;
    let stride = (a + s) * 4;
    let count = if stride == 0 || !(1..=2).contains(&a) || !(1..=2).contains(&s) {
        0
    } else {
        value.len() / stride
    };
    (0..count).filter_map(move |i| {
        let entry = &value[i * stride..(i + 1) * stride];
        Some(Region::new(
            read_cells(entry, a, 0)?,
            read_cells(&entry[a * 4..], s, 0)?,
        ))
    })
}

fn ppi_intid(interrupts: &[u8], index: usize) -> Option<u32> {
    // 3-cell GIC specifier: <type number flags>, type 1 = PPI.
    let kind = read_cells(interrupts, 1, index * 3)?;
    let num = read_cells(interrupts, 1, index * 3 + 1)? as u32;
    Some(if kind == 1 { 16 + num } else { 32 + num })
}

impl Board {
    /// Parses a DTB. `data` must hold the whole blob (`totalsize` bytes).
    pub fn parse(data: &[u8]) -> Result<Board, BoardError> {
        let fdt = Fdt::new(data).map_err(|_| BoardError::BadFdt)?;
        let root = fdt.find_node("/").ok_or(BoardError::Missing("root node"))?;
        let root_cells = child_cells(root);
        let mut b = Board {
            model: FixedStr::new(prop_str(root, "model").unwrap_or("unknown board")),
            dtb_size: fdt.total_size(),
            ..Board::default()
        };

        let cpus = fdt.find_node("/cpus").ok_or(BoardError::Missing("/cpus"))?;
        let (cpu_cells, _) = child_cells(cpus);
        for cpu in cpus.children() {
            if prop_str(cpu, "device_type") != Some("cpu") {
                continue;
            }
            let reg = prop(cpu, "reg").ok_or(BoardError::Malformed("cpu reg"))?;
            let mpidr = read_cells(reg, cpu_cells, 0).ok_or(BoardError::Malformed("cpu reg"))?;
            b.cpus.push(mpidr).map_err(too_many("cpus"))?;
        }
        if b.cpus.is_empty() {
            return Err(BoardError::Missing("cpu nodes"));
        }

        for node in root.children() {
            let name = node.name;
            if prop_str(node, "device_type") == Some("memory") {
                for r in regs(node, root_cells) {
                    if r.size > 0 {
                        b.memory.push(r).map_err(too_many("memory ranges"))?;
                    }
                }
                continue;
            }
            if matches!(
                name,
                "cpus" | "chosen" | "aliases" | "vms" | "reserved-memory"
            ) || name.starts_with("vms@")
            {
                continue;
            }
            if compatible_with(node, &["arm,gic-v3"]) {
                b.parse_gic(node, root_cells, GicVersion::V3)?;
            } else if compatible_with(
                node,
                &[
                    "arm,cortex-a15-gic",
                    "arm,gic-400",
                    "arm,cortex-a9-gic",
                    "arm,arm11mp-gic",
                ],
            ) {
                b.parse_gic(node, root_cells, GicVersion::V2)?;
            } else if compatible_with(node, &["arm,armv8-timer", "arm,armv7-timer"]) {
                let irqs = prop(node, "interrupts").ok_or(BoardError::Malformed("timer"))?;
                b.timer = TimerInfo {
                    sec_phys: ppi_intid(irqs, 0).ok_or(BoardError::Malformed("timer"))?,
                    phys: ppi_intid(irqs, 1).ok_or(BoardError::Malformed("timer"))?,
                    virt: ppi_intid(irqs, 2).ok_or(BoardError::Malformed("timer"))?,
                    hyp: ppi_intid(irqs, 3).ok_or(BoardError::Malformed("timer"))?,
                };
            } else if compatible_with(node, &["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]) {
                b.psci = match prop_str(node, "method") {
                    Some("smc") => PsciMethod::Smc,
                    Some("hvc") => PsciMethod::Hvc,
                    _ => return Err(BoardError::Malformed("psci method")),
                };
            } else {
                for region in regs(node, root_cells) {
                    if region.size == 0 {
                        continue;
                    }
                    let dev = Device {
                        name: FixedStr::new(name),
                        region,
                        is_gic: false,
                    };
                    b.devices.push(dev).map_err(too_many("devices"))?;
                }
            }
        }
        if b.memory.is_empty() {
            return Err(BoardError::Missing("memory"));
        }
        if b.gic.dist.size == 0 {
            return Err(BoardError::Missing("GIC"));
        }
        if b.timer.virt == 0 {
            return Err(BoardError::Missing("architected timer"));
        }

        if let Some((uart, irq)) = Self::find_uart(&fdt) {
            b.uart = Some(uart);
            b.uart_irq = irq;
        }
        if let Some(chosen) = fdt.find_node("/chosen") {
            if let Some(level) = prop_str(chosen, "minos,loglevel") {
                b.loglevel = Some(FixedStr::new(level));
            }
            b.gic_passthrough = prop(chosen, "minos,gic-passthrough").is_some();
        }

        if let Some(vms) = fdt.find_node("/vms") {
            for vm in vms.children() {
                let cfg = VmConfig::parse(vm)?;
                b.vms.push(cfg).map_err(too_many("VMs"))?;
            }
        }
        Ok(b)
    }

    fn parse_gic(
        &mut self,
        node: FdtNode<'_, '_>,
        cells: (usize, usize),
        version: GicVersion,
    ) -> Result<(), BoardError> {
        let mut it = regs(node, cells);
        let mut gic = GicInfo {
            version,
            dist: it.next().ok_or(BoardError::Malformed("GIC reg"))?,
            ..GicInfo::default()
        };
        match version {
            GicVersion::V3 => gic.redist = it.next().ok_or(BoardError::Malformed("GICR reg"))?,
            GicVersion::V2 => {
                gic.cpu = it.next().ok_or(BoardError::Malformed("GICC reg"))?;
                gic.hyp = it.next().unwrap_or_default();
                gic.vcpu = it.next().unwrap_or_default();
            }
        }
        if let Some(irqs) = prop(node, "interrupts") {
            gic.maintenance_irq = ppi_intid(irqs, 0).unwrap_or(0);
        }
        // The GIC's own frames, then its children (GICv3 ITS, GICv2m) as passthrough candidates.
        let frames = [gic.dist, gic.redist, gic.cpu, gic.hyp, gic.vcpu];
        for (i, region) in frames.into_iter().enumerate() {
            if region.size == 0 {
                continue;
            }
            let names = ["gicd", "gicr", "gicc", "gich", "gicv"];
            let dev = Device {
                name: FixedStr::new(names[i]),
                region,
                is_gic: true,
            };
            self.devices.push(dev).map_err(too_many("devices"))?;
        }
        let child = child_cells(node);
        for sub in node.children() {
            for region in regs(sub, child) {
                let dev = Device {
                    name: FixedStr::new(sub.name),
                    region,
                    is_gic: true,
                };
                self.devices.push(dev).map_err(too_many("devices"))?;
            }
        }
        self.gic = gic;
        Ok(())
    }

    fn find_uart(fdt: &Fdt<'_>) -> Option<(Region, Option<u32>)> {
        let chosen = fdt.find_node("/chosen");
        let by_path = chosen
            .and_then(|c| prop_str(c, "stdout-path"))
            .map(|p| p.split(':').next().unwrap_or(p))
            .and_then(|p| fdt.find_node(p));
        let node = by_path.or_else(|| fdt.find_compatible(&["arm,pl011"]))?;
        let root = fdt.find_node("/")?;
        let irq = prop(node, "interrupts").and_then(|v| ppi_intid(v, 0));
        Some((regs(node, child_cells(root)).next()?, irq))
    }

    /// The RAM range holding `addr`, if any.
    pub fn ram_containing(&self, addr: u64) -> Option<Region> {
        self.memory.iter().copied().find(|r| r.contains(addr))
    }

    pub fn cpu_index(&self, mpidr: u64) -> Option<usize> {
        self.cpus.iter().position(|&m| m == mpidr & 0xff_00ff_ffff)
    }
}

/// A device passed through to one VM: its MMIO ranges and SPIs, from its DT node.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassDevice {
    pub regions: FixedVec<Region, 4>,
    pub spis: FixedVec<u32, 4>,
}

/// Looks up the device node at `path` in the DTB `data` (top-level nodes, as a VM's
/// `devices` names them). Only SPIs can be passed through: a PPI or SGI belongs to a CPU.
pub fn resolve_device(data: &[u8], path: &str) -> Result<PassDevice, BoardError> {
    let fdt = Fdt::new(data).map_err(|_| BoardError::BadFdt)?;
    let root = fdt.find_node("/").ok_or(BoardError::Missing("root node"))?;
    let node = fdt
        .find_node(path)
        .ok_or(BoardError::Missing("passthrough device node"))?;
    let mut d = PassDevice::default();
    for r in regs(node, child_cells(root)) {
        d.regions
            .push(r)
            .map_err(|_| BoardError::Malformed("passthrough device reg"))?;
    }
    if d.regions.is_empty() {
        return Err(BoardError::Malformed("passthrough device without reg"));
    }
    if let Some(irqs) = prop(node, "interrupts") {
        for i in 0..irqs.len() / 12 {
            if read_cells(irqs, 1, i * 3) != Some(0) {
                return Err(BoardError::Malformed(
                    "passthrough device interrupt (not an SPI)",
                ));
            }
            let id = ppi_intid(irqs, i).ok_or(BoardError::Malformed("interrupts"))?;
            d.spis
                .push(id)
                .map_err(|_| BoardError::Malformed("passthrough device interrupts"))?;
        }
    }
    Ok(d)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// QEMU 7.2 `virt,virtualization=on,gic-version=3` DT with 2 CPUs and a `/vms` node,
    /// compiled from `testdata/virt-v3.dts`.
    pub const VIRT_V3: &[u8] = include_bytes!("../testdata/virt-v3.dtb");
    pub const VIRT_V2: &[u8] = include_bytes!("../testdata/virt-v2.dtb");

    #[test]
    fn parses_qemu_virt_gicv3() {
        let b = Board::parse(VIRT_V3).unwrap();
        assert_eq!(b.model.as_str(), "linux,dummy-virt");
        assert_eq!(
            b.memory.as_slice(),
            &[Region::new(0x4000_0000, 0x2000_0000)]
        );
        assert_eq!(b.cpus.as_slice(), &[0, 1]);
        assert_eq!(b.gic.version, GicVersion::V3);
        assert_eq!(b.gic.dist, Region::new(0x0800_0000, 0x1_0000));
        assert_eq!(b.gic.redist, Region::new(0x080a_0000, 0xf6_0000));
        assert_eq!(b.gic.maintenance_irq, 25);
        assert_eq!((b.timer.phys, b.timer.virt, b.timer.hyp), (30, 27, 26));
        assert_eq!(b.uart, Some(Region::new(0x0900_0000, 0x1000)));
        assert_eq!(b.uart_irq, Some(33));
        let rtc = resolve_device(VIRT_V3, "/pl031@9010000").unwrap();
        assert_eq!(rtc.regions.as_slice(), &[Region::new(0x0901_0000, 0x1000)]);
        assert_eq!(rtc.spis.as_slice(), &[34]);
        assert!(resolve_device(VIRT_V3, "/nope@0").is_err());
        // The GIC's node has PPIs: not something a VM can own.
        assert!(resolve_device(VIRT_V3, "/timer").is_err());
        assert_eq!(b.psci, PsciMethod::Smc);
        assert!(b.devices.iter().any(|d| d.name.as_str() == "pl031@9010000"));
        assert_eq!(
            b.devices
                .iter()
                .filter(|d| d.name.as_str().starts_with("virtio_mmio"))
                .count(),
            32
        );
        assert!(b
            .devices
            .iter()
            .any(|d| d.is_gic && d.name.as_str().starts_with("its")));
        assert_eq!(b.vms.len(), 1);
        assert_eq!(b.cpu_index(0x8000_0001), Some(1));
    }

    #[test]
    fn parses_qemu_virt_gicv2() {
        let b = Board::parse(VIRT_V2).unwrap();
        assert_eq!(b.gic.version, GicVersion::V2);
        assert_eq!(b.gic.cpu, Region::new(0x0801_0000, 0x1_0000));
        assert_eq!(b.gic.hyp, Region::new(0x0803_0000, 0x1_0000));
        assert_eq!(b.gic.vcpu, Region::new(0x0804_0000, 0x1_0000));
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert_eq!(
            Board::parse(b"not a dtb at all").unwrap_err(),
            BoardError::BadFdt
        );
        assert!(Board::parse(&VIRT_V3[..VIRT_V3.len() / 2]).is_err());
    }

    #[test]
    fn region_math() {
        let a = Region::new(0x1000, 0x1000);
        assert!(a.overlaps(&Region::new(0x1fff, 1)));
        assert!(!a.overlaps(&Region::new(0x2000, 1)));
        assert!(Region::new(0, 0x10000).contains_region(&a));
    }
}
