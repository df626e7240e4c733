//! One physical page mapped through `/dev/mem`, for timing guest accesses to an emulated
//! device's registers from user space.
//!
//! Debian's kernels have `IO_STRICT_DEVMEM`: a window a driver has claimed cannot be mapped
//! (and mappings made before are revoked), so this is done before the device's driver loads.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

#[derive(Debug, thiserror::Error)]
pub enum DevMemError {
    #[error("{0:#x}: register accesses must be 4-byte aligned")]
    Unaligned(u64),
    #[error("cannot open /dev/mem: {0}")]
    Open(io::Error),
    #[error("cannot map {addr:#x} through /dev/mem: {err} (claimed by a loaded driver, or RAM?)")]
    Map { addr: u64, err: io::Error },
}

/// The page holding one 32-bit register, mapped as device memory.
pub struct Register {
    base: *mut u8,
    len: usize,
    reg: *mut u32,
}

impl Register {
    pub fn map(addr: u64) -> Result<Register, DevMemError> {
        if !addr.is_multiple_of(4) {
            return Err(DevMemError::Unaligned(addr));
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_SYNC)
            .open("/dev/mem")
            .map_err(DevMemError::Open)?;
        let start = addr & !(page - 1);
        let map_err = |err| DevMemError::Map { addr, err };
        let off = libc::off_t::try_from(start)
            .map_err(|_| map_err(io::Error::from_raw_os_error(libc::EOVERFLOW)))?;
        // SAFETY: a fresh shared mapping of one page of /dev/mem; the kernel checks the range.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                off,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(map_err(io::Error::last_os_error()));
        }
        let base = base.cast::<u8>();
        Ok(Register {
            base,
            len: page as usize,
            // SAFETY: addr - start < page: the register lies inside the mapping.
            reg: unsafe { base.add((addr - start) as usize) }.cast(),
        })
    }

    pub fn read(&self) -> u32 {
        // SAFETY: a live, aligned mapping of the register; volatile so every read is done
        // (as one 32-bit load, which the hypervisor can decode).
        unsafe { self.reg.read_volatile() }
    }

    pub fn write(&self, v: u32) {
        // SAFETY: as in `read`.
        unsafe { self.reg.write_volatile(v) }
    }
}

impl Drop for Register {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `map`, once.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}
