//! Proactive detectors: cheap, deterministic anomaly detection over the agent's own metric series,
//! run on every heartbeat sample.
//!
//! Two detectors score each series ([`ewma`]: an EWMA/EWMV control chart; [`mad`]: a rolling
//! median-absolute-deviation modified z-score); [`series`] raises an event only when both agree
//! for [`DetectorConfig::persist`] consecutive intervals, once per episode. [`Bank`] maps a
//! heartbeat's [`HostMetrics`] onto a fixed set of series (CPU, memory, swap, load, each real
//! filesystem up to [`MAX_FILESYSTEMS`]). Memory is fixed per series (a ring of
//! [`mad::WINDOW`] samples, about 300 bytes); nothing is allocated per sample, only when an event
//! is raised. Events go to central as `AgentMessage.proactive_event`.
//!
//! Near-misses of the alert rules are judged on central, where the rules live (see
//! `mttrly-central/src/proactive/near_miss.rs`): the agent does not know them.

pub mod ewma;
pub mod mad;
pub mod series;

use mttrly_proto::agent::v1::{HostMetrics, ProactiveEvent};

use self::mad::{Scratch, WINDOW};
use self::series::{Raise, Series};

/// The detectors' names on an event: both must agree, so every event names both.
pub const DETECTORS: [&str; 2] = ["ewma", "mad"];

/// Most filesystems tracked; more are ignored (a host with hundreds of mounts would otherwise
/// grow the bank without bound).
pub const MAX_FILESYSTEMS: usize = 32;

/// How the detectors judge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Whether to run at all.
    pub enabled: bool,
    /// EWMA weight of a new sample.
    pub alpha: f64,
    /// Samples before either detector scores.
    pub warmup: u32,
    /// EWMA control limit, in standard deviations (also the clip of its updates).
    pub ewma_limit: f64,
    /// Modified z-score limit (Iglewicz and Hoaglin's 3.5).
    pub mad_limit: f64,
    /// Consecutive agreeing intervals before an event is raised.
    pub persist: u32,
    /// Calm intervals in a row before a raised series may raise again.
    pub clear_after: u32,
    /// The smallest change that matters for a percentage metric (percentage points): the floor
    /// of both detectors' spread, so a flat series is never divided by zero and 0.1 % jitter on
    /// an idle host is no anomaly.
    pub percent_floor: f64,
    /// The same for the load average.
    pub load_floor: f64,
}

impl Default for DetectorConfig {
    /// At a 30 s heartbeat: scoring starts after 8 minutes, an event needs 90 s of agreement.
    fn default() -> Self {
        Self {
            enabled: true,
            alpha: 0.1,
            warmup: 16,
            ewma_limit: 3.0,
            mad_limit: 3.5,
            persist: 3,
            clear_after: 3,
            percent_floor: 2.0,
            load_floor: 0.25,
        }
    }
}

/// The fixed series, by index in [`Bank::fixed`].
const FIXED: [&str; 4] = ["cpu_percent", "memory_percent", "swap_percent", "load_1"];

/// An event to send: the metric's name and what its series said.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The metric (`cpu_percent`, `disk_used_percent:/var`, ...).
    pub metric: String,
    /// What the detectors saw.
    pub raise: Raise,
}

impl Finding {
    /// The wire message, stamped with when it was detected.
    pub fn to_wire(&self, detected_at_unix_ms: i64) -> ProactiveEvent {
        ProactiveEvent {
            metric: self.metric.clone(),
            detectors: DETECTORS.iter().map(|d| (*d).to_owned()).collect(),
            value: self.raise.value,
            baseline: self.raise.baseline,
            ewma_score: self.raise.ewma_score,
            mad_score: self.raise.mad_score,
            direction: self.raise.direction.as_str().to_owned(),
            intervals: self.raise.intervals,
            detected_at_unix_ms,
        }
    }
}

/// Every series of one host.
pub struct Bank {
    cfg: DetectorConfig,
    fixed: [Series; FIXED.len()],
    disks: Vec<(Box<str>, Series)>,
    scratch: Scratch,
}

#[allow(clippy::cast_precision_loss)] // byte counts as a share: precision far beyond a percent
fn percent(used: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| used as f64 * 100.0 / total as f64)
}

impl Bank {
    /// An empty bank (the filesystems' table is reserved now, so a sample never grows it past
    /// [`MAX_FILESYSTEMS`]).
    pub fn new(cfg: DetectorConfig) -> Self {
        Self {
            cfg,
            fixed: [Series::default(); FIXED.len()],
            disks: Vec::with_capacity(MAX_FILESYSTEMS),
            scratch: [0.0; WINDOW],
        }
    }

    /// How many series are tracked.
    pub fn series(&self) -> usize {
        self.fixed.len() + self.disks.len()
    }

