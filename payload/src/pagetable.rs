//! Translation-table building for the 4 KiB granule: the hypervisor's own EL2 stage-1 map and
//! every VM's stage-2 map share this builder; only the leaf attribute bits differ.
//!
//! Blocks (1 GiB at level 1, 2 MiB at level 2) are used wherever the addresses and size allow,
//! pages elsewhere. The root table may be several concatenated pages (stage 2 allows that, and
//! it saves a level for 40-42 bit IPAs).

use core::fmt;

pub const PAGE_SIZE: u64 = 4096;
const ENTRIES: usize = 512;
const DESC_VALID: u64 = 1;
const DESC_TABLE: u64 = 0b11; // at levels 0-2; the same bits mean "page" at level 3
const DESC_BLOCK: u64 = 0b01;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 3 << 8;
const XN: u64 = 1 << 54;

/// Where the tables' pages come from. Pages are returned zeroed and addressed physically; the
/// hypervisor identity-maps its pool so a physical address is also a pointer.
pub trait PageAlloc {
    /// `count` contiguous zeroed pages aligned to `count * PAGE_SIZE` (`count` a power of two).
    fn alloc_zeroed(&mut self, count: usize) -> Option<u64>;
    /// The table stored in the page at `pa`, which this allocator handed out.
    fn table(&mut self, pa: u64) -> &mut [u64; ENTRIES];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemKind {
    /// Write-back cacheable RAM.
    Normal,
    /// Device-nGnRE registers.
    Device,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The hypervisor's own map (TTBR0_EL2). MAIR_EL2 index 0 = Device-nGnRE, 1 = Normal WB.
    El2,
    /// A VM's map (VTTBR_EL2), stage-2 MemAttr encoding, read/write.
    Stage2,
}

/// MAIR_EL2 value matching [`Format::El2`] attribute indexes.
pub const MAIR_EL2: u64 = 0x04 | (0xff << 8);

impl Format {
    fn leaf_attrs(self, kind: MemKind) -> u64 {
        match (self, kind) {
            (Format::El2, MemKind::Normal) => (1 << 2) | SH_INNER | AF,
            (Format::El2, MemKind::Device) => AF | XN,
            // MemAttr 0b1111: Normal outer/inner write-back; S2AP 0b11: read/write.
            (Format::Stage2, MemKind::Normal) => (0xf << 2) | (3 << 6) | SH_INNER | AF,
            // MemAttr 0b0001: Device-nGnRE.
            (Format::Stage2, MemKind::Device) => (0x1 << 2) | (3 << 6) | AF | XN,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// The pool has no page left for a table.
    OutOfMemory,
    /// Addresses or size not page aligned, or the range wraps.
    Unaligned,
    /// The range is outside the input address size.
    OutOfRange,
    /// Part of the range is already mapped differently.
    Conflict { va: u64 },
    /// The input size cannot be expressed with the 4 KiB granule.
    BadInputSize,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::OutOfMemory => write!(f, "out of page-table memory"),
            MapError::Unaligned => write!(f, "range not page aligned"),
            MapError::OutOfRange => write!(f, "range outside the input address size"),
            MapError::Conflict { va } => write!(f, "{va:#x} already mapped differently"),
            MapError::BadInputSize => write!(f, "unsupported input address size"),
        }
    }
}

/// Geometry of a table: where the walk starts and how wide the root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub input_bits: u32,
    pub start_level: u32,
    pub root_pages: usize,
}

impl Geometry {
    /// Chooses the start level for `input_bits`: level 0 above 42 bits, else level 1 with up to
    /// 8 concatenated root pages (stage 2), or a single root page (stage 1, up to 39 bits).
    pub fn for_input_bits(input_bits: u32, allow_concat: bool) -> Result<Self, MapError> {
        match input_bits {
            43..=48 => Ok(Self {
                input_bits,
                start_level: 0,
                root_pages: 1,
            }),
            40..=42 if allow_concat => Ok(Self {
                input_bits,
                start_level: 1,
                root_pages: 1 << (input_bits - 39),
            }),
            25..=39 => Ok(Self {
                input_bits,
                start_level: 1,
                root_pages: 1,
            }),
            _ => Err(MapError::BadInputSize),
        }
    }

