//! Turns the command line into a checked VM configuration: every bad option is one clear
//! error here, before any file or device is touched.

use std::path::PathBuf;

use minos_abi::types::{VM_FLAG_64BIT, VM_FLAG_EARLYPRINTK, VM_FLAG_GICV2, VM_FLAG_GICV3};
use minos_abi::MAX_VCPUS;

use crate::cli::CreateArgs;
use crate::size::{parse_mem_base, parse_mem_size, SizeError};
use crate::virtio::{parse_virtio, VirtioError, VirtioSpec};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("-c: a VM needs 1 to {max} vCPUs, not {0}", max = MAX_VCPUS)]
    Vcpus(u32),
    #[error("-m: {0}")]
    Size(SizeError),
    #[error("-s: {0}")]
    Base(SizeError),
    #[error("-b: 32-bit (AArch32) guests are not supported yet; use -b 64")]
    Aarch32,
    #[error("-b: {0} is not 32 or 64")]
    Bits(u32),
    #[error("--gicv4: a GICv4 is not supported; use --gicv3 or --gicv2")]
    Gicv4,
    #[error("give a boot image with -i, or a kernel and DTB with -K and -S")]
    NoImage,
    #[error("-i cannot be used with -K, -S or -R")]
    ImageAndFiles,
    #[error("-K needs -S (the DTB) too")]
    NoDtb,
    #[error("-s sets the memory base for -K/-S/-R only: a boot.img's kernel address decides it")]
    BaseWithImage,
    #[error("-D {0}: unknown platform device (none is supported yet)")]
    Platform(String),
    #[error("-V {0}")]
    Virtio(VirtioError),
    #[error("-n: the name `{0}` is longer than {max} bytes", max = minos_abi::VM_NAME_LEN - 1)]
    NameTooLong(String),
    #[error("-V: at most {max} virtio devices", max = minos_abi::MAX_DEVICES)]
    TooManyDevices,
    #[error("-t: unknown OS type `{0}` (linux or other)")]
    OsType(String),
    #[error(
        "--earlyprintk: the guest's early output is shown on its virtio console's pty: add -V virtio_console,@pty:"
    )]
    EarlyprintkWithoutConsole,
}

/// Where the guest's kernel, DTB and ramdisk come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Images {
    BootImg(PathBuf),
    Files {
        kernel: PathBuf,
        dtb: PathBuf,
        ramdisk: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gic {
    V2,
    V3,
}

/// A checked VM configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    pub name: String,
    pub os_type: String,
    pub vcpus: u32,
    pub mem_size: u64,
    /// Only for `Images::Files`; a boot.img's kernel address decides it otherwise.
    pub mem_base: Option<u64>,
    pub images: Images,
    pub no_ramdisk: bool,
    pub gic: Gic,
    pub cmdline: Option<String>,
    pub virtio: Vec<VirtioSpec>,
    pub verbose: bool,
    pub daemon: bool,
    pub earlyprintk: bool,
}

/// Minos' defaults: one vCPU and 32M when not given.
pub const DEFAULT_VCPUS: u32 = 1;
pub const DEFAULT_MEM: u64 = 32 << 20;

