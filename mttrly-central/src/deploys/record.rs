//! Recording a deploy reported by a CI or a person: one validated, redacted, idempotent, audited
//! path for the webhook and the CLI.

use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::{AccountId, DeployId, ServerId};
use mttrly_core::tools::deploys::{DeploySource, DeployStatus, ServiceName};
use mttrly_core::{ErrorCode, MttrlyError, Source};
use serde::Deserialize;

use crate::db::deploys::{NewDeploy, Recorded};
use crate::db::now_ms;
use crate::db::servers::ServerRow;
use crate::state::Central;

/// The earliest time accepted (2000-01-01): anything before is a unit mistake (seconds for ms).
const EARLIEST_MS: i64 = 946_684_800_000;
/// How far in the future a time may be (clock skew between the CI and central).
const FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// A time as a sender writes it: RFC 3339 text, or Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum WireTime {
    /// Unix milliseconds.
    Millis(i64),
    /// RFC 3339 (`2026-12-03T00:09:09Z`).
    Text(String),
}

/// A deploy as a CI (`POST /hooks/deploy`) or `mttrly-cli deploys record` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployReport {
    /// The sender's id for this deploy (1 to 128 of `A-Z a-z 0-9 . _ - : / # @ +`): the same id
    /// again is the same deploy.
    pub id: String,
    /// The server: its id (`srv_…`) or its name.
    pub server: String,
    /// The service deployed.
    pub service: String,
    /// The version deployed (1 to 128 characters).
    pub version: String,
    /// The commit (7 to 64 hex digits).
    #[serde(default)]
    pub commit: Option<String>,
    /// The repository (http or https).
    #[serde(default)]
    pub repo_url: Option<String>,
    /// The environment name (1 to 64 of `A-Z a-z 0-9 . _ -`).
    #[serde(default)]
    pub environment: Option<String>,
    /// When it began; now when absent.
    #[serde(default)]
    pub started_at: Option<WireTime>,
    /// When it ended; now when absent and the status is not `started`.
    #[serde(default)]
    pub finished_at: Option<WireTime>,
    /// `started`, `succeeded`, `failed` or `rolled_back`.
    pub status: String,
    /// A link to the CI run or release (http or https).
    #[serde(default)]
    pub url: Option<String>,
}

/// Who is recording.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A CI through the signed webhook.
    Webhook,
    /// A person through the API (the CLI).
    Human {
        /// The user.
        user_id: mttrly_core::ids::UserId,
        /// Their name.
        name: String,
    },
}

fn invalid(field: &str, why: impl std::fmt::Display) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, format!("`{field}` {why}")).with_detail("field", field)
}

fn time_of(field: &str, value: &WireTime, now: i64) -> Result<i64, MttrlyError> {
    let ms = match value {
        WireTime::Millis(ms) => *ms,
        WireTime::Text(text) => text
            .parse::<jiff::Timestamp>()
            .map_err(|e| invalid(field, format!("is not an RFC 3339 time or Unix milliseconds: {e}")))?
            .as_millisecond(),
    };
    if ms < EARLIEST_MS {
        return Err(invalid(field, "is before 2000-01-01 (Unix milliseconds are expected, not seconds)"));
    }
    if ms > now + FUTURE_SKEW_MS {
        return Err(invalid(field, "is more than 5 minutes in the future"));
    }
    Ok(ms)
}

fn text_field(field: &str, value: &str, max: usize, allowed: impl Fn(char) -> bool) -> Result<(), MttrlyError> {
    let chars = value.chars().count();
    if chars == 0 || chars > max {
        return Err(invalid(field, format!("must be 1 to {max} characters long, got {chars}")));
    }
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(invalid(field, format!("must not contain {bad:?}")));
    }
    Ok(())
}

fn url_field(field: &str, value: Option<&String>) -> Result<Option<String>, MttrlyError> {
    value
        .map(|url| {
            mttrly_core::deploys::check_http_url(url).map_err(|why| invalid(field, why))?;
            Ok(redacted(url))
        })
        .transpose()
}

/// Free text from a CI is stored redacted: a token pasted into a version or a link's query
/// string is never kept.
fn redacted(text: &str) -> String {
    mttrly_core::redactor::redact(text).text.into_owned()
}

/// A validated report, its server still by reference.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) server: String,
    pub(crate) deploy: NewDeploy,
}

