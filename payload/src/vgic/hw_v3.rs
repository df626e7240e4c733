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

const ICH_HCR_EN: u64 = 1 << 0;
const ICH_HCR_UIE: u64 = 1 << 1;

/// Turns the virtual CPU interface of this pCPU on (`ICH_HCR_EL2.En`), every other trap
/// and maintenance enable off. Once per pCPU, before the first vCPU entry.
pub fn enable_virtual_cpu_interface() {
    msr!("S3_4_C12_C11_0", ICH_HCR_EN);
}

/// Number of implemented `ICH_AP{0,1}R<n>_EL2` (from ICH_VTR_EL2.PREbits).
fn nr_aprs() -> usize {
    match ((mrs!("S3_4_C12_C11_1") >> 26) & 7) + 1 {
        7 => 4,
        6 => 2,
        _ => 1,
    }
}

/// ICH_AP0R<n>_EL2 = S3_4_C12_C8_<n>, ICH_AP1R<n>_EL2 = S3_4_C12_C9_<n>.
macro_rules! for_apr {
    (0, $i:expr, $op:ident $(, $v:expr)?) => {
        match $i {
            0 => $op!("S3_4_C12_C8_0" $(, $v)?),
            1 => $op!("S3_4_C12_C8_1" $(, $v)?),
            2 => $op!("S3_4_C12_C8_2" $(, $v)?),
            3 => $op!("S3_4_C12_C8_3" $(, $v)?),
            _ => Default::default(),
        }
    };
    (1, $i:expr, $op:ident $(, $v:expr)?) => {
        match $i {
            0 => $op!("S3_4_C12_C9_0" $(, $v)?),
            1 => $op!("S3_4_C12_C9_1" $(, $v)?),
            2 => $op!("S3_4_C12_C9_2" $(, $v)?),
            3 => $op!("S3_4_C12_C9_3" $(, $v)?),
            _ => Default::default(),
        }
    };
}

/// The per-vCPU part of the virtual CPU interface besides the list registers: what a
/// pCPU switching between vCPUs must save after `sync_lrs` and restore before `flush_lrs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuIfState {
    /// ICH_VMCR_EL2: the guest's PMR, BPRs, group enables, EOImode.
    pub vmcr: u64,
    /// ICH_AP0R<n>_EL2 / ICH_AP1R<n>_EL2: active priorities (nested preemption).
    pub ap0r: [u64; 4],
    pub ap1r: [u64; 4],
}

impl VcpuIfState {
    pub fn save(&mut self) {
        self.vmcr = mrs!("S3_4_C12_C11_7");
        for i in 0..nr_aprs() {
            self.ap0r[i] = for_apr!(0, i, mrs);
            self.ap1r[i] = for_apr!(1, i, mrs);
        }
    }

    pub fn restore(&self) {
        msr!("S3_4_C12_C11_7", self.vmcr);
        for i in 0..nr_aprs() {
            for_apr!(0, i, msr, self.ap0r[i]);
            for_apr!(1, i, msr, self.ap1r[i]);
        }
    }
}

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
