//! `deploy.verify`: the verifier's host-side checks for one service: the configured healthcheck
//! (N samples: status, latency, body match), error lines in its log since the deploy started
//! (read through the same file rules and redaction as `mttrly_read_file`, or its journal), and its
//! systemd unit's state.
//!
//! SSRF: only the URL the owner's policy configures for the service is ever requested. A URL
//! central passes (the assistant's) must equal it byte for byte, or the task is refused with
//! `POLICY_DENIED`; redirects are not followed and no proxy is used.

use std::time::{Duration, Instant};

use mttrly_core::MttrlyError;
use mttrly_core::capability::FileReadParams;
use mttrly_core::deploys::{HealthcheckPolicy, ServiceDeploys, scan_log};
use mttrly_core::tools::deploys::{
    DeployProbe, DeployProbeParams, HealthEvidence, HealthSample, LogEvidence, UnitEvidence,
};
use mttrly_core::tools::files::ReadTarget;
use tokio::sync::mpsc;

use crate::exec::{self, Limits, Program};
use crate::policy::LocalPolicy;
use crate::task::denied;

/// Sampling stops after this long, whatever the policy's count (central waits 90 s in all).
const SAMPLING_BUDGET: Duration = Duration::from_secs(60);
/// The most body bytes read per sample.
const MAX_BODY: u64 = 64 * 1024;
/// Log lines read from the end of the file.
const LOG_LINES: u32 = 2000;
/// A systemd query's deadline.
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(10);

/// The service central asked about: named (must be in the policy, or it is reported as not
/// configured), or the only one configured. Several configured and none named is the caller's
/// error, listing them.
fn pick<'a>(
    policy: &'a LocalPolicy,
    named: Option<&str>,
) -> Result<Option<(String, Option<&'a ServiceDeploys>)>, MttrlyError> {
    match named {
        Some(name) => Ok(Some((name.to_owned(), policy.deploys.get(name)))),
        None => match policy.deploys.len() {
            0 => Ok(None),
            1 => Ok(policy.deploys.iter().next().map(|(n, s)| (n.clone(), Some(s)))),
            _ => Err(MttrlyError::new(
                mttrly_core::ErrorCode::ValidationError,
                format!(
                    "this server's policy configures several services ({}); name one in `service`",
                    policy.deploys.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
            .with_detail("field", "service")),
        },
    }
}

/// Runs every check for the service.
pub async fn verify(policy: &LocalPolicy, p: DeployProbeParams) -> Result<DeployProbe, MttrlyError> {
    let Some((service, config)) = pick(policy, p.service.as_deref())? else {
        if p.healthcheck_url.is_some() {
            return Err(denied(
                "this server's policy configures no service healthcheck; it probes only URLs its owner lists",
            ));
        }
        return Ok(DeployProbe {
            service: None,
            healthcheck: HealthEvidence::NotConfigured,
            logs: LogEvidence::NotConfigured,
            unit: UnitEvidence::NotConfigured,
        });
    };
    let configured = config.and_then(|c| c.healthcheck.as_ref());
    if let Some(asked) = &p.healthcheck_url
        && configured.is_none_or(|c| &c.url != asked)
    {
        return Err(denied(format!(
            "the healthcheck URL is not the one this server's policy configures for `{service}`; the agent probes \
             only URLs its owner lists ([deploys.{service}.healthcheck] url)"
        ))
        .with_detail("field", "healthcheck_url"));
    }
    let Some(config) = config else {
        return Ok(DeployProbe {
            service: Some(service),
            healthcheck: HealthEvidence::NotConfigured,
            logs: LogEvidence::NotConfigured,
            unit: UnitEvidence::NotConfigured,
        });
    };
    let healthcheck = match configured {
        Some(check) => healthcheck(check.clone()).await,
        None => HealthEvidence::NotConfigured,
    };
    let (logs, unit) = tokio::join!(logs(policy, config, p.since_ms), unit_state(policy, config.unit.as_deref()));
    Ok(DeployProbe { service: Some(service), healthcheck, logs, unit })
}

/// Takes the configured samples on the blocking pool (ureq is synchronous).
async fn healthcheck(check: HealthcheckPolicy) -> HealthEvidence {
    let taken = check.clone();
    let samples = tokio::task::spawn_blocking(move || sample_all(&taken)).await.unwrap_or_default();
    HealthEvidence::Probed {
        body_match_required: check.body_contains.is_some(),
        url: check.url,
        expect_status: check.expect_status,
        max_latency_ms: check.max_latency_ms,
        failure_limit: check.failure_limit,
        samples,
    }
}

fn sample_all(check: &HealthcheckPolicy) -> Vec<HealthSample> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(check.timeout_ms)))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent("mttrly-agent deploy verifier")
        .build()
        .into();
    let started = Instant::now();
    let mut samples = Vec::new();
    for i in 0..check.samples {
        if i > 0 {
            if started.elapsed() >= SAMPLING_BUDGET {
                break;
            }
            std::thread::sleep(Duration::from_millis(check.interval_ms));
        }
        samples.push(sample(&agent, check));
    }
    samples
}

