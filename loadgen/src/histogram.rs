//! Latencies, counted in buckets: percentiles and an ASCII chart from a fixed amount of memory.
//!
//! Keeping every latency and sorting them gives exact percentiles, but memory grows with the
//! run. Instead each power of two of microseconds (1 ms is about 2^10 µs, 1 s about 2^20) is
//! cut into [`SLICES`] equal slices, and a latency only adds one to its slice's counter. A
//! bucket is then never wider than 1/32 of the values in it, so a percentile read back from
//! the buckets is within about 3% of the exact one, for 50 µs and for 5 s alike; and the
//! whole histogram is [`BUCKETS`] counters however many requests are recorded.
//!
//! Each client thread fills a histogram of its own, with no lock and no sharing; at the end
//! they are added together with [`Histogram::merge`].

use std::time::Duration;

/// Slices per power of two; a power of two itself, so a slice is a bit shift away.
const SLICE_BITS: u32 = 5;
const SLICES: u64 = 1 << SLICE_BITS;
/// Latencies above this (about 71 minutes) are counted as this.
const MAX_MICROS: u64 = u32::MAX as u64;
/// Values below [`SLICES`] µs get a bucket each; then [`SLICES`] buckets per power of two.
const BUCKETS: usize = ((32 - SLICE_BITS + 1) as u64 * SLICES) as usize;

/// The latencies of many requests, in microseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    min: u64,
    max: u64,
    sum: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// The bucket a value falls in.
fn bucket_of(micros: u64) -> usize {
    let v = micros.min(MAX_MICROS);
    if v < SLICES {
        return v as usize;
    }
    // v lies between 2^power and 2^(power + 1); its top SLICE_BITS + 1 bits are the leading
    // one, then which slice of that power of two.
    let shift = v.ilog2() - SLICE_BITS;
    let slice = (v >> shift) - SLICES;
    ((u64::from(shift) + 1) * SLICES + slice) as usize
}

/// The smallest value in a bucket, and how many consecutive values it holds.
fn bucket_range(bucket: usize) -> (u64, u64) {
    let bucket = bucket as u64;
    if bucket < SLICES {
        return (bucket, 1);
    }
    let shift = bucket / SLICES - 1;
    let slice = bucket % SLICES;
    ((SLICES + slice) << shift, 1 << shift)
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        self.counts[bucket_of(micros)] += 1;
        self.count += 1;
        self.min = self.min.min(micros);
        self.max = self.max.max(micros);
        self.sum = self.sum.saturating_add(micros);
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum = self.sum.saturating_add(other.sum);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn min(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_micros(self.min))
    }

    pub fn max(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_micros(self.max))
    }

    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_micros(self.sum / self.count))
    }

    /// The latency that `fraction` of the requests did not exceed: `percentile(0.99)` is p99.
    ///
    /// Found by walking the buckets until they hold that many requests, then placing it
    /// within its bucket as if the bucket's requests were spread evenly. The fastest and the
    /// slowest request are known exactly: the minimum and maximum are kept as they are.
    pub fn percentile(&self, fraction: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((fraction.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        // The ends are known exactly; no need to guess within a bucket.
        if rank == 1 {
            return self.min();
        }
        if rank >= self.count {
            return self.max();
        }
        let mut before = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            if before + n >= rank {
                // Assume the bucket's requests are spread evenly across it, and pick the
                // place of the one we want among them.
                let (low, width) = bucket_range(bucket);
                let within = width * (rank - before) / n;
                return Some(Duration::from_micros(
                    (low + within).clamp(self.min, self.max),
                ));
            }
            before += n;
        }
        self.max()
    }

    /// At most `max_rows` rows from the fastest to the slowest latency, for the chart.
    ///
    /// Each row joins the same number of neighbouring buckets, so rows, like buckets, are
    /// narrow for short latencies and wide for long ones.
    pub fn rows(&self, max_rows: usize) -> Vec<Row> {
        if self.count == 0 || max_rows == 0 {
            return Vec::new();
        }
        let first = bucket_of(self.min);
        let last = bucket_of(self.max);
        let per_row = (last - first + 1).div_ceil(max_rows);
        (first..=last)
            .step_by(per_row)
            .map(|start| {
                let end = (start + per_row - 1).min(last);
                let (low, _) = bucket_range(start);
                let (end_low, end_width) = bucket_range(end);
                Row {
                    from: Duration::from_micros(low.max(self.min)),
                    to: Duration::from_micros((end_low + end_width - 1).min(self.max)),
                    count: self.counts[start..=end].iter().sum(),
                }
            })
            .collect()
    }
}

