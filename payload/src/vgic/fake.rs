//! A software virtual CPU interface for host tests: list registers in memory plus the
//! guest-side acknowledge/EOI behaviour the hardware would apply to them.

use super::lr::{decode_v2, decode_v3, encode_v2, encode_v3, Lr, LrState};
use super::{GicVersion, ListRegs};

pub struct FakeLrs {
    pub version: GicVersion,
    pub lrs: Vec<u64>,
    pub uie: bool,
    /// Physical INTIDs the guest's EOI deactivated through the HW bit.
    pub hw_deactivated: Vec<u32>,
}

impl FakeLrs {
    pub fn new(version: GicVersion, n: usize) -> Self {
        FakeLrs {
            version,
            lrs: vec![0; n],
            uie: false,
            hw_deactivated: Vec::new(),
        }
    }

    pub fn decode(&self, i: usize) -> Lr {
        match self.version {
            GicVersion::V3 => decode_v3(self.lrs[i]),
            GicVersion::V2 => decode_v2(self.lrs[i] as u32),
        }
    }

    fn encode(&mut self, i: usize, lr: &Lr) {
        self.lrs[i] = match self.version {
            GicVersion::V3 => encode_v3(lr),
            GicVersion::V2 => u64::from(encode_v2(lr)),
        };
    }

    /// Valid (non-invalid) entries, as (vintid, state).
    pub fn loaded(&self) -> Vec<(u32, LrState)> {
        (0..self.lrs.len())
            .map(|i| self.decode(i))
            .filter(|l| l.state != LrState::Invalid)
            .map(|l| (l.vintid, l.state))
            .collect()
    }

    /// The guest reads IAR: the highest-priority pending entry becomes active.
    pub fn ack(&mut self) -> Option<Lr> {
        let i = (0..self.lrs.len())
            .filter(|&i| self.decode(i).state == LrState::Pending)
            .min_by_key(|&i| (self.decode(i).priority, i))?;
        let mut lr = self.decode(i);
        lr.state = LrState::Active;
        self.encode(i, &lr);
        Some(lr)
    }

    /// The guest writes EOIR (EOImode 0): priority drop and deactivation.
    pub fn eoi(&mut self, vintid: u32) {
        for i in 0..self.lrs.len() {
            let mut lr = self.decode(i);
            if lr.vintid == vintid && lr.state.active() {
                lr.state = if lr.state.pending() {
                    LrState::Pending
                } else {
                    LrState::Invalid
                };
                if let Some(p) = lr.pintid {
                    self.hw_deactivated.push(p);
                }
                self.encode(i, &lr);
                return;
            }
        }
    }

    /// Would the maintenance interrupt be asserted now?
    pub fn maintenance(&self) -> bool {
        let valid = self.loaded().len();
        let eoi = (0..self.lrs.len()).any(|i| {
            let l = self.decode(i);
            l.state == LrState::Invalid && l.eoi_maint
        });
        (self.uie && valid <= 1) || eoi
    }
}

impl ListRegs for FakeLrs {
    fn count(&self) -> usize {
        self.lrs.len()
    }
    fn read(&self, i: usize) -> u64 {
        self.lrs[i]
    }
    fn write(&mut self, i: usize, v: u64) {
        self.lrs[i] = v;
    }
    fn elrsr(&self) -> u64 {
        (0..self.lrs.len())
            .filter(|&i| {
                let l = self.decode(i);
                l.state == LrState::Invalid && !l.eoi_maint
            })
            .fold(0, |m, i| m | 1 << i)
    }
    fn set_underflow_irq(&mut self, on: bool) {
        self.uie = on;
    }
}
