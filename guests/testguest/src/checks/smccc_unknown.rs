//! Unknown SMCCC function ids, through HVC and SMC, must answer NOT_SUPPORTED and let the guest
//! continue.

use crate::cpu::Features;
use crate::esr::EC_UNKNOWN;
use crate::report::Report;
use crate::rng::XorShift;
use crate::smccc::{self, Conduit, NOT_SUPPORTED};
use crate::vectors::probe;

/// One id in each owner range, fast and yielding, 32 and 64 bit. Function numbers avoid the
/// 0xff00-0xffff general queries every range defines.
const UNKNOWN_IDS: [u32; 14] = [
    0x8000_1234, // Arm architecture calls
    0x8100_1234, // CPU service
    0x8200_1234, // SiP
    0x8300_1234, // OEM
    0x8400_1234, // standard secure service (PSCI lives here)
    0x8500_1234, // standard hypervisor service
    0x8600_7e57, // vendor hypervisor service (the hypervisor's own hypercalls live here)
    0xb000_1234, // trusted application
    0xbf00_1234, // trusted OS
    0xc400_1234, // standard secure service, SMC64
    0xc500_1234, // standard hypervisor service, SMC64
    0xc600_7e57, // vendor hypervisor service, SMC64
    0x0200_1234, // yielding SiP call, SMC32
    0x4600_1234, // yielding vendor hypervisor call, SMC64
];

const CALLS_PER_ID: usize = 2;

pub fn run(r: &mut Report, feats: &Features) {
    let mut rng = XorShift::new(0x5eed_c0de_1234_5678);
    for instr in [Conduit::Hvc, Conduit::Smc] {
        // Architecturally UNDEFINED at EL1 when the level it would go to does not exist.
        let undef_ok = match instr {
            Conduit::Hvc => !feats.el2,
            Conduit::Smc => !feats.el2 && !feats.el3,
        };
        let name = match instr {
            Conduit::Hvc => "smccc-unknown-hvc",
            Conduit::Smc => "smccc-unknown-smc",
        };
        let (mut not_supported, mut undef) = (0, 0);
        let mut failure = None;
        for &id in &UNKNOWN_IDS {
            for _ in 0..CALLS_PER_ID {
                let mut args = [0u64; 8];
                args[0] = u64::from(id);
                for a in &mut args[1..] {
                    *a = rng.next_u64();
                }
                let (ret, trap) = probe(|| smccc::call(instr, args));
                match trap {
                    None if smccc::result(id, ret[0]) == NOT_SUPPORTED => not_supported += 1,
                    Some(t) if undef_ok && t.esr.ec() == EC_UNKNOWN => undef += 1,
                    None => {
                        failure.get_or_insert((id, ret[0], 0));
                    }
                    Some(t) => {
                        failure.get_or_insert((id, u64::MAX, t.esr.0));
                    }
                }
            }
        }
        let calls = UNKNOWN_IDS.len() * CALLS_PER_ID;
        match failure {
            None => r.result(
                name,
                true,
                format_args!(
                    "{calls} calls: {not_supported} NOT_SUPPORTED, {undef} UNDEF{}",
                    if undef > 0 {
                        " (level not implemented)"
                    } else {
                        ""
                    }
                ),
            ),
            Some((id, _, esr)) if esr != 0 => r.result(
                name,
                false,
                format_args!("function {id:#x}: exception ESR={esr:#x} instead of NOT_SUPPORTED"),
            ),
            Some((id, x0, _)) => r.result(
                name,
                false,
                format_args!("function {id:#x}: returned {x0:#x} instead of NOT_SUPPORTED"),
            ),
        }
    }
}
