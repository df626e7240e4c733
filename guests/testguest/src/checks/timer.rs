//! WFI must come back when the virtual timer fires, even with IRQs masked at the CPU: a
//! hypervisor that blocks a vCPU on WFI has to wake it for its timer. A hang here shows as a run
//! without a `done` line. The time from the timer's deadline to WFI returning is also the
//! `timer-wake` benchmark.

use core::arch::asm;

use crate::cpu;
use crate::gic;
use crate::report::Report;
use crate::ticks::PerOp;

const WAKEUPS: u64 = 100;
/// Timer deadline: this many counter ticks ahead (100 µs at 62.5 MHz).
const AHEAD: u64 = 6250;
const CTL_ENABLE: u64 = 1;
const CTL_ISTATUS: u64 = 1 << 2;

fn timer_ctl() -> u64 {
    let v: u64;
    // SAFETY: the EL1 virtual timer's control register is accessible at EL1.
    unsafe { asm!("mrs {}, cntv_ctl_el0", out(reg) v, options(nomem, nostack)) };
    v
}

fn arm_timer(deadline: u64) {
    // SAFETY: programs the EL1 virtual timer; its interrupt is masked at the CPU (PSTATE.I).
    unsafe {
        asm!(
            "msr cntv_cval_el0, {d}",
            "msr cntv_ctl_el0, {c}",
            "isb",
            d = in(reg) deadline,
            c = in(reg) CTL_ENABLE,
            options(nomem, nostack)
        )
    };
}

fn stop_timer() {
    // SAFETY: disables the EL1 virtual timer, which lowers its interrupt.
    unsafe { asm!("msr cntv_ctl_el0, xzr", "isb", options(nomem, nostack)) };
}

/// Runs after `gic::init`; returns the wake-up latency for the benchmark table.
pub fn run(r: &mut Report, intid: u32) -> PerOp {
    gic::enable_ppi(intid);
    let (mut late, mut wfis) = (0, 0u64);
    for _ in 0..WAKEUPS {
        let deadline = cpu::counter() + AHEAD;
        arm_timer(deadline);
        while timer_ctl() & CTL_ISTATUS == 0 {
            // SAFETY: waits for an interrupt; the timer's is enabled in the GIC and pending
            // interrupts wake WFI whatever PSTATE.I says.
            unsafe { asm!("wfi", options(nomem, nostack)) };
            wfis += 1;
        }
        late += cpu::counter().saturating_sub(deadline);
        stop_timer();
        // Take the interrupt the timer raised: left pending, it would make every later WFI
        // return at once (on hardware too) and the loop would poll instead of sleep.
        gic::drain_pending();
    }
    gic::disable_ppi(intid);
    r.result(
        "wfi-timer-wakeup",
        true,
        format_args!("{WAKEUPS} timer deadlines (INTID {intid}) met with {wfis} WFIs, none hung"),
    );
    PerOp {
        total: late,
        iters: WAKEUPS,
    }
}