    /// VTCR_EL2.SL0 / the start level encoding for the 4 KiB granule.
    pub fn sl0(&self) -> u64 {
        2 - self.start_level as u64
    }

    /// TCR/VTCR T0SZ field.
    pub fn t0sz(&self) -> u64 {
        64 - self.input_bits as u64
    }

    fn root_entries(&self) -> usize {
        let bits = self.input_bits - level_shift(self.start_level);
        1usize << bits
    }
}

fn level_shift(level: u32) -> u32 {
    12 + 9 * (3 - level)
}

pub struct PageTable {
    root: u64,
    geometry: Geometry,
    format: Format,
}

impl PageTable {
    pub fn new(
        alloc: &mut impl PageAlloc,
        format: Format,
        geometry: Geometry,
    ) -> Result<Self, MapError> {
        let root = alloc
            .alloc_zeroed(geometry.root_pages)
            .ok_or(MapError::OutOfMemory)?;
        Ok(Self {
            root,
            geometry,
            format,
        })
    }

    /// A table built earlier whose root table is at `root` (e.g. from `VTTBR_EL2`), to map
    /// more into it with the allocator its pages came from.
    pub fn from_root(root: u64, format: Format, geometry: Geometry) -> Self {
        Self {
            root,
            geometry,
            format,
        }
    }

    /// Physical address of the root table (for TTBR0_EL2 / VTTBR_EL2).
    pub fn root(&self) -> u64 {
        self.root
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Maps `[va, va + size)` to `[pa, pa + size)`.
    pub fn map(
        &mut self,
        alloc: &mut impl PageAlloc,
        va: u64,
        pa: u64,
        size: u64,
        kind: MemKind,
    ) -> Result<(), MapError> {
        if !(va | pa | size).is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Unaligned);
        }
        let end = va.checked_add(size).ok_or(MapError::Unaligned)?;
        pa.checked_add(size).ok_or(MapError::Unaligned)?;
        if end > 1u64 << self.geometry.input_bits || pa + size > 1 << 48 {
            return Err(MapError::OutOfRange);
        }
        let attrs = self.format.leaf_attrs(kind);
        let level = self.geometry.start_level;
        let entries = self.geometry.root_entries();
        self.map_level(alloc, self.root, level, entries, va, pa, size, attrs)
    }

    #[allow(clippy::too_many_arguments)]
    fn map_level(
        &self,
        alloc: &mut impl PageAlloc,
        table_pa: u64,
        level: u32,
        entries: usize,
        mut va: u64,
        mut pa: u64,
        mut size: u64,
        attrs: u64,
    ) -> Result<(), MapError> {
        let shift = level_shift(level);
        let block = 1u64 << shift;
        while size > 0 {
            let index = ((va >> shift) as usize) & (entries - 1);
            let chunk = (block - (va & (block - 1))).min(size);
            // A root spanning concatenated pages is contiguous: entry `index` lives in page
            // `index / 512`.
            let page = table_pa + (index / ENTRIES) as u64 * PAGE_SIZE;
            let slot = index % ENTRIES;
            let old = alloc.table(page)[slot];
            let is_table = level < 3 && old & 0b11 == DESC_TABLE;
            let is_leaf = old & DESC_VALID != 0 && !is_table;
            let leaf_kind = if level == 3 { DESC_TABLE } else { DESC_BLOCK };
            if is_table {
                // Already split (an earlier, smaller mapping): fill in below.
                let next = old & ADDR_MASK;
                self.map_level(alloc, next, level + 1, ENTRIES, va, pa, chunk, attrs)?;
            } else if is_leaf {
                // An existing block or page is fine only if it already maps this exactly.
                let base_pa = pa - (va & (block - 1));
                if old != (base_pa & ADDR_MASK) | attrs | leaf_kind {
                    return Err(MapError::Conflict { va });
                }
            } else if level >= 1 && chunk == block && pa.is_multiple_of(block) {
                alloc.table(page)[slot] = (pa & ADDR_MASK) | attrs | leaf_kind;
            } else {
                let next = alloc.alloc_zeroed(1).ok_or(MapError::OutOfMemory)?;
                alloc.table(page)[slot] = next | DESC_TABLE;
                self.map_level(alloc, next, level + 1, ENTRIES, va, pa, chunk, attrs)?;
            }
            va += chunk;
            pa += chunk;
            size -= chunk;
        }
        Ok(())
    }

    /// Walks the table: the output address and leaf descriptor for `va`, if mapped.
    pub fn translate(&self, alloc: &mut impl PageAlloc, va: u64) -> Option<(u64, u64)> {
        let mut table = self.root;
        let mut level = self.geometry.start_level;
        let mut entries = self.geometry.root_entries();
        loop {
            let shift = level_shift(level);
            let index = ((va >> shift) as usize) & (entries - 1);
            let page = table + (index / ENTRIES) as u64 * PAGE_SIZE;
            let desc = alloc.table(page)[index % ENTRIES];
            if desc & DESC_VALID == 0 {
                return None;
            }
            if level == 3 || desc & 0b11 == DESC_BLOCK {
                let offset = va & ((1u64 << shift) - 1);
                return Some(((desc & ADDR_MASK & !((1u64 << shift) - 1)) + offset, desc));
            }
            table = desc & ADDR_MASK;
            level += 1;
            entries = ENTRIES;
        }
    }
}

