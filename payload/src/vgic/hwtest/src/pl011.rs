//! Output on QEMU virt's PL011 (already set up by QEMU).

use core::fmt;

const UART_DR: usize = 0x0900_0000;
const UART_FR: usize = 0x0900_0018;
const FR_TXFF: u32 = 1 << 5;

pub struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // SAFETY: QEMU virt's PL011 registers, identity-mapped (MMU off).
            unsafe {
                while core::ptr::read_volatile(UART_FR as *const u32) & FR_TXFF != 0 {}
                core::ptr::write_volatile(UART_DR as *mut u32, u32::from(b));
            }
        }
        Ok(())
    }
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write;
        let _ = writeln!($crate::pl011::Uart, $($arg)*);
    }};
}
