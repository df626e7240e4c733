//! Glue between traps and the vGIC model: list-register flush/sync around every guest entry
//! and exit, physical interrupts forwarded as HW-linked virtual ones, kicks between pCPUs.

use core::sync::atomic::{AtomicU8, Ordering};

use crate::board::GicVersion;
use crate::log::RateLimit;
use crate::vgic::{hw_v2::GichListRegs, hw_v3::IchListRegs, ListRegs, VcpuMask, Vgic};
use crate::warn;

use super::boot::{Hyp, Vm};
use super::gic;
use super::pcpu;

static BAD_IRQ: RateLimit = RateLimit::new(4);

/// The VM each physical SPI belongs to (its vmid; VM0 unless a static VM owns the device).
static SPI_OWNER: [AtomicU8; 1020] = [const { AtomicU8::new(0) }; 1020];

/// Gives physical SPI `intid` to VM `vmid` (a device passed through to it).
pub fn set_spi_owner(intid: u32, vmid: u32) {
    if let Some(o) = SPI_OWNER.get(intid as usize) {
        o.store(vmid as u8, Ordering::Relaxed);
    }
}

/// Loads the vCPU's pending interrupts into this pCPU's list registers (right before eret).
pub fn flush(hyp: &Hyp, vm: &Vm, vcpu: usize) {
    let Some(vgic) = &vm.vgic else { return };
    let mut g = vgic.lock();
    match hyp.board.gic.version {
        GicVersion::V3 => g.flush_lrs(vcpu, &mut IchListRegs),
        GicVersion::V2 => g.flush_lrs(
            vcpu,
            &mut GichListRegs {
                base: hyp.board.gic.hyp.base as usize,
            },
        ),
    }
}

/// Takes back the list registers' state into the model (right after an exit).
pub fn sync(hyp: &Hyp, vm: &Vm, vcpu: usize) {
    let Some(vgic) = &vm.vgic else { return };
    let kicks = {
        let mut g = vgic.lock();
        match hyp.board.gic.version {
            GicVersion::V3 => g.sync_lrs(vcpu, &mut IchListRegs),
            GicVersion::V2 => g.sync_lrs(
                vcpu,
                &mut GichListRegs {
                    base: hyp.board.gic.hyp.base as usize,
                },
            ),
        }
        let kicks = g.take_deferred_kicks();
        drain_hw_deactivations(hyp, &mut g);
        kicks
    };
    kick(hyp, vm, kicks, vcpu);
}

/// [`sync`] then [`flush`] under one lock, for an exit whose handling touched no interrupt
/// state (a constant-answer hypercall): same effect, one lock round trip and one version test.
pub fn sync_flush(hyp: &Hyp, vm: &Vm, vcpu: usize) {
    let Some(vgic) = &vm.vgic else { return };
    let kicks = {
        let mut g = vgic.lock();
        match hyp.board.gic.version {
            GicVersion::V3 => sync_flush_with(hyp, &mut g, vcpu, &mut IchListRegs),
            GicVersion::V2 => sync_flush_with(
                hyp,
                &mut g,
                vcpu,
                &mut GichListRegs {
                    base: hyp.board.gic.hyp.base as usize,
                },
            ),
        }
    };
    kick(hyp, vm, kicks, vcpu);
}

fn sync_flush_with(hyp: &Hyp, g: &mut Vgic, vcpu: usize, lrs: &mut impl ListRegs) -> VcpuMask {
    g.sync_lrs(vcpu, lrs);
    let kicks = g.take_deferred_kicks();
    drain_hw_deactivations(hyp, g);
    g.flush_lrs(vcpu, lrs);
    kicks
}

/// Deactivates the physical interrupts whose virtual twins the guest retired by MMIO.
pub fn drain_hw_deactivations(hyp: &Hyp, g: &mut Vgic) {
    while let Some(pintid) = g.take_hw_deactivation() {
        gic::deactivate(&hyp.board.gic, pintid);
    }
}

