//! The image's sha256 and its block map (bmaptool's XML format, version 2.0), computed in one
//! pass: data extents come from `SEEK_DATA`/`SEEK_HOLE`, holes are hashed without being read.

use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

pub const BLOCK: u64 = 4096;

/// A run of mapped blocks, inclusive, with the sha256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub first: u64,
    pub last: u64,
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub size: u64,
    pub sha256: [u8; 32],
    pub ranges: Vec<Range>,
}

impl Summary {
    pub fn mapped_blocks(&self) -> u64 {
        self.ranges.iter().map(|r| r.last - r.first + 1).sum()
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// Block-aligned mapped extents of `file`, in blocks `[first, end)`, merged where they touch.
fn extents(file: &File, size: u64) -> io::Result<Vec<(u64, u64)>> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (start, end) in crate::extents::mapped(file)? {
        let (a, b) = (start / BLOCK, end.min(size).div_ceil(BLOCK));
        match out.last_mut() {
            Some(last) if last.1 >= a => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    Ok(out)
}

/// sha256 of each extent's bytes.
fn hash_ranges(file: &File, extents: &[(u64, u64)], size: u64) -> io::Result<Vec<Range>> {
    let mut buf = vec![0u8; 1 << 20];
    let mut out = Vec::with_capacity(extents.len());
    for &(a, b) in extents {
        let (start, end) = (a * BLOCK, (b * BLOCK).min(size));
        let mut h = Sha256::new();
        let mut at = start;
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], at)?;
            h.update(&buf[..n]);
            at += n as u64;
        }
        out.push(Range {
            first: a,
            last: b - 1,
            sha256: h.finalize().into(),
        });
    }
    Ok(out)
}

/// The whole-image hash of the bytes before `end`, computed early (while mke2fs still
/// writes the partitions after `end`).
pub struct Prefix {
    state: Sha256,
    end: u64,
}

/// Feeds `[from, to)` of `file` to `h`; `extents` (in blocks) say where data is, the rest is
/// hashed as zeros without being read.
fn hash_span(
    h: &mut Sha256,
    file: &File,
    extents: &[(u64, u64)],
    from: u64,
    to: u64,
) -> io::Result<()> {
    let zeros = vec![0u8; 1 << 20];
    let mut buf = vec![0u8; 1 << 20];
    let hash_zeros = |h: &mut Sha256, mut n: u64| {
        while n > 0 {
            let k = n.min(zeros.len() as u64) as usize;
            h.update(&zeros[..k]);
            n -= k as u64;
        }
    };
    let mut pos = from;
    for &(a, b) in extents {
        let (start, end) = ((a * BLOCK).max(from), (b * BLOCK).min(to));
        if start >= end {
            continue;
        }
        hash_zeros(h, start - pos);
        let mut at = start;
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], at)?;
            h.update(&buf[..n]);
            at += n as u64;
        }
        pos = end;
    }
    hash_zeros(h, to - pos);
    Ok(())
}

/// Starts the whole-image hash with `[0, end)`, which must not change any more.
pub fn hash_prefix(file: &File, end: u64) -> io::Result<Prefix> {
    let size = file.metadata()?.len();
    let end = end.min(size);
    let mut state = Sha256::new();
    hash_span(&mut state, file, &extents(file, size)?, 0, end)?;
    Ok(Prefix { state, end })
}

/// Hashes the whole image (continuing `prefix`) and each data extent, on two threads.
pub fn summarize_from(file: &File, prefix: Option<Prefix>) -> io::Result<Summary> {
    let size = file.metadata()?.len();
    let extents = extents(file, size)?;
    let (mut state, from) = match prefix {
        Some(p) => (p.state, p.end),
        None => (Sha256::new(), 0),
    };
    let (whole, ranges) = std::thread::scope(|s| {
        let ranges = s.spawn(|| hash_ranges(file, &extents, size));
        let whole = hash_span(&mut state, file, &extents, from, size);
        let ranges = ranges
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("hashing thread panicked")));
        (whole, ranges)
    });
    whole?;
    Ok(Summary {
        size,
        sha256: state.finalize().into(),
        ranges: ranges?,
    })
}

/// Hashes the whole image and each data extent.
pub fn summarize(file: &File) -> io::Result<Summary> {
    summarize_from(file, None)
}

