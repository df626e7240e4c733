//! EL2 and EL3 system registers are UNDEFINED at EL1: the access must come back to the guest's
//! own vector as an unknown-reason exception (EC 0), at the accessing instruction.

use core::arch::asm;

use crate::cpu::Features;
use crate::esr::EC_UNKNOWN;
use crate::report::Report;
use crate::vectors::probe;

/// Runs one access; returns the address of the accessing instruction.
macro_rules! access {
    ($insn:literal) => {
        || {
            let pc: u64;
            // SAFETY: the access is UNDEFINED at EL1; the armed probe resumes after it.
            unsafe {
                asm!(
                    "mov {t}, xzr",
                    "adr {pc}, 2f",
                    concat!("2: ", $insn),
                    pc = out(reg) pc,
                    t = out(reg) _,
                )
            };
            pc
        }
    };
}

/// A register access by name; returns the address of the accessing instruction.
type Probe = (&'static str, fn() -> u64);

pub fn run(r: &mut Report, feats: &Features) {
    let probes: [Probe; 9] = [
        ("mrs hcr_el2", access!("mrs {t}, hcr_el2")),
        ("msr hcr_el2", access!("msr hcr_el2, {t}")),
        ("mrs vttbr_el2", access!("mrs {t}, vttbr_el2")),
        ("msr vttbr_el2", access!("msr vttbr_el2, {t}")),
        ("mrs sctlr_el2", access!("mrs {t}, sctlr_el2")),
        ("mrs cnthctl_el2", access!("mrs {t}, cnthctl_el2")),
        ("mrs scr_el3", access!("mrs {t}, scr_el3")),
        ("mrs vbar_el3", access!("mrs {t}, vbar_el3")),
        ("mrs ich_hcr_el2", access!("mrs {t}, ich_hcr_el2")),
    ];
    // ICH_* exist only with the GIC system register interface.
    let n = if feats.gic_sysregs {
        probes.len()
    } else {
        probes.len() - 1
    };
    let mut failed = None;
    for (name, f) in probes.iter().take(n) {
        let (pc, trap) = probe(f);
        let ok = matches!(trap, Some(t) if t.esr.ec() == EC_UNKNOWN && t.elr == pc);
        if !ok && failed.is_none() {
            failed = Some((*name, trap.map(|t| (t.esr.0, t.elr)), pc));
        }
    }
    match failed {
        None => r.result(
            "el2-sysreg-undef",
            true,
            format_args!("{n} EL2/EL3 register accesses trapped to EL1 as UNDEF (EC 0)"),
        ),
        Some((name, None, _)) => r.result(
            "el2-sysreg-undef",
            false,
            format_args!("{name}: executed without exception"),
        ),
        Some((name, Some((esr, elr)), pc)) => r.result(
            "el2-sysreg-undef",
            false,
            format_args!("{name}: ESR={esr:#x} ELR={elr:#x} (instruction at {pc:#x})"),
        ),
    }
}
