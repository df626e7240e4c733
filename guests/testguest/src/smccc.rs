//! SMC Calling Convention calls through HVC or SMC.

/// The instruction that reaches the hypervisor or firmware.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Conduit {
    Hvc,
    Smc,
}

impl Conduit {
    pub fn name(self) -> &'static str {
        match self {
            Conduit::Hvc => "hvc",
            Conduit::Smc => "smc",
        }
    }
}

/// SMCCC NOT_SUPPORTED.
pub const NOT_SUPPORTED: i64 = -1;

/// Calls function `args[0]` with arguments x1..x7; returns x0..x3.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub fn call(conduit: Conduit, args: [u64; 8]) -> [u64; 4] {
    use core::arch::asm;
    let (r0, r1, r2, r3);
    match conduit {
        // SAFETY: an SMCCC call; SMCCC 1.0 lets the callee clobber x4-x17.
        Conduit::Hvc => unsafe {
            asm!("hvc #0",
                inout("x0") args[0] => r0, inout("x1") args[1] => r1,
                inout("x2") args[2] => r2, inout("x3") args[3] => r3,
                inout("x4") args[4] => _, inout("x5") args[5] => _,
                inout("x6") args[6] => _, inout("x7") args[7] => _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack))
        },
        // SAFETY: as above.
        Conduit::Smc => unsafe {
            asm!("smc #0",
                inout("x0") args[0] => r0, inout("x1") args[1] => r1,
                inout("x2") args[2] => r2, inout("x3") args[3] => r3,
                inout("x4") args[4] => _, inout("x5") args[5] => _,
                inout("x6") args[6] => _, inout("x7") args[7] => _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack))
        },
    }
    [r0, r1, r2, r3]
}

/// The result register as SMCCC defines it for the call's width: SMC32 results are in W0.
pub fn result(function: u32, x0: u64) -> i64 {
    if function & (1 << 30) != 0 {
        x0 as i64
    } else {
        i64::from(x0 as u32 as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smc32_result_ignores_upper_bits() {
        assert_eq!(result(0x8400_0000, 0xdead_beef_ffff_ffff), -1);
        assert_eq!(result(0x8400_0000, 0x1_0000_0002), 2);
    }

    #[test]
    fn smc64_result_uses_all_bits() {
        assert_eq!(result(0xc400_0003, u64::MAX), -1);
        assert_eq!(result(0xc400_0003, 0xffff_ffff), 0xffff_ffff);
    }
}
