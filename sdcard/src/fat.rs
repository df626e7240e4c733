//! A FAT32 partition filled with a fixed list of files, through `fatfs`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use fatfs::{FatType, FileSystem, FormatVolumeOptions, FsOptions};

use crate::clock::FixedClock;
use crate::error::{Error, Result};
use crate::sparse::Window;

/// FAT32 needs at least this many clusters (Microsoft's FAT specification).
const FAT32_MIN_CLUSTERS: u64 = 65_525;
/// Reserved sectors fatfs puts before the FATs (32 x 512 bytes) plus slack for rounding.
const OVERHEAD: u64 = 64 * 1024;

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

impl Content {
    pub fn len(&self) -> Result<u64> {
        match self {
            Content::Bytes(b) => Ok(b.len() as u64),
            Content::Path(p) => {
                std::fs::metadata(p)
                    .map(|m| m.len())
                    .map_err(|source| Error::Input {
                        path: p.clone(),
                        source,
                    })
            }
        }
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// One file of the FAT partition's root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatFile {
    pub path: String,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatSpec {
    /// Up to 11 characters; stored upper-case.
    pub label: String,
    pub volume_id: u32,
    pub files: Vec<FatFile>,
}

/// The largest cluster (fewer, bigger writes) that still leaves FAT32's minimum cluster count.
pub fn cluster_size(size: u64) -> Option<u32> {
    let usable = size.checked_sub(OVERHEAD)?;
    // Each cluster also costs 4 bytes in each of the two FATs.
    (9..=15)
        .rev()
        .map(|shift| 1u64 << shift)
        .find(|&c| usable / (c + 8) >= FAT32_MIN_CLUSTERS + 16)
        .map(|c| c as u32)
}

/// Smallest FAT32 partition we can format.
pub fn min_size() -> u64 {
    OVERHEAD + (FAT32_MIN_CLUSTERS + 16) * (512 + 8) + 512
}

/// Files live in the root directory only: fatfs 0.3 writes LFN entries for `.` and `..` in
/// new directories, which fsck.fat rejects, so sub-directories are refused rather than broken.
fn check_name(path: &str) -> Result<()> {
    let bad = path.is_empty()
        || path == "."
        || path == ".."
        || path.len() > 255
        || path
            .chars()
            .any(|ch| ch.is_control() || "/\\:*?\"<>|".contains(ch));
    if bad {
        return Err(Error::BadName(path.to_string()));
    }
    Ok(())
}

fn volume_label(label: &str) -> Result<[u8; 11]> {
    let up = label.to_ascii_uppercase();
    if up.len() > 11
        || !up
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::BadName(label.to_string()));
    }
    let mut l = [b' '; 11];
    l[..up.len()].copy_from_slice(up.as_bytes());
    Ok(l)
}

fn fat_err(context: impl Into<String>) -> impl Fn(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Fat {
        context: context.clone(),
        source,
    }
}

/// Formats `disk` (one partition) as FAT32 and writes `spec`'s files in order.
pub(crate) fn write(
    index: usize,
    mut disk: Window<'_>,
    size: u64,
    spec: &FatSpec,
    clock: &'static FixedClock,
) -> Result<()> {
    let cluster = cluster_size(size).ok_or(Error::FatTooSmall {
        index,
        size,
        min: min_size(),
    })?;
    let label = volume_label(&spec.label)?;

    // Validate names and sizes before touching the disk: errors name the culprit.
    let mut seen = BTreeSet::new();
    // The root directory: 32 bytes per entry, up to three entries per file with long names.
    let mut need_clusters = (spec.files.len() as u64 * 96 + 64).div_ceil(u64::from(cluster));
    for f in &spec.files {
        check_name(&f.path)?;
        if !seen.insert(f.path.to_ascii_lowercase()) {
            return Err(Error::Duplicate(f.path.clone()));
        }
        need_clusters += f.content.len()?.div_ceil(u64::from(cluster));
    }

    fatfs::format_volume(
        &mut disk,
        FormatVolumeOptions::new()
            .fat_type(FatType::Fat32)
            .bytes_per_cluster(cluster)
            .volume_id(spec.volume_id)
            .volume_label(label),
    )
    .map_err(fat_err("format"))?;

    let fs = FileSystem::new(
        &mut disk,
        FsOptions::new()
            .time_provider(clock)
            .update_accessed_date(false),
    )
    .map_err(fat_err("mount"))?;
    // Counting free clusters now lets fatfs keep FSInfo exact, which fsck.fat checks.
    let stats = fs.stats().map_err(fat_err("free space"))?;
    let room = u64::from(stats.free_clusters()) * u64::from(cluster);
    let need = need_clusters * u64::from(cluster);
    if need > room {
        return Err(Error::FilesDoNotFit { index, need, room });
    }

    let root = fs.root_dir();
    let mut buf = vec![0u8; 1 << 20];
    for f in &spec.files {
        let mut out = root
            .create_file(&f.path)
            .map_err(fat_err(format!("create {}", f.path)))?;
        out.truncate()
            .map_err(fat_err(format!("create {}", f.path)))?;
        let werr = fat_err(format!("write {}", f.path));
        match &f.content {
            Content::Bytes(b) => out.write_all(b).map_err(werr)?,
            Content::Path(p) => {
                let ierr = |source| Error::Input {
                    path: p.clone(),
                    source,
                };
                let mut src = File::open(p).map_err(ierr)?;
                loop {
                    let n = src.read(&mut buf).map_err(ierr)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n]).map_err(&werr)?;
                }
            }
        }
        out.flush().map_err(fat_err(format!("flush {}", f.path)))?;
    }
    drop(root);
    fs.unmount().map_err(fat_err("unmount"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_size_keeps_fat32_legal() {
        assert_eq!(cluster_size(32 << 20), None);
        assert_eq!(cluster_size(64 << 20), Some(512));
        assert_eq!(cluster_size(256 << 20), Some(2048));
        assert_eq!(cluster_size(512 << 20), Some(4096));
        assert_eq!(cluster_size(64 << 30), Some(32768));
        let m = min_size();
        assert_eq!(cluster_size(m), Some(512));
        assert_eq!(cluster_size(m - 1024), None);
    }

    #[test]
    fn names() {
        assert!(check_name("config.txt").is_ok());
        assert!(check_name("a long name.dtb").is_ok());
        for bad in ["", ".", "..", "a/b", "/x", "a:b", "c\u{1}"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(&volume_label("boot").unwrap(), b"BOOT       ");
        assert!(volume_label("twelve_chars").is_err());
        assert!(volume_label("a b").is_err());
    }
}
