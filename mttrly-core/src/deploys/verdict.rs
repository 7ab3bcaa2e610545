//! The verifier's verdict: a pure function of its facts (the deploy, the agent's probe or its
//! error, the alerts since the deploy started, the time), so the same facts always give the same
//! bytes.
//!
//! Rules, in Argo Rollouts' terms: a check with data that fails makes the run `fail`; otherwise a
//! check that could not be measured makes it `error`; otherwise a check without data makes it
//! `inconclusive`; only when every counted check passed is it `pass`. The healthcheck is required
//! (not configured is `inconclusive`, never skipped); the log and the unit are optional (`skipped`
//! when the owner configured none, `inconclusive` when configured but unreadable).

use crate::ids::{ServerId, VerificationId};
use crate::tools::deploys::{
    AlertSinceDeploy, AlertsCheck, CheckVerdict, DeployCheck, DeployProbe, DeployRecord, DeployStatus,
    DeployVerification, HealthEvidence, HealthcheckCheck, LogEvidence, LogsCheck, UnitCheck, UnitEvidence, Verdict,
    VerifierChecks,
};

/// A deploy that started at most this long before an alert opened is named as its likely cause.
pub const CORRELATION_WINDOW_MS: i64 = 60 * 60 * 1000;

/// Everything one verification is computed from.
#[derive(Debug, Clone)]
pub struct VerifierFacts {
    /// This run's id.
    pub verification_id: VerificationId,
    /// The server.
    pub server_id: ServerId,
    /// The service, when known.
    pub service: Option<String>,
    /// The deploy verified, when one is recorded.
    pub deploy: Option<DeployRecord>,
    /// The window's start, ms (the deploy's start, or a fixed look-back without one).
    pub since_ms: i64,
    /// The agent's answer, or why there is none (offline, failed).
    pub probe: Result<DeployProbe, String>,
    /// Alerts on the server opened at or after `since_ms`.
    pub alerts: Vec<AlertSinceDeploy>,
    /// When it ran.
    pub checked_at: jiff::Timestamp,
}

/// A gap in words: `45 s`, `7 m`, `2 h 5 m`.
pub fn format_gap(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} m", secs / 60),
        _ if secs % 3600 / 60 == 0 => format!("{} h", secs / 3600),
        _ => format!("{} h {} m", secs / 3600, secs % 3600 / 60),
    }
}

/// The literal reason a deploy is flagged before an alert, when it started within
/// [`CORRELATION_WINDOW_MS`] before the alert opened on the same server.
pub fn correlation(deploy: &DeployRecord, alert: &AlertSinceDeploy) -> Option<String> {
    let gap = alert.opened_at.as_millisecond() - deploy.started_at.as_millisecond();
    (0..=CORRELATION_WINDOW_MS).contains(&gap).then(|| {
        format!(
            "{} {} deployed {} before alert {} ({}) opened on the same server",
            deploy.service,
            deploy.version,
            format_gap(gap),
            alert.alert_id,
            alert.rule
        )
    })
}

fn deploy_check(deploy: Option<&DeployRecord>) -> DeployCheck {
    let Some(d) = deploy else {
        return DeployCheck {
            verdict: CheckVerdict::Inconclusive,
            note: "no deploy is recorded for this server and service; the window is the last 15 minutes".into(),
        };
    };
    let (verdict, note) = match d.status {
        DeployStatus::Succeeded => {
            (CheckVerdict::Pass, format!("deploy {} of {} reported succeeded", d.version, d.service))
        }
        DeployStatus::Started => {
            (CheckVerdict::Inconclusive, format!("deploy {} of {} has not reported an end yet", d.version, d.service))
        }
        DeployStatus::Failed => (CheckVerdict::Fail, format!("deploy {} of {} reported failed", d.version, d.service)),
        DeployStatus::RolledBack => {
            (CheckVerdict::Fail, format!("deploy {} of {} was rolled back", d.version, d.service))
        }
    };
    DeployCheck { verdict, note }
}

