//! System-register access and the few barrier / cache / firmware-call primitives.

/// Reads a system register by name (or `S3_...` encoding).
macro_rules! read_sysreg {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a system register has no memory effects; EL2 may read every
        // register this crate names.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

/// Writes a system register by name (or `S3_...` encoding).
macro_rules! write_sysreg {
    ($reg:literal, $val:expr) => {{
        let v: u64 = $val;
        // SAFETY: callers write EL2 or guest-context registers with values valid for this
        // hypervisor's configuration; the asm touches no Rust-visible memory.
        unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nostack)) };
    }};
}

pub fn isb() {
    // SAFETY: a barrier has no operands.
    unsafe { core::arch::asm!("isb", options(nostack)) };
}

pub fn dsb_sy() {
    // SAFETY: a barrier has no operands.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

pub fn dsb_ish() {
    // SAFETY: a barrier has no operands.
    unsafe { core::arch::asm!("dsb ish", options(nostack)) };
}

pub fn sev() {
    // SAFETY: dsb orders prior stores before the event that wakes other CPUs.
    unsafe { core::arch::asm!("dsb ish", "sev", options(nostack)) };
}

pub fn wfe() {
    // SAFETY: waits for an event; no state is touched.
    unsafe { core::arch::asm!("wfe", options(nostack, nomem)) };
}

/// Waits for an interrupt (pending ones wake it even while masked at EL2).
pub fn wfi() {
    // SAFETY: waits for an interrupt; no state is touched.
    unsafe { core::arch::asm!("dsb sy", "wfi", options(nostack)) };
}

fn dcache_line() -> u64 {
    4 << ((read_sysreg!("ctr_el0") >> 16) & 0xf)
}

/// Cleans (writes back) `[start, start + len)` to the point of coherency, so a CPU with its
/// MMU or caches off (a secondary CPU, a guest entering with caches off) sees our writes.
pub fn dcache_clean_range(start: u64, len: u64) {
    let line = dcache_line();
    let mut a = start & !(line - 1);
    while a < start + len {
        // SAFETY: cleaning a line of mapped memory does not change its contents.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) a, options(nostack)) };
        a += line;
    }
    dsb_sy();
}

/// Invalidates every stage-1 EL1 and stage-2 TLB entry in the inner-shareable domain.
pub fn tlbi_all_el1() {
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi alle1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

/// Invalidates this CPU's EL2 TLB entries.
pub fn tlbi_all_el2() {
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi alle2",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

/// An SMCCC call to firmware (EL3) through SMC.
pub fn smc(fid: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    let r: u64;
    // SAFETY: SMCCC clobbers at most x0-x17; firmware does not touch our memory.
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") fid => r,
            inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
            out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
            out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    r
}

/// This CPU's index (set by head.S in TPIDR_EL2).
pub fn cpu_index() -> usize {
    read_sysreg!("tpidr_el2") as usize
}
