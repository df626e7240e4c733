//! What mvm needs from the driver, as a trait: [`crate::dev::Minos`] is the real one; tests
//! use a fake hypervisor with its RAM in a `Vec`.

use std::os::fd::RawFd;

use minos_abi::types::{
    ConsoleRead, IrqLevel, IrqLine, MemInfo, VirtioAck, VirtioDevice, VirtioQueue, VirtioRequest,
    VmCreate, VmInfo,
};

use crate::dev::{DevError, Minos};
use crate::virtqueue::Queue;

pub trait Driver {
    fn mem_info(&self) -> Result<MemInfo, DevError>;
    fn create(&self, req: &VmCreate) -> Result<u32, DevError>;
    fn destroy(&self, vmid: u32) -> Result<(), DevError>;
    fn start(&self, vmid: u32) -> Result<(), DevError>;
    fn stop(&self, vmid: u32) -> Result<(), DevError>;
    fn shutdown(&self, vmid: u32) -> Result<(), DevError>;
    fn info(&self, vmid: u32) -> Result<Option<VmInfo>, DevError>;
    fn virtio_add(&self, dev: &VirtioDevice) -> Result<u32, DevError>;
    /// Runs `f` on the VM's RAM and the guest IPA of its first byte.
    fn with_ram(
        &self,
        vmid: u32,
        f: &mut dyn FnMut(&mut [u8], u64) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;
    fn ioeventfd(&self, vmid: u32, device: u32, fd: RawFd) -> Result<(), DevError>;
    fn irq(&self, line: &IrqLine) -> Result<(), DevError>;
    fn virtio_queue(&self, vmid: u32, device: u32, queue: u32) -> Result<VirtioQueue, DevError>;
    fn virtio_ack(&self, ack: &VirtioAck) -> Result<(), DevError>;
    fn read_requests(&self) -> Result<Vec<VirtioRequest>, DevError>;
    /// The descriptor that polls readable while requests are pending.
    fn request_fd(&self) -> Option<RawFd>;
    /// The VM's early-console output from `cursor` on, copied into `buf` (`count` bytes; the
    /// next `cursor`; bytes `lost` to the hypervisor's ring before they could be read).
    fn console_read(&self, vmid: u32, cursor: u64, buf: &mut [u8])
        -> Result<ConsoleRead, DevError>;

    /// Answers device `device`'s outstanding blocking request with `value`.
    fn answer(&self, vmid: u32, device: u32, value: u64) -> Result<(), DevError> {
        self.virtio_ack(&VirtioAck {
            vmid,
            device,
            value,
        })
    }

    /// Raises a device's used-buffer interrupt (an edge on `intid`).
    fn raise_used(&self, vmid: u32, intid: u32) -> Result<(), DevError> {
        self.irq(&IrqLine {
            vmid,
            intid,
            level: IrqLevel::Edge as u32,
            reserved: 0,
        })
    }

    /// Queue `queue` of a device as its driver set it up, if it is live (at `DRIVER_OK`).
    fn live_queue(&self, vmid: u32, device: u32, queue: u32) -> Result<Option<Queue>, DevError> {
        let q = self.virtio_queue(vmid, device, queue)?;
        Ok((q.ready == 1 && q.size > 0)
            .then(|| Queue::new(q.size as u16, q.desc, q.driver, q.device_ring)))
    }
}

impl Driver for Minos {
    fn mem_info(&self) -> Result<MemInfo, DevError> {
        Minos::mem_info(self)
    }
    fn create(&self, req: &VmCreate) -> Result<u32, DevError> {
        Minos::create(self, req)
    }
    fn destroy(&self, vmid: u32) -> Result<(), DevError> {
        Minos::destroy(self, vmid)
    }
    fn start(&self, vmid: u32) -> Result<(), DevError> {
        Minos::start(self, vmid)
    }
    fn stop(&self, vmid: u32) -> Result<(), DevError> {
        Minos::stop(self, vmid)
    }
    fn shutdown(&self, vmid: u32) -> Result<(), DevError> {
        Minos::shutdown(self, vmid)
    }
    fn info(&self, vmid: u32) -> Result<Option<VmInfo>, DevError> {
        Minos::info(self, vmid)
    }
    fn virtio_add(&self, dev: &VirtioDevice) -> Result<u32, DevError> {
        Minos::virtio_add(self, dev)
    }
    fn with_ram(
        &self,
        vmid: u32,
        f: &mut dyn FnMut(&mut [u8], u64) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.with_cached_ram(vmid, |ram| {
            let base = ram.guest_base;
            f(ram.as_mut_slice(), base)
        })?
    }
    fn ioeventfd(&self, vmid: u32, device: u32, fd: RawFd) -> Result<(), DevError> {
        Minos::ioeventfd(self, vmid, device, fd)
    }
    fn irq(&self, line: &IrqLine) -> Result<(), DevError> {
        Minos::irq(self, line)
    }
    fn virtio_queue(&self, vmid: u32, device: u32, queue: u32) -> Result<VirtioQueue, DevError> {
        Minos::virtio_queue(self, vmid, device, queue)
    }
    fn virtio_ack(&self, ack: &VirtioAck) -> Result<(), DevError> {
        Minos::virtio_ack(self, ack)
    }
    fn read_requests(&self) -> Result<Vec<VirtioRequest>, DevError> {
        Minos::read_requests(self)
    }
    fn request_fd(&self) -> Option<RawFd> {
        Some(self.raw_fd())
    }
    fn console_read(
        &self,
        vmid: u32,
        cursor: u64,
        buf: &mut [u8],
    ) -> Result<ConsoleRead, DevError> {
        Minos::console_read(self, vmid, cursor, buf)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A hypervisor in a `RefCell`: one VM table, RAM as a `Vec`, every call recorded.

    use std::cell::RefCell;
    use std::io;

    use minos_abi::types::{VmState, VM_FLAG_GICV3};

    use super::*;

    #[derive(Default)]
    pub struct Fake {
        pub free: u64,
        pub vms: RefCell<Vec<(VmCreate, VmInfo, Vec<u8>)>>,
        pub devices: RefCell<Vec<VirtioDevice>>,
        pub calls: RefCell<Vec<String>>,
        /// The guest powers off when asked (else it ignores VM_SHUTDOWN).
        pub obeys_shutdown: bool,
        /// Misplace the RAM window (a hypervisor bug mvm must catch).
        pub ram_offset: u64,
        /// Virtqueues as the guest set them up: (device, queue) -> state.
        pub queues: RefCell<Vec<VirtioQueue>>,
        pub irqs: RefCell<Vec<IrqLine>>,
        pub acks: RefCell<Vec<VirtioAck>>,
        /// Everything the guest wrote to its early console, of which the hypervisor keeps
        /// the last `early_kept` bytes (0: all).
        pub early: RefCell<Vec<u8>>,
        pub early_kept: usize,
        /// Bytes the hypervisor hands out per `console_read` at most (0: as many as fit).
        pub early_chunk: usize,
    }

    fn enoent() -> DevError {
        DevError::Ioctl {
            what: "fake",
            err: io::Error::from_raw_os_error(libc::ENOENT),
        }
    }

    impl Fake {
        fn set_state(&self, vmid: u32, s: VmState) -> Result<(), DevError> {
            let mut vms = self.vms.borrow_mut();
            let vm = vms.get_mut(vmid as usize - 1).ok_or_else(enoent)?;
            vm.1.state = s as u32;
            Ok(())
        }
    }

    impl Driver for Fake {
        fn mem_info(&self) -> Result<MemInfo, DevError> {
            Ok(MemInfo {
                total: 1 << 30,
                free: self.free,
            })
        }
        fn create(&self, req: &VmCreate) -> Result<u32, DevError> {
            self.calls.borrow_mut().push("create".into());
            let mut vms = self.vms.borrow_mut();
            let info = VmInfo {
                vmid: vms.len() as u32 + 1,
                nr_vcpus: req.nr_vcpus,
                flags: req.flags & VM_FLAG_GICV3,
                mem_base: req.mem_base,
                mem_size: req.mem_size,
                name: req.name,
                ..VmInfo::default()
            };
            // Dirty RAM: mvm must clear it.
            vms.push((*req, info, vec![0xaa; req.mem_size as usize]));
            Ok(vms.len() as u32)
        }
        fn destroy(&self, vmid: u32) -> Result<(), DevError> {
            self.calls.borrow_mut().push(format!("destroy {vmid}"));
            Ok(())
        }
        fn start(&self, vmid: u32) -> Result<(), DevError> {
            self.calls.borrow_mut().push(format!("start {vmid}"));
            self.set_state(vmid, VmState::Running)
        }
        fn stop(&self, vmid: u32) -> Result<(), DevError> {
            self.calls.borrow_mut().push(format!("stop {vmid}"));
            self.set_state(vmid, VmState::Off)
        }
        fn shutdown(&self, vmid: u32) -> Result<(), DevError> {
            self.calls.borrow_mut().push(format!("shutdown {vmid}"));
            match self.obeys_shutdown {
                true => self.set_state(vmid, VmState::Off),
                false => self.set_state(vmid, VmState::ShuttingDown),
            }
        }
        fn info(&self, vmid: u32) -> Result<Option<VmInfo>, DevError> {
            let vms = self.vms.borrow();
            Ok(vmid
                .checked_sub(1)
                .and_then(|i| vms.get(i as usize))
                .map(|v| v.1))
        }
        fn virtio_add(&self, dev: &VirtioDevice) -> Result<u32, DevError> {
            let mut d = self.devices.borrow_mut();
            d.push(*dev);
            Ok(d.len() as u32 - 1)
        }
        fn with_ram(
            &self,
            vmid: u32,
            f: &mut dyn FnMut(&mut [u8], u64) -> anyhow::Result<()>,
        ) -> anyhow::Result<()> {
            let mut vms = self.vms.borrow_mut();
            let vm = vms.get_mut(vmid as usize - 1).ok_or_else(enoent)?;
            let base = vm.0.mem_base + self.ram_offset;
            f(&mut vm.2, base)
        }
        fn ioeventfd(&self, _vmid: u32, _device: u32, _fd: RawFd) -> Result<(), DevError> {
            Ok(())
        }
        fn irq(&self, line: &IrqLine) -> Result<(), DevError> {
            self.irqs.borrow_mut().push(*line);
            Ok(())
        }
        fn virtio_queue(
            &self,
            vmid: u32,
            device: u32,
            queue: u32,
        ) -> Result<VirtioQueue, DevError> {
            self.queues
                .borrow()
                .iter()
                .find(|q| (q.vmid, q.device, q.queue) == (vmid, device, queue))
                .copied()
                .ok_or_else(enoent)
        }
        fn virtio_ack(&self, ack: &VirtioAck) -> Result<(), DevError> {
            self.acks.borrow_mut().push(*ack);
            Ok(())
        }
        fn read_requests(&self) -> Result<Vec<VirtioRequest>, DevError> {
            Ok(Vec::new())
        }
        fn request_fd(&self) -> Option<RawFd> {
            None
        }
        fn console_read(
            &self,
            vmid: u32,
            cursor: u64,
            buf: &mut [u8],
        ) -> Result<ConsoleRead, DevError> {
            self.calls
                .borrow_mut()
                .push(format!("console_read {cursor}"));
            let out = self.early.borrow();
            let written = out.len() as u64;
            if cursor > written {
                return Err(DevError::Ioctl {
                    what: "fake console_read",
                    err: io::Error::from_raw_os_error(libc::EINVAL),
                });
            }
            let oldest = match self.early_kept {
                0 => 0,
                k => written.saturating_sub(k as u64),
            };
            let start = cursor.max(oldest);
            let mut n = buf.len().min((written - start) as usize);
            if self.early_chunk > 0 {
                n = n.min(self.early_chunk);
            }
            buf[..n].copy_from_slice(&out[start as usize..start as usize + n]);
            Ok(ConsoleRead {
                vmid,
                count: n as u32,
                cursor: start + n as u64,
                lost: start - cursor,
                buf: 0,
            })
        }
    }
}
