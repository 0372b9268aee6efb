//! Latency histograms (HDR, microsecond resolution) and the percentiles the
//! reports show; the median and spread of repeated runs.

use hdrhistogram::Histogram;

/// Highest latency a histogram can hold: 120 s, in microseconds (larger values
/// are clamped to it, so a pathological tail still shows up as "huge").
const MAX_US: u64 = 120_000_000;

/// A fresh latency histogram: 1 µs .. 120 s, 3 significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// Records a latency given in nanoseconds (clamped to the histogram's range).
pub fn record_ns(h: &mut Histogram<u64>, ns: u64) {
    let us = (ns / 1_000).clamp(1, MAX_US);
    h.saturating_record(us);
}

/// The percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// Extracts p50/p90/p99/p99.9/max (ms) from a microsecond histogram; all zero
    /// when it is empty.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
        Percentiles {
            count: h.len(),
            p50: ms(0.50),
            p90: ms(0.90),
            p99: ms(0.99),
            p999: ms(0.999),
            max: h.max() as f64 / 1_000.0,
        }
    }
}

/// The median and the range of one figure over repeated runs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// Of `values` (the median of an even count is the mean of the middle two);
    /// all zero when empty.
    pub fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    /// `max − min` relative to the median (0 when the median is 0).
    pub fn relative_range(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median
        }
    }
}

/// The index of the median element of `values` (for an even count the lower
/// of the middle two); `None` when empty.
pub fn median_index(values: &[f64]) -> Option<usize> {
    if values.is_empty() {
        return None;
    }
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    Some(idx[(values.len() - 1) / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_gives_zeroes() {
        assert_eq!(Percentiles::of(&new_hist()), Percentiles::default());
    }

    #[test]
    fn percentiles_of_a_uniform_ramp() {
        let mut h = new_hist();
        // 1 ms, 2 ms, ... 1000 ms.
        for i in 1..=1000u64 {
            record_ns(&mut h, i * 1_000_000);
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        let close = |a: f64, b: f64| (a - b).abs() / b < 0.002;
        assert!(close(p.p50, 500.0), "{p:?}");
        assert!(close(p.p90, 900.0), "{p:?}");
        assert!(close(p.p99, 990.0), "{p:?}");
        assert!(close(p.p999, 999.0), "{p:?}");
        assert!(close(p.max, 1000.0), "{p:?}");
    }

    #[test]
    fn tail_is_visible_and_sub_microsecond_values_count() {
        let mut h = new_hist();
        for _ in 0..999 {
            record_ns(&mut h, 200); // below 1 µs: counted as 1 µs
        }
        record_ns(&mut h, 5_000_000_000); // one 5 s outlier
        let p = Percentiles::of(&h);
        assert_eq!(p.p50, 0.001);
        assert_eq!(p.p99, 0.001);
        assert!(p.max > 4_990.0 && p.max < 5_010.0, "{p:?}");
        // Above the range: clamped, not dropped.
        record_ns(&mut h, u64::MAX);
        assert_eq!(h.len(), 1001);
    }

    #[test]
    fn spread_median_and_range() {
        assert_eq!(Spread::of(&[]), Spread::default());
        assert_eq!(
            Spread::of(&[3.0, 1.0, 2.0]),
            Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 10.0]).median, 3.0);
        assert_eq!(Spread::of(&[5.0]).min, 5.0);
        assert!((Spread::of(&[1.0, 2.0, 3.0]).relative_range() - 1.0).abs() < 1e-12);
        assert_eq!(Spread::of(&[0.0, 0.0]).relative_range(), 0.0);
    }

    #[test]
    fn median_index_picks_the_middle_run() {
        assert_eq!(median_index(&[]), None);
        assert_eq!(median_index(&[30.0, 10.0, 20.0]), Some(2));
        // Even count: the lower middle (the worse of the two).
        assert_eq!(median_index(&[40.0, 10.0, 30.0, 20.0]), Some(3));
        assert_eq!(median_index(&[7.0]), Some(0));
    }
}
