//! Assembles an image from a v0/v1/v2 header and its components, the way abootimg and
//! mkbootimg lay it out: header page, then each component zero-padded to whole pages.

use crate::error::BuildError;
use crate::header::{check_page_size, LegacyHeader, V1_HEADER_SIZE, V2_HEADER_SIZE};
use crate::id::sha1_id;
use crate::layout::Layout;

/// The components of a v0-v2 image. Empty slices mean "absent".
#[derive(Clone, Copy, Debug, Default)]
pub struct Parts<'a> {
    pub kernel: &'a [u8],
    pub ramdisk: &'a [u8],
    pub second: &'a [u8],
    /// Header v1+ only.
    pub recovery_dtbo: &'a [u8],
    /// Header v2 only.
    pub dtb: &'a [u8],
}

/// What to put in the header's 32-byte `id` field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdMode {
    /// Keep the header's current id (abootimg's behaviour; zero for new images).
    #[default]
    Keep,
    /// All zero, like abootimg.
    Zero,
    /// mkbootimg's SHA-1 (see [`crate::id::sha1_id`]).
    Sha1,
}

fn size32(what: &'static str, part: &[u8]) -> Result<u32, BuildError> {
    u32::try_from(part.len()).map_err(|_| BuildError::TooLarge {
        what,
        size: part.len() as u64,
    })
}

