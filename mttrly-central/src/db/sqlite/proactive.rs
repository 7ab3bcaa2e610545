//! Proactive events, budgets and brief cursors: the SQL (the rules are `crate::proactive::budget`).

use std::collections::BTreeMap;

use mttrly_core::MttrlyError;
use mttrly_core::ids::{AccountId, ActionId, AlertId, EventId, ServerId, UserId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::proactive::{
    BriefAction, BriefAlert, BriefDeploy, BriefKnowledge, EventState, EventVerdict, ProactiveEvent, ProactiveEventAck,
};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::internal;
use crate::db::proactive::{AckOutcome, Acker, BriefRows, MuteRow, NewEvent};
use crate::db::timestamp;
use crate::proactive::budget::Budget;

/// Most rows of each kind one brief reads: a brief is a digest, not an export.
const BRIEF_ROWS: i64 = 500;

/// Most events scanned for a brief's anomalies (they are grouped per server and metric after).
const BRIEF_EVENTS: i64 = 10_000;

const EVENT_COLUMNS: &str =
    "id, server_id, detector, metric, severity, summary, value, baseline, intervals, detected_at, state, muted_until";

fn severity(s: &str) -> Severity {
    Severity::ALL.into_iter().find(|v| v.as_str() == s).unwrap_or(Severity::Warning)
}

fn stored_id<T>(parse: impl Fn(&str) -> Result<T, mttrly_core::ids::InvalidId>, raw: &str) -> rusqlite::Result<T> {
    parse(raw).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn event_of(r: &Row<'_>) -> rusqlite::Result<ProactiveEvent> {
    let state: String = r.get(10)?;
    Ok(ProactiveEvent {
        event_id: stored_id(EventId::parse, &r.get::<_, String>(0)?)?,
        server_id: stored_id(ServerId::parse, &r.get::<_, String>(1)?)?,
        detector: r.get(2)?,
        metric: r.get(3)?,
        severity: severity(&r.get::<_, String>(4)?),
        summary: r.get(5)?,
        value: r.get(6)?,
        baseline: r.get(7)?,
        intervals: r.get(8)?,
        detected_at: timestamp(r.get(9)?),
        state: EventState::parse(&state).unwrap_or(EventState::New),
        muted_until: r.get::<_, Option<i64>>(11)?.map(timestamp),
    })
}

fn load_budget(conn: &Connection, account: &AccountId, e: (&str, &str, &str)) -> Result<Budget, MttrlyError> {
    conn.prepare_cached(
        "SELECT fp_run, fp_total, acked_total, mutes, muted_until, mute_reason, muted_events FROM proactive_budgets
         WHERE account_id = ?1 AND server_id = ?2 AND detector = ?3 AND metric = ?4",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![account.as_str(), e.0, e.1, e.2], |r| {
            Ok(Budget {
                fp_run: r.get(0)?,
                fp_total: r.get(1)?,
                acked_total: r.get(2)?,
                mutes: r.get(3)?,
                muted_until: r.get(4)?,
                mute_reason: r.get(5)?,
                muted_events: r.get(6)?,
            })
        })
        .optional()
    })
    .map(Option::unwrap_or_default)
    .map_err(internal)
}

fn save_budget(conn: &Connection, account: &AccountId, e: (&str, &str, &str), b: &Budget) -> Result<(), MttrlyError> {
    conn.prepare_cached(
        "INSERT INTO proactive_budgets (account_id, server_id, detector, metric, fp_run, fp_total, acked_total, mutes,
             muted_until, mute_reason, muted_events) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (account_id, server_id, detector, metric) DO UPDATE SET fp_run = excluded.fp_run,
             fp_total = excluded.fp_total, acked_total = excluded.acked_total, mutes = excluded.mutes,
             muted_until = excluded.muted_until, mute_reason = excluded.mute_reason, muted_events = excluded.muted_events",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            account.as_str(),
            e.0,
            e.1,
            e.2,
            b.fp_run,
            b.fp_total,
            b.acked_total,
            b.mutes,
            b.muted_until,
            b.mute_reason,
            b.muted_events
        ])
    })
    .map(|_| ())
    .map_err(internal)
}

