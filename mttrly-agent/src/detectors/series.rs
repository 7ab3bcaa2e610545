//! One metric series: both detectors, their consensus, and the persistence rule.
//!
//! An interval is anomalous only when **both** detectors (the EWMA control chart and the rolling
//! MAD score) flag it in the same direction: Netdata's lesson that requiring every model to agree
//! removes most false positives. An event is raised once the anomaly held for
//! [`DetectorConfig::persist`] consecutive intervals (collectd's `Hits`), and only once per
//! episode: the series stays raised until [`DetectorConfig::clear_after`] calm intervals in a
//! row, so a persisting anomaly is one event, not one per heartbeat.

use super::DetectorConfig;
use super::ewma::Ewma;
use super::mad::{RollingMad, Scratch};

/// The largest magnitude a sample may have. Every tracked metric is a percentage or a load
/// average; a value past this is a broken reading, and squaring it could overflow to infinity.
pub const MAX_SAMPLE: f64 = 1e12;

/// Which way a series moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Above its baseline.
    Up,
    /// Below its baseline.
    Down,
}

impl Direction {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }

    fn of(score: f64) -> Self {
        if score >= 0.0 { Self::Up } else { Self::Down }
    }
}

/// What a series says when it raises an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Raise {
    /// The anomalous value.
    pub value: f64,
    /// The EWMA baseline it was scored against.
    pub baseline: f64,
    /// The EWMA score (standard deviations).
    pub ewma_score: f64,
    /// The modified z-score.
    pub mad_score: f64,
    /// Which way.
    pub direction: Direction,
    /// Consecutive anomalous intervals so far.
    pub intervals: u32,
}

/// The consensus of one interval: both scores exist, both are past their limits, and they point
/// the same way. Any detector alone (the other quiet, warming up or pointing the other way) is no
/// anomaly.
fn agree(ewma: Option<f64>, mad: Option<f64>, cfg: &DetectorConfig) -> Option<(Direction, f64, f64)> {
    let (e, m) = (ewma?, mad?);
    let direction = Direction::of(e);
    (e.abs() > cfg.ewma_limit && m.abs() > cfg.mad_limit && direction == Direction::of(m)).then_some((direction, e, m))
}

/// The detectors' state for one series: fixed size, no heap.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Series {
    ewma: Ewma,
    mad: RollingMad,
    run: u32,
    calm: u32,
    run_direction: Option<Direction>,
    raised: bool,
}

impl Series {
    /// Whether an event was raised for the current episode and has not cleared yet.
    pub fn raised(&self) -> bool {
        self.raised
    }

    /// Scores `x` (one interval's sample) with `floor` as the smallest change that matters for
    /// this metric, folds it into the baselines, and returns the event to raise, if this is the
    /// interval an anomaly reached its persistence. A non-finite sample, or one past [`MAX_SAMPLE`],
    /// is ignored whole.
    pub fn observe(&mut self, x: f64, floor: f64, cfg: &DetectorConfig, scratch: &mut Scratch) -> Option<Raise> {
        if !x.is_finite() || x.abs() > MAX_SAMPLE {
            return None;
        }
        let ewma_score = self.ewma.score(x, cfg.warmup, floor);
        let mad = self.mad.score(x, usize::try_from(cfg.warmup).unwrap_or(usize::MAX), floor, scratch);
        let baseline = self.ewma.mean();
        self.ewma.update(x, cfg.alpha, cfg.warmup, cfg.ewma_limit, floor);
        self.mad.push(x);

        let agreed = agree(ewma_score, mad.map(|(m, _)| m), cfg);
        let Some((direction, ewma_score, mad_score)) = agreed else {
            self.run = 0;
            self.run_direction = None;
            if self.raised {
                self.calm += 1;
                if self.calm >= cfg.clear_after {
                    self.raised = false;
                    self.calm = 0;
                }
            }
            return None;
        };
        if self.run_direction != Some(direction) {
            self.run = 0;
            self.run_direction = Some(direction);
        }
        self.run = self.run.saturating_add(1);
        self.calm = 0;
        if self.raised || self.run < cfg.persist {
            return None;
        }
        self.raised = true;
        Some(Raise { value: x, baseline, ewma_score, mad_score, direction, intervals: self.run })
    }
}

#[cfg(test)]
mod tests {
    use super::super::mad::WINDOW;
    use super::*;

    fn cfg() -> DetectorConfig {
        DetectorConfig { warmup: 8, persist: 3, clear_after: 2, ..DetectorConfig::default() }
    }

