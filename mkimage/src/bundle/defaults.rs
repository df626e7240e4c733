//! Where inputs come from when the command line does not say: the same places as
//! `scripts/lib.sh` (`$MINOS_OUT`, `$MINOS_CACHE`), so the tools and the scripts agree.

use std::path::PathBuf;

use crate::board::boards_dir;

/// `$MINOS_OUT`, else `out/` next to the `boards/` folder (the source tree).
pub fn out_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MINOS_OUT") {
        return PathBuf::from(d);
    }
    boards_dir()
        .ok()
        .and_then(|b| b.parent().map(|p| p.join("out")))
        .unwrap_or_else(|| PathBuf::from("out"))
}

/// `$MINOS_CACHE`, else `/var/cache/minos-rs` (filled by `scripts/setup`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("MINOS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/minos-rs"))
}

pub fn minos() -> PathBuf {
    out_dir().join("minos.bin")
}

pub fn vm0_kernel() -> PathBuf {
    cache_dir().join("kernel/Image")
}
