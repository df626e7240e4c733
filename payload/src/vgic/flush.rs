//! Moving interrupts between the model and a vCPU's list registers.
//!
//! Flush (before entry) rebuilds the list registers from scratch: active interrupts first
//! (the guest must be able to finish them), then pending ones by priority, INTID breaking
//! ties. Moving a pending interrupt into a list register clears the model's pending latch;
//! anything injected while it is there re-latches it. Sync (after exit) reads the state
//! back, folds it into the model and empties the list registers, so the pCPU can run
//! another vCPU. If more interrupts wait than there are list registers, the underflow
//! maintenance interrupt brings the vCPU back out to refill them.
//!
//! Both run on every exit, so their common cases are cheap: a sync with no list register
//! in use returns at once, and a flush returns at once when the model did not change since
//! this vCPU's last flush found nothing to load (`Vgic::dirty`). Otherwise the scan visits
//! only live interrupts (`private_live`, `spi_live`). Host tests assert, in debug builds,
//! that a skipped flush would have found nothing and that `private_live` matches the model.

use super::irq_state::{Irq, LrSlot, MAX_LRS, NR_PRIVATE};
use super::lr::{decode_v2, decode_v3, encode_v2, encode_v3, Lr, LrState};
use super::{GicVersion, ListRegs, VcpuMask, Vgic};

fn irq_live(g: &Vgic, vcpu: usize, id: u32) -> bool {
    g.irq(vcpu, id).is_some_and(Irq::live)
}

/// Sort key, smaller first: active before pending, then priority, then INTID.
fn key(irq: &Irq, id: u32) -> u32 {
    (u32::from(!irq.active) << 24) | (u32::from(irq.priority) << 16) | id
}

impl Vgic {
    /// Is `irq` something to put in a list register of the vCPU it targets?
    fn wants_lr(&self, irq: &Irq) -> bool {
        !irq.in_lr && (irq.active || self.signalable(irq))
    }

    /// Loads vCPU `vcpu`'s highest-priority interrupts into `lrs`. Call right before
    /// entering the vCPU.
    // Always inlined so the common exit pays a couple of loads and a branch, no call.
    #[inline(always)]
    pub fn flush_lrs(&mut self, vcpu: usize, lrs: &mut impl ListRegs) {
        // Nothing changed since a flush that found nothing, and the list registers are
        // empty (synced): this flush would find nothing either. (A vCPU index past 63 has
        // no bit and is out of range anyway.)
        if (self.dirty.0 | self.lrs_loaded.0) & VcpuMask::single(vcpu).0 == 0 {
            debug_assert!(
                vcpu >= self.cfg.nr_vcpus
                    || self.candidates(vcpu, MAX_LRS, &mut [(0, 0); MAX_LRS]) == (0, false)
            );
            return;
        }
        self.flush_lrs_full(vcpu, lrs);
    }

    #[inline(never)]
    fn flush_lrs_full(&mut self, vcpu: usize, lrs: &mut impl ListRegs) {
        if vcpu >= self.cfg.nr_vcpus {
            return;
        }
        // A flush without a sync since the last one must not lose what is in flight.
        if self.vcpus[vcpu].lr_used != 0 {
            self.sync_lrs(vcpu, lrs);
        }
        let n = lrs.count().min(MAX_LRS);
        let mut best = [(u32::MAX, 0u32); MAX_LRS];
        let (len, mut overflow) = self.candidates(vcpu, n, &mut best);
        if len == 0 && !overflow {
            self.dirty.0 &= !VcpuMask::single(vcpu).0;
        }

        let mut used = 0u64;
        for (i, &(_, id)) in best[..len].iter().enumerate() {
            let lr = self.load(vcpu, id);
            // Still pending behind the loaded state (another SGI source, or pending
            // behind an active HW interrupt): come back once this one is done.
            if lr.eoi_maint {
                overflow = true;
            }
            let raw = match self.cfg.version {
                GicVersion::V3 => encode_v3(&lr),
                GicVersion::V2 => u64::from(encode_v2(&lr)),
            };
            lrs.write(i, raw);
            self.vcpus[vcpu].lr[i] = LrSlot {
                intid: id as u16,
                source: lr.source,
            };
            used |= 1 << i;
        }
        self.vcpus[vcpu].lr_used = used;
        if used != 0 {
            self.lrs_loaded |= VcpuMask::single(vcpu);
        }
        // Underflow fires when at most one list register is valid, so it is only useful
        // (and not a storm) with two or more loaded.
        lrs.set_underflow_irq(overflow && len >= 2);
    }

