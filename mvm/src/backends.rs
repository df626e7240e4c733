//! mvm's device event loop: one epoll over the driver (blocking virtio requests), each
//! device's notification eventfd and each input source (a console's pty, a net device's tap).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::block::Block;
use crate::console::Console;
use crate::driver::Driver;
use crate::log::{debug, warn};
use crate::net::Net;
use crate::virtqueue::{GuestMem, QueueError};

const DRIVER_TOKEN: u64 = u64::MAX;

/// One device's backend.
pub enum Backend {
    Console(Console),
    Block(Block),
    Net(Net),
}

impl Backend {
    fn index(&self) -> u32 {
        match self {
            Backend::Console(c) => c.index,
            Backend::Block(b) => b.index,
            Backend::Net(n) => n.index,
        }
    }
    fn vmid(&self) -> u32 {
        match self {
            Backend::Console(c) => c.vmid,
            Backend::Block(b) => b.vmid,
            Backend::Net(n) => n.vmid,
        }
    }
    /// The descriptor whose readiness means input for the guest.
    fn input_fd(&self) -> Option<RawFd> {
        match self {
            Backend::Console(c) => Some(c.pty.master.as_raw_fd()),
            Backend::Block(_) => None,
            Backend::Net(n) => Some(n.tap_fd()),
        }
    }
    /// Whether its input descriptor should be polled now.
    fn wants_input(&self) -> bool {
        match self {
            Backend::Net(n) => n.wants_input(),
            _ => true,
        }
    }
}

struct Device {
    backend: Backend,
    /// Its queue notifications.
    notify: OwnedFd,
    /// Whether epoll reports its input descriptor (a net device stops it while a frame
    /// waits for a receive buffer: the tap stays readable and would wake the loop forever).
    input_watched: bool,
}

