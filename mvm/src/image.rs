//! Guest images: an Android boot.img (kernel, ramdisk, DTB as second stage, load addresses and
//! command line in its header), or separate -K/-S/-R files at Minos' fixed offsets.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bootimg::header::{c_str, Header, LegacyHeader};
use bootimg::layout::Section;

use crate::config::Images;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path} is not a valid boot image: {err}")]
    BootImg {
        path: PathBuf,
        err: bootimg::ReadError,
    },
    #[error("{0} is a v{1} boot image: it has no DTB or load addresses; make a v0-v2 image (bootimg --create)")]
    NoAddresses(PathBuf, u32),
    #[error("{0} has no second stage: mvm needs the guest DTB there (bootimg --create ... -s guest.dtb)")]
    NoDtb(PathBuf),
    #[error("{0} has no kernel")]
    NoKernel(PathBuf),
    #[error("{0} is empty")]
    Empty(PathBuf),
}

/// Default guest RAM base for -K/-S/-R (Minos' fixed layout).
pub const FILES_MEM_BASE: u64 = 0x8000_0000;
/// Offsets from the RAM base for -K/-S/-R.
pub const FILES_KERNEL_OFFSET: u64 = 0x8_0000;
pub const FILES_RAMDISK_OFFSET: u64 = 0x300_0000;
pub const FILES_DTB_OFFSET: u64 = 0x3e0_0000;

/// Everything the guest's memory is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestImages {
    pub kernel: Vec<u8>,
    pub kernel_addr: u64,
    pub ramdisk: Option<(Vec<u8>, u64)>,
    pub dtb: Vec<u8>,
    pub dtb_addr: u64,
    /// The boot image's own command line ("" for -K/-S/-R).
    pub cmdline: String,
    /// RAM base: the kernel address rounded down to 2 MiB for a boot.img.
    pub mem_base: u64,
    pub entry: u64,
    /// The boot.img header, for the information printout.
    pub header: Option<LegacyHeader>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |err| ImageError::Io {
        path: path.to_path_buf(),
        err,
    }
}

fn read_section(f: &mut File, path: &Path, s: Section) -> Result<Vec<u8>, ImageError> {
    let mut buf = vec![0; s.size as usize];
    f.seek(SeekFrom::Start(s.offset)).map_err(io(path))?;
    f.read_exact(&mut buf).map_err(io(path))?;
    Ok(buf)
}

fn read_file(path: &Path) -> Result<Vec<u8>, ImageError> {
    let data = std::fs::read(path).map_err(io(path))?;
    if data.is_empty() {
        return Err(ImageError::Empty(path.into()));
    }
    Ok(data)
}

/// Reads just a boot.img's header (fast: the components stay on disk).
pub fn read_boot_header(path: &Path) -> Result<(LegacyHeader, bootimg::Layout), ImageError> {
    let f = File::open(path).map_err(io(path))?;
    let len = f.metadata().map_err(io(path))?.len();
    let (header, layout) = bootimg::read_header(&f, len).map_err(|err| ImageError::BootImg {
        path: path.into(),
        err,
    })?;
    match header {
        Header::Legacy(h) => Ok((*h, layout)),
        Header::V3(h) => Err(ImageError::NoAddresses(path.into(), h.header_version)),
    }
}

/// Loads the guest images. `no_ramdisk` is -r; `mem_base` is -s (only for files).
pub fn load(
    images: &Images,
    no_ramdisk: bool,
    mem_base: Option<u64>,
) -> Result<GuestImages, ImageError> {
    match images {
        Images::BootImg(path) => {
            let (h, layout) = read_boot_header(path)?;
            if layout.kernel.is_empty() {
                return Err(ImageError::NoKernel(path.clone()));
            }
            if layout.second.is_empty() {
                return Err(ImageError::NoDtb(path.clone()));
            }
            let mut f = File::open(path).map_err(io(path))?;
            let kernel = read_section(&mut f, path, layout.kernel)?;
            let dtb = read_section(&mut f, path, layout.second)?;
            let ramdisk = if no_ramdisk || layout.ramdisk.is_empty() {
                None
            } else {
                Some((
                    read_section(&mut f, path, layout.ramdisk)?,
                    u64::from(h.ramdisk_addr),
                ))
            };
            let entry = u64::from(h.kernel_addr);
            Ok(GuestImages {
                kernel,
                kernel_addr: entry,
                ramdisk,
                dtb,
                dtb_addr: u64::from(h.second_addr),
                cmdline: String::from_utf8_lossy(&h.full_cmdline()).into_owned(),
                mem_base: entry & !(minos_abi::MEM_ALIGN - 1),
                entry,
                header: Some(h),
            })
        }
        Images::Files {
            kernel,
            dtb,
            ramdisk,
        } => {
            let base = mem_base.unwrap_or(FILES_MEM_BASE);
            let ramdisk = match ramdisk {
                Some(r) if !no_ramdisk => Some((read_file(r)?, base + FILES_RAMDISK_OFFSET)),
                _ => None,
            };
            Ok(GuestImages {
                kernel: read_file(kernel)?,
                kernel_addr: base + FILES_KERNEL_OFFSET,
                ramdisk,
                dtb: read_file(dtb)?,
                dtb_addr: base + FILES_DTB_OFFSET,
                cmdline: String::new(),
                mem_base: base,
                entry: base + FILES_KERNEL_OFFSET,
                header: None,
            })
        }
    }
}

