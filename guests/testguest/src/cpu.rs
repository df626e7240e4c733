//! The few EL1 system registers the guest reads.

use core::arch::asm;

/// The virtual counter, after an ISB so it is not read early.
#[inline(always)]
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: CNTVCT_EL0 is readable at EL1.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

pub fn counter_freq() -> u64 {
    let v: u64;
    // SAFETY: CNTFRQ_EL0 is readable at EL1.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// MPIDR_EL1 affinity fields (Aff3..Aff0), as PSCI takes them.
pub fn mpidr() -> u64 {
    let v: u64;
    // SAFETY: MPIDR_EL1 is readable at EL1.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack)) };
    v & 0xff_00ff_ffff
}

/// Which exception levels the CPU says it implements (ID_AA64PFR0_EL1).
pub struct Features {
    pub el2: bool,
    pub el3: bool,
    pub gic_sysregs: bool,
}

pub fn features() -> Features {
    let v: u64;
    // SAFETY: ID_AA64PFR0_EL1 is readable at EL1.
    unsafe { asm!("mrs {}, id_aa64pfr0_el1", out(reg) v, options(nomem, nostack)) };
    Features {
        el2: (v >> 8) & 0xf != 0,
        el3: (v >> 12) & 0xf != 0,
        gic_sysregs: (v >> 24) & 0xf != 0,
    }
}

pub fn irq_enable() {
    // SAFETY: the vectors are installed; the IRQ handler is gic::handle_irq.
    unsafe { asm!("msr daifclr, #2", options(nomem, nostack)) };
}

pub fn irq_disable() {
    // SAFETY: masking interrupts is always allowed.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
}
