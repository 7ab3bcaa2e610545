//! Deploys and the deploy verifier.

use serde::{Deserialize, Serialize};

use crate::bounded::bounded_text;
use crate::ids::ServerId;

bounded_text!(
    /// An http(s) URL checked from the server itself (1 to 2048 characters).
    HealthcheckUrl, min 1, max 2048
);

/// Arguments of `mttrly_run_deploy_verifier`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunDeployVerifierInput {
    /// The server.
    pub server_id: ServerId,
    /// The URL to check; the server's configured healthcheck when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck_url: Option<HealthcheckUrl>,
}

/// The verifier's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifierVerdict {
    /// The healthcheck passed and nothing is on fire.
    Passed,
    /// The healthcheck failed or an incident is open.
    Failed,
    /// Not enough information.
    Inconclusive,
}

/// A healthcheck's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HealthcheckOutcome {
    /// The URL checked.
    pub url: String,
    /// The HTTP status, when a response arrived.
    pub status_code: Option<u16>,
    /// How long it took, in milliseconds.
    pub latency_ms: u64,
    /// Whether it counts as healthy.
    pub ok: bool,
}

/// The latest deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeployInfo {
    /// The deployed version or commit.
    pub version: String,
    /// When.
    pub deployed_at: jiff::Timestamp,
    /// Its status as reported (`succeeded`, `failed`, `rolled_back`).
    pub status: String,
}

/// The result of a deploy verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeployVerification {
    /// The server.
    pub server_id: ServerId,
    /// The verdict.
    pub verdict: VerifierVerdict,
    /// The healthcheck, when one ran.
    pub healthcheck: Option<HealthcheckOutcome>,
    /// How many alerts are open on the server.
    pub active_incidents: u32,
    /// The latest deploy, when one is known.
    pub latest_deploy: Option<DeployInfo>,
    /// When it ran.
    pub checked_at: jiff::Timestamp,
}
