//! Glue between traps and the vGIC model: list-register flush/sync around every guest entry
//! and exit, physical interrupts forwarded as HW-linked virtual ones, kicks between pCPUs.

use crate::board::GicVersion;
use crate::log::RateLimit;
use crate::vgic::{hw_v2::GichListRegs, hw_v3::IchListRegs, ListRegs, VcpuMask, Vgic};
use crate::warn;

use super::boot::{Hyp, Vm};
use super::gic;

static BAD_IRQ: RateLimit = RateLimit::new(4);

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

/// Makes every vCPU in `mask` other than `me` exit to EL2 and reload its list registers.
#[inline]
pub fn kick(hyp: &Hyp, vm: &Vm, mask: VcpuMask, me: usize) {
    // Almost every exit kicks nobody: skip the loop set-up.
    if mask.0 & !VcpuMask::single(me).0 == 0 {
        return;
    }
    kick_others(hyp, vm, mask, me);
}

#[inline(never)]
fn kick_others(hyp: &Hyp, vm: &Vm, mask: VcpuMask, me: usize) {
    for v in mask.iter() {
        if v == me {
            continue;
        }
        if let Some(&p) = vm.config.affinity.as_slice().get(v) {
            let p = p as usize;
            let mpidr = hyp.board.cpus.as_slice()[p];
            gic::send_sgi(&hyp.board.gic, gic::KICK_SGI, mpidr, p);
        }
    }
}

/// A physical IRQ exit: acknowledge everything pending and forward it to the VM running here
/// (physical SPIs are all routed to the boot CPU, which runs VM0).
pub fn handle_irq(hyp: &Hyp, vm: &Vm, vcpu: usize) {
    let gic_info = &hyp.board.gic;
    let Some(vgic) = &vm.vgic else { return };
    while let Some(iar) = gic::ack(gic_info) {
        let intid = iar & 0x3ff;
        gic::eoi(gic_info, iar);
        let kicks = match intid {
            i if i == gic::KICK_SGI || i == 25 => {
                // A kick or the maintenance interrupt: the exit itself was the point.
                gic::deactivate(gic_info, iar);
                VcpuMask::EMPTY
            }
            i if gic::FORWARDED_PPIS.contains(&i) => vgic.lock().inject(i, Some(i), Some(vcpu)),
            i if i >= 32 => vgic.lock().inject(i, Some(i), None),
            _ => {
                if let Some(n) = BAD_IRQ.allow() {
                    warn!("unexpected physical interrupt {} (#{})", intid, n);
                }
                gic::deactivate(gic_info, iar);
                VcpuMask::EMPTY
            }
        };
        kick(hyp, vm, kicks, vcpu);
    }
}
