//! testguest: a bare-metal arm64 guest (an Image a hypervisor or QEMU boots like a Linux kernel)
//! that provokes what a hypervisor must survive and answer correctly, prints one
//! `TESTGUEST: <check>: PASS|FAIL` line per check and `BENCH:` micro-benchmark lines, then
//! powers off with PSCI SYSTEM_OFF.

#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// The host build only unit-tests the pure modules.
#![cfg_attr(test, allow(dead_code))]

mod esr;
#[cfg(any(test, feature = "hostile"))]
mod partition;
mod ranges;
mod rng;
mod smccc;
mod ticks;

#[cfg(target_arch = "aarch64")]
mod bench;
#[cfg(target_arch = "aarch64")]
mod boot;
#[cfg(target_arch = "aarch64")]
mod checks;
#[cfg(target_arch = "aarch64")]
mod console;
#[cfg(target_arch = "aarch64")]
mod cpu;
#[cfg(target_arch = "aarch64")]
mod gic;
#[cfg(all(target_arch = "aarch64", feature = "hostile"))]
mod hostile;
#[cfg(target_arch = "aarch64")]
mod mmio;
mod platform;
#[cfg(target_arch = "aarch64")]
mod psci;
#[cfg(target_arch = "aarch64")]
mod report;
#[cfg(target_arch = "aarch64")]
mod vectors;

#[cfg(target_arch = "aarch64")]
pub use guest::{fatal, psci};

#[cfg(target_arch = "aarch64")]
mod guest {
    use core::fmt;
    use core::sync::atomic::{AtomicBool, Ordering};

    use crate::console::{self, println};
    use crate::platform::{GicDesc, Platform};
    use crate::psci::Psci;
    use crate::report::Report;
    use crate::smccc::Conduit;
    use crate::{bench, checks, cpu, gic, vectors};

    static SMC_CONDUIT: AtomicBool = AtomicBool::new(false);

    /// PSCI through the conduit the DTB named.
    pub fn psci() -> Psci {
        Psci(if SMC_CONDUIT.load(Ordering::SeqCst) {
            Conduit::Smc
        } else {
            Conduit::Hvc
        })
    }

    /// Ends the run: the test harness sees no `done` line.
    pub fn fatal(why: fmt::Arguments) -> ! {
        console::line_unlocked(format_args!("TESTGUEST: FATAL {why}"));
        psci().system_off();
        loop {
            core::hint::spin_loop();
        }
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        fatal(format_args!("panic: {info}"))
    }

    // The hostile build leaves the normal checks after `hostile::run` unreached.
    #[cfg_attr(feature = "hostile", allow(unreachable_code, unused_variables))]
    #[no_mangle]
    extern "C" fn rust_main(dtb: usize, entry_el: u64) -> ! {
        // SAFETY: the boot protocol passes the DTB address in x0; its 1 GiB block is mapped.
        let p = match unsafe { Platform::from_dtb(dtb) } {
            Ok(p) => p,
            Err(e) => fatal(format_args!("no usable DTB at {dtb:#x}: {e:?}")),
        };
        if let Some(u) = p.uart {
            console::set_base(u);
        }
        SMC_CONDUIT.store(p.conduit == Conduit::Smc, Ordering::SeqCst);
        let psci = psci();
        let feats = cpu::features();
        let gic_name = match p.gic {
            Some(GicDesc::V2 { .. }) => "v2",
            Some(GicDesc::V3 { .. }) => "v3",
            None => "none",
        };
        if entry_el == 2 {
            println!("TESTGUEST: entered at EL2: running at EL1 under a null hypervisor that answers every HVC with NOT_SUPPORTED");
        }
        println!(
            "TESTGUEST: start: entered at EL{entry_el}, dtb {dtb:#x}, psci {}, gic {gic_name}, \
             {} cpus, EL2 {}, EL3 {}",
            p.conduit.name(),
            p.ncpus,
            if feats.el2 { "implemented" } else { "absent" },
            if feats.el3 { "implemented" } else { "absent" },
        );

        #[cfg(feature = "hostile")]
        crate::hostile::run(&p, dtb, &feats);

        let mut r = Report::default();
        checks::smccc_unknown::run(&mut r, &feats);
        checks::sysreg::run(&mut r, &feats);
        checks::abort::run(&mut r, &p);
        checks::fetch::run(&mut r, &p, dtb);
        checks::mmio_pair::run(
            &mut r,
            p.gic.map(|g| match g {
                GicDesc::V2 { dist, .. } | GicDesc::V3 { dist, .. } => dist,
            }),
        );
        let version = checks::psci::version(&mut r, psci);
        checks::psci::features(&mut r, psci, version);
        checks::psci::cpu_on(&mut r, psci, &p);
        checks::psci::invalid_mpidr(&mut r, psci, &p);

        let dist = match p.gic {
            None => {
                r.result("gic-init", false, format_args!("no GIC in the DTB"));
                None
            }
            Some(desc) => match vectors::probe(|| gic::init(desc)) {
                (_, Some(t)) => {
                    r.result(
                        "gic-init",
                        false,
                        format_args!(
                            "{gic_name}: access to {:#x} faulted (ESR {:#x})",
                            t.far, t.esr.0
                        ),
                    );
                    None
                }
                (Ok(()), None) => {
                    r.result("gic-init", true, format_args!("{gic_name}"));
                    Some(match desc {
                        GicDesc::V2 { dist, .. } | GicDesc::V3 { dist, .. } => dist,
                    })
                }
                (Err(e), None) => {
                    r.result("gic-init", false, format_args!("{e:?}"));
                    None
                }
            },
        };
        let timer_wake = dist.map(|_| checks::timer::run(&mut r, p.vtimer_intid));
        checks::passthrough::run(&mut r, dtb, dist);
        let answered = |c: Conduit| match c {
            Conduit::Hvc => feats.el2 || p.conduit == c,
            Conduit::Smc => feats.el2 || feats.el3 || p.conduit == c,
        };
        let mut conduits = [Conduit::Hvc; 2];
        let mut n = 0;
        for c in [Conduit::Hvc, Conduit::Smc] {
            if answered(c) {
                conduits[n] = c;
                n += 1;
            }
        }
        let benched = bench::run(&conduits[..n], dist, timer_wake);
        let how = if benched {
            "all micro-benchmarks completed"
        } else {
            "some could not run"
        };
        r.result("bench", benched, format_args!("{how}"));

        r.done();
        let off = psci.system_off();
        fatal(format_args!("SYSTEM_OFF returned {off}"))
    }
}