/// One line of the chart: how many latencies fell from `from` to `to`, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    pub from: Duration,
    pub to: Duration,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn every_value_lands_in_a_bucket_that_contains_it() {
        let mut previous = 0;
        for micros in (0..5000).chain([65_535, 1_000_000, 5_000_000, MAX_MICROS]) {
            let bucket = bucket_of(micros);
            let (low, width) = bucket_range(bucket);
            assert!(
                (low..low + width).contains(&micros),
                "{micros} in {low}+{width}"
            );
            assert!(bucket >= previous, "buckets grow with the value");
            assert!(
                width * SLICES <= low.max(SLICES),
                "a bucket is at most 1/32 wide"
            );
            previous = bucket;
        }
        assert_eq!(bucket_of(MAX_MICROS), BUCKETS - 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_1_to_100_ms_are_within_3_percent() {
        let mut h = Histogram::new();
        for n in 1..=100 {
            h.record(ms(n));
        }
        for (fraction, exact) in [(0.5, 50.0), (0.9, 90.0), (0.99, 99.0)] {
            let got = h.percentile(fraction).unwrap().as_secs_f64() * 1000.0;
            assert!((got - exact).abs() <= exact * 0.03, "p{fraction}: {got} ms");
        }
        assert_eq!(h.percentile(0.0), Some(ms(1)));
        assert_eq!(h.percentile(1.0), Some(ms(100)));
        assert_eq!(
            (h.min(), h.max(), h.count()),
            (Some(ms(1)), Some(ms(100)), 100)
        );
        assert_eq!(h.mean(), Some(Duration::from_micros(50_500)));
    }

    #[test]
    fn one_value_is_every_percentile() {
        let mut h = Histogram::new();
        h.record(Duration::from_micros(1234));
        for fraction in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(h.percentile(fraction), Some(Duration::from_micros(1234)));
        }
    }

    #[test]
    fn an_empty_histogram_has_no_percentiles_and_no_rows() {
        let h = Histogram::new();
        assert_eq!((h.percentile(0.5), h.min(), h.mean()), (None, None, None));
        assert!(h.rows(10).is_empty());
    }

    #[test]
    fn merging_is_the_same_as_recording_everything_in_one() {
        let (mut a, mut b, mut both) = (Histogram::new(), Histogram::new(), Histogram::new());
        for n in 1..=50 {
            a.record(ms(n));
            both.record(ms(n));
        }
        for n in 200..=220 {
            b.record(ms(n));
            both.record(ms(n));
        }
        a.merge(&b);
        assert_eq!(a, both);
        assert_eq!(a.min(), Some(ms(1)));
        assert_eq!(a.max(), Some(ms(220)));
    }

    #[test]
    fn rows_cover_min_to_max_and_count_everything() {
        let mut h = Histogram::new();
        for n in 1..=1000 {
            h.record(ms(n));
        }
        h.record(ms(5000));
        let rows = h.rows(12);
        assert!(rows.len() <= 12 && rows.len() >= 6, "{} rows", rows.len());
        assert_eq!(rows.first().unwrap().from, ms(1));
        assert_eq!(rows.last().unwrap().to, ms(5000));
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 1001);
        for pair in rows.windows(2) {
            assert!(pair[0].to < pair[1].from, "rows do not overlap");
        }
    }

    #[test]
    fn a_narrow_spread_gets_one_row_per_bucket() {
        let mut h = Histogram::new();
        for micros in [1000, 1001, 1040, 1100] {
            h.record(Duration::from_micros(micros));
        }
        let rows = h.rows(12);
        assert_eq!(rows.len(), bucket_of(1100) - bucket_of(1000) + 1);
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 4);
    }
}
