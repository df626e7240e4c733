//! `mvm [options]`: create a VM, load it, start it, then stay as its owner (the driver
//! destroys the VM when mvm exits) until the guest powers off or mvm is told to stop.

use std::time::Duration;

use anyhow::{bail, Context};
use minos_abi::types::{set_name, VirtioDevice, VmCreate, VmState};

use std::path::Path;

use crate::backends::{Backend, Backends};
use crate::block::Block;
use crate::config::{Gic, VmConfig};
use crate::console::Console;
use crate::dev::Minos;
use crate::driver::Driver;
use crate::early::EarlyConsole;
use crate::image::{self, describe_header, GuestImages};
use crate::layout;
use crate::log::{debug, info};
use crate::net::{mac_string, Net, NetArgs};
use crate::prepare::{prepare, Prepared};
use crate::pty;
use crate::signals::{Signal, Signals};
use crate::virtio::{self, VirtioSpec};

pub fn run(cfg: VmConfig) -> anyhow::Result<()> {
    let g = image::load(&cfg.images, cfg.no_ramdisk, cfg.mem_base)?;
    if let Some(h) = &g.header {
        info(&describe_header(h));
    }
    info(&describe_vm(&cfg, &g));
    if let Some(h) = g
        .header
        .as_ref()
        .filter(|h| u64::from(h.kernel_addr) != g.entry)
    {
        info(&format!(
            "kernel at {:#x}, not {:#x}: its Image header's text_offset past a 2 MiB boundary",
            g.entry, h.kernel_addr
        ));
    }
    let p = prepare(&cfg, &g)?;
    for piece in p.pieces(&g) {
        debug(&format!(
            "load {}: {:#x} ({:#x} bytes)",
            piece.name,
            piece.addr,
            piece.data.len()
        ));
    }
    info(&format!("add cmdline - {}", p.bootargs));
    info(&format!(
        "vgic: distributor {:#x}, {} {:#x}",
        p.gic.dist,
        match cfg.gic {
            Gic::V2 => "cpu interface",
            Gic::V3 => "redistributors",
        },
        p.gic.cpu
    ));

    check_backing_files(&cfg)?;

    let dev = Minos::open()?;
    check_memory(&dev, &cfg)?;
    let signals = Signals::block()?;
    if cfg.daemon {
        // Before the VM exists, so the driver records the daemon as its owner; messages
        // still reach the terminal (noclose).
        // SAFETY: no other threads exist; daemon() forks and the parent exits.
        if unsafe { libc::daemon(1, 1) } != 0 {
            bail!(
                "cannot run as a daemon: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    let (vmid, mut backends) = create_and_start(&dev, &cfg, &g, &p)?;
    supervise(&dev, vmid, &cfg, &signals, &mut backends)
}

/// Every virtio_blk file must open read-write, and every virtio_net argument must make
/// sense, before a VM is created for them.
fn check_backing_files(cfg: &VmConfig) -> anyhow::Result<()> {
    for spec in &cfg.virtio {
        if let VirtioSpec::Net(arg) = spec {
            NetArgs::parse(arg)?;
        }
        if let VirtioSpec::Block(path) = spec {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("virtio_blk: cannot open {path}: {e}"))?;
        }
    }
    Ok(())
}

fn check_memory(dev: &dyn Driver, cfg: &VmConfig) -> anyhow::Result<()> {
    let mem = dev.mem_info()?;
    if mem.free < cfg.mem_size {
        bail!(
            "the hypervisor has {} MiB free, the VM needs {} MiB",
            mem.free >> 20,
            cfg.mem_size >> 20
        );
    }
    Ok(())
}

/// Creates the VM, loads it, adds its devices and starts it. On error the VM is destroyed
/// again (closing the device would too, but a daemon keeps it open).
fn create_and_start(
    dev: &dyn Driver,
    cfg: &VmConfig,
    g: &GuestImages,
    p: &Prepared,
) -> anyhow::Result<(u32, Backends)> {
    let mut req = VmCreate {
        nr_vcpus: cfg.vcpus,
        flags: cfg.flags(),
        mem_base: p.mem_base,
        mem_size: cfg.mem_size,
        entry: g.entry,
        setup_data: g.dtb_addr,
        gic_dist: p.gic.dist,
        gic_cpu: p.gic.cpu,
        ..VmCreate::default()
    };
    set_name(&mut req.name, &cfg.name);
    let vmid = dev.create(&req)?;
    info(&format!("vm-{vmid} created"));
    let setup = || -> anyhow::Result<Backends> {
        load(dev, vmid, p, g)?;
        let backends = add_devices(dev, vmid, p)?;
        dev.start(vmid)?;
        Ok(backends)
    };
    match setup() {
        Ok(backends) => {
            info(&format!("vm-{vmid} started"));
            Ok((vmid, backends))
        }
        Err(e) => {
            let _ = dev.destroy(vmid);
            Err(e)
        }
    }
}

fn describe_vm(cfg: &VmConfig, g: &GuestImages) -> String {
    format!(
        "create new vm *\n        -name       : {}\n        -os_type    : {}\n        -nr_vcpus   : {}\n        -bit64      : 1\n        -gic        : {}\n        -mem_size   : {:#x}\n        -mem_start  : {:#x}\n        -entry      : {:#x}\n        -setup_data : {:#x}",
        cfg.name,
        cfg.os_type,
        cfg.vcpus,
        match cfg.gic {
            Gic::V2 => "gicv2",
            Gic::V3 => "gicv3",
        },
        cfg.mem_size,
        g.mem_base,
        g.entry,
        g.dtb_addr
    )
}

/// Copies the images into the VM's RAM (zeroed first, so a restart starts clean).
fn load(dev: &dyn Driver, vmid: u32, p: &Prepared, g: &GuestImages) -> anyhow::Result<()> {
    dev.with_ram(vmid, &mut |ram, guest_base| {
        if guest_base != p.mem_base {
            bail!(
                "the hypervisor placed vm-{vmid}'s RAM at {guest_base:#x}, not {:#x}",
                p.mem_base
            );
        }
        ram.fill(0);
        layout::write(ram, p.mem_base, &p.pieces(g)).context("loading the images")
    })
}

fn add_devices(dev: &dyn Driver, vmid: u32, p: &Prepared) -> anyhow::Result<Backends> {
    let mut backends = Backends::new(dev.request_fd())?;
    // The first console is the guest's hvc0: its pty shows the early output too.
    let mut early = p.early.then(|| EarlyConsole::new(vmid));
    for (spec, base, intid) in &p.virtio {
        let index = dev.virtio_add(&VirtioDevice {
            vmid,
            device_id: spec.device_id(),
            base: *base,
            intid: *intid,
            index: 0,
            features: spec.features(),
            num_queues: spec.num_queues(),
            queue_max: virtio::QUEUE_MAX,
        })?;
        info(&format!(
            "add vdev success addr-{base:#x} virq-{intid} index-{index}"
        ));
        match spec {
            VirtioSpec::ConsolePty => {
                let pty = pty::open().context("creating the virtio console's pty")?;
                info("***********************************************");
                info(&format!("virt-console backend redirected to {}", pty.path));
                info("***********************************************");
                let mut con = Console::new(vmid, index, *intid, pty);
                if let Some(e) = early.take() {
                    info("early console (--earlyprintk) shown on this pty too");
                    con = con.with_early(e);
                }
                backends.add(dev, Backend::Console(con))?;
            }
            VirtioSpec::Block(path) => {
                let blk = Block::open(vmid, index, *intid, Path::new(path))?;
                backends.add(dev, Backend::Block(blk))?;
            }
            VirtioSpec::Net(arg) => {
                let net = Net::open(vmid, index, *intid, arg)?;
                info(&format!(
                    "virtio_net backend: tap {}, guest MAC {}",
                    net.tap_name(),
                    mac_string(&net.mac())
                ));
                backends.add(dev, Backend::Net(net))?;
            }
        }
    }
    Ok(backends)
}

fn supervise(
    dev: &dyn Driver,
    vmid: u32,
    cfg: &VmConfig,
    signals: &Signals,
    backends: &mut Backends,
) -> anyhow::Result<()> {
    loop {
        backends.poll_once(dev, vmid, Duration::from_millis(200))?;
        match signals.wait(Duration::ZERO)? {
            Some(Signal::Terminate) => {
                info(&format!("vm-{vmid}: mvm told to stop, destroying the VM"));
                return Ok(());
            }
            Some(Signal::Restart) => {
                info(&format!("vm-{vmid}: restarting"));
                dev.stop(vmid)?;
                backends.reset();
                let g = image::load(&cfg.images, cfg.no_ramdisk, cfg.mem_base)?;
                let p = prepare(cfg, &g)?;
                load(dev, vmid, &p, &g)?;
                dev.start(vmid)?;
            }
            None => {}
        }
        match dev.info(vmid)? {
            None => {
                info(&format!("vm-{vmid} was destroyed"));
                return Ok(());
            }
            Some(i) if VmState::from_u32(i.state) == Some(VmState::Off) => {
                // Its last early output (a panic, say) still reaches the pty.
                backends.drain_early(dev);
                info(&format!("vm-{vmid} powered off"));
                return Ok(());
            }
            // One call per round, cheap when nothing is new: the guest's earlycon lasts
            // until its own console starts, and again after each restart.
            Some(_) => backends.drain_early(dev),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::driver::fake::Fake;
    use crate::guest_dtb::tests::guest_dtb;
    use crate::image::tests::boot_img;
    use clap::Parser;
    use minos_abi::types::{name_str, VM_FLAG_64BIT, VM_FLAG_GICV3};
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;

    fn setup(args: &[&str]) -> (VmConfig, GuestImages, Prepared, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boot.img");
        std::fs::write(
            &path,
            boot_img(b"KERNEL", b"RAMDISK", &guest_dtb(), "console=hvc0"),
        )
        .unwrap();
        let mut argv = vec!["mvm", "-i", path.to_str().unwrap(), "-n", "elinux"];
        argv.extend_from_slice(args);
        let cfg = VmConfig::from_args(&Cli::try_parse_from(argv).unwrap().create).unwrap();
        let g = image::load(&cfg.images, cfg.no_ramdisk, cfg.mem_base).unwrap();
        let p = prepare(&cfg, &g).unwrap();
        (cfg, g, p, dir)
    }

    #[test]
    fn creates_loads_and_starts_the_vm() {
        let (cfg, g, p, _d) = setup(&["-c", "2", "-m", "84M", "-V", "virtio_console,@pty:"]);
        let fake = Fake {
            free: 1 << 30,
            ..Fake::default()
        };
        check_memory(&fake, &cfg).unwrap();
        let (vmid, backends) = create_and_start(&fake, &cfg, &g, &p).unwrap();
        assert_eq!(vmid, 1);
        assert_eq!(backends.len(), 1);
        assert_eq!(*fake.calls.borrow(), ["create", "start 1"]);
        let vms = fake.vms.borrow();
        let (req, _, ram) = &vms[0];
        assert_eq!(name_str(&req.name), Some("elinux"));
        assert_eq!(
            (req.nr_vcpus, req.flags),
            (2, VM_FLAG_64BIT | VM_FLAG_GICV3)
        );
        assert_eq!((req.mem_base, req.mem_size), (0x8000_0000, 84 << 20));
        assert_eq!((req.entry, req.setup_data), (0x8008_0000, 0x83e0_0000));
        assert_eq!(minos_abi::call::check_vm_create(req), Ok(()));
        assert_eq!(&ram[0x8_0000..0x8_0006], b"KERNEL");
        assert_eq!(&ram[0x300_0000..0x300_0007], b"RAMDISK");
        assert_eq!(&ram[0x3e0_0000..0x3e0_0000 + p.dtb.len()], &p.dtb[..]);
        assert!(
            ram[..0x8_0000].iter().all(|&b| b == 0),
            "RAM cleared before loading"
        );
        let devs = fake.devices.borrow();
        assert_eq!(devs.len(), 1);
        assert_eq!(
            (devs[0].vmid, devs[0].base, devs[0].intid, devs[0].device_id),
            (1, 0x4000_0000, 32, 3)
        );
        assert_eq!(devs[0].num_queues, 2);
        assert_eq!(
            minos_abi::call::check_virtio_device(&devs[0]),
            Ok(()),
            "what mvm sends passes the hypervisor's checks"
        );
    }

    #[test]
    fn a_bad_virtio_net_argument_is_refused_before_the_vm_exists() {
        let (cfg, _, _, _d) = setup(&["-m", "84M", "-V", "virtio_net,tap0,mtu=9000"]);
        let e = check_backing_files(&cfg).unwrap_err().to_string();
        assert_eq!(
            e,
            "virtio_net,tap0,mtu=9000: unknown option `mtu=9000` (only mac=XX:XX:XX:XX:XX:XX)"
        );
        let (cfg, _, _, _d) = setup(&["-m", "84M", "-V", "virtio_net,tap0,mac=52:54:00:12:34:56"]);
        check_backing_files(&cfg).unwrap();
    }

    #[test]
    fn refuses_when_the_pool_is_too_small() {
        let (cfg, _, _, _d) = setup(&["-m", "84M"]);
        let fake = Fake {
            free: 64 << 20,
            ..Fake::default()
        };
        let e = check_memory(&fake, &cfg).unwrap_err().to_string();
        assert_eq!(e, "the hypervisor has 64 MiB free, the VM needs 84 MiB");
    }

    #[test]
    fn a_misplaced_ram_window_destroys_the_vm() {
        let (cfg, g, p, _d) = setup(&["-m", "84M"]);
        let fake = Fake {
            free: 1 << 30,
            ram_offset: 0x20_0000,
            ..Fake::default()
        };
        let e = create_and_start(&fake, &cfg, &g, &p)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("placed vm-1's RAM at 0x80200000, not 0x80000000"),
            "{e}"
        );
        assert_eq!(*fake.calls.borrow(), ["create", "destroy 1"]);
    }

    #[test]
    fn earlyprintk_output_reaches_the_first_consoles_pty() {
        let (cfg, g, p, _d) = setup(&[
            "-m",
            "84M",
            "-V",
            "virtio_console,@pty:",
            "-V",
            "virtio_console,@pty:",
            "--earlyprintk",
        ]);
        let fake = Fake {
            free: 1 << 30,
            ..Fake::default()
        };
        let (vmid, mut backends) = create_and_start(&fake, &cfg, &g, &p).unwrap();
        let flags = fake.vms.borrow()[0].0.flags;
        assert_ne!(flags & minos_abi::types::VM_FLAG_EARLYPRINTK, 0);
        let open = |path: &str| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
                .unwrap()
        };
        let paths: Vec<String> = backends
            .consoles()
            .iter()
            .map(|c| c.pty.path.clone())
            .collect();
        let (mut first, mut second) = (open(&paths[0]), open(&paths[1]));
        fake.early
            .borrow_mut()
            .extend_from_slice(b"Booting Linux on physical CPU 0x0\r\n");
        backends.drain_early(&fake);
        assert!(fake.calls.borrow().contains(&"console_read 0".to_string()));
        let mut buf = [0u8; 128];
        let n = read_within(&mut first, &mut buf);
        assert_eq!(&buf[..n], b"Booting Linux on physical CPU 0x0\r\n");
        assert!(
            second.read(&mut buf).is_err(),
            "the second console shows nothing (WouldBlock)"
        );
        // Drained once: the next round asks from where the last one stopped.
        backends.drain_early(&fake);
        assert!(fake.calls.borrow().contains(&"console_read 35".to_string()));
        assert_eq!(vmid, 1);
    }

    /// Reads what the pty has, waiting up to 5 s for the line discipline to pass it on.
    fn read_within(f: &mut std::fs::File, buf: &mut [u8]) -> usize {
        let mut poll = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(f),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        assert_eq!(unsafe { libc::poll(&mut poll, 1, 5000) }, 1);
        f.read(buf).unwrap()
    }
}
