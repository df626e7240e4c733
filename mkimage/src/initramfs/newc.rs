//! The newc ("new ASCII") cpio format the kernel unpacks: a 110-byte header of `070701` and
//! thirteen 8-digit hex fields, the NUL-terminated name, data, each padded to 4 bytes, and a
//! `TRAILER!!!` entry at the end.

use std::io::{self, Read, Write};

/// File type, as the `S_IF*` bits of the mode field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

impl Kind {
    fn mode_bits(self) -> u32 {
        match self {
            Kind::Socket => 0o140000,
            Kind::Symlink => 0o120000,
            Kind::File => 0o100000,
            Kind::Block => 0o060000,
            Kind::Dir => 0o040000,
            Kind::Char => 0o020000,
            Kind::Fifo => 0o010000,
        }
    }
}

/// One header's worth of metadata. Owner is always 0:0.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub perm: u32,
    pub mtime: u32,
    pub size: u64,
    pub rdev: (u32, u32),
    /// For hard links: the inode number shared by every name of the file, and their count.
    /// `None` gives the entry its own new inode.
    pub link: Option<(u32, u32)>,
}

impl<'a> Entry<'a> {
    pub fn new(name: &'a str, kind: Kind, perm: u32, mtime: u32, size: u64) -> Entry<'a> {
        Entry {
            name,
            kind,
            perm,
            mtime,
            size,
            rdev: (0, 0),
            link: None,
        }
    }
}

const ZEROS: [u8; 4] = [0; 4];

fn pad(n: u64) -> usize {
    ((4 - (n % 4)) % 4) as usize
}

/// Streams entries to `w`, numbering inodes from 1 in the order they are written (hard links
/// bring their own, from [`Writer::reserve_ino`]).
pub struct Writer<W: Write> {
    w: W,
    ino: u32,
}

impl<W: Write> Writer<W> {
    pub fn new(w: W) -> Self {
        Writer { w, ino: 0 }
    }

    fn header(&mut self, e: &Entry<'_>, ino: u32, nlink: u32, mode: u32) -> io::Result<()> {
        let size = u32::try_from(e.size).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: newc entries are limited to 4 GiB", e.name),
            )
        })?;
        let namesize = e.name.len() + 1;
        let fields: [u32; 13] = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            e.mtime,
            size,
            0, // devmajor
            0, // devminor
            e.rdev.0,
            e.rdev.1,
            namesize as u32,
            0, // check (unused by newc)
        ];
        let mut h = String::with_capacity(110);
        h.push_str("070701");
        for f in fields {
            h.push_str(&format!("{f:08X}"));
        }
        self.w.write_all(h.as_bytes())?;
        self.w.write_all(e.name.as_bytes())?;
        self.w.write_all(&[0])?;
        self.w.write_all(&ZEROS[..pad(110 + namesize as u64)])
    }

    /// A fresh inode number, for the names of one hard-linked file.
    pub fn reserve_ino(&mut self) -> u32 {
        self.ino += 1;
        self.ino
    }

    /// Writes one entry whose data (exactly `e.size` bytes) comes from `data`.
    pub fn entry(&mut self, e: &Entry<'_>, data: &mut dyn Read) -> io::Result<()> {
        let (ino, nlink) = match e.link {
            Some(l) => l,
            None => (self.reserve_ino(), if e.kind == Kind::Dir { 2 } else { 1 }),
        };
        self.header(e, ino, nlink, e.kind.mode_bits() | (e.perm & 0o7777))?;
        let copied = io::copy(data, &mut self.w)?;
        if copied != e.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: {copied} bytes read, {} expected (changed while packing?)",
                    e.name, e.size
                ),
            ));
        }
        self.w.write_all(&ZEROS[..pad(e.size)])
    }

    /// Writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        // As GNU cpio writes it: everything 0 but nlink and the name.
        self.header(&Entry::new("TRAILER!!!", Kind::File, 0, 0, 0), 0, 1, 0)?;
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let mut w = Writer::new(Vec::new());
        w.entry(
            &Entry::new("ab", Kind::File, 0o755, 0x10, 3),
            &mut &b"xyz"[..],
        )
        .unwrap();
        let out = w.finish().unwrap();
        let h = std::str::from_utf8(&out[..110]).unwrap();
        assert_eq!(&h[..6], "070701");
        let field = |i: usize| u32::from_str_radix(&h[6 + 8 * i..14 + 8 * i], 16).unwrap();
        assert_eq!(field(0), 1); // ino
        assert_eq!(field(1), 0o100755); // mode
        assert_eq!((field(2), field(3)), (0, 0)); // uid, gid
        assert_eq!(field(5), 0x10); // mtime
        assert_eq!(field(6), 3); // size
        assert_eq!(field(11), 3); // namesize
                                  // 110 + "ab\0" = 113 -> padded to 116; data 3 -> padded to 4.
        assert_eq!(&out[110..116], b"ab\0\0\0\0");
        assert_eq!(&out[116..120], b"xyz\0");
        assert_eq!(&out[120 + 110..120 + 110 + 11], b"TRAILER!!!\0");
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn short_data_is_an_error() {
        let mut w = Writer::new(Vec::new());
        let e = Entry::new("a", Kind::File, 0o644, 0, 10);
        assert!(w.entry(&e, &mut &b"abc"[..]).is_err());
    }
}
