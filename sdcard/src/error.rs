use std::io;
use std::path::PathBuf;

/// Everything that can stop a card image from being written. Each variant renders as one line
/// that names the input or partition at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Input {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what} does not fit: needs {need} bytes, {room} available")]
    DoesNotFit { what: String, need: u64, room: u64 },
    #[error(
        "the files do not fit in FAT partition {index}: they need {need} bytes, {room} available"
    )]
    FilesDoNotFit { index: usize, need: u64, room: u64 },
    #[error("partition {index}: {size} bytes is too small for FAT32 (at least {min} bytes)")]
    FatTooSmall { index: usize, size: u64, min: u64 },
    #[error("invalid file name {0:?} for the FAT partition (one name in its root directory, without / \\ : * ? \" < > |)")]
    BadName(String),
    #[error("{0:?} is listed twice in the FAT partition")]
    Duplicate(String),
    #[error("FAT partition: {context}: {source}")]
    Fat {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("mke2fs failed for {dir}: {message}")]
    Mke2fs { dir: PathBuf, message: String },
    #[error("invalid layout: {0}")]
    Layout(String),
}

pub type Result<T> = std::result::Result<T, Error>;
