//! Register-level operations shared by GICD (v2, v3) and GICR: the bit-per-interrupt
//! set/clear pairs, the byte-per-interrupt priorities and the two-bits-per-interrupt ICFGR.
//!
//! `vcpu` is the bank the private interrupts (0..31) come from: the accessing vCPU for a
//! GICv2 distributor, the redistributor's vCPU for GICv3. INTIDs the vGIC does not implement
//! read as zero and ignore writes.

use super::{GicVersion, VcpuMask, Vgic};

/// A bit-per-interrupt register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitReg {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

impl BitReg {
    /// Which register a GICD/GICR offset in 0x080..0x400 is, and the index of its first
    /// INTID (32 per 4-byte register).
    pub fn decode(off: u64) -> Option<(BitReg, u32)> {
        let reg = match off & !0x7f {
            0x080 => BitReg::Group,
            0x100 => BitReg::SetEnable,
            0x180 => BitReg::ClearEnable,
            0x200 => BitReg::SetPending,
            0x280 => BitReg::ClearPending,
            0x300 => BitReg::SetActive,
            0x380 => BitReg::ClearActive,
            _ => return None,
        };
        Some((reg, ((off & 0x7f) / 4) as u32 * 32))
    }
}

impl Vgic {
    pub(super) fn bits_read(&self, vcpu: usize, reg: BitReg, first: u32) -> u32 {
        let mut v = 0;
        for b in 0..32 {
            let id = first + b;
            let Some(irq) = self.irq(vcpu, id) else {
                continue;
            };
            let set = match reg {
                BitReg::Group => irq.group1,
                BitReg::SetEnable | BitReg::ClearEnable => irq.enabled,
                // In flight counts too: the list register holds the state.
                BitReg::SetPending | BitReg::ClearPending => {
                    irq.pending || (irq.in_lr && irq.lr_pending && !irq.lr_drop_pending)
                }
                BitReg::SetActive | BitReg::ClearActive => irq.active,
            };
            if set {
                v |= 1 << b;
            }
        }
        v
    }

    pub(super) fn bits_write(
        &mut self,
        vcpu: usize,
        reg: BitReg,
        first: u32,
        val: u32,
    ) -> VcpuMask {
        let mut kick = VcpuMask::EMPTY;
        if reg == BitReg::Group {
            // A full register write: every bit, set or clear, is stored.
            for b in 0..32 {
                if let Some(irq) = self.irq_mut(vcpu, first + b) {
                    irq.group1 = val & (1 << b) != 0;
                    kick |= self.changed(vcpu, first + b);
                }
            }
            return kick;
        }
        let v2 = self.cfg.version == GicVersion::V2;
        for b in VcpuMask(u64::from(val)).iter() {
            let id = first + b as u32;
            let sgi_v2 = v2 && id < 16;
            let mut deactivate = None;
            let Some(irq) = self.irq_mut(vcpu, id) else {
                continue;
            };
            match reg {
                BitReg::Group => {} // handled above
                BitReg::SetEnable => irq.enabled = true,
                BitReg::ClearEnable => irq.enabled = false,
                // GICv2 SGIs: pending is per source, set through GICD_SPENDSGIR only.
                BitReg::SetPending if sgi_v2 => {}
                BitReg::ClearPending if sgi_v2 => {}
                BitReg::SetPending => irq.pending = true,
                BitReg::ClearPending => {
                    let was = irq.pending;
                    // Only the latch clears: an asserted level line keeps it pending.
                    irq.pending = irq.level && irq.line;
                    if irq.in_lr && irq.lr_pending && !irq.pending {
                        irq.lr_drop_pending = true;
                    } else if was && !irq.pending {
                        // The guest will never EOI it: the physical one must be released.
                        deactivate = irq.hw;
                    }
                }
                BitReg::SetActive | BitReg::ClearActive => {
                    if reg == BitReg::ClearActive && irq.active {
                        deactivate = irq.hw;
                    }
                    irq.active = reg == BitReg::SetActive;
                    irq.lr_active_override = irq.in_lr;
                }
            }
            if let Some(p) = deactivate {
                self.queue_hw_deactivation(p);
            }
            kick |= self.changed(vcpu, id);
        }
        kick
    }

    /// `n` priority bytes starting at INTID `first`, little-endian.
    pub(super) fn prio_read(&self, vcpu: usize, first: u32, n: u8) -> u64 {
        (0..u32::from(n)).fold(0, |acc, i| {
            let p = self.irq(vcpu, first + i).map_or(0, |irq| irq.priority);
            acc | (u64::from(p) << (8 * i))
        })
    }

    pub(super) fn prio_write(&mut self, vcpu: usize, first: u32, n: u8, val: u64) -> VcpuMask {
        let mut kick = VcpuMask::EMPTY;
        for i in 0..u32::from(n) {
            if let Some(irq) = self.irq_mut(vcpu, first + i) {
                irq.priority = (val >> (8 * i)) as u8;
                kick |= self.changed(vcpu, first + i);
            }
        }
        kick
    }

    /// ICFGR for the 16 INTIDs from `first`: bit 2k+1 set = edge-triggered.
    pub(super) fn cfg_read(&self, vcpu: usize, first: u32) -> u32 {
        let mut v = 0;
        for k in 0..16 {
            let id = first + k;
            match self.irq(vcpu, id) {
                Some(_) if id < 16 => v |= 2 << (2 * k),
                Some(irq) if !irq.level => v |= 2 << (2 * k),
                _ => {}
            }
        }
        v
    }

    pub(super) fn cfg_write(&mut self, vcpu: usize, first: u32, val: u32) {
        for k in 0..16 {
            let id = first + k;
            // SGIs are always edge-triggered (read-only field).
            if id < 16 {
                continue;
            }
            if let Some(irq) = self.irq_mut(vcpu, id) {
                irq.level = val & (2 << (2 * k)) == 0;
            }
        }
    }
}
