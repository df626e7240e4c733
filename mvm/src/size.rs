//! Memory sizes and addresses as mvm's options spell them.

use minos_abi::MEM_ALIGN;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    #[error("memory size `{0}`: use a number with an M or G suffix, e.g. 84M or 1G")]
    Syntax(String),
    #[error("memory size `{0}` is zero")]
    Zero(String),
    #[error("memory size `{0}` is too large")]
    Overflow(String),
    #[error("memory size `{0}` is not a multiple of 2M")]
    Unaligned(String),
    #[error("memory base `{0}`: use a hexadecimal address like 0x80000000")]
    BaseSyntax(String),
    #[error("memory base {0:#x} is not 2M aligned")]
    BaseUnaligned(u64),
}

/// `84M`, `96m`, `1G`: a whole number of MiB or GiB, a non-zero multiple of 2 MiB.
pub fn parse_mem_size(s: &str) -> Result<u64, SizeError> {
    let syntax = || SizeError::Syntax(s.to_string());
    let (digits, unit) = s.split_at(s.len().checked_sub(1).ok_or_else(syntax)?);
    let shift = match unit {
        "M" | "m" => 20,
        "G" | "g" => 30,
        _ => return Err(syntax()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    let n: u64 = digits.parse().map_err(|_| SizeError::Overflow(s.into()))?;
    let bytes = n
        .checked_mul(1 << shift)
        .ok_or_else(|| SizeError::Overflow(s.into()))?;
    if bytes == 0 {
        return Err(SizeError::Zero(s.into()));
    }
    if bytes % MEM_ALIGN != 0 {
        return Err(SizeError::Unaligned(s.into()));
    }
    Ok(bytes)
}

/// `0x80000000`: a hexadecimal guest address, 2 MiB aligned.
pub fn parse_mem_base(s: &str) -> Result<u64, SizeError> {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| SizeError::BaseSyntax(s.into()))?;
    let v = u64::from_str_radix(hex, 16).map_err(|_| SizeError::BaseSyntax(s.into()))?;
    if v % MEM_ALIGN != 0 {
        return Err(SizeError::BaseUnaligned(v));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_mem_size("84M"), Ok(84 << 20));
        assert_eq!(parse_mem_size("96m"), Ok(96 << 20));
        assert_eq!(parse_mem_size("1G"), Ok(1 << 30));
        assert_eq!(parse_mem_size("2g"), Ok(2 << 30));
    }

    #[test]
    fn bad_sizes() {
        assert!(matches!(
            parse_mem_size("85M"),
            Err(SizeError::Unaligned(_))
        ));
        assert!(matches!(parse_mem_size("0M"), Err(SizeError::Zero(_))));
        for s in ["", "M", "84", "84K", "-2M", "0x10M", "8 4M", "84MB"] {
            assert!(
                matches!(parse_mem_size(s), Err(SizeError::Syntax(_))),
                "{s}"
            );
        }
        assert!(matches!(
            parse_mem_size("99999999999999999999M"),
            Err(SizeError::Overflow(_))
        ));
        assert!(matches!(
            parse_mem_size("17179869184G"),
            Err(SizeError::Overflow(_))
        ));
    }

    #[test]
    fn bases() {
        assert_eq!(parse_mem_base("0x80000000"), Ok(0x8000_0000));
        assert_eq!(parse_mem_base("0X40200000"), Ok(0x4020_0000));
        assert_eq!(
            parse_mem_base("0x80080000"),
            Err(SizeError::BaseUnaligned(0x8008_0000))
        );
        assert!(matches!(
            parse_mem_base("80000000"),
            Err(SizeError::BaseSyntax(_))
        ));
        assert!(matches!(
            parse_mem_base("0xzz"),
            Err(SizeError::BaseSyntax(_))
        ));
    }
}
