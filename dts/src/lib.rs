//! Device-tree editing: read a DTB with `fdt`, change it as an owned tree, write it back with
//! `vm-fdt`. Memory reservations, the boot CPU and phandles survive the round trip; a property
//! is never written twice.
//!
//! ```
//! use dts::Tree;
//!
//! // A tree with one CPU; normally `Tree::from_dtb(&std::fs::read("board.dtb")?)`.
//! let mut t = Tree::default();
//! t.root.set_u32("#address-cells", 2);
//! t.root.set_u32("#size-cells", 2);
//! let cpu = t.root.child_or_insert("cpus").child_or_insert("cpu@0");
//! cpu.set_str("device_type", "cpu");
//!
//! t.set_memory(&[(0x4000_0000, 0x1000_0000)])?;
//! t.set_bootargs("console=ttyAMA0")?;
//! t.set_initrd(0x4800_0000, 0x4810_0000)?;
//! let blob = t.to_dtb()?;
//!
//! let back = Tree::from_dtb(&blob)?;
//! assert_eq!(back.node("/memory")?.prop_cells("reg"), Some(vec![0, 0x4000_0000, 0, 0x1000_0000]));
//! assert_eq!(back.node("/chosen")?.prop_str("bootargs"), Some("console=ttyAMA0"));
//! # Ok::<(), dts::DtsError>(())
//! ```

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
