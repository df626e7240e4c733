//! AArch64 EL2: entry, MMU, traps, PSCI firmware calls, console and the boot sequence.

core::arch::global_asm!(include_str!("head.S"), options(raw));

#[macro_use]
pub mod regs;
pub mod boot;
pub mod console;
pub mod context;
pub mod gic;
pub mod guest_uart;
pub mod heap;
pub mod panic;
pub mod pcpu;
pub mod platform;
pub mod pool;
pub mod trap;
pub mod virq;
