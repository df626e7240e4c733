//! Split virtqueues (virtio 1.x, section 2.6) in guest RAM, for mvm's device backends: take
//! the descriptor chains the guest made available, hand back used ones. Every guest-supplied
//! index, length and address is checked: a bad guest gets an error, never a panic.

use std::sync::atomic::{fence, Ordering};

const DESC_SIZE: u64 = 16;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("guest address {addr:#x}+{len:#x} is outside the VM's RAM")]
    OutOfRam { addr: u64, len: u64 },
    #[error("descriptor index {0} is past the queue size")]
    BadIndex(u16),
    #[error("descriptor chain longer than the queue (a loop)")]
    Loop,
    #[error("indirect descriptors were not offered")]
    Indirect,
    #[error("a device-readable descriptor follows a device-writable one")]
    ReadAfterWrite,
    #[error("the guest made {0} buffers available at once, more than the queue holds")]
    TooManyAvailable(u16),
    #[error("malformed request: {0}")]
    Malformed(&'static str),
}

/// A VM's RAM as mvm maps it: byte 0 is guest IPA `base`.
pub struct GuestMem<'a> {
    pub ram: &'a mut [u8],
    pub base: u64,
}

impl GuestMem<'_> {
    fn range(&self, addr: u64, len: u64) -> Result<std::ops::Range<usize>, QueueError> {
        let err = QueueError::OutOfRam { addr, len };
        let off = addr.checked_sub(self.base).ok_or(err)?;
        let end = off.checked_add(len).ok_or(err)?;
        if end > self.ram.len() as u64 {
            return Err(err);
        }
        Ok(off as usize..end as usize)
    }

    pub fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), QueueError> {
        let r = self.range(addr, out.len() as u64)?;
        out.copy_from_slice(&self.ram[r]);
        Ok(())
    }

    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), QueueError> {
        let r = self.range(addr, data.len() as u64)?;
        self.ram[r].copy_from_slice(data);
        Ok(())
    }

    fn u16_at(&self, addr: u64) -> Result<u16, QueueError> {
        let mut b = [0; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }
}

/// One descriptor chain: its head index and its buffers, device-readable ones first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub head: u16,
    pub readable: Vec<(u64, u32)>,
    pub writable: Vec<(u64, u32)>,
}

impl Chain {
    /// Bytes the device may write into this chain.
    #[cfg(test)]
    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|&(_, l)| u64::from(l)).sum()
    }
}

/// A queue as the guest configured it (from `VIRTIO_QUEUE`), plus the device's position.
#[derive(Debug, Clone)]
pub struct Queue {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    next_avail: u16,
    next_used: u16,
}

impl Queue {
    pub fn new(size: u16, desc: u64, avail: u64, used: u64) -> Queue {
        Queue {
            size,
            desc,
            avail,
            used,
            next_avail: 0,
            next_used: 0,
        }
    }

    /// The next chain the guest made available, if any.
    pub fn pop(&mut self, mem: &GuestMem) -> Result<Option<Chain>, QueueError> {
        let avail_idx = mem.u16_at(self.avail + 2)?;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(QueueError::TooManyAvailable(pending));
        }
        // The ring entries were written before the index the guest published.
        fence(Ordering::Acquire);
        let slot = u64::from(self.next_avail % self.size);
        let head = mem.u16_at(self.avail + 4 + 2 * slot)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        self.chain(mem, head).map(Some)
    }

    fn chain(&self, mem: &GuestMem, head: u16) -> Result<Chain, QueueError> {
        let mut chain = Chain {
            head,
            readable: Vec::new(),
            writable: Vec::new(),
        };
        let mut idx = head;
        for _ in 0..self.size {
            if idx >= self.size {
                return Err(QueueError::BadIndex(idx));
            }
            let mut d = [0u8; DESC_SIZE as usize];
            mem.read(self.desc + DESC_SIZE * u64::from(idx), &mut d)?;
            let addr = u64::from_le_bytes(d[0..8].try_into().unwrap_or_default());
            let len = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default());
            let flags = u16::from_le_bytes([d[12], d[13]]);
            let next = u16::from_le_bytes([d[14], d[15]]);
            if flags & F_INDIRECT != 0 {
                return Err(QueueError::Indirect);
            }
            mem.range(addr, u64::from(len))?;
            if flags & F_WRITE != 0 {
                chain.writable.push((addr, len));
            } else if chain.writable.is_empty() {
                chain.readable.push((addr, len));
            } else {
                return Err(QueueError::ReadAfterWrite);
            }
            if flags & F_NEXT == 0 {
                return Ok(chain);
            }
            idx = next;
        }
        Err(QueueError::Loop)
    }

    /// Returns chain `head` to the guest with `len` bytes written into it.
    pub fn push(&mut self, mem: &mut GuestMem, head: u16, len: u32) -> Result<(), QueueError> {
        let slot = u64::from(self.next_used % self.size);
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        mem.write(self.used + 4 + 8 * slot, &elem)?;
        self.next_used = self.next_used.wrapping_add(1);
        // The element must be visible before the index that publishes it.
        fence(Ordering::Release);
        mem.write(self.used + 2, &self.next_used.to_le_bytes())
    }
}

