//! The generic timer's virtual count (`CNTVCT_EL0`), which Linux lets EL0 read. In a guest it
//! counts from its `CNTVOFF_EL2`; in VM0 it equals the physical count.

#[derive(Debug, thiserror::Error)]
#[error("the virtual counter CNTVCT_EL0 exists only on aarch64 (this is {0})")]
pub struct NoCounter(&'static str);

/// The virtual count now, after every earlier instruction completed (ISB), so a reading
/// taken right after an access includes all of it.
#[cfg(target_arch = "aarch64")]
pub fn now() -> Result<u64, NoCounter> {
    let t: u64;
    // SAFETY: reads a system register EL0 may read; no memory is touched.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) t, options(nostack)) };
    Ok(t)
}

/// Ticks per second.
#[cfg(target_arch = "aarch64")]
pub fn frequency() -> Result<u64, NoCounter> {
    let f: u64;
    // SAFETY: reads a system register EL0 may read; no memory is touched.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
    Ok(f)
}

#[cfg(not(target_arch = "aarch64"))]
pub fn now() -> Result<u64, NoCounter> {
    Err(NoCounter(std::env::consts::ARCH))
}

#[cfg(not(target_arch = "aarch64"))]
pub fn frequency() -> Result<u64, NoCounter> {
    Err(NoCounter(std::env::consts::ARCH))
}
