//! Just enough of the physical GIC (QEMU virt layout, v3 or v2) to have a physical SPI
//! active for the HW-bit check.

use crate::sysreg::{mrs, msr};
use core::ptr::{read_volatile, write_volatile};

const GICD: usize = 0x0800_0000;
const GICR: usize = 0x080a_0000;
const GICC: usize = 0x0801_0000;
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

fn wr8(a: usize, v: u8) {
    // SAFETY: byte-wide IPRIORITYR/ITARGETSR access, allowed by the architecture.
    unsafe { write_volatile(a as *mut u8, v) }
}

fn bit(base: usize) -> (usize, u32) {
    (base + (SPI as usize / 32) * 4, 1 << (SPI % 32))
}

/// Enables the distributor, routes SPI 40 to CPU 0 and sets up CPU 0's interface with
/// split priority drop / deactivation (EOImode 1), as a hypervisor forwarding interrupts.
pub fn init(v3: bool) {
    wr8(GICD + 0x400 + SPI as usize, 0x80);
    if v3 {
        wr(GICR + 0x14, rd(GICR + 0x14) & !0x2);
        while rd(GICR + 0x14) & 0x4 != 0 {}
        wr(GICD, (1 << 4) | 0x3);
        while rd(GICD) & (1 << 31) != 0 {}
        let (grp, m) = bit(GICD + 0x80);
        wr(grp, rd(grp) | m);
        // SAFETY: GICD_IROUTER<n> is a 64-bit register; Aff 0.0.0.0 is CPU 0.
        unsafe { write_volatile((GICD + 0x6000 + 8 * SPI as usize) as *mut u64, 0) };
        msr!("S3_0_C4_C6_0", 0xff); // ICC_PMR_EL1
        msr!("S3_0_C12_C12_4", mrs!("S3_0_C12_C12_4") | 0x2); // ICC_CTLR_EL1.EOImode
        msr!("S3_0_C12_C12_7", 1); // ICC_IGRPEN1_EL1
    } else {
        wr(GICD, 1);
        wr8(GICD + 0x800 + SPI as usize, 1);
        wr(GICC + 0x4, 0xff); // GICC_PMR
        wr(GICC, 1 | (1 << 9)); // GICC_CTLR: EnableGrp0, EOImode
    }
    let (en, m) = bit(GICD + 0x100);
    wr(en, m);
}

/// The maintenance interrupt (PPI 25) on, priority above everything the test uses.
pub fn enable_maintenance(v3: bool) {
    let (base, ppi) = (if v3 { GICR + 0x1_0000 } else { GICD }, 25);
    wr8(base + 0x400 + ppi, 0x10);
    if v3 {
        wr(base + 0x80, rd(base + 0x80) | 1 << ppi);
    }
    wr(base + 0x100, 1 << ppi);
}

/// The physical SGI the harness kicks the other CPU with.
pub const KICK_SGI: u32 = 8;

/// The second CPU's share of the set-up: its redistributor (v3) or banked registers (v2),
/// its CPU interface, and the kick SGI enabled.
pub fn init_secondary(v3: bool) {
    if v3 {
        let gicr1 = GICR + 0x2_0000;
        wr(gicr1 + 0x14, rd(gicr1 + 0x14) & !0x2);
        while rd(gicr1 + 0x14) & 0x4 != 0 {}
        let sgi = gicr1 + 0x1_0000;
        wr(sgi + 0x80, rd(sgi + 0x80) | 1 << KICK_SGI);
        wr8(sgi + 0x400 + KICK_SGI as usize, 0x10);
        wr(sgi + 0x100, 1 << KICK_SGI);
        msr!("S3_0_C4_C6_0", 0xff); // ICC_PMR_EL1
        msr!("S3_0_C12_C12_4", mrs!("S3_0_C12_C12_4") | 0x2); // ICC_CTLR_EL1.EOImode
        msr!("S3_0_C12_C12_7", 1); // ICC_IGRPEN1_EL1
    } else {
        // Banked for the accessing CPU.
        wr8(GICD + 0x400 + KICK_SGI as usize, 0x10);
        wr(GICD + 0x100, 1 << KICK_SGI);
        wr(GICC + 0x4, 0xff); // GICC_PMR
        wr(GICC, 1 | (1 << 9)); // GICC_CTLR: EnableGrp0, EOImode
    }
}

/// Sends the kick SGI to physical CPU `cpu` (Aff0 = `cpu`).
pub fn kick(v3: bool, cpu: usize) {
    if v3 {
        msr!("S3_0_C12_C11_5", (u64::from(KICK_SGI) << 24) | (1 << cpu)); // ICC_SGI1R_EL1
    } else {
        wr(GICD + 0xf00, (1 << (16 + cpu)) | KICK_SGI); // GICD_SGIR, target list
    }
}

/// Acknowledges the highest-priority pending physical interrupt.
pub fn ack(v3: bool) -> u32 {
    if v3 {
        mrs!("S3_0_C12_C12_0") as u32 // ICC_IAR1_EL1
    } else {
        rd(GICC + 0xc) // GICC_IAR
    }
}

/// Priority drop and deactivation (EOImode 1 splits them).
pub fn eoi_deactivate(v3: bool, iar: u32) {
    if v3 {
        msr!("S3_0_C12_C12_1", u64::from(iar)); // ICC_EOIR1_EL1
        msr!("S3_0_C12_C11_1", u64::from(iar)); // ICC_DIR_EL1
    } else {
        wr(GICC + 0x10, iar); // GICC_EOIR
        wr(GICC + 0x1000, iar); // GICC_DIR
    }
}

/// Makes SPI 40 pending, acknowledges it and drops its priority, leaving it active as a
/// hypervisor does before forwarding it. Returns whether it is active.
pub fn make_active(v3: bool) -> bool {
    let (pend, m) = bit(GICD + 0x200);
    wr(pend, m);
    let mut iar = 1023;
    for _ in 0..100_000 {
        iar = if v3 {
            mrs!("S3_0_C12_C12_0") // ICC_IAR1_EL1
        } else {
            u64::from(rd(GICC + 0xc)) // GICC_IAR
        };
        if iar & 0x3ff != 1023 {
            break;
        }
    }
    if iar != u64::from(SPI) {
        return false;
    }
    // Priority drop only (EOImode 1).
    if v3 {
        msr!("S3_0_C12_C12_1", iar); // ICC_EOIR1_EL1
    } else {
        wr(GICC + 0x10, iar as u32); // GICC_EOIR
    }
    is_active()
}

pub fn is_active() -> bool {
    let (act, m) = bit(GICD + 0x300);
    rd(act) & m != 0
}
