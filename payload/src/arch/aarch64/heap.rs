//! The hypervisor heap (for per-VM state such as the vGIC's interrupt tables): a first-fit
//! allocator over a slice of the pool, behind the crate's spin lock.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use linked_list_allocator::Heap;

use crate::spin::SpinLock;

struct Global(SpinLock<Heap>);

#[global_allocator]
static HEAP: Global = Global(SpinLock::new(Heap::empty()));

/// # Safety
/// `[start, start + size)` must be identity-mapped RAM owned by the hypervisor and used for
/// nothing else; call once, before anything allocates.
pub unsafe fn init(start: u64, size: u64) {
    // SAFETY: forwarded from the caller.
    unsafe { HEAP.0.lock().init(start as *mut u8, size as usize) };
}

pub fn free_bytes() -> usize {
    HEAP.0.lock().free()
}

// SAFETY: allocation and release go through the locked first-fit heap, which never hands out
// overlapping blocks.
unsafe impl GlobalAlloc for Global {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: `ptr` came from `alloc` with the same layout (GlobalAlloc contract).
            unsafe { self.0.lock().deallocate(p, layout) };
        }
    }
}
