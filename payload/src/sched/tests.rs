use super::*;

const SLICE: u64 = 100;

fn v(vmid: u16, vcpu: u16) -> VcpuRef {
    VcpuRef { vmid, vcpu }
}

fn rq() -> RunQueue<8> {
    RunQueue::new(Timing::with_slice(SLICE))
}

/// Drives a run queue the way the trap loop does: the running vCPU runs until the deadline
/// (or forever when tickless), then the timer fires.
fn run_for(q: &mut RunQueue<8>, mut now: u64, until: u64) -> u64 {
    while now < until {
        let next = q.next_deadline().unwrap_or(until).min(until);
        now = next.max(now + 1);
        q.tick(now);
    }
    now
}

#[test]
fn lone_vcpu_runs_tickless() {
    let mut q = rq();
    let a = q.add(v(0, 0), Priority(1)).unwrap();
    assert_eq!(q.power_on(a, 0).unwrap(), Wake::Preempt);
    assert_eq!(q.tick(0), Decision::Run(a));
    assert_eq!(q.next_deadline(), None);
    assert_eq!(q.tick(10_000), Decision::Run(a));
    assert_eq!(q.switches_in(a), 1);
}

#[test]
fn equal_priorities_round_robin_by_slice() {
    let mut q = rq();
    let s: [Slot; 3] = core::array::from_fn(|i| q.add(v(i as u16, 0), Priority(5)).unwrap());
    for x in s {
        q.power_on(x, 0).unwrap();
    }
    assert_eq!(q.tick(0), Decision::Run(s[0]));
    assert_eq!(q.next_deadline(), Some(SLICE));
    // Before the slice ends nothing changes.
    assert_eq!(q.tick(SLICE - 1), Decision::Run(s[0]));
    let mut order = [0usize; 6];
    for (k, slot) in order.iter_mut().enumerate() {
        let t = SLICE * (k as u64 + 1);
        match q.tick(t) {
            Decision::Run(r) => *slot = r.0,
            Decision::Idle => panic!("idle with 3 ready vCPUs"),
        }
    }
    assert_eq!(order, [1, 2, 0, 1, 2, 0]);
    let total: u64 = s.iter().map(|&x| q.ran(x)).sum();
    assert_eq!(total, 6 * SLICE);
    for x in s {
        assert_eq!(q.ran(x), 2 * SLICE);
    }
}

#[test]
fn higher_priority_runs_first_and_preempts_on_wake() {
    let mut q = rq();
    let lo = q.add(v(0, 0), Priority(1)).unwrap();
    let hi = q.add(v(1, 0), Priority(9)).unwrap();
    q.power_on(lo, 0).unwrap();
    assert_eq!(q.tick(0), Decision::Run(lo));
    // hi comes up: more important than the running one.
    assert_eq!(q.power_on(hi, 10).unwrap(), Wake::Preempt);
    assert_eq!(q.preempt(10), Decision::Run(hi));
    assert_eq!(q.state(lo), Some(State::Ready));
    // hi waits for an interrupt: lo gets the CPU.
    assert_eq!(q.block(hi, 20).unwrap(), Decision::Run(lo));
    assert_eq!(q.next_deadline(), None, "lo alone runs tickless");
    // hi's interrupt arrives: preempts lo at once.
    assert_eq!(q.wake(hi, 30).unwrap(), Wake::Preempt);
    assert_eq!(q.preempt(30), Decision::Run(hi));
    // A wake of a lower-priority vCPU only queues it.
    q.block(hi, 40).unwrap();
    assert_eq!(q.current(), Some(lo));
    q.preempt(40);
    assert_eq!(q.block(lo, 50).unwrap(), Decision::Idle);
    assert_eq!(q.wake(lo, 60).unwrap(), Wake::Preempt, "idle pCPU");
    assert_eq!(q.preempt(60), Decision::Run(lo));
    q.wake(hi, 70).unwrap();
    assert_eq!(
        q.current(),
        Some(lo),
        "no switch until the caller reschedules"
    );
    assert_eq!(q.wake(lo, 70).unwrap(), Wake::NotBlocked);
}

