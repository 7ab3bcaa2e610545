//! The agent's installation: health (findings against the root-owned install receipt), repair
//! plans bound to a plan hash, and bootstrap recovery.

use serde::{Deserialize, Serialize};

use super::common::{ConnectionStatus, Reason, Severity};
use crate::bounded::bounded_text;
use crate::ids::ServerId;

/// Arguments of `mttrly_get_install_health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetInstallHealthInput {
    /// The server.
    pub server_id: ServerId,
}

/// The overall state of an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstallState {
    /// Everything matches what the installer laid down.
    Healthy,
    /// Something changed since install (unit file, permissions, binary).
    Drifted,
    /// The agent cannot run as installed (a critical finding).
    Broken,
    /// The agent could not be asked (offline) or was not installed by `mttrly-agent install`.
    Unknown,
}

/// A way to repair an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RepairStrategy {
    /// Fix exactly the findings named (every repairable finding when none are named).
    #[serde(alias = "issue_driven")]
    Issue,
    /// Bring every installer-owned file back to the receipt's state and restart the service.
    Converge,
    /// Rewrite the units and the root repair binary whatever their state, then restart.
    #[serde(alias = "reprovision_wrapper")]
    Reprovision,
    /// Remove everything the receipt lists (the server stays registered, offline).
    Uninstall,
}

impl RepairStrategy {
    /// Every strategy.
    pub const ALL: [Self; 4] = [Self::Issue, Self::Converge, Self::Reprovision, Self::Uninstall];

    /// The name serde writes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Converge => "converge",
            Self::Reprovision => "reprovision",
            Self::Uninstall => "uninstall",
        }
    }
}

/// How a fact compares with what the receipt expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    /// As expected.
    Ok,
    /// Present but different.
    Drift,
    /// Absent.
    Missing,
}

/// One fact of the installation compared with the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    /// A stable code (`unit_file`, `credentials_mode`, `binary_sha256`, `clock_skew`, ...).
    pub code: String,
    /// What was checked (a path, or a fact such as `heartbeat`).
    pub subject: String,
    /// What the receipt (or central) expects.
    pub expected: String,
    /// What is there.
    pub actual: String,
    /// How they compare.
    pub status: FindingStatus,
    /// How serious a difference is (`info` for an `ok` finding).
    pub severity: Severity,
    /// The strategies whose plan repairs it; empty when no repair on the host can (a missing
    /// credentials file needs `mttrly_bootstrap_recover`; the owner fixes their own policy file).
    pub repaired_by: Vec<RepairStrategy>,
}

/// What one change of a plan does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Write a file with the expected content (`detail`: its SHA-256).
    WriteFile,
    /// Copy the installed binary from a verified copy (`detail`: source and SHA-256).
    CopyBinary,
    /// Set a mode and owner (`detail`: `0600 uid:gid`).
    SetMode,
    /// Point `versions/current` at a version.
    Relink,
    /// Remove a file or directory.
    Remove,
    /// `systemctl daemon-reload`.
    DaemonReload,
    /// Restart a unit.
    Restart,
    /// Stop and disable the units.
    Disable,
}

/// One change of a repair plan: what the approver reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlannedChange {
    /// What it does.
    pub kind: ChangeKind,
    /// The path or unit it acts on.
    pub target: String,
    /// The exact result (content hash, mode and owner, link target).
    pub detail: String,
}

/// A repair plan: every change one strategy would make now, and the hash binding an approval to
/// exactly these changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RepairPlan {
    /// The strategy.
    pub strategy: RepairStrategy,
    /// The findings it repairs (codes).
    pub repairs: Vec<String>,
    /// Every change, in the order it is made.
    pub changes: Vec<PlannedChange>,
    /// SHA-256 (hex) of the strategy and the changes ([`plan_hash`]): the root repair oneshot
    /// recomputes the plan from the receipt and refuses unless its hash is this one.
    pub plan_hash: String,
}

/// The plan hash of `strategy` making `changes`: SHA-256 of their canonical JSON.
pub fn plan_hash(strategy: RepairStrategy, changes: &[PlannedChange]) -> String {
    use sha2::Digest as _;
    let canonical = serde_json::to_vec(&(strategy, changes)).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(canonical))
}

