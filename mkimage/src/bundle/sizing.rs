//! How big the card and its partitions are.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sdcard::MIB;

use super::ALIGN;

/// The root filesystem as given on the command line.
pub enum Rootfs {
    Dir { path: PathBuf, bytes: u64 },
    Image { path: PathBuf, bytes: u64 },
}

/// Bytes of regular files under `dir` (symlinks not followed).
fn tree_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let e = e.with_context(|| format!("cannot read {}", d.display()))?;
            let m = e
                .path()
                .symlink_metadata()
                .with_context(|| format!("cannot stat {}", e.path().display()))?;
            if m.is_dir() {
                stack.push(e.path());
            } else {
                // Every inode costs at least a block.
                total += m.len().max(4096);
            }
        }
    }
    Ok(total)
}

impl Rootfs {
    pub fn inspect(path: &Path) -> anyhow::Result<Rootfs> {
        let m = std::fs::metadata(path)
            .with_context(|| format!("missing input {} (--rootfs)", path.display()))?;
        if m.is_dir() {
            Ok(Rootfs::Dir {
                path: path.to_path_buf(),
                bytes: tree_bytes(path)?,
            })
        } else if m.is_file() {
            Ok(Rootfs::Image {
                path: path.to_path_buf(),
                bytes: m.len(),
            })
        } else {
            bail!(
                "{}: --rootfs takes a folder or a filesystem image",
                path.display()
            )
        }
    }

    /// The smallest partition that holds it: an image as it is, a folder with room for ext4's
    /// journal, inode tables and directories.
    fn need(&self) -> u64 {
        match self {
            Rootfs::Image { bytes, .. } => *bytes,
            Rootfs::Dir { bytes, .. } => bytes + bytes / 4 + 64 * MIB,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    pub card: u64,
    pub boot: u64,
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// The card: `size` if given (it must hold everything), else the smallest power of two that
/// does, since QEMU's SD card model only accepts those.
pub fn plan(size: Option<u64>, boot: u64, rootfs: Option<&Rootfs>) -> anyhow::Result<Layout> {
    let boot = round_up(boot, ALIGN);
    let need = ALIGN + boot + rootfs.map_or(0, |r| round_up(r.need(), ALIGN));
    let card = match size {
        Some(s) if s % 512 != 0 => bail!("--size {s} is not a multiple of 512 bytes"),
        Some(s) if s < need => bail!(
            "the card does not fit in --size {s}: it needs at least {need} bytes ({} MiB)",
            need.div_ceil(MIB)
        ),
        Some(s) => s,
        None => need.next_power_of_two(),
    };
    Ok(Layout { card, boot })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_a_power_of_two() {
        let l = plan(None, 256 * MIB, None).unwrap();
        assert_eq!(
            l,
            Layout {
                card: 512 * MIB,
                boot: 256 * MIB
            }
        );
        let img = Rootfs::Image {
            path: "r".into(),
            bytes: 300 * MIB,
        };
        assert_eq!(plan(None, 250 * MIB, Some(&img)).unwrap().card, 1024 * MIB);
    }

    #[test]
    fn explicit_size_must_hold_everything() {
        let img = Rootfs::Image {
            path: "r".into(),
            bytes: 300 * MIB,
        };
        assert!(plan(Some(512 * MIB), 256 * MIB, Some(&img)).is_err());
        assert!(plan(Some(1000), 256 * MIB, None).is_err());
        assert_eq!(
            plan(Some(600 * MIB), 256 * MIB, Some(&img)).unwrap().card,
            600 * MIB
        );
    }
}
