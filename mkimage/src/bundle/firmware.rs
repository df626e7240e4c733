//! The Raspberry Pi boot ROM's files (bootcode.bin, start.elf, fixup.dat). Debian ships them in
//! `raspi-firmware`, in the non-free-firmware component that many machines do not enable, so
//! their absence is a warning, not an error: QEMU's raspi3b loads U-Boot itself.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::defaults;
use crate::board::Board;

/// A folder holding every firmware file the board lists.
pub struct Firmware {
    pub dir: PathBuf,
    pub files: Vec<String>,
}

fn has_all(dir: &Path, files: &[String]) -> bool {
    files.iter().all(|f| dir.join(f).is_file())
}

/// What the card holds of the firmware the board needs.
pub enum Found {
    NotNeeded,
    Present(Firmware),
    /// The board needs these files and none were found: say so once the card is written.
    Missing(Vec<String>),
}

impl Found {
    pub fn present(&self) -> Option<&Firmware> {
        match self {
            Found::Present(f) => Some(f),
            _ => None,
        }
    }

    /// The warning to print after a successful build, if any.
    pub fn warning(&self, board: &Board) -> Option<String> {
        let Found::Missing(files) = self else {
            return None;
        };
        Some(format!(
            "warning: no Raspberry Pi firmware ({}) found: install Debian's raspi-firmware \
             (non-free-firmware) or give --firmware DIR. This card boots under QEMU, which loads \
             U-Boot itself, but NOT on a real {}.",
            files.join(", "),
            board.model
        ))
    }
}

/// The firmware to put on the card: from `--firmware`, else from an installed or unpacked
/// `raspi-firmware`.
pub fn find(board: &Board, given: Option<&Path>) -> anyhow::Result<Found> {
    let Some(rpi) = &board.rpi else {
        if given.is_some() {
            bail!(
                "board `{}` loads no firmware from the card: drop --firmware",
                board.name
            );
        }
        return Ok(Found::NotNeeded);
    };
    if rpi.firmware.is_empty() {
        return Ok(Found::NotNeeded);
    }
    if let Some(dir) = given {
        if let Some(f) = rpi.firmware.iter().find(|f| !dir.join(f).is_file()) {
            bail!("{}: no firmware file {f} there", dir.display());
        }
        return Ok(Found::Present(Firmware {
            dir: dir.to_path_buf(),
            files: rpi.firmware.clone(),
        }));
    }
    let candidates = [
        PathBuf::from("/usr/lib/raspi-firmware"),
        defaults::cache_dir().join("pkg/raspi-firmware/usr/lib/raspi-firmware"),
    ];
    if let Some(dir) = candidates.iter().find(|d| has_all(d, &rpi.firmware)) {
        return Ok(Found::Present(Firmware {
            dir: dir.clone(),
            files: rpi.firmware.clone(),
        }));
    }
    Ok(Found::Missing(rpi.firmware.clone()))
}
