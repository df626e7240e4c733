//! Timed bulk writes and reads on a character device (the guest's `/dev/hvc0`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::counter;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("cannot open {0}: {1}")]
    Open(String, io::Error),
    #[error("{0}: {1}")]
    Io(String, io::Error),
    #[error("{path}: end of file after {got} of {want} bytes")]
    Short { path: String, got: u64, want: u64 },
    #[error(transparent)]
    Counter(#[from] counter::NoCounter),
}

/// What a timed transfer measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes counted between the two counter readings.
    pub bytes: u64,
    pub ticks: u64,
}

fn open(path: &str, write: bool) -> Result<File, StreamError> {
    let f = OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NOCTTY)
        .open(path)
        .map_err(|e| StreamError::Open(path.into(), e))?;
    raw(&f);
    Ok(f)
}

/// A terminal passes bytes untouched (no echo, no line editing, no newline translation);
/// anything else is left as it is.
fn raw(f: &File) {
    // SAFETY: termios calls on a descriptor we own, into a local struct.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(f.as_raw_fd(), &mut t) == 0 {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(f.as_raw_fd(), libc::TCSANOW, &t);
        }
    }
}

/// Writes `total` bytes of `fill` in `chunk`-byte writes and waits until a terminal has sent
/// them all (`tcdrain`): the ticks from before the first write to after the drain.
pub fn write(path: &str, total: u64, chunk: usize, fill: u8) -> Result<Transfer, StreamError> {
    let mut f = open(path, true)?;
    let buf = vec![fill; chunk.max(1)];
    let io_err = |e| StreamError::Io(path.into(), e);
    let t0 = counter::now()?;
    let mut left = total;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).map_err(io_err)?;
        left -= n as u64;
    }
    // SAFETY: tcdrain on a descriptor we own; on a non-terminal it fails harmlessly.
    unsafe { libc::tcdrain(f.as_raw_fd()) };
    let t1 = counter::now()?;
    Ok(Transfer {
        bytes: total,
        ticks: t1 - t0,
    })
}

/// Reads until `total` bytes came: the ticks from the first read's return to the last one's,
/// and the bytes that arrived after the first read (the first read only starts the clock).
pub fn read(path: &str, total: u64, ready: &mut dyn Write) -> Result<Transfer, StreamError> {
    let mut f = open(path, false)?;
    let io_err = |e| StreamError::Io(path.into(), e);
    writeln!(ready, "ready").map_err(io_err)?;
    ready.flush().map_err(io_err)?;
    let mut buf = vec![0u8; 4096];
    let mut got = 0u64;
    let mut first: Option<(u64, u64)> = None;
    let mut last = 0;
    while got < total {
        let want = (total - got).min(buf.len() as u64) as usize;
        let n = f.read(&mut buf[..want]).map_err(io_err)? as u64;
        if n == 0 {
            return Err(StreamError::Short {
                path: path.into(),
                got,
                want: total,
            });
        }
        last = counter::now()?;
        got += n;
        first.get_or_insert((last, got));
    }
    let (t0, first_bytes) = first.unwrap_or((last, got));
    Ok(Transfer {
        bytes: got - first_bytes,
        ticks: last - t0,
    })
}