/// The boot image information, as Minos' mvm prints it.
pub fn describe_header(h: &LegacyHeader) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(c_str(b)).into_owned();
    [
        "boot image information :".to_string(),
        "magic        - ANDROID!".to_string(),
        format!("kernel_size  - {:#x}", h.kernel_size),
        format!("kernel_addr  - {:#x}", h.kernel_addr),
        format!("ramdisk_size - {:#x}", h.ramdisk_size),
        format!("ramdisk_addr - {:#x}", h.ramdisk_addr),
        format!("dtb_size     - {:#x}", h.second_size),
        format!("dtb_addr     - {:#x}", h.second_addr),
        format!("tags_addr    - {:#x}", h.tags_addr),
        format!("page_size    - {:#x}", h.page_size),
        format!("name         - {}", text(&h.name)),
        format!(
            "cmdline      - {}",
            String::from_utf8_lossy(&h.full_cmdline())
        ),
    ]
    .join("\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bootimg::{build, IdMode, Parts};

    /// A v0 boot image like the Minos guide's.
    pub(crate) fn boot_img(kernel: &[u8], ramdisk: &[u8], dtb: &[u8], cmdline: &str) -> Vec<u8> {
        let mut h = LegacyHeader::new();
        h.kernel_addr = 0x8008_0000;
        h.ramdisk_addr = 0x8300_0000;
        h.second_addr = 0x83e0_0000;
        h.cmdline[..cmdline.len()].copy_from_slice(cmdline.as_bytes());
        let parts = Parts {
            kernel,
            ramdisk,
            second: dtb,
            ..Parts::default()
        };
        build(&h, &parts, IdMode::Zero, 0).unwrap().1
    }

    #[test]
    fn loads_a_boot_image() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("boot.img");
        std::fs::write(&p, boot_img(b"KERNEL", b"RAMDISK", b"DTB", "console=hvc0")).unwrap();
        let g = load(&Images::BootImg(p.clone()), false, None).unwrap();
        assert_eq!(g.kernel, b"KERNEL");
        assert_eq!(g.ramdisk, Some((b"RAMDISK".to_vec(), 0x8300_0000)));
        assert_eq!((g.dtb.as_slice(), g.dtb_addr), (&b"DTB"[..], 0x83e0_0000));
        assert_eq!((g.mem_base, g.entry), (0x8000_0000, 0x8008_0000));
        assert_eq!(g.cmdline, "console=hvc0");
        let info = describe_header(g.header.as_ref().unwrap());
        assert!(info.contains("kernel_size  - 0x6\n"));
        assert!(info.contains("dtb_addr     - 0x83e00000"));
        assert!(info.ends_with("cmdline      - console=hvc0"));
        let g = load(&Images::BootImg(p), true, None).unwrap();
        assert_eq!(g.ramdisk, None, "-r");
    }

    #[test]
    fn boot_image_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("boot.img");
        std::fs::write(&p, boot_img(b"KERNEL", b"RAMDISK", b"", "")).unwrap();
        let e = load(&Images::BootImg(p.clone()), false, None).unwrap_err();
        assert!(e.to_string().contains("has no second stage"), "{e}");
        std::fs::write(&p, b"not a boot image at all").unwrap();
        let e = load(&Images::BootImg(p.clone()), false, None).unwrap_err();
        assert!(e.to_string().contains("is not a valid boot image"), "{e}");
        let e = load(&Images::BootImg(dir.path().join("missing")), false, None).unwrap_err();
        assert!(e.to_string().starts_with("cannot read"), "{e}");
    }

    #[test]
    fn loads_files_at_minos_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let (k, d, r) = (
            dir.path().join("k"),
            dir.path().join("d"),
            dir.path().join("r"),
        );
        std::fs::write(&k, b"K").unwrap();
        std::fs::write(&d, b"D").unwrap();
        std::fs::write(&r, b"R").unwrap();
        let images = Images::Files {
            kernel: k,
            dtb: d.clone(),
            ramdisk: Some(r),
        };
        let g = load(&images, false, Some(0x4000_0000)).unwrap();
        assert_eq!(g.kernel_addr, 0x4008_0000);
        assert_eq!(g.ramdisk, Some((b"R".to_vec(), 0x4300_0000)));
        assert_eq!(g.dtb_addr, 0x43e0_0000);
        std::fs::write(&d, b"").unwrap();
        assert!(load(&images, false, None)
            .unwrap_err()
            .to_string()
            .ends_with("is empty"));
    }
}
