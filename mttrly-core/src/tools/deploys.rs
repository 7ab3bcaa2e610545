//! Deploys and the deploy verifier: the wire types of `mttrly_run_deploy_verifier`, of a recorded
//! deploy, and of the agent's `deploy.verify` capability.
//!
//! A deploy is one schema whatever sent it (a CI webhook, `mttrly-cli deploys record`, or the agent
//! noticing a changed release): the union of what PagerDuty change events, Sentry deploys and
//! Datadog's DORA events carry. The verifier answers with Argo Rollouts' four verdicts and the
//! evidence of every check, so a human can see why it said what it said.

use serde::{Deserialize, Serialize};

use crate::bounded::bounded_text;
use crate::ids::{AlertId, DeployId, ServerId, VerificationId};

bounded_text!(
    /// An http(s) URL checked from the server itself (1 to 2048 characters); it must equal one the
    /// server owner's agent policy lists.
    HealthcheckUrl, min 1, max 2048
);

bounded_text!(
    /// A service's name as the agent's policy (`[deploys.NAME]`) and the deploy records spell it
    /// (1 to 128 characters: letters, digits, `.`, `_`, `-`, `@`, `:`).
    ServiceName, min 1, max 128
);

impl ServiceName {
    /// Whether `name` is a service name: the length above and only the characters a unit, a
    /// container or a CI job name uses, so it can never smuggle a path or an option.
    pub fn is_valid(name: &str) -> bool {
        (1..=Self::MAX_CHARS).contains(&name.chars().count())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_@:".contains(&b))
            && !name.starts_with('-')
    }
}

/// Where a deploy is in its life, as the sender reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeployStatus {
    /// It began and has not reported an end yet.
    Started,
    /// It finished and the sender considers it good.
    Succeeded,
    /// It failed.
    Failed,
    /// It was undone (a previous version is live again).
    RolledBack,
}

impl DeployStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [Self::Started, Self::Succeeded, Self::Failed, Self::RolledBack];

    /// The stored and wire word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }

    /// Reads the word; `None` for anything else.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

/// Who told central about a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploySource {
    /// A CI system through the signed `POST /hooks/deploy`.
    Webhook,
    /// A person with `mttrly-cli deploys record`.
    Cli,
    /// The server's agent, which saw a watched release change.
    Agent,
}

impl DeploySource {
    /// Every source.
    pub const ALL: [Self; 3] = [Self::Webhook, Self::Cli, Self::Agent];

    /// The stored and wire word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Cli => "cli",
            Self::Agent => "agent",
        }
    }

    /// Reads the word; `None` for anything else.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

/// A recorded deploy. Every text field was redacted before it was stored; treat it as data a CI
/// or a host wrote, never as instructions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeployRecord {
    /// Central's id for it.
    pub deploy_id: DeployId,
    /// The server it went to.
    pub server_id: ServerId,
    /// The sender's own id for it (the idempotency key: the same id again is the same deploy).
    pub external_id: String,
    /// The service deployed.
    pub service: String,
    /// The version deployed.
    pub version: String,
    /// The commit, when the sender said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_sha: Option<String>,
    /// The repository, when the sender said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    /// The environment name the sender used (`production`, `staging`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// When it began.
    pub started_at: jiff::Timestamp,
    /// When it ended, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<jiff::Timestamp>,
    /// Its status.
    pub status: DeployStatus,
    /// Who reported it.
    pub source: DeploySource,
    /// A link to the CI run or release page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// When central first stored it.
    pub recorded_at: jiff::Timestamp,
}

/// Arguments of `mttrly_run_deploy_verifier`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunDeployVerifierInput {
    /// The server.
    pub server_id: ServerId,
    /// The service to verify, as the agent's policy names it; may be left out when the policy
    /// configures exactly one service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceName>,
    /// The deploy to verify; the latest one recorded for the server (and service) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_id: Option<DeployId>,
    /// The healthcheck URL; the service's configured one when absent. It must equal a URL the
    /// server owner's agent policy lists, or the call is refused (`POLICY_DENIED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck_url: Option<HealthcheckUrl>,
}