    /// A deterministic noise of ±1.5 around `level` (a small LCG, so the test needs no crate).
    fn noisy(level: f64, seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let unit = f64::from(u32::try_from(*seed >> 40).unwrap_or(0)) / f64::from(1u32 << 24);
        level + (unit - 0.5) * 3.0
    }

    /// `count` noisy samples at each `level`, in order.
    fn levels(steps: &[(f64, usize)], seed: &mut u64) -> Vec<f64> {
        steps.iter().flat_map(|&(level, count)| std::iter::repeat_n(level, count)).map(|l| noisy(l, seed)).collect()
    }

    fn run(series: &mut Series, values: impl IntoIterator<Item = f64>) -> Vec<(usize, Raise)> {
        let mut scratch = [0.0; WINDOW];
        let cfg = cfg();
        values
            .into_iter()
            .enumerate()
            .filter_map(|(i, x)| series.observe(x, 2.0, &cfg, &mut scratch).map(|r| (i, r)))
            .collect()
    }

    #[test]
    fn a_step_change_fires_after_n_intervals_and_once() {
        let mut seed = 7;
        let mut s = Series::default();
        let values = levels(&[(20.0, 40), (80.0, 10)], &mut seed);
        let raised = run(&mut s, values);
        assert_eq!(raised.len(), 1, "{raised:?}");
        let (at, raise) = raised[0];
        assert_eq!(at, 42, "the third anomalous interval (persist = 3)");
        assert_eq!(raise.intervals, 3);
        assert_eq!(raise.direction, Direction::Up);
        assert!((raise.baseline - 20.0).abs() < 5.0, "{raise:?}");
        assert!(s.raised());
    }

    #[test]
    fn a_step_shorter_than_the_persistence_does_not_fire() {
        let mut seed = 3;
        let mut s = Series::default();
        let values = levels(&[(20.0, 40), (95.0, 2), (20.0, 20)], &mut seed);
        assert!(run(&mut s, values).is_empty());
    }

    #[test]
    fn noise_alone_never_fires() {
        let mut seed = 11;
        let mut s = Series::default();
        assert!(run(&mut s, (0..5_000).map(|_| noisy(50.0, &mut seed))).is_empty());
    }

    #[test]
    fn a_flat_series_with_mad_zero_neither_fires_nor_divides_by_zero() {
        let mut s = Series::default();
        assert!(run(&mut s, std::iter::repeat_n(42.0, 500)).is_empty());
        // A change under the floor's limits on a flat series is not an anomaly either.
        assert!(run(&mut s, std::iter::repeat_n(45.0, 10)).is_empty());
        // A real change on it is, and the scores were finite.
        let raised = run(&mut s, std::iter::repeat_n(90.0, 5));
        assert_eq!(raised.len(), 1);
        assert!(raised[0].1.ewma_score.is_finite() && raised[0].1.mad_score.is_finite());
    }

    #[test]
    fn one_detector_alone_never_fires() {
        let cfg = cfg();
        assert!(agree(Some(50.0), None, &cfg).is_none(), "MAD still warming up");
        assert!(agree(None, Some(50.0), &cfg).is_none(), "EWMA still warming up");
        assert!(agree(Some(50.0), Some(1.0), &cfg).is_none(), "MAD quiet");
        assert!(agree(Some(1.0), Some(50.0), &cfg).is_none(), "EWMA quiet");
        assert!(agree(Some(50.0), Some(-50.0), &cfg).is_none(), "opposite directions");
        assert_eq!(agree(Some(-50.0), Some(-40.0), &cfg), Some((Direction::Down, -50.0, -40.0)));
        // On a series: a level the window has seen half the time keeps MAD quiet (the median
        // sits on it) while the EWMA, whose mean sits between the levels, may flag: no event.
        let mut s = Series::default();
        let alternating = (0..400).map(|i| if i % 2 == 0 { 10.0 } else { 30.0 });
        assert!(run(&mut s, alternating).is_empty());
    }

    #[test]
    fn after_it_clears_a_new_episode_fires_again() {
        let mut seed = 5;
        let mut s = Series::default();
        let mut values: Vec<f64> = (0..20).map(|_| noisy(20.0, &mut seed)).collect();
        for _ in 0..4 {
            values.extend((0..4).map(|_| noisy(90.0, &mut seed)));
            values.extend((0..10).map(|_| noisy(20.0, &mut seed)));
        }
        let raised = run(&mut s, values);
        assert_eq!(raised.len(), 4, "{raised:?}");
        assert!(raised.iter().all(|(_, r)| r.direction == Direction::Up));
    }
}
