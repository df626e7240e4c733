//! A per-VM log: the last `N` bytes a VM wrote to its virtual UART, kept whether or not the
//! console shows that VM, so its output can be replayed when the console switches to it.

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
    fn exactly_full_does_not_wrap() {
        let mut r = LogRing::<4>::new();
        r.extend(b"abcd");
        assert_eq!(r.as_slices(), (&b"abcd"[..], &b""[..]));
        r.push(b'e');
        assert_eq!(contents(&r), b"bcde");
    }
}
