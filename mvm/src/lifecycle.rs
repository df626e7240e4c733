//! `mvm list|destroy|restart|shutdown`: acting on VMs from outside their owning mvm.
//!
//! A VM belongs to the mvm process that created it (the driver records its pid): destroying
//! or restarting it goes through that process (SIGTERM / SIGHUP), so its mappings and
//! backends go with it; a VM without a live owner is destroyed through the driver directly.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use minos_abi::types::{name_str, VmInfo, VmState};
use minos_abi::MAX_VMS;

use crate::driver::Driver;

/// Every VM the hypervisor reports.
pub fn all(dev: &dyn Driver) -> anyhow::Result<Vec<VmInfo>> {
    let mut out = Vec::new();
    for id in 1..=MAX_VMS {
        if let Some(i) = dev.info(id)? {
            out.push(i);
        }
    }
    Ok(out)
}

/// The VM named `spec`, or with id `spec`.
pub fn find(vms: &[VmInfo], spec: &str) -> anyhow::Result<VmInfo> {
    if let Some(v) = vms.iter().find(|v| name_str(&v.name) == Some(spec)) {
        return Ok(*v);
    }
    if let Ok(id) = spec.parse::<u32>() {
        if let Some(v) = vms.iter().find(|v| v.vmid == id) {
            return Ok(*v);
        }
    }
    bail!("no VM named or numbered `{spec}` (see mvm list)")
}

pub fn state_name(state: u32) -> &'static str {
    match VmState::from_u32(state) {
        Some(VmState::Created) => "created",
        Some(VmState::Running) => "running",
        Some(VmState::Off) => "off",
        Some(VmState::ShuttingDown) => "shutting-down",
        None => "unknown",
    }
}

/// The `mvm list` table.
pub fn table(vms: &[VmInfo]) -> String {
    let mut s = format!(
        "{:>3}  {:<16} {:<13} {:>5} {:>8}  {:<18} {:>6}\n",
        "ID", "NAME", "STATE", "VCPUS", "MEMORY", "BASE", "MVM"
    );
    for v in vms {
        s += &format!(
            "{:>3}  {:<16} {:<13} {:>5} {:>7}M  {:<18} {:>6}\n",
            v.vmid,
            name_str(&v.name).unwrap_or("?"),
            state_name(v.state),
            v.nr_vcpus,
            v.mem_size >> 20,
            format!("{:#x}", v.mem_base),
            if v.owner_pid == 0 {
                "-".to_string()
            } else {
                v.owner_pid.to_string()
            }
        );
    }
    s
}

/// The `mvm list` footer: the hypervisor's guest-RAM pool.
pub fn pool_line(total: u64, free: u64) -> String {
    format!(
        "guest memory: {} MiB free of {} MiB\n",
        free >> 20,
        total >> 20
    )
}

fn owner_alive(v: &VmInfo) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    v.owner_pid != 0 && unsafe { libc::kill(v.owner_pid as libc::pid_t, 0) } == 0
}

