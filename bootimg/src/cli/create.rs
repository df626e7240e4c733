//! `bootimg --create` / `bootimg create`.

use anyhow::{bail, Result};
use bootimg::{IdMode, LegacyHeader, Parts};

use super::args::{CreateArgs, IdArg};
use super::{apply_config, read, write_image};

pub fn run(a: &CreateArgs) -> Result<()> {
    let mut header = LegacyHeader::new();
    let mut bootsize = 0;
    apply_config(&a.header, &mut header, &mut bootsize)?;

    let kernel = read(&a.kernel, "kernel")?;
    if kernel.is_empty() {
        bail!("kernel {} is empty", a.kernel.display());
    }
    let ramdisk = match &a.ramdisk {
        Some(path) => {
            let r = read(path, "ramdisk")?;
            if r.is_empty() {
                bail!(
                    "ramdisk {} is empty (abootimg rejects that); use --no-ramdisk instead of -r \
                     to build an image without one",
                    path.display()
                );
            }
            r
        }
        None => Vec::new(),
    };
    let second = match &a.second {
        Some(path) => read(path, "second stage")?,
        None => Vec::new(),
    };
    let id = match a.header.id {
        IdArg::Sha1 => IdMode::Sha1,
        IdArg::Auto | IdArg::Keep | IdArg::Zero => IdMode::Zero,
    };
    let parts = Parts {
        kernel: &kernel,
        ramdisk: &ramdisk,
        second: &second,
        ..Parts::default()
    };
    let (_, bytes) = bootimg::build(&header, &parts, id, bootsize)?;
    write_image(&a.image, &bytes, !ramdisk.is_empty())
}
