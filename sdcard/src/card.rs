//! A whole card: partition placement, then MBR and partitions written into a temporary file
//! next to the output, which replaces the output only once everything (image, `.bmap`,
//! `.sha256`) is complete. A failed build leaves nothing behind.

use std::fs::{File, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::bmap::{self, Summary};
use crate::clock::FixedClock;
use crate::error::{Error, Result};
use crate::ext4::{self, Ext4Spec};
use crate::fat::{self, FatSpec};
use crate::mbr::{self, Entry, Mbr, SECTOR};
use crate::sparse::SparseFile;

pub const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Fat32(FatSpec),
    Ext4(Ext4Spec),
    /// A ready-made filesystem image copied in as it is, with this MBR type.
    Raw {
        image: PathBuf,
        kind: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Bytes; `None` takes the rest of the card (last partition only).
    pub size: Option<u64>,
    pub bootable: bool,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSpec {
    /// Total image size in bytes.
    pub size: u64,
    /// Partition start alignment in bytes (4 MiB suits SD erase blocks).
    pub align: u64,
    pub disk_signature: u32,
    /// Timestamp for every file and filesystem (`SOURCE_DATE_EPOCH`).
    pub epoch: i64,
    pub partitions: Vec<Partition>,
}

/// Where a partition landed, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub start: u64,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub image: PathBuf,
    pub bmap: PathBuf,
    pub manifest: PathBuf,
    pub placements: Vec<Placement>,
    pub summary: Summary,
}

fn kind(c: &Content) -> u8 {
    match c {
        Content::Fat32(_) => mbr::TYPE_FAT32_LBA,
        Content::Ext4(_) => mbr::TYPE_LINUX,
        Content::Raw { kind, .. } => *kind,
    }
}

/// Places the partitions one after the other, each start aligned to `spec.align`.
pub fn plan(spec: &CardSpec) -> Result<Vec<Placement>> {
    let bad = |m: String| Err(Error::Layout(m));
    if spec.align == 0 || !spec.align.is_multiple_of(SECTOR) {
        return bad(format!("alignment {} is not a multiple of 512", spec.align));
    }
    if !spec.size.is_multiple_of(SECTOR) {
        return bad(format!("card size {} is not a multiple of 512", spec.size));
    }
    if spec.partitions.is_empty() || spec.partitions.len() > 4 {
        return bad(format!(
            "{} partitions (an MBR holds 1 to 4)",
            spec.partitions.len()
        ));
    }
    let mut out = Vec::new();
    let mut pos = spec.align;
    let n = spec.partitions.len();
    for (i, p) in spec.partitions.iter().enumerate() {
        let no = i + 1;
        let size = match p.size {
            Some(s) => s,
            None if i + 1 == n => spec.size.saturating_sub(pos),
            None => {
                return bad(format!(
                    "partition {no}: only the last one may fill the card"
                ))
            }
        };
        if size == 0 || !size.is_multiple_of(SECTOR) {
            return bad(format!(
                "partition {no}: size {size} is not a positive multiple of 512"
            ));
        }
        if pos + size > spec.size {
            return Err(Error::DoesNotFit {
                what: format!("partition {no}"),
                need: pos + size,
                room: spec.size,
            });
        }
        if (pos + size) / SECTOR > u64::from(u32::MAX) {
            return bad(format!(
                "partition {no} ends past the 2 TiB an MBR can address"
            ));
        }
        out.push(Placement { start: pos, size });
        pos = (pos + size).div_ceil(spec.align) * spec.align;
    }
    Ok(out)
}

fn out_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Output {
        path: path.to_path_buf(),
        source,
    }
}

fn sibling(out: &Path, ext: &str) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

fn temp_in(dir: &Path, out: &Path) -> Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".mkimage-")
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(out_err(out))
}

