//! A per-VM log: the last `N` bytes a VM wrote to its virtual UART, kept whether or not the
//! console shows that VM, so its output can be replayed when the console switches to it.

/// What [`LogRing::read_from`] copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingRead {
    /// Bytes copied.
    pub count: usize,
    /// Where the next read starts.
    pub cursor: u64,
    /// Bytes between the asked cursor and the first byte copied that were overwritten.
    pub lost: u64,
}

#[derive(Debug, Clone)]
pub struct LogRing<const N: usize> {
    buf: [u8; N],
    /// Total bytes ever written; the ring holds the last `min(written, N)`.
    written: u64,
}

impl<const N: usize> Default for LogRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LogRing<N> {
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            written: 0,
        }
    }

    pub fn push(&mut self, b: u8) {
        if N == 0 {
            self.written += 1;
            return;
        }
        self.buf[(self.written % N as u64) as usize] = b;
        self.written += 1;
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    /// Bytes held now.
    pub fn len(&self) -> usize {
        self.written.min(N as u64) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Bytes overwritten before anyone could read them.
    pub fn lost(&self) -> u64 {
        self.written - self.len() as u64
    }

    /// The held bytes, oldest first, as two slices (the ring's wrap point between them).
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        if self.written <= N as u64 {
            return (&self.buf[..self.written as usize], &[]);
        }
        let head = (self.written % N as u64) as usize;
        (&self.buf[head..], &self.buf[..head])
    }

    /// Bytes ever written: the cursor just past the newest byte.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Copies bytes from position `cursor` of everything ever written (0 = the first byte)
    /// into `out`, as many as fit. Bytes after `cursor` that were already overwritten are
    /// skipped and counted. `None` when `cursor` is past the last byte written.
    pub fn read_from(&self, cursor: u64, out: &mut [u8]) -> Option<RingRead> {
        if cursor > self.written {
            return None;
        }
        let oldest = self.written - self.len() as u64;
        let start = cursor.max(oldest);
        let (a, b) = self.as_slices();
        let skip = (start - oldest) as usize;
        let mut count = 0;
        for (o, &x) in out.iter_mut().zip(a.iter().chain(b.iter()).skip(skip)) {
            *o = x;
            count += 1;
        }
        Some(RingRead {
            count,
            cursor: start + count as u64,
            lost: start - cursor,
        })
    }

    /// Copies the newest bytes into `out` (oldest first), returning how many.
    pub fn tail(&self, out: &mut [u8]) -> usize {
        let (a, b) = self.as_slices();
        let n = out.len().min(a.len() + b.len());
        let skip = a.len() + b.len() - n;
        for (o, &x) in out.iter_mut().zip(a.iter().chain(b.iter()).skip(skip)) {
            *o = x;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents<const N: usize>(r: &LogRing<N>) -> Vec<u8> {
        let (a, b) = r.as_slices();
        [a, b].concat()
    }

    #[test]
    fn keeps_everything_until_full() {
        let mut r = LogRing::<8>::new();
        assert!(r.is_empty());
        r.extend(b"hello");
        assert_eq!(contents(&r), b"hello");
        assert_eq!((r.len(), r.lost()), (5, 0));
    }

    #[test]
    fn overwrites_the_oldest_bytes() {
        let mut r = LogRing::<8>::new();
        r.extend(b"0123456789abc");
        assert_eq!(contents(&r), b"56789abc");
        assert_eq!((r.len(), r.lost()), (8, 5));
        let mut out = [0u8; 3];
        assert_eq!(r.tail(&mut out), 3);
        assert_eq!(&out, b"abc");
        let mut big = [0u8; 20];
        assert_eq!(r.tail(&mut big), 8);
        assert_eq!(&big[..8], b"56789abc");
    }

    #[test]
    fn reads_from_a_cursor_and_counts_what_was_overwritten() {
        let mut r = LogRing::<8>::new();
        let mut out = [0u8; 4];
        let none = RingRead {
            count: 0,
            cursor: 0,
            lost: 0,
        };
        assert_eq!(r.read_from(0, &mut out), Some(none));
        r.extend(b"hello");
        let got = r.read_from(0, &mut out).unwrap();
        assert_eq!(
            (got, &out),
            (
                RingRead {
                    count: 4,
                    cursor: 4,
                    lost: 0
                },
                b"hell"
            )
        );
        let got = r.read_from(got.cursor, &mut out).unwrap();
        assert_eq!((got.count, got.cursor, out[0]), (1, 5, b'o'));
        assert_eq!(r.read_from(6, &mut out), None, "past the end");
        // Wrapped: "56789abc" held, 5 bytes gone; a reader at 3 lost 2 of them.
        r.extend(b"56789abc");
        assert_eq!(r.written(), 13);
        let got = r.read_from(3, &mut out).unwrap();
        assert_eq!(
            (got, &out),
            (
                RingRead {
                    count: 4,
                    cursor: 9,
                    lost: 2
                },
                b"5678"
            ),
            "across the wrap point"
        );
        let mut big = [0u8; 16];
        let got = r.read_from(9, &mut big).unwrap();
        assert_eq!((got.count, got.cursor, got.lost), (4, 13, 0));
        assert_eq!(&big[..4], b"9abc");
        let got = r.read_from(13, &mut big).unwrap();
        assert_eq!((got.count, got.cursor, got.lost), (0, 13, 0), "nothing new");
    }

    #[test]
    fn exactly_full_does_not_wrap() {
        let mut r = LogRing::<4>::new();
        r.extend(b"abcd");
        assert_eq!(r.as_slices(), (&b"abcd"[..], &b""[..]));
        r.push(b'e');
        assert_eq!(contents(&r), b"bcde");
    }
}
