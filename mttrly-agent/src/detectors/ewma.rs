//! Exponentially weighted mean and variance (EWMA + EWMV): a control chart over one series.
//!
//! The score of a sample is its distance from the weighted mean in weighted standard deviations,
//! computed *before* the sample is folded in. A sample outside the control limits (mean ± k·sd)
//! moves the mean only by a step clipped to the limit and does not teach the spread at all (the
//! standard practice of estimating sigma from in-control data): with plain updates a step change
//! hides itself by its second interval and every burst widens the limits for the next one. A real
//! level shift is still adopted, a clipped step at a time (and the MAD window adopts it after half
//! its length, which ends the consensus long before).

/// The smallest spread any score divides by, whatever the configured floor: a floor of 0 on a
/// flat series still gives a large finite score, never an infinity or a NaN.
pub const MIN_SPREAD: f64 = 1e-9;

/// The running mean and variance; 24 bytes, no heap.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ewma {
    mean: f64,
    var: f64,
    seen: u32,
}

impl Ewma {
    /// The baseline: the weighted mean (0 before the first sample).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// How many samples were folded in (saturating).
    pub fn seen(&self) -> u32 {
        self.seen
    }

    /// The standard deviation used for scoring: never below `floor`, so a flat series (variance
    /// 0) scores a change against the smallest change that matters instead of dividing by zero.
    fn sd(&self, floor: f64) -> f64 {
        self.var.max(0.0).sqrt().max(floor).max(MIN_SPREAD)
    }

    /// The sample's score in standard deviations (signed), or `None` until `warmup` samples were
    /// seen.
    pub fn score(&self, x: f64, warmup: u32, floor: f64) -> Option<f64> {
        (self.seen >= warmup).then(|| (x - self.mean) / self.sd(floor))
    }

    /// Folds `x` in with weight `alpha`, clipped to mean ± `limit`·sd once warmed up.
    pub fn update(&mut self, x: f64, alpha: f64, warmup: u32, limit: f64, floor: f64) {
        if self.seen == 0 {
            self.mean = x;
            self.var = 0.0;
            self.seen = 1;
            return;
        }
        if self.seen >= warmup {
            let band = limit * self.sd(floor);
            if (x - self.mean).abs() > band {
                // Out of control: the mean moves a clipped step towards it (a lasting level shift
                // is adopted, slowly), the spread does not learn from it (an outlier would widen
                // the limits and hide the next one).
                self.mean += alpha * (x.clamp(self.mean - band, self.mean + band) - self.mean);
                self.seen = self.seen.saturating_add(1);
                return;
            }
        }
        // West's incremental form: the variance update uses the deviation before and after the
        // mean moved, which keeps it non-negative in floating point.
        let diff = x - self.mean;
        let incr = alpha * diff;
        self.mean += incr;
        self.var = (1.0 - alpha) * (self.var + diff * incr);
        self.seen = self.seen.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_series_has_zero_variance_and_scores_against_the_floor() {
        let mut e = Ewma::default();
        for _ in 0..50 {
            e.update(40.0, 0.1, 5, 3.0, 2.0);
        }
        assert!((e.mean() - 40.0).abs() < 1e-12);
        assert_eq!(e.score(40.0, 5, 2.0), Some(0.0));
        let z = e.score(46.0, 5, 2.0).unwrap();
        assert!((z - 3.0).abs() < 1e-9, "6 points over a floor of 2: {z}");
        assert!(e.score(46.0, 5, 0.0).unwrap().is_finite(), "a zero floor still never divides by zero");
    }

    #[test]
    fn no_score_before_the_warmup() {
        let mut e = Ewma::default();
        for i in 0..4 {
            e.update(f64::from(i), 0.1, 5, 3.0, 1.0);
        }
        assert_eq!(e.score(100.0, 5, 1.0), None);
        e.update(1.0, 0.1, 5, 3.0, 1.0);
        assert!(e.score(100.0, 5, 1.0).is_some());
    }

    #[test]
    fn an_outlier_is_clipped_so_the_baseline_barely_moves() {
        let mut e = Ewma::default();
        for i in 0..40 {
            e.update(20.0 + f64::from(i % 2), 0.3, 5, 3.0, 1.0);
        }
        let before = e.mean();
        e.update(1_000.0, 0.3, 5, 3.0, 1.0);
        assert!(e.mean() - before < 2.0, "moved {}", e.mean() - before);
    }
}