/// Builds the card into `out`, with `out.bmap` and `out.sha256` beside it.
pub fn write(spec: &CardSpec, out: &Path) -> Result<Written> {
    let placements = plan(spec)?;
    if out.is_dir() {
        return Err(Error::Output {
            path: out.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "is a directory"),
        });
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sdcard.img".into());

    let tmp = temp_in(&dir, out)?;
    let file = tmp.reopen().map_err(out_err(out))?;
    let mut img = SparseFile::new(file, spec.size).map_err(out_err(out))?;

    let table = Mbr {
        disk_signature: spec.disk_signature,
        entries: spec
            .partitions
            .iter()
            .zip(&placements)
            .map(|(p, at)| Entry {
                bootable: p.bootable,
                kind: kind(&p.content),
                start_lba: (at.start / SECTOR) as u32,
                sectors: (at.size / SECTOR) as u32,
            })
            .collect(),
    };
    img.write_at(&table.to_bytes(), 0).map_err(out_err(out))?;

    // fatfs wants a 'static time source; one small leak per card is the price.
    let clock: &'static FixedClock = Box::leak(Box::new(FixedClock::from_unix(spec.epoch)));
    // mke2fs runs in its own process while this one writes the other partitions.
    let mut pending = Vec::new();
    for (p, at) in spec.partitions.iter().zip(&placements) {
        if let Content::Ext4(e) = &p.content {
            pending.push(ext4::start(tmp.path(), at.start, at.size, e, spec.epoch)?);
        }
    }
    for (i, (p, at)) in spec.partitions.iter().zip(&placements).enumerate() {
        match &p.content {
            Content::Fat32(f) => {
                fat::write(i + 1, img.window(at.start, at.size), at.size, f, clock)?
            }
            Content::Ext4(_) => {}
            Content::Raw { image, .. } => copy_raw(&mut img, i + 1, image, *at)?,
        }
    }
    // No fsync: SEEK_DATA sees data still in the page cache, and durability is the caller's
    // choice (`sync`), as for any other tool writing a file.
    let file = img.into_file();
    // While mke2fs runs, hash everything before its first partition.
    let ext4_start = spec
        .partitions
        .iter()
        .zip(&placements)
        .filter(|(p, _)| matches!(p.content, Content::Ext4(_)))
        .map(|(_, at)| at.start)
        .min();
    let summary = std::thread::scope(|s| -> Result<Summary> {
        let file_ref = &file;
        let prefix = ext4_start.map(|end| s.spawn(move || bmap::hash_prefix(file_ref, end)));
        for p in pending {
            p.finish()?;
        }
        let prefix = match prefix {
            Some(h) => Some(
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("hashing thread panicked")))
                    .map_err(out_err(out))?,
            ),
            None => None,
        };
        bmap::summarize_from(&file, prefix).map_err(out_err(out))
    })?;

    let bmap_path = sibling(out, ".bmap");
    let sum_path = sibling(out, ".sha256");
    let mut tbmap = temp_in(&dir, &bmap_path)?;
    tbmap
        .write_all(bmap::render(&summary).as_bytes())
        .map_err(out_err(&bmap_path))?;
    let mut tsum = temp_in(&dir, &sum_path)?;
    tsum.write_all(bmap::manifest(&summary, &name).as_bytes())
        .map_err(out_err(&sum_path))?;

    // Image first: a stale .bmap next to a new image would fail `bmaptool copy` loudly, but a
    // half-set is still avoided by undoing the image if a sidecar cannot be put in place.
    tmp.persist(out).map_err(|e| out_err(out)(e.error))?;
    let undo = |e: tempfile::PersistError| {
        let _ = std::fs::remove_file(out);
        e.error
    };
    tbmap
        .persist(&bmap_path)
        .map_err(|e| out_err(&bmap_path)(undo(e)))?;
    tsum.persist(&sum_path).map_err(|e| {
        let _ = std::fs::remove_file(&bmap_path);
        out_err(&sum_path)(undo(e))
    })?;

    Ok(Written {
        image: out.to_path_buf(),
        bmap: bmap_path,
        manifest: sum_path,
        placements,
        summary,
    })
}

