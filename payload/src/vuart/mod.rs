//! Virtual UARTs for guest VMs: a PL011 register model each ([`pl011`]), a log of what each VM
//! wrote ([`ring`]), and the console multiplexer ([`mux`]) that shares the hypervisor's one
//! console between VMs (Ctrl-A <digit> switches the input focus).

pub mod mux;
pub mod pl011;
pub mod ring;

#[cfg(test)]
mod pl011_tests;
