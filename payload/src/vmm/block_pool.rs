//! The guest-RAM pool: 2 MiB blocks of physical RAM that belong to neither the hypervisor nor
//! VM0, handed out one at a time ([`Platform::alloc_block`](super::Platform::alloc_block)) and
//! taken back on `VM_DESTROY`. Pure bookkeeping (the caller zeroes a block before a guest sees
//! it), so it is tested on the host.

extern crate alloc;

use alloc::vec::Vec;
use core::ops::Range;

use minos_abi::MEM_ALIGN;

use super::platform::overlaps;

/// A block given back that the pool never handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// Not a block of this pool (outside it, misaligned, or excluded as reserved).
    NotOurs(u64),
    /// Already free.
    DoubleFree(u64),
}

impl core::fmt::Display for FreeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FreeError::NotOurs(pa) => write!(f, "block {pa:#x} is not part of the guest pool"),
            FreeError::DoubleFree(pa) => write!(f, "block {pa:#x} freed twice"),
        }
    }
}

/// Bit sets over the blocks from `base`: which exist (inside RAM, clear of every reserved
/// range) and which are handed out.
pub struct BlockPool {
    base: u64,
    usable: Vec<u64>,
    used: Vec<u64>,
    count: usize,
    total: u64,
    free: u64,
}

fn bit(set: &[u64], i: usize) -> bool {
    set[i / 64] >> (i % 64) & 1 != 0
}

fn flip(set: &mut [u64], i: usize) {
    set[i / 64] ^= 1 << (i % 64);
}

impl BlockPool {
    /// Every whole 2 MiB-aligned block of `ram` (the board's RAM banks) that overlaps none of
    /// `reserved` (the hypervisor's image, heap and page pool, VM0's RAM, the DTB, any
    /// firmware carve-out).
    pub fn carve(ram: &[Range<u64>], reserved: &[Range<u64>]) -> Self {
        let first = ram
            .iter()
            .filter_map(|r| r.start.checked_next_multiple_of(MEM_ALIGN))
            .min()
            .unwrap_or(0);
        let last = ram.iter().map(|r| r.end).max().unwrap_or(0);
        let count = (last.saturating_sub(first) / MEM_ALIGN) as usize;
        let words = count.div_ceil(64);
        let mut pool = BlockPool {
            base: first,
            usable: alloc::vec![0; words],
            used: alloc::vec![0; words],
            count,
            total: 0,
            free: 0,
        };
        for i in 0..count {
            let start = first + i as u64 * MEM_ALIGN;
            let block = start..start + MEM_ALIGN;
            let in_ram = ram
                .iter()
                .any(|r| r.start <= block.start && block.end <= r.end);
            if in_ram && !reserved.iter().any(|r| overlaps(r, &block)) {
                flip(&mut pool.usable, i);
                pool.total += MEM_ALIGN;
            }
        }
        pool.free = pool.total;
        pool
    }

    /// Bytes of the pool in total.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes not handed out.
    pub fn free(&self) -> u64 {
        self.free
    }

    /// The lowest free block (its physical address).
    pub fn alloc(&mut self) -> Option<u64> {
        let i = (0..self.count).find(|&i| bit(&self.usable, i) && !bit(&self.used, i))?;
        flip(&mut self.used, i);
        self.free -= MEM_ALIGN;
        Some(self.base + i as u64 * MEM_ALIGN)
    }

    /// Takes a block back.
    pub fn release(&mut self, pa: u64) -> Result<(), FreeError> {
        let off = pa.checked_sub(self.base).ok_or(FreeError::NotOurs(pa))?;
        let i = (off / MEM_ALIGN) as usize;
        if !off.is_multiple_of(MEM_ALIGN) || i >= self.count || !bit(&self.usable, i) {
            return Err(FreeError::NotOurs(pa));
        }
        if !bit(&self.used, i) {
            return Err(FreeError::DoubleFree(pa));
        }
        flip(&mut self.used, i);
        self.free += MEM_ALIGN;
        Ok(())
    }
}

#[cfg(test)]
// One-element lists of RAM banks or reserved ranges are what these tests mean.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    const M: u64 = MEM_ALIGN;

    #[test]
    fn carves_whole_blocks_outside_reserved_memory() {
        // RAM 0x4000_0000..0x6000_0000 plus a second bank; hypervisor at 0x4020_0000 (18 MiB),
        // VM0 at 0x4400_0000..0x5c00_0000.
        let ram = [0x4000_0000..0x6000_0000, 0x1_0000_0000..0x1_0040_1000];
        let reserved = [0x4020_0000..0x4140_0000, 0x4400_0000..0x5c00_0000];
        let mut p = BlockPool::carve(&ram, &reserved);
        let mut got = Vec::new();
        while let Some(b) = p.alloc() {
            got.push(b);
        }
        let mut want = vec![0x4000_0000];
        want.extend((0x4140_0000..0x4400_0000).step_by(M as usize));
        want.extend((0x5c00_0000..0x6000_0000).step_by(M as usize));
        want.extend([0x1_0000_0000, 0x1_0020_0000]);
        assert_eq!(got, want);
        assert_eq!(p.total(), want.len() as u64 * M);
        assert_eq!(p.free(), 0);
        for b in &got {
            let r = *b..*b + M;
            assert!(!reserved.iter().any(|x| overlaps(x, &r)));
        }
    }

    #[test]
    fn unaligned_ram_edges_are_left_out() {
        let p = BlockPool::carve(&[0x4010_0000..0x4090_0000], &[]);
        assert_eq!(p.total(), 3 * M, "0x4020_0000..0x4080_0000");
        let empty = BlockPool::carve(&[], &[]);
        assert_eq!(empty.total(), 0);
    }

    #[test]
    fn release_checks_what_comes_back() {
        let mut p = BlockPool::carve(&[0x4000_0000..0x4080_0000], &[0x4020_0000..0x4020_1000]);
        assert_eq!(p.total(), 3 * M);
        let a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        assert_eq!((a, b), (0x4000_0000, 0x4040_0000));
        assert_eq!(p.free(), M);
        assert_eq!(p.release(a + 4096), Err(FreeError::NotOurs(a + 4096)));
        assert_eq!(p.release(0x4020_0000), Err(FreeError::NotOurs(0x4020_0000)));
        assert_eq!(p.release(0x3fe0_0000), Err(FreeError::NotOurs(0x3fe0_0000)));
        assert_eq!(p.release(0x4080_0000), Err(FreeError::NotOurs(0x4080_0000)));
        assert_eq!(
            p.release(0x4060_0000),
            Err(FreeError::DoubleFree(0x4060_0000))
        );
        assert_eq!(p.release(a), Ok(()));
        assert_eq!(p.release(a), Err(FreeError::DoubleFree(a)));
        assert_eq!(p.alloc(), Some(a), "lowest first");
        assert_eq!(p.release(b), Ok(()));
        assert_eq!(p.free(), 2 * M);
    }
}
