//! Traps from VM0 and exceptions at EL2.

use crate::esr::{self, Esr};
use crate::inject::{self, Injected};
use crate::log::RateLimit;
use crate::psci::{self, Outcome};
use crate::{error, info, warn};

use super::boot::{Hyp, Vm, HYP};
use super::pcpu;
use super::regs;
use super::virq;
use crate::vgic;

/// The register frame head.S saves on every exception.
#[derive(Clone, Copy)]
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
    let cpu = regs::cpu_index();
    let from_guest = (KIND_LOWER_SYNC..=KIND_LOWER_SERROR).contains(&kind);
    let Some((vm, vcpu)) = pcpu::current(cpu).filter(|_| from_guest) else {
        panic!(
            "EL2 exception {}: ESR {:#x} ELR {:#x} FAR {:#x}",
            kind,
            read_sysreg!("esr_el2"),
            frame.elr,
            read_sysreg!("far_el2")
        );
    };
    let esr = Esr(read_sysreg!("esr_el2"));
    if kind == KIND_LOWER_SYNC
        && (minos_call(vm, frame, esr) || constant_smccc(vm, vcpu, frame, esr))
    {
        virq::sync_flush(hyp, vm, vcpu);
        if pcpu::resched_pending(cpu) {
            // Rare: a wake-up for another vCPU of this pCPU. Take the list registers back
            // before switching.
            virq::sync(hyp, vm, vcpu);
            switch_and_flush(hyp, cpu, frame);
        }
        return;
    }
    pcpu::sync_timer_lines(hyp, vm, vcpu);
    virq::sync(hyp, vm, vcpu);
    match kind {
        KIND_LOWER_SYNC => lower_sync(hyp, vm, vcpu, frame, esr),
        KIND_LOWER_IRQ | KIND_LOWER_FIQ => {
            if vm.vgic.is_some() {
                virq::handle_irq(hyp, vm, vcpu);
            } else if let Some(n) = STRAY_IRQ.allow() {
                warn!("unexpected IRQ/FIQ at EL2 (#{})", n);
            }
        }
        KIND_LOWER_SERROR => {
            if let Some(n) = BAD_TRAP.allow() {
                warn!(
                    "SError from vm{}, ESR {:#x} (#{})",
                    vm.config.vmid,
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
        _ => unreachable!("checked above: an exit from a lower EL"),
    }
    if pcpu::resched_pending(cpu) {
        switch_and_flush(hyp, cpu, frame);
    } else {
        virq::flush(hyp, vm, vcpu);
    }
}

/// Runs the scheduler at the end of an exit and loads the chosen vCPU's interrupts.
#[inline(never)]
fn switch_and_flush(hyp: &Hyp, cpu: usize, frame: &mut Frame) {
    pcpu::switch(hyp, cpu, frame);
    if let Some((vm, v)) = pcpu::current(cpu) {
        virq::flush(hyp, vm, v);
    }
}

/// A CPU's first guest entry (head.S `enter_scheduler`): waits until one of its vCPUs is
/// runnable and fills `frame` with it.
#[no_mangle]
extern "C" fn first_entry(frame: &mut Frame) {
    let Some(hyp) = HYP.get() else {
        panic!("scheduler entered before boot finished");
    };
    switch_and_flush(hyp, regs::cpu_index(), frame);
}

/// Minos calls and the SMCCC queries minos.ko makes, from any VM, through HVC or SMC:
/// answered by the VM manager ([`super::platform::hvc`]). False when they are not its.
fn minos_call(vm: &Vm, frame: &mut Frame, esr: Esr) -> bool {
    let step = match esr.ec() {
        esr::EC_HVC64 => 0,
        // A trapped SMC returns to itself (unlike HVC): step over it.
        esr::EC_SMC64 => 4,
        _ => return false,
    };
    let x = [frame.x[0], frame.x[1], frame.x[2], frame.x[3], frame.x[4]];
    let Some(r) = super::platform::hvc(vm.config.vmid, x) else {
        return false;
    };
    frame.x[..4].copy_from_slice(&r);
    frame.elr += step;
    true
}

/// The hot path: an HVC or SMC whose answer is a constant (PSCI_VERSION, FEATURES, unknown
/// ids) is answered here, before the general decode and the two-step vGIC sync/flush.
/// False for every other exit.
fn constant_smccc(vm: &Vm, v: usize, frame: &mut Frame, esr: Esr) -> bool {
    let step = match esr.ec() {
        esr::EC_HVC64 => 0,
        // A trapped SMC returns to itself (unlike HVC): step over it.
        esr::EC_SMC64 => 4,
        _ => return false,
    };
    let call = psci::decode([frame.x[0], frame.x[1], frame.x[2], frame.x[3]]);
    let Some(r) = psci::constant_answer(call) else {
        return false;
    };
    if let psci::Call::Unknown(fid) = call {
        warn_unknown(vm, v, fid, if step == 0 { "HVC" } else { "SMC" });
    }
    frame.elr += step;
    frame.x[0] = r as u64;
    true
}

fn warn_unknown(vm: &Vm, v: usize, fid: u32, conduit: &str) {
    if let Some(n) = UNKNOWN_CALL.allow() {
        warn!(
            "vm{} vcpu{}: unknown {} function {:#x}, returning NOT_SUPPORTED (#{})",
            vm.config.vmid, v, conduit, fid, n
        );
    }
}

fn lower_sync(hyp: &Hyp, vm: &Vm, v: usize, frame: &mut Frame, esr: Esr) {
    match esr.ec() {
        esr::EC_HVC64 => smccc(hyp, vm, v, frame, "HVC"),
        esr::EC_SMC64 => {
            // A trapped SMC returns to itself (unlike HVC): step over it.
            frame.elr += 4;
            smccc(hyp, vm, v, frame, "SMC");
        }
        esr::EC_WFX => {
            frame.elr += 4;
            if esr.iss() & 1 == 0 {
                pcpu::wfi(vm, v);
            } else {
                pcpu::yield_current();
            }
        }
        esr::EC_SYSREG => {
            if let (Some(rt), Some(vgic)) = (vgic::sgi1r_write_rt(esr.iss()), &vm.vgic) {
                let val = if rt == 31 { 0 } else { frame.x[rt as usize] };
                let kicks = vgic.lock().write_sgi1r(v, val);
                virq::kick(hyp, vm, kicks, v);
                frame.elr += 4;
            } else {
                undef(vm, v, frame, esr);
            }
        }
        esr::EC_DABT_LOW | esr::EC_IABT_LOW => {
            let far = read_sysreg!("far_el2");
            let ipa = ((read_sysreg!("hpfar_el2") & 0x0000_0fff_ffff_fff0) << 8) | (far & 0xfff);
            if esr.ec() == esr::EC_DABT_LOW
                && (emulate_mmio(hyp, vm, v, frame, esr, ipa)
                    // An mvm guest's virtio windows and power button (arch::platform).
                    || super::platform::mmio(vm, v, frame, esr, ipa))
            {
                return;
            }
            if let Some(n) = STAGE2_FAULT.allow() {
                warn!(
                    "vm{} vcpu{}: stage-2 {} fault at IPA {:#x} (pc {:#x}), injecting an abort (#{})",
                    vm.config.vmid,
                    v,
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
        _ => undef(vm, v, frame, esr),
    }
}

fn undef(vm: &Vm, v: usize, frame: &mut Frame, esr: Esr) {
    if let Some(n) = BAD_TRAP.allow() {
        warn!(
            "vm{} vcpu{}: unhandled trap EC {:#x} ESR {:#x} at pc {:#x}, injecting UNDEF (#{})",
            vm.config.vmid,
            v,
            esr.ec(),
            esr.0,
            frame.elr,
            n
        );
    }
    inject(frame, Injected::Undef, esr, 0);
}

/// A data abort on an emulated device frame (the vGIC's GICD/GICR): performs the access and
/// steps over the instruction. False if the IPA is not emulated or the access cannot be (no
/// valid syndrome, bad size): the caller injects an abort.
fn emulate_mmio(hyp: &Hyp, vm: &Vm, v: usize, frame: &mut Frame, esr: Esr, ipa: u64) -> bool {
    let Some(access) = esr.mmio() else {
        return false;
    };
    let reg = usize::from(access.reg);
    if let Some(uart) = &vm.vuart {
        let mut u = uart.lock();
        if u.region.contains(ipa) {
            let raw = if reg == 31 { 0 } else { frame.x[reg] };
            match u.access(ipa, access.write, access.size, raw) {
                Ok(val) => {
                    if !access.write && reg != 31 {
                        frame.x[reg] = access.extend(val);
                    }
                    frame.elr += 4;
                    let kicks = u.sync_irq(vm);
                    drop(u);
                    pcpu::notify(hyp, vm, kicks, Some(v));
                    return true;
                }
                Err(_) => return false,
            }
        }
    }
    let Some(vgic) = &vm.vgic else {
        return false;
    };
    let mut g = vgic.lock();
    if !g.contains(ipa) {
        return false;
    }
    if access.write {
        let raw = if reg == 31 { 0 } else { frame.x[reg] };
        let val = if access.size == 8 {
            raw
        } else {
            raw & ((1u64 << (access.size * 8)) - 1)
        };
        match g.mmio_write(v, ipa, access.size, val) {
            Ok(kicks) => {
                virq::drain_hw_deactivations(hyp, &mut g);
                drop(g);
                virq::kick(hyp, vm, kicks, v);
            }
            Err(_) => return false,
        }
    } else {
        match g.mmio_read(v, ipa, access.size) {
            Ok(val) => {
                if reg != 31 {
                    frame.x[reg] = access.extend(val);
                }
            }
            Err(_) => return false,
        }
    }
    frame.elr += 4;
    true
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
fn smccc(hyp: &Hyp, vm: &Vm, v: usize, frame: &mut Frame, conduit: &str) {
    let call = psci::decode([frame.x[0], frame.x[1], frame.x[2], frame.x[3]]);
    if let psci::Call::Unknown(fid) = call {
        warn_unknown(vm, v, fid, conduit);
    }
    match vm.psci.handle(v, call) {
        Outcome::Return(r) => {
            frame.x[0] = r as u64;
            if let psci::Call::CpuOn { target, .. } = call {
                if r == psci::SUCCESS {
                    if let Some(t) = vm.psci.vcpu_of(target) {
                        if let Some((entry, context)) = vm.psci.take_pending(t) {
                            pcpu::start_vcpu(hyp, vm, t, entry, context);
                        }
                    }
                }
            }
        }
        Outcome::Off => {
            // Routine: at info level it interleaves with the guest's output on the shared UART.
            crate::debug!("vm{} vcpu{} off", vm.config.vmid, v);
            pcpu::power_off_current(vm, v);
        }
        // A guest powers off or resets only itself: all its vCPUs stop, its pCPUs run the
        // others.
        Outcome::SystemOff | Outcome::SystemReset if vm.config.vmid != 0 => {
            info!(
                "vm{} '{}' asked for system off/reset: stopping it",
                vm.config.vmid, vm.config.name
            );
            pcpu::stop_vm(hyp, vm);
            // For mvm's guests: the VM manager marks it off.
            super::platform::guest_off(vm.config.vmid);
        }
        Outcome::SystemOff => {
            pcpu::log_switch_stats(hyp);
            info!("vm0 asked for system off");
            super::platform::release_owner(0);
            regs::smc(u64::from(psci::SYSTEM_OFF), 0, 0, 0);
            panic!("firmware SYSTEM_OFF returned");
        }
        Outcome::SystemReset => {
            info!("vm0 asked for system reset");
            super::platform::release_owner(0);
            regs::smc(u64::from(psci::SYSTEM_RESET), 0, 0, 0);
            panic!("firmware SYSTEM_RESET returned");
        }
    }
}
