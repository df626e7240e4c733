//! Device register accessors. Plain single loads and stores without writeback, written in
//! assembly: `read_volatile` may compile to pre-indexed or paired forms, which leave no
//! instruction syndrome (ISV=0) for a hypervisor to emulate the access from.

use core::arch::asm;

/// # Safety
/// `addr` must be a 32-bit device register mapped as Device memory.
pub unsafe fn read32(addr: usize) -> u32 {
    let v: u32;
    // SAFETY: per this function's contract.
    unsafe { asm!("ldr {v:w}, [{a}]", v = out(reg) v, a = in(reg) addr, options(nostack)) };
    v
}

/// # Safety
/// As for [`read32`].
pub unsafe fn write32(addr: usize, v: u32) {
    // SAFETY: per this function's contract.
    unsafe { asm!("str {v:w}, [{a}]", v = in(reg) v, a = in(reg) addr, options(nostack)) };
}

/// # Safety
/// `addr` must be a 64-bit device register mapped as Device memory.
pub unsafe fn read64(addr: usize) -> u64 {
    let v: u64;
    // SAFETY: per this function's contract.
    unsafe { asm!("ldr {v}, [{a}]", v = out(reg) v, a = in(reg) addr, options(nostack)) };
    v
}
