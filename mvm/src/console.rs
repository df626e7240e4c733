//! The virtio console backend (`-V virtio_console,@pty:`): queue 0 (receiveq) carries what a
//! user types on the pty to the guest, queue 1 (transmitq) the guest's output to the pty.
//! No features are offered, so the config space is never read for real: it reads as 0.

use std::io::{self, Read};

use minos_abi::types::{RequestKind, VirtioRequest};

use crate::driver::Driver;
use crate::early::EarlyConsole;
use crate::log::warn;
use crate::pty::{self, Pty};
use crate::virtqueue::{fill, gather, GuestMem, Queue};

/// Virtio device status bit: the driver is ready (its queues are set up).
const DRIVER_OK: u64 = 4;
const RECEIVEQ: usize = 0;
const TRANSMITQ: usize = 1;

pub struct Console {
    pub vmid: u32,
    pub index: u32,
    pub intid: u32,
    pub pty: Pty,
    queues: [Option<Queue>; 2],
    /// Typed bytes waiting for a receive buffer.
    pending: Vec<u8>,
    early: Option<EarlyConsole>,
}

impl Console {
    pub fn new(vmid: u32, index: u32, intid: u32, pty: Pty) -> Console {
        Console {
            vmid,
            index,
            intid,
            pty,
            queues: [None, None],
            pending: Vec::new(),
            early: None,
        }
    }

    /// Answers a blocking request of this device: status writes set the queues up (on
    /// `DRIVER_OK`) or drop them (on reset); config reads give 0.
    pub fn request(&mut self, dev: &dyn Driver, r: &VirtioRequest) -> anyhow::Result<()> {
        if RequestKind::from_u32(r.kind) == Some(RequestKind::StatusWrite) {
            if r.value == 0 {
                self.reset();
            } else if r.value & DRIVER_OK != 0 {
                for (i, slot) in self.queues.iter_mut().enumerate() {
                    *slot = dev.live_queue(self.vmid, self.index, i as u32)?;
                }
            }
        }
        dev.answer(self.vmid, self.index, 0)?;
        Ok(())
    }

    /// The guest is being rebooted: its queues are gone with its memory, and what was typed
    /// for the last boot is not for the next one.
    pub fn reset(&mut self) {
        self.queues = [None, None];
        self.pending.clear();
    }

    fn raise(&self, dev: &dyn Driver) -> anyhow::Result<()> {
        dev.raise_used(self.vmid, self.intid)?;
        Ok(())
    }

    /// This console also shows the guest's early console (`--earlyprintk`).
    pub fn with_early(mut self, early: EarlyConsole) -> Console {
        self.early = Some(early);
        self
    }

    /// Writes what the guest printed on its early console since the last call to the pty.
    /// A failure is reported once and ends it (the virtio console goes on).
    pub fn drain_early(&mut self, dev: &dyn Driver) {
        let Some(e) = self.early.as_mut() else { return };
        if let Err(err) = e.drain(dev, &mut self.pty.master) {
            warn(&format!(
                "vm-{}: early console: {err}; its output is not read any more",
                self.vmid
            ));
            self.early = None;
        }
    }

    /// The guest notified a queue: send its output to the pty, hand pending input over.
    pub fn notify(&mut self, dev: &dyn Driver, mem: &mut GuestMem) -> anyhow::Result<()> {
        // The early console's last lines were printed before anything reached this queue:
        // they go to the pty first, so it shows both in the order the guest printed them.
        self.drain_early(dev);
        let mut used = false;
        if let Some(tx) = self.queues[TRANSMITQ].as_mut() {
            while let Some(chain) = tx.pop(mem)? {
                let data = gather(mem, &chain)?;
                // Nobody attached to the pty: the output is dropped, as on a serial line.
                pty::write_or_drop(&mut self.pty.master, &data)?;
                tx.push(mem, chain.head, 0)?;
                used = true;
            }
        }
        used |= self.deliver(mem)?;
        if used {
            self.raise(dev)?;
        }
        Ok(())
    }