/// Stores `event`, muted when its key's budget says so, in one transaction with the budget.
pub(in crate::db) fn record(
    conn: &mut Connection,
    account: &AccountId,
    event: &NewEvent,
) -> Result<ProactiveEvent, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let key = (event.server_id.as_str(), event.detector.as_str(), event.metric.as_str());
    let mut budget = load_budget(&tx, account, key)?;
    let muted = budget.on_event(event.detected_at);
    let (state, muted_until, reason) = if muted {
        (EventState::Muted, budget.muted_until, budget.mute_reason.clone())
    } else {
        (EventState::New, None, None)
    };
    if muted {
        save_budget(&tx, account, key, &budget)?;
    }
    let id = EventId::generate();
    tx.execute(
        "INSERT INTO proactive_events (id, account_id, server_id, detector, metric, severity, summary, value, baseline,
             intervals, details_json, detected_at, state, muted_until, mute_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            id.as_str(),
            account.as_str(),
            event.server_id.as_str(),
            event.detector,
            event.metric,
            event.severity.as_str(),
            event.summary,
            event.value,
            event.baseline,
            event.intervals,
            event.details_json,
            event.detected_at,
            state.as_str(),
            muted_until,
            reason
        ],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(ProactiveEvent {
        event_id: id,
        server_id: event.server_id.clone(),
        detector: event.detector.clone(),
        metric: event.metric.clone(),
        severity: event.severity,
        summary: event.summary.clone(),
        value: event.value,
        baseline: event.baseline,
        intervals: event.intervals,
        detected_at: timestamp(event.detected_at),
        state,
        muted_until: muted_until.map(timestamp),
    })
}

/// One event of `account`.
pub(in crate::db) fn get(
    conn: &Connection,
    account: &AccountId,
    id: &EventId,
) -> Result<Option<ProactiveEvent>, MttrlyError> {
    conn.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM proactive_events WHERE id = ?1 AND account_id = ?2"))
        .and_then(|mut stmt| stmt.query_row(params![id.as_str(), account.as_str()], event_of).optional())
        .map_err(internal)
}