fn human(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// The `.bmap` text, as `bmaptool copy` reads it: the file checksum is the sha256 of the text
/// with that checksum field set to 64 `0`s.
pub fn render(s: &Summary) -> String {
    let blocks = s.size.div_ceil(BLOCK);
    let mapped = s.mapped_blocks();
    let pct = if blocks == 0 {
        0.0
    } else {
        mapped as f64 * 100.0 / blocks as f64
    };
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" ?>\n");
    x.push_str(
        "<!-- Block map of a card image written by minos-rs `mkimage bundle`: the blocks that\n",
    );
    x.push_str(
        "     hold data. `bmaptool copy` writes only these and checks their sha256. -->\n\n",
    );
    x.push_str("<bmap version=\"2.0\">\n");
    let _ = writeln!(x, "    <!-- Image size in bytes: {} -->", human(s.size));
    let _ = writeln!(x, "    <ImageSize> {} </ImageSize>\n", s.size);
    x.push_str("    <!-- Size of a block in bytes -->\n");
    let _ = writeln!(x, "    <BlockSize> {BLOCK} </BlockSize>\n");
    x.push_str("    <!-- Count of blocks in the image file -->\n");
    let _ = writeln!(x, "    <BlocksCount> {blocks} </BlocksCount>\n");
    let _ = writeln!(
        x,
        "    <!-- Count of mapped blocks: {} or {pct:.1}% -->",
        human(mapped * BLOCK)
    );
    let _ = writeln!(x, "    <MappedBlocksCount> {mapped} </MappedBlocksCount>\n");
    x.push_str("    <!-- Type of checksum used in this file -->\n");
    x.push_str("    <ChecksumType> sha256 </ChecksumType>\n\n");
    x.push_str("    <!-- sha256 of this file with this field set to 64 ASCII zeros -->\n");
    let marker = "0".repeat(64);
    let _ = writeln!(x, "    <BmapFileChecksum> {marker} </BmapFileChecksum>\n");
    x.push_str("    <BlockMap>\n");
    for r in &s.ranges {
        let span = if r.first == r.last {
            r.first.to_string()
        } else {
            format!("{}-{}", r.first, r.last)
        };
        let _ = writeln!(
            x,
            "        <Range chksum=\"{}\"> {span} </Range>",
            hex(&r.sha256)
        );
    }
    x.push_str("    </BlockMap>\n</bmap>\n");
    let sum = hex(&Sha256::digest(x.as_bytes()));
    x.replacen(&marker, &sum, 1)
}

/// `sha256sum`-compatible manifest line for the image.
pub fn manifest(s: &Summary, name: &str) -> String {
    format!("{}  {name}\n", hex(&s.sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_and_data() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(64 * BLOCK).unwrap();
        f.write_all_at(&[1u8; 10], 5 * BLOCK + 7).unwrap();
        f.write_all_at(&[2u8; 4096 * 3], 20 * BLOCK).unwrap();
        let s = summarize(&f).unwrap();
        let mut all = vec![0u8; 64 * BLOCK as usize];
        f.read_exact_at(&mut all, 0).unwrap();
        assert_eq!(s.sha256, <[u8; 32]>::from(Sha256::digest(&all)));
        // Every data byte lies in a range, and each range checksum covers exactly its bytes.
        for r in &s.ranges {
            let bytes = &all[(r.first * BLOCK) as usize..((r.last + 1) * BLOCK) as usize];
            assert_eq!(r.sha256, <[u8; 32]>::from(Sha256::digest(bytes)));
        }
        let covered = |blk: u64| s.ranges.iter().any(|r| r.first <= blk && blk <= r.last);
        assert!(covered(5) && covered(20) && covered(22));
        assert!(s.mapped_blocks() < 64, "holes were mapped: {:?}", s.ranges);
    }

    #[test]
    fn render_checksum_is_self_consistent() {
        let s = Summary {
            size: 8 * BLOCK,
            sha256: [0; 32],
            ranges: vec![
                Range {
                    first: 0,
                    last: 0,
                    sha256: [1; 32],
                },
                Range {
                    first: 3,
                    last: 5,
                    sha256: [2; 32],
                },
            ],
        };
        let x = render(&s);
        assert!(x.contains("> 0 </Range>"));
        assert!(x.contains("> 3-5 </Range>"));
        assert!(x.contains("<MappedBlocksCount> 4 </MappedBlocksCount>"));
        let start = x.find("<BmapFileChecksum> ").unwrap() + 19;
        let sum = x[start..start + 64].to_string();
        let zeroed = x.replacen(&sum, &"0".repeat(64), 1);
        assert_eq!(hex(&Sha256::digest(zeroed.as_bytes())), sum);
    }
}
