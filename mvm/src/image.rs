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

/// The arm64 boot protocol's alignment for the Image's base.
const IMAGE_ALIGN: u64 = 2 << 20;
/// `ARM\x64` at offset 0x38 of an arm64 Image header.
const ARM64_MAGIC: u32 = 0x644d_5241;

/// Where an arm64 Image asked to be loaded near `addr` must go: `text_offset` (from its
/// header) past the 2 MiB boundary at or below `addr`, as U-Boot's `booti` places it. A
/// kernel without an arm64 Image header (a bare-metal binary) stays at `addr`.
///
/// The Minos guide's 0x80080000 assumes the old fixed 0x80000; kernels since Linux 5.10 say 0,
/// and started 0x80000 past a 2 MiB boundary they never boot.
pub fn image_placement(kernel: &[u8], addr: u64) -> u64 {
    let word = |o: usize, n: usize| kernel.get(o..o + n);
    let magic = word(0x38, 4).map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()));
    if magic != Some(ARM64_MAGIC) {
        return addr;
    }
    let text_offset =
        word(8, 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    // A header saying more than 2 MiB is corrupt: keep the address the image asked for.
    if text_offset >= IMAGE_ALIGN {
        return addr;
    }
    (addr & !(IMAGE_ALIGN - 1)) + text_offset
}

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
            let entry = image_placement(&kernel, u64::from(h.kernel_addr));
            Ok(GuestImages {
                kernel,
                kernel_addr: entry,
                ramdisk,
                dtb,
                dtb_addr: u64::from(h.second_addr),
                cmdline: String::from_utf8_lossy(&h.full_cmdline()).into_owned(),
                mem_base: u64::from(h.kernel_addr) & !(minos_abi::MEM_ALIGN - 1),
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
            let kernel = read_file(kernel)?;
            let entry = image_placement(&kernel, base + FILES_KERNEL_OFFSET);
            Ok(GuestImages {
                kernel,
                kernel_addr: entry,
                ramdisk,
                dtb: read_file(dtb)?,
                dtb_addr: base + FILES_DTB_OFFSET,
                cmdline: String::new(),
                mem_base: base,
                entry,
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

    /// A 64-byte arm64 Image header with `text_offset`.
    fn arm64_image(text_offset: u64) -> Vec<u8> {
        let mut k = vec![0u8; 64];
        k[8..16].copy_from_slice(&text_offset.to_le_bytes());
        k[0x38..0x3c].copy_from_slice(b"ARM\x64");
        k
    }

    #[test]
    fn an_arm64_image_goes_where_its_header_says() {
        assert_eq!(image_placement(&arm64_image(0), 0x8008_0000), 0x8000_0000);
        assert_eq!(
            image_placement(&arm64_image(0x8_0000), 0x8008_0000),
            0x8008_0000
        );
        assert_eq!(
            image_placement(&arm64_image(0x8_0000), 0x8020_0000),
            0x8028_0000
        );
        assert_eq!(image_placement(&arm64_image(0), 0x8020_0000), 0x8020_0000);
        // Not an Image (bare metal), cut short, or a corrupt offset: where it was asked.
        assert_eq!(
            image_placement(b"\x7f\x20\x03\xd5", 0x8008_0000),
            0x8008_0000
        );
        assert_eq!(
            image_placement(&arm64_image(0)[..0x3a], 0x8008_0000),
            0x8008_0000
        );
        assert_eq!(
            image_placement(&arm64_image(4 << 20), 0x8008_0000),
            0x8008_0000
        );

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("boot.img");
        std::fs::write(&p, boot_img(&arm64_image(0), b"R", b"DTB", "")).unwrap();
        let g = load(&Images::BootImg(p), false, None).unwrap();
        assert_eq!(
            (g.mem_base, g.kernel_addr, g.entry),
            (0x8000_0000, 0x8000_0000, 0x8000_0000)
        );
        assert_eq!(
            g.header.unwrap().kernel_addr,
            0x8008_0000,
            "the header is shown as it is"
        );
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
