//! Median and range of a set of tick counts, and byte rates.

use std::fmt;

/// Median, smallest and largest of `n` samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub median: u64,
    pub min: u64,
    pub max: u64,
    pub n: usize,
}

impl Summary {
    /// `None` for no samples. The median of an even count is the lower middle one, so it is
    /// always a value that was measured.
    pub fn of(samples: &[u64]) -> Option<Summary> {
        let mut s = samples.to_vec();
        s.sort_unstable();
        Some(Summary {
            median: *s.get((s.len().checked_sub(1)?) / 2)?,
            min: *s.first()?,
            max: *s.last()?,
            n: s.len(),
        })
    }
}

/// The line the benchmark scripts parse: `median M min A max B n N`.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "median {} min {} max {} n {}",
            self.median, self.min, self.max, self.n
        )
    }
}

/// Bytes per second for `bytes` moved in `ticks` of a `freq` Hz counter (`None` for 0 ticks).
pub fn bytes_per_second(bytes: u64, ticks: u64, freq: u64) -> Option<u64> {
    if ticks == 0 {
        return None;
    }
    let r = u128::from(bytes) * u128::from(freq) / u128::from(ticks);
    Some(u64::try_from(r).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let s = Summary::of(&[9, 1, 5, 7, 3]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (5, 1, 9, 5));
        assert_eq!(s.to_string(), "median 5 min 1 max 9 n 5");
    }

    #[test]
    fn an_even_count_takes_the_lower_middle_sample() {
        assert_eq!(Summary::of(&[40, 10, 30, 20]).unwrap().median, 20);
        assert_eq!(Summary::of(&[4]).unwrap().median, 4);
    }

    #[test]
    fn no_samples_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn rates() {
        // 62.5 MHz: 1 MiB in 62.5 M ticks is 1 MiB/s.
        assert_eq!(
            bytes_per_second(1 << 20, 62_500_000, 62_500_000),
            Some(1 << 20)
        );
        assert_eq!(bytes_per_second(100, 0, 62_500_000), None);
        assert_eq!(bytes_per_second(u64::MAX, 1, u64::MAX), Some(u64::MAX));
    }
}
