//! The Minos EL2 hypervisor.
//!
//! The core (device-tree reading, VM configuration, stage-2 and EL2 table building, PSCI
//! emulation, trap decoding) is plain Rust tested on the host; `arch` holds the AArch64 code
//! that only builds for `aarch64-unknown-none`.
#![cfg_attr(not(test), no_std)]

pub mod board;
pub mod esr;
pub mod fdt_edit;
pub mod fixed;
pub mod image;
pub mod inject;
pub mod log;
pub mod pagetable;
pub mod psci;
pub mod sched;
pub mod spin;
pub mod vm;
pub mod vmdtb;
pub mod vuart;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod arch;

/// The version printed in the banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub mod vgic;
pub mod virtio_mmio;
pub mod vmm;
