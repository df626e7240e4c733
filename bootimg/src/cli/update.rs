//! `bootimg -u` / `bootimg update`: rebuilds the image with the new parts and header entries.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use bootimg::id::sha1_id;
use bootimg::{BootImage, Header, IdMode, Parts};

use super::args::{IdArg, UpdateArgs};
use super::{apply_config, parse, read, write_image};

/// Whether `img`'s id is the SHA-1 mkbootimg would compute for its current contents.
fn has_mkbootimg_id(img: &BootImage<'_>, version: u32) -> bool {
    let mut parts = vec![img.kernel(), img.ramdisk(), img.second()];
    if version >= 1 {
        parts.push(img.recovery_dtbo());
    }
    if version >= 2 {
        parts.push(img.dtb());
    }
    matches!(&img.header, Header::Legacy(h) if h.id == sha1_id(&parts))
}

pub fn run(a: &UpdateArgs) -> Result<()> {
    let data = read(&a.image, "image")?;
    let img = parse(&a.image, &data)?;
    let Header::Legacy(old) = &img.header else {
        bail!(
            "{}: header v{} images cannot be updated (only v0, v1 and v2)",
            a.image.display(),
            img.header.version()
        );
    };
    let mut header = (**old).clone();
    // abootimg keeps the file size unless bootsize says otherwise.
    let mut bootsize = data.len() as u64;
    apply_config(&a.header, &mut header, &mut bootsize)?;

    let load = |path: &Option<PathBuf>, what: &str| -> Result<Option<Vec<u8>>> {
        path.as_ref().map(|p| read(p, what)).transpose()
    };
    let kernel = load(&a.kernel, "kernel")?;
    let ramdisk = load(&a.ramdisk, "ramdisk")?;
    let second = load(&a.second, "second stage")?;
    if let (Some(path), Some(k)) = (&a.kernel, &kernel) {
        if k.is_empty() {
            bail!("kernel {} is empty", path.display());
        }
    }
    if let (Some(path), Some(r)) = (&a.ramdisk, &ramdisk) {
        if r.is_empty() {
            bail!(
                "ramdisk {} is empty (abootimg rejects that); use --no-ramdisk to drop the ramdisk",
                path.display()
            );
        }
    }
    let parts = Parts {
        kernel: kernel.as_deref().unwrap_or(img.kernel()),
        ramdisk: if a.no_ramdisk {
            &[]
        } else {
            ramdisk.as_deref().unwrap_or(img.ramdisk())
        },
        second: second.as_deref().unwrap_or(img.second()),
        recovery_dtbo: img.recovery_dtbo(),
        dtb: img.dtb(),
    };
    let id = match a.header.id {
        IdArg::Auto if has_mkbootimg_id(&img, old.header_version) => IdMode::Sha1,
        IdArg::Auto | IdArg::Keep => IdMode::Keep,
        IdArg::Zero => IdMode::Zero,
        IdArg::Sha1 => IdMode::Sha1,
    };
    let (_, bytes) = bootimg::build(&header, &parts, id, bootsize)
        .with_context(|| format!("{}", a.image.display()))?;
    write_image(&a.image, &bytes, !parts.ramdisk.is_empty())
}
