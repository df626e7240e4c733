//! GICv2 distributor (GICD) emulation. The CPU interface is the hardware GICV frame mapped
//! at the guest's GICC address, so only the distributor traps.
//!
//! INTIDs 0..31 are banked per accessing vCPU. SGIs keep one pending bit per source CPU
//! (GICD_SPENDSGIR/CPENDSGIR), delivered one source at a time with GICH_LR.CPUID.

use super::dist::IIDR;
use super::irq_regs::BitReg;
use super::{sgi, VcpuMask, Vgic, NR_PRIVATE};

const CTLR_ENABLE_G0: u32 = 1 << 0;
const CTLR_ENABLE_G1: u32 = 1 << 1;
/// ArchRev 2.
const PIDR2_V2: u32 = 0x2b;

fn id_reg_v2(off: u64) -> u32 {
    match off {
        0xfe8 => PIDR2_V2,
        0xff0 => 0x0d,
        0xff4 => 0xf0,
        0xff8 => 0x05,
        0xffc => 0xb1,
        _ => 0,
    }
}

impl Vgic {
    fn dist_v2_typer(&self) -> u32 {
        let lines = (NR_PRIVATE as u32 + self.cfg.nr_spis).div_ceil(32) - 1;
        (((self.cfg.nr_vcpus as u32 - 1) & 7) << 5) | lines
    }

    fn cpu_bits(&self) -> u8 {
        ((1u32 << self.cfg.nr_vcpus) - 1) as u8
    }

    /// `n` ITARGETSR bytes from INTID `first` as seen by `vcpu`. With a single CPU they are
    /// RAZ/WI (GICv2: "uniprocessor implementation"), every SPI going to vCPU 0.
    fn targets_read(&self, vcpu: usize, first: u32, n: u8) -> u64 {
        if self.cfg.nr_vcpus == 1 {
            return 0;
        }
        (0..u32::from(n)).fold(0, |acc, i| {
            let id = first + i;
            let t = if id < NR_PRIVATE as u32 {
                1u8 << vcpu
            } else {
                self.routes
                    .get((id - NR_PRIVATE as u32) as usize)
                    .map_or(0, |r| r.targets)
            };
            acc | (u64::from(t) << (8 * i))
        })
    }

    fn targets_write(&mut self, first: u32, n: u8, val: u64) -> VcpuMask {
        let mut kick = VcpuMask::EMPTY;
        if self.cfg.nr_vcpus == 1 {
            return kick;
        }
        let cpus = self.cpu_bits();
        for i in 0..u32::from(n) {
            let id = first + i;
            let Some(spi) = id.checked_sub(NR_PRIVATE as u32) else {
                continue; // banked SGI/PPI targets are read-only
            };
            let Some(r) = self.routes.get_mut(spi as usize) else {
                continue;
            };
            r.targets = (val >> (8 * i)) as u8 & cpus;
            // No 1-of-N choice: the lowest-numbered target takes it.
            r.dest = (r.targets != 0).then(|| r.targets.trailing_zeros() as u8);
            kick |= self.changed(0, id);
        }
        kick
    }

    fn sgi_sources_read(&self, vcpu: usize, first: u32, n: u8) -> u64 {
        let st = &self.vcpus[vcpu];
        (0..n as usize).fold(0, |acc, i| {
            let id = first as usize + i;
            let mut src = st.sgi_sources[id];
            let irq = &st.private[id];
            if irq.in_lr && irq.lr_pending && !irq.lr_drop_pending {
                src |= 1 << irq.lr_source;
            }
            acc | (u64::from(src) << (8 * i))
        })
    }

    fn sgi_sources_write(
        &mut self,
        vcpu: usize,
        first: u32,
        n: u8,
        val: u64,
        set: bool,
    ) -> VcpuMask {
        let mut kick = VcpuMask::EMPTY;
        let cpus = self.cpu_bits();
        for i in 0..u32::from(n) {
            let id = first + i;
            let bits = (val >> (8 * i)) as u8 & cpus;
            if bits == 0 {
                continue;
            }
            let st = &mut self.vcpus[vcpu];
            let src = &mut st.sgi_sources[id as usize];
            if set {
                *src |= bits;
            } else {
                *src &= !bits;
            }
            let left = *src != 0;
            let irq = &mut st.private[id as usize];
            irq.pending = left;
            if !set && irq.in_lr && irq.lr_pending && bits & (1 << irq.lr_source) != 0 {
                irq.lr_drop_pending = true;
            }
            kick |= self.changed(vcpu, id);
        }
        kick
    }

