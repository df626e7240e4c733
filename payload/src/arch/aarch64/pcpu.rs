//! Running vCPUs on physical CPUs: the VM table, one run queue per pCPU (policy in
//! [`crate::sched`]), the vCPU switch, WFI blocking, the idle loop and the timers.
//!
//! A pCPU switches vCPUs only at the end of an exit, through the trap frame head.S saved on
//! its stack: the outgoing vCPU's frame, EL1 registers, timers and GIC interface go to its
//! [`VcpuCtx`], the incoming one's come back, and head.S's normal return path enters it. The
//! list registers need no switching: every exit syncs them into the vGIC model first.
//!
//! Time: the EL2 physical timer (`CNTHP`) fires at the end of the running vCPU's slice when
//! another vCPU waits, and at the earliest timer deadline of the vCPUs that are not loaded
//! (a vCPU blocked in WFI must wake when its own timer expires). A loaded vCPU's timers are
//! the hardware's; their interrupts are delivered as plain virtual interrupts with the timer
//! masked (the guest's handler reprograms it), so no physical timer interrupt stays active
//! across a switch.

extern crate alloc;

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::board::{GicVersion, MAX_CPUS};
use crate::sched::{Decision, Priority, RunQueue, SchedError, State, Timing, VcpuRef, Wake};
use crate::spin::SpinLock;
use crate::vgic::{hw_v2, hw_v3, ListRegs, VcpuMask};

use super::boot::{Hyp, Vm};
use super::context::{self, GicIf, TIMER_P, TIMER_V};
use super::gic;
use super::regs;
use super::trap::Frame;

/// VM ids 0 (VM0) to 64 (`minos_abi::MAX_VMS`).
pub const MAX_VMS: usize = 65;
/// vCPUs sharing one pCPU.
const RQ_LEN: usize = 8;
/// The time slice, in milliseconds.
const SLICE_MS: u64 = 10;

const HCR_TWI: u64 = 1 << 13;
const HCR_TWE: u64 = 1 << 14;
const CNTHP_ENABLE: u64 = 1;

static VMS: [AtomicPtr<Vm>; MAX_VMS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_VMS];

struct Pcpu {
    queue: SpinLock<RunQueue<RQ_LEN>>,
    /// The vCPU whose state is in this pCPU's registers, as [`encode`]d; 0 when none.
    loaded: AtomicU32,
    /// Re-run the scheduler at the end of this exit.
    resched: AtomicBool,
    /// A woken vCPU outranks the running one: do not wait for the slice end.
    preempt: AtomicBool,
    /// The loaded vCPU's [`VcpuCtx::timer_lines`](super::context::VcpuCtx).
    timer_lines: AtomicU8,
    /// vCPU switches (one vCPU's state out, another's in) and counter ticks spent in them.
    switches: AtomicU64,
    switch_ticks: AtomicU64,
}

static PCPUS: [Pcpu; MAX_CPUS] = [const {
    Pcpu {
        queue: SpinLock::new(RunQueue::new(Timing::with_slice(u64::MAX / 8))),
        loaded: AtomicU32::new(0),
        resched: AtomicBool::new(false),
        preempt: AtomicBool::new(false),
        timer_lines: AtomicU8::new(0),
        switches: AtomicU64::new(0),
        switch_ticks: AtomicU64::new(0),
    }
}; MAX_CPUS];

fn encode(vmid: u32, v: usize) -> u32 {
    ((vmid + 1) << 8) | v as u32
}

fn decode(x: u32) -> Option<(usize, usize)> {
    (x != 0).then(|| ((x >> 8) as usize - 1, (x & 0xff) as usize))
}

fn who(vm: &Vm, v: usize) -> VcpuRef {
    VcpuRef {
        vmid: vm.config.vmid as u16,
        vcpu: v as u16,
    }
}

fn now() -> u64 {
    read_sysreg!("cntpct_el0")
}

