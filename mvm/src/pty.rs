//! Pseudo-terminals for `virtio_console,@pty:` backends.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::FromRawFd;

/// The master side of a new pty and the path of its slave (`/dev/pts/N`).
pub struct Pty {
    /// Non-blocking; closing it would hang up the slave.
    pub master: File,
    pub path: String,
    /// mvm's own handle on the slave: with it the master never reads "hung up" (EIO in a
    /// busy loop) before a user attaches, and the line stays raw for them.
    _slave: File,
}

/// Writes `data` to a pty master (or any writer) as a serial line would: when nobody reads
/// the slave and its buffer is full, or no slave is open, the bytes are dropped.
pub fn write_or_drop(w: &mut dyn Write, data: &[u8]) -> io::Result<()> {
    match w.write_all(data) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EIO) => Ok(()),
        Err(e) => Err(e),
    }
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
        // The console backend polls it: reads and writes must never block mvm.
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::grantpt(fd) != 0 || libc::unlockpt(fd) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0 as libc::c_char; 64];
        let rc = libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let path = CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned();
        let sfd = libc::open(
            buf.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if sfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let slave = File::from_raw_fd(sfd);
        // Raw: the guest's console does its own echo and line editing.
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(sfd, &mut t) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(sfd, libc::TCSANOW, &t) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Pty {
            master,
            path,
            _slave: slave,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

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
        // The master does not block: wait for the line discipline to pass the bytes on.
        let mut poll = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&pty.master),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        assert_eq!(unsafe { libc::poll(&mut poll, 1, 5000) }, 1);
        let n = pty.master.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"hi"), "{:?}", &buf[..n]);
    }
}
