//! vCPU scheduling: one run queue per physical CPU.
//!
//! Each vCPU is pinned to the pCPU its VM's `vcpu_affinity` names ([`Placement`]), so run
//! queues never migrate vCPUs and need no cross-CPU locking beyond the caller's per-pCPU lock;
//! a wake-up from another pCPU is a [`RunQueue::wake`] followed by a kick (SGI) when it
//! returns [`Wake::Preempt`].
//!
//! Policy, per run queue:
//! * the highest [`Priority`] ready vCPU runs; among equals the one that has waited longest,
//!   which is round-robin;
//! * a running vCPU keeps its pCPU for a time slice; at the slice end ([`RunQueue::tick`],
//!   driven by the physical hypervisor timer) it goes to the back if another vCPU is ready;
//! * no starvation: a ready vCPU that has waited `starve_limit` ticks runs next whatever its
//!   priority, so a busy high-priority VM cannot keep a lower one off the CPU forever (its
//!   share is at least one slice per `starve_limit + slice`);
//! * a trapped WFI with nothing pending blocks the vCPU ([`RunQueue::block`]) until
//!   [`RunQueue::wake`]; a woken vCPU of higher priority than the running one preempts it.
//!
//! Time is whatever monotonic tick the caller passes in (`CNTPCT_EL0` on hardware, a plain
//! number in the tests), so the policy is tested on the host with a fake clock.

#[cfg(test)]
mod tests;

/// Which vCPU of which VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VcpuRef {
    pub vmid: u16,
    pub vcpu: u16,
}

/// Larger is more important. Minos' RTOS-style VMs are given a higher priority than VM0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Priority(pub u8);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// Not started (PSCI CPU_OFF or not yet CPU_ON'd).
    #[default]
    Off,
    Ready,
    Running,
    /// Waiting in a trapped WFI/WFE for an interrupt.
    Blocked,
    /// Waiting for one event only ([`RunQueue::resume`]: mvm answering its MMIO access);
    /// interrupts do not wake it, so it cannot run its unfinished access again meanwhile.
    Waiting,
}

/// An index into one run queue, returned by [`RunQueue::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(pub usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedError {
    /// The run queue already holds its maximum number of vCPUs.
    Full,
    /// `vcpu_affinity` names a pCPU the board does not have.
    NoSuchCpu { cpu: u32, ncpus: u32 },
    /// The same vCPU was added twice.
    Duplicate(VcpuRef),
    /// The slot does not exist or the call does not fit the vCPU's state.
    BadSlot(usize),
}

/// The time-slice parameters, in caller ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub slice: u64,
    pub starve_limit: u64,
}

impl Timing {
    /// A slice of `slice` ticks; a ready vCPU waits at most 4 slices.
    pub const fn with_slice(slice: u64) -> Self {
        Self {
            slice,
            starve_limit: slice.saturating_mul(4),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    who: VcpuRef,
    prio: Priority,
    state: State,
    /// When it last became ready (for the longest-waiting rule and starvation), blocked or
    /// waiting (for the stall report).
    ready_since: u64,
    /// Total ticks spent running (statistics, fairness tests).
    ran: u64,
    switches_in: u64,
}

/// What the caller must do after a scheduling event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Keep (or resume) running this vCPU.
    Run(Slot),
    /// Nothing is ready: idle the pCPU (WFI at EL2) until an interrupt.
    Idle,
}

/// Result of [`RunQueue::wake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// It was not blocked (already ready/running, or off): nothing to do.
    NotBlocked,
    /// Now ready; the running vCPU keeps the pCPU until its slice ends.
    Queued,
    /// Now ready and more important than the running vCPU (or the pCPU is idle): reschedule
    /// (kick the pCPU if it is another one).
    Preempt,
}

/// The vCPUs pinned to one physical CPU.
pub struct RunQueue<const N: usize> {
    entries: [Entry; N],
    len: usize,
    current: Option<usize>,
    /// When the running vCPU was switched in, and when its slice ends.
    since: u64,
    slice_end: u64,
    timing: Timing,
}

impl<const N: usize> RunQueue<N> {
    pub const fn new(timing: Timing) -> Self {
        Self {
            entries: [Entry {
                who: VcpuRef { vmid: 0, vcpu: 0 },
                prio: Priority(0),
                state: State::Off,
                ready_since: 0,
                ran: 0,
                switches_in: 0,
            }; N],
            len: 0,
            current: None,
            since: 0,
            slice_end: 0,
            timing,
        }
    }

