//! A freshly created (all-hole) image file: only what is written gets allocated, so the card
//! stays sparse. Zeros a filesystem writes on purpose (FAT tables, an empty root directory)
//! are written too: they must stay mapped in the `.bmap`, or `bmaptool copy` onto a used card
//! would leave old bytes where the filesystem expects zeros.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

pub struct SparseFile {
    file: File,
    len: u64,
}

impl SparseFile {
    /// Takes a file, truncates it and makes it `len` bytes of holes.
    pub fn new(file: File, len: u64) -> io::Result<Self> {
        file.set_len(0)?;
        file.set_len(len)?;
        Ok(Self { file, len })
    }

    #[cfg(test)]
    fn file(&self) -> &File {
        &self.file
    }

    pub fn into_file(self) -> File {
        self.file
    }

    /// Writes `buf` at `pos`, inside the image.
    pub fn write_at(&mut self, buf: &[u8], pos: u64) -> io::Result<()> {
        if pos
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the image",
            ));
        }
        self.file.write_all_at(buf, pos)
    }

    /// Copies the first `len` bytes of `src` to `pos`: only its mapped extents (what
    /// `bmaptool` would copy), so its holes stay holes.
    pub fn copy_from(&mut self, src: &File, pos: u64, len: u64) -> io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        for (a, b) in crate::extents::mapped(src)? {
            let (a, b) = (a.min(len), b.min(len));
            let mut at = a;
            while at < b {
                let n = (b - at).min(buf.len() as u64) as usize;
                src.read_exact_at(&mut buf[..n], at)?;
                self.write_at(&buf[..n], pos + at)?;
                at += n as u64;
            }
        }
        Ok(())
    }

    /// A window of the file, `[start, start+len)`, as a seekable stream (for `fatfs`).
    pub fn window(&mut self, start: u64, len: u64) -> Window<'_> {
        assert!(start + len <= self.len, "window past the end of the image");
        Window {
            file: self,
            start,
            len,
            pos: 0,
        }
    }
}

/// A partition seen as a stream of its own, positions relative to its first byte.
pub struct Window<'a> {
    file: &'a mut SparseFile,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.len.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self
            .file
            .file
            .read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Write for Window<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (self.len.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        self.file.write_at(&buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) if p <= self.len => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek outside the partition",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bmap::BLOCK;
    use std::os::unix::fs::MetadataExt;

    fn fresh(len: u64) -> SparseFile {
        SparseFile::new(tempfile::tempfile().unwrap(), len).unwrap()
    }

    #[test]
    fn untouched_space_stays_a_hole() {
        let mut f = fresh(16 << 20);
        f.write_at(&[7u8; 4096], 4096).unwrap();
        f.file().sync_all().unwrap();
        assert!(f.file().metadata().unwrap().blocks() <= 16);
        let mut v = vec![0u8; 8192];
        f.file().read_exact_at(&mut v, 0).unwrap();
        assert!(v[..4096].iter().all(|&b| b == 0) && v[4096..].iter().all(|&b| b == 7));
    }

    #[test]
    fn copy_keeps_the_source_holes() {
        let src = tempfile::tempfile().unwrap();
        src.set_len(8 << 20).unwrap();
        src.write_all_at(&[9u8; 4096], 2 << 20).unwrap();
        let mut f = fresh(32 << 20);
        f.copy_from(&src, 1 << 20, 8 << 20).unwrap();
        let mut v = vec![0u8; 4096];
        f.file().read_exact_at(&mut v, 3 << 20).unwrap();
        assert!(v.iter().all(|&b| b == 9));
        f.file().sync_all().unwrap();
        assert!(f.file().metadata().unwrap().blocks() <= 64);
    }

    #[test]
    fn window_bounds() {
        let mut f = fresh(8 * BLOCK);
        let mut w = f.window(BLOCK, 2 * BLOCK);
        assert!(w.seek(SeekFrom::End(1)).is_err());
        w.seek(SeekFrom::End(-4)).unwrap();
        assert_eq!(w.write(&[1, 2, 3, 4, 5, 6]).unwrap(), 4);
        assert!(w.write(&[1]).is_err());
        w.seek(SeekFrom::Start(2 * BLOCK - 4)).unwrap();
        let mut back = [0u8; 8];
        assert_eq!(w.read(&mut back).unwrap(), 4);
        assert_eq!(&back[..4], &[1, 2, 3, 4]);
        assert!(f.write_at(&[1], 8 * BLOCK).is_err());
    }
}