    /// Judges one heartbeat's sample, appending to `out` the events it raises.
    pub fn observe(&mut self, m: &HostMetrics, out: &mut Vec<Finding>) {
        if !self.cfg.enabled {
            return;
        }
        let (cfg, scratch) = (&self.cfg, &mut self.scratch);
        let fixed = [
            Some((m.cpu_percent, cfg.percent_floor)),
            percent(m.memory_used_bytes, m.memory_total_bytes).map(|p| (p, cfg.percent_floor)),
            percent(m.swap_used_bytes, m.swap_total_bytes).map(|p| (p, cfg.percent_floor)),
            Some((m.load_1, cfg.load_floor)),
        ];
        for ((series, name), sample) in self.fixed.iter_mut().zip(FIXED).zip(fixed) {
            let Some((value, floor)) = sample else { continue };
            if let Some(raise) = series.observe(value, floor, cfg, scratch) {
                out.push(Finding { metric: name.to_owned(), raise });
            }
        }
        for fs in &m.filesystems {
            let Some(value) = percent(fs.used_bytes, fs.total_bytes) else { continue };
            let index = match self.disks.iter().position(|(mount, _)| **mount == *fs.mount_point) {
                Some(index) => index,
                None if self.disks.len() < MAX_FILESYSTEMS => {
                    self.disks.push((fs.mount_point.clone().into_boxed_str(), Series::default()));
                    self.disks.len() - 1
                }
                None => continue,
            };
            let (mount, series) = &mut self.disks[index];
            if let Some(raise) = series.observe(value, cfg.percent_floor, cfg, scratch) {
                out.push(Finding { metric: format!("disk_used_percent:{mount}"), raise });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use mttrly_proto::agent::v1::Filesystem;
    use proptest::prelude::*;

    use super::*;

    fn sample(cpu: f64, disks: &[(&str, u64)]) -> HostMetrics {
        HostMetrics {
            cpu_percent: cpu,
            memory_total_bytes: 1000,
            memory_used_bytes: 400,
            load_1: 0.5,
            filesystems: disks
                .iter()
                .map(|(mount, used)| Filesystem {
                    mount_point: (*mount).to_owned(),
                    fs_type: "ext4".to_owned(),
                    total_bytes: 100,
                    used_bytes: *used,
                })
                .collect(),
            ..HostMetrics::default()
        }
    }

    #[test]
    fn a_cpu_step_raises_one_event_naming_both_detectors() {
        let cfg = DetectorConfig { warmup: 8, persist: 2, ..DetectorConfig::default() };
        let mut bank = Bank::new(cfg);
        let mut out = Vec::new();
        for i in 0..30 {
            bank.observe(&sample(20.0 + f64::from(i % 3), &[("/", 40)]), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        for _ in 0..6 {
            bank.observe(&sample(95.0, &[("/", 40)]), &mut out);
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].metric, "cpu_percent");
        let wire = out[0].to_wire(5);
        assert_eq!(wire.detectors, ["ewma", "mad"]);
        assert_eq!((wire.direction.as_str(), wire.intervals, wire.detected_at_unix_ms), ("up", 2, 5));
    }

    #[test]
    fn a_filesystem_filling_up_is_named_by_its_mount_point() {
        let cfg = DetectorConfig { warmup: 8, persist: 2, ..DetectorConfig::default() };
        let mut bank = Bank::new(cfg);
        let mut out = Vec::new();
        for _ in 0..20 {
            bank.observe(&sample(10.0, &[("/", 40), ("/var", 30)]), &mut out);
        }
        for _ in 0..3 {
            bank.observe(&sample(10.0, &[("/", 40), ("/var", 70)]), &mut out);
        }
        assert_eq!(out.iter().map(|f| f.metric.as_str()).collect::<Vec<_>>(), ["disk_used_percent:/var"]);
    }

    #[test]
    fn disabled_detectors_judge_nothing() {
        let mut bank = Bank::new(DetectorConfig { enabled: false, ..DetectorConfig::default() });
        let mut out = Vec::new();
        for i in 0..100 {
            bank.observe(&sample(if i > 50 { 99.0 } else { 1.0 }, &[]), &mut out);
        }
        assert!(out.is_empty());
    }

    #[test]
    fn the_owners_policy_turns_the_detectors_off_or_asks_for_longer_agreement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "proactive_detectors = false\nproactive_persist_intervals = 5\n").unwrap();
        let policy = crate::policy::LocalPolicy::load(&path).unwrap();
        let options = crate::RunOptions::new(dir.path().to_owned(), policy);
        assert!(!options.detectors.enabled);
        assert_eq!(options.detectors.persist, 5);
        let defaults = crate::RunOptions::new(dir.path().to_owned(), crate::policy::LocalPolicy::default());
        assert_eq!(defaults.detectors, DetectorConfig::default());
        for bad in ["proactive_persist_intervals = 0\n", "proactive_persist_intervals = 61\n"] {
            std::fs::write(&path, bad).unwrap();
            let err = crate::policy::LocalPolicy::load(&path).unwrap_err().to_string();
            assert!(err.contains("proactive_persist_intervals must be between 1 and 60"), "{err}");
        }
    }

    proptest! {
        /// Whatever the host reports (any values, NaN and infinities included, any number of
        /// filesystems with any names), the bank never holds more than its fixed series plus
        /// [`MAX_FILESYSTEMS`], each series stays its fixed size, and judging never panics.
        #[test]
        fn memory_stays_bounded(
            samples in prop::collection::vec(
                (prop::num::f64::ANY, prop::collection::vec(("[a-z/]{1,12}", any::<u64>(), any::<u64>()), 0..48)),
                1..40,
            )
        ) {
            let mut bank = Bank::new(DetectorConfig { warmup: 2, persist: 1, ..DetectorConfig::default() });
            let mut out = Vec::new();
            let reserved = bank.disks.capacity();
            for (cpu, disks) in samples {
                let m = HostMetrics {
                    cpu_percent: cpu,
                    load_1: cpu,
                    filesystems: disks
                        .into_iter()
                        .map(|(mount_point, total_bytes, used_bytes)| Filesystem { mount_point, fs_type: "ext4".into(), total_bytes, used_bytes })
                        .collect(),
                    ..HostMetrics::default()
                };
                bank.observe(&m, &mut out);
                prop_assert!(bank.series() <= FIXED.len() + MAX_FILESYSTEMS);
                prop_assert_eq!(bank.disks.capacity(), reserved, "the table never grows");
            }
            prop_assert!(out.iter().all(|f| f.raise.value.is_finite() && f.raise.ewma_score.is_finite() && f.raise.mad_score.is_finite()));
            prop_assert!(std::mem::size_of::<Series>() <= 320);
        }
    }
}
