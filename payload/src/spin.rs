//! A minimal spin lock. Only used with the MMU and caches on (exclusives need Normal memory).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock serialises every access to `value`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: moving the lock moves the value; no thread can hold a guard across the move.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub fn lock(&self) -> SpinGuard<'_, T> {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.locked.load(Ordering::Relaxed) {
                core::hint::spin_loop();
            }
        }
        SpinGuard { lock: self }
    }

    /// The lock if it is free now, without waiting.
    pub fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        // `then`, never `then_some`: a guard built eagerly for a failed attempt would be
        // dropped at once, and its drop releases the lock its holder still owns.
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then(|| SpinGuard { lock: self })
    }
}

pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: holding the guard means holding the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: holding the guard means holding the lock exclusively.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_gives_exclusive_access() {
        let l = SpinLock::new(1);
        *l.lock() += 1;
        assert_eq!(*l.lock(), 2);
        let g = l.lock();
        assert!(l.try_lock().is_none(), "held");
        // A failed attempt leaves the holder's lock alone.
        assert!(l.try_lock().is_none(), "still held after a failed try_lock");
        assert!(l.locked.load(Ordering::Relaxed));
        drop(g);
        assert_eq!(l.try_lock().map(|g| *g), Some(2));
    }
}

/// A value written once (by the boot CPU) and read by every CPU afterwards.
pub struct SetOnce<T> {
    ready: AtomicBool,
    claimed: AtomicBool,
    value: UnsafeCell<core::mem::MaybeUninit<T>>,
}

// SAFETY: the value is written once before `ready` is released and only read after.
unsafe impl<T: Sync + Send> Sync for SetOnce<T> {}

impl<T> SetOnce<T> {
    pub const fn new() -> Self {
        Self {
            ready: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
            value: UnsafeCell::new(core::mem::MaybeUninit::uninit()),
        }
    }

    /// Stores `value`; a second call gives the value back.
    pub fn set(&self, value: T) -> Result<&T, T> {
        if self.claimed.swap(true, Ordering::AcqRel) {
            return Err(value);
        }
        // SAFETY: `claimed` admits exactly one writer, and readers wait for `ready`.
        let v = unsafe { (*self.value.get()).write(value) };
        self.ready.store(true, Ordering::Release);
        Ok(v)
    }

    pub fn get(&self) -> Option<&T> {
        if self.ready.load(Ordering::Acquire) {
            // SAFETY: `ready` is only set after the value was fully written.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }
}

impl<T> Default for SetOnce<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod once_tests {
    use super::*;

    #[test]
    fn set_once_only_once() {
        let s = SetOnce::new();
        assert!(s.get().is_none());
        assert_eq!(*s.set(5).unwrap(), 5);
        assert_eq!(s.set(6), Err(6));
        assert_eq!(s.get(), Some(&5));
    }
}
