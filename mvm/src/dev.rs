//! The `/dev/minos` client: every ioctl of the driver, and the mapping of a VM's RAM.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use minos_abi::types::{
    ConsoleRead, IoEventFd, IrqLine, MapInfo, MemInfo, VirtioAck, VirtioDevice, VirtioQueue,
    VirtioRequest, VmCreate, VmInfo,
};
use minos_abi::{ioctl, split_version, ABI_VERSION};

pub const DEVICE: &str = "/dev/minos";

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("minos.ko is not loaded ({0} does not exist): insmod minos.ko first")]
    NotLoaded(String),
    #[error("cannot open {0}: {1}")]
    Open(String, io::Error),
    #[error("minos.ko speaks ABI {}.{} but this mvm speaks {}.{}: use the mvm built with that driver",
            split_version(*.driver).0, split_version(*.driver).1,
            split_version(ABI_VERSION).0, split_version(ABI_VERSION).1)]
    Version { driver: u32 },
    #[error("{what}: the hypervisor does not implement this call yet (NOT_SUPPORTED)")]
    NotSupported { what: &'static str },
    #[error("{what}: {err}")]
    Ioctl { what: &'static str, err: io::Error },
}

/// An open `/dev/minos`.
pub struct Minos {
    file: File,
    /// The last VM RAM mapped, kept for the device loop (which touches it on every event).
    ram: std::cell::RefCell<Option<(u32, GuestRam)>>,
}

impl Minos {
    /// Opens the device and checks the driver speaks our ABI major.
    pub fn open() -> Result<Minos, DevError> {
        Self::open_at(Path::new(DEVICE))
    }

    pub fn open_at(path: &Path) -> Result<Minos, DevError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => DevError::NotLoaded(path.display().to_string()),
                _ => DevError::Open(path.display().to_string(), e),
            })?;
        let dev = Minos {
            file,
            ram: std::cell::RefCell::new(None),
        };
        let driver = dev.version()?;
        if !minos_abi::compatible(driver) {
            return Err(DevError::Version { driver });
        }
        Ok(dev)
    }

    fn ioctl<T>(&self, what: &'static str, req: u32, arg: &mut T) -> Result<(), DevError> {
        // SAFETY: `req` encodes size_of::<T>() (checked by the ABI crate's tables) and `arg`
        // is a live, exclusively borrowed T for the duration of the call.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), req as _, arg as *mut T) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            // minos.ko turns the hypervisor's NOT_SUPPORTED into EOPNOTSUPP, and nothing else.
            if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
                return Err(DevError::NotSupported { what });
            }
            return Err(DevError::Ioctl { what, err });
        }
        Ok(())
    }

    pub fn version(&self) -> Result<u32, DevError> {
        let mut v = 0u32;
        self.ioctl("asking the driver's ABI version", ioctl::VERSION, &mut v)?;
        Ok(v)
    }

    pub fn mem_info(&self) -> Result<MemInfo, DevError> {
        let mut m = MemInfo::default();
        self.ioctl(
            "asking the hypervisor's free memory",
            ioctl::MEM_INFO,
            &mut m,
        )?;
        Ok(m)
    }

    /// Creates a VM owned by this open device; returns its id.
    pub fn create(&self, req: &VmCreate) -> Result<u32, DevError> {
        let mut r = *req;
        self.ioctl("creating the VM", ioctl::VM_CREATE, &mut r)?;
        Ok(r.vmid)
    }

    fn vm_call(&self, what: &'static str, req: u32, vmid: u32) -> Result<(), DevError> {
        let mut id = vmid;
        self.ioctl(what, req, &mut id)
    }

    pub fn destroy(&self, vmid: u32) -> Result<(), DevError> {
        self.vm_call("destroying the VM", ioctl::VM_DESTROY, vmid)
    }

    pub fn start(&self, vmid: u32) -> Result<(), DevError> {
        self.vm_call("starting the VM", ioctl::VM_START, vmid)
    }

    pub fn stop(&self, vmid: u32) -> Result<(), DevError> {
        self.vm_call("stopping the VM", ioctl::VM_STOP, vmid)
    }

    pub fn shutdown(&self, vmid: u32) -> Result<(), DevError> {
        self.vm_call("asking the guest to power off", ioctl::VM_SHUTDOWN, vmid)
    }

    /// One VM's state; `None` when there is no such VM.
    pub fn info(&self, vmid: u32) -> Result<Option<VmInfo>, DevError> {
        let mut i = VmInfo {
            vmid,
            ..VmInfo::default()
        };
        match self.ioctl("asking the VM's state", ioctl::VM_INFO, &mut i) {
            Ok(()) => Ok(Some(i)),
            Err(DevError::Ioctl { err, .. }) if err.raw_os_error() == Some(libc::ENOENT) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub fn virtio_add(&self, dev: &VirtioDevice) -> Result<u32, DevError> {
        let mut d = *dev;
        self.ioctl("adding a virtio device", ioctl::VIRTIO_ADD, &mut d)?;
        Ok(d.index)
    }

    pub fn ioeventfd(&self, vmid: u32, device: u32, fd: RawFd) -> Result<(), DevError> {
        let mut e = IoEventFd {
            vmid,
            device,
            fd,
            reserved: 0,
        };
        self.ioctl("binding a notification eventfd", ioctl::IOEVENTFD, &mut e)
    }

    pub fn irq(&self, line: &IrqLine) -> Result<(), DevError> {
        let mut l = *line;
        self.ioctl("raising a guest interrupt", ioctl::IRQ, &mut l)
    }

    pub fn virtio_queue(
        &self,
        vmid: u32,
        device: u32,
        queue: u32,
    ) -> Result<VirtioQueue, DevError> {
        let mut q = VirtioQueue {
            vmid,
            device,
            queue,
            ..VirtioQueue::default()
        };
        self.ioctl(
            "asking a virtqueue's addresses",
            ioctl::VIRTIO_QUEUE,
            &mut q,
        )?;
        Ok(q)
    }

    pub fn virtio_ack(&self, ack: &VirtioAck) -> Result<(), DevError> {
        let mut a = *ack;
        self.ioctl("answering a virtio request", ioctl::VIRTIO_ACK, &mut a)
    }

    /// What the VM wrote to its early console from `cursor` on, into `buf` (at most 4 KiB
    /// per call): `count`, the next `cursor` and the bytes `lost` before it.
    pub fn console_read(
        &self,
        vmid: u32,
        cursor: u64,
        buf: &mut [u8],
    ) -> Result<ConsoleRead, DevError> {
        let mut r = ConsoleRead {
            vmid,
            count: u32::try_from(buf.len()).unwrap_or(u32::MAX),
            cursor,
            lost: 0,
            buf: buf.as_mut_ptr() as u64,
        };
        self.ioctl(
            "reading the guest's early console",
            ioctl::CONSOLE_READ,
            &mut r,
        )?;
        // The driver never reports more than it was given room for; do not trust it blindly.
        r.count = r.count.min(u32::try_from(buf.len()).unwrap_or(u32::MAX));
        Ok(r)
    }

    /// The pending blocking requests of our VMs (none: empty), without waiting.
    pub fn read_requests(&self) -> Result<Vec<VirtioRequest>, DevError> {
        let mut buf = [VirtioRequest::default(); 16];
        // SAFETY: reading plain-old-data records into a buffer of exactly that many bytes.
        let n = unsafe {
            libc::read(
                self.file.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                std::mem::size_of_val(&buf),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                return Ok(Vec::new());
            }
            return Err(DevError::Ioctl {
                what: "reading virtio requests",
                err,
            });
        }
        let count = n as usize / std::mem::size_of::<VirtioRequest>();
        Ok(buf[..count].to_vec())
    }

    /// Runs `f` on a VM's RAM, mapping it on first use and keeping the mapping.
    pub fn with_cached_ram<T>(
        &self,
        vmid: u32,
        f: impl FnOnce(&mut GuestRam) -> T,
    ) -> Result<T, DevError> {
        let mut cache = self.ram.borrow_mut();
        let entry = match cache.take() {
            Some((id, ram)) if id == vmid => (id, ram),
            other => {
                // Unmap the old one first: both may not fit at once.
                drop(other);
                (vmid, self.map_ram(vmid)?)
            }
        };
        let (_, ram) = cache.insert(entry);
        Ok(f(ram))
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Maps all of a VM's RAM (cacheable, as the hypervisor maps it for VM0).
    pub fn map_ram(&self, vmid: u32) -> Result<GuestRam, DevError> {
        let mut m = MapInfo {
            vmid,
            ..MapInfo::default()
        };
        self.ioctl("asking where the VM's RAM is", ioctl::MAP_INFO, &mut m)?;
        let len = usize::try_from(m.size).map_err(|_| DevError::Ioctl {
            what: "mapping the VM's RAM",
            err: io::Error::from_raw_os_error(libc::EOVERFLOW),
        })?;
        // SAFETY: a fresh shared mapping of the device at the offset the driver handed out;
        // the driver checks the range against the VM's RAM window.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.file.as_raw_fd(),
                m.mmap_offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(DevError::Ioctl {
                what: "mapping the VM's RAM",
                err: io::Error::last_os_error(),
            });
        }
        Ok(GuestRam {
            ptr: ptr.cast(),
            len,
            guest_base: m.guest_base,
        })
    }
}

/// A VM's RAM mapped into mvm: byte 0 is guest IPA `guest_base`.
pub struct GuestRam {
    ptr: *mut u8,
    len: usize,
    pub guest_base: u64,
}

impl GuestRam {
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr..ptr+len is our live mapping and &mut self makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for GuestRam {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in map_ram, once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_says_the_driver_is_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let e = Minos::open_at(&dir.path().join("minos")).err().unwrap();
        assert!(matches!(e, DevError::NotLoaded(_)));
        assert!(e.to_string().starts_with("minos.ko is not loaded"));
    }

    #[test]
    fn a_device_without_our_ioctls_is_refused() {
        // /dev/null answers every ioctl with ENOTTY: the version ask fails clearly.
        let e = Minos::open_at(Path::new("/dev/null")).err().unwrap();
        assert!(
            e.to_string()
                .starts_with("asking the driver's ABI version: "),
            "{e}"
        );
    }

    #[test]
    fn version_mismatch_message_names_both_sides() {
        let e = DevError::Version {
            driver: minos_abi::version(minos_abi::ABI_MAJOR + 1, 3),
        };
        let m = e.to_string();
        assert!(
            m.contains(&format!("ABI {}.3", minos_abi::ABI_MAJOR + 1)),
            "{m}"
        );
        assert!(m.contains("this mvm speaks"), "{m}");
    }
}
