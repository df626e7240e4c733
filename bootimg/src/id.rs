//! The header `id` as mkbootimg fills it: a SHA-1 over every component and its length.

use sha1::{Digest, Sha1};

use crate::header::ID_SIZE;

/// mkbootimg's id: SHA-1 of `kernel ‖ u32le(len) ‖ ramdisk ‖ u32le(len) ‖ second ‖ u32le(len)`,
/// then `recovery_dtbo ‖ u32le(len)` for header v1+ and `dtb ‖ u32le(len)` for v2, stored as 20
/// digest bytes followed by 12 zero bytes.
///
/// `parts` must be exactly the components that the header version covers, in that order.
pub fn sha1_id(parts: &[&[u8]]) -> [u8; ID_SIZE] {
    let mut sha = Sha1::new();
    for part in parts {
        sha.update(part);
        // Sizes are u32 in the header; the writer refuses larger components before hashing.
        sha.update((part.len() as u32).to_le_bytes());
    }
    let mut id = [0u8; ID_SIZE];
    id[..20].copy_from_slice(&sha.finalize());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_parts_hash_their_zero_lengths() {
        // sha1 of twelve zero bytes.
        let id = sha1_id(&[b"", b"", b""]);
        assert_eq!(
            id[..20],
            [
                0x2c, 0x51, 0x3f, 0x14, 0x9e, 0x73, 0x7e, 0xc4, 0x06, 0x3f, 0xc1, 0xd3, 0x7a, 0xee,
                0x9b, 0xea, 0xbc, 0x4b, 0x4b, 0xbf,
            ]
        );
        assert_eq!(id[20..], [0; 12]);
    }
}