/// Wakes the vCPUs of `vm` in `mask` and refreshes their list registers (see
/// [`pcpu::notify`]); `me` (running here) reloads its own at the end of the exit.
#[inline]
pub fn kick(hyp: &Hyp, vm: &Vm, mask: VcpuMask, me: usize) {
    pcpu::notify(hyp, vm, mask, Some(me));
}

const CNT_IMASK: u64 = 2;

/// A physical IRQ exit of vCPU `vcpu` of `vm`: acknowledge everything pending and deliver it.
pub fn handle_irq(hyp: &Hyp, vm: &Vm, vcpu: usize) {
    drain(hyp, Some((vm, vcpu)));
}

/// The same while the pCPU idles (no vCPU loaded).
pub fn handle_irq_idle(hyp: &Hyp) {
    drain(hyp, None);
}

/// Physical SPIs belong to VM0 (its devices); the timer and PMU PPIs to the loaded vCPU; the
/// kick SGI and the EL2 timer ask this pCPU to reschedule.
fn drain(hyp: &Hyp, cur: Option<(&Vm, usize)>) {
    let gic_info = &hyp.board.gic;
    let timer = &hyp.board.timer;
    while let Some(iar) = gic::ack(gic_info) {
        let intid = iar & 0x3ff;
        gic::eoi(gic_info, iar);
        match intid {
            i if i == gic::KICK_SGI || i == gic::MAINTENANCE_PPI => {
                gic::deactivate(gic_info, iar);
                if i == gic::KICK_SGI {
                    pcpu::request_resched();
                }
            }
            i if i == timer.hyp => {
                // Level: off until the scheduler arms it again.
                write_sysreg!("cnthp_ctl_el2", 0);
                gic::deactivate(gic_info, iar);
                pcpu::request_resched();
            }
            i if i == timer.virt || i == timer.phys => {
                // Masked and delivered as a plain virtual interrupt: nothing physical stays
                // active when this vCPU is switched out. The guest's handler reprograms it.
                if i == timer.virt {
                    write_sysreg!("cntv_ctl_el0", read_sysreg!("cntv_ctl_el0") | CNT_IMASK);
                } else {
                    write_sysreg!("cntp_ctl_el0", read_sysreg!("cntp_ctl_el0") | CNT_IMASK);
                }
                gic::deactivate(gic_info, iar);
                if let Some((vm, v)) = cur {
                    let kicks = pcpu::raise_timer_line(vm, v, i, i == timer.virt);
                    pcpu::notify(hyp, vm, kicks, Some(v));
                }
            }
            i if gic::FORWARDED_PPIS.contains(&i) => match cur {
                Some((vm, v)) if vm.vgic.is_some() => {
                    let kicks = vm
                        .vgic
                        .as_ref()
                        .map_or(VcpuMask::EMPTY, |g| g.lock().inject(i, Some(i), Some(v)));
                    pcpu::notify(hyp, vm, kicks, Some(v));
                }
                _ => gic::deactivate(gic_info, iar),
            },
            i if super::guest_uart::is_console_irq(hyp, i) => {
                super::guest_uart::console_input(hyp, cur);
                gic::deactivate(gic_info, iar);
            }
            i if i >= 32 => {
                let owner = SPI_OWNER
                    .get(i as usize)
                    .map_or(0, |o| o.load(Ordering::Relaxed));
                match pcpu::vm(usize::from(owner)).filter(|vm| vm.vgic.is_some()) {
                    Some(vm) => {
                        let kicks = vm
                            .vgic
                            .as_ref()
                            .map_or(VcpuMask::EMPTY, |g| g.lock().inject(i, Some(i), None));
                        let me =
                            cur.and_then(|(c, v)| (c.config.vmid == vm.config.vmid).then_some(v));
                        pcpu::notify(hyp, vm, kicks, me);
                    }
                    None => gic::deactivate(gic_info, iar),
                }
            }
            _ => {
                if let Some(n) = BAD_IRQ.allow() {
                    warn!("unexpected physical interrupt {} (#{})", intid, n);
                }
                gic::deactivate(gic_info, iar);
            }
        }
    }
}
