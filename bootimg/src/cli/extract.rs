//! `bootimg -x` / `bootimg extract`.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use bootimg::config::write_config;
use bootimg::header::c_str;
use bootimg::Header;

use super::args::ExtractArgs;
use super::{parse, read};

fn write(path: &Path, what: &str, bytes: &[u8]) -> Result<()> {
    say!("extracting {what} in {}", path.display());
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

pub fn run(a: &ExtractArgs) -> Result<()> {
    let data = read(&a.image, "image")?;
    let img = parse(&a.image, &data)?;
    let Header::Legacy(h) = &img.header else {
        bail!(
            "{}: header v{} images have no bootimg.cfg form (no addresses, no second stage); \
             use unpack_bootimg",
            a.image.display(),
            img.header.version()
        );
    };
    say!("writing boot image config in {}", a.config.display());
    fs::write(&a.config, write_config(h, data.len() as u64))
        .with_context(|| format!("cannot write {}", a.config.display()))?;
    if h.cmdline.iter().all(|&b| b != 0) && !c_str(&h.extra_cmdline).is_empty() {
        tell!(
            "bootimg: warning: the command line continues in extra_cmdline ({} more bytes), \
             which bootimg.cfg cannot hold; {} has only its first 512 bytes",
            c_str(&h.extra_cmdline).len(),
            a.config.display()
        );
    }
    write(&a.kernel, "kernel", img.kernel())?;
    write(&a.ramdisk, "ramdisk", img.ramdisk())?;
    if !img.layout.second.is_empty() {
        write(&a.second, "second stage image", img.second())?;
    }
    if !img.layout.recovery_dtbo.is_empty() {
        write(&a.recovery_dtbo, "recovery dtbo", img.recovery_dtbo())?;
    }
    if !img.layout.dtb.is_empty() {
        write(&a.dtb, "dtb", img.dtb())?;
    }
    Ok(())
}
