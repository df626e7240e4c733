//! Traps from VM0 and exceptions at EL2.

use crate::esr::{self, Esr};
use crate::inject::{self, Injected};
use crate::log::RateLimit;
use crate::psci::{self, Outcome};
use crate::{error, info, warn};

use super::boot::{kick_pcpu, wait_for_cpu_on, Hyp, HYP};
use super::regs;

/// The register frame head.S saves on every exception.
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
    pub q: [u128; 32],
    pub fpsr: u64,
    pub fpcr: u64,
}

const _: () = assert!(core::mem::size_of::<Frame>() == 800);

const KIND_LOWER_SYNC: u64 = 8;
const KIND_LOWER_IRQ: u64 = 9;
const KIND_LOWER_FIQ: u64 = 10;
const KIND_LOWER_SERROR: u64 = 11;

static UNKNOWN_CALL: RateLimit = RateLimit::new(8);
static BAD_TRAP: RateLimit = RateLimit::new(8);
static STAGE2_FAULT: RateLimit = RateLimit::new(8);
static STRAY_IRQ: RateLimit = RateLimit::new(4);

#[no_mangle]
extern "C" fn trap_entry(kind: u64, frame: &mut Frame) {
    let Some(hyp) = HYP.get() else {
        panic!(
            "exception {} before boot finished, ESR {:#x} ELR {:#x}",
            kind,
            read_sysreg!("esr_el2"),
            frame.elr
        );
    };
    match kind {
        KIND_LOWER_SYNC => lower_sync(hyp, frame),
        KIND_LOWER_IRQ | KIND_LOWER_FIQ => {
            if let Some(n) = STRAY_IRQ.allow() {
                warn!("unexpected IRQ/FIQ at EL2 (#{})", n);
            }
        }
        KIND_LOWER_SERROR => {
            if let Some(n) = BAD_TRAP.allow() {
                warn!(
                    "SError from VM0, ESR {:#x} (#{})",
                    read_sysreg!("esr_el2"),
                    n
                );
            }
        }
        12..=15 => {
            if let Some(n) = BAD_TRAP.allow() {
                warn!("trap from an AArch32 guest, not supported (#{})", n);
            }
        }
        _ => panic!(
            "EL2 exception {}: ESR {:#x} ELR {:#x} FAR {:#x}",
            kind,
            read_sysreg!("esr_el2"),
            frame.elr,
            read_sysreg!("far_el2")
        ),
    }
}

fn current_vcpu(hyp: &Hyp) -> usize {
    hyp.vm0.vcpu_on_pcpu[regs::cpu_index()].unwrap_or(0)
}

fn lower_sync(hyp: &Hyp, frame: &mut Frame) {
    let esr = Esr(read_sysreg!("esr_el2"));
    match esr.ec() {
        esr::EC_HVC64 => smccc(hyp, frame, "HVC"),
        esr::EC_SMC64 => {
            // A trapped SMC returns to itself (unlike HVC): step over it.
            frame.elr += 4;
            smccc(hyp, frame, "SMC");
        }
        esr::EC_DABT_LOW | esr::EC_IABT_LOW => {
            let far = read_sysreg!("far_el2");
            let ipa = ((read_sysreg!("hpfar_el2") & 0x0000_0fff_ffff_fff0) << 8) | (far & 0xfff);
            if let Some(n) = STAGE2_FAULT.allow() {
                warn!(
                    "vm0 vcpu{}: stage-2 {} fault at IPA {:#x} (pc {:#x}), injecting an abort (#{})",
                    current_vcpu(hyp),
                    if esr.ec() == esr::EC_DABT_LOW { "data" } else { "instruction" },
                    ipa,
                    frame.elr,
                    n
                );
            }
            let what = if esr.ec() == esr::EC_DABT_LOW {
                Injected::DataAbort
            } else {
                Injected::PrefetchAbort
            };
            inject(frame, what, esr, far);
        }
        ec => {
            if let Some(n) = BAD_TRAP.allow() {
                warn!(
                    "vm0 vcpu{}: unhandled trap EC {:#x} ESR {:#x} at pc {:#x}, injecting UNDEF (#{})",
                    current_vcpu(hyp),
                    ec,
                    esr.0,
                    frame.elr,
                    n
                );
            }
            inject(frame, Injected::Undef, esr, 0);
        }
    }
}

fn inject(frame: &mut Frame, what: Injected, esr: Esr, far: u64) {
    match inject::deliver(what, frame.spsr, read_sysreg!("vbar_el1"), esr.0) {
        Some(d) => {
            write_sysreg!("esr_el1", d.esr_el1);
            if what != Injected::Undef {
                write_sysreg!("far_el1", far);
            }
            write_sysreg!("elr_el1", frame.elr);
            write_sysreg!("spsr_el1", frame.spsr);
            frame.elr = d.vector;
            frame.spsr = d.spsr_el2;
        }
        None => error!("cannot inject into an AArch32 context"),
    }
}

/// SMCCC calls through either conduit: the virtual PSCI, or NOT_SUPPORTED.
fn smccc(hyp: &Hyp, frame: &mut Frame, conduit: &str) {
    let call = psci::decode([frame.x[0], frame.x[1], frame.x[2], frame.x[3]]);
    if let psci::Call::Unknown(fid) = call {
        if let Some(n) = UNKNOWN_CALL.allow() {
            warn!(
                "vm0 vcpu{}: unknown {} function {:#x}, returning NOT_SUPPORTED (#{})",
                current_vcpu(hyp),
                conduit,
                fid,
                n
            );
        }
    }
    let v = current_vcpu(hyp);
    match hyp.vm0.psci.handle(v, call) {
        Outcome::Return(r) => {
            frame.x[0] = r as u64;
            if let psci::Call::CpuOn { target, .. } = call {
                if r == psci::SUCCESS {
                    if let Some(t) = hyp.vm0.psci.vcpu_of(target) {
                        kick_pcpu(hyp, t);
                    }
                }
            }
        }
        Outcome::Off => {
            info!("vm0 vcpu{} off", v);
            wait_for_cpu_on(hyp, v)
        }
        Outcome::SystemOff => {
            info!("vm0 asked for system off");
            regs::smc(u64::from(psci::SYSTEM_OFF), 0, 0, 0);
            panic!("firmware SYSTEM_OFF returned");
        }
        Outcome::SystemReset => {
            info!("vm0 asked for system reset");
            regs::smc(u64::from(psci::SYSTEM_RESET), 0, 0, 0);
            panic!("firmware SYSTEM_RESET returned");
        }
    }
}