/// Records `verdict` on the event, counting it in its key's budget once.
pub(in crate::db) fn acknowledge(
    conn: &mut Connection,
    account: &AccountId,
    id: &EventId,
    verdict: EventVerdict,
    note: Option<&str>,
    by: &Acker,
    now: i64,
) -> Result<AckOutcome, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let row = tx
        .query_row(
            "SELECT server_id, detector, metric, ack_verdict FROM proactive_events WHERE id = ?1 AND account_id = ?2",
            params![id.as_str(), account.as_str()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((server, detector, metric, previous)) = row else {
        return Ok(AckOutcome::NotFound);
    };
    let key = (server.as_str(), detector.as_str(), metric.as_str());
    let mut budget = load_budget(&tx, account, key)?;
    let counted = match previous.as_deref() {
        Some(p) if p == verdict.as_str() => false,
        Some(_) => {
            let other = match verdict {
                EventVerdict::Accepted => EventVerdict::FalsePositive,
                EventVerdict::FalsePositive => EventVerdict::Accepted,
            };
            return Ok(AckOutcome::Conflict(other));
        }
        None => {
            match verdict {
                EventVerdict::Accepted => budget.on_accepted(now),
                EventVerdict::FalsePositive => {
                    budget.on_false_positive(now);
                }
            }
            save_budget(&tx, account, key, &budget)?;
            let state = match verdict {
                EventVerdict::Accepted => EventState::Accepted,
                EventVerdict::FalsePositive => EventState::FalsePositive,
            };
            tx.execute(
                "UPDATE proactive_events SET state = ?3, ack_verdict = ?4, ack_note = ?5, acked_by = ?6, acked_by_name = ?7,
                     acked_at = ?8 WHERE id = ?1 AND account_id = ?2 AND ack_verdict IS NULL",
                params![
                    id.as_str(),
                    account.as_str(),
                    state.as_str(),
                    verdict.as_str(),
                    note,
                    by.user_id.as_str(),
                    by.name,
                    now
                ],
            )
            .map_err(internal)?;
            true
        }
    };
    tx.commit().map_err(internal)?;
    let muted = budget.is_muted(now);
    let remaining = budget.remaining();
    Ok(AckOutcome::Done(ProactiveEventAck {
        event_id: id.clone(),
        state: match verdict {
            EventVerdict::Accepted => EventState::Accepted,
            EventVerdict::FalsePositive => EventState::FalsePositive,
        },
        counted,
        detector_muted: muted,
        muted_until: budget.muted_until.filter(|_| muted).map(timestamp),
        mute_reason: budget.mute_reason.filter(|_| muted),
        false_positive_budget_remaining: remaining,
    }))
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool, MttrlyError> {
    conn.prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")
        .and_then(|mut stmt| stmt.exists([name]))
        .map_err(internal)
}

/// Reads `user`'s brief up to `now` and moves the cursor there.
pub(in crate::db) fn brief(
    conn: &mut Connection,
    account: &AccountId,
    user: &UserId,
    now: i64,
    first_window_ms: i64,
) -> Result<BriefRows, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let cursor: Option<i64> = tx
        .query_row(
            "SELECT last_brief_at FROM brief_cursors WHERE account_id = ?1 AND user_id = ?2",
            params![account.as_str(), user.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(internal)?;
    // A clock that went back never makes a window run backwards.
    let since = cursor.map_or(now.saturating_sub(first_window_ms), |c| c.min(now));
    let window = params![account.as_str(), since, now];

    let events = tx
        .prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM proactive_events WHERE account_id = ?1 AND detected_at > ?2 AND detected_at <= ?3
             AND muted_until IS NULL ORDER BY detected_at, id LIMIT {BRIEF_EVENTS}"
        ))
        .and_then(|mut stmt| stmt.query_map(window, event_of)?.collect::<Result<Vec<_>, _>>())
        .map_err(internal)?;

    let mut mutes: BTreeMap<(String, String, String), MuteRow> = BTreeMap::new();
    let held = tx
        .prepare(&format!(
            "SELECT server_id, detector, metric, count(*), max(muted_until),
                 (SELECT e2.mute_reason FROM proactive_events e2 WHERE e2.account_id = e.account_id AND e2.server_id = e.server_id
                  AND e2.detector = e.detector AND e2.metric = e.metric AND e2.muted_until IS NOT NULL
                  ORDER BY e2.detected_at DESC, e2.id DESC LIMIT 1),
                 (SELECT e2.id FROM proactive_events e2 WHERE e2.account_id = e.account_id AND e2.server_id = e.server_id
                  AND e2.detector = e.detector AND e2.metric = e.metric AND e2.muted_until IS NOT NULL
                  AND e2.detected_at > ?2 AND e2.detected_at <= ?3 ORDER BY e2.detected_at DESC, e2.id DESC LIMIT 1)
             FROM proactive_events e WHERE account_id = ?1 AND detected_at > ?2 AND detected_at <= ?3
             AND muted_until IS NOT NULL GROUP BY server_id, detector, metric ORDER BY server_id, detector, metric
             LIMIT {BRIEF_ROWS}"
        ))
        .and_then(|mut stmt| {
            stmt.query_map(window, |r| {
                Ok(MuteRow {
                    server_id: stored_id(ServerId::parse, &r.get::<_, String>(0)?)?,
                    detector: r.get(1)?,
                    metric: r.get(2)?,
                    muted_events: r.get(3)?,
                    muted_until: r.get(4)?,
                    reason: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    latest_event_id: r.get::<_, Option<String>>(6)?.map(|s| stored_id(EventId::parse, &s)).transpose()?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(internal)?;
    for row in held {
        mutes.insert((row.server_id.as_str().to_owned(), row.detector.clone(), row.metric.clone()), row);
    }
    // Keys muted now that held nothing back in the window are still worth saying.
    let active = tx
        .prepare(&format!(
            "SELECT server_id, detector, metric, muted_until, mute_reason FROM proactive_budgets
             WHERE account_id = ?1 AND muted_until > ?2 ORDER BY server_id, detector, metric LIMIT {BRIEF_ROWS}"
        ))
        .and_then(|mut stmt| {
            stmt.query_map(params![account.as_str(), now], |r| {
                Ok((
                    stored_id(ServerId::parse, &r.get::<_, String>(0)?)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(internal)?;
    for (server_id, detector, metric, until, reason) in active {
        let key = (server_id.as_str().to_owned(), detector.clone(), metric.clone());
        let entry = mutes.entry(key).or_insert_with(|| MuteRow {
            server_id,
            detector,
            metric,
            reason: String::new(),
            muted_until: until,
            muted_events: 0,
            latest_event_id: None,
        });
        // The budget is the latest word on why and until when.
        entry.muted_until = until;
        entry.reason = reason;
    }

    let alerts = tx
        .prepare(&format!(
            "SELECT id, server_id, rule, severity, summary, opened_at FROM alerts WHERE account_id = ?1 AND status = 'open'
             ORDER BY opened_at, id LIMIT {BRIEF_ROWS}"
        ))
        .and_then(|mut stmt| {
            stmt.query_map([account.as_str()], |r| {
                Ok(BriefAlert {
                    alert_id: stored_id(AlertId::parse, &r.get::<_, String>(0)?)?,
                    server_id: stored_id(ServerId::parse, &r.get::<_, String>(1)?)?,
                    rule: r.get(2)?,
                    severity: severity(&r.get::<_, String>(3)?),
                    summary: r.get(4)?,
                    opened_at: timestamp(r.get(5)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(internal)?;

    let actions = tx
        .prepare(&format!(
            "SELECT id, server_id, status, description, updated_at FROM actions WHERE account_id = ?1
             AND (status = 'pending_approval'
                  OR (status IN ('failed', 'failed_closed', 'expired') AND updated_at > ?2 AND updated_at <= ?3))
             ORDER BY updated_at, id LIMIT {BRIEF_ROWS}"
        ))
        .and_then(|mut stmt| {
            stmt.query_map(window, |r| {
                Ok(BriefAction {
                    action_id: stored_id(ActionId::parse, &r.get::<_, String>(0)?)?,
                    server_id: stored_id(ServerId::parse, &r.get::<_, String>(1)?)?,
                    status: r.get(2)?,
                    description: r.get(3)?,
                    updated_at: timestamp(r.get(4)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(internal)?;

    // Deploys and knowledge are other modules' tables (read only here); a central built before
    // they exist simply has none to show.
    let deploys = if table_exists(&tx, "deploys")? {
        tx.prepare(&format!(
            "SELECT id, server_id, service, version, status, started_at FROM deploys WHERE account_id = ?1
             AND started_at > ?2 AND started_at <= ?3 ORDER BY started_at, id LIMIT {BRIEF_ROWS}"
        ))
        .and_then(|mut stmt| {
            stmt.query_map(window, |r| {
                Ok(BriefDeploy {
                    deploy_id: r.get(0)?,
                    server_id: stored_id(ServerId::parse, &r.get::<_, String>(1)?)?,
                    service: r.get(2)?,
                    version: r.get(3)?,
                    status: r.get(4)?,
                    started_at: timestamp(r.get(5)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(internal)?
    } else {
        Vec::new()
    };
    let knowledge = if table_exists(&tx, "knowledge")? {
        tx.prepare(&format!(
            "SELECT id, kind, title, server_id, created_at FROM knowledge WHERE account_id = ?1 AND removed_at IS NULL
             AND created_at > ?2 AND created_at <= ?3 ORDER BY created_at, id LIMIT {BRIEF_ROWS}"
        ))
        .and_then(|mut stmt| {
            stmt.query_map(window, |r| {
                Ok(BriefKnowledge {
                    knowledge_id: r.get(0)?,
                    kind: r.get(1)?,
                    title: r.get(2)?,
                    server_id: r.get::<_, Option<String>>(3)?.map(|s| stored_id(ServerId::parse, &s)).transpose()?,
                    created_at: timestamp(r.get(4)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(internal)?
    } else {
        Vec::new()
    };

    tx.execute(
        "INSERT INTO brief_cursors (account_id, user_id, last_brief_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (account_id, user_id) DO UPDATE SET last_brief_at = max(last_brief_at, excluded.last_brief_at)",
        params![account.as_str(), user.as_str(), now],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    if events.len() >= usize::try_from(BRIEF_EVENTS).unwrap_or(usize::MAX) {
        tracing::warn!(account_id = %account, "a brief's window held more events than one brief reads");
    }
    Ok(BriefRows {
        since,
        until: now,
        first: cursor.is_none(),
        events,
        mutes: mutes.into_values().collect(),
        alerts,
        actions,
        deploys,
        knowledge,
    })
}
