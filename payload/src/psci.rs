//! The virtual PSCI 1.0 a VM sees (SMC or HVC conduit): decoding calls and the per-vCPU power
//! state machine. The arch layer executes the outcome (entering a vCPU, parking a pCPU,
//! forwarding SYSTEM_OFF/RESET to firmware).

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::board::{Region, MAX_CPUS};

pub const PSCI_VERSION: u32 = 0x8400_0000;
pub const CPU_SUSPEND: u32 = 0x8400_0001;
pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON: u32 = 0x8400_0003;
pub const AFFINITY_INFO: u32 = 0x8400_0004;
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
pub const SYSTEM_OFF: u32 = 0x8400_0008;
pub const SYSTEM_RESET: u32 = 0x8400_0009;
pub const PSCI_FEATURES: u32 = 0x8400_000a;
/// SMC64 calling convention bit.
const SMC64: u32 = 0x4000_0000;

pub const SUCCESS: i64 = 0;
pub const NOT_SUPPORTED: i64 = -1;
pub const INVALID_PARAMETERS: i64 = -2;
pub const ALREADY_ON: i64 = -4;
pub const ON_PENDING: i64 = -5;
pub const INVALID_ADDRESS: i64 = -9;

/// PSCI 1.0.
pub const VERSION_1_0: i64 = 0x1_0000;
/// MIGRATE_INFO_TYPE: no trusted OS needing migration.
const NO_MIGRATION: i64 = 2;

const ON: u8 = 0;
const OFF: u8 = 1;
const PENDING: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Version,
    CpuOn {
        target: u64,
        entry: u64,
        context: u64,
    },
    CpuOff,
    AffinityInfo {
        target: u64,
        level: u64,
    },
    MigrateInfoType,
    SystemOff,
    SystemReset,
    Features(u32),
    /// Anything else, PSCI or not: answered with NOT_SUPPORTED.
    Unknown(u32),
}

/// Decodes a call from x0-x3. SMC32 calls take their arguments from the W registers.
pub fn decode(x: [u64; 4]) -> Call {
    let fid = x[0] as u32;
    let is64 = fid & SMC64 != 0;
    let arg = |i: usize| if is64 { x[i] } else { x[i] & 0xffff_ffff };
    if x[0] >> 32 != 0 {
        return Call::Unknown(fid);
    }
    match fid & !SMC64 {
        PSCI_VERSION if !is64 => Call::Version,
        CPU_OFF if !is64 => Call::CpuOff,
        CPU_ON => Call::CpuOn {
            target: arg(1),
            entry: arg(2),
            context: arg(3),
        },
        AFFINITY_INFO => Call::AffinityInfo {
            target: arg(1),
            level: arg(2),
        },
        MIGRATE_INFO_TYPE if !is64 => Call::MigrateInfoType,
        SYSTEM_OFF if !is64 => Call::SystemOff,
        SYSTEM_RESET if !is64 => Call::SystemReset,
        PSCI_FEATURES if !is64 => Call::Features(arg(1) as u32),
        _ => Call::Unknown(fid),
    }
}

/// The answer to a call that depends on no vCPU's state and changes none (the trap path
/// answers these without touching the vGIC or the PSCI state), or `None`.
pub fn constant_answer(call: Call) -> Option<i64> {
    match call {
        Call::Version => Some(VERSION_1_0),
        Call::MigrateInfoType => Some(NO_MIGRATION),
        Call::Features(fid) => Some(features(fid)),
        Call::Unknown(_) => Some(NOT_SUPPORTED),
        _ => None,
    }
}

fn features(fid: u32) -> i64 {
    match fid {
        PSCI_VERSION | CPU_OFF | MIGRATE_INFO_TYPE | SYSTEM_OFF | SYSTEM_RESET | PSCI_FEATURES => {
            SUCCESS
        }
        f if f & !SMC64 == CPU_ON || f & !SMC64 == AFFINITY_INFO => SUCCESS,
        _ => NOT_SUPPORTED,
    }
}

/// What the caller of [`Psci::handle`] must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Write this to x0 and resume the vCPU.
    Return(i64),
    /// The vCPU is now off: park its pCPU until a CPU_ON names it.
    Off,
    SystemOff,
    SystemReset,
}

/// Power state of every vCPU of one VM.
pub struct Psci {
    mpidr: [u64; MAX_CPUS],
    count: usize,
    state: [AtomicU8; MAX_CPUS],
    entry: [AtomicU64; MAX_CPUS],
    context: [AtomicU64; MAX_CPUS],
    memory: Region,
}

const AFF_MASK: u64 = 0xff_00ff_ffff;

