//! Pins the timestamps of every inode `mke2fs -d` copied from the source folder, directly in
//! the inode tables: access and change times become the build's timestamp, modification times
//! are clamped to it. Reading or copying a folder moves those times, so without this two
//! builds of the same files differ. Inode checksums (metadata_csum) are recomputed.
//!
//! Only the fields named here are touched; the layout follows the kernel's ext4 documentation
//! (Documentation/filesystems/ext4/{super,group_descr,inodes}.rst).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const BG_INODE_UNINIT: u16 = 0x1;
const ROOT_INO: u32 = 2;

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("ext4: {msg}"))
}

/// CRC-32C (Castagnoli), reflected, without the usual pre/post inversion: ext4's
/// `ext2fs_crc32c_le`.
fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82f6_3b78
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    for &b in data {
        crc = (crc >> 8) ^ t[((crc ^ u32::from(b)) & 0xff) as usize];
    }
    crc
}

/// Rewrites the times of each in-use inode of the ext4 filesystem at `offset` of `file`
/// (the root directory and every inode from the first non-reserved one on).
pub fn pin(file: &File, offset: u64, epoch: u32) -> io::Result<u64> {
    let mut sb = [0u8; 1024];
    file.read_exact_at(&mut sb, offset + 1024)?;
    if le16(&sb, 0x38) != 0xef53 {
        return Err(bad("no superblock"));
    }
    let inodes = le32(&sb, 0x0);
    let first_data_block = le32(&sb, 0x14);
    let block = 1024u64 << le32(&sb, 0x18);
    let ipg = le32(&sb, 0x28);
    let first_ino = if le32(&sb, 0x4c) >= 1 {
        le32(&sb, 0x54)
    } else {
        11
    };
    let isize = if le32(&sb, 0x4c) >= 1 {
        usize::from(le16(&sb, 0x58))
    } else {
        128
    };
    let incompat = le32(&sb, 0x60);
    let csum = le32(&sb, 0x64) & RO_COMPAT_METADATA_CSUM != 0;
    let desc = if incompat & INCOMPAT_64BIT != 0 {
        usize::from(le16(&sb, 0xfe))
    } else {
        32
    };
    if ipg == 0 || isize < 128 || desc < 32 || block > 65536 {
        return Err(bad("implausible superblock"));
    }
    let seed = if incompat & INCOMPAT_CSUM_SEED != 0 {
        le32(&sb, 0x270)
    } else {
        crc32c(!0, &sb[0x68..0x78])
    };
    let groups = inodes.div_ceil(ipg) as usize;
    let mut gdt = vec![0u8; groups * desc];
    file.read_exact_at(&mut gdt, offset + block * (u64::from(first_data_block) + 1))?;

    let mut bitmap = vec![0u8; block as usize];
    let mut inode = vec![0u8; isize];
    let mut pinned = 0;
    for g in 0..groups {
        let d = &gdt[g * desc..(g + 1) * desc];
        if le16(d, 0x12) & BG_INODE_UNINIT != 0 {
            continue;
        }
        let hi = |o: usize| {
            if desc >= 64 {
                u64::from(le32(d, o)) << 32
            } else {
                0
            }
        };
        let bitmap_block = u64::from(le32(d, 0x4)) | hi(0x24);
        let table_block = u64::from(le32(d, 0x8)) | hi(0x28);
        file.read_exact_at(&mut bitmap, offset + bitmap_block * block)?;
        for i in 0..ipg {
            let ino = g as u32 * ipg + i + 1;
            if ino > inodes {
                break;
            }
            let used = bitmap[(i / 8) as usize] & (1 << (i % 8)) != 0;
            if !used || (ino != ROOT_INO && ino < first_ino) {
                continue;
            }
            let at = offset + table_block * block + u64::from(i) * isize as u64;
            file.read_exact_at(&mut inode, at)?;
            patch(&mut inode, ino, epoch, csum.then_some(seed));
            file.write_all_at(&inode, at)?;
            pinned += 1;
        }
    }
    Ok(pinned)
}

/// Sets the times of one inode (and clears their sub-second parts), then its checksum.
fn patch(inode: &mut [u8], ino: u32, epoch: u32, seed: Option<u32>) {
    let mtime = le32(inode, 0x10).min(epoch);
    put32(inode, 0x8, epoch);
    put32(inode, 0xc, epoch);
    put32(inode, 0x10, mtime);
    let extra = if inode.len() > 128 {
        usize::from(le16(inode, 0x80))
    } else {
        0
    };
    // i_ctime_extra, i_mtime_extra, i_atime_extra, when the inode has room for them.
    for o in [0x84, 0x88, 0x8c] {
        if 128 + extra >= o + 4 && inode.len() >= o + 4 {
            put32(inode, o, 0);
        }
    }
    let Some(seed) = seed else { return };
    let has_hi = 128 + extra >= 0x84;
    inode[0x7c..0x7e].fill(0);
    if has_hi {
        inode[0x82..0x84].fill(0);
    }
    let mut crc = crc32c(seed, &ino.to_le_bytes());
    crc = crc32c(crc, &inode[0x64..0x68]);
    crc = crc32c(crc, inode);
    inode[0x7c..0x7e].copy_from_slice(&(crc as u16).to_le_bytes());
    if has_hi {
        inode[0x82..0x84].copy_from_slice(&((crc >> 16) as u16).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C over "123456789" includes the inversions.
        assert_eq!(!crc32c(!0, b"123456789"), 0xe306_9283);
    }

    #[test]
    fn patch_sets_times_and_clamps() {
        let mut ino = vec![0u8; 256];
        ino[0x80..0x82].copy_from_slice(&32u16.to_le_bytes());
        put32(&mut ino, 0x8, 5);
        put32(&mut ino, 0x10, 2_000_000_000);
        put32(&mut ino, 0x88, 123);
        patch(&mut ino, 12, 1_700_000_000, None);
        assert_eq!(le32(&ino, 0x8), 1_700_000_000);
        assert_eq!(le32(&ino, 0xc), 1_700_000_000);
        assert_eq!(le32(&ino, 0x10), 1_700_000_000);
        assert_eq!(le32(&ino, 0x88), 0);
        put32(&mut ino, 0x10, 1000);
        patch(&mut ino, 12, 1_700_000_000, None);
        assert_eq!(le32(&ino, 0x10), 1000);
    }
}
