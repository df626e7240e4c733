//! Everything mvm decides before it touches the driver: the patched DTB, the virtio slots and
//! the checked guest memory layout. Pure, so it is tested on the host.

use crate::config::VmConfig;
use crate::early;
use crate::guest_dtb::{self, DtbParams};
use crate::image::GuestImages;
use crate::layout::{self, Piece};
use crate::virtio::{self, VirtioSpec};

/// A VM ready to be created and loaded.
#[derive(Debug)]
pub struct Prepared {
    pub mem_base: u64,
    pub dtb: Vec<u8>,
    pub bootargs: String,
    /// Where the guest DTB puts the GIC the hypervisor must emulate.
    pub gic: crate::guest_dtb::GicPlacement,
    /// (spec, register window, INTID) per -V device.
    pub virtio: Vec<(VirtioSpec, u64, u32)>,
    /// The guest writes its early output to the hypervisor's PL011 (`--earlyprintk`).
    pub early: bool,
}

impl Prepared {
    /// The blobs to copy into guest RAM.
    pub fn pieces<'a>(&'a self, g: &'a GuestImages) -> Vec<Piece<'a>> {
        let mut p = vec![Piece {
            name: "kernel",
            addr: g.kernel_addr,
            data: &g.kernel,
        }];
        if let Some((rd, addr)) = &g.ramdisk {
            p.push(Piece {
                name: "ramdisk",
                addr: *addr,
                data: rd,
            });
        }
        p.push(Piece {
            name: "DTB",
            addr: g.dtb_addr,
            data: &self.dtb,
        });
        p
    }
}

pub fn prepare(cfg: &VmConfig, g: &GuestImages) -> anyhow::Result<Prepared> {
    let virtio: Vec<_> = cfg
        .virtio
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (addr, intid) = virtio::slot(i);
            (s.clone(), addr, intid)
        })
        .collect();
    let mut bootargs = guest_dtb::bootargs(&g.cmdline, cfg.cmdline.as_deref());
    if cfg.earlyprintk {
        bootargs = early::with_earlycon(&bootargs);
    }
    let params = DtbParams {
        vcpus: cfg.vcpus,
        mem_base: g.mem_base,
        mem_size: cfg.mem_size,
        bootargs: bootargs.clone(),
        initrd: g
            .ramdisk
            .as_ref()
            .map(|(rd, addr)| (*addr, addr + rd.len() as u64)),
        virtio: virtio.iter().map(|&(_, a, i)| (a, i)).collect(),
        gic: cfg.gic,
    };
    let (dtb, gic) = guest_dtb::patch(&g.dtb, &params)?;
    let prepared = Prepared {
        mem_base: g.mem_base,
        dtb,
        gic,
        bootargs,
        virtio,
        early: cfg.earlyprintk,
    };
    let mut mmio: Vec<_> = prepared
        .virtio
        .iter()
        .map(|&(_, a, _)| (a, virtio::MMIO_STRIDE))
        .collect();
    mmio.push((
        minos_abi::guest::POWER_GPIO_BASE,
        minos_abi::guest::POWER_GPIO_SIZE,
    ));
    if prepared.early {
        mmio.push((
            minos_abi::guest::EARLY_UART_BASE,
            minos_abi::guest::EARLY_UART_SIZE,
        ));
    }
    layout::check(g.mem_base, cfg.mem_size, &prepared.pieces(g), &mmio)?;
    if !(g.mem_base..g.mem_base + cfg.mem_size).contains(&g.entry) {
        anyhow::bail!("the entry point {:#x} is outside the VM's RAM", g.entry);
    }
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::guest_dtb::tests::guest_dtb;
    use crate::image::{self, tests::boot_img};
    use clap::Parser;

    fn setup(args: &[&str], ramdisk: &[u8]) -> (VmConfig, GuestImages, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("boot.img");
        std::fs::write(
            &p,
            boot_img(b"KERNEL", ramdisk, &guest_dtb(), "console=hvc0"),
        )
        .unwrap();
        let mut argv = vec!["mvm", "-i", p.to_str().unwrap()];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).unwrap();
        let cfg = VmConfig::from_args(&cli.create).unwrap();
        let g = image::load(&cfg.images, cfg.no_ramdisk, cfg.mem_base).unwrap();
        (cfg, g, dir)
    }

    #[test]
    fn guide_vm_fits_and_gets_its_devices() {
        let (cfg, g, _d) = setup(
            &[
                "-c",
                "2",
                "-m",
                "84M",
                "-C",
                "loglevel=8",
                "-V",
                "virtio_console,@pty:",
            ],
            b"RAMDISK",
        );
        let p = prepare(&cfg, &g).unwrap();
        assert_eq!(p.mem_base, 0x8000_0000);
        assert_eq!(p.bootargs, "console=hvc0 loglevel=8");
        assert_eq!(p.virtio, vec![(VirtioSpec::ConsolePty, 0x4000_0000, 32)]);
        let mut ram = vec![0u8; cfg.mem_size as usize];
        layout::write(&mut ram, p.mem_base, &p.pieces(&g)).unwrap();
        assert_eq!(&ram[0x8_0000..0x8_0006], b"KERNEL");
        assert_eq!(&ram[0x300_0000..0x300_0007], b"RAMDISK");
        let dtb_at = 0x3e0_0000;
        assert_eq!(&ram[dtb_at..dtb_at + p.dtb.len()], &p.dtb[..]);
    }

    #[test]
    fn earlyprintk_puts_earlycon_in_the_guests_bootargs() {
        let (cfg, g, _d) = setup(
            &[
                "-m",
                "84M",
                "-C",
                "loglevel=8",
                "-V",
                "virtio_console,@pty:",
                "--earlyprintk",
            ],
            b"",
        );
        let p = prepare(&cfg, &g).unwrap();
        let want = "console=hvc0 loglevel=8 earlycon=pl011,mmio32,0x40101000";
        assert_eq!(p.bootargs, want);
        assert!(p.early);
        let dtb = dts::Tree::from_dtb(&p.dtb).unwrap();
        assert_eq!(
            dtb.node("/chosen").unwrap().prop_str("bootargs"),
            Some(want),
            "the DTB the guest boots with says it"
        );
        let (cfg, g, _d) = setup(&["-m", "84M", "-V", "virtio_console,@pty:"], b"");
        let p = prepare(&cfg, &g).unwrap();
        assert!(!p.bootargs.contains("earlycon") && !p.early);
    }

    #[test]
    fn too_little_memory_is_an_error() {
        // 32M ends at 0x82000000: the ramdisk at 0x83000000 does not fit.
        let (cfg, g, _d) = setup(&["-m", "32M", "-c", "1"], b"RAMDISK");
        let e = prepare(&cfg, &g).unwrap_err().to_string();
        assert!(
            e.contains("the ramdisk (0x83000000..0x83000007) is outside the VM's RAM"),
            "{e}"
        );
        // Without the ramdisk the DTB at 0x83e00000 is still out.
        let (cfg, g, _d) = setup(&["-m", "32M", "-r"], b"RAMDISK");
        let e = prepare(&cfg, &g).unwrap_err().to_string();
        assert!(e.contains("the DTB"), "{e}");
    }

    #[test]
    fn more_vcpus_than_the_dtb_has_is_an_error() {
        let (cfg, g, _d) = setup(&["-m", "84M", "-c", "6"], b"");
        let e = prepare(&cfg, &g).unwrap_err().to_string();
        assert!(e.contains("cannot keep 6 CPUs"), "{e}");
    }
}
