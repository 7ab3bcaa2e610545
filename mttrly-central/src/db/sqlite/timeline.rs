//! One server's timeline: the SQL. One query per kind of item (see `db::timeline` for what an
//! item is), each walking an index by (time, id) downwards from the cursor, merged here.

use std::cmp::Ordering;

use mttrly_core::MttrlyError;
use mttrly_core::audit::AuditActor;
use mttrly_core::ids::{AccountId, ServerId};
use mttrly_core::principal::Principal;
use mttrly_core::tools::timeline::{TimelineEvent, TimelineItem, TimelineKey};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::internal;
use crate::db::timeline::{
    ACTION_TOOLS, AlertWindow, InvestigationWindow, TimelineQuery, VERIFIER_RUN, VerificationRow,
};
use crate::db::timestamp;

/// How one kind of item is read: the table and columns, the time column and the id column it
/// pages by, and extra conditions.
struct Spec {
    select: &'static str,
    time: &'static str,
    id: &'static str,
    extra: &'static str,
}

const ALERTS: &str = "SELECT id, opened_at, resolved_at, rule, subject, severity, status, summary FROM alerts";
const DEPLOYS: &str = "SELECT id, started_at, finished_at, service, version, status, source FROM deploys";
const INVESTIGATIONS: &str = "SELECT id, opened_at, closed_at, title, status, close_reason FROM investigations";

/// How `event`'s items are read; `None` for thread posts, which are no server record (a
/// retrospective written from a thread reads them through the war room).
fn spec(event: TimelineEvent) -> Option<Spec> {
    Some(match event {
        TimelineEvent::IncidentOpened => Spec { select: ALERTS, time: "opened_at", id: "id", extra: "" },
        TimelineEvent::IncidentResolved => {
            Spec { select: ALERTS, time: "resolved_at", id: "id", extra: "AND resolved_at IS NOT NULL" }
        }
        TimelineEvent::DeployStarted => Spec { select: DEPLOYS, time: "started_at", id: "id", extra: "" },
        TimelineEvent::DeployFinished => {
            Spec { select: DEPLOYS, time: "finished_at", id: "id", extra: "AND finished_at IS NOT NULL" }
        }
        TimelineEvent::InvestigationOpened => Spec { select: INVESTIGATIONS, time: "opened_at", id: "id", extra: "" },
        TimelineEvent::InvestigationClosed => {
            Spec { select: INVESTIGATIONS, time: "closed_at", id: "id", extra: "AND closed_at IS NOT NULL" }
        }
        TimelineEvent::ActionRequested => Spec {
            select: "SELECT id, created_at, updated_at, action_type, description, requested_by_json, status, \
                     investigation_id FROM actions",
            time: "created_at",
            id: "id",
            extra: "",
        },
        TimelineEvent::Audited => Spec {
            select: "SELECT seq, at, actor_json, kind, subject, json_extract(parameters_json, '$.decision'), \
                     json_extract(outcome_json, '$.status'), json_extract(outcome_json, '$.code'), \
                     json_extract(parameters_json, '$.verdict') FROM audit_log",
            time: "at",
            id: "seq",
            // Left out: copies of alert rows, and the records of an action's request and of an
            // investigation's opening (see `db::timeline`). `ACTION_TOOLS_SQL` is the same list,
            // checked by a test.
            extra: "AND kind <> 'alert' AND NOT (kind = 'tool_call' AND (subject LIKE 'act\\_%' ESCAPE '\\' \
                    OR subject LIKE 'inv\\_%' ESCAPE '\\' \
                    OR (subject IN (ACTION_TOOLS_SQL) AND json_extract(outcome_json, '$.status') = 'ok')))",
        },
        TimelineEvent::ThreadPosted => return None,
    })
}

/// `ACTION_TOOLS` as an SQL list (constants, never input).
fn action_tools_sql() -> String {
    ACTION_TOOLS.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
}

pub(in crate::db) fn page(
    conn: &Connection,
    account: &AccountId,
    query: &TimelineQuery,
) -> Result<Vec<TimelineItem>, MttrlyError> {
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let mut items: Vec<(TimelineKey, TimelineItem)> = Vec::new();
    for event in &query.events {
        for item in read(conn, account, query, *event)? {
            items.push((item.key(), item));
        }
    }
    if query.oldest_first {
        items.sort_by(|a, b| a.0.cmp(&b.0));
    } else {
        items.sort_by(|a, b| b.0.cmp(&a.0));
    }
    items.dedup_by(|a, b| a.0 == b.0);
    items.truncate(limit);
    Ok(items.into_iter().map(|(_, item)| item).collect())
}

