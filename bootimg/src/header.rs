//! Boot image header types (v0 to v4) and their `nom` parser and serialiser.
//!
//! Versions 0, 1 and 2 share one layout that grows at the end ([`LegacyHeader`]); versions 3
//! and 4 are a different, address-less layout ([`HeaderV3`]). The version always sits at 0x28,
//! so the parser reads it there first and dispatches.

use nom::bytes::complete::{tag, take};
use nom::number::complete::{le_u32, le_u64};
use nom::IResult;

use crate::error::{PageSizeError, ParseError};

pub const MAGIC: &[u8; 8] = b"ANDROID!";
pub const NAME_SIZE: usize = 16;
pub const CMDLINE_SIZE: usize = 512;
pub const ID_SIZE: usize = 32;
pub const EXTRA_CMDLINE_SIZE: usize = 1024;
pub const V3_CMDLINE_SIZE: usize = 1536;

/// Bytes abootimg's `boot_img_hdr` covers (magic to `id`); the rest of its header page is zero.
pub const ABOOTIMG_HEADER_SIZE: usize = 0x260;
/// v0 header with `extra_cmdline`, as AOSP defines it.
pub const V0_HEADER_SIZE: usize = 0x660;
pub const V1_HEADER_SIZE: usize = 1648;
pub const V2_HEADER_SIZE: usize = 1660;
/// v3 header up to the end of `cmdline`; v4 adds `signature_size`.
pub const V3_HEADER_SIZE: usize = 1580;
pub const V4_HEADER_SIZE: usize = 1584;
/// v3 and v4 images always use 4096-byte pages.
pub const V3_PAGE_SIZE: u32 = 4096;
/// Smallest page size bootimg accepts: a v2 header (1660 bytes) must fit in the header page.
pub const MIN_PAGE_SIZE: u32 = 2048;
/// abootimg's and mkbootimg's default.
pub const DEFAULT_PAGE_SIZE: u32 = 2048;

const VERSION_OFFSET: usize = 0x28;

/// Header of a version 0, 1 or 2 image. Fields of later versions are zero in earlier ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyHeader {
    pub kernel_size: u32,
    pub kernel_addr: u32,
    pub ramdisk_size: u32,
    pub ramdisk_addr: u32,
    pub second_size: u32,
    pub second_addr: u32,
    pub tags_addr: u32,
    pub page_size: u32,
    pub header_version: u32,
    pub os_version: u32,
    pub name: [u8; NAME_SIZE],
    pub cmdline: [u8; CMDLINE_SIZE],
    pub id: [u8; ID_SIZE],
    pub extra_cmdline: [u8; EXTRA_CMDLINE_SIZE],
    /// v1+.
    pub recovery_dtbo_size: u32,
    /// v1+: absolute file offset of the recovery DTBO (0 when there is none).
    pub recovery_dtbo_offset: u64,
    /// v1+.
    pub header_size: u32,
    /// v2.
    pub dtb_size: u32,
    /// v2.
    pub dtb_addr: u64,
}

/// Header of a version 3 or 4 image (GKI): no load addresses, no second stage, no DTB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderV3 {
    pub kernel_size: u32,
    pub ramdisk_size: u32,
    pub os_version: u32,
    pub header_size: u32,
    pub header_version: u32,
    pub cmdline: [u8; V3_CMDLINE_SIZE],
    /// v4 only (0 for v3).
    pub signature_size: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Header {
    Legacy(Box<LegacyHeader>),
    V3(Box<HeaderV3>),
}

impl Header {
    pub fn version(&self) -> u32 {
        match self {
            Header::Legacy(h) => h.header_version,
            Header::V3(h) => h.header_version,
        }
    }

    pub fn page_size(&self) -> u32 {
        match self {
            Header::Legacy(h) => h.page_size,
            Header::V3(_) => V3_PAGE_SIZE,
        }
    }
}

/// Checks the page size rule bootimg applies everywhere: a power of two, at least 2048.
///
/// abootimg accepts any non-zero page size (e.g. 1000); mkbootimg only 2048 to 16384.
pub fn check_page_size(page_size: u32) -> Result<(), PageSizeError> {
    if page_size == 0 {
        Err(PageSizeError::Zero)
    } else if !page_size.is_power_of_two() {
        Err(PageSizeError::NotPowerOfTwo(page_size))
    } else if page_size < MIN_PAGE_SIZE {
        Err(PageSizeError::TooSmall(page_size))
    } else {
        Ok(())
    }
}

