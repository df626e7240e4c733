//! Micro-benchmarks in the style of kvm-unit-tests' arm/micro-bench, in guest counter ticks
//! (CNTVCT_EL0) averaged over many iterations: `BENCH: <name> <ticks per op> ticks (<n> iters)`.

use core::arch::asm;
use core::sync::atomic::Ordering;

use crate::console::println;
use crate::cpu;
use crate::gic;
use crate::psci::Psci;
use crate::smccc::Conduit;
use crate::ticks::PerOp;

const NOPS_PER_LOOP: u64 = 100;
const NOP_LOOPS: u64 = 1_000;
const HYPERCALLS: u64 = 10_000;
const MMIO_READS: u64 = 10_000;
const IPIS: u64 = 1_000;

fn report(name: &str, p: PerOp) {
    println!("BENCH: {name} {p} ticks ({} iters)", p.iters);
}

/// Guest instructions as a yardstick: one tick is worth 1 / (this figure) instructions.
fn nop() -> PerOp {
    let t0 = cpu::counter();
    for _ in 0..NOP_LOOPS {
        // SAFETY: nops.
        unsafe { asm!(".rept 100", "nop", ".endr", options(nomem, nostack)) };
    }
    PerOp {
        total: cpu::counter() - t0,
        iters: NOP_LOOPS * NOPS_PER_LOOP,
    }
}

/// A call the hypervisor (or firmware) answers itself: PSCI_VERSION through `conduit`.
fn hypercall(conduit: Conduit) -> PerOp {
    let psci = Psci(conduit);
    let t0 = cpu::counter();
    for _ in 0..HYPERCALLS {
        core::hint::black_box(psci.version());
    }
    PerOp {
        total: cpu::counter() - t0,
        iters: HYPERCALLS,
    }
}

/// A distributor register read: emulated, so a trap, under a hypervisor.
fn mmio_read(dist: usize) -> PerOp {
    let t0 = cpu::counter();
    for _ in 0..MMIO_READS {
        core::hint::black_box(gic::read_dist_iidr(dist));
    }
    PerOp {
        total: cpu::counter() - t0,
        iters: MMIO_READS,
    }
}

/// SGI to self: from the send to the first instruction of the handler. Returns the IPI and the
/// EOI cost (the EOI is timed inside the handler), or None if an SGI never arrived.
fn ipi(dist: usize) -> Option<(PerOp, PerOp)> {
    gic::IRQS.store(0, Ordering::SeqCst);
    gic::EOI_TICKS.store(0, Ordering::SeqCst);
    let mut total = 0;
    cpu::irq_enable();
    for i in 0..IPIS {
        let t0 = cpu::counter();
        gic::send_self_sgi(dist);
        let deadline = t0 + cpu::counter_freq();
        while gic::IRQS.load(Ordering::SeqCst) == i {
            if cpu::counter() > deadline {
                cpu::irq_disable();
                return None;
            }
        }
        total += gic::IRQ_AT.load(Ordering::SeqCst) - t0;
    }
    cpu::irq_disable();
    let eoi = PerOp {
        total: gic::EOI_TICKS.load(Ordering::SeqCst),
        iters: IPIS,
    };
    Some((PerOp { total, iters: IPIS }, eoi))
}

/// Runs every benchmark; returns false if one could not complete.
/// `conduits`: the instructions someone answers here (HVC and SMC are UNDEFINED at EL1 without
/// a level above, unless QEMU's firmware takes them). `timer_wake`: from the virtual timer's
/// deadline to WFI returning, measured by the wfi-timer-wakeup check.
pub fn run(conduits: &[Conduit], gic_dist: Option<usize>, timer_wake: Option<PerOp>) -> bool {
    report("nop", nop());
    for &c in conduits {
        let name = match c {
            Conduit::Hvc => "hypercall-hvc",
            Conduit::Smc => "hypercall-smc",
        };
        report(name, hypercall(c));
    }
    let Some(dist) = gic_dist else {
        println!("BENCH: no usable GIC, interrupt benchmarks not run");
        return false;
    };
    report("mmio-gicd-read", mmio_read(dist));
    match ipi(dist) {
        Some((ipi, eoi)) => {
            report("ipi-self", ipi);
            report("eoi", eoi);
            if let Some(t) = timer_wake {
                report("timer-wake", t);
            }
            true
        }
        None => {
            println!("BENCH: ipi-self: an SGI was not delivered within a second");
            false
        }
    }
}