#[test]
fn busy_high_priority_vcpu_cannot_starve_a_lower_one() {
    let mut q = rq();
    let hog = q.add(v(0, 0), Priority(200)).unwrap();
    let meek = q.add(v(1, 0), Priority(1)).unwrap();
    q.power_on(hog, 0).unwrap();
    q.power_on(meek, 0).unwrap();
    assert_eq!(q.tick(0), Decision::Run(hog));
    let end = run_for(&mut q, 0, 100 * SLICE);
    let (h, m) = (q.ran(hog), q.ran(meek));
    assert_eq!(h + m, end);
    // At least one slice in every starve_limit + slice.
    let period = Timing::with_slice(SLICE).starve_limit + SLICE;
    assert!(m >= (end / period - 1) * SLICE, "meek ran {m} of {end}");
    assert!(h > m, "priority still counts: hog {h}, meek {m}");
}

#[test]
fn waiting_time_is_bounded_for_every_ready_vcpu() {
    let mut q = rq();
    let slots: [Slot; 4] =
        core::array::from_fn(|i| q.add(v(i as u16, 0), Priority(10 * i as u8)).unwrap());
    for s in slots {
        q.power_on(s, 0).unwrap();
    }
    q.tick(0);
    let limit = Timing::with_slice(SLICE).starve_limit;
    let mut last_ran = [0u64; 4];
    let mut now = 0;
    while now < 200 * SLICE {
        now = q.next_deadline().expect("others wait");
        if let Decision::Run(s) = q.tick(now) {
            last_ran[s.0] = now;
        }
        for (i, &t) in last_ran.iter().enumerate() {
            // A starving vCPU may still wait for the other starving ones ahead of it.
            assert!(
                now - t <= limit + 4 * SLICE,
                "vCPU {i} waited {} at {now}",
                now - t
            );
        }
    }
}

#[test]
fn blocked_and_off_vcpus_are_never_picked() {
    let mut q = rq();
    let a = q.add(v(0, 0), Priority(1)).unwrap();
    let b = q.add(v(0, 1), Priority(1)).unwrap();
    assert_eq!(q.tick(0), Decision::Idle, "nothing powered on");
    q.power_on(a, 0).unwrap();
    q.power_on(b, 0).unwrap();
    assert_eq!(q.tick(0), Decision::Run(a));
    assert_eq!(q.block(a, 5).unwrap(), Decision::Run(b));
    for t in 1..20 {
        assert_eq!(q.tick(t * SLICE), Decision::Run(b));
    }
    assert_eq!(q.power_off(b, 2000).unwrap(), Decision::Idle);
    assert_eq!(q.state(a), Some(State::Blocked));
    assert_eq!(
        q.wake(b, 2001).unwrap(),
        Wake::NotBlocked,
        "off is not blocked"
    );
    assert_eq!(q.wake(a, 2002).unwrap(), Wake::Preempt);
    assert_eq!(q.tick(2002), Decision::Run(a));
}

#[test]
fn block_of_a_vcpu_that_is_not_running_is_refused() {
    let mut q = rq();
    let a = q.add(v(0, 0), Priority(1)).unwrap();
    let b = q.add(v(0, 1), Priority(1)).unwrap();
    q.power_on(a, 0).unwrap();
    q.power_on(b, 0).unwrap();
    q.tick(0);
    assert_eq!(q.block(b, 1), Err(SchedError::BadSlot(1)));
    assert_eq!(q.block(Slot(7), 1), Err(SchedError::BadSlot(7)));
    assert_eq!(q.wake(Slot(7), 1), Err(SchedError::BadSlot(7)));
}

