//! PSCI answers: VERSION, FEATURES, and a secondary vCPU brought up with CPU_ON that prints,
//! waits, and turns itself off again with CPU_OFF.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::console::println;
use crate::cpu;
use crate::platform::Platform;
use crate::psci::{self, Psci};
use crate::report::Report;
use crate::smccc::NOT_SUPPORTED;

const CONTEXT: u64 = 0xc0ff_ee00_1234_5678;
/// How long to wait for the secondary, in seconds of guest counter time: generous, since
/// without -icount that is host time on a loaded machine.
const WAIT_SECONDS: u64 = 10;

/// MPIDR of the secondary that came up, plus one (0: none yet).
static UP: AtomicU64 = AtomicU64::new(0);
/// The secondary saw the context id CPU_ON passed.
static CONTEXT_OK: AtomicBool = AtomicBool::new(false);
/// The primary has looked at the running secondary: it may turn itself off.
static MAY_STOP: AtomicBool = AtomicBool::new(false);

extern "C" {
    fn secondary_entry();
}

pub fn version(r: &mut Report, psci: Psci) -> (u16, u16) {
    let (major, minor) = psci.version();
    let ok = major >= 1 || (major, minor) == (0, 2);
    r.result("psci-version", ok, format_args!("{major}.{minor}"));
    (major, minor)
}

pub fn features(r: &mut Report, psci: Psci, version: (u16, u16)) {
    if version.0 < 1 {
        r.skip(
            "psci-features",
            format_args!("PSCI {}.{} has no FEATURES", version.0, version.1),
        );
        return;
    }
    let v = psci.features(psci::VERSION);
    let on = psci.features(psci::CPU_ON);
    let off = psci.features(psci::SYSTEM_OFF);
    let unknown = psci.features(0x8400_1234);
    let ok = v == 0 && on >= 0 && off >= 0 && unknown == NOT_SUPPORTED;
    r.result(
        "psci-features",
        ok,
        format_args!("VERSION={v} CPU_ON={on} SYSTEM_OFF={off} unknown={unknown}"),
    );
}

fn wait(mut done: impl FnMut() -> bool) -> bool {
    let deadline = cpu::counter() + WAIT_SECONDS * cpu::counter_freq();
    while cpu::counter() < deadline {
        if done() {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

pub fn cpu_on(r: &mut Report, psci: Psci, p: &Platform) {
    let me = cpu::mpidr();
    let Some(&target) = p.cpus[..p.ncpus].iter().find(|&&c| c != me) else {
        r.skip("psci-cpu-on", format_args!("only one CPU in the DTB"));
        return;
    };
    let entry = secondary_entry as *const () as usize as u64;
    let on = psci.cpu_on(target, entry, CONTEXT);
    if on != psci::SUCCESS {
        r.result(
            "psci-cpu-on",
            false,
            format_args!("CPU_ON({target:#x}) returned {on}"),
        );
        return;
    }
    if !wait(|| UP.load(Ordering::SeqCst) == target + 1) {
        r.result(
            "psci-cpu-on",
            false,
            format_args!("CPU {target:#x} never ran"),
        );
        return;
    }
    let running = psci.affinity_info(target);
    let again = psci.cpu_on(target, entry, CONTEXT);
    MAY_STOP.store(true, Ordering::SeqCst);
    let off = wait(|| psci.affinity_info(target) == psci::AFFINITY_OFF);
    let ctx = CONTEXT_OK.load(Ordering::SeqCst);
    let ok = running == psci::AFFINITY_ON && again == psci::ALREADY_ON && off && ctx;
    r.result(
        "psci-cpu-on",
        ok,
        format_args!(
            "cpu {target:#x}: ran{}, AFFINITY_INFO while on={running}, second CPU_ON={again}, {}",
            if ctx { "" } else { " with a wrong context id" },
            if off { "off again" } else { "never OFF" }
        ),
    );
}

/// CPU_ON and AFFINITY_INFO of an MPIDR that is no CPU of this machine: INVALID_PARAMETERS, and
/// nothing starts.
pub fn invalid_mpidr(r: &mut Report, psci: Psci, p: &Platform) {
    let Some(bogus) = [0xfefe_u64, 0xff_00fe_fefe, 0x7f]
        .into_iter()
        .find(|m| !p.cpus[..p.ncpus].contains(m))
    else {
        r.skip("psci-invalid-mpidr", format_args!("no unused MPIDR found"));
        return;
    };
    let entry = secondary_entry as *const () as usize as u64;
    let on = psci.cpu_on(bogus, entry, CONTEXT);
    let info = psci.affinity_info(bogus);
    let ok = on == psci::INVALID_PARAMETERS && info == psci::INVALID_PARAMETERS;
    r.result(
        "psci-invalid-mpidr",
        ok,
        format_args!("MPIDR {bogus:#x}: CPU_ON={on} AFFINITY_INFO={info} (want -2)"),
    );
}

/// Rust half of `secondary_entry`, on the secondary vCPU.
#[no_mangle]
extern "C" fn rust_secondary(context: u64, entry_el: u64) -> ! {
    let me = cpu::mpidr();
    CONTEXT_OK.store(context == CONTEXT, Ordering::SeqCst);
    println!(
        "TESTGUEST: secondary vCPU {me:#x} up (entered at EL{entry_el}, context {context:#x})"
    );
    UP.store(me + 1, Ordering::SeqCst);
    wait(|| MAY_STOP.load(Ordering::SeqCst));
    let r = crate::psci().cpu_off();
    crate::fatal(format_args!("CPU_OFF on {me:#x} returned {r}"));
}