impl Psci {
    /// vCPU `i` has virtual MPIDR `mpidrs[i]`; vCPU 0 starts on, the others off.
    pub fn new(mpidrs: &[u64], memory: Region) -> Self {
        let count = mpidrs.len().min(MAX_CPUS);
        let mut mpidr = [u64::MAX; MAX_CPUS];
        mpidr[..count].copy_from_slice(&mpidrs[..count]);
        let s = Self {
            mpidr,
            count,
            state: core::array::from_fn(|_| AtomicU8::new(OFF)),
            entry: core::array::from_fn(|_| AtomicU64::new(0)),
            context: core::array::from_fn(|_| AtomicU64::new(0)),
            memory,
        };
        s.state[0].store(ON, Ordering::Release);
        s
    }

    pub fn vcpu_of(&self, target: u64) -> Option<usize> {
        self.mpidr[..self.count]
            .iter()
            .position(|&m| m & AFF_MASK == target & AFF_MASK)
    }

    pub fn mpidr(&self, vcpu: usize) -> u64 {
        self.mpidr[vcpu]
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Handles `call` made by vCPU `caller`.
    pub fn handle(&self, caller: usize, call: Call) -> Outcome {
        match call {
            c @ (Call::Version | Call::MigrateInfoType | Call::Features(_) | Call::Unknown(_)) => {
                Outcome::Return(constant_answer(c).unwrap_or(NOT_SUPPORTED))
            }
            Call::CpuOn {
                target,
                entry,
                context,
            } => Outcome::Return(self.cpu_on(target, entry, context)),
            Call::CpuOff => {
                self.state[caller].store(OFF, Ordering::Release);
                Outcome::Off
            }
            Call::AffinityInfo { target, level } => {
                if level != 0 {
                    return Outcome::Return(INVALID_PARAMETERS);
                }
                match self.vcpu_of(target) {
                    Some(v) => Outcome::Return(i64::from(self.state[v].load(Ordering::Acquire))),
                    None => Outcome::Return(INVALID_PARAMETERS),
                }
            }
            Call::SystemOff => Outcome::SystemOff,
            Call::SystemReset => Outcome::SystemReset,
        }
    }

    fn cpu_on(&self, target: u64, entry: u64, context: u64) -> i64 {
        let Some(v) = self.vcpu_of(target) else {
            return INVALID_PARAMETERS;
        };
        if !self.memory.contains(entry) || !entry.is_multiple_of(4) {
            return INVALID_ADDRESS;
        }
        // Publish the entry point before the state change that makes it visible.
        self.entry[v].store(entry, Ordering::Relaxed);
        self.context[v].store(context, Ordering::Relaxed);
        match self.state[v].compare_exchange(OFF, PENDING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => SUCCESS,
            Err(PENDING) => ON_PENDING,
            Err(_) => ALREADY_ON,
        }
    }

    /// Back to the power-on state (the VM restarts): vCPU 0 on, the others off.
    pub fn reset(&self) {
        for (v, s) in self.state[..self.count].iter().enumerate() {
            s.store(if v == 0 { ON } else { OFF }, Ordering::Release);
        }
    }

    /// Whether a CPU_ON for `vcpu` waits to be picked up.
    pub fn is_pending(&self, vcpu: usize) -> bool {
        self.state
            .get(vcpu)
            .is_some_and(|s| s.load(Ordering::Acquire) == PENDING)
    }

    /// Called by the pCPU of a parked vCPU: if a CPU_ON is pending, marks it on and returns
    /// its (entry, context).
    pub fn take_pending(&self, vcpu: usize) -> Option<(u64, u64)> {
        self.state[vcpu]
            .compare_exchange(PENDING, ON, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        Some((
            self.entry[vcpu].load(Ordering::Relaxed),
            self.context[vcpu].load(Ordering::Relaxed),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn psci() -> Psci {
        Psci::new(&[0, 1, 2, 3], Region::new(0x4400_0000, 0x1000_0000))
    }

    #[test]
    fn reset_powers_on_only_vcpu0() {
        let p = psci();
        assert_eq!(p.cpu_on(2, 0x4400_0000, 0), SUCCESS);
        assert_eq!(p.handle(0, Call::CpuOff), Outcome::Off);
        p.reset();
        let info = |t| {
            p.handle(
                1,
                Call::AffinityInfo {
                    target: t,
                    level: 0,
                },
            )
        };
        assert_eq!(info(0), Outcome::Return(i64::from(ON)));
        assert_eq!(info(2), Outcome::Return(i64::from(OFF)));
        assert!(!p.is_pending(2));
    }

    #[test]
    fn decodes_smc32_and_smc64() {
        assert_eq!(decode([0x8400_0000, 0, 0, 0]), Call::Version);
        assert_eq!(
            decode([0xc400_0003, 1, 0x4400_1000, 7]),
            Call::CpuOn {
                target: 1,
                entry: 0x4400_1000,
                context: 7
            }
        );
        assert_eq!(
            decode([0x8400_0003, 0xffff_ffff_0000_0001, 0x1_4400_1000, 7]),
            Call::CpuOn {
                target: 1,
                entry: 0x4400_1000,
                context: 7
            }
        );
        assert_eq!(decode([0xc400_0000, 0, 0, 0]), Call::Unknown(0xc400_0000));
        assert_eq!(decode([0x1_8400_0000, 0, 0, 0]), Call::Unknown(0x8400_0000));
        assert_eq!(decode([0x8600_0000, 0, 0, 0]), Call::Unknown(0x8600_0000));
    }

    #[test]
    fn constant_answers_match_handle_and_skip_stateful_calls() {
        let p = psci();
        for call in [
            Call::Version,
            Call::MigrateInfoType,
            Call::Features(CPU_ON | SMC64),
            Call::Features(CPU_SUSPEND),
            Call::Unknown(0x8000_0000),
        ] {
            let r = constant_answer(call).expect("constant");
            assert_eq!(p.handle(0, call), Outcome::Return(r));
        }
        assert_eq!(constant_answer(Call::Version), Some(VERSION_1_0));
        assert_eq!(
            constant_answer(Call::Unknown(0x8000_0000)),
            Some(NOT_SUPPORTED)
        );
        for call in [
            Call::CpuOff,
            Call::SystemOff,
            Call::SystemReset,
            Call::CpuOn {
                target: 1,
                entry: 0x4400_0000,
                context: 0,
            },
            Call::AffinityInfo {
                target: 1,
                level: 0,
            },
        ] {
            assert_eq!(constant_answer(call), None);
        }
    }

    #[test]
    fn cpu_on_off_and_affinity_info() {
        let p = psci();
        let on = |t, e| {
            p.handle(
                0,
                Call::CpuOn {
                    target: t,
                    entry: e,
                    context: 5,
                },
            )
        };
        let info = |t| {
            p.handle(
                0,
                Call::AffinityInfo {
                    target: t,
                    level: 0,
                },
            )
        };
        assert_eq!(info(1), Outcome::Return(1));
        assert_eq!(on(1, 0x4400_0000), Outcome::Return(SUCCESS));
        assert_eq!(info(1), Outcome::Return(2));
        assert_eq!(on(1, 0x4400_0000), Outcome::Return(ON_PENDING));
        assert!(p.is_pending(1) && !p.is_pending(2) && !p.is_pending(99));
        assert_eq!(p.take_pending(1), Some((0x4400_0000, 5)));
        assert!(!p.is_pending(1));
        assert_eq!(p.take_pending(1), None);
        assert_eq!(info(1), Outcome::Return(0));
        assert_eq!(on(1, 0x4400_0000), Outcome::Return(ALREADY_ON));
        assert_eq!(p.handle(1, Call::CpuOff), Outcome::Off);
        assert_eq!(info(1), Outcome::Return(1));
        assert_eq!(on(1, 0x4400_0000), Outcome::Return(SUCCESS));
    }

    #[test]
    fn rejects_bad_targets_and_addresses() {
        let p = psci();
        let on = |t, e| {
            p.handle(
                0,
                Call::CpuOn {
                    target: t,
                    entry: e,
                    context: 0,
                },
            )
        };
        assert_eq!(on(9, 0x4400_0000), Outcome::Return(INVALID_PARAMETERS));
        assert_eq!(on(1, 0x4000_0000), Outcome::Return(INVALID_ADDRESS));
        assert_eq!(on(1, 0x4400_0002), Outcome::Return(INVALID_ADDRESS));
        assert_eq!(on(0, 0x4400_0000), Outcome::Return(ALREADY_ON));
        assert_eq!(
            p.handle(
                0,
                Call::AffinityInfo {
                    target: 1,
                    level: 1
                }
            ),
            Outcome::Return(INVALID_PARAMETERS)
        );
    }

    #[test]
    fn features_and_unknown() {
        let p = psci();
        assert_eq!(
            p.handle(0, Call::Features(0xc400_0003)),
            Outcome::Return(SUCCESS)
        );
        assert_eq!(
            p.handle(0, Call::Features(CPU_SUSPEND)),
            Outcome::Return(NOT_SUPPORTED)
        );
        assert_eq!(
            p.handle(0, Call::Features(0x8000_0000)),
            Outcome::Return(NOT_SUPPORTED)
        );
        assert_eq!(
            p.handle(0, Call::Unknown(0x8600_0000)),
            Outcome::Return(NOT_SUPPORTED)
        );
        assert_eq!(p.handle(0, Call::Version), Outcome::Return(VERSION_1_0));
    }
}