/// The bytes of a fixed-size C string field up to its first NUL.
pub fn c_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Decodes `os_version` into ((major, minor, patch), (year, month)).
pub fn decode_os_version(v: u32) -> ((u32, u32, u32), (u32, u32)) {
    let version = v >> 11;
    let level = v & 0x7ff;
    (
        (
            (version >> 14) & 0x7f,
            (version >> 7) & 0x7f,
            version & 0x7f,
        ),
        ((level >> 4) + 2000, level & 0xf),
    )
}

impl LegacyHeader {
    /// A blank v0 header as abootimg starts one: zeros, the magic, 2048-byte pages.
    pub fn new() -> Self {
        LegacyHeader {
            kernel_size: 0,
            kernel_addr: 0,
            ramdisk_size: 0,
            ramdisk_addr: 0,
            second_size: 0,
            second_addr: 0,
            tags_addr: 0,
            page_size: DEFAULT_PAGE_SIZE,
            header_version: 0,
            os_version: 0,
            name: [0; NAME_SIZE],
            cmdline: [0; CMDLINE_SIZE],
            id: [0; ID_SIZE],
            extra_cmdline: [0; EXTRA_CMDLINE_SIZE],
            recovery_dtbo_size: 0,
            recovery_dtbo_offset: 0,
            header_size: 0,
            dtb_size: 0,
            dtb_addr: 0,
        }
    }

    /// Bytes of the header proper for its version (what [`Self::to_bytes`] writes).
    pub fn encoded_size(&self) -> usize {
        match self.header_version {
            0 => V0_HEADER_SIZE,
            1 => V1_HEADER_SIZE,
            _ => V2_HEADER_SIZE,
        }
    }

    /// The full command line: `cmdline` continued by `extra_cmdline` when `cmdline` fills its
    /// field (mkbootimg splits long command lines that way).
    pub fn full_cmdline(&self) -> Vec<u8> {
        let mut out = c_str(&self.cmdline).to_vec();
        if out.len() == CMDLINE_SIZE {
            out.extend_from_slice(c_str(&self.extra_cmdline));
        }
        out
    }

    /// Serialises the header; v0 includes `extra_cmdline` (zero in abootimg images, so the
    /// bytes equal abootimg's 608-byte struct followed by its zero padding).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_size());
        out.extend_from_slice(MAGIC);
        for v in [
            self.kernel_size,
            self.kernel_addr,
            self.ramdisk_size,
            self.ramdisk_addr,
            self.second_size,
            self.second_addr,
            self.tags_addr,
            self.page_size,
            self.header_version,
            self.os_version,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.name);
        out.extend_from_slice(&self.cmdline);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.extra_cmdline);
        if self.header_version >= 1 {
            out.extend_from_slice(&self.recovery_dtbo_size.to_le_bytes());
            out.extend_from_slice(&self.recovery_dtbo_offset.to_le_bytes());
            out.extend_from_slice(&self.header_size.to_le_bytes());
        }
        if self.header_version >= 2 {
            out.extend_from_slice(&self.dtb_size.to_le_bytes());
            out.extend_from_slice(&self.dtb_addr.to_le_bytes());
        }
        debug_assert_eq!(out.len(), self.encoded_size());
        out
    }
}

impl Default for LegacyHeader {
    fn default() -> Self {
        Self::new()
    }
}

fn array<const N: usize>(input: &[u8]) -> IResult<&[u8], [u8; N]> {
    let (rest, bytes) = take(N)(input)?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok((rest, out))
}

