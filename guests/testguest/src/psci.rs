//! PSCI calls, through the conduit the DTB's `/psci` node names.

use crate::smccc::{self, Conduit};

pub const VERSION: u32 = 0x8400_0000;
pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON: u32 = 0xc400_0003;
pub const AFFINITY_INFO: u32 = 0xc400_0004;
pub const SYSTEM_OFF: u32 = 0x8400_0008;
pub const FEATURES: u32 = 0x8400_000a;

pub const SUCCESS: i64 = 0;
pub const INVALID_PARAMETERS: i64 = -2;
pub const ALREADY_ON: i64 = -4;
pub const AFFINITY_ON: i64 = 0;
pub const AFFINITY_OFF: i64 = 1;

#[derive(Clone, Copy)]
pub struct Psci(pub Conduit);

impl Psci {
    fn call(self, f: u32, a1: u64, a2: u64, a3: u64) -> i64 {
        let r = smccc::call(self.0, [u64::from(f), a1, a2, a3, 0, 0, 0, 0]);
        smccc::result(f, r[0])
    }

    /// (major, minor).
    pub fn version(self) -> (u16, u16) {
        let v = self.call(VERSION, 0, 0, 0) as u32;
        ((v >> 16) as u16, v as u16)
    }

    pub fn features(self, f: u32) -> i64 {
        self.call(FEATURES, u64::from(f), 0, 0)
    }

    pub fn cpu_on(self, mpidr: u64, entry: u64, context: u64) -> i64 {
        self.call(CPU_ON, mpidr, entry, context)
    }

    pub fn cpu_off(self) -> i64 {
        self.call(CPU_OFF, 0, 0, 0)
    }

    pub fn affinity_info(self, mpidr: u64) -> i64 {
        self.call(AFFINITY_INFO, mpidr, 0, 0)
    }

    pub fn system_off(self) -> i64 {
        self.call(SYSTEM_OFF, 0, 0, 0)
    }
}