/// Checks every field of `report` (`now` in ms): the first bad field is a `VALIDATION_ERROR`
/// naming it, and nothing is stored.
pub(crate) fn check(report: &DeployReport, source: DeploySource, now: i64) -> Result<Checked, MttrlyError> {
    text_field("id", &report.id, 128, |c| c.is_ascii_alphanumeric() || "._-:/#@+".contains(c))?;
    if !ServiceName::is_valid(&report.service) {
        return Err(invalid("service", "must be 1 to 128 letters, digits, `.`, `_`, `-`, `@`, `:`"));
    }
    text_field("server", &report.server, 64, |c| c.is_ascii_alphanumeric() || "._-".contains(c))?;
    text_field("version", &report.version, 128, |c| !c.is_control())?;
    let commit = report
        .commit
        .as_ref()
        .map(|c| {
            if (7..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(c.to_ascii_lowercase())
            } else {
                Err(invalid("commit", "must be 7 to 64 hex digits"))
            }
        })
        .transpose()?;
    if let Some(env) = &report.environment {
        text_field("environment", env, 64, |c| c.is_ascii_alphanumeric() || "._-".contains(c))?;
    }
    let status = DeployStatus::parse(&report.status)
        .ok_or_else(|| invalid("status", "must be one of started, succeeded, failed, rolled_back"))?;
    let finished = report.finished_at.as_ref().map(|t| time_of("finished_at", t, now)).transpose()?;
    let started = match &report.started_at {
        Some(t) => time_of("started_at", t, now)?,
        None => finished.unwrap_or(now),
    };
    if finished.is_some_and(|end| end < started) {
        return Err(invalid("finished_at", "is before `started_at`"));
    }
    let finished = match (status, finished) {
        (DeployStatus::Started, Some(_)) => {
            return Err(invalid("finished_at", "cannot be set while the status is `started`"));
        }
        (DeployStatus::Started, None) => None,
        (_, given) => Some(given.unwrap_or_else(|| now.max(started))),
    };
    Ok(Checked {
        server: report.server.clone(),
        deploy: NewDeploy {
            id: DeployId::generate(),
            server_id: ServerId::generate(),
            external_id: report.id.clone(),
            service: report.service.clone(),
            version: redacted(&report.version),
            commit_sha: commit,
            repo_url: url_field("repo_url", report.repo_url.as_ref())?,
            environment: report.environment.clone(),
            started_at: started,
            finished_at: finished,
            status,
            source,
            url: url_field("url", report.url.as_ref())?,
        },
    })
}

/// The account's server named by id or by name (case-insensitive); `SERVER_NOT_FOUND` otherwise,
/// also for another account's id.
pub(crate) async fn server_by_ref(
    central: &Central,
    account: &AccountId,
    reference: &str,
) -> Result<ServerRow, MttrlyError> {
    let servers = central.db.account(account).servers();
    let found = match ServerId::parse(reference) {
        Ok(id) => servers.get(&id).await?,
        Err(_) => servers.list().await?.into_iter().find(|s| s.name.eq_ignore_ascii_case(reference)),
    };
    found.ok_or_else(|| {
        MttrlyError::new(ErrorCode::ServerNotFound, format!("no server `{reference}` in this account"))
            .with_detail("server", reference)
    })
}

/// Validates, resolves the server, stores and audits a reported deploy. The same id again is the
/// same deploy ([`Recorded::Unchanged`], nothing audited); a later status moves it forward
/// ([`Recorded::Updated`], audited).
pub async fn record(
    central: &Central,
    account: &AccountId,
    actor: Actor,
    report: &DeployReport,
) -> Result<Recorded, MttrlyError> {
    let now = now_ms();
    let source = match actor {
        Actor::Webhook => DeploySource::Webhook,
        Actor::Human { .. } => DeploySource::Cli,
    };
    let Checked { server, mut deploy } = check(report, source, now)?;
    deploy.server_id = server_by_ref(central, account, &server).await?.id;
    let recorded = central.db.account(account).deploys().record(deploy, now).await?;
    let (audit_actor, audit_source) = match actor {
        Actor::Webhook => (AuditActor::System, Source::Api),
        Actor::Human { user_id, name } => (AuditActor::Human { user_id, name }, Source::Cli),
    };
    audit(central, account, audit_actor, audit_source, AuditKind::ApiCall, &recorded);
    Ok(recorded)
}