fn copy_raw(img: &mut SparseFile, index: usize, image: &Path, at: Placement) -> Result<()> {
    let ierr = |source| Error::Input {
        path: image.to_path_buf(),
        source,
    };
    let src = File::open(image).map_err(ierr)?;
    let len = src.metadata().map_err(ierr)?.len();
    if len > at.size {
        return Err(Error::DoesNotFit {
            what: format!("{} (partition {index})", image.display()),
            need: len,
            room: at.size,
        });
    }
    img.copy_from(&src, at.start, len).map_err(ierr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fat::{Content as Src, FatFile};

    fn fat_spec() -> FatSpec {
        FatSpec {
            label: "BOOT".into(),
            volume_id: 0x1234_5678,
            files: vec![FatFile {
                path: "config.txt".into(),
                content: Src::Bytes(b"arm_64bit=1\n".to_vec()),
            }],
        }
    }

    fn spec(size: u64, parts: Vec<Partition>) -> CardSpec {
        CardSpec {
            size,
            align: 4 * MIB,
            disk_signature: 0x4f4e_494d,
            epoch: 1_700_000_000,
            partitions: parts,
        }
    }

    #[test]
    fn plan_aligns_and_fills() {
        let s = spec(
            256 * MIB,
            vec![
                Partition {
                    size: Some(64 * MIB + 512),
                    bootable: true,
                    content: Content::Fat32(fat_spec()),
                },
                Partition {
                    size: None,
                    bootable: false,
                    content: Content::Raw {
                        image: "x".into(),
                        kind: 0x83,
                    },
                },
            ],
        );
        let p = plan(&s).unwrap();
        assert_eq!(
            p[0],
            Placement {
                start: 4 * MIB,
                size: 64 * MIB + 512
            }
        );
        assert_eq!(
            p[1],
            Placement {
                start: 72 * MIB,
                size: 184 * MIB
            }
        );
    }

    #[test]
    fn plan_rejects_overflow_and_misplaced_fill() {
        let fat = |size| Partition {
            size,
            bootable: false,
            content: Content::Fat32(fat_spec()),
        };
        assert!(matches!(
            plan(&spec(64 * MIB, vec![fat(Some(64 * MIB))])),
            Err(Error::DoesNotFit { .. })
        ));
        assert!(matches!(
            plan(&spec(256 * MIB, vec![fat(None), fat(Some(64 * MIB))])),
            Err(Error::Layout(_))
        ));
        assert!(matches!(
            plan(&spec(256 * MIB, vec![])),
            Err(Error::Layout(_))
        ));
    }

    #[test]
    fn failed_build_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("card.img");
        let s = spec(
            128 * MIB,
            vec![Partition {
                size: None,
                bootable: true,
                content: Content::Fat32(FatSpec {
                    files: vec![FatFile {
                        path: "missing".into(),
                        content: Src::Path(dir.path().join("nope")),
                    }],
                    ..fat_spec()
                }),
            }],
        );
        assert!(matches!(write(&s, &out), Err(Error::Input { .. })));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn same_inputs_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(
            64 * MIB,
            vec![Partition {
                size: None,
                bootable: true,
                content: Content::Fat32(fat_spec()),
            }],
        );
        let a = write(&s, &dir.path().join("a.img")).unwrap();
        let b = write(&s, &dir.path().join("b.img")).unwrap();
        assert_eq!(a.summary.sha256, b.summary.sha256);
        assert!(a.summary.mapped_blocks() * bmap::BLOCK < 8 * MIB);
        let sum = std::fs::read_to_string(&a.manifest).unwrap();
        assert!(sum.ends_with("  a.img\n"));
    }

    #[test]
    fn ext4_rootfs_is_reproducible_after_its_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), "minos\n").unwrap();
        let s = spec(
            64 * MIB,
            vec![Partition {
                size: None,
                bootable: false,
                content: Content::Ext4(Ext4Spec {
                    dir: root.clone(),
                    label: "rootfs".into(),
                    uuid: crate::ext4::uuid_from_hash(&[7; 16]),
                }),
            }],
        );
        let a = write(&s, &dir.path().join("a.img")).unwrap();
        // Reading moves the source's access time, which mke2fs -d copies.
        std::fs::read(root.join("etc/hostname")).unwrap();
        let b = write(&s, &dir.path().join("b.img")).unwrap();
        assert_eq!(a.summary.sha256, b.summary.sha256);
        // The rewritten inodes keep valid checksums.
        let img = format!("{}?offset={}", a.image.display(), a.placements[0].start);
        let fsck = std::process::Command::new("e2fsck")
            .args(["-fn", &img])
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
    }
}