    /// Reads what was typed on the pty and hands it to the guest.
    pub fn input(&mut self, dev: &dyn Driver, mem: &mut GuestMem) -> anyhow::Result<()> {
        let mut buf = [0u8; 1024];
        match self.pty.master.read(&mut buf) {
            Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) => {}
            // No slave open (yet): nothing typed.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => {}
            Err(e) => return Err(e.into()),
        }
        if self.deliver(mem)? {
            self.raise(dev)?;
        }
        Ok(())
    }

    /// Copies pending input into receive buffers; returns whether any was used.
    fn deliver(&mut self, mem: &mut GuestMem) -> anyhow::Result<bool> {
        let Some(rx) = self.queues[RECEIVEQ].as_mut() else {
            return Ok(false);
        };
        let mut used = false;
        while !self.pending.is_empty() {
            let Some(chain) = rx.pop(mem)? else { break };
            let n = fill(mem, &chain, &self.pending)?;
            rx.push(mem, chain.head, n)?;
            self.pending.drain(..n as usize);
            used = true;
        }
        Ok(used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::fake::Fake;
    use crate::virtqueue::tests::{Guest, AVAIL, BASE, DESC, USED};
    use minos_abi::types::VirtioQueue;
    use std::io::Write;

    const RX_DESC: u64 = BASE + 0x400;
    const RX_AVAIL: u64 = BASE + 0x500;
    const RX_USED: u64 = BASE + 0x600;

    fn queue(queue: u32, desc: u64, driver: u64, device_ring: u64) -> VirtioQueue {
        VirtioQueue {
            vmid: 1,
            device: 0,
            queue,
            size: 4,
            ready: 1,
            desc,
            driver,
            device_ring,
            ..VirtioQueue::default()
        }
    }

    fn status(value: u64) -> VirtioRequest {
        VirtioRequest {
            vmid: 1,
            device: 0,
            kind: RequestKind::StatusWrite as u32,
            offset: 0x70,
            value,
            width: 4,
            reserved: 0,
        }
    }

    #[test]
    fn guest_output_reaches_the_pty_and_typing_reaches_the_guest() {
        let fake = Fake::default();
        fake.queues.borrow_mut().extend([
            queue(0, RX_DESC, RX_AVAIL, RX_USED),
            queue(1, DESC, AVAIL, USED),
        ]);
        let pty = crate::pty::open().unwrap();
        let mut slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&pty.path)
            .unwrap();
        let mut con = Console::new(1, 0, 32, pty);

        con.request(&fake, &status(1 | 2 | 4)).unwrap();
        assert_eq!(fake.acks.borrow().len(), 1, "every request is answered");

        // The guest prints "hi\n".
        let mut g = Guest::new();
        g.ram[0x1000..0x1003].copy_from_slice(b"hi\n");
        g.desc(0, BASE + 0x1000, 3, 0, 0);
        g.publish(0, 4);
        con.notify(&fake, &mut g.mem()).unwrap();
        let mut out = [0u8; 8];
        let n = slave.read(&mut out).unwrap();
        assert_eq!(&out[..n], b"hi\n");
        assert_eq!(g.used_idx(), 1);
        assert_eq!(fake.irqs.borrow().len(), 1, "used buffer interrupt");

        // The user types "ls" before the guest has a receive buffer: it waits.
        slave.write_all(b"ls").unwrap();
        con.input(&fake, &mut g.mem()).unwrap();
        assert_eq!(fake.irqs.borrow().len(), 1);
        // The guest adds a 16-byte receive buffer and notifies.
        let off = (RX_DESC - BASE) as usize;
        g.ram[off..off + 8].copy_from_slice(&(BASE + 0x1800).to_le_bytes());
        g.ram[off + 8..off + 12].copy_from_slice(&16u32.to_le_bytes());
        g.ram[off + 12..off + 14].copy_from_slice(&2u16.to_le_bytes());
        let a = (RX_AVAIL - BASE) as usize;
        g.ram[a + 4..a + 6].copy_from_slice(&0u16.to_le_bytes());
        g.ram[a + 2..a + 4].copy_from_slice(&1u16.to_le_bytes());
        con.notify(&fake, &mut g.mem()).unwrap();
        assert_eq!(&g.ram[0x1800..0x1802], b"ls");
        let u = (RX_USED - BASE) as usize;
        assert_eq!(&g.ram[u + 2..u + 4], &1u16.to_le_bytes());
        assert_eq!(&g.ram[u + 8..u + 12], &2u32.to_le_bytes(), "2 bytes used");
        assert_eq!(fake.irqs.borrow().len(), 2);

        // A device reset drops the queues.
        con.request(&fake, &status(0)).unwrap();
        g.publish(0, 4);
        con.notify(&fake, &mut g.mem()).unwrap();
        assert_eq!(g.used_idx(), 1, "nothing consumed after reset");
    }

    #[test]
    fn a_restart_forgets_the_last_boots_queues_and_typing() {
        let fake = Fake::default();
        fake.queues.borrow_mut().extend([
            queue(0, RX_DESC, RX_AVAIL, RX_USED),
            queue(1, DESC, AVAIL, USED),
        ]);
        let pty = crate::pty::open().unwrap();
        let mut slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&pty.path)
            .unwrap();
        let mut con = Console::new(1, 0, 32, pty);
        con.request(&fake, &status(1 | 2 | 4)).unwrap();
        // Typed for the old boot, before the guest had a receive buffer.
        slave.write_all(b"old").unwrap();
        let mut g = Guest::new();
        let mut poll = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&con.pty.master),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        assert_eq!(unsafe { libc::poll(&mut poll, 1, 5000) }, 1);
        con.input(&fake, &mut g.mem()).unwrap();
        con.reset();
        // The new boot's memory holds what looks like ring entries at the old addresses.
        g.ram[0x1000..0x1003].copy_from_slice(b"hi\n");
        g.desc(0, BASE + 0x1000, 3, 0, 0);
        g.publish(0, 4);
        let before = g.ram.clone();
        con.notify(&fake, &mut g.mem()).unwrap();
        con.input(&fake, &mut g.mem()).unwrap();
        assert!(g.ram == before, "the new boot's memory was written");
        assert!(fake.irqs.borrow().is_empty());
    }
}
