//! The arm64 Linux `Image` header (Documentation/arch/arm64/booting.rst).

pub const MAGIC: u32 = 0x644d_5241; // "ARM\x64"

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub text_offset: u64,
    pub image_size: u64,
    pub flags: u64,
}

/// Parses the 64-byte header; `None` if the magic is missing.
pub fn parse(bytes: &[u8]) -> Option<ImageHeader> {
    let word = |o: usize| Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?));
    let magic = u32::from_le_bytes(bytes.get(56..60)?.try_into().ok()?);
    if magic != MAGIC {
        return None;
    }
    Some(ImageHeader {
        text_offset: word(8)?,
        image_size: word(16)?,
        flags: word(24)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header() {
        let mut h = [0u8; 64];
        h[16..24].copy_from_slice(&0x2010000u64.to_le_bytes());
        h[24..32].copy_from_slice(&0xau64.to_le_bytes());
        assert_eq!(parse(&h), None);
        h[56..60].copy_from_slice(b"ARM\x64");
        assert_eq!(
            parse(&h),
            Some(ImageHeader {
                text_offset: 0,
                image_size: 0x2010000,
                flags: 0xa
            })
        );
        assert_eq!(parse(&h[..40]), None);
    }
}
