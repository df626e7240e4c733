//! The hypervisor's page pool: a bump allocator over identity-mapped RAM it owns. Nothing is
//! freed yet (VM0's tables live forever).

use crate::pagetable::{PageAlloc, PAGE_SIZE};

pub struct Pool {
    next: u64,
    end: u64,
}

impl Pool {
    /// # Safety
    /// `[start, end)` must be RAM owned by the hypervisor, identity mapped, used for nothing
    /// else.
    pub const unsafe fn new(start: u64, end: u64) -> Self {
        Self { next: start, end }
    }

    pub fn remaining(&self) -> u64 {
        self.end.saturating_sub(self.next)
    }
}

impl PageAlloc for Pool {
    fn alloc_zeroed(&mut self, count: usize) -> Option<u64> {
        let size = count as u64 * PAGE_SIZE;
        let pa = self.next.checked_next_multiple_of(size)?;
        if pa.checked_add(size)? > self.end {
            return None;
        }
        self.next = pa + size;
        // SAFETY: the range is inside the pool the constructor's caller handed us and was never
        // given out before.
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0, size as usize) };
        Some(pa)
    }

    fn table(&mut self, pa: u64) -> &mut [u64; 512] {
        // SAFETY: `pa` is a page this pool handed out (the page-table code only follows
        // descriptors it wrote), identity mapped and 4 KiB aligned.
        unsafe { &mut *(pa as *mut [u64; 512]) }
    }
}
