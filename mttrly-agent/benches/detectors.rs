//! The proactive detectors' cost on the agent. Issue 15's bar: under 1 % of one core and under
//! 1 MB for 1,000 series.
//!
//! 1,000 series (each an EWMA/EWMV chart and a 32-sample MAD window, scored against a shared
//! scratch array, as the agent's bank does), fed noisy samples with occasional steps so both
//! detectors and the persistence logic work; then a whole host's bank judging full heartbeat
//! samples (CPU, memory, swap, load, 8 filesystems). CPU share is the time to judge one interval
//! of every series divided by the default heartbeat interval (10 s).
//!
//! cargo bench -p mttrly-agent --bench detectors -- [--intervals 2000]

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark's synthetic byte counts from positive values far below 2^52"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use mttrly_agent::detectors::mad::WINDOW;
use mttrly_agent::detectors::series::Series;
use mttrly_agent::detectors::{Bank, DetectorConfig};
use mttrly_proto::agent::v1::{Filesystem, HostMetrics};

const SERIES: usize = 1_000;
const HEARTBEAT: Duration = Duration::from_secs(10);

/// A deterministic noisy value: a small LCG, a level that steps up now and then.
fn value(state: &mut u64, interval: usize) -> f64 {
    *state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    let noise = (*state >> 40) as f64 / f64::from(1u32 << 24) * 4.0 - 2.0;
    let level = if (interval / 200) % 5 == 4 { 80.0 } else { 30.0 };
    level + noise
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let intervals: usize =
        args.windows(2).find(|w| w[0] == "--intervals").and_then(|w| w[1].parse().ok()).unwrap_or(2_000);
    let cfg = DetectorConfig::default();

    let mut series = vec![Series::default(); SERIES];
    let mut scratch = [0.0; WINDOW];
    let mut states: Vec<u64> = (0..SERIES as u64).collect();
    let mut raised = 0usize;
    let mut per_interval = Vec::with_capacity(intervals);
    for interval in 0..intervals {
        let start = Instant::now();
        for (s, state) in series.iter_mut().zip(states.iter_mut()) {
            let x = value(state, interval);
            if black_box(s.observe(x, cfg.percent_floor, &cfg, &mut scratch)).is_some() {
                raised += 1;
            }
        }
        per_interval.push(start.elapsed());
    }
    per_interval.sort();
    let median = per_interval[per_interval.len() / 2];
    let p99 = per_interval[(per_interval.len() * 99 / 100).min(per_interval.len() - 1)];
    let bytes = std::mem::size_of::<Series>() * SERIES + std::mem::size_of_val(&scratch);
    println!(
        "detectors: {SERIES} series × {intervals} intervals: one interval of all series median {median:?}, p99 {p99:?} \
         = {:.4} % of a core at a {}-s heartbeat (p99 {:.4} %); state {bytes} bytes ({:.1} KiB, {} B per series); {raised} events raised",
        median.as_secs_f64() / HEARTBEAT.as_secs_f64() * 100.0,
        HEARTBEAT.as_secs(),
        p99.as_secs_f64() / HEARTBEAT.as_secs_f64() * 100.0,
        bytes as f64 / 1024.0,
        std::mem::size_of::<Series>(),
    );

    // A whole host: the bank over full heartbeat samples (12 series).
    let mut bank = Bank::new(cfg);
    let mut out = Vec::new();
    let mut state = 7u64;
    let samples = 100_000;
    let metrics: Vec<HostMetrics> = (0..1_000)
        .map(|i| HostMetrics {
            cpu_percent: value(&mut state, i),
            memory_total_bytes: 8 << 30,
            memory_used_bytes: (value(&mut state, i) * 80_000_000.0) as u64,
            swap_total_bytes: 1 << 30,
            swap_used_bytes: 1 << 20,
            load_1: value(&mut state, i) / 20.0,
            filesystems: (0..8)
                .map(|d| Filesystem {
                    mount_point: format!("/mnt/{d}"),
                    fs_type: "ext4".into(),
                    total_bytes: 1 << 40,
                    used_bytes: (value(&mut state, i) * 1e10) as u64,
                })
                .collect(),
            ..HostMetrics::default()
        })
        .collect();
    let start = Instant::now();
    for i in 0..samples {
        bank.observe(black_box(&metrics[i % metrics.len()]), &mut out);
    }
    let each = start.elapsed() / u32::try_from(samples).unwrap();
    println!(
        "bank: {} series per host sample, {samples} samples: {each:?} per heartbeat sample ({:.6} % of a core at {}-s heartbeats); {} events",
        bank.series(),
        each.as_secs_f64() / HEARTBEAT.as_secs_f64() * 100.0,
        HEARTBEAT.as_secs(),
        out.len()
    );
}