fn sample(agent: &ureq::Agent, check: &HealthcheckPolicy) -> HealthSample {
    let began = Instant::now();
    let latency = |began: Instant| u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    match agent.get(&check.url).call() {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let body = response.body_mut().with_config().limit(MAX_BODY).read_to_vec();
            let latency_ms = latency(began);
            let body_matched = check
                .body_contains
                .as_ref()
                .map(|needle| body.as_ref().is_ok_and(|b| String::from_utf8_lossy(b).contains(needle.as_str())));
            let status_ok = check.expect_status.map_or((200..300).contains(&status), |want| want == status);
            let fast = check.max_latency_ms.is_none_or(|max| latency_ms <= max);
            HealthSample {
                status_code: Some(status),
                latency_ms,
                body_matched,
                error: None,
                ok: status_ok && fast && body_matched.unwrap_or(true),
            }
        }
        Err(e) => HealthSample {
            status_code: None,
            latency_ms: latency(began),
            body_matched: None,
            error: Some(mttrly_core::redactor::redact(&e.to_string()).text.chars().take(300).collect()),
            ok: false,
        },
    }
}

/// Error lines since `since_ms`: the log file through the file rules, or the unit's journal.
async fn logs(policy: &LocalPolicy, config: &ServiceDeploys, since_ms: i64) -> LogEvidence {
    if config.journal {
        let Some(unit) = config.unit.as_deref() else { return LogEvidence::NotConfigured };
        return journal(policy, unit, since_ms, config.allowed_error_lines).await;
    }
    let Some(path) = config.log_file.clone() else { return LogEvidence::NotConfigured };
    let target = match mttrly_core::tools::common::ServerPath::new(path.clone()) {
        Ok(p) => ReadTarget::File { path: p },
        Err(e) => return LogEvidence::Unavailable { source: path, reason: e },
    };
    match crate::files::read(policy.files(), FileReadParams { target, lines: LOG_LINES }).await {
        Err(e) => LogEvidence::Unavailable { source: path, reason: e.message().to_owned() },
        Ok(tail) => {
            let scan = scan_log(&tail.content, since_ms, &config.patterns());
            if scan.dated {
                LogEvidence::Read {
                    source: path,
                    error_lines: scan.error_lines,
                    allowed_error_lines: config.allowed_error_lines,
                    examples: scan.examples,
                    covers_window: scan.covers_window || !tail.truncated,
                }
            } else if tail.line_count == 0 {
                LogEvidence::Read {
                    source: path,
                    error_lines: 0,
                    allowed_error_lines: config.allowed_error_lines,
                    examples: Vec::new(),
                    covers_window: true,
                }
            } else {
                LogEvidence::Unavailable {
                    source: path,
                    reason: "no line carries a timestamp the agent can read, so it cannot tell which came after the \
                             deploy"
                        .into(),
                }
            }
        }
    }
}

async fn run_argv(policy: &LocalPolicy, argv: Vec<String>, max_lines: usize) -> Result<String, String> {
    let (sink, _) = mpsc::channel(1);
    let limits = Limits { timeout: SYSTEMCTL_TIMEOUT, max_lines, ..Limits::default() };
    match exec::run(&Program::Argv(argv), limits, policy.run_as(), &sink).await {
        Ok(out) if out.exit_code == Some(0) => Ok(out.output),
        Ok(out) if out.timed_out => Err("timed out".into()),
        Ok(out) => Err(out.output.lines().next().unwrap_or("failed").chars().take(200).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("not installed on this host".into()),
        Err(e) => Err(e.to_string()),
    }
}

async fn journal(policy: &LocalPolicy, unit: &str, since_ms: i64, allowed: u32) -> LogEvidence {
    let source = format!("journal:{unit}");
    let argv = [
        "journalctl",
        "--no-pager",
        "--quiet",
        "--output=cat",
        "--priority=err",
        "--lines=1000",
        &format!("--since=@{}", since_ms.div_euclid(1000)),
        "--unit",
        unit,
    ]
    .map(str::to_owned)
    .to_vec();
    match run_argv(policy, argv, 1000).await {
        Err(reason) => LogEvidence::Unavailable { source, reason },
        Ok(output) => {
            // Every line is already `err` or worse: priority did the matching.
            let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
            LogEvidence::Read {
                source,
                error_lines: u32::try_from(lines.len()).unwrap_or(u32::MAX),
                allowed_error_lines: allowed,
                examples: lines.iter().take(5).map(|l| l.chars().take(300).collect()).collect(),
                covers_window: lines.len() < 1000,
            }
        }
    }
}

/// The unit's `ActiveState` and `SubState`, through `systemctl show` (the same read-only query
/// the diagnostics' systemd probe runs).
async fn unit_state(policy: &LocalPolicy, unit: Option<&str>) -> UnitEvidence {
    let Some(unit) = unit else { return UnitEvidence::NotConfigured };
    let argv = ["systemctl", "show", "-p", "ActiveState,SubState", "--", unit].map(str::to_owned).to_vec();
    match run_argv(policy, argv, 20).await {
        Err(reason) => UnitEvidence::Unavailable { unit: unit.to_owned(), reason },
        Ok(output) => {
            let value = |key: &str| {
                output.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('='))).map(str::to_owned)
            };
            match (value("ActiveState"), value("SubState")) {
                (Some(active), Some(sub)) if !active.is_empty() => {
                    UnitEvidence::Read { unit: unit.to_owned(), active_state: active, sub_state: sub }
                }
                _ => UnitEvidence::Unavailable { unit: unit.to_owned(), reason: "systemd reported no state".into() },
            }
        }
    }
}
