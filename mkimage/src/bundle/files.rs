//! The boot partition's file list, in a fixed order so the card is reproducible.

use std::path::PathBuf;

use anyhow::{bail, Context};
use sdcard::fat::Content;
use sdcard::FatFile;

use super::firmware::Firmware;
use super::{defaults, Args};
use crate::board::{Board, EnvStore, Item};
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

/// config.txt: the board's lines, one per line, as the Pi firmware reads them.
fn config_txt(lines: &[String]) -> Vec<u8> {
    let mut t = String::from("# Written by mkimage bundle from the board definition.\n");
    for l in lines {
        t.push_str(l);
        t.push('\n');
    }
    t.into_bytes()
}

fn dtb(
    given: Option<&PathBuf>,
    default: Option<PathBuf>,
    board: &Board,
    option: &str,
) -> anyhow::Result<Content> {
    match given.cloned().or(default) {
        Some(p) => input(p, option),
        None => bail!(
            "board `{}` names no upstream DTB for this: give {option}",
            board.name
        ),
    }
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
    if let Some(rpi) = &board.rpi {
        out.push(file("config.txt", Content::Bytes(config_txt(&rpi.config))));
    }

    let with_initrd = args.vm0_initrd.is_some();
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
                args.hyp_dtb.as_ref(),
                defaults::hyp_dtb(board),
                board,
                "--hyp-dtb",
            )?,
            Item::Vm0Dtb => dtb(
                args.vm0_dtb.as_ref(),
                defaults::vm0_dtb(board),
                board,
                "--vm0-dtb",
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