fn healthcheck(probe: &Result<DeployProbe, String>) -> HealthcheckCheck {
    let empty = |verdict, note: String| HealthcheckCheck {
        verdict,
        note,
        url: None,
        expect_status: None,
        body_match_required: false,
        max_latency_ms: None,
        failure_limit: 0,
        failures: 0,
        samples: Vec::new(),
    };
    match probe {
        Err(why) => empty(CheckVerdict::Error, format!("the agent could not run the healthcheck: {why}")),
        Ok(DeployProbe { healthcheck: HealthEvidence::NotConfigured, .. }) => empty(
            CheckVerdict::Inconclusive,
            "no healthcheck is configured for this service in the agent's policy ([deploys.SERVICE.healthcheck])"
                .into(),
        ),
        Ok(DeployProbe {
            healthcheck:
                HealthEvidence::Probed { url, expect_status, body_match_required, max_latency_ms, failure_limit, samples },
            ..
        }) => {
            let failures = u32::try_from(samples.iter().filter(|s| !s.ok).count()).unwrap_or(u32::MAX);
            let total = samples.len();
            let (verdict, note) = if samples.is_empty() {
                (CheckVerdict::Inconclusive, "the healthcheck took no samples".to_owned())
            } else if failures > *failure_limit {
                (
                    CheckVerdict::Fail,
                    format!("{failures} of {total} healthcheck samples were unhealthy (limit {failure_limit})"),
                )
            } else {
                (
                    CheckVerdict::Pass,
                    format!("{} of {total} healthcheck samples were healthy", total - failures as usize),
                )
            };
            HealthcheckCheck {
                verdict,
                note,
                url: Some(url.clone()),
                expect_status: *expect_status,
                body_match_required: *body_match_required,
                max_latency_ms: *max_latency_ms,
                failure_limit: *failure_limit,
                failures,
                samples: samples.clone(),
            }
        }
    }
}

fn alerts_check(since_ms: i64, alerts: &[AlertSinceDeploy]) -> AlertsCheck {
    let mut alerts = alerts.to_vec();
    alerts.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then_with(|| a.alert_id.cmp(&b.alert_id)));
    let since = jiff::Timestamp::from_millisecond(since_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let (verdict, note) = match alerts.len() {
        0 => (CheckVerdict::Pass, "no alert opened on the server since the deploy started".to_owned()),
        n => (CheckVerdict::Fail, format!("{n} alert(s) opened on the server since the deploy started")),
    };
    AlertsCheck { verdict, note, since, alerts }
}

fn logs_check(probe: &Result<DeployProbe, String>) -> LogsCheck {
    let none = |verdict, note: String, source: Option<String>| LogsCheck {
        verdict,
        note,
        source,
        error_lines: 0,
        examples: Vec::new(),
    };
    match probe {
        Err(why) => none(CheckVerdict::Error, format!("the agent could not read the log: {why}"), None),
        Ok(p) => match &p.logs {
            LogEvidence::NotConfigured => {
                none(CheckVerdict::Skipped, "no log is configured for this service".into(), None)
            }
            LogEvidence::Unavailable { source, reason } => none(
                CheckVerdict::Inconclusive,
                format!("the log gave no usable lines: {reason}"),
                Some(source.clone()),
            ),
            LogEvidence::Read { source, error_lines, allowed_error_lines, examples, covers_window } => {
                let bound = if *covers_window { "" } else { " (at least: the lines read start after the deploy)" };
                // Too many errors fails even on a partial read (the count is a lower bound); few
                // errors in a read that does not reach back to the deploy proves nothing: the
                // unread part of the window may hold any number.
                let (verdict, note) = if error_lines > allowed_error_lines {
                    (
                        CheckVerdict::Fail,
                        format!(
                            "{error_lines} error line(s) since the deploy started{bound}, {allowed_error_lines} allowed"
                        ),
                    )
                } else if !covers_window {
                    (
                        CheckVerdict::Inconclusive,
                        format!(
                            "the log lines read do not reach back to the deploy's start, so errors before them are \
                             unseen ({error_lines} error line(s) in what was read)"
                        ),
                    )
                } else {
                    (CheckVerdict::Pass, format!("{error_lines} error line(s) since the deploy started"))
                };
                LogsCheck {
                    verdict,
                    note,
                    source: Some(source.clone()),
                    error_lines: *error_lines,
                    examples: examples.clone(),
                }
            }
        },
    }
}

