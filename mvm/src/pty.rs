//! Pseudo-terminals for `virtio_console,@pty:` backends.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;

/// The master side of a new pty and the path of its slave (`/dev/pts/N`).
pub struct Pty {
    /// Held open for the console backend: closing it would hang up the slave.
    #[allow(dead_code)]
    pub master: File,
    pub path: String,
}

/// Opens a new pty whose slave a user attaches to (`minicom /dev/pts/N`, `screen`, ...).
pub fn open() -> io::Result<Pty> {
    // SAFETY: plain libc calls on a descriptor we own; the name buffer outlives ptsname_r.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let master = File::from_raw_fd(fd);
        if libc::grantpt(fd) != 0 || libc::unlockpt(fd) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0 as libc::c_char; 64];
        let rc = libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let path = CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned();
        Ok(Pty { master, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn bytes_written_on_the_slave_reach_the_master() {
        let mut pty = open().unwrap();
        assert!(pty.path.starts_with("/dev/pts/"), "{}", pty.path);
        let mut slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&pty.path)
            .unwrap();
        slave.write_all(b"hi\n").unwrap();
        let mut buf = [0u8; 16];
        let n = pty.master.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"hi"), "{:?}", &buf[..n]);
    }
}
