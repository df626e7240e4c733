//! Architecture-specific code. Only AArch64 EL2 exists today.
pub mod aarch64;
