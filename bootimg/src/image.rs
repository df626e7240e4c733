//! A parsed boot image: typed header plus component ranges over the caller's bytes (no copy).

use std::io::Read;

use crate::error::{ParseError, ReadError};
use crate::header::{parse_header, Header, V2_HEADER_SIZE, V4_HEADER_SIZE};
use crate::layout::{Layout, Section};

/// Reads and validates just the header of an image of `file_len` bytes from `reader` (positioned
/// at the start of the image), for callers that then load each component themselves, e.g. mvm
/// reading a kernel straight into guest memory.
pub fn read_header<R: Read>(reader: R, file_len: u64) -> Result<(Header, Layout), ReadError> {
    let mut buf = Vec::with_capacity(V2_HEADER_SIZE.max(V4_HEADER_SIZE));
    reader
        .take(buf.capacity() as u64)
        .read_to_end(&mut buf)
        .map_err(ReadError::Io)?;
    let header = parse_header(&buf)?;
    let layout = Layout::of(&header);
    layout.check(file_len)?;
    Ok((header, layout))
}

/// A validated boot image borrowing the file's bytes.
#[derive(Clone, Debug)]
pub struct BootImage<'a> {
    pub header: Header,
    pub layout: Layout,
    data: &'a [u8],
}

impl<'a> BootImage<'a> {
    /// Parses and validates a whole image: header, page size, and every component inside `data`.
    pub fn parse(data: &'a [u8]) -> Result<Self, ParseError> {
        let header = parse_header(data)?;
        let layout = Layout::of(&header);
        layout.check(data.len() as u64)?;
        Ok(BootImage {
            header,
            layout,
            data,
        })
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Bytes of one section of [`Self::layout`]: [`Self::parse`] checked every non-empty one.
    ///
    /// An empty section may sit past the end of a file that stops after its last component,
    /// so it is not sliced; out-of-range sections (only possible for a caller-made `Section`)
    /// give an empty slice rather than a panic.
    pub fn section(&self, s: Section) -> &'a [u8] {
        let range = usize::try_from(s.offset)
            .ok()
            .zip(usize::try_from(s.offset.saturating_add(s.size)).ok());
        match range {
            Some((start, end)) if s.size != 0 => self.data.get(start..end).unwrap_or(&[]),
            _ => &[],
        }
    }

    pub fn kernel(&self) -> &'a [u8] {
        self.section(self.layout.kernel)
    }

    pub fn ramdisk(&self) -> &'a [u8] {
        self.section(self.layout.ramdisk)
    }

    /// The second stage (Minos: the guest DTB).
    pub fn second(&self) -> &'a [u8] {
        self.section(self.layout.second)
    }

    pub fn recovery_dtbo(&self) -> &'a [u8] {
        self.section(self.layout.recovery_dtbo)
    }

    pub fn dtb(&self) -> &'a [u8] {
        self.section(self.layout.dtb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::LegacyHeader;
    use crate::writer::{build, IdMode, Parts};

    #[test]
    fn read_header_agrees_with_parse() {
        let parts = Parts {
            kernel: b"kernel",
            ramdisk: b"ramdisk",
            second: b"dtb",
            ..Parts::default()
        };
        let (_, bytes) = build(&LegacyHeader::new(), &parts, IdMode::Zero, 0).unwrap();
        let img = BootImage::parse(&bytes).unwrap();
        let (header, layout) = read_header(&bytes[..], bytes.len() as u64).unwrap();
        assert_eq!(header, img.header);
        assert_eq!(layout, img.layout);
        assert_eq!(img.second(), b"dtb");
        // Empty sections past the end of a file cut after its last component (a fuzz find).
        let parts = Parts {
            second: b"",
            ..parts
        };
        let (_, bytes) = build(&LegacyHeader::new(), &parts, IdMode::Zero, 0).unwrap();
        let cut = &bytes[..4096 + 7];
        let img = BootImage::parse(cut).unwrap();
        assert_eq!(img.layout.second.offset, 6144);
        assert_eq!(img.second(), b"");
        assert!(BootImage::parse(&cut[..cut.len() - 1]).is_err());
        assert!(matches!(
            read_header(&bytes[..], 4096 + 6),
            Err(ReadError::Parse(ParseError::PastEnd {
                what: "ramdisk",
                ..
            }))
        ));
    }
}