    /// Fills `best` with the `n` best interrupts of vCPU `vcpu` to load, as (sort key,
    /// INTID) best first; returns how many there are, and whether more wanted a list
    /// register. (An out parameter: returning the array costs two copies.)
    fn candidates(&self, vcpu: usize, n: usize, best: &mut [(u32, u32); MAX_LRS]) -> (usize, bool) {
        let st = &self.vcpus[vcpu];
        debug_assert_eq!(
            st.private_live,
            st.private
                .iter()
                .enumerate()
                .filter(|(_, i)| i.live())
                .fold(0, |m, (id, _)| m | 1 << id),
            "private_live out of step"
        );
        let mut len = 0;
        let mut overflow = false;
        // Inlined: a call per candidate costs more than the insertion itself.
        #[inline(always)]
        fn offer(
            best: &mut [(u32, u32); MAX_LRS],
            len: &mut usize,
            overflow: &mut bool,
            n: usize,
            (k, id): (u32, u32),
        ) {
            if *len < n {
                *len += 1;
            } else if n == 0 || k >= best[n - 1].0 {
                *overflow = true;
                return;
            } else {
                *overflow = true;
            }
            // Insertion into the sorted prefix; the worst falls off the end when full.
            let mut i = *len - 1;
            while i > 0 && best[i - 1].0 > k {
                best[i] = best[i - 1];
                i -= 1;
            }
            best[i] = (k, id);
        }
        // Only live interrupts can want a list register.
        for id in VcpuMask(st.private_live.into()).iter() {
            let irq = &st.private[id];
            if self.wants_lr(irq) {
                let c = (key(irq, id as u32), id as u32);
                offer(best, &mut len, &mut overflow, n, c);
            }
        }
        for s in self.live_spis() {
            let irq = &self.spis[s];
            if self.routes[s].dest == Some(vcpu as u8) && self.wants_lr(irq) {
                let id = s as u32 + NR_PRIVATE as u32;
                offer(best, &mut len, &mut overflow, n, (key(irq, id), id));
            }
        }
        (len, overflow)
    }

    /// Moves interrupt `id` of `vcpu` into list-register form.
    fn load(&mut self, vcpu: usize, id: u32) -> Lr {
        let v2_sgi = self.cfg.version == GicVersion::V2 && id < 16;
        let sw_deactivate = self.sw_deactivate;
        let signal = self.irq(vcpu, id).is_some_and(|i| self.signalable(i));
        let Some(st) = self.vcpus.get_mut(vcpu) else {
            return Lr::default();
        };
        let (sources, active_source) = match v2_sgi {
            true => (
                st.sgi_sources[id as usize],
                st.sgi_active_source[id as usize],
            ),
            false => (0, 0),
        };
        let irq = if id < NR_PRIVATE as u32 {
            &mut st.private[id as usize]
        } else {
            match self.spis.get_mut((id - NR_PRIVATE as u32) as usize) {
                Some(irq) => irq,
                None => return Lr::default(),
            }
        };
        // The pending state of an active HW interrupt stays with the physical distributor.
        let mut pend = signal && !(irq.hw.is_some() && irq.active);
        let mut source = 0;
        let mut left_behind = false;
        if v2_sgi {
            // One source per list register: the active one, else the lowest pending.
            source = if irq.active {
                active_source
            } else {
                sources.trailing_zeros() as u8 & 7
            };
            pend = pend && sources & (1 << source) != 0;
            let rest = if pend {
                sources & !(1 << source)
            } else {
                sources
            };
            st.sgi_sources[id as usize] = rest;
            irq.pending = rest != 0;
            left_behind = rest != 0;
        } else if pend {
            irq.pending = false;
        }
        if !v2_sgi && irq.hw.is_none() {
            // Still pending behind this one, or a level line to re-sample: the EOI
            // maintenance interrupt tells us when the guest is done with it.
            left_behind = irq.pending || (irq.level && irq.line);
        } else if irq.hw.is_some() && sw_deactivate {
            // No HW bit: the guest's EOI must come back here to deactivate the physical one.
            left_behind = true;
        }
        irq.in_lr = true;
        irq.lr_vcpu = vcpu as u8;
        irq.lr_pending = pend;
        irq.lr_source = source;
        irq.lr_drop_pending = false;
        irq.lr_active_override = false;
        let lr = Lr {
            vintid: id,
            pintid: irq.hw.filter(|_| !sw_deactivate).map(u32::from),
            priority: irq.priority,
            group1: irq.group1,
            state: LrState::new(pend, irq.active),
            source,
            eoi_maint: left_behind,
        };
        if id >= NR_PRIVATE as u32 {
            self.changed(vcpu, id);
        } else {
            self.track_live(vcpu, id, true);
        }
        lr
    }

