//! Status codes returned in `x0`. Non-negative means success (some calls return a value
//! there, e.g. a VM id); negative values are the errors below.
//!
//! `-1` is SMCCC's `NOT_SUPPORTED`: the answer to any unknown function id, so a kernel without
//! a Minos hypervisor underneath (bare metal, KVM, another hypervisor) reads as "no Minos".
//! `-2`/`-3` keep SMCCC's meanings; `-4` and below are ours.

/// A hypercall error (the negative `x0` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum HvcError {
    /// Unknown function id (SMCCC `NOT_SUPPORTED`).
    NotSupported = -1,
    /// Nothing to do (SMCCC `NOT_REQUIRED`).
    NotRequired = -2,
    /// An argument is out of range or malformed (SMCCC `INVALID_PARAMETER`).
    InvalidParameter = -3,
    /// The caller may not make this call: VM-management calls are VM0-only.
    Denied = -4,
    /// The hypervisor's memory pool (or another table) cannot satisfy the request.
    NoMemory = -5,
    /// No VM with that id.
    NoSuchVm = -6,
    /// The VM is not in a state that allows the call (e.g. starting a running VM).
    BadState = -7,
    /// A buffer address is not in the caller's RAM, is misaligned or crosses a page.
    BadAddress = -8,
    /// The caller's ABI major differs from the hypervisor's.
    VersionMismatch = -9,
    /// The call is valid but its work is not finished: retry later.
    Busy = -10,
}

/// Every error, for tables and the C header.
pub const ALL: [HvcError; 10] = [
    HvcError::NotSupported,
    HvcError::NotRequired,
    HvcError::InvalidParameter,
    HvcError::Denied,
    HvcError::NoMemory,
    HvcError::NoSuchVm,
    HvcError::BadState,
    HvcError::BadAddress,
    HvcError::VersionMismatch,
    HvcError::Busy,
];

impl HvcError {
    /// The value in `x0`.
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// The `x0` value as the caller reads it (an unsigned register).
    pub const fn reg(self) -> u64 {
        self as i64 as u64
    }

    /// The error for a negative `x0`, `None` for success or an unknown code.
    pub const fn from_code(code: i64) -> Option<HvcError> {
        let mut i = 0;
        while i < ALL.len() {
            if ALL[i] as i64 == code {
                return Some(ALL[i]);
            }
            i += 1;
        }
        None
    }

    /// Upper-case C name (`MINOS_E_<NAME>`).
    pub const fn c_name(self) -> &'static str {
        match self {
            HvcError::NotSupported => "NOT_SUPPORTED",
            HvcError::NotRequired => "NOT_REQUIRED",
            HvcError::InvalidParameter => "INVALID_PARAMETER",
            HvcError::Denied => "DENIED",
            HvcError::NoMemory => "NO_MEMORY",
            HvcError::NoSuchVm => "NO_SUCH_VM",
            HvcError::BadState => "BAD_STATE",
            HvcError::BadAddress => "BAD_ADDRESS",
            HvcError::VersionMismatch => "VERSION_MISMATCH",
            HvcError::Busy => "BUSY",
        }
    }

    /// One-line description, for error messages.
    pub const fn message(self) -> &'static str {
        match self {
            HvcError::NotSupported => "not supported (no Minos hypervisor answered)",
            HvcError::NotRequired => "not required",
            HvcError::InvalidParameter => "invalid parameter",
            HvcError::Denied => "denied: only VM0 may manage VMs",
            HvcError::NoMemory => "the hypervisor is out of memory",
            HvcError::NoSuchVm => "no such VM",
            HvcError::BadState => "the VM is not in a state that allows this",
            HvcError::BadAddress => "bad buffer address",
            HvcError::VersionMismatch => "ABI version mismatch",
            HvcError::Busy => "busy, try again",
        }
    }
}

impl core::fmt::Display for HvcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

/// Splits an `x0` into success (its value) or an error. Unknown negative codes stay visible
/// as [`Decoded::Unknown`] so a newer hypervisor's error is not misread as another.
pub fn decode(x0: u64) -> Result<u64, Decoded> {
    let v = x0 as i64;
    if v >= 0 {
        return Ok(x0);
    }
    Err(match HvcError::from_code(v) {
        Some(e) => Decoded::Known(e),
        None => Decoded::Unknown(v),
    })
}

/// A failed `x0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    Known(HvcError),
    Unknown(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_negative_and_round_trip() {
        for (i, e) in ALL.iter().enumerate() {
            assert!(e.code() < 0);
            assert_eq!(HvcError::from_code(e.code()), Some(*e));
            for other in &ALL[i + 1..] {
                assert_ne!(e.code(), other.code());
                assert_ne!(e.c_name(), other.c_name());
            }
        }
        assert_eq!(HvcError::from_code(0), None);
        assert_eq!(HvcError::from_code(-1000), None);
    }

    #[test]
    fn smccc_values_are_kept() {
        assert_eq!(HvcError::NotSupported.reg(), u64::MAX);
        assert_eq!(HvcError::NotRequired.code(), -2);
        assert_eq!(HvcError::InvalidParameter.code(), -3);
    }

    #[test]
    fn decode_splits_success_and_errors() {
        assert_eq!(decode(7), Ok(7));
        assert_eq!(
            decode(u64::MAX),
            Err(Decoded::Known(HvcError::NotSupported))
        );
        assert_eq!(decode(-99i64 as u64), Err(Decoded::Unknown(-99)));
    }
}