fn unit_check(probe: &Result<DeployProbe, String>) -> UnitCheck {
    let none = |verdict, note: String, unit: Option<String>| UnitCheck {
        verdict,
        note,
        unit,
        active_state: None,
        sub_state: None,
    };
    match probe {
        Err(why) => none(CheckVerdict::Error, format!("the agent could not read the unit: {why}"), None),
        Ok(p) => match &p.unit {
            UnitEvidence::NotConfigured => {
                none(CheckVerdict::Skipped, "no systemd unit is configured for this service".into(), None)
            }
            UnitEvidence::Unavailable { unit, reason } => none(
                CheckVerdict::Inconclusive,
                format!("systemd gave no state for {unit}: {reason}"),
                Some(unit.clone()),
            ),
            UnitEvidence::Read { unit, active_state, sub_state } => {
                let verdict = match active_state.as_str() {
                    "active" | "reloading" => CheckVerdict::Pass,
                    "failed" | "inactive" | "deactivating" => CheckVerdict::Fail,
                    _ => CheckVerdict::Inconclusive,
                };
                UnitCheck {
                    verdict,
                    note: format!("{unit} is {active_state} ({sub_state})"),
                    unit: Some(unit.clone()),
                    active_state: Some(active_state.clone()),
                    sub_state: Some(sub_state.clone()),
                }
            }
        },
    }
}