fn legacy(input: &[u8]) -> IResult<&[u8], LegacyHeader> {
    let (i, _) = tag(&MAGIC[..])(input)?;
    let (i, kernel_size) = le_u32(i)?;
    let (i, kernel_addr) = le_u32(i)?;
    let (i, ramdisk_size) = le_u32(i)?;
    let (i, ramdisk_addr) = le_u32(i)?;
    let (i, second_size) = le_u32(i)?;
    let (i, second_addr) = le_u32(i)?;
    let (i, tags_addr) = le_u32(i)?;
    let (i, page_size) = le_u32(i)?;
    let (i, header_version) = le_u32(i)?;
    let (i, os_version) = le_u32(i)?;
    let (i, name) = array::<NAME_SIZE>(i)?;
    let (i, cmdline) = array::<CMDLINE_SIZE>(i)?;
    let (i, id) = array::<ID_SIZE>(i)?;
    let (mut i, extra_cmdline) = array::<EXTRA_CMDLINE_SIZE>(i)?;
    let mut h = LegacyHeader {
        kernel_size,
        kernel_addr,
        ramdisk_size,
        ramdisk_addr,
        second_size,
        second_addr,
        tags_addr,
        page_size,
        header_version,
        os_version,
        name,
        cmdline,
        id,
        extra_cmdline,
        ..LegacyHeader::new()
    };
    if header_version >= 1 {
        let (r, size) = le_u32(i)?;
        let (r, offset) = le_u64(r)?;
        let (r, header_size) = le_u32(r)?;
        h.recovery_dtbo_size = size;
        h.recovery_dtbo_offset = offset;
        h.header_size = header_size;
        i = r;
    }
    if header_version >= 2 {
        let (r, size) = le_u32(i)?;
        let (r, addr) = le_u64(r)?;
        h.dtb_size = size;
        h.dtb_addr = addr;
        i = r;
    }
    Ok((i, h))
}

fn v3(input: &[u8]) -> IResult<&[u8], HeaderV3> {
    let (i, _) = tag(&MAGIC[..])(input)?;
    let (i, kernel_size) = le_u32(i)?;
    let (i, ramdisk_size) = le_u32(i)?;
    let (i, os_version) = le_u32(i)?;
    let (i, header_size) = le_u32(i)?;
    let (i, _reserved) = take(16usize)(i)?;
    let (i, header_version) = le_u32(i)?;
    let (mut i, cmdline) = array::<V3_CMDLINE_SIZE>(i)?;
    let mut signature_size = 0;
    if header_version >= 4 {
        let (r, s) = le_u32(i)?;
        signature_size = s;
        i = r;
    }
    Ok((
        i,
        HeaderV3 {
            kernel_size,
            ramdisk_size,
            os_version,
            header_size,
            header_version,
            cmdline,
            signature_size,
        },
    ))
}

fn need(input: &[u8], what: &'static str, n: usize) -> Result<(), ParseError> {
    if input.len() < n {
        Err(ParseError::Truncated {
            what,
            need: n as u64,
            have: input.len() as u64,
        })
    } else {
        Ok(())
    }
}

fn u32_at(input: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(input[offset..offset + 4].try_into().expect("4-byte slice"))
}

