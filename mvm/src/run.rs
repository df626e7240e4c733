//! `mvm [options]`: create a VM, load it, start it, then stay as its owner (the driver
//! destroys the VM when mvm exits) until the guest powers off or mvm is told to stop.

use std::time::Duration;

use anyhow::{bail, Context};
use minos_abi::types::{set_name, VirtioDevice, VmCreate, VmState};

use crate::config::{Gic, VmConfig};
use crate::dev::Minos;
use crate::image::{self, describe_header, GuestImages};
use crate::layout;
use crate::log::{debug, info, warn};
use crate::prepare::{prepare, Prepared};
use crate::pty;
use crate::signals::{Signal, Signals};
use crate::virtio::VirtioSpec;

pub fn run(cfg: VmConfig) -> anyhow::Result<()> {
    let g = image::load(&cfg.images, cfg.no_ramdisk, cfg.mem_base)?;
    if let Some(h) = &g.header {
        info(&describe_header(h));
    }
    info(&describe_vm(&cfg, &g));
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

    let dev = Minos::open()?;
    let mem = dev.mem_info()?;
    if mem.free < cfg.mem_size {
        bail!(
            "the hypervisor has {} MiB free, the VM needs {} MiB",
            mem.free >> 20,
            cfg.mem_size >> 20
        );
    }
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
    let mut req = VmCreate {
        nr_vcpus: cfg.vcpus,
        flags: cfg.flags(),
        mem_base: p.mem_base,
        mem_size: cfg.mem_size,
        entry: g.entry,
        setup_data: g.dtb_addr,
        ..VmCreate::default()
    };
    set_name(&mut req.name, &cfg.name);
    let vmid = dev.create(&req)?;
    info(&format!("vm-{vmid} created"));
    load(&dev, vmid, &p, &g)?;
    let _ptys = add_devices(&dev, vmid, &p)?;
    dev.start(vmid)?;
    info(&format!("vm-{vmid} started"));
    supervise(&dev, vmid, &cfg, &signals)
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
fn load(dev: &Minos, vmid: u32, p: &Prepared, g: &GuestImages) -> anyhow::Result<()> {
    let mut ram = dev.map_ram(vmid)?;
    if ram.guest_base != p.mem_base {
        bail!(
            "the hypervisor placed vm-{vmid}'s RAM at {:#x}, not {:#x}",
            ram.guest_base,
            p.mem_base
        );
    }
    let slice = ram.as_mut_slice();
    slice.fill(0);
    layout::write(slice, p.mem_base, &p.pieces(g)).context("loading the images")?;
    Ok(())
}

fn add_devices(dev: &Minos, vmid: u32, p: &Prepared) -> anyhow::Result<Vec<pty::Pty>> {
    let mut ptys = Vec::new();
    for (spec, base, intid) in &p.virtio {
        let index = dev.virtio_add(&VirtioDevice {
            vmid,
            device_id: spec.device_id(),
            base: *base,
            intid: *intid,
            index: 0,
        })?;
        info(&format!(
            "add vdev success addr-{base:#x} virq-{intid} index-{index}"
        ));
        if *spec == VirtioSpec::ConsolePty {
            let pty = pty::open().context("creating the virtio console's pty")?;
            info("***********************************************");
            info(&format!("virt-console backend redirected to {}", pty.path));
            info("***********************************************");
            ptys.push(pty);
        }
    }
    if !p.virtio.is_empty() {
        warn("virtio device models do not move data yet: the devices are registered only");
    }
    Ok(ptys)
}

fn supervise(dev: &Minos, vmid: u32, cfg: &VmConfig, signals: &Signals) -> anyhow::Result<()> {
    loop {
        match signals.wait(Duration::from_millis(500))? {
            Some(Signal::Terminate) => {
                info(&format!("vm-{vmid}: mvm told to stop, destroying the VM"));
                return Ok(());
            }
            Some(Signal::Restart) => {
                info(&format!("vm-{vmid}: restarting"));
                dev.stop(vmid)?;
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
                info(&format!("vm-{vmid} powered off"));
                return Ok(());
            }
            Some(_) => {}
        }
    }
}
