//! The address ranges the DTB describes (RAM, device `reg`s, bus windows), and the search for an
//! address that is none of them: where a guest access must fault.

/// Half-open `[start, end)` ranges; a fixed capacity because the guest has no allocator.
pub struct Ranges {
    items: [(u64, u64); Self::CAPACITY],
    len: usize,
    overflowed: bool,
}

impl Ranges {
    pub const CAPACITY: usize = 128;

    pub const fn new() -> Self {
        Self {
            items: [(0, 0); Self::CAPACITY],
            len: 0,
            overflowed: false,
        }
    }

    /// Adds `[start, start + size)`; a range that would wrap is clamped to the top of memory.
    pub fn add(&mut self, start: u64, size: u64) {
        if size == 0 {
            return;
        }
        if self.len == Self::CAPACITY {
            self.overflowed = true;
            return;
        }
        self.items[self.len] = (start, start.saturating_add(size));
        self.len += 1;
    }

    /// More ranges were added than fit: a hole search would not be trustworthy.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.items[..self.len]
            .iter()
            .any(|&(s, e)| start < e && s < end)
    }

    /// Start of the lowest range (0 if there is none).
    pub fn bottom(&self) -> u64 {
        self.items[..self.len]
            .iter()
            .map(|&(s, _)| s)
            .min()
            .unwrap_or(0)
    }

    /// End of the highest range.
    pub fn top(&self) -> u64 {
        self.items[..self.len]
            .iter()
            .map(|&(_, e)| e)
            .max()
            .unwrap_or(0)
    }

    /// The lowest `align`-aligned window of `size` bytes inside `[lo, hi)` that overlaps no range.
    pub fn first_hole(&self, lo: u64, hi: u64, size: u64, align: u64) -> Option<u64> {
        let mut a = lo.checked_next_multiple_of(align)?;
        while a.checked_add(size)? <= hi {
            match self.items[..self.len]
                .iter()
                .find(|&&(s, e)| a < e && s < a + size)
            {
                None => return Some(a),
                Some(&(_, e)) => a = e.checked_next_multiple_of(align)?,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU virt, GICv3, as its DTB describes it.
    fn virt_v3() -> Ranges {
        let mut r = Ranges::new();
        r.add(0, 0x0800_0000); // flash
        r.add(0x0800_0000, 0x1_0000); // GICD
        r.add(0x080a_0000, 0xf6_0000); // GICR
        r.add(0x0808_0000, 0x2_0000); // ITS
        r.add(0x0900_0000, 0x1000); // PL011
        r.add(0x4000_0000, 0x2000_0000); // RAM
        r
    }

    #[test]
    fn hole_between_gicd_and_its() {
        let r = virt_v3();
        assert_eq!(
            r.first_hole(0x0800_0000, 0x1000_0000, 0x1_0000, 0x1_0000),
            Some(0x0801_0000)
        );
        assert!(!r.overlaps(0x0801_0000, 0x0802_0000));
        assert!(r.overlaps(0x0800_f000, 0x0801_0000));
    }

    #[test]
    fn hole_skips_unaligned_range_ends() {
        let mut r = Ranges::new();
        r.add(0x1000, 0x1800);
        assert_eq!(r.first_hole(0x1000, 0x10000, 0x1000, 0x1000), Some(0x3000));
    }

    #[test]
    fn no_hole_when_all_covered() {
        let mut r = Ranges::new();
        r.add(0, 0x10_0000);
        assert_eq!(r.first_hole(0, 0x10_0000, 0x1000, 0x1000), None);
    }

    #[test]
    fn top_and_wrapping() {
        let mut r = virt_v3();
        assert_eq!(r.top(), 0x6000_0000);
        assert_eq!(r.bottom(), 0);
        assert_eq!(Ranges::new().bottom(), 0);
        r.add(u64::MAX - 1, 0x10);
        assert_eq!(r.top(), u64::MAX);
        assert_eq!(
            r.first_hole(u64::MAX - 0x100, u64::MAX, 0x1000, 0x1000),
            None
        );
    }

    #[test]
    fn capacity_is_reported() {
        let mut r = Ranges::new();
        for i in 0..=Ranges::CAPACITY as u64 {
            r.add(i * 0x1000, 0x1000);
        }
        assert!(r.overflowed());
    }
}