#[test]
fn add_refuses_duplicates_and_overflow() {
    let mut q: RunQueue<2> = RunQueue::new(Timing::with_slice(SLICE));
    q.add(v(0, 0), Priority(1)).unwrap();
    assert_eq!(
        q.add(v(0, 0), Priority(2)),
        Err(SchedError::Duplicate(v(0, 0)))
    );
    q.add(v(1, 0), Priority(1)).unwrap();
    assert_eq!(q.add(v(2, 0), Priority(1)), Err(SchedError::Full));
    assert_eq!(q.find(v(1, 0)), Some(Slot(1)));
    assert_eq!(q.vcpu(Slot(1)), Some(v(1, 0)));
}

#[test]
fn placement_checks_affinity_against_the_board() {
    assert_eq!(placement(&[0, 1, 3], 4), Ok(()));
    assert_eq!(
        placement(&[0, 4], 4),
        Err(SchedError::NoSuchCpu { cpu: 4, ncpus: 4 })
    );
}

#[test]
fn remove_takes_only_an_off_vcpu_and_keeps_the_running_one() {
    let mut q = rq();
    let a = q.add(v(0, 0), Priority(1)).unwrap();
    let b = q.add(v(1, 0), Priority(1)).unwrap();
    let c = q.add(v(2, 0), Priority(1)).unwrap();
    q.power_on(a, 0).unwrap();
    q.power_on(c, 0).unwrap();
    assert_eq!(q.tick(0), Decision::Run(a));
    q.power_on(b, 0).unwrap();
    // Not off: refused.
    assert_eq!(q.remove(v(1, 0)), Err(SchedError::BadSlot(1)));
    q.power_off(b, 1).unwrap();
    q.remove(v(1, 0)).unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q.find(v(1, 0)), None);
    assert_eq!(q.find(v(2, 0)), Some(Slot(1)));
    // The running vCPU before the removed slot is unchanged; the one after moved down.
    assert_eq!(q.current(), Some(a));
    assert_eq!(q.tick(SLICE + 1), Decision::Run(Slot(1)));
    assert_eq!(q.vcpu(Slot(1)), Some(v(2, 0)));
    assert_eq!(q.remove(v(9, 9)), Err(SchedError::BadSlot(usize::MAX)));
}

#[test]
fn a_waiting_vcpu_ignores_interrupts_until_resumed() {
    let mut q = rq();
    let a = q.add(v(1, 0), Priority(1)).unwrap();
    let b = q.add(v(0, 0), Priority(1)).unwrap();
    q.power_on(a, 0).unwrap();
    q.power_on(b, 0).unwrap();
    assert_eq!(q.tick(0), Decision::Run(a));
    // `a` waits for mvm: `b` runs, and an interrupt for `a` does not wake it.
    assert_eq!(q.wait(a, 1).unwrap(), Decision::Run(b));
    assert_eq!(q.state(a), Some(State::Waiting));
    assert_eq!(q.wake(a, 2).unwrap(), Wake::NotBlocked);
    assert_eq!(q.state(a), Some(State::Waiting));
    // Not running: it cannot wait again.
    assert_eq!(q.wait(a, 3), Err(SchedError::BadSlot(0)));
    // The answer makes it ready; a resume of a vCPU that is not waiting does nothing.
    assert_eq!(q.resume(a, 4).unwrap(), Wake::Queued);
    assert_eq!(q.state(a), Some(State::Ready));
    assert_eq!(q.resume(b, 4).unwrap(), Wake::NotBlocked);
    // Powered off while waiting (its VM destroyed): off, and a late answer does nothing.
    assert_eq!(q.tick(SLICE + 5), Decision::Run(a));
    q.wait(a, SLICE + 6).unwrap();
    q.power_off(a, SLICE + 7).unwrap();
    assert_eq!(q.resume(a, SLICE + 8).unwrap(), Wake::NotBlocked);
    assert_eq!(q.state(a), Some(State::Off));
}