/// Decodes ID_AA64MMFR0_EL1.PARange into a physical address size in bits (capped at 48: no
/// 52-bit support).
pub fn parange_bits(mmfr0: u64) -> u32 {
    match mmfr0 & 0xf {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        _ => 48,
    }
}

/// The TCR/VTCR PS field for an address size from [`parange_bits`].
pub fn ps_field(bits: u32) -> u64 {
    match bits {
        32 => 0,
        36 => 1,
        40 => 2,
        42 => 3,
        44 => 4,
        _ => 5,
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A fake pool handing out fake physical addresses backed by host memory.
    pub struct FakeAlloc {
        pub next: u64,
        pub limit: u64,
        pub pages: HashMap<u64, Box<[u64; ENTRIES]>>,
    }

    impl FakeAlloc {
        pub fn new(pages: u64) -> Self {
            Self {
                next: 0x8000_0000,
                limit: 0x8000_0000 + pages * PAGE_SIZE,
                pages: HashMap::new(),
            }
        }
        pub fn used(&self) -> usize {
            self.pages.len()
        }
    }

    impl PageAlloc for FakeAlloc {
        fn alloc_zeroed(&mut self, count: usize) -> Option<u64> {
            let align = count as u64 * PAGE_SIZE;
            let pa = self.next.div_ceil(align) * align;
            if pa + align > self.limit {
                return None;
            }
            self.next = pa + align;
            for i in 0..count as u64 {
                self.pages
                    .insert(pa + i * PAGE_SIZE, Box::new([0; ENTRIES]));
            }
            Some(pa)
        }
        fn table(&mut self, pa: u64) -> &mut [u64; ENTRIES] {
            self.pages.get_mut(&pa).expect("not a table page")
        }
    }

    #[test]
    fn maps_with_blocks_where_aligned() {
        let mut a = FakeAlloc::new(64);
        let g = Geometry::for_input_bits(40, true).unwrap();
        assert_eq!(
            (g.start_level, g.root_pages, g.sl0(), g.t0sz()),
            (1, 2, 1, 24)
        );
        let mut t = PageTable::new(&mut a, Format::Stage2, g).unwrap();
        // 1 GiB + 2 MiB + 4 KiB: one L1 block, one L2 block, one page.
        let base = 0x4000_0000;
        t.map(
            &mut a,
            base,
            base,
            0x4000_0000 + 0x20_0000 + 0x1000,
            MemKind::Normal,
        )
        .unwrap();
        // Root (2 pages) + one L2 + one L3.
        assert_eq!(a.used(), 4);
        let (pa, desc) = t.translate(&mut a, base + 0x1234_5678).unwrap();
        assert_eq!(pa, base + 0x1234_5678);
        assert_eq!(desc & 0b11, DESC_BLOCK);
        let (pa, desc) = t.translate(&mut a, 0x8020_0010).unwrap();
        assert_eq!((pa, desc & 0b11), (0x8020_0010, DESC_TABLE));
        assert!(t.translate(&mut a, 0x8020_1000).is_none());
        assert!(t.translate(&mut a, 0x3fff_f000).is_none());
    }

    #[test]
    fn concatenated_root_reaches_high_half() {
        let mut a = FakeAlloc::new(64);
        let g = Geometry::for_input_bits(40, true).unwrap();
        let mut t = PageTable::new(&mut a, Format::Stage2, g).unwrap();
        let high = 0xC0_0000_0000 - 0x1000_0000; // inside the second root page
        t.map(&mut a, high, high, 0x1000, MemKind::Device).unwrap();
        let (pa, desc) = t.translate(&mut a, high + 8).unwrap();
        assert_eq!(pa, high + 8);
        assert_ne!(desc & XN, 0);
        assert_eq!(
            t.map(&mut a, 1 << 40, 1 << 40, 0x1000, MemKind::Device),
            Err(MapError::OutOfRange)
        );
    }

    #[test]
    fn rejects_unaligned_and_conflicts_but_allows_identical_remap() {
        let mut a = FakeAlloc::new(64);
        let g = Geometry::for_input_bits(39, false).unwrap();
        let mut t = PageTable::new(&mut a, Format::El2, g).unwrap();
        assert_eq!(
            t.map(&mut a, 0x1001, 0x1001, 0x1000, MemKind::Normal),
            Err(MapError::Unaligned)
        );
        t.map(&mut a, 0x9000_0000, 0x9000_0000, 0x1000, MemKind::Device)
            .unwrap();
        t.map(&mut a, 0x9000_0000, 0x9000_0000, 0x1000, MemKind::Device)
            .unwrap();
        assert_eq!(
            t.map(&mut a, 0x9000_0000, 0x9000_0000, 0x1000, MemKind::Normal),
            Err(MapError::Conflict { va: 0x9000_0000 })
        );
        // A larger range over an existing table fills the table in around the old page...
        t.map(&mut a, 0x9000_0000, 0x9000_0000, 0x20_0000, MemKind::Device)
            .unwrap();
        assert_eq!(
            t.translate(&mut a, 0x901f_f008).map(|(pa, _)| pa),
            Some(0x901f_f008)
        );
        // ...but not over it with other attributes.
        assert_eq!(
            t.map(&mut a, 0x9000_0000, 0x9000_0000, 0x20_0000, MemKind::Normal),
            Err(MapError::Conflict { va: 0x9000_0000 })
        );
        // Inside an existing block: fine if identical, a conflict if it maps elsewhere.
        t.map(&mut a, 0x4000_0000, 0x4000_0000, 0x20_0000, MemKind::Normal)
            .unwrap();
        t.map(&mut a, 0x4010_0000, 0x4010_0000, 0x1000, MemKind::Normal)
            .unwrap();
        assert!(t
            .map(&mut a, 0x4010_0000, 0x5010_0000, 0x1000, MemKind::Normal)
            .is_err());
    }

    #[test]
    fn runs_out_of_pool_cleanly() {
        let mut a = FakeAlloc::new(2);
        let g = Geometry::for_input_bits(39, false).unwrap();
        let mut t = PageTable::new(&mut a, Format::El2, g).unwrap();
        assert_eq!(
            t.map(&mut a, 0x1000, 0x1000, 0x1000, MemKind::Normal),
            Err(MapError::OutOfMemory)
        );
    }

    #[test]
    fn level0_for_44_bits() {
        let g = Geometry::for_input_bits(44, true).unwrap();
        assert_eq!(
            (g.start_level, g.root_pages, g.sl0(), g.root_entries()),
            (0, 1, 2, 32)
        );
        assert_eq!(
            Geometry::for_input_bits(40, false),
            Err(MapError::BadInputSize)
        );
        assert_eq!(parange_bits(0x1124), 44);
        assert_eq!(ps_field(44), 4);
    }
}