pub struct Backends {
    epoll: OwnedFd,
    devices: Vec<Device>,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn epoll_ctl(
    epoll: &OwnedFd,
    op: libc::c_int,
    fd: RawFd,
    token: u64,
    events: u32,
) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: (re)registering a live descriptor with an epoll instance we own.
    check(unsafe { libc::epoll_ctl(epoll.as_raw_fd(), op, fd, &mut ev) })?;
    Ok(())
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
        epoll_ctl(
            &self.epoll,
            libc::EPOLL_CTL_ADD,
            fd,
            token,
            libc::EPOLLIN as u32,
        )
    }

    /// Starts or stops reporting each device's input as its backend wants.
    fn sync_inputs(&mut self) -> io::Result<()> {
        for (n, d) in self.devices.iter_mut().enumerate() {
            let (Some(fd), want) = (d.backend.input_fd(), d.backend.wants_input()) else {
                continue;
            };
            if want != d.input_watched {
                let events = if want { libc::EPOLLIN as u32 } else { 0 };
                epoll_ctl(
                    &self.epoll,
                    libc::EPOLL_CTL_MOD,
                    fd,
                    2 * n as u64 + 1,
                    events,
                )?;
                d.input_watched = want;
            }
        }
        Ok(())
    }

    /// Adds a device: its queue notifications arrive on a new eventfd bound in the driver;
    /// a console's pty and a net device's tap are watched too.
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
        let input_watched = match backend.input_fd() {
            Some(fd) => {
                self.watch(fd, 2 * n + 1)?;
                true
            }
            None => false,
        };
        self.devices.push(Device {
            backend,
            notify: efd,
            input_watched,
        });
        self.sync_inputs()?;
        Ok(())
    }

    /// The guest's early-console output (if it has one) to the first console's pty: the
    /// guest's `hvc0` is its first virtio console.
    pub fn drain_early(&mut self, dev: &dyn Driver) {
        let first = self.devices.iter_mut().find_map(|d| match &mut d.backend {
            Backend::Console(c) => Some(c),
            _ => None,
        });
        if let Some(con) = first {
            con.drain_early(dev);
        }
    }

    #[cfg(test)]
    pub fn consoles(&self) -> Vec<&Console> {
        self.devices
            .iter()
            .filter_map(|d| match &d.backend {
                Backend::Console(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    /// Before a restart reloads the guest: no backend may touch the last boot's queues (they
    /// lie in memory the new boot reuses) until the new driver sets them up again.
    pub fn reset(&mut self) {
        for d in &mut self.devices {
            match &mut d.backend {
                Backend::Console(c) => c.reset(),
                Backend::Block(b) => b.reset(),
                Backend::Net(n) => n.reset(),
            }
            let mut count = [0u8; 8];
            // SAFETY: an eventfd read of its 8-byte counter into a local buffer (non-blocking:
            // nothing pending is fine).
            unsafe { libc::read(d.notify.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
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
        // Between polls a reset may have dropped a waiting frame: its tap is polled again.
        self.sync_inputs()?;
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
                    debug(&format!(
                        "vm-{} device {} request kind {} offset {:#x} value {:#x}",
                        r.vmid, r.device, r.kind, r.offset, r.value
                    ));
                    match self
                        .devices
                        .iter_mut()
                        .map(|d| &mut d.backend)
                        .find(|b| b.index() == r.device)
                    {
                        Some(Backend::Console(con)) => con.request(dev, &r)?,
                        Some(Backend::Block(blk)) => blk.request(dev, &r)?,
                        Some(Backend::Net(net)) => net.request(dev, &r)?,
                        // A device without a backend: do not leave its vCPU waiting.
                        None => dev.answer(r.vmid, r.device, 0)?,
                    }
                }
                continue;
            }
            let Some(Device {
                backend,
                notify: efd,
                ..
            }) = self.devices.get_mut((token / 2) as usize)
            else {
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
                    Backend::Net(net) if input => net.input(dev, mem),
                    Backend::Net(net) => net.notify(dev, mem),
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
        self.sync_inputs()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::fake::Fake;
    use crate::net::tests::tap_pair;
    use crate::net::{default_mac, HDR_LEN};
    use crate::virtqueue::tests::{Guest, AVAIL, BASE, DESC, USED};
    use minos_abi::types::{RequestKind, VirtioQueue, VirtioRequest, VmCreate};
    use std::io::Write;

    fn epoll_events(b: &Backends) -> i32 {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: the buffer holds 4 entries; a zero timeout never blocks.
        unsafe { libc::epoll_wait(b.epoll.as_raw_fd(), events.as_mut_ptr(), 4, 0) }
    }

    /// A fake VM with a ready net device in a `Backends`; the test guest's RAM and VM0's end
    /// of the tap.
    fn net_backends() -> (Fake, u32, Guest, Backends, std::fs::File) {
        let fake = Fake::default();
        let vmid = fake
            .create(&VmCreate {
                mem_base: BASE,
                mem_size: 0x2000,
                ..VmCreate::default()
            })
            .unwrap();
        // The receive queue uses the test guest's ring, the transmit queue another one.
        fake.queues.borrow_mut().extend([
            VirtioQueue {
                vmid,
                queue: 0,
                size: 4,
                ready: 1,
                desc: DESC,
                driver: AVAIL,
                device_ring: USED,
                ..VirtioQueue::default()
            },
            VirtioQueue {
                vmid,
                queue: 1,
                size: 4,
                ready: 1,
                desc: BASE + 0x400,
                driver: BASE + 0x500,
                device_ring: BASE + 0x600,
                ..VirtioQueue::default()
            },
        ]);
        let g = Guest::new();
        fake.vms.borrow_mut()[0].2.copy_from_slice(&g.ram);
        let (tap, peer) = tap_pair();
        let mut net = Net::new(vmid, 0, 34, tap, default_mac(vmid, 0));
        net.request(
            &fake,
            &VirtioRequest {
                vmid,
                kind: RequestKind::StatusWrite as u32,
                value: 15,
                ..VirtioRequest::default()
            },
        )
        .unwrap();
        let mut b = Backends::new(None).unwrap();
        b.add(&fake, Backend::Net(net)).unwrap();
        (fake, vmid, g, b, peer)
    }

    #[test]
    fn a_net_device_stops_polling_its_tap_while_a_frame_waits_for_a_buffer() {
        let (fake, vmid, mut g, mut b, mut peer) = net_backends();
        // Two frames and no receive buffer: one is held, the tap is no longer polled.
        peer.write_all(&[1u8; 60]).unwrap();
        peer.write_all(&[2u8; 61]).unwrap();
        b.poll_once(&fake, vmid, Duration::ZERO).unwrap();
        assert!(!b.devices[0].input_watched);
        assert_eq!(epoll_events(&b), 0, "a readable tap must not wake the loop");

        // The guest adds two buffers and notifies the device.
        g.desc(0, BASE + 0x1000, 0x100, 2, 0);
        g.desc(1, BASE + 0x1100, 0x100, 2, 0);
        g.publish(0, 4);
        g.publish(1, 4);
        fake.vms.borrow_mut()[0].2.copy_from_slice(&g.ram);
        let one = 1u64.to_ne_bytes();
        // SAFETY: an eventfd write of its 8-byte counter from a local value.
        let rc = unsafe { libc::write(b.devices[0].notify.as_raw_fd(), one.as_ptr().cast(), 8) };
        assert_eq!(rc, 8);
        b.poll_once(&fake, vmid, Duration::ZERO).unwrap();
        let ram = &fake.vms.borrow()[0].2;
        let used_idx = (USED - BASE) as usize + 2;
        assert_eq!(ram[used_idx], 2, "both frames delivered");
        assert_eq!(ram[0x1000 + HDR_LEN], 1);
        assert_eq!(ram[0x1100 + HDR_LEN], 2);
        assert!(b.devices[0].input_watched, "the tap is polled again");
        assert_eq!(fake.irqs.borrow().len(), 1);
    }

    #[test]
    fn a_restart_drops_the_waiting_frame_and_polls_the_tap_again() {
        let (fake, vmid, _g, mut b, mut peer) = net_backends();
        peer.write_all(&[1u8; 60]).unwrap();
        b.poll_once(&fake, vmid, Duration::ZERO).unwrap();
        assert!(!b.devices[0].input_watched);
        b.reset();
        // Until the new boot's driver is ready, frames are read and dropped, never held.
        peer.write_all(&[2u8; 60]).unwrap();
        b.poll_once(&fake, vmid, Duration::ZERO).unwrap();
        b.poll_once(&fake, vmid, Duration::ZERO).unwrap();
        assert!(b.devices[0].input_watched);
        let Backend::Net(net) = &b.devices[0].backend else {
            panic!("not a net device")
        };
        assert_eq!((net.stats.rx_frames, net.stats.rx_not_ready), (0, 1));
        assert!(fake.irqs.borrow().is_empty());
    }
}
