//! A freshly created (all-hole) image file that never writes zeros where nothing was written.
//!
//! Formatting a filesystem writes large zero runs (FAT tables, root directory, padding). On a new
//! file those bytes already read as zero, so writing them only allocates disk blocks. The
//! writer remembers which blocks hold data; a zero chunk landing in a block that never held
//! data is dropped, anything else is written through. The result is sparse without a second
//! pass and without punching holes.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

/// Granularity of the "ever written" map; the host filesystem's block size.
pub const BLOCK: u64 = 4096;

pub struct SparseFile {
    file: File,
    len: u64,
    written: Vec<u64>,
}

impl SparseFile {
    /// Takes a file, truncates it and makes it `len` bytes of holes.
    pub fn new(file: File, len: u64) -> io::Result<Self> {
        file.set_len(0)?;
        file.set_len(len)?;
        let blocks = len.div_ceil(BLOCK);
        Ok(Self {
            file,
            len,
            written: vec![0; blocks.div_ceil(64) as usize],
        })
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        self.len
    }

    #[cfg(test)]
    fn file(&self) -> &File {
        &self.file
    }

    pub fn into_file(self) -> File {
        self.file
    }

    fn is_written(&self, block: u64) -> bool {
        self.written[(block / 64) as usize] & (1 << (block % 64)) != 0
    }

    fn mark(&mut self, block: u64) {
        self.written[(block / 64) as usize] |= 1 << (block % 64);
    }

    /// Writes `buf` at `pos`, skipping zero chunks of never-written blocks.
    pub fn write_at(&mut self, mut buf: &[u8], mut pos: u64) -> io::Result<()> {
        if pos
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the image",
            ));
        }
        // Pending run of bytes that must reach the file, as (file offset, buffer start).
        let mut run: Option<(u64, usize)> = None;
        let mut consumed = 0usize;
        let base = buf;
        while !buf.is_empty() {
            let block = pos / BLOCK;
            let n = ((BLOCK - pos % BLOCK) as usize).min(buf.len());
            let chunk = &buf[..n];
            let needed = self.is_written(block) || chunk.iter().any(|&b| b != 0);
            if needed {
                self.mark(block);
                run.get_or_insert((pos, consumed));
            } else if let Some((at, from)) = run.take() {
                self.file.write_all_at(&base[from..consumed], at)?;
            }
            pos += n as u64;
            consumed += n;
            buf = &buf[n..];
        }
        if let Some((at, from)) = run {
            self.file.write_all_at(&base[from..consumed], at)?;
        }
        Ok(())
    }

    /// Copies `len` bytes from `src` to `pos`, leaving zero blocks as holes.
    pub fn copy_from(&mut self, src: &mut impl Read, pos: u64, len: u64) -> io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            src.read_exact(&mut buf[..n])?;
            self.write_at(&buf[..n], pos + done)?;
            done += n as u64;
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
    use std::os::unix::fs::MetadataExt;

    fn fresh(len: u64) -> SparseFile {
        SparseFile::new(tempfile::tempfile().unwrap(), len).unwrap()
    }

    fn read_all(f: &SparseFile) -> Vec<u8> {
        let mut v = vec![0; f.len() as usize];
        f.file().read_exact_at(&mut v, 0).unwrap();
        v
    }

    #[test]
    fn zeros_on_fresh_blocks_allocate_nothing() {
        let mut f = fresh(16 << 20);
        f.write_at(&vec![0u8; 8 << 20], 4096).unwrap();
        f.file().sync_all().unwrap();
        assert_eq!(f.file().metadata().unwrap().blocks(), 0);
    }

    #[test]
    fn zeros_over_data_are_written() {
        let mut f = fresh(3 * BLOCK);
        f.write_at(&[0xaa; 100], BLOCK + 10).unwrap();
        f.write_at(&[0; 50], BLOCK + 20).unwrap();
        let v = read_all(&f);
        assert!(v[..BLOCK as usize + 10].iter().all(|&b| b == 0));
        assert!(v[BLOCK as usize + 10..BLOCK as usize + 20]
            .iter()
            .all(|&b| b == 0xaa));
        assert!(v[BLOCK as usize + 20..BLOCK as usize + 70]
            .iter()
            .all(|&b| b == 0));
        assert!(v[BLOCK as usize + 70..BLOCK as usize + 110]
            .iter()
            .all(|&b| b == 0xaa));
    }

    #[test]
    fn mixed_runs_round_trip() {
        let mut f = fresh(64 * BLOCK);
        let mut want = vec![0u8; 64 * BLOCK as usize];
        for (i, b) in want.iter_mut().enumerate().skip(5000).take(30000) {
            if (i / 4096) % 3 == 0 {
                *b = (i % 251) as u8 + 1;
            }
        }
        f.write_at(&want[5000..35000], 5000).unwrap();
        assert_eq!(read_all(&f), want);
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
