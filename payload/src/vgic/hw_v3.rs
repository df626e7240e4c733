//! GICv3 list registers through the `ICH_*_EL2` system registers of the current pCPU.

use core::arch::asm;

use super::ListRegs;

macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading an ICH_* register at EL2 has no side effects.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

macro_rules! msr {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the vGIC owns the virtual CPU interface state of the vCPU being switched.
        unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nomem, nostack, preserves_flags)) };
    }};
}

/// Generates a `match` over the 16 list-register encodings (ICH_LR<n>_EL2 = S3_4_C12_C1{2,3}_<n%8>).
macro_rules! for_lr {
    ($i:expr, $op:ident $(, $v:expr)?) => {
        match $i {
            0 => $op!("S3_4_C12_C12_0" $(, $v)?),
            1 => $op!("S3_4_C12_C12_1" $(, $v)?),
            2 => $op!("S3_4_C12_C12_2" $(, $v)?),
            3 => $op!("S3_4_C12_C12_3" $(, $v)?),
            4 => $op!("S3_4_C12_C12_4" $(, $v)?),
            5 => $op!("S3_4_C12_C12_5" $(, $v)?),
            6 => $op!("S3_4_C12_C12_6" $(, $v)?),
            7 => $op!("S3_4_C12_C12_7" $(, $v)?),
            8 => $op!("S3_4_C12_C13_0" $(, $v)?),
            9 => $op!("S3_4_C12_C13_1" $(, $v)?),
            10 => $op!("S3_4_C12_C13_2" $(, $v)?),
            11 => $op!("S3_4_C12_C13_3" $(, $v)?),
            12 => $op!("S3_4_C12_C13_4" $(, $v)?),
            13 => $op!("S3_4_C12_C13_5" $(, $v)?),
            14 => $op!("S3_4_C12_C13_6" $(, $v)?),
            15 => $op!("S3_4_C12_C13_7" $(, $v)?),
            _ => Default::default(),
        }
    };
}

const ICH_HCR_UIE: u64 = 1 << 1;

/// The list registers of the pCPU this runs on (GICv3 system-register interface).
#[derive(Clone, Copy, Debug, Default)]
pub struct IchListRegs;

impl IchListRegs {
    /// ICH_VTR_EL2.ListRegs + 1.
    pub fn implemented() -> usize {
        (mrs!("S3_4_C12_C11_1") & 0x1f) as usize + 1
    }
}

impl ListRegs for IchListRegs {
    fn count(&self) -> usize {
        Self::implemented()
    }

    fn read(&self, i: usize) -> u64 {
        for_lr!(i, mrs)
    }

    fn write(&mut self, i: usize, v: u64) {
        for_lr!(i, msr, v)
    }

    fn elrsr(&self) -> u64 {
        mrs!("S3_4_C12_C11_5")
    }

    fn set_underflow_irq(&mut self, on: bool) {
        let hcr = mrs!("S3_4_C12_C11_0");
        let new = if on {
            hcr | ICH_HCR_UIE
        } else {
            hcr & !ICH_HCR_UIE
        };
        if new != hcr {
            msr!("S3_4_C12_C11_0", new);
        }
    }
}
