//! Stage-2 pieces a guest VM needs from [`crate::pagetable`]: its RAM mapped block by block,
//! the same blocks mapped into (and later removed from) VM0's stage 2 for mvm, and a page
//! allocator for a guest's tables that lives inside one pool block, so destroying the VM
//! returns every table page with that block.

use crate::pagetable::{Format, Geometry, MapError, MemKind, PageAlloc, PageTable, PAGE_SIZE};
use minos_abi::MEM_ALIGN;

const ENTRIES: usize = 512;
const DESC_VALID: u64 = 1;
const DESC_TYPE_MASK: u64 = 0b11;
const DESC_TABLE: u64 = 0b11;
const DESC_BLOCK: u64 = 0b01;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
/// Level whose block entries map 2 MiB.
const BLOCK_LEVEL: u32 = 2;

/// Bump page allocator over a run of table pages at physical address `base` (one 2 MiB pool
/// block for a guest's stage 2: 512 pages, far more than 2 MiB-block mappings need). Nothing
/// is freed page by page: the whole block goes back to the pool with the VM.
pub struct TablePages<'a> {
    base: u64,
    next: usize,
    pages: &'a mut [[u64; ENTRIES]],
}

impl<'a> TablePages<'a> {
    /// Pages `pages`, whose first one has physical address `base` (4 KiB aligned).
    pub fn new(base: u64, pages: &'a mut [[u64; ENTRIES]]) -> Self {
        TablePages {
            base,
            next: 0,
            pages,
        }
    }

    /// The 2 MiB block at `pa` as table pages.
    ///
    /// # Safety
    /// `pa` must be a 2 MiB block the caller owns for as long as the result lives, identity
    /// mapped at EL2 and used for nothing else.
    pub unsafe fn from_block(pa: u64) -> TablePages<'static> {
        // SAFETY: the caller guarantees the block is ours, mapped at `pa` and unaliased.
        let pages = unsafe {
            core::slice::from_raw_parts_mut(pa as *mut [u64; ENTRIES], MEM_ALIGN as usize / 4096)
        };
        TablePages::new(pa, pages)
    }

    /// Pages handed out so far.
    pub fn used(&self) -> usize {
        self.next
    }
}

impl PageAlloc for TablePages<'_> {
    fn alloc_zeroed(&mut self, count: usize) -> Option<u64> {
        if count == 0 || !count.is_power_of_two() {
            return None;
        }
        let start = self.next.checked_next_multiple_of(count)?;
        let end = start.checked_add(count)?;
        let pages = self.pages.get_mut(start..end)?;
        for p in pages.iter_mut() {
            *p = [0; ENTRIES];
        }
        self.next = end;
        Some(self.base + start as u64 * PAGE_SIZE)
    }

    fn table(&mut self, pa: u64) -> &mut [u64; ENTRIES] {
        // Only addresses this allocator returned reach here (the table code follows its own
        // descriptors); anything else is a hypervisor bug worth stopping on.
        let i = (pa - self.base) / PAGE_SIZE;
        &mut self.pages[i as usize]
    }
}

/// A guest's stage 2: `blocks[i]` at IPA `mem_base + i * 2 MiB`, normal cacheable, in a table
/// of `ipa_bits` input bits whose pages come from `alloc`.
pub fn guest_stage2(
    alloc: &mut impl PageAlloc,
    ipa_bits: u32,
    mem_base: u64,
    blocks: &[u64],
) -> Result<PageTable, MapError> {
    let mut pt = PageTable::new(
        alloc,
        Format::Stage2,
        Geometry::for_input_bits(ipa_bits, true)?,
    )?;
    map_blocks(&mut pt, alloc, mem_base, blocks)?;
    Ok(pt)
}

/// Maps `blocks` at consecutive 2 MiB IPAs from `ipa` (normal cacheable).
pub fn map_blocks(
    pt: &mut PageTable,
    alloc: &mut impl PageAlloc,
    ipa: u64,
    blocks: &[u64],
) -> Result<(), MapError> {
    // 2 MiB steps keep every mapping a single block entry, which `unmap_blocks` relies on.
    if !ipa.is_multiple_of(MEM_ALIGN) || blocks.iter().any(|b| !b.is_multiple_of(MEM_ALIGN)) {
        return Err(MapError::Unaligned);
    }
    let mut at = ipa;
    for &b in blocks {
        pt.map(alloc, at, b, MEM_ALIGN, MemKind::Normal)?;
        at = at.checked_add(MEM_ALIGN).ok_or(MapError::OutOfRange)?;
    }
    Ok(())
}

/// Removes the 2 MiB block entries mapping `[ipa, ipa + count * 2 MiB)` (as [`map_blocks`] made
/// them); returns how many were mapped. Table pages stay for the next mapping of the range.
/// The caller invalidates the TLB (`TLBI IPAS2E1IS` per block, or `VMALLS12E1IS`) afterwards.
pub fn unmap_blocks(pt: &PageTable, alloc: &mut impl PageAlloc, ipa: u64, count: u64) -> u64 {
    let g = pt.geometry();
    let mut cleared = 0;
    for i in 0..count {
        let Some(va) = ipa.checked_add(i * MEM_ALIGN) else {
            break;
        };
        if va >= 1u64 << g.input_bits {
            break;
        }
        let mut table = pt.root();
        let mut level = g.start_level;
        let mut entries = 1usize << (g.input_bits - shift(level));
        loop {
            let index = ((va >> shift(level)) as usize) & (entries - 1);
            let page = table + (index / ENTRIES) as u64 * PAGE_SIZE;
            let slot = &mut alloc.table(page)[index % ENTRIES];
            if *slot & DESC_VALID == 0 {
                break;
            }
            if level == BLOCK_LEVEL {
                if *slot & DESC_TYPE_MASK == DESC_BLOCK {
                    *slot = 0;
                    cleared += 1;
                }
                break;
            }
            if *slot & DESC_TYPE_MASK != DESC_TABLE {
                // A bigger block: not something map_blocks made.
                break;
            }
            table = *slot & ADDR_MASK;
            level += 1;
            entries = ENTRIES;
        }
    }
    cleared
}

