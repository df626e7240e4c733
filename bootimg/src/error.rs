//! Error types of the library: one enum per concern so callers can match on what went wrong.

use thiserror::Error;

/// Why a byte slice is not a usable boot image.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("truncated image: the {what} needs {need} bytes but the file has {have}")]
    Truncated {
        what: &'static str,
        need: u64,
        have: u64,
    },
    #[error("wrong magic: not an Android boot image (expected \"ANDROID!\" at offset 0)")]
    BadMagic,
    #[error("header version {0} is not supported (known: 0 to 4)")]
    UnsupportedVersion(u32),
    #[error(transparent)]
    PageSize(#[from] PageSizeError),
    #[error("kernel size is 0")]
    KernelSizeZero,
    #[error(
        "{what} ({size} bytes at offset {offset}) runs past the end of the file ({file_len} bytes)"
    )]
    PastEnd {
        what: &'static str,
        offset: u64,
        size: u64,
        file_len: u64,
    },
}

/// Why [`crate::image::read_header`] failed.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read the header")]
    Io(#[source] std::io::Error),
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// A page size bootimg refuses, both when reading and when writing an image.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PageSizeError {
    #[error("page size is 0")]
    Zero,
    #[error("page size {0} is not a power of two")]
    NotPowerOfTwo(u32),
    #[error("page size {0} is below the minimum of 2048 (the header must fit in one page)")]
    TooSmall(u32),
}

/// Why an image cannot be assembled from the given header and parts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    #[error(transparent)]
    PageSize(#[from] PageSizeError),
    #[error("kernel is empty")]
    EmptyKernel,
    #[error("{what} is {size} bytes, more than a 32-bit size field can hold")]
    TooLarge { what: &'static str, size: u64 },
    #[error("header version {0} cannot be written (only 0, 1 and 2)")]
    UnsupportedVersion(u32),
    #[error("header version {version} has no room for a {what}")]
    NoRoomFor { version: u32, what: &'static str },
    #[error("the image needs {need} bytes but bootsize is {bootsize} (raise or drop bootsize)")]
    BootsizeTooSmall { need: u64, bootsize: u64 },
}

/// A bad `bootimg.cfg` line or `-c key=value` argument.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{0:?}: bad config entry (expected key = value with key one of bootsize, pagesize, kerneladdr, ramdiskaddr, secondaddr, tagsaddr, name, cmdline)")]
    BadEntry(String),
    #[error("{key}: {value:?} is not a number (decimal, 0x hex or 0 octal, at most 0xffffffff)")]
    BadNumber { key: &'static str, value: String },
    #[error("cmdline length ({0}) is too long (max 511)")]
    CmdlineTooLong(usize),
    // Not a `#[source]`: the inner message is already part of this one-line message.
    #[error("line {line}: {error}")]
    AtLine {
        line: usize,
        error: Box<ConfigError>,
    },
}
