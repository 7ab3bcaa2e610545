//! A rolling median absolute deviation: the modified z-score (Iglewicz and Hoaglin) of a sample
//! against the last [`WINDOW`] samples of its series.
//!
//! `M = 0.6745 · (x − median) / MAD`, the same as `(x − median) / (1.4826 · MAD)`. The median
//! ignores up to half the window being outliers, so a short burst never moves it. On a flat
//! series MAD is 0: the denominator is then the configured floor (the smallest change that
//! matters for the metric), never zero.
//!
//! Fixed memory: a ring of [`WINDOW`] values per series. Scoring copies the window into a scratch
//! array the caller owns (one per bank, not per series) and selects medians in place: no heap
//! allocation per sample.

/// Samples kept per series.
pub const WINDOW: usize = 32;

/// 1 / Φ⁻¹(3/4): scales a MAD to a standard deviation for normal data.
const MAD_TO_SD: f64 = 1.4826;

/// The last [`WINDOW`] samples of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollingMad {
    ring: [f64; WINDOW],
    len: u8,
    next: u8,
}

impl Default for RollingMad {
    fn default() -> Self {
        Self { ring: [0.0; WINDOW], len: 0, next: 0 }
    }
}

/// Scratch space for scoring, shared by every series of a bank.
pub type Scratch = [f64; WINDOW];

/// The median of `values` (the upper middle for an even count), reordering them.
fn median(values: &mut [f64]) -> f64 {
    let mid = values.len() / 2;
    let (_, m, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    *m
}

impl RollingMad {
    /// How many samples are held.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sample's modified z-score (signed) and the window's median, or `None` until `warmup`
    /// samples are held.
    pub fn score(&self, x: f64, warmup: usize, floor: f64, scratch: &mut Scratch) -> Option<(f64, f64)> {
        let n = self.len();
        if n == 0 || n < warmup {
            return None;
        }
        let values = &mut scratch[..n];
        values.copy_from_slice(&self.ring[..n]);
        let med = median(values);
        for v in values.iter_mut() {
            *v = (*v - med).abs();
        }
        let mad = median(values);
        let denominator = (MAD_TO_SD * mad).max(floor).max(super::ewma::MIN_SPREAD);
        Some(((x - med) / denominator, med))
    }

    /// Adds a sample, replacing the oldest once the window is full.
    pub fn push(&mut self, x: f64) {
        self.ring[usize::from(self.next)] = x;
        self.next = u8::try_from((usize::from(self.next) + 1) % WINDOW).unwrap_or(0);
        if self.len() < WINDOW {
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mad_zero_on_a_flat_series_scores_against_the_floor() {
        let mut w = RollingMad::default();
        let mut scratch = [0.0; WINDOW];
        for _ in 0..WINDOW {
            w.push(7.0);
        }
        let (z, med) = w.score(7.0, 8, 0.5, &mut scratch).unwrap();
        assert_eq!((z, med), (0.0, 7.0));
        let (z, _) = w.score(9.0, 8, 0.5, &mut scratch).unwrap();
        assert!((z - 4.0).abs() < 1e-12, "{z}");
        let (z, _) = w.score(9.0, 8, 0.0, &mut scratch).unwrap();
        assert!(z.is_finite() && z > 0.0, "a zero floor never divides by zero: {z}");
    }

    #[test]
    fn the_median_ignores_a_minority_of_outliers() {
        let mut w = RollingMad::default();
        let mut scratch = [0.0; WINDOW];
        for i in 0..WINDOW {
            w.push(if i % 4 == 0 { 500.0 } else { 10.0 + f64::from(u8::try_from(i % 3).unwrap()) });
        }
        let (_, med) = w.score(0.0, 8, 0.1, &mut scratch).unwrap();
        assert!((10.0..=12.0).contains(&med), "{med}");
    }

    #[test]
    fn the_window_keeps_only_the_last_samples() {
        let mut w = RollingMad::default();
        let mut scratch = [0.0; WINDOW];
        for _ in 0..WINDOW {
            w.push(100.0);
        }
        for _ in 0..WINDOW {
            w.push(1.0);
        }
        assert_eq!(w.len(), WINDOW);
        assert!((w.score(1.0, 8, 1.0, &mut scratch).unwrap().1 - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn no_score_before_the_warmup() {
        let mut w = RollingMad::default();
        let mut scratch = [0.0; WINDOW];
        assert!(w.is_empty());
        for _ in 0..7 {
            w.push(1.0);
        }
        assert_eq!(w.score(50.0, 8, 1.0, &mut scratch), None);
    }
}