/// Audits a created or updated deploy (an unchanged one changed nothing).
pub(super) fn audit(
    central: &Central,
    account: &AccountId,
    actor: AuditActor,
    source: Source,
    kind: AuditKind,
    recorded: &Recorded,
) {
    let (subject, from) = match recorded {
        Recorded::Created(_) => ("deploy.recorded", None),
        Recorded::Updated { from, .. } => ("deploy.updated", Some(from.as_str())),
        Recorded::Unchanged(_) => return,
    };
    let row = recorded.row();
    let event = AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: account.clone(),
        server_id: Some(row.server_id.clone()),
        actor,
        source,
        kind,
        subject: subject.to_owned(),
        parameters: serde_json::json!({
            "deploy_id": row.deploy_id, "external_id": row.external_id, "service": row.service,
            "version": row.version, "status": row.status, "previous_status": from, "source": row.source,
            "commit_sha": row.commit_sha, "started_at": row.started_at, "finished_at": row.finished_at,
        }),
        outcome: AuditOutcome::Ok,
        duration_ms: None,
    };
    central.audit(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_256_000_000;

    fn report() -> DeployReport {
        DeployReport {
            id: "gh-run-42".into(),
            server: "web-1".into(),
            service: "web".into(),
            version: "v2.3.1".into(),
            commit: Some("9FCEB02D0AE598E95DC970B74767F19372D61AF8".into()),
            repo_url: Some("https://git.example.com/web".into()),
            environment: Some("production".into()),
            started_at: Some(WireTime::Text("2026-12-03T00:00:00Z".into())),
            finished_at: None,
            status: "succeeded".into(),
            url: Some("https://ci.example.com/run/42?token=ghp_abcdefghijklmnopqrstuvwxyz0123456789".into()),
        }
    }

    fn field_of(err: &MttrlyError) -> String {
        err.body().details.get("field").and_then(|v| v.as_str()).unwrap_or_default().to_owned()
    }

    #[test]
    fn a_good_report_is_normalised_and_redacted() {
        let checked = check(&report(), DeploySource::Webhook, NOW).unwrap();
        let d = checked.deploy;
        assert_eq!(d.commit_sha.as_deref(), Some("9fceb02d0ae598e95dc970b74767f19372d61af8"));
        assert_eq!(d.finished_at, Some(NOW), "a finished status without an end time ends now");
        assert!(!d.url.as_deref().unwrap().contains("ghp_abcdefghijklmnopqrstuvwxyz"), "{:?}", d.url);
        assert_eq!(checked.server, "web-1");
    }

    /// One way to spoil a report.
    type Spoil = Box<dyn Fn(&mut DeployReport)>;

    #[test]
    fn every_bad_field_is_named() {
        let cases: Vec<(&str, Spoil)> = vec![
            ("id", Box::new(|r| r.id = "has space".into())),
            ("id", Box::new(|r| r.id = "x".repeat(129))),
            ("service", Box::new(|r| r.service = "../etc".into())),
            ("server", Box::new(|r| r.server = "web;rm".into())),
            ("version", Box::new(|r| r.version = "v1\u{1b}[31m".into())),
            ("version", Box::new(|r| r.version = String::new())),
            ("commit", Box::new(|r| r.commit = Some("xyz".into()))),
            ("repo_url", Box::new(|r| r.repo_url = Some("javascript:alert(1)".into()))),
            ("url", Box::new(|r| r.url = Some("file:///etc/passwd".into()))),
            ("environment", Box::new(|r| r.environment = Some("prod env".into()))),
            ("status", Box::new(|r| r.status = "done".into())),
            ("started_at", Box::new(|r| r.started_at = Some(WireTime::Millis(1_700_000_000)))),
            ("started_at", Box::new(|r| r.started_at = Some(WireTime::Text("yesterday".into())))),
            ("started_at", Box::new(|r| r.started_at = Some(WireTime::Millis(NOW + 3_600_000)))),
            ("finished_at", Box::new(|r| r.finished_at = Some(WireTime::Text("2026-12-02T00:00:00Z".into())))),
            (
                "finished_at",
                Box::new(|r| {
                    r.status = "started".into();
                    r.finished_at = Some(WireTime::Millis(NOW));
                }),
            ),
        ];
        for (field, change) in cases {
            let mut r = report();
            change(&mut r);
            let err = check(&r, DeploySource::Cli, NOW).unwrap_err();
            assert_eq!(err.code(), ErrorCode::ValidationError);
            assert_eq!(field_of(&err), field, "{}", err.message());
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<DeployReport>(
            r#"{"id":"1","server":"s","service":"w","version":"1","status":"started","extra":1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }
}