impl RepairPlan {
    /// A plan with its hash.
    pub fn new(strategy: RepairStrategy, repairs: Vec<String>, changes: Vec<PlannedChange>) -> Self {
        let plan_hash = plan_hash(strategy, &changes);
        Self { strategy, repairs, changes, plan_hash }
    }
}

/// The `install.health` capability's parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallHealthParams {
    /// The findings the `issue` plan is limited to (empty: every repairable one).
    #[serde(default)]
    pub issue_codes: Vec<String>,
}

/// What the agent reports about its installation (the `install.health` capability's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallReport {
    /// Whether a receipt was found (installed by `mttrly-agent install`).
    pub installed: bool,
    /// The version the receipt records.
    pub receipt_version: Option<String>,
    /// The version `versions/current` names.
    pub current_version: Option<String>,
    /// Findings on the host.
    pub findings: Vec<Finding>,
    /// One plan per strategy (none when nothing was installed).
    pub plans: Vec<RepairPlan>,
    /// The agent's clock when it answered (central measures the skew against its own).
    pub checked_at: jiff::Timestamp,
}

/// The agent's installation health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallHealth {
    /// The server.
    pub server_id: ServerId,
    /// The overall state.
    pub state: InstallState,
    /// The running agent's version.
    pub agent_version: Option<String>,
    /// Whether the agent is connected.
    pub connection: ConnectionStatus,
    /// The latest heartbeat central received.
    pub last_heartbeat_at: Option<jiff::Timestamp>,
    /// The agent's clock minus central's, in milliseconds, measured on this call (the agent's
    /// stamp as its answer left against central's clock on arrival); absent when the agent could
    /// not be asked.
    pub clock_skew_ms: Option<i64>,
    /// Findings: the host's (against the receipt) and central's (connectivity, clock skew).
    pub findings: Vec<Finding>,
    /// One repair plan per strategy; pass its `plan_hash` to `mttrly_repair_install`.
    pub plans: Vec<RepairPlan>,
    /// When the agent checked.
    pub checked_at: Option<jiff::Timestamp>,
}

bounded_text!(
    /// A finding code from `mttrly_get_install_health` (1 to 64 characters).
    FindingCode, min 1, max 64
);

bounded_text!(
    /// A plan hash from `mttrly_get_install_health` (64 hex characters).
    PlanHash, min 64, max 64
);

/// Arguments of `mttrly_repair_install`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairInstallInput {
    /// The server.
    pub server_id: ServerId,
    /// How to repair (`issue`, `converge`, `reprovision`, `uninstall`).
    pub strategy: RepairStrategy,
    /// For `issue`: the findings to fix (codes from `mttrly_get_install_health`); every repairable
    /// finding when empty. Ignored by the other strategies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finding_codes: Vec<FindingCode>,
    /// The `plan_hash` of the plan you read in `mttrly_get_install_health`, when you want the
    /// request refused if the host changed since (recommended). The approver always sees the
    /// plan computed now, and the host performs it only while its hash still matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<PlanHash>,
    /// Why, shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// What the host did for an approved repair (the `install.repair` capability's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RepairOutcome {
    /// The strategy performed.
    pub strategy: RepairStrategy,
    /// The plan hash performed.
    pub plan_hash: String,
    /// The changes made, in order.
    pub changed: Vec<PlannedChange>,
    /// An uninstall: handed to the root oneshot, which removes the agent itself, so nothing is
    /// left to report back (the server goes offline).
    pub handed_off: bool,
}

bounded_text!(
    /// Refused if given: an assistant never chooses or sees an install token (16 to 256
    /// characters).
    InstallToken, min 16, max 256
);

/// Arguments of `mttrly_bootstrap_recover`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootstrapRecoverInput {
    /// The server to recover (it keeps its id and history).
    pub server_id: ServerId,
    /// Not accepted: kept in the schema only so a client that sends it gets a clear refusal. On
    /// approval central issues a fresh single-use install token itself and shows the one-liner
    /// once to the approver; an assistant never chooses or sees an install token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_token: Option<InstallToken>,
    /// Why, shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}