impl VmConfig {
    pub fn from_args(a: &CreateArgs) -> Result<VmConfig, ConfigError> {
        let vcpus = a.vcpus.unwrap_or(DEFAULT_VCPUS);
        if vcpus == 0 || vcpus > MAX_VCPUS {
            return Err(ConfigError::Vcpus(vcpus));
        }
        let mem_size = match &a.mem {
            Some(m) => parse_mem_size(m).map_err(ConfigError::Size)?,
            None => DEFAULT_MEM,
        };
        match a.bits.unwrap_or(64) {
            64 => {}
            32 => return Err(ConfigError::Aarch32),
            b => return Err(ConfigError::Bits(b)),
        }
        if a.gicv4 {
            return Err(ConfigError::Gicv4);
        }
        let gic = if a.gicv2 { Gic::V2 } else { Gic::V3 };
        let images = match (&a.image, &a.kernel, &a.second) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ConfigError::ImageAndFiles)
            }
            (Some(_), None, None) if a.ramdisk.is_some() => return Err(ConfigError::ImageAndFiles),
            (Some(img), None, None) => Images::BootImg(img.clone()),
            (None, Some(k), Some(d)) => Images::Files {
                kernel: k.clone(),
                dtb: d.clone(),
                ramdisk: a.ramdisk.clone(),
            },
            (None, Some(_), None) => return Err(ConfigError::NoDtb),
            (None, None, _) => return Err(ConfigError::NoImage),
        };
        let mem_base = match (&a.mem_base, &images) {
            (Some(_), Images::BootImg(_)) => return Err(ConfigError::BaseWithImage),
            (Some(b), _) => Some(parse_mem_base(b).map_err(ConfigError::Base)?),
            (None, _) => None,
        };
        if let Some(d) = a.platform.first() {
            return Err(ConfigError::Platform(d.clone()));
        }
        let virtio = a
            .virtio
            .iter()
            .map(|v| parse_virtio(v))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ConfigError::Virtio)?;
        if virtio.len() > minos_abi::MAX_DEVICES as usize {
            return Err(ConfigError::TooManyDevices);
        }
        if a.earlyprintk && !virtio.contains(&VirtioSpec::ConsolePty) {
            return Err(ConfigError::EarlyprintkWithoutConsole);
        }
        let name = a.name.clone().unwrap_or_else(|| "unknown".into());
        if name.len() >= minos_abi::VM_NAME_LEN {
            return Err(ConfigError::NameTooLong(name));
        }
        let os_type = a.os_type.clone().unwrap_or_else(|| "linux".into());
        if os_type != "linux" && os_type != "other" {
            return Err(ConfigError::OsType(os_type));
        }
        Ok(VmConfig {
            name,
            os_type,
            vcpus,
            mem_size,
            mem_base,
            images,
            no_ramdisk: a.no_ramdisk,
            gic,
            cmdline: a.cmdline.clone(),
            virtio,
            verbose: a.verbose,
            daemon: a.daemon,
            earlyprintk: a.earlyprintk,
        })
    }

    /// `VM_FLAG_*` for the hypervisor.
    pub fn flags(&self) -> u32 {
        let gic = match self.gic {
            Gic::V2 => VM_FLAG_GICV2,
            Gic::V3 => VM_FLAG_GICV3,
        };
        let early = if self.earlyprintk {
            VM_FLAG_EARLYPRINTK
        } else {
            0
        };
        VM_FLAG_64BIT | gic | early
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<VmConfig, ConfigError> {
        let cli =
            crate::cli::Cli::try_parse_from(std::iter::once("mvm").chain(args.iter().copied()))
                .unwrap();
        VmConfig::from_args(&cli.create)
    }

    #[test]
    fn the_guide_command_line() {
        let c = parse(&[
            "-c",
            "2",
            "-m",
            "84M",
            "-i",
            "boot.img",
            "-n",
            "elinux",
            "-t",
            "linux",
            "-b",
            "64",
            "-v",
            "-d",
            "-C",
            "console=hvc0 loglevel=8",
            "-V",
            "virtio_console,@pty:",
            "-V",
            "virtio_net,tap0",
            "--gicv2",
            "--earlyprintk",
            "-r",
        ])
        .unwrap();
        assert_eq!(c.vcpus, 2);
        assert_eq!(c.mem_size, 84 << 20);
        assert_eq!(c.images, Images::BootImg("boot.img".into()));
        assert_eq!(c.name, "elinux");
        assert_eq!(c.gic, Gic::V2);
        assert_eq!(
            c.flags(),
            VM_FLAG_64BIT | VM_FLAG_GICV2 | VM_FLAG_EARLYPRINTK
        );
        assert!(c.verbose && c.daemon && c.no_ramdisk && c.earlyprintk);
        assert_eq!(c.virtio.len(), 2);
        assert_eq!(c.cmdline.as_deref(), Some("console=hvc0 loglevel=8"));
    }

    #[test]
    fn defaults() {
        let c = parse(&["-i", "b.img"]).unwrap();
        assert_eq!((c.vcpus, c.mem_size, c.gic), (1, 32 << 20, Gic::V3));
        assert_eq!(c.name, "unknown");
        assert_eq!(c.flags(), VM_FLAG_64BIT | VM_FLAG_GICV3, "no early console");
    }

    #[test]
    fn earlyprintk_needs_a_console_pty() {
        let e = parse(&["-i", "b", "--earlyprintk"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--earlyprintk: the guest's early output is shown on its virtio console's pty: add -V virtio_console,@pty:"
        );
        let e = parse(&["-i", "b", "--earlyprintk", "-V", "virtio_blk,d"]).unwrap_err();
        assert!(matches!(e, ConfigError::EarlyprintkWithoutConsole));
        let c = parse(&[
            "-i",
            "b",
            "-V",
            "virtio_blk,d",
            "-V",
            "virtio_console,@pty:",
            "--earlyprintk",
        ])
        .unwrap();
        assert!(c.earlyprintk);
        assert_ne!(c.flags() & VM_FLAG_EARLYPRINTK, 0);
    }

    #[test]
    fn errors() {
        let msg = |a: &[&str]| parse(a).unwrap_err().to_string();
        assert!(
            msg(&["-i", "b", "-b", "32"]).contains("32-bit (AArch32) guests are not supported yet")
        );
        assert!(msg(&["-i", "b", "-b", "16"]).contains("16 is not 32 or 64"));
        assert!(msg(&["-i", "b", "--gicv4"]).contains("GICv4 is not supported"));
        assert!(msg(&["-i", "b", "-m", "85M"]).contains("not a multiple of 2M"));
        assert!(msg(&["-i", "b", "-c", "0"]).contains("1 to 8 vCPUs"));
        assert!(msg(&["-i", "b", "-c", "9"]).contains("1 to 8 vCPUs, not 9"));
        assert!(msg(&[]).contains("-i"));
        assert!(msg(&["-K", "Image"]).contains("-K needs -S"));
        assert!(msg(&["-i", "b", "-K", "k", "-S", "d"]).contains("cannot be used with"));
        assert!(msg(&["-i", "b", "-R", "r"]).contains("cannot be used with"));
        assert!(msg(&["-i", "b", "-s", "0x80000000"]).contains("-s sets the memory base"));
        assert!(msg(&["-K", "k", "-S", "d", "-s", "0x80080000"]).contains("not 2M aligned"));
        assert!(msg(&["-i", "b", "-V", "virtio_gpu,x"]).contains("unknown virtio device type"));
        assert!(msg(&["-i", "b", "-D", "s3c_uart"]).contains("unknown platform device"));
        assert!(msg(&["-i", "b", "-t", "xnu"]).contains("unknown OS type"));
        let nine: Vec<&str> = ["-V", "virtio_blk,d"].repeat(9);
        let mut a = vec!["-i", "b"];
        a.extend(nine);
        assert!(msg(&a).contains("at most 8 virtio devices"));
        assert!(msg(&["-i", "b", "-n", &"n".repeat(32)]).contains("longer than 31"));
    }

    #[test]
    fn files_instead_of_a_boot_image() {
        let c = parse(&["-K", "Image", "-S", "g.dtb", "-R", "rd", "-s", "0x40000000"]).unwrap();
        assert_eq!(c.mem_base, Some(0x4000_0000));
        assert_eq!(
            c.images,
            Images::Files {
                kernel: "Image".into(),
                dtb: "g.dtb".into(),
                ramdisk: Some("rd".into())
            }
        );
    }

    #[test]
    fn gic_flags_exclude_each_other() {
        let cli = crate::cli::Cli::try_parse_from(["mvm", "-i", "b", "--gicv2", "--gicv3"]);
        assert!(cli.is_err());
    }
}
