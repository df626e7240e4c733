//! Executing from a guest physical address with no memory behind it (just past RAM) must come
//! back as an instruction abort at that address, not kill or hang the guest.

use core::arch::asm;

use crate::platform::Platform;
use crate::report::Report;
use crate::vectors::probe;

/// 1 GiB blocks: the boot map is Normal (executable) only in the blocks holding the Image and
/// the DTB, so only there does the fetch reach stage 2.
const BLOCK_SHIFT: u32 = 30;

pub fn run(r: &mut Report, p: &Platform, dtb: usize) {
    let target = p.ram.top();
    let image = run as *const () as usize as u64;
    let block = target >> BLOCK_SHIFT;
    if target == 0 || p.occupied.overlaps(target, target + 4) {
        r.skip("iabort-past-ram", format_args!("{target:#x} is not free"));
        return;
    }
    if block != image >> BLOCK_SHIFT && block != dtb as u64 >> BLOCK_SHIFT {
        r.skip(
            "iabort-past-ram",
            format_args!("{target:#x} is not in an executable block"),
        );
        return;
    }
    let (_, trap) = probe(|| {
        // SAFETY: the branch faults on its first fetch; the probe returns to the link register,
        // right after the blr. x30 is clobbered by the blr itself; everything else is preserved
        // by the exception entry and return.
        unsafe { asm!("blr {t}", t = in(reg) target, out("x30") _, options(nostack)) };
    });
    match trap {
        Some(t) if t.esr.is_instruction_abort() && t.elr == target => r.result(
            "iabort-past-ram",
            true,
            format_args!(
                "{target:#x}: instruction abort (ESR {:#x}, IFSC {:#x})",
                t.esr.0,
                t.esr.dfsc()
            ),
        ),
        Some(t) => r.result(
            "iabort-past-ram",
            false,
            format_args!(
                "{target:#x}: ESR {:#x} ELR {:#x} FAR {:#x}",
                t.esr.0, t.elr, t.far
            ),
        ),
        None => r.result(
            "iabort-past-ram",
            false,
            format_args!("{target:#x}: executed without an abort"),
        ),
    }
}
