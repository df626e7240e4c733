//! GICv2 list registers through the GICH (virtual interface control) MMIO frame of the
//! current pCPU.

use core::ptr::{read_volatile, write_volatile};

use super::ListRegs;

const GICH_HCR: usize = 0x00;
const GICH_VTR: usize = 0x04;
const GICH_ELRSR0: usize = 0x30;
const GICH_ELRSR1: usize = 0x34;
const GICH_LR0: usize = 0x100;
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
