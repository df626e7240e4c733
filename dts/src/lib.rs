//! Device-tree editing: read a DTB with `fdt`, change it as an owned tree, write it back with
//! `vm-fdt`. Memory reservations, the boot CPU and phandles survive the round trip; a property
//! is never written twice.

mod cpus;
pub mod dtc;
mod edit;
mod error;
mod guest;
mod read;
mod tree;
mod vms;
mod write;

pub use error::DtsError;
pub use tree::{Node, Property, Tree};
pub use vms::VmSpec;
