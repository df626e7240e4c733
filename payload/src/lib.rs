//! The Minos EL2 hypervisor core.
#![cfg_attr(not(test), no_std)]
pub mod vgic;
