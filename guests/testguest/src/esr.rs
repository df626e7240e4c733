//! Decoding of the Exception Syndrome Register, as far as the checks need it.

/// A raw ESR_ELx value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Esr(pub u64);

/// Exception class: unknown reason, which is what an UNDEFINED instruction reports.
pub const EC_UNKNOWN: u64 = 0x00;
/// Exception class: instruction abort from a lower exception level.
pub const EC_IABT_LOWER: u64 = 0x20;
/// Exception class: instruction abort taken without a change of exception level.
pub const EC_IABT_CUR: u64 = 0x21;
/// Exception class: data abort from a lower exception level.
pub const EC_DABT_LOWER: u64 = 0x24;
/// Exception class: data abort taken without a change of exception level.
pub const EC_DABT_CUR: u64 = 0x25;

impl Esr {
    /// Exception class, bits [31:26].
    pub fn ec(self) -> u64 {
        (self.0 >> 26) & 0x3f
    }

    /// Whether the exception is a data abort (from this or a lower level).
    pub fn is_data_abort(self) -> bool {
        matches!(self.ec(), EC_DABT_LOWER | EC_DABT_CUR)
    }

    /// Whether the exception is an instruction abort (from this or a lower level).
    pub fn is_instruction_abort(self) -> bool {
        matches!(self.ec(), EC_IABT_LOWER | EC_IABT_CUR)
    }

    /// For a data abort: the access was a write (ISS.WnR).
    pub fn is_write(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// For a data abort: FAR is not valid (ISS.FnV).
    pub fn far_not_valid(self) -> bool {
        self.0 & (1 << 10) != 0
    }

    /// For an abort: the fault status code (ISS.DFSC / IFSC).
    pub fn dfsc(self) -> u64 {
        self.0 & 0x3f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_instruction() {
        // What QEMU reports for an SMC at EL1 without EL2 and EL3.
        let e = Esr(0x0200_0000);
        assert_eq!(e.ec(), EC_UNKNOWN);
        assert!(!e.is_data_abort());
    }

    #[test]
    fn data_abort_store() {
        // EC 0x25, IL, ISV=0, WnR, DFSC 0x10 (synchronous external abort).
        let e = Esr((0x25 << 26) | (1 << 25) | (1 << 6) | 0x10);
        assert!(e.is_data_abort());
        assert!(e.is_write());
        assert!(!e.far_not_valid());
        assert_eq!(e.dfsc(), 0x10);
    }

    #[test]
    fn instruction_abort() {
        let e = Esr((0x21 << 26) | (1 << 25) | 0x10);
        assert!(e.is_instruction_abort());
        assert!(!e.is_data_abort());
        assert_eq!(e.dfsc(), 0x10);
    }

    #[test]
    fn data_abort_load_from_lower_level() {
        let e = Esr((0x24 << 26) | (1 << 25) | (1 << 10) | 0x04);
        assert!(e.is_data_abort());
        assert!(!e.is_write());
        assert!(e.far_not_valid());
        assert_eq!(e.dfsc(), 0x04);
    }
}
