//! GICv3 redistributor (GICR) emulation: one RD_base + SGI_base pair per vCPU, 128 KiB apart.
//!
//! No LPIs: GICR_CTLR, PROPBASER and PENDBASER are RAZ/WI and GICR_TYPER.PLPIS = 0.

use super::dist::{id_reg_v3, IIDR};
use super::irq_regs::BitReg;
use super::{vcpu_affinity, VcpuMask, Vgic};

const SGI_BASE: u64 = 0x1_0000;
const TYPER_LAST: u64 = 1 << 4;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

impl Vgic {
    fn redist_typer(&self, rd: usize) -> u64 {
        let mut v = (vcpu_affinity(rd) << 32) | ((rd as u64 & 0xffff) << 8);
        if rd + 1 == self.cfg.nr_vcpus {
            v |= TYPER_LAST;
        }
        v
    }

    fn waker(&self, rd: usize) -> u32 {
        // ChildrenAsleep follows ProcessorSleep at once: there is no interface to quiesce.
        if self.vcpus[rd].processor_sleep {
            WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
        } else {
            0
        }
    }

    /// `None` = access size not allowed for this register.
    pub(super) fn redist_read(&self, rd: usize, off: u64, size: u8) -> Option<u64> {
        let word = size == 4;
        if off >= SGI_BASE {
            return self.redist_sgi_read(rd, off - SGI_BASE, size);
        }
        let v = match off {
            0x0004 if word => u64::from(IIDR),
            0x0008 if size == 8 => self.redist_typer(rd),
            0x0008 if word => self.redist_typer(rd) & 0xffff_ffff,
            0x000c if word => self.redist_typer(rd) >> 32,
            0x0014 if word => u64::from(self.waker(rd)),
            // CTLR (no LPIs, RWP never set), STATUSR, SETLPIR..INVALLR, SYNCR: all zero.
            0x0000..=0x00ff if size >= 4 => 0,
            0xffd0..=0xffff if word => u64::from(id_reg_v3(off)),
            0x0000..=0x00ff | 0xffd0..=0xffff => return None,
            _ => 0,
        };
        Some(v)
    }

    pub(super) fn redist_write(
        &mut self,
        rd: usize,
        off: u64,
        size: u8,
        val: u64,
    ) -> Option<VcpuMask> {
        if off >= SGI_BASE {
            return self.redist_sgi_write(rd, off - SGI_BASE, size, val);
        }
        match off {
            0x0014 if size == 4 => {
                self.vcpus[rd].processor_sleep = val as u32 & WAKER_PROCESSOR_SLEEP != 0;
            }
            0x0000..=0x00ff if size >= 4 => {}
            0xffd0..=0xffff if size == 4 => {}
            0x0000..=0x00ff | 0xffd0..=0xffff => return None,
            _ => {}
        }
        Some(VcpuMask::EMPTY)
    }

    fn redist_sgi_read(&self, rd: usize, off: u64, size: u8) -> Option<u64> {
        let word = size == 4;
        let v = match off {
            // Only register 0 of each bank exists (no extended PPIs).
            0x0080 | 0x0100 | 0x0180 | 0x0200 | 0x0280 | 0x0300 | 0x0380 if word => {
                let (reg, first) = BitReg::decode(off)?;
                u64::from(self.bits_read(rd, reg, first))
            }
            0x0400..=0x041f if size <= 4 => self.prio_read(rd, (off - 0x400) as u32, size),
            0x0c00 if word => u64::from(self.cfg_read(rd, 0)),
            0x0c04 if word => u64::from(self.cfg_read(rd, 16)),
            0xffd0..=0xffff if word => u64::from(id_reg_v3(off)),
            0x0080..=0x03ff | 0x0400..=0x041f | 0x0c00..=0x0cff | 0xffd0..=0xffff => {
                if word {
                    0
                } else {
                    return None;
                }
            }
            // IGRPMODR0 and NSACR are RAZ/WI with DS = 1; the rest is reserved.
            _ => 0,
        };
        Some(v)
    }

    fn redist_sgi_write(&mut self, rd: usize, off: u64, size: u8, val: u64) -> Option<VcpuMask> {
        let word = size == 4;
        let kick = match off {
            0x0080 | 0x0100 | 0x0180 | 0x0200 | 0x0280 | 0x0300 | 0x0380 if word => {
                let (reg, first) = BitReg::decode(off)?;
                self.bits_write(rd, reg, first, val as u32)
            }
            0x0400..=0x041f if size <= 4 => self.prio_write(rd, (off - 0x400) as u32, size, val),
            0x0c00 if word => {
                self.cfg_write(rd, 0, val as u32);
                VcpuMask::EMPTY
            }
            0x0c04 if word => {
                self.cfg_write(rd, 16, val as u32);
                VcpuMask::EMPTY
            }
            0x0080..=0x03ff | 0x0400..=0x041f | 0x0c00..=0x0cff | 0xffd0..=0xffff => {
                if word {
                    VcpuMask::EMPTY
                } else {
                    return None;
                }
            }
            _ => VcpuMask::EMPTY,
        };
        Some(kick)
    }
}