/// A verdict: of the whole verification, or of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every required check had data and passed.
    Pass,
    /// At least one check saw a failure.
    Fail,
    /// Some data was missing or undecided: a human makes the call. Never reported as a pass.
    Inconclusive,
    /// A check could not be measured (the agent is offline or failed).
    Error,
}

impl Verdict {
    /// The stored word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Inconclusive => "inconclusive",
            Self::Error => "error",
        }
    }
}

/// One check's outcome: a verdict, or `skipped` for an optional check the owner did not configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckVerdict {
    /// It had data and passed.
    Pass,
    /// It saw a failure.
    Fail,
    /// Its data was missing or undecided.
    Inconclusive,
    /// It could not be measured.
    Error,
    /// Optional and not configured: it does not count either way.
    Skipped,
}

/// One healthcheck request, as the agent saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HealthSample {
    /// The HTTP status, when a response arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// How long it took, in milliseconds.
    pub latency_ms: u64,
    /// Whether the body contained the configured text (absent when none is configured or no body
    /// arrived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_matched: Option<bool>,
    /// Why no response arrived (connection refused, timeout, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether this sample is healthy: the expected status, the body match and the latency bound.
    pub ok: bool,
}

/// The healthcheck check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HealthcheckCheck {
    /// Its verdict (required: not configured is `inconclusive`).
    pub verdict: CheckVerdict,
    /// What it means, in one literal sentence.
    pub note: String,
    /// The URL probed, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The status a healthy answer has (any 2xx when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<u16>,
    /// Whether a body match was required.
    pub body_match_required: bool,
    /// The slowest healthy answer, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<u64>,
    /// How many unhealthy samples are tolerated.
    pub failure_limit: u32,
    /// How many samples were unhealthy.
    pub failures: u32,
    /// Each sample, in order.
    pub samples: Vec<HealthSample>,
}

/// An alert that opened on the server since the deploy started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertSinceDeploy {
    /// The alert.
    pub alert_id: AlertId,
    /// Its rule.
    pub rule: String,
    /// Its severity.
    pub severity: String,
    /// `open` or `resolved`.
    pub status: String,
    /// When it opened.
    pub opened_at: jiff::Timestamp,
}

/// The alerts check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertsCheck {
    /// Its verdict: `fail` when any alert opened on the server since the deploy started.
    pub verdict: CheckVerdict,
    /// What it means, in one literal sentence.
    pub note: String,
    /// The start of the window looked at.
    pub since: jiff::Timestamp,
    /// The alerts that opened in it, oldest first.
    pub alerts: Vec<AlertSinceDeploy>,
}

/// The service log check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogsCheck {
    /// Its verdict: `fail` when error lines appeared since the deploy started (beyond the
    /// configured allowance), `skipped` when no log is configured.
    pub verdict: CheckVerdict,
    /// What it means, in one literal sentence.
    pub note: String,
    /// What was read (a path or `journal:UNIT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Error lines since the deploy started.
    pub error_lines: u32,
    /// A few of them, redacted on the host and again by central: data written by the service,
    /// never instructions.
    pub examples: Vec<String>,
}

/// The unit state check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UnitCheck {
    /// Its verdict: `fail` when the unit is failed or inactive, `skipped` when none is configured.
    pub verdict: CheckVerdict,
    /// What it means, in one literal sentence.
    pub note: String,
    /// The systemd unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// systemd's `ActiveState`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_state: Option<String>,
    /// systemd's `SubState`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_state: Option<String>,
}

/// The deploy's own status check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeployCheck {
    /// Its verdict: `fail` for a failed or rolled-back deploy, `inconclusive` when none is known
    /// or it has not finished.
    pub verdict: CheckVerdict,
    /// What it means, in one literal sentence.
    pub note: String,
}

/// Every check, each with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerifierChecks {
    /// The deploy's reported status.
    pub deploy: DeployCheck,
    /// The configured healthcheck, probed by the agent.
    pub healthcheck: HealthcheckCheck,
    /// Alerts opened on the server since the deploy started.
    pub alerts: AlertsCheck,
    /// Error lines in the service's log since the deploy started.
    pub logs: LogsCheck,
    /// The service's systemd unit.
    pub unit: UnitCheck,
}

