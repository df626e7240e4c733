//! The PL011 UART as a polled, output-only console.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::log::Sink;

const DR: u64 = 0x00;
const FR: u64 = 0x18;
const IMSC: u64 = 0x38;
const ICR: u64 = 0x44;
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
/// Receive and receive-timeout interrupts.
const INT_RX: u32 = (1 << 4) | (1 << 6);

static BASE: AtomicU64 = AtomicU64::new(0);

pub struct Pl011;

pub static CONSOLE: Pl011 = Pl011;

impl Pl011 {
    /// Uses the UART at `base` (mapped as Device memory).
    pub fn init(base: u64) {
        BASE.store(base, Ordering::Release);
    }

    fn putc(base: u64, c: u8) {
        // SAFETY: `base` is the UART named by the DT and mapped Device-nGnRE at EL2; FR and
        // DR are 32-bit registers of the PL011.
        unsafe {
            while core::ptr::read_volatile((base + FR) as *const u32) & FR_TXFF != 0 {
                core::hint::spin_loop();
            }
            core::ptr::write_volatile((base + DR) as *mut u32, u32::from(c));
        }
    }

    /// Writes without any lock: for the panic path.
    pub fn write_raw(s: &str) {
        let base = BASE.load(Ordering::Acquire);
        if base == 0 {
            return;
        }
        for c in s.bytes() {
            if c == b'\n' {
                Self::putc(base, b'\r');
            }
            Self::putc(base, c);
        }
    }
}

impl Pl011 {
    /// Writes guest bytes exactly as the guest sent them (its own `\r\n`), without any lock.
    pub fn write_bytes(b: &[u8]) {
        let base = BASE.load(Ordering::Acquire);
        if base == 0 {
            return;
        }
        for &c in b {
            Self::putc(base, c);
        }
    }
}

impl Sink for Pl011 {
    fn write_str(&self, s: &str) {
        Self::write_raw(s);
    }
}

/// Input, once the hypervisor owns the console (see [`super::guest_uart`]).
impl Pl011 {
    fn reg(off: u64) -> Option<*mut u32> {
        let base = BASE.load(Ordering::Acquire);
        (base != 0).then_some((base + off) as *mut u32)
    }

    /// Interrupts on received bytes.
    pub fn enable_rx_irq() {
        if let Some(r) = Self::reg(IMSC) {
            // SAFETY: the console UART's IMSC, mapped Device at EL2 (see `putc`).
            unsafe { core::ptr::write_volatile(r, INT_RX) };
        }
    }

    /// The next received byte, if any.
    pub fn read_byte() -> Option<u8> {
        let (fr, dr) = (Self::reg(FR)?, Self::reg(DR)?);
        // SAFETY: as in `enable_rx_irq`; reading DR pops the receive FIFO, which only the
        // hypervisor drains once it owns the console.
        unsafe {
            if core::ptr::read_volatile(fr) & FR_RXFE != 0 {
                return None;
            }
            Some(core::ptr::read_volatile(dr) as u8)
        }
    }

    /// Clears the receive interrupts; call before draining the FIFO, so a byte that arrives
    /// meanwhile raises them again.
    pub fn ack_rx_irq() {
        if let Some(r) = Self::reg(ICR) {
            // SAFETY: as in `enable_rx_irq`.
            unsafe { core::ptr::write_volatile(r, INT_RX) };
        }
    }
}