    /// Reads vCPU `vcpu`'s list registers back into the model and empties them. Call right
    /// after every exit from the vCPU.
    #[inline(always)]
    pub fn sync_lrs(&mut self, vcpu: usize, lrs: &mut impl ListRegs) {
        // Set only for vCPUs in range with list registers in use.
        if self.lrs_loaded.0 & VcpuMask::single(vcpu).0 == 0 {
            debug_assert!(!matches!(self.vcpus.get(vcpu), Some(st) if st.lr_used != 0));
            return;
        }
        self.sync_lrs_full(vcpu, lrs);
    }

    #[inline(never)]
    fn sync_lrs_full(&mut self, vcpu: usize, lrs: &mut impl ListRegs) {
        if vcpu >= self.cfg.nr_vcpus {
            return;
        }
        self.lrs_loaded.0 &= !VcpuMask::single(vcpu).0;
        let used = core::mem::take(&mut self.vcpus[vcpu].lr_used);
        // What the guest did with them changes the model, for any vCPU an SPI may have
        // been re-routed to meanwhile.
        self.dirty = VcpuMask::ALL;
        let elrsr = lrs.elrsr();
        for i in VcpuMask(used).iter() {
            let slot = self.vcpus[vcpu].lr[i];
            let state = if elrsr & (1 << i) != 0 {
                LrState::Invalid
            } else {
                match self.cfg.version {
                    GicVersion::V3 => decode_v3(lrs.read(i)).state,
                    GicVersion::V2 => decode_v2(lrs.read(i) as u32).state,
                }
            };
            lrs.write(i, 0);
            self.unload(vcpu, u32::from(slot.intid), slot.source, state);
        }
        lrs.set_underflow_irq(false);
    }

    fn unload(&mut self, vcpu: usize, id: u32, source: u8, state: LrState) {
        let v2_sgi = self.cfg.version == GicVersion::V2 && id < 16;
        let sw_deactivate = self.sw_deactivate;
        let Some(irq) = self.irq_mut(vcpu, id) else {
            return;
        };
        irq.in_lr = false;
        let dropped = core::mem::take(&mut irq.lr_drop_pending);
        let keep_pending = state.pending() && !dropped;
        // Withdrawn before the guest took it: nobody will deactivate the physical one.
        let release = (dropped && state == LrState::Pending)
            .then_some(irq.hw)
            .flatten();
        // Software deactivation: the guest EOI'd it, the hypervisor deactivates the physical.
        let done = state == LrState::Invalid && !irq.lr_active_override;
        let release = release.or(irq.hw.filter(|_| done && sw_deactivate));
        let take_active = !core::mem::take(&mut irq.lr_active_override);
        if take_active {
            irq.active = state.active();
        }
        if keep_pending {
            irq.pending = true;
        }
        // A level line still high after the guest's EOI makes it pending again.
        if irq.level && irq.line && irq.hw.is_none() {
            irq.pending = true;
        }
        if v2_sgi {
            let st = &mut self.vcpus[vcpu];
            if keep_pending {
                st.sgi_sources[id as usize] |= 1 << source;
            }
            if take_active && state.active() {
                st.sgi_active_source[id as usize] = source;
            }
        }
        if let Some(p) = release {
            self.queue_hw_deactivation(p);
        }
        if id >= NR_PRIVATE as u32 {
            let kick = self.changed(vcpu, id);
            // Re-routed while in flight here: its new target must look again.
            self.deferred_kicks.0 |= kick.0 & !VcpuMask::single(vcpu).0;
        } else {
            let live = irq_live(self, vcpu, id);
            self.track_live(vcpu, id, live);
        }
    }
}
