//! A load pair from the GIC distributor: under a hypervisor this is an MMIO trap without a valid
//! instruction syndrome (ISV=0), which it cannot emulate from ESR alone. It must either emulate
//! it correctly or give the guest a data abort; never hang or die.

use core::arch::asm;

use crate::report::Report;
use crate::vectors::probe;

const GICD_CTLR: usize = 0x0;
const GICD_TYPER: usize = 0x4;

fn read32(addr: usize) -> u32 {
    // SAFETY: a distributor register from the DTB, mapped as Device memory.
    unsafe { crate::mmio::read32(addr) }
}

pub fn run(r: &mut Report, dist: Option<usize>) {
    let Some(dist) = dist else {
        r.skip("mmio-ldp-gicd", format_args!("no GIC in the DTB"));
        return;
    };
    let (ctlr, typer) = (read32(dist + GICD_CTLR), read32(dist + GICD_TYPER));
    let ((a, b, pc), trap) = probe(|| {
        let (mut a, mut b): (u32, u32) = (0xdead_0001, 0xdead_0002);
        let pc: u64;
        // SAFETY: reads two distributor registers; an abort is caught by the armed probe and
        // leaves both destinations untouched.
        unsafe {
            asm!("adr {pc}, 2f", "2: ldp {a:w}, {b:w}, [{p}]",
                a = inout(reg) a, b = inout(reg) b, p = in(reg) dist, pc = out(reg) pc,
                options(nostack))
        };
        (a, b, pc)
    });
    match trap {
        None if (a, b) == (ctlr, typer) => r.result(
            "mmio-ldp-gicd",
            true,
            format_args!("completed: CTLR={a:#x} TYPER={b:#x}, as single reads give"),
        ),
        None => r.result(
            "mmio-ldp-gicd",
            false,
            format_args!("read {a:#x} {b:#x}, single reads give {ctlr:#x} {typer:#x}"),
        ),
        Some(t) if t.esr.is_data_abort() && t.elr == pc => r.result(
            "mmio-ldp-gicd",
            true,
            format_args!("data abort delivered (ESR {:#x})", t.esr.0),
        ),
        Some(t) => r.result(
            "mmio-ldp-gicd",
            false,
            format_args!(
                "ESR {:#x} ELR {:#x}, instruction at {pc:#x}",
                t.esr.0, t.elr
            ),
        ),
    }
}