fn signal_owner(v: &VmInfo, sig: libc::c_int) -> anyhow::Result<()> {
    // SAFETY: sending a signal to the recorded owner process.
    if unsafe { libc::kill(v.owner_pid as libc::pid_t, sig) } != 0 {
        bail!(
            "cannot signal vm-{}'s mvm (pid {}): {}",
            v.vmid,
            v.owner_pid,
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Polls until `done` says yes or `timeout` passes; returns whether it happened.
fn wait_for(
    timeout: Duration,
    mut done: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    let end = Instant::now() + timeout;
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= end {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn destroy(dev: &dyn Driver, v: &VmInfo) -> anyhow::Result<()> {
    if owner_alive(v) {
        signal_owner(v, libc::SIGTERM)?;
        if !wait_for(Duration::from_secs(10), || Ok(dev.info(v.vmid)?.is_none()))? {
            bail!(
                "vm-{}'s mvm (pid {}) did not exit within 10 s",
                v.vmid,
                v.owner_pid
            );
        }
    } else {
        dev.destroy(v.vmid)?;
    }
    println!("vm-{} destroyed", v.vmid);
    Ok(())
}

pub fn restart(v: &VmInfo) -> anyhow::Result<()> {
    if !owner_alive(v) {
        bail!(
            "vm-{} has no running mvm to reload its images: destroy it and create it again",
            v.vmid
        );
    }
    signal_owner(v, libc::SIGHUP)?;
    println!(
        "vm-{}: restart requested from its mvm (pid {})",
        v.vmid, v.owner_pid
    );
    Ok(())
}

pub fn shutdown(dev: &dyn Driver, v: &VmInfo, timeout: Duration) -> anyhow::Result<()> {
    dev.shutdown(v.vmid)
        .context("asking the guest to power off")?;
    let off = wait_for(timeout, || {
        Ok(match dev.info(v.vmid)? {
            None => true,
            Some(i) => VmState::from_u32(i.state) == Some(VmState::Off),
        })
    })?;
    if off {
        println!("vm-{} powered off", v.vmid);
    } else {
        dev.stop(v.vmid)?;
        println!(
            "vm-{} did not power off within {} s: stopped",
            v.vmid,
            timeout.as_secs()
        );
    }
    // The owning mvm notices the VM is off and exits, which destroys it.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::fake::Fake;
    use minos_abi::types::{set_name, VmCreate};

    fn fake_with_running_vm(obeys: bool) -> Fake {
        let f = Fake {
            obeys_shutdown: obeys,
            ..Fake::default()
        };
        let mut req = VmCreate {
            mem_size: 2 << 20,
            ..VmCreate::default()
        };
        set_name(&mut req.name, "g");
        f.create(&req).unwrap();
        f.start(1).unwrap();
        f.calls.borrow_mut().clear();
        f
    }

    #[test]
    fn shutdown_waits_for_a_guest_that_powers_off() {
        let f = fake_with_running_vm(true);
        let v = find(&all(&f).unwrap(), "g").unwrap();
        shutdown(&f, &v, Duration::from_secs(5)).unwrap();
        assert_eq!(*f.calls.borrow(), ["shutdown 1"]);
    }

    #[test]
    fn shutdown_stops_a_guest_that_ignores_it() {
        let f = fake_with_running_vm(false);
        let v = find(&all(&f).unwrap(), "1").unwrap();
        shutdown(&f, &v, Duration::ZERO).unwrap();
        assert_eq!(*f.calls.borrow(), ["shutdown 1", "stop 1"]);
        assert_eq!(f.info(1).unwrap().unwrap().state, VmState::Off as u32);
    }

    #[test]
    fn destroy_without_an_owner_goes_through_the_driver() {
        let f = fake_with_running_vm(true);
        let v = find(&all(&f).unwrap(), "g").unwrap();
        assert_eq!(v.owner_pid, 0);
        destroy(&f, &v).unwrap();
        assert_eq!(*f.calls.borrow(), ["destroy 1"]);
        let e = restart(&v).unwrap_err().to_string();
        assert!(e.contains("has no running mvm"), "{e}");
    }

    fn vm(id: u32, name: &str) -> VmInfo {
        let mut v = VmInfo {
            vmid: id,
            state: VmState::Running as u32,
            nr_vcpus: 2,
            mem_size: 84 << 20,
            mem_base: 0x8000_0000,
            ..VmInfo::default()
        };
        set_name(&mut v.name, name);
        v
    }

    #[test]
    fn finds_by_name_first_then_id() {
        let vms = [vm(1, "elinux"), vm(2, "1"), vm(3, "other")];
        assert_eq!(find(&vms, "elinux").unwrap().vmid, 1);
        assert_eq!(
            find(&vms, "1").unwrap().vmid,
            2,
            "a name that looks like an id wins"
        );
        assert_eq!(find(&vms, "3").unwrap().vmid, 3);
        let e = find(&vms, "nope").unwrap_err().to_string();
        assert_eq!(e, "no VM named or numbered `nope` (see mvm list)");
    }

    #[test]
    fn table_shows_each_vm() {
        let t = table(&[vm(4, "elinux")]);
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].contains("elinux"));
        assert!(lines[1].contains("running"));
        assert!(lines[1].contains("84M"));
        assert!(lines[1].contains("0x80000000"));
        assert_eq!(state_name(99), "unknown");
        assert_eq!(
            pool_line(302 << 20, 218 << 20),
            "guest memory: 218 MiB free of 302 MiB\n"
        );
    }
}