/// The VM with id `vmid`, while it is registered.
pub fn vm(vmid: usize) -> Option<&'static Vm> {
    let p = VMS.get(vmid)?.load(Ordering::Acquire);
    // SAFETY: a registered VM is a leaked Box that `unregister_vm` reclaims only after no pCPU
    // has it loaded or queued; callers hold it no longer than the exit they are in.
    unsafe { p.as_ref() }
}

/// The vCPU loaded on pCPU `cpu` (the one that trapped).
#[inline(always)]
pub fn current(cpu: usize) -> Option<(&'static Vm, usize)> {
    let (vmid, v) = decode(PCPUS[cpu].loaded.load(Ordering::Relaxed))?;
    Some((vm(vmid)?, v))
}

/// Per-pCPU setup: the slice length from the counter frequency.
pub fn init_cpu(cpu: usize) {
    let freq = read_sysreg!("cntfrq_el0").max(1_000);
    PCPUS[cpu]
        .queue
        .lock()
        .set_timing(Timing::with_slice(freq / 1000 * SLICE_MS));
}

/// Adds `vm` to the VM table and its vCPUs, off, to the run queues of the pCPUs its
/// `vcpu_affinity` names.
pub fn register_vm(hyp: &Hyp, vm: Box<Vm>) -> Result<&'static Vm, SchedError> {
    let vmid = vm.config.vmid as usize;
    let ncpus = hyp.board.cpus.len() as u32;
    crate::sched::placement(vm.config.affinity.as_slice(), ncpus)?;
    let slot = VMS.get(vmid).ok_or(SchedError::BadSlot(vmid))?;
    if !slot.load(Ordering::Acquire).is_null() {
        return Err(SchedError::Duplicate(who(&vm, 0)));
    }
    let prio = Priority(vm.priority);
    for (v, &p) in vm.config.affinity.iter().enumerate() {
        if let Err(e) = PCPUS[p as usize].queue.lock().add(who(&vm, v), prio) {
            for (u, &q) in vm.config.affinity.iter().enumerate().take(v) {
                let _ = PCPUS[q as usize].queue.lock().remove(who(&vm, u));
            }
            return Err(e);
        }
    }
    let ptr = Box::into_raw(vm);
    slot.store(ptr, Ordering::Release);
    // SAFETY: just leaked; lives until `unregister_vm`.
    Ok(unsafe { &*ptr })
}

