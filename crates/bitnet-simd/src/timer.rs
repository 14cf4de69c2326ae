//! A small timing and statistics utility (the seed's `PerfTimer` / `PerfStats`).
//!
//! For ad-hoc measurements and the `xtask limits` probes; benchmarks proper use `criterion`.

use std::time::{Duration, Instant};

/// A stopwatch.
#[derive(Clone, Copy, Debug)]
pub struct PerfTimer {
    start: Instant,
}

impl PerfTimer {
    /// Starts timing now.
    pub fn start() -> PerfTimer {
        PerfTimer {
            start: Instant::now(),
        }
    }

    /// Time since start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Time since start, in seconds.
    pub fn elapsed_secs(&self) -> f64 {
        self.elapsed().as_secs_f64()
    }

    /// Returns the time since start and starts again.
    pub fn lap(&mut self) -> Duration {
        let now = Instant::now();
        let lap = now - self.start;
        self.start = now;
        lap
    }
}

/// Summary statistics of a set of samples (e.g. seconds per run).
#[derive(Clone, Debug, PartialEq)]
pub struct PerfStats {
    sorted: Vec<f64>,
}

impl PerfStats {
    /// Statistics over `samples`; NaN samples are dropped.
    pub fn new(samples: impl IntoIterator<Item = f64>) -> PerfStats {
        let mut sorted: Vec<f64> = samples.into_iter().filter(|s| !s.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        PerfStats { sorted }
    }

    /// Times `f` `runs` times (after `warmup` untimed runs) and returns seconds per run.
    pub fn measure(warmup: usize, runs: usize, mut f: impl FnMut()) -> PerfStats {
        for _ in 0..warmup {
            f();
        }
        PerfStats::new((0..runs).map(|_| {
            let t = PerfTimer::start();
            f();
            t.elapsed_secs()
        }))
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The smallest sample (NaN if empty).
    pub fn min(&self) -> f64 {
        self.sorted.first().copied().unwrap_or(f64::NAN)
    }

    /// The largest sample (NaN if empty).
    pub fn max(&self) -> f64 {
        self.sorted.last().copied().unwrap_or(f64::NAN)
    }

    /// The arithmetic mean (NaN if empty).
    pub fn mean(&self) -> f64 {
        self.sorted.iter().sum::<f64>() / self.sorted.len() as f64
    }

    /// The sample standard deviation (0 for fewer than two samples).
    pub fn std_dev(&self) -> f64 {
        let n = self.sorted.len();
        if n < 2 {
            return 0.0;
        }
        let mean = self.mean();
        (self.sorted.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    }

    /// The `p`-th percentile, `p` in 0..=100, by linear interpolation (NaN if empty).
    pub fn percentile(&self, p: f64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        self.sorted[lo] + (self.sorted[hi] - self.sorted[lo]) * (rank - lo as f64)
    }

    /// The median.
    pub fn median(&self) -> f64 {
        self.percentile(50.0)
    }

    /// Half the spread between the 10th and 90th percentile, relative to the median: a robust
    /// "± x %" for reports.
    pub fn relative_spread(&self) -> f64 {
        (self.percentile(90.0) - self.percentile(10.0)) / (2.0 * self.median())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_known_samples() {
        let s = PerfStats::new([4.0, 1.0, 3.0, 2.0, f64::NAN]);
        assert_eq!(s.len(), 4);
        assert_eq!(s.min(), 1.0);
        assert_eq!(s.max(), 4.0);
        assert_eq!(s.mean(), 2.5);
        assert_eq!(s.median(), 2.5);
        assert_eq!(s.percentile(0.0), 1.0);
        assert_eq!(s.percentile(100.0), 4.0);
        assert!((s.std_dev() - 1.290_994).abs() < 1e-6);
        let empty = PerfStats::new([]);
        assert!(empty.is_empty() && empty.median().is_nan());
    }

    #[test]
    fn timer_moves_forward() {
        let mut t = PerfTimer::start();
        let stats = PerfStats::measure(1, 3, || std::hint::black_box(()));
        assert_eq!(stats.len(), 3);
        assert!(t.lap() >= Duration::ZERO);
        assert!(t.elapsed_secs() >= 0.0);
    }
}
