//! `minos.bin`: the hypervisor image. All of it lives in the library (`arch` holds the entry
//! code); on the host this binary is empty so the workspace builds and tests everywhere.
#![cfg_attr(all(target_arch = "aarch64", target_os = "none"), no_std, no_main)]

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
use minos_payload as _;

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
fn main() {}