    /// Changes the slice parameters (the tick rate is only known at run time).
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
    }

    /// Takes an [`State::Off`] vCPU off the queue (its VM is being destroyed). Other vCPUs'
    /// slots may move: look them up again with [`Self::find`].
    pub fn remove(&mut self, who: VcpuRef) -> Result<(), SchedError> {
        let i = self.find(who).ok_or(SchedError::BadSlot(usize::MAX))?.0;
        if self.entries[i].state != State::Off || self.current == Some(i) {
            return Err(SchedError::BadSlot(i));
        }
        self.entries.copy_within(i + 1..self.len, i);
        self.len -= 1;
        if let Some(c) = self.current {
            if c > i {
                self.current = Some(c - 1);
            }
        }
        Ok(())
    }

    /// How many vCPUs share this pCPU.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The vCPUs on this queue, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, VcpuRef, State)> + '_ {
        self.entries[..self.len]
            .iter()
            .enumerate()
            .map(|(i, e)| (Slot(i), e.who, e.state))
    }

    /// Adds a vCPU, initially [`State::Off`].
    pub fn add(&mut self, who: VcpuRef, prio: Priority) -> Result<Slot, SchedError> {
        if self.entries[..self.len].iter().any(|e| e.who == who) {
            return Err(SchedError::Duplicate(who));
        }
        let e = self.entries.get_mut(self.len).ok_or(SchedError::Full)?;
        *e = Entry {
            who,
            prio,
            ..Entry::default()
        };
        self.len += 1;
        Ok(Slot(self.len - 1))
    }

    pub fn find(&self, who: VcpuRef) -> Option<Slot> {
        self.entries[..self.len]
            .iter()
            .position(|e| e.who == who)
            .map(Slot)
    }

    pub fn vcpu(&self, s: Slot) -> Option<VcpuRef> {
        self.entries[..self.len].get(s.0).map(|e| e.who)
    }

    pub fn state(&self, s: Slot) -> Option<State> {
        self.entries[..self.len].get(s.0).map(|e| e.state)
    }

    /// When `s` entered its state, if it is ready, blocked or waiting.
    pub fn since(&self, s: Slot) -> Option<u64> {
        let e = self.entries[..self.len].get(s.0)?;
        matches!(e.state, State::Ready | State::Blocked | State::Waiting).then_some(e.ready_since)
    }

    /// How many times `s` was switched in.
    pub fn switches_in(&self, s: Slot) -> u64 {
        self.entries[..self.len]
            .get(s.0)
            .map_or(0, |e| e.switches_in)
    }

    /// Ticks `s` has spent running (up to the last switch or tick).
    pub fn ran(&self, s: Slot) -> u64 {
        self.entries[..self.len].get(s.0).map_or(0, |e| e.ran)
    }

    pub fn current(&self) -> Option<Slot> {
        self.current.map(Slot)
    }

    fn entry(&mut self, s: Slot) -> Result<&mut Entry, SchedError> {
        self.entries[..self.len]
            .get_mut(s.0)
            .ok_or(SchedError::BadSlot(s.0))
    }

    /// PSCI CPU_ON (or boot): the vCPU becomes ready. Returns whether to reschedule.
    pub fn power_on(&mut self, s: Slot, now: u64) -> Result<Wake, SchedError> {
        let e = self.entry(s)?;
        if e.state != State::Off {
            return Ok(Wake::NotBlocked);
        }
        e.state = State::Blocked;
        self.wake(s, now)
    }

    /// PSCI CPU_OFF, or a crashed/stopped vCPU: it never runs again until [`Self::power_on`].
    pub fn power_off(&mut self, s: Slot, now: u64) -> Result<Decision, SchedError> {
        self.entry(s)?.state = State::Off;
        if self.current != Some(s.0) {
            // Another vCPU's power-off does not cut the running one's slice short.
            return Ok(self.tick(now));
        }
        self.account(now);
        self.current = None;
        Ok(self.schedule(now))
    }

    /// The running vCPU trapped on WFI/WFE with no interrupt pending.
    pub fn block(&mut self, s: Slot, now: u64) -> Result<Decision, SchedError> {
        if self.current != Some(s.0) {
            return Err(SchedError::BadSlot(s.0));
        }
        self.account(now);
        let e = self.entry(s)?;
        e.state = State::Blocked;
        e.ready_since = now;
        self.current = None;
        Ok(self.schedule(now))
    }

    /// The running vCPU waits for [`Self::resume`] and nothing else.
    pub fn wait(&mut self, s: Slot, now: u64) -> Result<Decision, SchedError> {
        if self.current != Some(s.0) {
            return Err(SchedError::BadSlot(s.0));
        }
        self.account(now);
        let e = self.entry(s)?;
        e.state = State::Waiting;
        e.ready_since = now;
        self.current = None;
        Ok(self.schedule(now))
    }

    /// The event a [`State::Waiting`] vCPU waits for happened: it becomes ready.
    pub fn resume(&mut self, s: Slot, now: u64) -> Result<Wake, SchedError> {
        let e = self.entry(s)?;
        if e.state != State::Waiting {
            return Ok(Wake::NotBlocked);
        }
        e.state = State::Blocked;
        self.wake(s, now)
    }

    /// An interrupt became pending for a blocked vCPU (or a WFE event arrived).
    pub fn wake(&mut self, s: Slot, now: u64) -> Result<Wake, SchedError> {
        let e = self.entry(s)?;
        if e.state != State::Blocked {
            return Ok(Wake::NotBlocked);
        }
        e.state = State::Ready;
        e.ready_since = now;
        let prio = e.prio;
        Ok(match self.current {
            None => Wake::Preempt,
            Some(c) if prio > self.entries[c].prio => Wake::Preempt,
            Some(_) => Wake::Queued,
        })
    }

    /// A yield (trapped WFE with nothing to wait for, or an explicit reschedule after
    /// [`Wake::Preempt`]): the running vCPU goes back to the queue if something else should run.
    pub fn preempt(&mut self, now: u64) -> Decision {
        self.account(now);
        if let Some(c) = self.current {
            self.entries[c].state = State::Ready;
            self.entries[c].ready_since = now;
        }
        self.schedule(now)
    }

    /// The slice timer fired (or any exit where the caller checks the time): switches when the
    /// running vCPU's slice is over and another vCPU is ready.
    pub fn tick(&mut self, now: u64) -> Decision {
        match self.current {
            Some(c) if now < self.slice_end => Decision::Run(Slot(c)),
            Some(_) => self.preempt(now),
            None => self.schedule(now),
        }
    }

    /// When the slice timer must fire next: only while another vCPU waits for this pCPU (a
    /// lone vCPU runs tickless).
    pub fn next_deadline(&self) -> Option<u64> {
        let c = self.current?;
        let waiting = self.entries[..self.len]
            .iter()
            .enumerate()
            .any(|(i, e)| i != c && e.state == State::Ready);
        waiting.then_some(self.slice_end)
    }

    fn account(&mut self, now: u64) {
        if let Some(c) = self.current {
            let e = &mut self.entries[c];
            e.ran += now.saturating_sub(self.since);
            self.since = now;
        }
    }

    /// Picks the vCPU to run (the current one stays if it is still the best choice).
    fn schedule(&mut self, now: u64) -> Decision {
        let pick = self.pick(now);
        match pick {
            None => {
                self.current = None;
                Decision::Idle
            }
            Some(i) => {
                if self.current != Some(i) {
                    if let Some(c) = self.current {
                        if self.entries[c].state == State::Running {
                            self.entries[c].state = State::Ready;
                            self.entries[c].ready_since = now;
                        }
                    }
                    self.entries[i].switches_in += 1;
                    self.current = Some(i);
                    self.since = now;
                }
                self.entries[i].state = State::Running;
                self.slice_end = now.saturating_add(self.timing.slice);
                Decision::Run(Slot(i))
            }
        }
    }

    fn pick(&self, now: u64) -> Option<usize> {
        let ready = || {
            self.entries[..self.len]
                .iter()
                .enumerate()
                .filter(|(i, e)| e.state == State::Ready || Some(*i) == self.current)
        };
        let waited = |e: &Entry| now.saturating_sub(e.ready_since);
        // Starving vCPUs first, longest wait first.
        let starving = ready()
            .filter(|(i, e)| Some(*i) != self.current && waited(e) >= self.timing.starve_limit)
            .max_by_key(|(i, e)| (waited(e), core::cmp::Reverse(*i)));
        if let Some((i, _)) = starving {
            return Some(i);
        }
        // Highest priority, then longest wait (the running vCPU counts as not waiting).
        ready()
            .max_by_key(|(i, e)| {
                let w = if Some(*i) == self.current {
                    0
                } else {
                    waited(e) + 1
                };
                (e.prio, w, core::cmp::Reverse(*i))
            })
            .map(|(i, _)| i)
    }
}

/// Validates `vcpu_affinity` against the board: the pCPU each vCPU of a VM is pinned to.
pub fn placement(affinity: &[u32], ncpus: u32) -> Result<(), SchedError> {
    match affinity.iter().find(|&&c| c >= ncpus) {
        Some(&cpu) => Err(SchedError::NoSuchCpu { cpu, ncpus }),
        None => Ok(()),
    }
}