/// Copies `data` into a chain's writable buffers; returns the bytes written.
pub fn fill(mem: &mut GuestMem, chain: &Chain, data: &[u8]) -> Result<u32, QueueError> {
    let mut done = 0usize;
    for &(addr, len) in &chain.writable {
        let n = (len as usize).min(data.len() - done);
        mem.write(addr, &data[done..done + n])?;
        done += n;
        if done == data.len() {
            break;
        }
    }
    Ok(done as u32)
}

/// Gathers a chain's readable buffers.
pub fn gather(mem: &GuestMem, chain: &Chain) -> Result<Vec<u8>, QueueError> {
    let mut out = Vec::new();
    for &(addr, len) in &chain.readable {
        let start = out.len();
        out.resize(start + len as usize, 0);
        mem.read(addr, &mut out[start..])?;
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const BASE: u64 = 0x8000_0000;
    pub(crate) const DESC: u64 = BASE;
    pub(crate) const AVAIL: u64 = BASE + 0x100;
    pub(crate) const USED: u64 = BASE + 0x200;
    const BUF: u64 = BASE + 0x1000;

    /// A guest driver: writes descriptors and publishes heads like Linux's virtio_ring.
    pub(crate) struct Guest {
        pub(crate) ram: Vec<u8>,
        avail_idx: u16,
    }

    impl Guest {
        pub(crate) fn new() -> Guest {
            Guest {
                ram: vec![0; 0x2000],
                avail_idx: 0,
            }
        }
        pub(crate) fn mem(&mut self) -> GuestMem<'_> {
            GuestMem {
                ram: &mut self.ram,
                base: BASE,
            }
        }
        pub(crate) fn desc(&mut self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
            let off = (DESC - BASE + 16 * u64::from(i)) as usize;
            self.ram[off..off + 8].copy_from_slice(&addr.to_le_bytes());
            self.ram[off + 8..off + 12].copy_from_slice(&len.to_le_bytes());
            self.ram[off + 12..off + 14].copy_from_slice(&flags.to_le_bytes());
            self.ram[off + 14..off + 16].copy_from_slice(&next.to_le_bytes());
        }
        pub(crate) fn publish(&mut self, head: u16, size: u16) {
            let slot = (AVAIL - BASE + 4 + 2 * u64::from(self.avail_idx % size)) as usize;
            self.ram[slot..slot + 2].copy_from_slice(&head.to_le_bytes());
            self.avail_idx = self.avail_idx.wrapping_add(1);
            let idx = (AVAIL - BASE + 2) as usize;
            self.ram[idx..idx + 2].copy_from_slice(&self.avail_idx.to_le_bytes());
        }
        fn used(&self, slot: u64) -> (u32, u32) {
            let off = (USED - BASE + 4 + 8 * slot) as usize;
            let id = u32::from_le_bytes(self.ram[off..off + 4].try_into().unwrap());
            let len = u32::from_le_bytes(self.ram[off + 4..off + 8].try_into().unwrap());
            (id, len)
        }
        pub(crate) fn used_idx(&self) -> u16 {
            let off = (USED - BASE + 2) as usize;
            u16::from_le_bytes([self.ram[off], self.ram[off + 1]])
        }
    }

    #[test]
    fn transmit_then_receive() {
        let mut g = Guest::new();
        let mut q = Queue::new(4, DESC, AVAIL, USED);
        // A transmit chain of two readable buffers.
        g.ram[0x1000..0x1003].copy_from_slice(b"hel");
        g.ram[0x1100..0x1102].copy_from_slice(b"lo");
        g.desc(0, BUF, 3, F_NEXT, 1);
        g.desc(1, BUF + 0x100, 2, 0, 0);
        g.publish(0, 4);
        let chain = q.pop(&g.mem()).unwrap().unwrap();
        assert_eq!(gather(&g.mem(), &chain).unwrap(), b"hello");
        assert_eq!(q.pop(&g.mem()).unwrap(), None, "nothing else available");
        q.push(&mut g.mem(), chain.head, 0).unwrap();
        assert_eq!((g.used_idx(), g.used(0)), (1, (0, 0)));

        // A receive buffer of 8 bytes gets 5.
        g.desc(2, BUF + 0x200, 8, F_WRITE, 0);
        g.publish(2, 4);
        let chain = q.pop(&g.mem()).unwrap().unwrap();
        assert_eq!(chain.writable_len(), 8);
        let n = fill(&mut g.mem(), &chain, b"world").unwrap();
        q.push(&mut g.mem(), chain.head, n).unwrap();
        assert_eq!(&g.ram[0x1200..0x1205], b"world");
        assert_eq!((g.used_idx(), g.used(1)), (2, (2, 5)));
    }

    #[test]
    fn indexes_wrap_around() {
        let mut g = Guest::new();
        let mut q = Queue::new(2, DESC, AVAIL, USED);
        g.desc(0, BUF, 1, 0, 0);
        for i in 0..70_000u32 {
            g.publish(0, 2);
            let c = q.pop(&g.mem()).unwrap().unwrap();
            q.push(&mut g.mem(), c.head, i).unwrap();
        }
        assert_eq!(g.used_idx(), (70_000u32 % 65_536) as u16);
    }

    #[test]
    fn a_bad_guest_gets_errors() {
        let mut g = Guest::new();
        let mut q = Queue::new(4, DESC, AVAIL, USED);
        g.desc(0, BUF, 1, F_NEXT, 0); // points at itself
        g.publish(0, 4);
        assert_eq!(q.pop(&g.mem()), Err(QueueError::Loop));

        g.desc(1, BUF, 1, F_NEXT, 9);
        g.publish(1, 4);
        assert_eq!(q.pop(&g.mem()), Err(QueueError::BadIndex(9)));

        g.desc(2, BASE + 0x1ff0, 0x20, 0, 0);
        g.publish(2, 4);
        assert!(matches!(q.pop(&g.mem()), Err(QueueError::OutOfRam { .. })));

        g.desc(3, BUF, 1, F_INDIRECT, 0);
        g.publish(3, 4);
        assert_eq!(q.pop(&g.mem()), Err(QueueError::Indirect));

        g.desc(0, BUF, 1, F_WRITE | F_NEXT, 1);
        g.desc(1, BUF, 1, 0, 0);
        g.publish(0, 4);
        assert_eq!(q.pop(&g.mem()), Err(QueueError::ReadAfterWrite));

        g.publish(0, 4);
        g.avail_idx = g.avail_idx.wrapping_add(10);
        g.publish(0, 4);
        assert_eq!(q.pop(&g.mem()), Err(QueueError::TooManyAvailable(12)));

        let mut g = Guest::new();
        g.publish(0, 4);
        let mut q = Queue::new(4, u64::MAX - 8, AVAIL, USED);
        assert!(matches!(q.pop(&g.mem()), Err(QueueError::OutOfRam { .. })));
        let mut q = Queue::new(4, DESC, AVAIL, BASE - 0x10);
        assert!(matches!(
            q.push(&mut g.mem(), 0, 0),
            Err(QueueError::OutOfRam { .. })
        ));
    }
}
