//! GICv3 distributor (GICD) emulation, affinity routing always on (ARE_NS = 1, DS = 1).
//!
//! With affinity routing the INTID 0..31 parts of the distributor are RAZ/WI (they live in
//! the redistributors); SPIs are routed by GICD_IROUTER to the vCPU with that affinity.

use super::irq_regs::BitReg;
use super::{vcpu_of_affinity, VcpuMask, Vgic, NR_PRIVATE};

pub const CTLR_ENABLE_G0: u32 = 1 << 0;
pub const CTLR_ENABLE_G1: u32 = 1 << 1;
pub const CTLR_ARE: u32 = 1 << 4;
pub const CTLR_DS: u32 = 1 << 6;
/// GICD_IIDR and GICR_IIDR: implementer Arm (0x43b), product 0x4d ('M'inos), rev 0.
pub const IIDR: u32 = (0x4d << 24) | 0x43b;
const TYPER_NO1N: u32 = 1 << 25;
/// 10 interrupt ID bits (INTIDs up to 1023, no LPIs).
const TYPER_IDBITS: u32 = (10 - 1) << 19;
/// ArchRev 3 in bits [7:4], JEP106 continuation 0xb in [3:0].
pub const PIDR2_V3: u32 = 0x3b;
const IROUTER_AFF_MASK: u64 = 0xff_00ff_ffff;

/// CoreSight identification registers at the top of a GICv3 frame (0xffd0..0x10000).
pub fn id_reg_v3(off: u64) -> u32 {
    match off {
        0xffe8 => PIDR2_V3,
        0xfff0 => 0x0d,
        0xfff4 => 0xf0,
        0xfff8 => 0x05,
        0xfffc => 0xb1,
        _ => 0,
    }
}

impl Vgic {
    pub(super) fn dist_ctlr(&self) -> u32 {
        let mut v = CTLR_ARE | CTLR_DS;
        if self.enable_grp0 {
            v |= CTLR_ENABLE_G0;
        }
        if self.enable_grp1 {
            v |= CTLR_ENABLE_G1;
        }
        v
    }

    /// Stores the group enables; returns every vCPU that has something newly deliverable.
    pub(super) fn set_group_enables(&mut self, grp0: bool, grp1: bool) -> VcpuMask {
        let newly = (grp0 && !self.enable_grp0) || (grp1 && !self.enable_grp1);
        self.enable_grp0 = grp0;
        self.enable_grp1 = grp1;
        let mut kick = VcpuMask::EMPTY;
        if newly {
            for v in 0..self.cfg.nr_vcpus {
                if self.has_deliverable(v) {
                    kick |= VcpuMask::single(v);
                }
            }
        }
        kick
    }

    fn dist_typer(&self) -> u32 {
        let lines = (NR_PRIVATE as u32 + self.cfg.nr_spis).div_ceil(32) - 1;
        TYPER_NO1N | TYPER_IDBITS | lines
    }

    /// `None` = access size not allowed for this register.
    pub(super) fn dist_read(&self, off: u64, size: u8) -> Option<u64> {
        let word = size == 4;
        let v = match off {
            0x0000 if word => self.dist_ctlr(),
            0x0004 if word => self.dist_typer(),
            0x0008 if word => IIDR,
            0x0000..=0x007f if word => 0,
            0x0080..=0x03ff if word => {
                let (reg, first) = BitReg::decode(off)?;
                if first < NR_PRIVATE as u32 {
                    0
                } else {
                    self.bits_read(0, reg, first)
                }
            }
            0x0400..=0x07ff if size <= 4 => {
                let first = (off - 0x400) as u32;
                return Some(if first < NR_PRIVATE as u32 {
                    0
                } else {
                    self.prio_read(0, first, size)
                });
            }
            0x0c00..=0x0cff if word => {
                let first = ((off - 0xc00) / 4 * 16) as u32;
                if first < NR_PRIVATE as u32 {
                    0
                } else {
                    self.cfg_read(0, first)
                }
            }
            0x6000..=0x7fdf if size >= 4 => return Some(self.irouter_read(off, size)),
            0xffd0..=0xffff if word => id_reg_v3(off),
            0x0000..=0x007f | 0x0080..=0x03ff | 0x0c00..=0x0cff | 0xffd0..=0xffff => return None,
            0x0400..=0x07ff | 0x6000..=0x7fdf => return None,
            // ITARGETSR/SGIR (legacy, RES0 with ARE), IGRPMODR/NSACR (DS=1), reserved.
            _ => 0,
        };
        Some(u64::from(v))
    }