fn shift(level: u32) -> u32 {
    12 + 9 * (3 - level)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TBASE: u64 = 0x1_4000_0000;

    fn pages(n: usize) -> Vec<[u64; ENTRIES]> {
        vec![[0xdead; ENTRIES]; n]
    }

    #[test]
    fn table_pages_are_zeroed_aligned_and_bounded() {
        let mut mem = pages(8);
        let mut t = TablePages::new(TBASE, &mut mem);
        assert_eq!(t.alloc_zeroed(1), Some(TBASE));
        assert_eq!(
            t.alloc_zeroed(2),
            Some(TBASE + 2 * 4096),
            "aligned to its size"
        );
        assert_eq!(t.table(TBASE + 3 * 4096), &[0; ENTRIES]);
        assert_eq!(t.alloc_zeroed(4), Some(TBASE + 4 * 4096));
        assert_eq!(t.alloc_zeroed(1), None, "full");
        assert_eq!(t.alloc_zeroed(3), None, "not a power of two");
        assert_eq!(t.used(), 8);
    }

    #[test]
    fn a_guest_stage2_maps_each_block_at_its_ipa() {
        let blocks = [0x1_0060_0000, 0x1_0000_0000, 0x1_0ae0_0000];
        let mut mem = pages(512);
        let mut t = TablePages::new(TBASE, &mut mem);
        let pt = guest_stage2(&mut t, 40, 0x8000_0000, &blocks).unwrap();
        assert_eq!(t.used(), 2 + 1, "a concatenated root and one level-2 table");
        for (i, b) in blocks.iter().enumerate() {
            let ipa = 0x8000_0000 + i as u64 * MEM_ALIGN;
            let (pa, desc) = pt.translate(&mut t, ipa + 0x1234).unwrap();
            assert_eq!(pa, b + 0x1234);
            assert_eq!(desc & 0b11, DESC_BLOCK);
            assert_eq!(desc >> 2 & 0xf, 0xf, "normal write-back");
        }
        assert_eq!(pt.translate(&mut t, 0x8000_0000 - 4096), None);
        assert_eq!(pt.translate(&mut t, 0x8000_0000 + 3 * MEM_ALIGN), None);
        assert_eq!(
            guest_stage2(&mut t, 40, 0x8000_1000, &blocks).err(),
            Some(MapError::Unaligned)
        );
    }

    #[test]
    fn too_few_table_pages_is_an_error_not_a_panic() {
        let mut mem = pages(2);
        let mut t = TablePages::new(TBASE, &mut mem);
        let r = guest_stage2(&mut t, 40, 0x8000_0000, &[0x1_0000_0000]);
        assert_eq!(r.err(), Some(MapError::OutOfMemory));
    }

    #[test]
    fn vm0_windows_unmap_and_map_again_without_new_pages() {
        let mut mem = pages(64);
        let mut t = TablePages::new(TBASE, &mut mem);
        let mut vm0 = PageTable::new(
            &mut t,
            Format::Stage2,
            Geometry::for_input_bits(40, true).unwrap(),
        )
        .unwrap();
        // VM0's own RAM, identity mapped, must survive.
        vm0.map(
            &mut t,
            0x4400_0000,
            0x4400_0000,
            0x1c00_0000,
            MemKind::Normal,
        )
        .unwrap();
        let win = 0x2_0000_0000;
        let a = [0x1_0000_0000, 0x1_0020_0000];
        map_blocks(&mut vm0, &mut t, win, &a).unwrap();
        let used = t.used();
        assert_eq!(
            vm0.translate(&mut t, win + MEM_ALIGN + 8).unwrap().0,
            a[1] + 8
        );
        assert_eq!(unmap_blocks(&vm0, &mut t, win, 2), 2);
        assert_eq!(vm0.translate(&mut t, win), None);
        assert_eq!(vm0.translate(&mut t, win + MEM_ALIGN), None);
        assert_eq!(unmap_blocks(&vm0, &mut t, win, 2), 0, "already gone");
        assert_eq!(vm0.translate(&mut t, 0x5000_0000).unwrap().0, 0x5000_0000);
        // Another VM's blocks in the same window reuse the tables.
        let b = [0x1_0400_0000, 0x1_0600_0000, 0x1_0800_0000];
        map_blocks(&mut vm0, &mut t, win, &b).unwrap();
        assert_eq!(t.used(), used);
        assert_eq!(vm0.translate(&mut t, win + 2 * MEM_ALIGN).unwrap().0, b[2]);
        // Mapping over a live block is refused, not silently replaced.
        assert_eq!(
            map_blocks(&mut vm0, &mut t, win, &a),
            Err(MapError::Conflict { va: win })
        );
        // Ranges that are not 2 MiB blocks are left alone.
        assert_eq!(unmap_blocks(&vm0, &mut t, 1 << 40, 1), 0);
        assert_eq!(unmap_blocks(&vm0, &mut t, u64::MAX - 4095, 2), 0);
    }
}
