//! A tiny fixed-size log-linear latency histogram (HDR-style), for the soak.
//!
//! Values (nanoseconds) below 64 are counted exactly; above, each power of two is
//! split into 32 linear sub-buckets, so a recorded value is known within 1/32
//! (about 3 %). The whole range of `u64` fits in 1 920 counters (15 KiB),
//! allocated once: [`Histogram::record`] never allocates. One histogram per
//! thread, merged at the end with [`Histogram::merge`].

/// Linear sub-buckets per power of two, as a number of bits.
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Values below this are their own bucket.
const EXACT: u64 = 2 * SUB as u64;
/// Number of buckets: 64 exact ones, then 32 per power of two from 2^6 to 2^63.
pub const BUCKETS: usize = EXACT as usize + (64 - (SUB_BITS as usize + 1)) * SUB;

/// A log-linear histogram of `u64` values.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
    min: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.total)
            .field("min", &self.min())
            .field("max", &self.max)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of `v`.
#[inline]
fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let shift = msb - SUB_BITS;
    let sub = ((v >> shift) as usize) & (SUB - 1);
    EXACT as usize + (msb - SUB_BITS - 1) as usize * SUB + sub
}

/// The highest value that lands in bucket `i` (what percentiles report).
fn highest_in(i: usize) -> u64 {
    if i < EXACT as usize {
        return i as u64;
    }
    let j = i - EXACT as usize;
    let msb = (j / SUB) as u32 + SUB_BITS + 1;
    let shift = msb - SUB_BITS;
    let lo = ((SUB + j % SUB) as u64) << shift;
    lo + ((1u64 << shift) - 1)
}

impl Histogram {
    /// An empty histogram (one allocation of 15 KiB).
    pub fn new() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max: 0,
            min: u64::MAX,
        }
    }

    /// Counts `v`. Constant time, no allocation.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
        self.min = self.min.min(v);
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.min = self.min.min(other.min);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded, exactly (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value recorded, exactly (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    /// The value at quantile `q` (0..=1): the highest value of the bucket holding
    /// the `ceil(q × count)`-th smallest sample, at most [`Histogram::max`].
    /// 0 when empty.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return highest_in(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_precise() {
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        let mut last = 0;
        for v in 0..100_000u64 {
            assert!(index(v) >= last, "{v}");
            last = index(v);
        }
        let edges = (1..64).flat_map(|s| [(1u64 << s) - 1, 1u64 << s, (1u64 << s) + 1]);
        for v in (0..100_000u64).chain(edges).chain([u64::MAX]) {
            let i = index(v);
            assert!(highest_in(i) >= v, "{v}");
            // Within 1/32 of the value.
            assert!(highest_in(i) - v <= v / 32, "{v} -> {}", highest_in(i));
        }
    }

    #[test]
    fn quantiles_and_merge() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in 1..=1000u64 {
            if v % 2 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
        }
        a.merge(&b);
        assert_eq!(a.count(), 1000);
        assert_eq!(a.max(), 1000);
        assert_eq!(a.min(), 1);
        let p50 = a.value_at_quantile(0.5);
        assert!((500..=516).contains(&p50), "{p50}");
        let p99 = a.value_at_quantile(0.99);
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(a.value_at_quantile(1.0), 1000);
        assert_eq!(Histogram::new().value_at_quantile(0.5), 0);
    }
}
