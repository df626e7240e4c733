//! The virtio block backend (`-V virtio_blk,FILE`): one request queue over a host file or
//! block device. Requests: read, write, get-id; anything else answers "unsupported".

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use minos_abi::types::{RequestKind, VirtioRequest};

use crate::driver::Driver;
use crate::virtqueue::{fill, gather, Chain, GuestMem, Queue, QueueError};

const DRIVER_OK: u64 = 4;
const SECTOR: u64 = 512;
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_GET_ID: u32 = 8;
const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;

pub struct Block {
    pub vmid: u32,
    pub index: u32,
    pub intid: u32,
    file: File,
    /// Size in 512-byte sectors (the config space's `capacity`).
    capacity: u64,
    queue: Option<Queue>,
}

impl Block {
    pub fn open(vmid: u32, index: u32, intid: u32, path: &Path) -> anyhow::Result<Block> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("virtio_blk: cannot open {}: {e}", path.display()))?;
        let len = file.metadata()?.len();
        Ok(Block {
            vmid,
            index,
            intid,
            file,
            capacity: len / SECTOR,
            queue: None,
        })
    }

    /// `width` bytes of the config space at `offset`: the 64-bit capacity, then zeros.
    fn config(&self, offset: u32, width: u32) -> u64 {
        let mut cfg = [0u8; 16];
        cfg[..8].copy_from_slice(&self.capacity.to_le_bytes());
        let (o, w) = (offset as usize, width.min(8) as usize);
        let mut b = [0u8; 8];
        if o < cfg.len() {
            let n = w.min(cfg.len() - o);
            b[..n].copy_from_slice(&cfg[o..o + n]);
        }
        u64::from_le_bytes(b)
    }

    pub fn request(&mut self, dev: &dyn Driver, r: &VirtioRequest) -> anyhow::Result<()> {
        let value = match RequestKind::from_u32(r.kind) {
            Some(RequestKind::StatusWrite) => {
                if r.value == 0 {
                    self.reset();
                } else if r.value & DRIVER_OK != 0 {
                    self.queue = dev.live_queue(self.vmid, self.index, 0)?;
                }
                0
            }
            Some(RequestKind::ConfigRead) => self.config(r.offset, r.width),
            _ => 0,
        };
        dev.answer(self.vmid, self.index, value)?;
        Ok(())
    }

    /// The guest is being rebooted: its queue is gone with its memory.
    pub fn reset(&mut self) {
        self.queue = None;
    }

    /// Serves every available request; raises the interrupt if any completed.
    pub fn notify(&mut self, dev: &dyn Driver, mem: &mut GuestMem) -> anyhow::Result<()> {
        let Some(mut q) = self.queue.take() else {
            return Ok(());
        };
        let mut used = false;
        let res = (|| -> anyhow::Result<()> {
            while let Some(chain) = q.pop(mem)? {
                let written = self.serve(mem, &chain)?;
                q.push(mem, chain.head, written)?;
                used = true;
            }
            Ok(())
        })();
        self.queue = Some(q);
        res?;
        if used {
            dev.raise_used(self.vmid, self.intid)?;
        }
        Ok(())
    }

    /// One request: header (16 readable bytes), data, status (the last writable byte).
    /// Returns the bytes written into the chain.
    fn serve(&mut self, mem: &mut GuestMem, chain: &Chain) -> anyhow::Result<u32> {
        let Some(&(status_addr, status_len)) = chain.writable.last().or(chain.readable.last())
        else {
            return Err(QueueError::Malformed("empty descriptor chain").into());
        };
        let status_at = status_addr + u64::from(status_len) - 1;
        let out = gather(mem, chain)?;
        let (status, written) = if out.len() < 16 {
            (S_IOERR, 0)
        } else {
            let kind = u32::from_le_bytes(out[0..4].try_into()?);
            let sector = u64::from_le_bytes(out[8..16].try_into()?);
            let data = &out[16..];
            let offset = sector.checked_mul(SECTOR);
            match kind {
                T_IN => {
                    // Writable buffers minus the status byte.
                    let room: u64 = chain.writable.iter().map(|&(_, l)| u64::from(l)).sum();
                    let len = room.saturating_sub(1) as usize;
                    let mut buf = vec![0u8; len];
                    match offset.map(|o| self.file.read_exact_at(&mut buf, o)) {
                        Some(Ok(())) => (S_OK, fill(mem, chain, &buf)?),
                        _ => (S_IOERR, 0),
                    }
                }
                T_OUT => match offset.map(|o| self.file.write_all_at(data, o)) {
                    Some(Ok(())) => (S_OK, 0),
                    _ => (S_IOERR, 0),
                },
                T_GET_ID => {
                    let id = format!("mvm-vm{}-blk{}", self.vmid, self.index);
                    (S_OK, fill(mem, chain, id.as_bytes())?)
                }
                _ => (S_UNSUPP, 0),
            }
        };
        mem.write(status_at, &[status])?;
        Ok(written + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::fake::Fake;
    use crate::virtqueue::tests::{Guest, AVAIL, BASE, DESC, USED};
    use minos_abi::types::VirtioQueue;

    fn req(kind: RequestKind, offset: u32, value: u64, width: u32) -> VirtioRequest {
        VirtioRequest {
            vmid: 1,
            device: 0,
            kind: kind as u32,
            offset,
            value,
            width,
            reserved: 0,
        }
    }

    fn header(g: &mut Guest, at: usize, kind: u32, sector: u64) {
        g.ram[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        g.ram[at + 4..at + 8].fill(0);
        g.ram[at + 8..at + 16].copy_from_slice(&sector.to_le_bytes());
    }

    #[test]
    fn reads_and_writes_sectors_of_the_backing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let mut disk = vec![0u8; 4 * 512];
        disk[512..517].copy_from_slice(b"hello");
        std::fs::write(&path, &disk).unwrap();
        let fake = Fake::default();
        fake.queues.borrow_mut().push(VirtioQueue {
            vmid: 1,
            size: 4,
            ready: 1,
            desc: DESC,
            driver: AVAIL,
            device_ring: USED,
            ..VirtioQueue::default()
        });
        let mut blk = Block::open(1, 0, 33, &path).unwrap();

        // Capacity: 4 sectors, read as two 32-bit halves.
        blk.request(&fake, &req(RequestKind::ConfigRead, 0, 0, 4))
            .unwrap();
        blk.request(&fake, &req(RequestKind::ConfigRead, 4, 0, 4))
            .unwrap();
        blk.request(&fake, &req(RequestKind::StatusWrite, 0x70, 15, 4))
            .unwrap();
        let acks: Vec<u64> = fake.acks.borrow().iter().map(|a| a.value).collect();
        assert_eq!(acks, [4, 0, 0]);

        // Read sector 1: header, 512-byte data buffer, status byte.
        let mut g = Guest::new();
        header(&mut g, 0x1000, T_IN, 1);
        g.desc(0, BASE + 0x1000, 16, 1, 1);
        g.desc(1, BASE + 0x1100, 512, 1 | 2, 2);
        g.desc(2, BASE + 0x1400, 1, 2, 0);
        g.ram[0x1400] = 0xff;
        g.publish(0, 4);
        blk.notify(&fake, &mut g.mem()).unwrap();
        assert_eq!(&g.ram[0x1100..0x1105], b"hello");
        assert_eq!(g.ram[0x1400], S_OK);
        assert_eq!(fake.irqs.borrow().len(), 1);

        // Write sector 3.
        header(&mut g, 0x1000, T_OUT, 3);
        g.ram[0x1100..0x1105].copy_from_slice(b"world");
        g.desc(1, BASE + 0x1100, 512, 1, 2);
        g.ram[0x1400] = 0xff;
        g.publish(0, 4);
        blk.notify(&fake, &mut g.mem()).unwrap();
        assert_eq!(g.ram[0x1400], S_OK);
        assert_eq!(
            &std::fs::read(&path).unwrap()[3 * 512..3 * 512 + 5],
            b"world"
        );

        // Past the end: an I/O error, not a crash. Unknown request: unsupported.
        header(&mut g, 0x1000, T_IN, 100);
        g.desc(1, BASE + 0x1100, 512, 1 | 2, 2);
        g.publish(0, 4);
        blk.notify(&fake, &mut g.mem()).unwrap();
        assert_eq!(g.ram[0x1400], S_IOERR);
        header(&mut g, 0x1000, 99, 0);
        g.publish(0, 4);
        blk.notify(&fake, &mut g.mem()).unwrap();
        assert_eq!(g.ram[0x1400], S_UNSUPP);
        assert_eq!(g.used_idx(), 4);
    }
}