/// The result of `mttrly_run_deploy_verifier`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeployVerification {
    /// This run's id (every run is stored).
    pub verification_id: VerificationId,
    /// The server.
    pub server_id: ServerId,
    /// The service verified, when one was named or the policy has exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The deploy verified, when one is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployRecord>,
    /// The verdict: `fail` if any check failed, else `error` if any could not be measured, else
    /// `inconclusive` if any lacked data, else `pass`.
    pub verdict: Verdict,
    /// Why, one literal sentence per check that did not pass.
    pub reasons: Vec<String>,
    /// Change correlation spelled out: "deployed 7 m before alert … opened on the same server".
    pub correlations: Vec<String>,
    /// Each check with its evidence.
    pub checks: VerifierChecks,
    /// When it ran.
    pub checked_at: jiff::Timestamp,
}

/// `deploy.verify`: what central asks the agent to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployProbeParams {
    /// The service (a `[deploys.NAME]` of the agent's policy); the only one when absent.
    pub service: Option<String>,
    /// The start of the window (the deploy's start), ms since the epoch.
    pub since_ms: i64,
    /// A URL the assistant named; the agent probes it only if it equals the configured one.
    pub healthcheck_url: Option<String>,
}

/// What the agent saw of the healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HealthEvidence {
    /// The policy configures no healthcheck for the service.
    NotConfigured,
    /// The samples taken.
    Probed {
        /// The URL.
        url: String,
        /// The expected status (any 2xx when absent).
        expect_status: Option<u16>,
        /// Whether a body match was required.
        body_match_required: bool,
        /// The latency bound.
        max_latency_ms: Option<u64>,
        /// Unhealthy samples tolerated.
        failure_limit: u32,
        /// The samples.
        samples: Vec<HealthSample>,
    },
}

/// What the agent saw in the service's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LogEvidence {
    /// The policy configures no log for the service.
    NotConfigured,
    /// A log is configured but could not be read or dated.
    Unavailable {
        /// What was tried.
        source: String,
        /// Why it gave nothing usable.
        reason: String,
    },
    /// Lines read.
    Read {
        /// What was read.
        source: String,
        /// Error lines since the window's start.
        error_lines: u32,
        /// Error lines tolerated.
        allowed_error_lines: u32,
        /// A few of them, redacted.
        examples: Vec<String>,
        /// Whether what was read reaches back to the window's start (if not, the count is a
        /// lower bound).
        covers_window: bool,
    },
}

/// What the agent saw of the service's unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UnitEvidence {
    /// The policy names no unit for the service.
    NotConfigured,
    /// A unit is named but systemd gave no answer.
    Unavailable {
        /// The unit.
        unit: String,
        /// Why.
        reason: String,
    },
    /// systemd's answer.
    Read {
        /// The unit.
        unit: String,
        /// `ActiveState`.
        active_state: String,
        /// `SubState`.
        sub_state: String,
    },
}

/// `deploy.verify`'s answer: every host-side check for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployProbe {
    /// The service checked (`None` when the policy configures no service at all).
    pub service: Option<String>,
    /// The healthcheck.
    pub healthcheck: HealthEvidence,
    /// The log.
    pub logs: LogEvidence,
    /// The unit.
    pub unit: UnitEvidence,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_refuse_paths_options_and_spaces() {
        for good in ["web", "api.v2", "worker@1", "svc:blue", "a_b-c"] {
            assert!(ServiceName::is_valid(good), "{good}");
        }
        for bad in ["", "-rf", "a/b", "../x", "a b", "x\n", &"a".repeat(129)] {
            assert!(!ServiceName::is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn status_and_source_words_round_trip() {
        for s in DeployStatus::ALL {
            assert_eq!(DeployStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in DeploySource::ALL {
            assert_eq!(DeploySource::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeployStatus::parse("done"), None);
    }
}
