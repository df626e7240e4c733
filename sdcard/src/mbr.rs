//! The classic DOS partition table (MBR) in sector 0.
//!
//! A small writer of our own instead of a crate: the table is 64 bytes, and owning it keeps the
//! disk signature and the CHS fields under our control, so images are byte-for-byte reproducible.

/// MBR partition type: FAT32 with LBA addressing, what the Pi firmware expects.
pub const TYPE_FAT32_LBA: u8 = 0x0c;
/// MBR partition type: Linux native (ext4).
pub const TYPE_LINUX: u8 = 0x83;

pub const SECTOR: u64 = 512;

/// One primary partition, in 512-byte sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub bootable: bool,
    pub kind: u8,
    pub start_lba: u32,
    pub sectors: u32,
}

/// Sector 0 of the card: no boot code, a disk signature and up to four primary partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mbr {
    pub disk_signature: u32,
    pub entries: Vec<Entry>,
}

impl Mbr {
    pub fn to_bytes(&self) -> [u8; 512] {
        assert!(
            self.entries.len() <= 4,
            "an MBR holds four primary partitions"
        );
        let mut s = [0u8; 512];
        s[440..444].copy_from_slice(&self.disk_signature.to_le_bytes());
        for (i, e) in self.entries.iter().enumerate() {
            let o = 446 + 16 * i;
            s[o] = if e.bootable { 0x80 } else { 0 };
            s[o + 1..o + 4].copy_from_slice(&chs(e.start_lba));
            s[o + 4] = e.kind;
            let last = e.start_lba + e.sectors.saturating_sub(1);
            s[o + 5..o + 8].copy_from_slice(&chs(last));
            s[o + 8..o + 12].copy_from_slice(&e.start_lba.to_le_bytes());
            s[o + 12..o + 16].copy_from_slice(&e.sectors.to_le_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xaa;
        s
    }
}

/// CHS address of an LBA in the usual 255-head, 63-sector translation; past cylinder 1023 the
/// field saturates to the conventional 1023/254/63, as fdisk writes it.
fn chs(lba: u32) -> [u8; 3] {
    const HEADS: u32 = 255;
    const SPT: u32 = 63;
    let cyl = lba / (HEADS * SPT);
    if cyl > 1023 {
        return [0xfe, 0xff, 0xff];
    }
    let head = (lba / SPT) % HEADS;
    let sect = lba % SPT + 1;
    [
        head as u8,
        (sect as u8) | (((cyl >> 8) as u8) << 6),
        cyl as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_dos_format() {
        let m = Mbr {
            disk_signature: 0x4f4e_494d,
            entries: vec![
                Entry {
                    bootable: true,
                    kind: TYPE_FAT32_LBA,
                    start_lba: 8192,
                    sectors: 131072,
                },
                Entry {
                    bootable: false,
                    kind: TYPE_LINUX,
                    start_lba: 139264,
                    sectors: 65536,
                },
            ],
        };
        let b = m.to_bytes();
        assert_eq!(&b[440..444], b"MINO");
        assert_eq!(b[446], 0x80);
        assert_eq!(b[450], 0x0c);
        assert_eq!(u32::from_le_bytes(b[454..458].try_into().unwrap()), 8192);
        assert_eq!(u32::from_le_bytes(b[458..462].try_into().unwrap()), 131072);
        assert_eq!(b[462], 0);
        assert_eq!(b[466], 0x83);
        assert_eq!(&b[478..510], &[0u8; 32]);
        assert_eq!(&b[510..], &[0x55, 0xaa]);
    }

    #[test]
    fn chs_of_known_addresses() {
        assert_eq!(chs(0), [0, 1, 0]);
        // 2048 = head 32, sector 33, cylinder 0: what fdisk writes for a 1 MiB-aligned start.
        assert_eq!(chs(2048), [32, 33, 0]);
        assert_eq!(chs(u32::MAX), [0xfe, 0xff, 0xff]);
    }
}
