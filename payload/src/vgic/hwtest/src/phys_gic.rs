//! Just enough of the physical GICv3 (QEMU virt layout) to have a physical SPI active
//! for the HW-bit check.

use crate::sysreg::{mrs, msr};
use core::ptr::{read_volatile, write_volatile};

const GICD: usize = 0x0800_0000;
const GICR: usize = 0x080a_0000;
/// The physical SPI forwarded to the guest.
pub const SPI: u32 = 40;

fn rd(a: usize) -> u32 {
    // SAFETY: QEMU virt GIC registers, identity-mapped (MMU off).
    unsafe { read_volatile(a as *const u32) }
}

fn wr(a: usize, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { write_volatile(a as *mut u32, v) }
}

fn bit(base: usize) -> (usize, u32) {
    (base + (SPI as usize / 32) * 4, 1 << (SPI % 32))
}

/// Wakes CPU 0's redistributor, enables the distributor, routes SPI 40 (group 1) to CPU 0
/// and sets up the EL2 CPU interface with split priority drop / deactivation (EOImode 1).
pub fn init() {
    wr(GICR + 0x14, rd(GICR + 0x14) & !0x2);
    while rd(GICR + 0x14) & 0x4 != 0 {}
    wr(GICD, (1 << 4) | 0x3);
    while rd(GICD) & (1 << 31) != 0 {}
    let (grp, m) = bit(GICD + 0x80);
    wr(grp, rd(grp) | m);
    // SAFETY: byte-wide IPRIORITYR access, allowed by the architecture.
    unsafe { write_volatile((GICD + 0x400 + SPI as usize) as *mut u8, 0x80) };
    // SAFETY: GICD_IROUTER<n> is a 64-bit register; Aff 0.0.0.0 is CPU 0.
    unsafe { write_volatile((GICD + 0x6000 + 8 * SPI as usize) as *mut u64, 0) };
    let (en, m) = bit(GICD + 0x100);
    wr(en, m);
    msr!("S3_0_C4_C6_0", 0xff); // ICC_PMR_EL1
    msr!("S3_0_C12_C12_4", mrs!("S3_0_C12_C12_4") | 0x2); // ICC_CTLR_EL1.EOImode = 1
    msr!("S3_0_C12_C12_7", 1); // ICC_IGRPEN1_EL1
}

/// Makes SPI 40 pending, acknowledges it and drops its priority, leaving it active as a
/// hypervisor does before forwarding it. Returns whether it is active.
pub fn make_active() -> bool {
    let (pend, m) = bit(GICD + 0x200);
    wr(pend, m);
    let mut iar = 1023;
    for _ in 0..100_000 {
        iar = mrs!("S3_0_C12_C12_0"); // ICC_IAR1_EL1
        if iar != 1023 {
            break;
        }
    }
    if iar != u64::from(SPI) {
        return false;
    }
    msr!("S3_0_C12_C12_1", iar); // ICC_EOIR1_EL1: priority drop only
    is_active()
}

pub fn is_active() -> bool {
    let (act, m) = bit(GICD + 0x300);
    rd(act) & m != 0
}
