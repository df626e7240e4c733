//! Decoding ESR_EL2 syndromes of traps from a lower EL.

pub const EC_UNKNOWN: u32 = 0x00;
pub const EC_WFX: u32 = 0x01;
pub const EC_HVC64: u32 = 0x16;
pub const EC_SMC64: u32 = 0x17;
pub const EC_SYSREG: u32 = 0x18;
pub const EC_IABT_LOW: u32 = 0x20;
pub const EC_DABT_LOW: u32 = 0x24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Esr(pub u64);

/// A data abort with a valid instruction syndrome: enough to emulate the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioAccess {
    /// Access size in bytes (1, 2, 4, 8).
    pub size: u8,
    pub write: bool,
    /// Register number; 31 means XZR.
    pub reg: u8,
    pub sign_extend: bool,
    /// 64-bit register (else a W register).
    pub sixty_four: bool,
}

impl Esr {
    pub fn ec(self) -> u32 {
        ((self.0 >> 26) & 0x3f) as u32
    }

    pub fn iss(self) -> u32 {
        (self.0 & 0x1ff_ffff) as u32
    }

    /// Whether the trapped instruction was 32 bits long (IL).
    pub fn il32(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// Data abort syndrome decode; `None` without ISV (the access cannot be emulated).
    pub fn mmio(self) -> Option<MmioAccess> {
        let iss = self.iss();
        if iss & (1 << 24) == 0 {
            return None;
        }
        Some(MmioAccess {
            size: 1 << ((iss >> 22) & 3),
            sign_extend: iss & (1 << 21) != 0,
            reg: ((iss >> 16) & 0x1f) as u8,
            sixty_four: iss & (1 << 15) != 0,
            write: iss & (1 << 6) != 0,
        })
    }

    /// Fault status code of an abort (DFSC/IFSC).
    pub fn fsc(self) -> u32 {
        self.iss() & 0x3f
    }

    /// Translation or access-flag fault at stage 2 (as opposed to, say, a permission fault).
    pub fn is_translation_fault(self) -> bool {
        matches!(self.fsc() & 0x3c, 0x04 | 0x08)
    }
}

impl MmioAccess {
    /// The value a load returns in its register, sign- or zero-extended as the instruction
    /// asks.
    pub fn extend(&self, raw: u64) -> u64 {
        let bits = u32::from(self.size) * 8;
        let v = if bits == 64 {
            raw
        } else {
            raw & ((1u64 << bits) - 1)
        };
        let v = if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            (((v << shift) as i64) >> shift) as u64
        } else {
            v
        };
        if self.sixty_four {
            v
        } else {
            v & 0xffff_ffff
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_data_abort() {
        // ldr w1, [x0] from EL1: EC=0x24, IL, ISV, SAS=2, SRT=1, DFSC=translation level 3.
        let esr = Esr((0x24 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (1 << 16) | 0x07);
        assert_eq!(esr.ec(), EC_DABT_LOW);
        assert!(esr.is_translation_fault());
        let a = esr.mmio().unwrap();
        assert_eq!(
            a,
            MmioAccess {
                size: 4,
                write: false,
                reg: 1,
                sign_extend: false,
                sixty_four: false
            }
        );
        // str x2: SF, WnR.
        let esr = Esr((0x24 << 26) | (1 << 24) | (3 << 22) | (2 << 16) | (1 << 15) | (1 << 6));
        let a = esr.mmio().unwrap();
        assert!(a.write && a.sixty_four && a.size == 8 && a.reg == 2);
        assert_eq!(Esr(0x24 << 26).mmio(), None);
    }

    #[test]
    fn extends_loads() {
        let ldrsb_x = MmioAccess {
            size: 1,
            write: false,
            reg: 0,
            sign_extend: true,
            sixty_four: true,
        };
        assert_eq!(ldrsb_x.extend(0x80), 0xffff_ffff_ffff_ff80);
        let ldrsh_w = MmioAccess {
            size: 2,
            write: false,
            reg: 0,
            sign_extend: true,
            sixty_four: false,
        };
        assert_eq!(ldrsh_w.extend(0x8000), 0xffff_8000);
        let ldrh = MmioAccess {
            size: 2,
            write: false,
            reg: 0,
            sign_extend: false,
            sixty_four: false,
        };
        assert_eq!(ldrh.extend(0x1234_8000), 0x8000);
    }
}
