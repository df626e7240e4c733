//! A hypervisor bug: say where, then park this CPU. Guests cannot reach this path.

use core::fmt::Write;

use super::console::Pl011;

struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        Pl011::write_raw(s);
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = write!(
        Raw,
        "\n[minos] PANIC on cpu{}: {}\n",
        super::regs::cpu_index(),
        info
    );
    loop {
        super::regs::wfe();
    }
}
