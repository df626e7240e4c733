//! Where each component sits in the file: one header page, then every component padded to a
//! whole number of pages, in a fixed order.
//!
//! All arithmetic is in `u64`, so 32-bit header sizes cannot overflow (abootimg computes in
//! 32-bit `unsigned` and wraps).

use std::ops::Range;

use crate::error::ParseError;
use crate::header::{Header, HeaderV3, LegacyHeader, V3_PAGE_SIZE};

/// Number of `page`-sized pages needed for `size` bytes. `page` must be non-zero.
pub fn pages(size: u64, page: u64) -> u64 {
    size.div_ceil(page)
}

/// One component: `size` bytes at file offset `offset`. Empty components have size 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Section {
    pub offset: u64,
    pub size: u64,
}

impl Section {
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

/// Component placement of an image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub page_size: u64,
    pub kernel: Section,
    pub ramdisk: Section,
    pub second: Section,
    pub recovery_dtbo: Section,
    pub dtb: Section,
    /// v4 boot signature.
    pub signature: Section,
    /// End of the last page of the canonical layout: the size of the image abootimg and
    /// mkbootimg write (before any `bootsize` padding).
    pub total: u64,
}

/// Lays `sizes` out one after the other, each starting on a page boundary after the header page.
fn sequential(page: u64, sizes: &[u64]) -> (Vec<Section>, u64) {
    let mut offset = page;
    let mut out = Vec::with_capacity(sizes.len());
    for &size in sizes {
        out.push(Section { offset, size });
        offset += pages(size, page) * page;
    }
    (out, offset)
}

impl Layout {
    /// Layout of a v0, v1 or v2 image (the page size must be non-zero).
    ///
    /// The recovery DTBO sits where the header's `recovery_dtbo_offset` says, as
    /// `unpack_bootimg` reads it; everything else is at its canonical position.
    pub fn legacy(h: &LegacyHeader) -> Layout {
        let page = u64::from(h.page_size);
        let (s, total) = sequential(
            page,
            &[
                h.kernel_size.into(),
                h.ramdisk_size.into(),
                h.second_size.into(),
                h.recovery_dtbo_size.into(),
                h.dtb_size.into(),
            ],
        );
        let recovery_dtbo = if h.recovery_dtbo_size == 0 {
            Section::default()
        } else {
            Section {
                offset: h.recovery_dtbo_offset,
                size: h.recovery_dtbo_size.into(),
            }
        };
        Layout {
            page_size: page,
            kernel: s[0],
            ramdisk: s[1],
            second: s[2],
            recovery_dtbo,
            dtb: if h.dtb_size == 0 {
                Section::default()
            } else {
                s[4]
            },
            signature: Section::default(),
            total,
        }
    }

    /// Canonical offset of the recovery DTBO (what mkbootimg stores in the header).
    pub fn canonical_recovery_dtbo_offset(h: &LegacyHeader) -> u64 {
        let page = u64::from(h.page_size);
        let (s, _) = sequential(
            page,
            &[
                h.kernel_size.into(),
                h.ramdisk_size.into(),
                h.second_size.into(),
            ],
        );
        s[2].offset + pages(s[2].size, page) * page
    }

    /// Layout of a v3 or v4 image (fixed 4096-byte pages).
    pub fn v3(h: &HeaderV3) -> Layout {
        let page = u64::from(V3_PAGE_SIZE);
        let (s, total) = sequential(
            page,
            &[
                h.kernel_size.into(),
                h.ramdisk_size.into(),
                h.signature_size.into(),
            ],
        );
        Layout {
            page_size: page,
            kernel: s[0],
            ramdisk: s[1],
            signature: s[2],
            total,
            ..Layout::default()
        }
    }

    pub fn of(header: &Header) -> Layout {
        match header {
            Header::Legacy(h) => Layout::legacy(h),
            Header::V3(h) => Layout::v3(h),
        }
    }

    /// The named non-empty components, in file order.
    pub fn sections(&self) -> Vec<(&'static str, Section)> {
        [
            ("kernel", self.kernel),
            ("ramdisk", self.ramdisk),
            ("second stage", self.second),
            ("recovery dtbo", self.recovery_dtbo),
            ("dtb", self.dtb),
            ("boot signature", self.signature),
        ]
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .collect()
    }

    /// Checks that the header page and every component lie inside a file of `file_len` bytes.
    ///
    /// The padding after the last component is not required: some tools strip it.
    pub fn check(&self, file_len: u64) -> Result<(), ParseError> {
        if self.page_size > file_len {
            return Err(ParseError::Truncated {
                what: "header page",
                need: self.page_size,
                have: file_len,
            });
        }
        for (what, s) in self.sections() {
            if s.offset.saturating_add(s.size) > file_len {
                return Err(ParseError::PastEnd {
                    what,
                    offset: s.offset,
                    size: s.size,
                    file_len,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_math() {
        assert_eq!(pages(0, 2048), 0);
        assert_eq!(pages(1, 2048), 1);
        assert_eq!(pages(2048, 2048), 1);
        assert_eq!(pages(2049, 2048), 2);
        assert_eq!(pages(u64::from(u32::MAX), 2048), 2_097_152);
    }

    #[test]
    fn second_stage_follows_ramdisk_pages() {
        // abootimg 0.6's -x reads the second stage at (1 + ceil((k+r)/page)) pages: 0x2800 here.
        let mut h = LegacyHeader::new();
        h.kernel_size = 5000;
        h.ramdisk_size = 3000;
        h.second_size = 250;
        let l = Layout::legacy(&h);
        assert_eq!(
            l.kernel,
            Section {
                offset: 0x800,
                size: 5000
            }
        );
        assert_eq!(
            l.ramdisk,
            Section {
                offset: 0x2000,
                size: 3000
            }
        );
        assert_eq!(
            l.second,
            Section {
                offset: 0x3000,
                size: 250
            }
        );
        assert_eq!(l.total, 0x3800);
    }

    #[test]
    fn v2_layout_and_bounds() {
        let mut h = LegacyHeader::new();
        h.header_version = 2;
        h.page_size = 4096;
        h.kernel_size = 4096;
        h.ramdisk_size = 0;
        h.second_size = 1;
        h.recovery_dtbo_size = 10;
        h.recovery_dtbo_offset = Layout::canonical_recovery_dtbo_offset(&h);
        h.dtb_size = 100;
        let l = Layout::legacy(&h);
        assert_eq!(l.recovery_dtbo.offset, 3 * 4096);
        assert_eq!(
            l.dtb,
            Section {
                offset: 4 * 4096,
                size: 100
            }
        );
        assert_eq!(l.total, 5 * 4096);
        assert!(l.check(4 * 4096 + 100).is_ok());
        assert_eq!(
            l.check(4 * 4096 + 99),
            Err(ParseError::PastEnd {
                what: "dtb",
                offset: 4 * 4096,
                size: 100,
                file_len: 4 * 4096 + 99
            })
        );
        assert!(matches!(l.check(100), Err(ParseError::Truncated { .. })));
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let mut h = LegacyHeader::new();
        h.page_size = 1 << 31;
        h.kernel_size = u32::MAX;
        h.ramdisk_size = u32::MAX;
        h.second_size = u32::MAX;
        h.recovery_dtbo_size = u32::MAX;
        h.recovery_dtbo_offset = u64::MAX;
        h.dtb_size = u32::MAX;
        let l = Layout::legacy(&h);
        assert!(l.check(u64::from(u32::MAX)).is_err());
    }
}
