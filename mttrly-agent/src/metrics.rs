//! Host metrics for heartbeats, from `sysinfo`.
//!
//! CPU usage is a difference between two samples, so the collector keeps its `System` between
//! heartbeats and each heartbeat reports usage since the previous one.

use std::collections::BTreeMap;

use mttrly_proto::agent::v1::{Filesystem, HostMetrics};
use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

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

/// Samples host metrics.
pub struct MetricsCollector {
    system: System,
    disks: Option<Disks>,
}

impl MetricsCollector {
    /// A collector primed with a first CPU sample. Fails when the host's counters cannot be read
    /// at all (for example `/proc` is not mounted); filesystems that cannot be listed are left out.
    pub fn new() -> Result<Self, String> {
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_usage())
                .with_memory(MemoryRefreshKind::everything()),
        )
        .map_err(|e| format!("cannot read host counters: {e}"))?;
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
            let mount_point = disk.mount_point().to_string_lossy().into_owned();
            filesystems.entry(mount_point.clone()).or_insert(Filesystem {
                mount_point,
                fs_type,
                total_bytes: disk.total_space(),
                used_bytes: disk.total_space().saturating_sub(disk.available_space()),
            });
        }
        HostMetrics {
            cpu_percent: f64::from(self.system.global_cpu_usage()),
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
    }
}
