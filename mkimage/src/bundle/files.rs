//! The boot partition's file list, in a fixed order so the card is reproducible.

use std::path::PathBuf;

use anyhow::{bail, Context};
use sdcard::fat::Content;
use sdcard::FatFile;

use super::firmware::Firmware;
use super::{defaults, Args};
use crate::board::{Board, EnvStore, Item};
use crate::dtb::for_board::{self, Role};
use crate::env::{build_from_entries, EnvOptions};

/// An input file that must exist; the error names the option that sets it.
fn input(path: PathBuf, option: &str) -> anyhow::Result<Content> {
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(Content::Path(path)),
        Ok(_) => bail!("{}: not a regular file ({option})", path.display()),
        Err(e) => bail!("missing input {} ({option}): {e}", path.display()),
    }
}

fn file(path: &str, content: Content) -> FatFile {
    FatFile {
        path: path.to_string(),
        content,
    }
}

/// A DTB: the file given, else built for the board by `mkimage dtb`'s builder from `base`
/// (QEMU's dump) or the board's upstream DTB.
fn dtb(
    board: &Board,
    role: Role,
    given: Option<&PathBuf>,
    base: Option<&[u8]>,
    initrd: Option<(u64, u64)>,
) -> anyhow::Result<Content> {
    let option = match role {
        Role::Hyp => "--hyp-dtb",
        Role::Vm0 => "--vm0-dtb",
    };
    if let Some(p) = given {
        return input(p.clone(), option);
    }
    let mut tree = for_board::build(board, role, base, initrd)
        .with_context(|| format!("building the {} DTB (or give {option})", board.name))?;
    if let (Role::Hyp, Some((start, end))) = (role, initrd) {
        // What `booti ADDR INITRD:SIZE DTB` would write: the board's boot command passes no
        // initrd to booti, and the hypervisor hands VM0 the one its own /chosen names.
        tree.set_initrd(start, end)?;
    }
    Ok(Content::Bytes(tree.to_dtb()?))
}

pub fn collect(board: &Board, args: &Args, fw: Option<&Firmware>) -> anyhow::Result<Vec<FatFile>> {
    let mut out = Vec::new();
    if let Some(fw) = fw {
        for f in &fw.files {
            out.push(file(f, input(fw.dir.join(f), "--firmware")?));
        }
    }
    match (&board.files.uboot, &args.uboot) {
        (Some(name), Some(p)) => out.push(file(name, input(p.clone(), "--uboot")?)),
        (Some(name), None) => bail!(
            "board `{}` starts U-Boot from the card as {name}: give --uboot (Debian's u-boot-rpi \
             has it as /usr/lib/u-boot/rpi_3/u-boot.bin)",
            board.name
        ),
        (None, Some(_)) => bail!(
            "board `{}` does not load U-Boot from the card: drop --uboot",
            board.name
        ),
        (None, None) => {}
    }
    if board.rpi.is_some() {
        let text = crate::config::render(board, &[] as &[&str])?;
        out.push(file("config.txt", Content::Bytes(text.into_bytes())));
    }

    let with_initrd = args.vm0_initrd.is_some();
    let base = match &args.base_dtb {
        Some(p) => Some(
            std::fs::read(p)
                .with_context(|| format!("missing input {} (--base-dtb)", p.display()))?,
        ),
        None => None,
    };
    // VM0's DTB names its initrd where U-Boot loads it.
    let initrd = match (&args.vm0_initrd, board.load_of(Item::Vm0Initrd)) {
        (Some(p), Some(load)) => {
            let len = std::fs::metadata(p)
                .with_context(|| format!("missing input {} (--vm0-initrd)", p.display()))?
                .len();
            Some((load.addr, load.addr + len))
        }
        (Some(_), None) => bail!(
            "board `{}` loads no VM0 initrd: drop --vm0-initrd",
            board.name
        ),
        _ => None,
    };
    let ub = board.uboot()?;
    if ub.env_store == EnvStore::Fat {
        let name = ub
            .env_file
            .as_deref()
            .context("board keeps its environment on FAT but names no env_file")?;
        let env = build_from_entries(
            &board.env_lines(with_initrd)?,
            &EnvOptions::for_board(board)?,
        )
        .with_context(|| format!("{name} for board `{}`", board.name))?;
        out.push(file(name, Content::Bytes(env)));
    }

    for item in Item::ALL {
        let content = match item {
            Item::Minos => input(
                args.minos.clone().unwrap_or_else(defaults::minos),
                "--minos",
            )?,
            Item::HypDtb => dtb(
                board,
                Role::Hyp,
                args.hyp_dtb.as_ref(),
                base.as_deref(),
                initrd,
            )?,
            Item::Vm0Dtb => dtb(
                board,
                Role::Vm0,
                args.vm0_dtb.as_ref(),
                base.as_deref(),
                initrd,
            )?,
            Item::Vm0Image => input(
                args.vm0_kernel.clone().unwrap_or_else(defaults::vm0_kernel),
                "--vm0-kernel",
            )?,
            Item::Vm0Initrd => match &args.vm0_initrd {
                Some(p) => input(p.clone(), "--vm0-initrd")?,
                None => continue,
            },
        };
        let Some(name) = board.file_of(item) else {
            bail!("board `{}` has no file name for {}", board.name, item.key());
        };
        check_fits(board, item, &content)?;
        out.push(file(name, content));
    }

    for g in &args.guests {
        let name = g
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: not a file name", g.display()))?;
        out.push(file(name, input(g.clone(), "--guest")?));
    }
    Ok(out)
}

/// A file bigger than the RAM window the board reserves for it would overwrite its neighbour
/// when U-Boot loads it: refuse the card instead.
fn check_fits(board: &Board, item: Item, content: &Content) -> anyhow::Result<()> {
    let Some(load) = board.load_of(item) else {
        return Ok(());
    };
    let len = content.len()?;
    if len > load.size {
        let what = match content {
            Content::Path(p) => p.display().to_string(),
            Content::Bytes(_) => item.key().to_string(),
        };
        bail!(
            "{what} does not fit its load window on {}: {len} bytes, {} reserved at {:#x} (load.{})",
            board.name,
            load.size,
            load.addr,
            item.key()
        );
    }
    Ok(())
}
