//! `mkimage bundle`: a complete, bootable SD card image for a board.
//!
//! Partition 1 is FAT32 with everything the boot chain reads (Pi firmware, U-Boot as the
//! firmware's kernel, config.txt, uboot.env, the hypervisor, the DTBs, VM0's kernel and initrd,
//! guest boot images); partition 2, when asked for, is the root filesystem. The card is written
//! by the `sdcard` crate: sparse, reproducible, with a `.bmap` and a `.sha256` beside it.

mod defaults;
mod files;
mod firmware;
mod sizing;

use std::path::PathBuf;

use anyhow::Context;
use sdcard::{CardSpec, Content, Ext4Spec, FatSpec, Partition, MIB};
use sha2::{Digest, Sha256};

use crate::board::Board;

/// Partition starts on 4 MiB boundaries: SD cards erase in 4 MiB units.
const ALIGN: u64 = 4 * MIB;

#[derive(clap::Args)]
#[command(
    long_about = "Build a complete, bootable SD card image for a board: an MBR, a FAT32 \
    boot partition (Pi firmware when available, U-Boot, config.txt, uboot.env whose bootcmd \
    loads the hypervisor, its DTB, VM0's kernel, DTB and initrd, then runs booti) and an optional \
    ext4 root partition. The image is sparse and reproducible (timestamps from \
    SOURCE_DATE_EPOCH, fixed identifiers derived from the inputs), and comes with IMAGE.bmap \
    (for `bmaptool copy`) and IMAGE.sha256 (for `sha256sum -c`). Nothing is left behind when \
    the build fails."
)]
pub struct Args {
    /// Board name (a folder of boards/)
    #[arg(long)]
    board: String,
    /// Output image
    #[arg(short, long)]
    output: PathBuf,
    /// The hypervisor image [default: $MINOS_OUT/minos.bin, else out/minos.bin of the tree]
    #[arg(long)]
    minos: Option<PathBuf>,
    /// The hypervisor's DTB, used as it is [default: built for the board, as `mkimage dtb
    /// --board B --role hyp`]
    #[arg(long)]
    hyp_dtb: Option<PathBuf>,
    /// VM0's DTB, used as it is [default: built for the board, as `mkimage dtb --board B
    /// --role vm0`, with the initrd's location]
    #[arg(long)]
    vm0_dtb: Option<PathBuf>,
    /// Base DTB for boards built on QEMU's machine DTB (qemu-virt): its dump, from
    /// `qemu-system-aarch64 -M ...,dumpdtb=FILE` with the board's QEMU options
    #[arg(long)]
    base_dtb: Option<PathBuf>,
    /// VM0's kernel Image [default: $MINOS_CACHE/kernel/Image, $MINOS_CACHE defaulting to
    /// /var/cache/minos-rs]
    #[arg(long)]
    vm0_kernel: Option<PathBuf>,
    /// VM0's initramfs; the boot command then loads it too
    #[arg(long)]
    vm0_initrd: Option<PathBuf>,
    /// U-Boot binary for boards whose firmware loads it from the card (kernel8.img on a Pi)
    #[arg(long)]
    uboot: Option<PathBuf>,
    /// Folder with the Pi firmware files (bootcode.bin, start.elf, fixup.dat) [default: Debian's
    /// raspi-firmware, /usr/lib/raspi-firmware, if installed or unpacked in $MINOS_CACHE/pkg]
    #[arg(long)]
    firmware: Option<PathBuf>,
    /// Root filesystem: a folder (made into ext4 with mke2fs -d) or a filesystem image
    #[arg(long)]
    rootfs: Option<PathBuf>,
    /// A guest boot.img to put on the boot partition, under its own name (repeatable)
    #[arg(long = "guest", value_name = "BOOT_IMG")]
    guests: Vec<PathBuf>,
    /// Card size, e.g. 1G [default: the smallest power of two that holds everything, as QEMU's
    /// SD card model requires]
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// Boot (FAT32) partition size
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    boot_size: u64,
}

fn parse_size(s: &str) -> Result<u64, String> {
    sdcard::parse_size(s).map_err(|e| e.to_string())
}

/// A fixed seed for every identifier on the card (disk signature, FAT volume id, ext4 UUID):
/// the same inputs give the same card, different inputs give different identifiers.
fn seed(
    board: &Board,
    files: &[sdcard::FatFile],
    rootfs: Option<&PathBuf>,
    epoch: i64,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(board.name.as_bytes());
    h.update(epoch.to_le_bytes());
    for f in files {
        h.update(f.path.as_bytes());
        h.update(f.content.len().unwrap_or(0).to_le_bytes());
    }
    if let Some(r) = rootfs {
        h.update(r.file_name().map(|n| n.as_encoded_bytes()).unwrap_or(b""));
    }
    h.finalize().into()
}

fn epoch() -> anyhow::Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
        // Unset: the FAT epoch (1980-01-01), never the wall clock, so builds stay reproducible.
        Err(_) => Ok(0),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let board = Board::load(&args.board)?;
    let epoch = epoch()?;
    let fw = firmware::find(&board, args.firmware.as_deref())?;
    let boot_files = files::collect(&board, &args, fw.present())?;

    let rootfs = match &args.rootfs {
        None => None,
        Some(p) => Some(sizing::Rootfs::inspect(p)?),
    };
    let layout = sizing::plan(args.size, args.boot_size, rootfs.as_ref())?;

    let seed = seed(&board, &boot_files, args.rootfs.as_ref(), epoch);
    let mut partitions = vec![Partition {
        size: Some(layout.boot),
        bootable: true,
        content: Content::Fat32(FatSpec {
            label: "BOOT".into(),
            volume_id: u32::from_le_bytes(seed[4..8].try_into().unwrap()),
            files: boot_files,
        }),
    }];
    if let Some(r) = &rootfs {
        partitions.push(Partition {
            size: None,
            bootable: false,
            content: match r {
                sizing::Rootfs::Dir { path, .. } => Content::Ext4(Ext4Spec {
                    dir: path.clone(),
                    label: "rootfs".into(),
                    uuid: sdcard::ext4::uuid_from_hash(&seed[8..24]),
                }),
                sizing::Rootfs::Image { path, .. } => Content::Raw {
                    image: path.clone(),
                    kind: sdcard::mbr::TYPE_LINUX,
                },
            },
        });
    }
    let spec = CardSpec {
        size: layout.card,
        align: ALIGN,
        disk_signature: u32::from_le_bytes(seed[..4].try_into().unwrap()),
        epoch,
        partitions,
    };
    let w = sdcard::write(&spec, &args.output)?;

    let on_disk = std::fs::metadata(&w.image)
        .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
        .unwrap_or(0);
    println!(
        "{}: {} MiB card for {} ({} MiB on disk), sha256 {}",
        w.image.display(),
        w.summary.size / MIB,
        board.model,
        on_disk.div_ceil(MIB),
        sdcard::bmap::hex(&w.summary.sha256)
    );
    for (i, p) in w.placements.iter().enumerate() {
        let what = if i == 0 { "FAT32 boot" } else { "rootfs" };
        println!(
            "  partition {}: {what}, {} MiB at {} MiB",
            i + 1,
            p.size / MIB,
            p.start / MIB
        );
    }
    println!("  {} and {}", w.bmap.display(), w.manifest.display());
    if let Some(warning) = fw.warning(&board) {
        eprintln!("mkimage: {warning}");
    }
    Ok(())
}