    /// `None` = access size not allowed for this register.
    pub(super) fn dist_v2_read(&self, vcpu: usize, off: u64, size: u8) -> Option<u64> {
        let word = size == 4;
        let bytes = size <= 4;
        let v = match off {
            0x000 if word => {
                u64::from(u32::from(self.enable_grp0) * CTLR_ENABLE_G0)
                    | u64::from(u32::from(self.enable_grp1) * CTLR_ENABLE_G1)
            }
            0x004 if word => u64::from(self.dist_v2_typer()),
            0x008 if word => u64::from(IIDR),
            0x080..=0x3ff if word => {
                let (reg, first) = BitReg::decode(off)?;
                u64::from(self.bits_read(vcpu, reg, first))
            }
            0x400..=0x7ff if bytes => self.prio_read(vcpu, (off - 0x400) as u32, size),
            0x800..=0xbff if bytes => self.targets_read(vcpu, (off - 0x800) as u32, size),
            0xc00..=0xcff if word => {
                u64::from(self.cfg_read(vcpu, ((off - 0xc00) / 4 * 16) as u32))
            }
            0xf10..=0xf1f if bytes => self.sgi_sources_read(vcpu, (off - 0xf10) as u32, size),
            0xf20..=0xf2f if bytes => self.sgi_sources_read(vcpu, (off - 0xf20) as u32, size),
            0xfd0..=0xfff if word => u64::from(id_reg_v2(off)),
            // GICD_SGIR is write-only; the rest of the first block is reserved.
            0x000..=0x07f | 0x080..=0x3ff | 0xc00..=0xcff | 0xf00..=0xf0f | 0xfd0..=0xfff
                if word =>
            {
                0
            }
            0x000..=0xcff | 0xf00..=0xf2f | 0xfd0..=0xfff => return None,
            _ => 0,
        };
        Some(v)
    }

    pub(super) fn dist_v2_write(
        &mut self,
        vcpu: usize,
        off: u64,
        size: u8,
        val: u64,
    ) -> Option<VcpuMask> {
        let word = size == 4;
        let bytes = size <= 4;
        let v32 = val as u32;
        let kick = match off {
            0x000 if word => {
                self.set_group_enables(v32 & CTLR_ENABLE_G0 != 0, v32 & CTLR_ENABLE_G1 != 0)
            }
            0x080..=0x3ff if word => {
                let (reg, first) = BitReg::decode(off)?;
                self.bits_write(vcpu, reg, first, v32)
            }
            0x400..=0x7ff if bytes => self.prio_write(vcpu, (off - 0x400) as u32, size, val),
            0x800..=0xbff if bytes => self.targets_write((off - 0x800) as u32, size, val),
            0xc00..=0xcff if word => {
                self.cfg_write(vcpu, ((off - 0xc00) / 4 * 16) as u32, v32);
                VcpuMask::EMPTY
            }
            0xf00 if word => {
                let (intid, targets) = sgi::sgir_targets(v32, vcpu, self.cfg.nr_vcpus);
                let mut kick = VcpuMask::EMPTY;
                for t in targets.iter() {
                    kick |= self.set_private_pending(t, intid, vcpu);
                }
                kick
            }
            0xf10..=0xf1f if bytes => {
                self.sgi_sources_write(vcpu, (off - 0xf10) as u32, size, val, false)
            }
            0xf20..=0xf2f if bytes => {
                self.sgi_sources_write(vcpu, (off - 0xf20) as u32, size, val, true)
            }
            0x000..=0x07f | 0xf04..=0xf0f | 0xfd0..=0xfff if word => VcpuMask::EMPTY,
            0x000..=0xcff | 0xf00..=0xf2f | 0xfd0..=0xfff => return None,
            _ => VcpuMask::EMPTY,
        };
        Some(kick)
    }
}