/// Parses the header at the start of `input` (the whole image, or at least its header).
///
/// Checks the magic, the version, the page size and a non-zero kernel; it does not check the
/// components against the file length: [`crate::layout::Layout::check`] does.
pub fn parse_header(input: &[u8]) -> Result<Header, ParseError> {
    need(input, "magic", MAGIC.len())?;
    if &input[..MAGIC.len()] != MAGIC {
        return Err(ParseError::BadMagic);
    }
    need(input, "header", VERSION_OFFSET + 4)?;
    let version = u32_at(input, VERSION_OFFSET);
    let header = match version {
        0..=2 => {
            check_page_size(u32_at(input, 0x24))?;
            let size = match version {
                0 => V0_HEADER_SIZE,
                1 => V1_HEADER_SIZE,
                _ => V2_HEADER_SIZE,
            };
            need(input, "header", size)?;
            let (_, h) = legacy(input).map_err(|_| ParseError::Truncated {
                what: "header",
                need: size as u64,
                have: input.len() as u64,
            })?;
            Header::Legacy(Box::new(h))
        }
        3 | 4 => {
            let size = if version == 3 {
                V3_HEADER_SIZE
            } else {
                V4_HEADER_SIZE
            };
            need(input, "header", size)?;
            let (_, h) = v3(input).map_err(|_| ParseError::Truncated {
                what: "header",
                need: size as u64,
                have: input.len() as u64,
            })?;
            Header::V3(Box::new(h))
        }
        v => return Err(ParseError::UnsupportedVersion(v)),
    };
    let kernel_size = match &header {
        Header::Legacy(h) => h.kernel_size,
        Header::V3(h) => h.kernel_size,
    };
    if kernel_size == 0 {
        return Err(ParseError::KernelSizeZero);
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_v2() -> LegacyHeader {
        let mut h = LegacyHeader::new();
        h.kernel_size = 5000;
        h.kernel_addr = 0x8008_0000;
        h.ramdisk_size = 3000;
        h.page_size = 4096;
        h.header_version = 2;
        h.os_version = 0x1600_0155;
        h.name[..4].copy_from_slice(b"test");
        h.recovery_dtbo_size = 7;
        h.recovery_dtbo_offset = 0x1234_5678_9abc;
        h.header_size = V2_HEADER_SIZE as u32;
        h.dtb_size = 99;
        h.dtb_addr = 0x1_0000_0000;
        h
    }

    #[test]
    fn v2_round_trips() {
        let h = sample_v2();
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), V2_HEADER_SIZE);
        assert_eq!(parse_header(&bytes), Ok(Header::Legacy(Box::new(h))));
    }

    #[test]
    fn field_offsets_match_aosp() {
        let bytes = sample_v2().to_bytes();
        assert_eq!(u32_at(&bytes, 0x24), 4096);
        assert_eq!(u32_at(&bytes, 0x28), 2);
        assert_eq!(&bytes[0x30..0x34], b"test");
        assert_eq!(u32_at(&bytes, 0x660), 7);
        assert_eq!(u32_at(&bytes, 0x66c), V2_HEADER_SIZE as u32);
        assert_eq!(u32_at(&bytes, 0x670), 99);
    }

    #[test]
    fn v4_parses() {
        let mut b = vec![0u8; V4_HEADER_SIZE];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&10u32.to_le_bytes());
        b[0x14..0x18].copy_from_slice(&1584u32.to_le_bytes());
        b[0x28..0x2c].copy_from_slice(&4u32.to_le_bytes());
        b[0x2c..0x2f].copy_from_slice(b"abc");
        b[0x62c..0x630].copy_from_slice(&4096u32.to_le_bytes());
        let Header::V3(h) = parse_header(&b).unwrap() else {
            panic!("not v3")
        };
        assert_eq!(h.kernel_size, 10);
        assert_eq!(h.header_size, 1584);
        assert_eq!(c_str(&h.cmdline), b"abc");
        assert_eq!(h.signature_size, 4096);
        assert_eq!(parse_header(&b[..V4_HEADER_SIZE - 1]).unwrap_err(), {
            ParseError::Truncated {
                what: "header",
                need: V4_HEADER_SIZE as u64,
                have: V4_HEADER_SIZE as u64 - 1,
            }
        });
    }

    #[test]
    fn bad_headers_are_errors() {
        let good = sample_v2().to_bytes();
        assert_eq!(
            parse_header(b"ANDROI"),
            Err(ParseError::Truncated {
                what: "magic",
                need: 8,
                have: 6
            })
        );
        assert_eq!(
            parse_header(b"ANDROID?xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            Err(ParseError::BadMagic)
        );
        let mut b = good.clone();
        b[0x24..0x28].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse_header(&b), Err(PageSizeError::Zero.into()));
        b[0x24..0x28].copy_from_slice(&3000u32.to_le_bytes());
        assert_eq!(
            parse_header(&b),
            Err(PageSizeError::NotPowerOfTwo(3000).into())
        );
        b[0x24..0x28].copy_from_slice(&1024u32.to_le_bytes());
        assert_eq!(parse_header(&b), Err(PageSizeError::TooSmall(1024).into()));
        let mut b = good.clone();
        b[0x28..0x2c].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(parse_header(&b), Err(ParseError::UnsupportedVersion(5)));
        let mut b = good.clone();
        b[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse_header(&b), Err(ParseError::KernelSizeZero));
        for n in 0..good.len() {
            assert!(parse_header(&good[..n]).is_err(), "prefix {n} parsed");
        }
    }

    #[test]
    fn os_version_decodes() {
        assert_eq!(decode_os_version(0x1600_0155), ((11, 0, 0), (2021, 5)));
    }

    #[test]
    fn full_cmdline_joins_extra_only_when_first_part_is_full() {
        let mut h = LegacyHeader::new();
        h.cmdline[..3].copy_from_slice(b"abc");
        h.extra_cmdline[..3].copy_from_slice(b"def");
        assert_eq!(h.full_cmdline(), b"abc");
        h.cmdline = [b'x'; CMDLINE_SIZE];
        assert_eq!(h.full_cmdline().len(), CMDLINE_SIZE + 3);
    }
}
