//! Android boot images (abootimg-compatible): parser, writer and the bootimg CLI.
//!
//! - [`header`]: header types for v0 to v4 and their `nom` parser.
//! - [`layout`]: page math and where each component sits.
//! - [`image`]: a parsed image borrowing the file's bytes.
//! - [`writer`]: builds v0/v1/v2 images byte-identical to abootimg (and mkbootimg, id aside).
//! - [`config`]: abootimg's `bootimg.cfg` format, reader and writer.
//! - [`id`]: mkbootimg's SHA-1 `id`.
//! - [`info`]: the `bootimg -i` report.

pub mod config;
pub mod error;
pub mod header;
pub mod id;
pub mod image;
pub mod info;
pub mod layout;
pub mod writer;

pub use error::{BuildError, ConfigError, PageSizeError, ParseError, ReadError};
pub use header::{Header, HeaderV3, LegacyHeader};
pub use image::{read_header, BootImage};
pub use layout::{Layout, Section};
pub use writer::{build, IdMode, Parts};