/// Builds the image bytes.
///
/// Takes addresses, page size, name, cmdline, version and os_version from `header`, and sets its
/// size fields (plus `recovery_dtbo_offset`, and `header_size` when it is 0) from `parts`.
/// `bootsize` (0 = none) is abootimg's: the image is zero-extended to it, and it is an error if
/// the image does not fit. Returns the header actually written together with the bytes.
pub fn build(
    header: &LegacyHeader,
    parts: &Parts<'_>,
    id: IdMode,
    bootsize: u64,
) -> Result<(LegacyHeader, Vec<u8>), BuildError> {
    check_page_size(header.page_size)?;
    let mut h = header.clone();
    if h.header_version > 2 {
        return Err(BuildError::UnsupportedVersion(h.header_version));
    }
    if parts.kernel.is_empty() {
        return Err(BuildError::EmptyKernel);
    }
    if h.header_version < 1 && !parts.recovery_dtbo.is_empty() {
        return Err(BuildError::NoRoomFor {
            version: h.header_version,
            what: "recovery dtbo",
        });
    }
    if h.header_version < 2 && !parts.dtb.is_empty() {
        return Err(BuildError::NoRoomFor {
            version: h.header_version,
            what: "dtb",
        });
    }
    h.kernel_size = size32("kernel", parts.kernel)?;
    h.ramdisk_size = size32("ramdisk", parts.ramdisk)?;
    h.second_size = size32("second stage", parts.second)?;
    h.recovery_dtbo_size = size32("recovery dtbo", parts.recovery_dtbo)?;
    h.dtb_size = size32("dtb", parts.dtb)?;
    h.recovery_dtbo_offset = if parts.recovery_dtbo.is_empty() {
        0
    } else {
        Layout::canonical_recovery_dtbo_offset(&h)
    };
    if h.header_size == 0 {
        h.header_size = match h.header_version {
            1 => V1_HEADER_SIZE as u32,
            2 => V2_HEADER_SIZE as u32,
            _ => 0,
        };
    }
    match id {
        IdMode::Keep => {}
        IdMode::Zero => h.id = [0; 32],
        IdMode::Sha1 => {
            let mut covered = vec![parts.kernel, parts.ramdisk, parts.second];
            if h.header_version >= 1 {
                covered.push(parts.recovery_dtbo);
            }
            if h.header_version >= 2 {
                covered.push(parts.dtb);
            }
            h.id = sha1_id(&covered);
        }
    }

    let layout = Layout::legacy(&h);
    if layout.total > u64::from(u32::MAX) {
        return Err(BuildError::TooLarge {
            what: "image",
            size: layout.total,
        });
    }
    let len = if bootsize == 0 {
        layout.total
    } else if layout.total > bootsize {
        return Err(BuildError::BootsizeTooSmall {
            need: layout.total,
            bootsize,
        });
    } else if bootsize > u64::from(u32::MAX) {
        return Err(BuildError::TooLarge {
            what: "bootsize",
            size: bootsize,
        });
    } else {
        bootsize
    };
    let mut out = vec![0u8; len as usize];
    let head = h.to_bytes();
    out[..head.len()].copy_from_slice(&head);
    for (section, data) in [
        (layout.kernel, parts.kernel),
        (layout.ramdisk, parts.ramdisk),
        (layout.second, parts.second),
        (layout.recovery_dtbo, parts.recovery_dtbo),
        (layout.dtb, parts.dtb),
    ] {
        let start = section.offset as usize;
        out[start..start + data.len()].copy_from_slice(data);
    }
    Ok((h, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PageSizeError;
    use crate::header::Header;
    use crate::image::BootImage;

    fn parts<'a>(k: &'a [u8], r: &'a [u8], s: &'a [u8]) -> Parts<'a> {
        Parts {
            kernel: k,
            ramdisk: r,
            second: s,
            ..Parts::default()
        }
    }

    #[test]
    fn builds_then_parses_back() {
        let k = vec![1u8; 5000];
        let r = vec![2u8; 3000];
        let s = vec![3u8; 250];
        let mut h = LegacyHeader::new();
        h.kernel_addr = 0x8008_0000;
        let (written, bytes) = build(&h, &parts(&k, &r, &s), IdMode::Keep, 0).unwrap();
        assert_eq!(bytes.len(), 0x3800);
        assert_eq!(&bytes[0x800..0x800 + 5000], &k[..]);
        assert!(bytes[0x800 + 5000..0x2000].iter().all(|&b| b == 0));
        let img = BootImage::parse(&bytes).unwrap();
        assert_eq!(img.header, Header::Legacy(Box::new(written)));
        assert_eq!(img.kernel(), &k[..]);
        assert_eq!(img.ramdisk(), &r[..]);
        assert_eq!(img.second(), &s[..]);
    }

    #[test]
    fn bootsize_pads_or_fails() {
        let h = LegacyHeader::new();
        let p = parts(b"k", b"r", b"");
        assert_eq!(
            build(&h, &p, IdMode::Keep, 0x10000).unwrap().1.len(),
            0x10000
        );
        assert_eq!(
            build(&h, &p, IdMode::Keep, 0x1000).unwrap_err(),
            BuildError::BootsizeTooSmall {
                need: 0x1800,
                bootsize: 0x1000
            }
        );
    }

    #[test]
    fn refuses_bad_inputs() {
        let mut h = LegacyHeader::new();
        assert_eq!(
            build(&h, &parts(b"", b"r", b""), IdMode::Keep, 0).unwrap_err(),
            BuildError::EmptyKernel
        );
        h.page_size = 1000;
        assert_eq!(
            build(&h, &parts(b"k", b"r", b""), IdMode::Keep, 0).unwrap_err(),
            BuildError::PageSize(PageSizeError::NotPowerOfTwo(1000))
        );
        let h = LegacyHeader::new();
        let p = Parts {
            dtb: b"d",
            ..parts(b"k", b"r", b"")
        };
        assert!(matches!(
            build(&h, &p, IdMode::Keep, 0),
            Err(BuildError::NoRoomFor { .. })
        ));
    }

    #[test]
    fn v2_places_dtb_and_recovery_dtbo() {
        let mut h = LegacyHeader::new();
        h.header_version = 2;
        let p = Parts {
            recovery_dtbo: b"rd",
            dtb: b"dtb!",
            ..parts(b"k", b"r", b"s")
        };
        let (w, bytes) = build(&h, &p, IdMode::Sha1, 0).unwrap();
        assert_eq!(w.header_size, V2_HEADER_SIZE as u32);
        assert_eq!(w.recovery_dtbo_offset, 4 * 2048);
        assert_ne!(w.id, [0; 32]);
        let img = BootImage::parse(&bytes).unwrap();
        assert_eq!(img.recovery_dtbo(), b"rd");
        assert_eq!(img.dtb(), b"dtb!");
        assert_eq!(bytes.len(), 6 * 2048);
    }
}
