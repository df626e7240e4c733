//! MBR + FAT32 SD card images, partition placement, sparse output.
//!
//! A card is described by a [`CardSpec`] (size, alignment, disk signature, timestamp and up to
//! four partitions: FAT32 built from a file list, ext4 built from a directory, or a ready-made
//! image) and written by [`write`]: sparse, reproducible, with a bmaptool `.bmap` and a
//! `sha256sum` manifest beside it.

pub mod bmap;
mod card;
mod clock;
mod error;
pub mod ext4;
mod ext4_times;
mod extents;
pub mod fat;
pub mod mbr;
mod size;
mod sparse;

pub use card::{plan, write, CardSpec, Content, Partition, Placement, Written, MIB};
pub use clock::FixedClock;
pub use error::{Error, Result};
pub use ext4::Ext4Spec;
pub use fat::{FatFile, FatSpec};
pub use size::{parse_size, SizeError};
