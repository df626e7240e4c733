//! Which byte ranges of a file hold data, the way `bmaptool create` sees them: extents that
//! are allocated, including allocated-but-unwritten ones (mke2fs zeroes its journal and the
//! end of the device with `fallocate(ZERO_RANGE)`; those zeros must reach the card, or a
//! reused card keeps old bytes there), plus data still in the page cache.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use rustix::fs::SeekFrom;

/// `struct fiemap` with room for a batch of `struct fiemap_extent` (linux/fiemap.h).
#[repr(C)]
struct Fiemap {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [FiemapExtent; BATCH],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct FiemapExtent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

const BATCH: usize = 128;
/// `_IOWR('f', 11, struct fiemap)`.
const FS_IOC_FIEMAP: libc::c_ulong = 0xc020_660b;
const FIEMAP_EXTENT_LAST: u32 = 0x1;

/// Allocated extents from FIEMAP; `None` when the filesystem does not support it.
fn fiemap(file: &File, size: u64) -> io::Result<Option<Vec<(u64, u64)>>> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let zero = FiemapExtent {
            logical: 0,
            physical: 0,
            length: 0,
            reserved64: [0; 2],
            flags: 0,
            reserved: [0; 3],
        };
        let mut req = Box::new(Fiemap {
            start: pos,
            length: size - pos,
            flags: 0,
            mapped_extents: 0,
            extent_count: BATCH as u32,
            reserved: 0,
            extents: [zero; BATCH],
        });
        // SAFETY: `req` is a valid, writable `struct fiemap` followed by `extent_count`
        // extents, the layout FS_IOC_FIEMAP reads and fills; the fd is open for the call.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                FS_IOC_FIEMAP as _,
                &mut *req as *mut Fiemap,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EOPNOTSUPP) | Some(libc::ENOTTY) | Some(libc::EINVAL) => Ok(None),
                _ => Err(e),
            };
        }
        let n = req.mapped_extents as usize;
        if n == 0 {
            break;
        }
        let mut last = false;
        for e in &req.extents[..n.min(BATCH)] {
            out.push((e.logical, (e.logical + e.length).min(size)));
            pos = e.logical + e.length;
            last |= e.flags & FIEMAP_EXTENT_LAST != 0;
        }
        if last {
            break;
        }
    }
    Ok(Some(out))
}

/// Data extents from SEEK_DATA/SEEK_HOLE (sees data not yet allocated on disk).
fn seek_data(file: &File, size: u64) -> io::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < size {
        let start = match rustix::fs::seek(file, SeekFrom::Data(pos)) {
            Ok(s) => s,
            Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let end = rustix::fs::seek(file, SeekFrom::Hole(start))?.min(size);
        out.push((start, end));
        pos = end;
    }
    Ok(out)
}

/// Sorted, merged byte ranges `[start, end)` of `file` that hold (or must hold) data.
pub fn mapped(file: &File) -> io::Result<Vec<(u64, u64)>> {
    let size = file.metadata()?.len();
    let mut all = seek_data(file, size)?;
    if let Some(f) = fiemap(file, size)? {
        all.extend(f);
    }
    all.retain(|&(a, b)| b > a);
    all.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(all.len());
    for (a, b) in all {
        match out.last_mut() {
            Some(last) if last.1 >= a => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn data_and_unwritten_extents_are_mapped() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(16 << 20).unwrap();
        f.write_all_at(&[1u8; 4096], 1 << 20).unwrap();
        // An unwritten (zero) extent, as mke2fs makes: allocated, reads as zeros.
        // SAFETY: plain fallocate on an open fd with in-range offsets.
        let rc = unsafe {
            libc::fallocate(
                f.as_raw_fd(),
                libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
                8 << 20,
                1 << 20,
            )
        };
        let m = mapped(&f).unwrap();
        let covers = |a: u64, b: u64| m.iter().any(|&(s, e)| s <= a && b <= e);
        assert!(covers(1 << 20, (1 << 20) + 4096), "{m:?}");
        if rc == 0 {
            assert!(
                covers(8 << 20, 9 << 20),
                "unwritten extent not mapped: {m:?}"
            );
        }
        assert!(
            !covers(12 << 20, (12 << 20) + 4096),
            "a hole was mapped: {m:?}"
        );
    }
}
