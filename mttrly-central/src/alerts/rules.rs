//! The alert rules, as data.

use std::time::Duration;

use mttrly_core::tools::common::Severity;

/// What a rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Used share of each real filesystem (one alert per mount point).
    DiskUsedPercent,
    /// Memory in use.
    MemoryPercent,
    /// CPU busy share.
    CpuPercent,
    /// The agent has been offline (value 100 while offline, 0 while online).
    AgentOffline,
}

/// A threshold rule: opens an alert when the measure stays at or above `threshold` for
/// `sustained`, and resolves it once the measure drops below `clear_below` (hysteresis, so a
/// value hovering at the threshold does not flap).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// Stable id, stored on the alert (`disk_usage`, `memory`, ...).
    pub id: &'static str,
    /// What it measures.
    pub measure: Measure,
    /// Opens at or above this.
    pub threshold: f64,
    /// For at least this long.
    pub sustained: Duration,
    /// Resolves below this.
    pub clear_below: f64,
    /// How serious.
    pub severity: Severity,
}

/// The built-in rules.
pub fn default_rules() -> Vec<AlertRule> {
    vec![
        AlertRule {
            id: "disk_usage",
            measure: Measure::DiskUsedPercent,
            threshold: 85.0,
            sustained: Duration::ZERO,
            clear_below: 80.0,
            severity: Severity::Warning,
        },
        AlertRule {
            id: "disk_usage_critical",
            measure: Measure::DiskUsedPercent,
            threshold: 95.0,
            sustained: Duration::ZERO,
            clear_below: 90.0,
            severity: Severity::Critical,
        },
        AlertRule {
            id: "memory",
            measure: Measure::MemoryPercent,
            threshold: 90.0,
            sustained: Duration::from_secs(60),
            clear_below: 85.0,
            severity: Severity::Warning,
        },
        AlertRule {
            id: "cpu_sustained",
            measure: Measure::CpuPercent,
            threshold: 90.0,
            sustained: Duration::from_secs(300),
            clear_below: 80.0,
            severity: Severity::Warning,
        },
        AlertRule {
            id: "agent_offline",
            measure: Measure::AgentOffline,
            threshold: 100.0,
            sustained: Duration::ZERO,
            clear_below: 50.0,
            severity: Severity::Critical,
        },
    ]
}