/// Stops every vCPU of VM `vmid`, waits until no pCPU has one loaded, takes them off their
/// run queues and out of the table. After it returns no pCPU uses the VM's stage 2.
pub fn unregister_vm(hyp: &Hyp, vmid: usize) -> Option<Box<Vm>> {
    let vm = vm(vmid)?;
    stop_vm(hyp, vm);
    for v in 0..vm.config.vcpus as usize {
        wait_unloaded(vm, v);
    }
    for (v, &p) in vm.config.affinity.iter().enumerate() {
        let _ = PCPUS[p as usize].queue.lock().remove(who(vm, v));
    }
    let ptr = VMS[vmid].swap(core::ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: registered by `register_vm` from a Box; off every queue and pCPU now.
    Some(unsafe { Box::from_raw(ptr) })
}

fn loaded_on(vm: &Vm, v: usize) -> Option<usize> {
    let &p = vm.config.affinity.as_slice().get(v)?;
    let p = p as usize;
    (PCPUS[p].loaded.load(Ordering::Acquire) == encode(vm.config.vmid, v)).then_some(p)
}

/// Waits until no other pCPU has vCPU `v` of `vm` loaded (its state is in its context).
pub fn wait_unloaded(vm: &Vm, v: usize) {
    while loaded_on(vm, v).is_some_and(|p| p != regs::cpu_index()) {
        core::hint::spin_loop();
    }
}

/// Resets vCPU `v` of `vm` to enter `entry` with `x0` (EL1h, MMU off, interrupts masked) and
/// makes it runnable.
pub fn start_vcpu(hyp: &Hyp, vm: &Vm, v: usize, entry: u64, x0: u64) {
    let Some(&p) = vm.config.affinity.as_slice().get(v) else {
        return;
    };
    let p = p as usize;
    let wake = {
        let mut q = PCPUS[p].queue.lock();
        // Applied when it is next loaded: its pCPU may still be saving its old state.
        vm.vcpus[v].lock().pending_reset = Some((entry, x0));
        match q.find(who(vm, v)) {
            Some(s) => q.power_on(s, now()).unwrap_or(Wake::NotBlocked),
            None => Wake::NotBlocked,
        }
    };
    poke(hyp, p, wake, true);
}

/// Powers every vCPU of `vm` off; a loaded one leaves its pCPU at its next exit (kicked now).
pub fn stop_vm(hyp: &Hyp, vm: &Vm) {
    for (v, &p) in vm.config.affinity.iter().enumerate() {
        let p = p as usize;
        {
            let mut q = PCPUS[p].queue.lock();
            if let Some(s) = q.find(who(vm, v)) {
                let _ = q.power_off(s, now());
            }
        }
        poke(hyp, p, Wake::Preempt, true);
    }
}

/// Whether the vCPU loaded here was powered off (its VM is stopping): a trap path waiting
/// for a lock another pCPU holds while it stops this VM must give up.
pub fn current_stopping() -> bool {
    let cpu = regs::cpu_index();
    let Some((vmid, v)) = decode(PCPUS[cpu].loaded.load(Ordering::Acquire)) else {
        return false;
    };
    let q = PCPUS[cpu].queue.lock();
    let r = VcpuRef {
        vmid: vmid as u16,
        vcpu: v as u16,
    };
    q.find(r).and_then(|s| q.state(s)) == Some(State::Off)
}

/// PSCI CPU_OFF of the trapping vCPU: it stops at the end of this exit.
pub fn power_off_current(vm: &Vm, v: usize) {
    let cpu = regs::cpu_index();
    {
        let mut q = PCPUS[cpu].queue.lock();
        if let Some(s) = q.find(who(vm, v)) {
            let _ = q.power_off(s, now());
        }
    }
    PCPUS[cpu].resched.store(true, Ordering::Relaxed);
}

/// The trapping vCPU waits (for mvm) until [`resume_vcpu`]: it leaves the pCPU at the end
/// of this exit.
pub fn block_current(hyp: &Hyp) {
    let cpu = regs::cpu_index();
    let Some((vm, v)) = current(cpu) else { return };
    let _ = hyp;
    let mut q = PCPUS[cpu].queue.lock();
    if let Some(s) = q.find(who(vm, v)) {
        // Not `block`: an interrupt must not run it again before its access is answered.
        if let Err(e) = q.wait(s, now()) {
            crate::info!(
                "stall: cpu{} vm{} vcpu{} cannot wait: {:?} (queue runs {:?})",
                cpu,
                vm.config.vmid,
                v,
                e,
                q.current()
            );
        }
    }
    PCPUS[cpu].resched.store(true, Ordering::Relaxed);
}

/// A vCPU blocked by [`block_current`]: `f` edits its saved registers, then it runs again.
pub fn resume_vcpu(hyp: &Hyp, vm: &Vm, v: usize, f: impl FnOnce(&mut Frame)) {
    let Some(&p) = vm.config.affinity.as_slice().get(v) else {
        return;
    };
    // Its pCPU may still be finishing the exit that blocked it: its frame is saved once it
    // is unloaded.
    wait_unloaded(vm, v);
    let p = p as usize;
    let wake = {
        let mut q = PCPUS[p].queue.lock();
        f(&mut vm.vcpus[v].lock().frame);
        match q.find(who(vm, v)) {
            Some(s) => {
                if q.state(s) != Some(State::Waiting) {
                    crate::info!(
                        "stall: resume of vm{} vcpu{} finds it {:?}",
                        vm.config.vmid,
                        v,
                        q.state(s)
                    );
                }
                q.resume(s, now()).unwrap_or(Wake::NotBlocked)
            }
            None => Wake::NotBlocked,
        }
    };
    poke(hyp, p, wake, false);
}

/// A trapped WFI: blocks the vCPU unless an interrupt is already deliverable to it.
pub fn wfi(vm: &Vm, v: usize) {
    let cpu = regs::cpu_index();
    let mut q = PCPUS[cpu].queue.lock();
    // Under the queue lock: an injection after this check finds the vCPU blocked and wakes it.
    if vm
        .vgic
        .as_ref()
        .is_some_and(|g| g.lock().has_deliverable(v))
    {
        return;
    }
    if let Some(s) = q.find(who(vm, v)) {
        let _ = q.block(s, now());
    }
    PCPUS[cpu].resched.store(true, Ordering::Relaxed);
}

/// A trapped WFE: let another ready vCPU of this pCPU run.
pub fn yield_current() {
    let cpu = regs::cpu_index();
    PCPUS[cpu].preempt.store(true, Ordering::Relaxed);
    PCPUS[cpu].resched.store(true, Ordering::Relaxed);
}

/// After an injection into `vm`'s vGIC: wakes the vCPUs in `mask` and makes their pCPUs
/// look (an SGI for another pCPU). `me` is the vCPU of `vm` running here, if any: its list
/// registers are refreshed at the end of this exit anyway.
#[inline]
pub fn notify(hyp: &Hyp, vm: &Vm, mask: VcpuMask, me: Option<usize>) {
    let me_bit = me.map_or(0, |v| VcpuMask::single(v).0);
    if mask.0 & !me_bit == 0 {
        return;
    }
    notify_others(hyp, vm, VcpuMask(mask.0 & !me_bit));
}

#[inline(never)]
fn notify_others(hyp: &Hyp, vm: &Vm, mask: VcpuMask) {
    for v in mask.iter() {
        let Some(&p) = vm.config.affinity.as_slice().get(v) else {
            continue;
        };
        let p = p as usize;
        let wake = {
            let mut q = PCPUS[p].queue.lock();
            match q.find(who(vm, v)) {
                Some(s) => q.wake(s, now()).unwrap_or(Wake::NotBlocked),
                None => continue,
            }
        };
        // A vCPU loaded there must reload its list registers even if it was not blocked.
        let loaded = PCPUS[p].loaded.load(Ordering::Acquire) == encode(vm.config.vmid, v);
        if wake != Wake::NotBlocked || loaded {
            poke(hyp, p, wake, true);
        }
    }
}

/// Makes pCPU `p` re-run its scheduler: locally at the end of this exit, else by SGI.
fn poke(hyp: &Hyp, p: usize, wake: Wake, always: bool) {
    if wake == Wake::NotBlocked && !always {
        return;
    }
    if wake == Wake::Preempt {
        PCPUS[p].preempt.store(true, Ordering::Relaxed);
    }
    PCPUS[p].resched.store(true, Ordering::Release);
    if p != regs::cpu_index() {
        if hyp.board.gic_passthrough {
            super::boot::wake_parked(hyp, p, || PCPUS[p].resched.load(Ordering::Acquire));
        } else {
            let mpidr = hyp.board.cpus.as_slice()[p];
            gic::send_sgi(&hyp.board.gic, gic::KICK_SGI, mpidr, p);
        }
    }
}

/// Marks this pCPU for a reschedule (a kick arrived, or its slice timer fired).
pub fn request_resched() {
    PCPUS[regs::cpu_index()]
        .resched
        .store(true, Ordering::Relaxed);
}

/// Whether this pCPU must re-run its scheduler before returning to the guest.
#[inline(always)]
pub fn resched_pending(cpu: usize) -> bool {
    PCPUS[cpu].resched.load(Ordering::Relaxed)
}

/// Picks the vCPU to run on this pCPU and loads it into `frame` and the registers, idling
/// (WFI at EL2) while nothing is runnable.
#[inline(never)]
pub fn switch(hyp: &Hyp, cpu: usize, frame: &mut Frame) {
    let pc = &PCPUS[cpu];
    loop {
        pc.resched.store(false, Ordering::Relaxed);
        let t = now();
        let woke_higher = expire_timers(hyp, cpu, t);
        let mut q = pc.queue.lock();
        let d = if pc.preempt.swap(false, Ordering::Relaxed) || woke_higher {
            q.preempt(t)
        } else {
            q.tick(t)
        };
        let next = match d {
            Decision::Run(s) => q.vcpu(s),
            Decision::Idle => None,
        };
        let loaded = decode(pc.loaded.load(Ordering::Relaxed));
        let next_ids = next.map(|r| (r.vmid as usize, r.vcpu as usize));
        if loaded != next_ids {
            let t0 = now();
            let both = loaded.is_some() && next_ids.is_some();
            if let Some((vmid, v)) = loaded {
                if let Some(vm) = vm(vmid) {
                    save(hyp, vm, v, frame);
                }
                pc.loaded.store(0, Ordering::Release);
            }
            if let Some((vmid, v)) = next_ids {
                if let Some(vm) = vm(vmid) {
                    load(hyp, vm, v, frame, q.len() > 1);
                    pc.loaded
                        .store(encode(vm.config.vmid, v), Ordering::Release);
                }
            }
            if both {
                pc.switches.fetch_add(1, Ordering::Relaxed);
                pc.switch_ticks
                    .fetch_add(now().wrapping_sub(t0), Ordering::Relaxed);
            }
        }
        program_timer(&q, cpu, t);
        report_stalls(cpu, &q, t);
        drop(q);
        if next_ids.is_some() {
            return;
        }
        idle(hyp, cpu);
    }
}

fn save(hyp: &Hyp, vm: &Vm, v: usize, frame: &Frame) {
    let mut ctx = vm.vcpus[v].lock();
    ctx.frame = *frame;
    ctx.timer_lines = PCPUS[regs::cpu_index()]
        .timer_lines
        .swap(0, Ordering::Relaxed);
    ctx.el1.save();
    context::save_timers(&mut ctx);
    ctx.gic = match hyp.board.gic.version {
        _ if vm.vgic.is_none() => GicIf::None,
        GicVersion::V3 => {
            let mut s = hw_v3::VcpuIfState::default();
            s.save();
            hw_v3::IchListRegs.set_underflow_irq(false);
            GicIf::V3(s)
        }
        GicVersion::V2 => {
            let mut lrs = hw_v2::GichListRegs {
                base: hyp.board.gic.hyp.base as usize,
            };
            let s = lrs.save();
            lrs.set_underflow_irq(false);
            GicIf::V2(s)
        }
    };
}

fn load(hyp: &Hyp, vm: &Vm, v: usize, frame: &mut Frame, shared: bool) {
    let mut ctx = vm.vcpus[v].lock();
    if let Some((entry, x0)) = ctx.pending_reset.take() {
        ctx.reset(entry, x0);
    }
    *frame = ctx.frame;
    PCPUS[regs::cpu_index()]
        .timer_lines
        .store(ctx.timer_lines, Ordering::Relaxed);
    ctx.el1.restore();
    write_sysreg!("vttbr_el2", vm.vttbr);
    write_sysreg!("vtcr_el2", vm.vtcr);
    write_sysreg!("vmpidr_el2", vm.psci.mpidr(v) | (1 << 31));
    write_sysreg!("cntvoff_el2", vm.cntvoff.load(Ordering::Relaxed));
    let mut hcr = super::boot::hcr_for(hyp, vm);
    if !vm.config.native_wfi && !hyp.board.gic_passthrough {
        hcr |= HCR_TWI;
    }
    if shared && !hyp.board.gic_passthrough {
        hcr |= HCR_TWE;
    }
    write_sysreg!("hcr_el2", hcr);
    match ctx.gic {
        GicIf::V3(s) => s.restore(),
        GicIf::V2(s) => hw_v2::GichListRegs {
            base: hyp.board.gic.hyp.base as usize,
        }
        .restore(&s),
        GicIf::None => {}
    }
    context::restore_timers(&ctx);
    regs::isb();
}

/// Delivers the expired timers of the vCPUs queued here but not loaded: each becomes a
/// pending virtual timer interrupt (the timer masked, as for a loaded vCPU) and wakes it.
/// True if a woken vCPU outranks the running one.
fn expire_timers(hyp: &Hyp, cpu: usize, t: u64) -> bool {
    let mut preempt = false;
    let loaded = decode(PCPUS[cpu].loaded.load(Ordering::Relaxed));
    let mut q = PCPUS[cpu].queue.lock();
    for i in 0..q.len() {
        let s = crate::sched::Slot(i);
        let (Some(r), Some(st)) = (q.vcpu(s), q.state(s)) else {
            continue;
        };
        let ids = (r.vmid as usize, r.vcpu as usize);
        if st == State::Off || Some(ids) == loaded {
            continue;
        }
        let Some(vm) = vm(ids.0) else { continue };
        let Some(vgic) = &vm.vgic else { continue };
        let mut fired = [None; 2];
        {
            let mut ctx = vm.vcpus[ids.1].lock();
            if ctx
                .vtimer
                .deadline()
                .is_some_and(|d| d.wrapping_add(vm.cntvoff.load(Ordering::Relaxed)) <= t)
            {
                ctx.vtimer.mask();
                ctx.timer_lines |= TIMER_V;
                fired[0] = Some(hyp.board.timer.virt);
            }
            if ctx.ptimer.deadline().is_some_and(|d| d <= t) {
                ctx.ptimer.mask();
                ctx.timer_lines |= TIMER_P;
                fired[1] = Some(hyp.board.timer.phys);
            }
        }
        let mut any = false;
        for intid in fired.into_iter().flatten() {
            vgic.lock().set_level(intid, Some(ids.1), true);
            any = true;
        }
        if any && q.wake(s, t) == Ok(Wake::Preempt) {
            preempt = true;
        }
    }
    preempt
}

/// Arms the EL2 timer for the slice end (when another vCPU waits) and the earliest timer
/// deadline of the vCPUs not loaded; off when there is neither.
fn program_timer(q: &RunQueue<RQ_LEN>, cpu: usize, _t: u64) {
    let loaded = decode(PCPUS[cpu].loaded.load(Ordering::Relaxed));
    let mut next = q.next_deadline();
    for (_, r, st) in q.iter() {
        let ids = (r.vmid as usize, r.vcpu as usize);
        if st == State::Off || Some(ids) == loaded {
            continue;
        }
        let Some(vm) = vm(ids.0) else { continue };
        let ctx = vm.vcpus[ids.1].lock();
        let d = [
            ctx.vtimer
                .deadline()
                .map(|d| d.wrapping_add(vm.cntvoff.load(Ordering::Relaxed))),
            ctx.ptimer.deadline(),
        ];
        for d in d.into_iter().flatten() {
            next = Some(next.map_or(d, |n: u64| n.min(d)));
        }
    }
    match next {
        Some(d) => {
            write_sysreg!("cnthp_cval_el2", d);
            write_sysreg!("cnthp_ctl_el2", CNTHP_ENABLE);
        }
        None => write_sysreg!("cnthp_ctl_el2", 0),
    }
}

/// Seconds past which a vCPU's state means something is stuck: ready but never run, waiting for
/// mvm's answer, or blocked although its own timer expired.
const STALL_READY_S: u64 = 2;
const STALL_WAITING_S: u64 = 10;
const STALL_TIMER_S: u64 = 2;
static STALL_REPORTED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Logs (at most one line a second per pCPU) a vCPU of this queue that looks stuck: the
/// evidence a hang of a guest needs, as no guest can cause it by behaving badly.
fn report_stalls(cpu: usize, q: &RunQueue<RQ_LEN>, t: u64) {
    let sec = read_sysreg!("cntfrq_el0").max(1);
    if t.wrapping_sub(STALL_REPORTED[cpu].load(Ordering::Relaxed)) < sec {
        return;
    }
    for (s, r, st) in q.iter() {
        let Some(since) = q.since(s) else { continue };
        let age = t.saturating_sub(since);
        let what = match st {
            State::Ready if age > STALL_READY_S * sec => "ready but not run",
            State::Waiting if age > STALL_WAITING_S * sec => "waiting for mvm's answer",
            State::Blocked => {
                let Some(vm) = vm(usize::from(r.vmid)) else {
                    continue;
                };
                let ctx = vm.vcpus[usize::from(r.vcpu)].lock();
                let off = vm.cntvoff.load(Ordering::Relaxed);
                let due = [
                    ctx.vtimer.deadline().map(|d| d.wrapping_add(off)),
                    ctx.ptimer.deadline(),
                ];
                if !due
                    .iter()
                    .flatten()
                    .any(|&d| t.saturating_sub(d) > STALL_TIMER_S * sec)
                {
                    continue;
                }
                "blocked although its timer expired"
            }
            _ => continue,
        };
        STALL_REPORTED[cpu].store(t, Ordering::Relaxed);
        crate::info!(
            "stall: cpu{} vm{} vcpu{} {} for {} ms",
            cpu,
            r.vmid,
            r.vcpu,
            what,
            age * 1000 / sec
        );
        if st == State::Waiting {
            super::platform::report_outstanding(u32::from(r.vmid));
        }
        return;
    }
}

/// Nothing to run: wait for an interrupt at EL2 and handle it.
fn idle(hyp: &Hyp, cpu: usize) {
    if hyp.board.gic_passthrough {
        // The interrupts belong to VM0, none wakes us: park through firmware until `poke`
        // powers this pCPU on again (it restarts in the scheduler).
        if !PCPUS[cpu].resched.load(Ordering::Acquire) {
            super::boot::power_off_cpu();
        }
        return;
    }
    regs::wfi();
    super::virq::handle_irq_idle(hyp);
}

/// The loaded vCPU's timer fired: its interrupt line goes high in the vGIC (level-sensitive,
/// like the hardware's) until [`sync_timer_lines`] sees the guest's timer stop asserting.
/// Returns the vCPUs to kick.
pub fn raise_timer_line(vm: &Vm, v: usize, intid: u32, virt: bool) -> VcpuMask {
    let Some(vgic) = &vm.vgic else {
        return VcpuMask::EMPTY;
    };
    let bit = if virt { TIMER_V } else { TIMER_P };
    PCPUS[regs::cpu_index()]
        .timer_lines
        .fetch_or(bit, Ordering::Relaxed);
    vgic.lock().set_level(intid, Some(v), true)
}

/// At an exit of the loaded vCPU: lowers the timer lines whose timer the guest disabled or
/// moved to a later deadline (an interrupt that is no longer asserted must not stay pending).
#[inline(always)]
pub fn sync_timer_lines(hyp: &Hyp, vm: &Vm, v: usize) {
    let lines = &PCPUS[regs::cpu_index()].timer_lines;
    if lines.load(Ordering::Relaxed) != 0 {
        lower_timer_lines(hyp, vm, v, lines);
    }
}

#[inline(never)]
fn lower_timer_lines(hyp: &Hyp, vm: &Vm, v: usize, lines: &AtomicU8) {
    let Some(vgic) = &vm.vgic else { return };
    let mut l = lines.load(Ordering::Relaxed);
    if l & TIMER_V != 0 && !context::asserting(read_sysreg!("cntv_ctl_el0")) {
        vgic.lock().set_level(hyp.board.timer.virt, Some(v), false);
        l &= !TIMER_V;
    }
    if l & TIMER_P != 0 && !context::asserting(read_sysreg!("cntp_ctl_el0")) {
        vgic.lock().set_level(hyp.board.timer.phys, Some(v), false);
        l &= !TIMER_P;
    }
    lines.store(l, Ordering::Relaxed);
}

/// Logs each pCPU's vCPU switch count and average cost (save + load, counter ticks): at
/// VM0's power-off, for `scripts/bench`.
pub fn log_switch_stats(hyp: &Hyp) {
    for (cpu, pc) in PCPUS.iter().enumerate().take(hyp.board.cpus.len()) {
        let n = pc.switches.load(Ordering::Relaxed);
        if n > 0 {
            let t = pc.switch_ticks.load(Ordering::Relaxed);
            crate::info!(
                "cpu{}: {} vCPU switches, {}.{:03} counter ticks each (state out and in)",
                cpu,
                n,
                t / n,
                (t % n) * 1000 / n
            );
        }
    }
}
