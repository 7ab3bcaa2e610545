//! Host metrics for heartbeats, from `sysinfo`.
//!
//! CPU usage is a difference between two samples, so the collector keeps its `System` between
//! heartbeats and each heartbeat reports usage since the previous one.

use std::collections::BTreeMap;

use mttrly_proto::agent::v1::{Filesystem, HostMetrics};
use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

use crate::AgentError;

/// Filesystem types that are not storage a human would call full.
const VIRTUAL_FS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// A filesystem's (total, used) bytes the way `df` counts them, so the percentage central derives
/// (used / total) is `df`'s `Use%`: used is what is allocated (`f_blocks - f_bfree`), and total is
/// used plus what an ordinary user can still write (`f_bavail`). Blocks reserved for root are
/// neither: counting them as used (sysinfo's total minus available) showed 70 % where `df` said
/// 19 %. `None` when the mount point cannot be queried.
fn usage_like_df(mount_point: &std::path::Path) -> Option<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(mount_point).ok()?;
    Some(df_usage(st.fragment_size(), st.blocks(), st.blocks_free(), st.blocks_available()))
}

/// `df`'s arithmetic on `statvfs` counts (in units of `fragment_size`): (used + available, used).
fn df_usage(fragment_size: u64, blocks: u64, free: u64, available: u64) -> (u64, u64) {
    let used = blocks.saturating_sub(free);
    let usable = used.saturating_add(available);
    (usable.saturating_mul(fragment_size), used.saturating_mul(fragment_size))
}

/// Samples host metrics.
pub struct MetricsCollector {
    system: System,
    disks: Option<Disks>,
}

impl MetricsCollector {
    /// A collector primed with a first CPU sample. Fails when the host's counters cannot be read
    /// at all (for example `/proc` is not mounted); filesystems that cannot be listed are left out.
    pub fn new() -> Result<Self, AgentError> {
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_usage())
                .with_memory(MemoryRefreshKind::everything()),
        )
        .map_err(AgentError::HostCounters)?;
        let disks =
            Disks::new_with_refreshed_list().map_err(|e| tracing::warn!(error = %e, "cannot list filesystems")).ok();
        Ok(Self { system, disks })
    }

    /// Takes a sample. Blocking (reads /proc); call it off the async runtime's workers.
    pub fn sample(&mut self) -> HostMetrics {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let load = System::load_average().unwrap_or_default();
        let mut filesystems: BTreeMap<String, Filesystem> = BTreeMap::new();
        let disks = match &mut self.disks {
            Some(disks) => {
                disks.refresh(true);
                &disks[..]
            }
            None => &[],
        };
        for disk in disks {
            let fs_type = disk.file_system().to_string_lossy().into_owned();
            if VIRTUAL_FS.contains(&fs_type.as_str()) || disk.total_space() == 0 {
                continue;
            }
            let (total_bytes, used_bytes) = usage_like_df(disk.mount_point())
                .unwrap_or_else(|| (disk.total_space(), disk.total_space().saturating_sub(disk.available_space())));
            let mount_point = disk.mount_point().to_string_lossy().into_owned();
            filesystems.entry(mount_point.clone()).or_insert(Filesystem {
                mount_point,
                fs_type,
                total_bytes,
                used_bytes,
            });
        }
        HostMetrics {
            // One decimal, like memory: more digits are noise, and people compare these to `top`.
            cpu_percent: (f64::from(self.system.global_cpu_usage()) * 10.0).round() / 10.0,
            memory_total_bytes: self.system.total_memory(),
            memory_used_bytes: self.system.used_memory(),
            swap_total_bytes: self.system.total_swap(),
            swap_used_bytes: self.system.used_swap(),
            load_1: load.one,
            load_5: load.five,
            load_15: load.fifteen,
            uptime_seconds: System::uptime().unwrap_or(0),
            filesystems: filesystems.into_values().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_reports_real_memory_and_filesystems() {
        let mut collector = MetricsCollector::new().unwrap();
        let m = collector.sample();
        assert!(m.memory_total_bytes > 0);
        assert!(m.memory_used_bytes <= m.memory_total_bytes);
        assert!((0.0..=100.0).contains(&m.cpu_percent));
        assert!(m.uptime_seconds > 0);
        assert!(!m.filesystems.is_empty(), "this machine has at least one real filesystem");
        assert!(m.filesystems.iter().all(|f| !VIRTUAL_FS.contains(&f.fs_type.as_str())));
        assert!(m.filesystems.iter().all(|f| f.used_bytes <= f.total_bytes));
        assert!((m.cpu_percent * 10.0 - (m.cpu_percent * 10.0).round()).abs() < 1e-9, "{}", m.cpu_percent);
    }

    #[test]
    fn root_reserved_blocks_are_not_counted_as_used() {
        // 1000 blocks, 300 allocated, 700 free of which 50 are reserved for root (650 available).
        let (total, used) = df_usage(4096, 1000, 700, 650);
        assert_eq!(used, 300 * 4096);
        assert_eq!(total, 950 * 4096);
        // df: Use% = ceil(300 / 950) = 32 %; sysinfo's arithmetic said (1000 - 650) / 1000 = 35 %.
        #[allow(clippy::cast_precision_loss)]
        let percent = used as f64 * 100.0 / total as f64;
        assert!((percent - 31.58).abs() < 0.01, "{percent}");
    }

    /// The same percentages `df` prints on this host, for every filesystem both list.
    #[test]
    fn percentages_match_df_on_this_host() {
        let Ok(out) = std::process::Command::new("df").args(["-P", "-B1"]).output() else {
            return; // no df here: the arithmetic test above still holds
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut collector = MetricsCollector::new().unwrap();
        let m = collector.sample();
        let mut compared = 0;
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(percent), Some(mount)) = (cols.get(4), cols.last()) else { continue };
            let Ok(df_percent) = percent.trim_end_matches('%').parse::<f64>() else { continue };
            let Some(fs) = m.filesystems.iter().find(|f| f.mount_point == *mount) else { continue };
            #[allow(clippy::cast_precision_loss)]
            let ours = fs.used_bytes as f64 * 100.0 / fs.total_bytes.max(1) as f64;
            // df rounds up to a whole percent; usage may move a little between the two samples.
            assert!((ours.ceil() - df_percent).abs() <= 1.0, "{mount}: ours {ours:.2} %, df {df_percent} %");
            compared += 1;
        }
        assert!(compared > 0 || m.filesystems.is_empty(), "no filesystem in common with df:\n{text}");
    }
}