    pub(super) fn dist_write(&mut self, off: u64, size: u8, val: u64) -> Option<VcpuMask> {
        let word = size == 4;
        let v32 = val as u32;
        let kick = match off {
            0x0000 if word => {
                self.set_group_enables(v32 & CTLR_ENABLE_G0 != 0, v32 & CTLR_ENABLE_G1 != 0)
            }
            0x0000..=0x007f if word => VcpuMask::EMPTY,
            0x0080..=0x03ff if word => {
                let (reg, first) = BitReg::decode(off)?;
                if first < NR_PRIVATE as u32 {
                    VcpuMask::EMPTY
                } else {
                    self.bits_write(0, reg, first, v32)
                }
            }
            0x0400..=0x07ff if size <= 4 => {
                let first = (off - 0x400) as u32;
                if first < NR_PRIVATE as u32 {
                    VcpuMask::EMPTY
                } else {
                    self.prio_write(0, first, size, val)
                }
            }
            0x0c00..=0x0cff if word => {
                let first = ((off - 0xc00) / 4 * 16) as u32;
                if first >= NR_PRIVATE as u32 {
                    self.cfg_write(0, first, v32);
                }
                VcpuMask::EMPTY
            }
            0x6000..=0x7fdf if size >= 4 => self.irouter_write(off, size, val),
            0xffd0..=0xffff if word => VcpuMask::EMPTY,
            0x0000..=0x007f | 0x0080..=0x03ff | 0x0c00..=0x0cff | 0xffd0..=0xffff => return None,
            0x0400..=0x07ff | 0x6000..=0x7fdf => return None,
            _ => VcpuMask::EMPTY,
        };
        Some(kick)
    }

    /// SPI index of the IROUTER register at `off`, and whether the access is to its upper half.
    fn irouter_spi(&self, off: u64) -> Option<(usize, bool)> {
        let id = (off - 0x6000) / 8;
        let spi = id.checked_sub(NR_PRIVATE as u64)? as usize;
        (spi < self.routes.len()).then_some((spi, off % 8 == 4))
    }

    fn irouter_read(&self, off: u64, size: u8) -> u64 {
        let Some((spi, high)) = self.irouter_spi(off) else {
            return 0;
        };
        let v = self.routes[spi].irouter;
        match (size, high) {
            (8, _) => v,
            (_, false) => v & 0xffff_ffff,
            (_, true) => v >> 32,
        }
    }

    fn irouter_write(&mut self, off: u64, size: u8, val: u64) -> VcpuMask {
        let Some((spi, high)) = self.irouter_spi(off) else {
            return VcpuMask::EMPTY;
        };
        let old = self.routes[spi].irouter;
        let new = match (size, high) {
            (8, _) => val,
            (_, false) => (old & !0xffff_ffff) | (val & 0xffff_ffff),
            (_, true) => (old & 0xffff_ffff) | (val << 32),
        } & IROUTER_AFF_MASK;
        let r = &mut self.routes[spi];
        r.irouter = new;
        r.dest = vcpu_of_affinity(new, self.cfg.nr_vcpus).map(|v| v as u8);
        self.changed(0, spi as u32 + NR_PRIVATE as u32)
    }
}
