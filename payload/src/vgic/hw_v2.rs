//! GICv2 list registers through the GICH (virtual interface control) MMIO frame of the
//! current pCPU.

use core::ptr::{read_volatile, write_volatile};

use super::ListRegs;

const GICH_HCR: usize = 0x00;
const GICH_VTR: usize = 0x04;
const GICH_ELRSR0: usize = 0x30;
const GICH_ELRSR1: usize = 0x34;
const GICH_LR0: usize = 0x100;
const GICH_VMCR: usize = 0x08;
const GICH_APR: usize = 0xf0;
const GICH_HCR_EN: u32 = 1 << 0;
const GICH_HCR_UIE: u32 = 1 << 1;
/// GICH_LR0..GICH_LR63.
const MAX_LRS: usize = 64;

/// The GICH frame of the pCPU this runs on; `base` is its hypervisor virtual address.
#[derive(Clone, Copy, Debug)]
pub struct GichListRegs {
    pub base: usize,
}

impl GichListRegs {
    fn rd(&self, off: usize) -> u32 {
        // SAFETY: `base` maps this pCPU's GICH frame (caller's contract) and `off` is a
        // register offset inside its 4 KiB.
        unsafe { read_volatile((self.base + off) as *const u32) }
    }

    fn wr(&self, off: usize, v: u32) {
        // SAFETY: as in `rd`.
        unsafe { write_volatile((self.base + off) as *mut u32, v) }
    }

    /// Turns the virtual CPU interface on (`GICH_HCR.En`), maintenance enables off. Once
    /// per pCPU, before the first vCPU entry.
    pub fn enable(&self) {
        self.wr(GICH_HCR, GICH_HCR_EN);
    }

    /// Saves the per-vCPU interface state a pCPU switching vCPUs must keep (after sync).
    pub fn save(&self) -> VcpuIfState {
        VcpuIfState {
            vmcr: self.rd(GICH_VMCR),
            apr: self.rd(GICH_APR),
        }
    }

    /// Restores it (before flush).
    pub fn restore(&self, s: &VcpuIfState) {
        self.wr(GICH_VMCR, s.vmcr);
        self.wr(GICH_APR, s.apr);
    }
}

/// GICH_VMCR (the guest's GICV_CTLR, PMR, BPRs) and GICH_APR (active priorities).
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuIfState {
    pub vmcr: u32,
    pub apr: u32,
}

impl ListRegs for GichListRegs {
    fn count(&self) -> usize {
        (self.rd(GICH_VTR) & 0x3f) as usize + 1
    }

    fn read(&self, i: usize) -> u64 {
        if i >= MAX_LRS {
            return 0;
        }
        u64::from(self.rd(GICH_LR0 + 4 * i))
    }

    fn write(&mut self, i: usize, v: u64) {
        if i < MAX_LRS {
            self.wr(GICH_LR0 + 4 * i, v as u32);
        }
    }

    fn elrsr(&self) -> u64 {
        u64::from(self.rd(GICH_ELRSR0)) | (u64::from(self.rd(GICH_ELRSR1)) << 32)
    }

    fn set_underflow_irq(&mut self, on: bool) {
        let hcr = self.rd(GICH_HCR);
        let new = if on {
            hcr | GICH_HCR_UIE
        } else {
            hcr & !GICH_HCR_UIE
        };
        if new != hcr {
            self.wr(GICH_HCR, new);
        }
    }
}
