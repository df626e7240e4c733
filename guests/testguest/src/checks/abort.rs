//! Loads and stores to guest physical addresses where nothing lives (just below and just past
//! RAM, where a hypervisor keeps itself, at 4 GiB, in a hole between devices) must come back to the guest as data aborts, and a load
//! must not deliver any value.

use core::arch::asm;

use crate::esr::Esr;
use crate::platform::Platform;
use crate::report::Report;
use crate::vectors::{probe, Trap};

const SENTINEL: u64 = 0x5e47_1e15_dead_beef;
/// The low device area of QEMU virt and most boards, searched for a hole.
const DEVICE_AREA: (u64, u64) = (0x0800_0000, 0x1000_0000);
const HOLE_SIZE: u64 = 0x1_0000;
const FOUR_GIB: u64 = 0x1_0000_0000;

/// Loads from `addr`: (value left in the destination register, address of the load, trap).
fn load(addr: u64) -> (u64, u64, Option<Trap>) {
    let ((v, pc), trap) = probe(|| {
        let mut v = SENTINEL;
        let pc: u64;
        // SAFETY: nothing is mapped at `addr` in stage 2; the armed probe resumes after the
        // faulting load, which leaves `v` untouched.
        unsafe {
            asm!("adr {pc}, 2f", "2: ldr {v}, [{a}]",
                v = inout(reg) v, a = in(reg) addr, pc = out(reg) pc, options(nostack))
        };
        (v, pc)
    });
    (v, pc, trap)
}

/// Stores to `addr`: (address of the store, trap).
fn store(addr: u64) -> (u64, Option<Trap>) {
    probe(|| {
        let pc: u64;
        // SAFETY: as in `load`; the store faults instead of reaching any memory.
        unsafe {
            asm!("adr {pc}, 2f", "2: str {v}, [{a}]",
                v = in(reg) SENTINEL, a = in(reg) addr, pc = out(reg) pc, options(nostack))
        };
        pc
    })
}

/// Why an access did not end the way it must, if it did not.
fn judge(addr: u64, pc: u64, write: bool, trap: Option<Trap>) -> Result<u64, &'static str> {
    let t = trap.ok_or("no abort")?;
    if !t.esr.is_data_abort() {
        return Err("exception is not a data abort");
    }
    if t.elr != pc {
        return Err("ELR is not the faulting instruction");
    }
    if t.esr.is_write() != write {
        return Err("abort reports the wrong direction (WnR)");
    }
    if !t.esr.far_not_valid() && t.far != addr {
        return Err("FAR is not the accessed address");
    }
    Ok(t.esr.0)
}

/// Loads from and stores to `addr` must both abort without delivering anything.
pub fn check(r: &mut Report, name: &str, addr: u64) {
    let (value, lpc, ltrap) = load(addr);
    let (spc, strap) = store(addr);
    let l = judge(addr, lpc, false, ltrap);
    let s = judge(addr, spc, true, strap);
    match (l, s) {
        (Ok(le), Ok(se)) if value == SENTINEL => r.result(
            name,
            true,
            format_args!(
                "{addr:#x}: load and store aborted (ESR {le:#x} / {se:#x}, DFSC {:#x}), nothing read",
                Esr(le).dfsc()
            ),
        ),
        (Ok(_), Ok(_)) => r.result(
            name,
            false,
            format_args!("{addr:#x}: load aborted but delivered {value:#x}"),
        ),
        (Err(e), _) => r.result(
            name,
            false,
            format_args!("{addr:#x}: load: {e} (read {value:#x}, ESR {:#x})", esr(ltrap)),
        ),
        (_, Err(e)) => r.result(
            name,
            false,
            format_args!("{addr:#x}: store: {e} (ESR {:#x})", esr(strap)),
        ),
    }
}

fn esr(t: Option<Trap>) -> u64 {
    t.map_or(0, |t| t.esr.0)
}

pub fn run(r: &mut Report, p: &Platform) {
    if p.occupied.overflowed() {
        r.result(
            "abort",
            false,
            format_args!("DTB has more ranges than the guest can track"),
        );
        return;
    }
    let below_ram = p.ram.bottom().wrapping_sub(0x1000);
    if p.ram.bottom() < 0x1000 {
        r.skip("abort-below-ram", format_args!("RAM starts at 0"));
    } else if p.occupied.overlaps(below_ram, below_ram + 8) {
        r.skip(
            "abort-below-ram",
            format_args!("{below_ram:#x} is a device"),
        );
    } else {
        check(r, "abort-below-ram", below_ram);
    }

    let past_ram = p.ram.top();
    if past_ram == 0 {
        r.result(
            "abort-past-ram",
            false,
            format_args!("no /memory in the DTB"),
        );
    } else if p.occupied.overlaps(past_ram, past_ram + 8) {
        r.skip("abort-past-ram", format_args!("{past_ram:#x} is a device"));
    } else {
        check(r, "abort-past-ram", past_ram);
    }

    if p.occupied.overlaps(FOUR_GIB, FOUR_GIB + 8) {
        r.skip(
            "abort-4gib",
            format_args!("{FOUR_GIB:#x} is RAM or a device"),
        );
    } else if FOUR_GIB != past_ram {
        check(r, "abort-4gib", FOUR_GIB);
    }

    match p
        .occupied
        .first_hole(DEVICE_AREA.0, DEVICE_AREA.1, HOLE_SIZE, HOLE_SIZE)
    {
        Some(hole) => check(r, "abort-device-hole", hole),
        None => r.result(
            "abort-device-hole",
            false,
            format_args!(
                "no free 64 KiB in {:#x}..{:#x}",
                DEVICE_AREA.0, DEVICE_AREA.1
            ),
        ),
    }
}
