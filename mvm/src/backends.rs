//! mvm's device event loop: one epoll over the driver (blocking virtio requests), each
//! device's notification eventfd and each console's pty.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use minos_abi::types::VirtioAck;

use crate::block::Block;
use crate::console::Console;
use crate::driver::Driver;
use crate::log::warn;
use crate::virtqueue::{GuestMem, QueueError};

const DRIVER_TOKEN: u64 = u64::MAX;

/// One device's backend.
pub enum Backend {
    Console(Console),
    Block(Block),
}

impl Backend {
    fn index(&self) -> u32 {
        match self {
            Backend::Console(c) => c.index,
            Backend::Block(b) => b.index,
        }
    }
    fn vmid(&self) -> u32 {
        match self {
            Backend::Console(c) => c.vmid,
            Backend::Block(b) => b.vmid,
        }
    }
}

pub struct Backends {
    epoll: OwnedFd,
    devices: Vec<(Backend, OwnedFd)>,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Backends {
    pub fn new(request_fd: Option<RawFd>) -> io::Result<Backends> {
        // SAFETY: a new descriptor, owned right away.
        let epoll =
            unsafe { OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        let b = Backends {
            epoll,
            devices: Vec::new(),
        };
        if let Some(fd) = request_fd {
            b.watch(fd, DRIVER_TOKEN)?;
        }
        Ok(b)
    }

    fn watch(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: registering a live descriptor with our epoll instance.
        check(unsafe {
            libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev)
        })?;
        Ok(())
    }

    /// Adds a device: its queue notifications arrive on a new eventfd bound in the driver;
    /// a console's pty is watched too.
    pub fn add(&mut self, dev: &dyn Driver, backend: Backend) -> anyhow::Result<()> {
        // SAFETY: a new descriptor, owned right away.
        let efd = unsafe {
            OwnedFd::from_raw_fd(check(libc::eventfd(
                0,
                libc::EFD_NONBLOCK | libc::EFD_CLOEXEC,
            ))?)
        };
        dev.ioeventfd(backend.vmid(), backend.index(), efd.as_raw_fd())?;
        let n = self.devices.len() as u64;
        self.watch(efd.as_raw_fd(), 2 * n)?;
        if let Backend::Console(con) = &backend {
            self.watch(con.pty.master.as_raw_fd(), 2 * n + 1)?;
        }
        self.devices.push((backend, efd));
        Ok(())
    }

    /// The guest's early-console output (if it has one) to the first console's pty: the
    /// guest's `hvc0` is its first virtio console.
    pub fn drain_early(&mut self, dev: &dyn Driver) {
        let first = self.devices.iter_mut().find_map(|(b, _)| match b {
            Backend::Console(c) => Some(c),
            Backend::Block(_) => None,
        });
        if let Some(con) = first {
            con.drain_early(dev);
        }
    }

    #[cfg(test)]
    pub fn consoles(&self) -> Vec<&Console> {
        self.devices
            .iter()
            .filter_map(|(b, _)| match b {
                Backend::Console(c) => Some(c),
                Backend::Block(_) => None,
            })
            .collect()
    }

    /// Before a restart reloads the guest: no backend may touch the last boot's queues (they
    /// lie in memory the new boot reuses) until the new driver sets them up again.
    pub fn reset(&mut self) {
        for (backend, efd) in &mut self.devices {
            match backend {
                Backend::Console(c) => c.reset(),
                Backend::Block(b) => b.reset(),
            }
            let mut count = [0u8; 8];
            // SAFETY: an eventfd read of its 8-byte counter into a local buffer (non-blocking:
            // nothing pending is fine).
            unsafe { libc::read(efd.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Waits up to `timeout` for device work and does it.
    pub fn poll_once(
        &mut self,
        dev: &dyn Driver,
        vmid: u32,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
        // SAFETY: the buffer holds `events.len()` entries.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout.as_millis().min(i32::MAX as u128) as libc::c_int,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(()),
                _ => Err(e.into()),
            };
        }
        for ev in &events[..n as usize] {
            let token = ev.u64;
            if token == DRIVER_TOKEN {
                for r in dev.read_requests()? {
                    match self.devices.iter_mut().find(|(b, _)| b.index() == r.device) {
                        Some((Backend::Console(con), _)) => con.request(dev, &r)?,
                        Some((Backend::Block(blk), _)) => blk.request(dev, &r)?,
                        // A device without a backend: do not leave its vCPU waiting.
                        None => dev.virtio_ack(&VirtioAck {
                            vmid: r.vmid,
                            device: r.device,
                            value: 0,
                        })?,
                    }
                }
                continue;
            }
            let Some((backend, efd)) = self.devices.get_mut((token / 2) as usize) else {
                continue;
            };
            let input = token % 2 == 1;
            if !input {
                let mut count = [0u8; 8];
                // SAFETY: an eventfd read of its 8-byte counter into a local buffer.
                unsafe { libc::read(efd.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
            }
            let res = dev.with_ram(vmid, &mut |ram, base| {
                let mem = &mut GuestMem { ram, base };
                match &mut *backend {
                    Backend::Console(con) if input => con.input(dev, mem),
                    Backend::Console(con) => con.notify(dev, mem),
                    Backend::Block(blk) => blk.notify(dev, mem),
                }
            });
            if let Err(e) = res {
                // A guest that corrupts its own queues gets a warning, not a dead mvm: its
                // other devices (and this one, once it behaves) go on.
                match e.downcast_ref::<QueueError>() {
                    Some(q) => warn(&format!("vm-{vmid} device {}: {q}", backend.index())),
                    None => return Err(e),
                }
            }
        }
        Ok(())
    }
}
