//! Per-operation averages in counter ticks, printed with three decimals: one operation often
//! costs less than one tick (QEMU's counter runs at 62.5 MHz, so with `-icount shift=0` one tick
//! is 16 instructions).

use core::fmt;

/// `total` ticks spent over `iters` operations.
#[derive(Clone, Copy, Debug)]
pub struct PerOp {
    pub total: u64,
    pub iters: u64,
}

impl PerOp {
    /// Thousandths of a tick per operation, rounded to nearest.
    pub fn milli(self) -> u64 {
        if self.iters == 0 {
            return 0;
        }
        let m = u128::from(self.total) * 1000;
        let n = u128::from(self.iters);
        ((m + n / 2) / n) as u64
    }
}

impl fmt::Display for PerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.milli();
        write!(f, "{}.{:03}", m / 1000, m % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fractions() {
        assert_eq!(
            PerOp {
                total: 1,
                iters: 16
            }
            .to_string(),
            "0.063"
        );
        assert_eq!(
            PerOp {
                total: 12345,
                iters: 10
            }
            .to_string(),
            "1234.500"
        );
        assert_eq!(
            PerOp {
                total: 0,
                iters: 10
            }
            .to_string(),
            "0.000"
        );
        assert_eq!(PerOp { total: 5, iters: 0 }.to_string(), "0.000");
    }

    #[test]
    fn no_overflow_on_large_totals() {
        assert_eq!(
            PerOp {
                total: u64::MAX / 2,
                iters: u64::MAX / 2
            }
            .milli(),
            1000
        );
    }
}
