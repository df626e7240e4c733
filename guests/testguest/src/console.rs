//! Polled PL011 output. The secondary vCPU prints too, so lines are serialised by a spin lock.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::mmio;

/// QEMU virt's PL011 until the DTB names another one.
static BASE: AtomicUsize = AtomicUsize::new(0x0900_0000);
static LOCK: AtomicBool = AtomicBool::new(false);

const DR: usize = 0x00;
const FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;

pub fn set_base(base: usize) {
    BASE.store(base, Ordering::SeqCst);
}

struct Pl011(usize);

impl Write for Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
        Ok(())
    }
}

impl Pl011 {
    fn put(&self, b: u8) {
        // SAFETY: the base is the PL011 from the DTB (or QEMU virt's), mapped as Device memory.
        unsafe {
            while mmio::read32(self.0 + FR) & FR_TXFF != 0 {}
            mmio::write32(self.0 + DR, u32::from(b));
        }
    }
}

/// Prints one line atomically with respect to the other vCPU.
pub fn line(args: fmt::Arguments) {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    let mut u = Pl011(BASE.load(Ordering::SeqCst));
    let _ = u.write_fmt(args);
    let _ = u.write_str("\n");
    LOCK.store(false, Ordering::Release);
}

/// Prints without taking the lock: for the fatal path, which may interrupt a holder.
pub fn line_unlocked(args: fmt::Arguments) {
    let mut u = Pl011(BASE.load(Ordering::SeqCst));
    let _ = u.write_fmt(args);
    let _ = u.write_str("\n");
}

macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::line(format_args!($($arg)*))
    };
}
pub(crate) use println;