fn read(
    conn: &Connection,
    account: &AccountId,
    query: &TimelineQuery,
    event: TimelineEvent,
) -> Result<Vec<TimelineItem>, MttrlyError> {
    let Some(Spec { select, time, id, extra }) = spec(event) else {
        return Ok(Vec::new());
    };
    let extra = extra.replace("ACTION_TOOLS_SQL", &action_tools_sql());
    let mut values: Vec<SqlValue> = vec![
        SqlValue::Text(account.as_str().to_owned()),
        SqlValue::Text(query.server_id.as_str().to_owned()),
        SqlValue::Integer(query.since_ms),
        SqlValue::Integer(query.until_ms.unwrap_or(i64::MAX)),
        SqlValue::Integer(i64::from(query.limit)),
    ];
    // Strictly older than the cursor in (time, rank, id) order: this query's rank is fixed, so
    // against the cursor's rank it is "time <=", "(time, id) <" or "time <".
    let cursor = match &query.before {
        None => String::new(),
        Some(key) => {
            values.push(SqlValue::Integer(key.at_ms));
            match event.rank().cmp(&key.rank) {
                Ordering::Less => format!("AND {time} <= ?6"),
                Ordering::Greater => format!("AND {time} < ?6"),
                Ordering::Equal => {
                    values.push(if event == TimelineEvent::Audited {
                        // The handler checked that an audit cursor's id is a sequence number.
                        SqlValue::Integer(key.id.parse::<i64>().unwrap_or(i64::MAX))
                    } else {
                        SqlValue::Text(key.id.clone())
                    });
                    format!("AND ({time}, {id}) < (?6, ?7)")
                }
            }
        }
    };
    let sql = format!(
        "{select} WHERE account_id = ?1 AND server_id = ?2 AND {time} >= ?3 AND {time} <= ?4 {extra} {cursor}
         ORDER BY {time} {order}, {id} {order} LIMIT ?5",
        order = if query.oldest_first { "ASC" } else { "DESC" }
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let rows = stmt.query_map(params_from_iter(values), |r| Ok(item(event, r))).map_err(internal)?;
    let mut items = Vec::new();
    for row in rows {
        if let Some(item) = row.map_err(internal)? {
            items.push(item);
        }
    }
    Ok(items)
}

fn base(event: TimelineEvent, at: i64, reference: String, summary: String) -> TimelineItem {
    TimelineItem {
        at: timestamp(at),
        source: event.source(),
        event,
        reference,
        summary,
        actor: None,
        status: None,
        subject: None,
        finished_at: None,
        investigation_id: None,
        post: None,
        server_id: None,
    }
}

/// One row as an item; `None` for a row this build cannot read (logged, never fatal: one bad
/// row must not hide a server's whole history).
fn item(event: TimelineEvent, r: &Row<'_>) -> Option<TimelineItem> {
    let parsed = (|| -> rusqlite::Result<TimelineItem> {
        Ok(match event {
            TimelineEvent::IncidentOpened | TimelineEvent::IncidentResolved => {
                let (rule, subject, severity, status, summary): (String, String, String, String, String) =
                    (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?);
                let opened = event == TimelineEvent::IncidentOpened;
                let at: i64 = if opened { r.get(1)? } else { r.get(2)? };
                let text = if opened {
                    format!("{severity} alert opened: {summary} ({rule} on {subject})")
                } else {
                    format!("alert resolved: {summary} ({rule} on {subject})")
                };
                let mut item = base(event, at, r.get(0)?, text);
                item.status = Some(format!("{severity}, {status}"));
                item.subject = Some(rule);
                item
            }
            TimelineEvent::DeployStarted | TimelineEvent::DeployFinished => {
                let (service, version, status, source): (String, String, String, String) =
                    (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
                let started = event == TimelineEvent::DeployStarted;
                let at: i64 = if started { r.get(1)? } else { r.get(2)? };
                let text = if started {
                    format!("deploy of {service} {version} started (recorded by {source})")
                } else {
                    format!("deploy of {service} {version} finished: {status}")
                };
                let mut item = base(event, at, r.get(0)?, text);
                item.status = Some(status);
                item.subject = Some(service);
                item
            }
            TimelineEvent::InvestigationOpened | TimelineEvent::InvestigationClosed => {
                let (title, status, reason): (String, String, Option<String>) = (r.get(3)?, r.get(4)?, r.get(5)?);
                let opened = event == TimelineEvent::InvestigationOpened;
                let at: i64 = if opened { r.get(1)? } else { r.get(2)? };
                let text = if opened {
                    format!("investigation opened: {title}")
                } else {
                    format!("investigation closed ({}): {title}", reason.as_deref().unwrap_or("closed"))
                };
                let id: String = r.get(0)?;
                let mut item = base(event, at, id.clone(), text);
                item.status = Some(status);
                item.investigation_id = Some(id);
                item
            }
            TimelineEvent::ActionRequested => {
                let (created, updated): (i64, i64) = (r.get(1)?, r.get(2)?);
                let (action_type, description, by, status): (String, String, String, String) =
                    (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
                let terminal = matches!(
                    status.as_str(),
                    "succeeded" | "failed" | "rejected" | "expired" | "cancelled" | "failed_closed"
                );
                let first_line = description.lines().next().unwrap_or_default().to_owned();
                let mut item = base(event, created, r.get(0)?, first_line);
                item.actor = serde_json::from_str::<Principal>(&by).ok().map(AuditActor::from);
                item.status = Some(status);
                item.subject = Some(action_type);
                item.finished_at = terminal.then(|| timestamp(updated));
                item.investigation_id = r.get(7)?;
                item
            }
            TimelineEvent::Audited => {
                let seq: i64 = r.get(0)?;
                let (actor, kind, subject): (String, String, String) = (r.get(2)?, r.get(3)?, r.get(4)?);
                let decision: Option<String> = r.get(5).ok().flatten();
                let (outcome, code): (Option<String>, Option<String>) = (r.get(6)?, r.get(7)?);
                let verdict: Option<String> = r.get(8).ok().flatten();
                let status = match (outcome.as_deref(), code) {
                    // A recorded decision's outcome is the decision itself.
                    (Some("ok"), _) if kind == "approval_decision" => {
                        decision.clone().unwrap_or_else(|| "ok".to_owned())
                    }
                    // A verifier run's outcome is its verdict: `ok` says only that it ran, and
                    // would read as a pass whatever it found.
                    (Some("ok"), _) if subject == VERIFIER_RUN => verdict.unwrap_or_else(|| "ok".to_owned()),
                    (Some("ok"), _) => "ok".to_owned(),
                    (_, Some(code)) => code,
                    _ => "error".to_owned(),
                };
                let text = match kind.as_str() {
                    "tool_call" if status == "ok" => format!("called {subject}"),
                    "tool_call" => format!("called {subject}: {status}"),
                    "approval_decision" => format!("{} on {subject}", decision.as_deref().unwrap_or("decision")),
                    "execution_result" => format!("{subject} finished: {status}"),
                    "agent_event" => format!("agent: {subject}"),
                    "api_call" if subject == VERIFIER_RUN => format!("deploy verifier: {status}"),
                    _ => subject.clone(),
                };
                let mut item = base(event, r.get(1)?, format!("audit:{seq}"), text);
                item.actor = serde_json::from_str(&actor).ok();
                item.status = Some(status);
                item.subject = Some(subject);
                item
            }
            // No query reads them (`spec`), so no row arrives here.
            TimelineEvent::ThreadPosted => return Err(rusqlite::Error::InvalidQuery),
        })
    })();
    parsed.map_err(|e| tracing::warn!(error = %e, ?event, "skipping an unreadable timeline row")).ok()
}

pub(in crate::db) fn latest_verification(
    conn: &Connection,
    account: &AccountId,
    server: &ServerId,
    until_ms: i64,
) -> Result<Option<VerificationRow>, MttrlyError> {
    conn.prepare_cached(
        "SELECT id, deploy_id, verdict, checked_at FROM deploy_verifications
         WHERE account_id = ?1 AND server_id = ?2 AND checked_at <= ?3 ORDER BY checked_at DESC, id DESC LIMIT 1",
    )
    .map_err(internal)?
    .query_row(params![account.as_str(), server.as_str(), until_ms], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .optional()
    .map_err(internal)
}

pub(in crate::db) fn investigation(
    conn: &Connection,
    account: &AccountId,
    server: &ServerId,
    id: Option<&str>,
) -> Result<Option<InvestigationWindow>, MttrlyError> {
    conn.prepare_cached(
        "SELECT i.id, i.title, i.opened_at, i.closed_at, a.opened_at FROM investigations i
         LEFT JOIN alerts a ON a.id = i.alert_id AND a.account_id = i.account_id
         WHERE i.account_id = ?1 AND i.server_id = ?2 AND (?3 IS NULL OR i.id = ?3)
         ORDER BY i.opened_at DESC, i.id DESC LIMIT 1",
    )
    .map_err(internal)?
    .query_row(params![account.as_str(), server.as_str(), id], |r| {
        Ok(InvestigationWindow {
            id: r.get(0)?,
            title: r.get(1)?,
            opened_at: r.get(2)?,
            closed_at: r.get(3)?,
            alert_opened_at: r.get(4)?,
        })
    })
    .optional()
    .map_err(internal)
}

pub(in crate::db) fn latest_alert(
    conn: &Connection,
    account: &AccountId,
    server: &ServerId,
) -> Result<Option<AlertWindow>, MttrlyError> {
    conn.prepare_cached(
        "SELECT id, summary, opened_at, resolved_at FROM alerts
         WHERE account_id = ?1 AND server_id = ?2 ORDER BY opened_at DESC, id DESC LIMIT 1",
    )
    .map_err(internal)?
    .query_row(params![account.as_str(), server.as_str()], |r| {
        Ok(AlertWindow { id: r.get(0)?, summary: r.get(1)?, opened_at: r.get(2)?, resolved_at: r.get(3)? })
    })
    .optional()
    .map_err(internal)
}
