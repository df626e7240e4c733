//! A parsed boot image: typed header plus component ranges over the caller's bytes (no copy).

use crate::error::ParseError;
use crate::header::{parse_header, Header};
use crate::layout::{Layout, Section};

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

    /// Bytes of one section of [`Self::layout`]; [`Self::parse`] made sure it is in bounds.
    pub fn section(&self, s: Section) -> &'a [u8] {
        // The casts cannot truncate: the range was checked against `data.len()`.
        &self.data[s.offset as usize..(s.offset + s.size) as usize]
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