/// The verification of `facts`: every check, the overall verdict, the reasons and correlations.
pub fn evaluate(facts: VerifierFacts) -> DeployVerification {
    let checks = VerifierChecks {
        deploy: deploy_check(facts.deploy.as_ref()),
        healthcheck: healthcheck(&facts.probe),
        alerts: alerts_check(facts.since_ms, &facts.alerts),
        logs: logs_check(&facts.probe),
        unit: unit_check(&facts.probe),
    };
    let named = [
        ("deploy", checks.deploy.verdict, &checks.deploy.note),
        ("healthcheck", checks.healthcheck.verdict, &checks.healthcheck.note),
        ("alerts", checks.alerts.verdict, &checks.alerts.note),
        ("logs", checks.logs.verdict, &checks.logs.note),
        ("unit", checks.unit.verdict, &checks.unit.note),
    ];
    let has = |v: CheckVerdict| named.iter().any(|(_, verdict, _)| *verdict == v);
    let verdict = if has(CheckVerdict::Fail) {
        Verdict::Fail
    } else if has(CheckVerdict::Error) {
        Verdict::Error
    } else if has(CheckVerdict::Inconclusive) {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    };
    let reasons = named
        .iter()
        .filter(|(_, v, _)| matches!(v, CheckVerdict::Fail | CheckVerdict::Error | CheckVerdict::Inconclusive))
        .map(|(name, _, note)| format!("{name}: {note}"))
        .collect();
    let correlations = match &facts.deploy {
        Some(deploy) => checks.alerts.alerts.iter().filter_map(|a| correlation(deploy, a)).collect(),
        None => Vec::new(),
    };
    let service = facts
        .service
        .or_else(|| facts.probe.as_ref().ok().and_then(|p| p.service.clone()))
        .or_else(|| facts.deploy.as_ref().map(|d| d.service.clone()));
    DeployVerification {
        verification_id: facts.verification_id,
        server_id: facts.server_id,
        service,
        deploy: facts.deploy,
        verdict,
        reasons,
        correlations,
        checks,
        checked_at: facts.checked_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AlertId, DeployId};
    use crate::tools::deploys::{DeploySource, HealthSample};

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn deploy(status: DeployStatus) -> DeployRecord {
        DeployRecord {
            deploy_id: DeployId::parse("dep_0192f0c0aa0070008000000000000001").unwrap(),
            server_id: ServerId::parse("srv_0192f0c0aa0070008000000000000001").unwrap(),
            external_id: "ci-1234".into(),
            service: "web".into(),
            version: "v2.3.1".into(),
            commit_sha: Some("9fceb02".into()),
            repo_url: Some("https://git.example.com/web".into()),
            environment: Some("production".into()),
            started_at: at("2026-12-03T00:00:00Z"),
            finished_at: Some(at("2026-12-03T00:02:00Z")),
            status,
            source: DeploySource::Webhook,
            url: None,
            recorded_at: at("2026-12-03T00:00:01Z"),
        }
    }

    fn sample(ok: bool) -> HealthSample {
        HealthSample {
            status_code: Some(if ok { 200 } else { 500 }),
            latency_ms: 12,
            body_matched: Some(ok),
            error: None,
            ok,
        }
    }

    fn probe(samples: Vec<HealthSample>) -> DeployProbe {
        DeployProbe {
            service: Some("web".into()),
            healthcheck: HealthEvidence::Probed {
                url: "http://127.0.0.1:8080/healthz".into(),
                expect_status: Some(200),
                body_match_required: true,
                max_latency_ms: Some(500),
                failure_limit: 0,
                samples,
            },
            logs: LogEvidence::Read {
                source: "/var/log/web.log".into(),
                error_lines: 0,
                allowed_error_lines: 0,
                examples: Vec::new(),
                covers_window: true,
            },
            unit: UnitEvidence::NotConfigured,
        }
    }

    fn facts(deploy: Option<DeployRecord>, probe: Result<DeployProbe, String>) -> VerifierFacts {
        VerifierFacts {
            verification_id: VerificationId::parse("ver_0192f0c0aa0070008000000000000001").unwrap(),
            server_id: ServerId::parse("srv_0192f0c0aa0070008000000000000001").unwrap(),
            service: Some("web".into()),
            since_ms: at("2026-12-03T00:00:00Z").as_millisecond(),
            deploy,
            probe,
            alerts: Vec::new(),
            checked_at: at("2026-12-03T00:10:00Z"),
        }
    }

    fn alert(opened: &str) -> AlertSinceDeploy {
        AlertSinceDeploy {
            alert_id: AlertId::parse("alr_0192f0c0aa0070008000000000000007").unwrap(),
            rule: "http_5xx".into(),
            severity: "critical".into(),
            status: "open".into(),
            opened_at: at(opened),
        }
    }

    #[test]
    fn healthy_with_a_succeeded_deploy_passes() {
        let v = evaluate(facts(Some(deploy(DeployStatus::Succeeded)), Ok(probe(vec![sample(true); 3]))));
        assert_eq!(v.verdict, Verdict::Pass, "{:?}", v.reasons);
        assert!(v.reasons.is_empty());
        assert_eq!(v.checks.unit.verdict, CheckVerdict::Skipped);
    }

    #[test]
    fn an_unhealthy_sample_over_the_limit_fails() {
        let v = evaluate(facts(Some(deploy(DeployStatus::Succeeded)), Ok(probe(vec![sample(true), sample(false)]))));
        assert_eq!(v.verdict, Verdict::Fail);
        assert_eq!(v.reasons, ["healthcheck: 1 of 2 healthcheck samples were unhealthy (limit 0)"]);
    }

    #[test]
    fn missing_data_is_inconclusive_never_pass() {
        let mut none = probe(vec![]);
        none.healthcheck = HealthEvidence::NotConfigured;
        let v = evaluate(facts(Some(deploy(DeployStatus::Succeeded)), Ok(none)));
        assert_eq!(v.verdict, Verdict::Inconclusive);
        // No deploy recorded: inconclusive even with a healthy service.
        let v = evaluate(facts(None, Ok(probe(vec![sample(true)]))));
        assert_eq!(v.verdict, Verdict::Inconclusive);
        // A deploy still running.
        let v = evaluate(facts(Some(deploy(DeployStatus::Started)), Ok(probe(vec![sample(true)]))));
        assert_eq!(v.verdict, Verdict::Inconclusive);
        // A configured log that cannot be dated.
        let mut undated = probe(vec![sample(true)]);
        undated.logs = LogEvidence::Unavailable { source: "/l".into(), reason: "no timestamps".into() };
        assert_eq!(evaluate(facts(Some(deploy(DeployStatus::Succeeded)), Ok(undated))).verdict, Verdict::Inconclusive);
    }

    /// A log tail that starts after the deploy cannot vouch for the window: no error in it is no
    /// pass. Too many errors in it is still a failure (the count is a lower bound).
    #[test]
    fn a_log_tail_short_of_the_window_is_inconclusive_unless_it_already_fails() {
        let short = |error_lines| {
            let mut p = probe(vec![sample(true)]);
            p.logs = LogEvidence::Read {
                source: "/var/log/web.log".into(),
                error_lines,
                allowed_error_lines: 2,
                examples: Vec::new(),
                covers_window: false,
            };
            evaluate(facts(Some(deploy(DeployStatus::Succeeded)), Ok(p)))
        };
        let v = short(0);
        assert_eq!((v.verdict, v.checks.logs.verdict), (Verdict::Inconclusive, CheckVerdict::Inconclusive));
        assert!(v.checks.logs.note.contains("do not reach back to the deploy's start"), "{}", v.checks.logs.note);
        let v = short(3);
        assert_eq!((v.verdict, v.checks.logs.verdict), (Verdict::Fail, CheckVerdict::Fail));
    }

    #[test]
    fn an_agent_error_is_error_unless_something_failed() {
        let v = evaluate(facts(Some(deploy(DeployStatus::Succeeded)), Err("the agent is offline".into())));
        assert_eq!(v.verdict, Verdict::Error);
        let v = evaluate(facts(Some(deploy(DeployStatus::RolledBack)), Err("the agent is offline".into())));
        assert_eq!(v.verdict, Verdict::Fail);
    }

    #[test]
    fn alerts_since_the_deploy_fail_it_and_are_correlated_literally() {
        let mut f = facts(Some(deploy(DeployStatus::Succeeded)), Ok(probe(vec![sample(true)])));
        f.alerts = vec![alert("2026-12-03T00:07:00Z")];
        let v = evaluate(f);
        assert_eq!(v.verdict, Verdict::Fail);
        assert_eq!(
            v.correlations,
            [
                "web v2.3.1 deployed 7 m before alert alr_0192f0c0aa0070008000000000000007 (http_5xx) opened on the same server"
            ]
        );
        // Outside the window: no correlation.
        assert_eq!(correlation(&deploy(DeployStatus::Succeeded), &alert("2026-12-03T02:00:01Z")), None);
    }

    #[test]
    fn gaps_read_as_words() {
        assert_eq!(format_gap(45_000), "45 s");
        assert_eq!(format_gap(7 * 60_000 + 59_000), "7 m");
        assert_eq!(format_gap(2 * 3_600_000), "2 h");
        assert_eq!(format_gap(2 * 3_600_000 + 5 * 60_000), "2 h 5 m");
        assert_eq!(format_gap(-5), "0 s");
    }

    #[test]
    fn the_same_facts_give_byte_identical_json() {
        let mut f = facts(Some(deploy(DeployStatus::Succeeded)), Ok(probe(vec![sample(true), sample(false)])));
        f.alerts = vec![alert("2026-12-03T00:07:00Z")];
        let once = serde_json::to_string_pretty(&evaluate(f.clone())).unwrap();
        assert_eq!(once, serde_json::to_string_pretty(&evaluate(f)).unwrap());
        insta::assert_snapshot!("deploy_verification_fail", once);
    }
}
