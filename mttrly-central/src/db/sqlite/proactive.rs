//! Proactive events, budgets and brief cursors: the SQL (the rules are `crate::proactive::budget`).

use std::collections::BTreeMap;

use mttrly_core::ids::{AccountId, ActionId, AlertId, EventId, ServerId, UserId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::proactive::{
    AckRecordedAs, BriefAction, BriefAlert, BriefDeploy, BriefKnowledge, EventState, EventVerdict, ProactiveEvent,
    ProactiveEventAck, VerdictSuggestion,
};
use mttrly_core::{MttrlyError, Principal};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::internal;
use crate::db::proactive::{AckOutcome, Acker, BriefRows, MuteRow, NewEvent};
use crate::db::timestamp;
use crate::proactive::budget::{self, Budget};

/// Most rows of each kind one brief reads: a brief is a digest, not an export.
const BRIEF_ROWS: usize = 500;

/// Most events read for a brief's anomalies (they are grouped per server and metric after).
#[cfg(not(test))]
const BRIEF_EVENTS: usize = 10_000;
/// Small under test, so a test can fill a window past it cheaply.
#[cfg(test)]
const BRIEF_EVENTS: usize = 40;
/// [`BRIEF_EVENTS`], for the tests that fill a brief past it.
#[cfg(test)]
pub(in crate::db) const BRIEF_EVENTS_FOR_TESTS: usize = BRIEF_EVENTS;

const EVENT_COLUMNS: &str =
    "id, server_id, detector, metric, severity, summary, value, baseline, intervals, detected_at,
     state, muted_until, suggested_verdict, suggested_via, suggested_by, suggested_at";

fn severity(s: &str) -> Severity {
    Severity::ALL.into_iter().find(|v| v.as_str() == s).unwrap_or(Severity::Warning)
}

fn stored_id<T>(parse: impl Fn(&str) -> Result<T, mttrly_core::ids::InvalidId>, raw: &str) -> rusqlite::Result<T> {
    parse(raw).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn verdict(s: &str) -> Option<EventVerdict> {
    [EventVerdict::Accepted, EventVerdict::FalsePositive].into_iter().find(|v| v.as_str() == s)
}

fn suggestion_of(r: &Row<'_>) -> rusqlite::Result<Option<VerdictSuggestion>> {
    let Some(verdict) = r.get::<_, Option<String>>(12)?.as_deref().and_then(verdict) else { return Ok(None) };
    let (Some(client_name), Some(by), Some(at)) =
        (r.get::<_, Option<String>>(13)?, r.get::<_, Option<String>>(14)?, r.get::<_, Option<i64>>(15)?)
    else {
        return Ok(None);
    };
    Ok(Some(VerdictSuggestion {
        verdict,
        client_name,
        on_behalf_of: stored_id(UserId::parse, &by)?,
        at: timestamp(at),
    }))
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
        suggestion: suggestion_of(r)?,
    })
}

fn load_budget(conn: &Connection, account: &AccountId, e: (&str, &str, &str)) -> Result<Budget, MttrlyError> {
    conn.prepare_cached(
        "SELECT fp_run, fp_total, acked_total, mutes, muted_until, mute_reason, muted_events, recent_verdicts
         FROM proactive_budgets
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
                recent: budget::decode_recent(&r.get::<_, String>(7)?),
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
             muted_until, mute_reason, muted_events, recent_verdicts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (account_id, server_id, detector, metric) DO UPDATE SET fp_run = excluded.fp_run,
             fp_total = excluded.fp_total, acked_total = excluded.acked_total, mutes = excluded.mutes,
             muted_until = excluded.muted_until, mute_reason = excluded.mute_reason, muted_events = excluded.muted_events,
             recent_verdicts = excluded.recent_verdicts",
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
            b.muted_events,
            budget::encode_recent(&b.recent)
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
        suggestion: None,
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

fn state_of(verdict: EventVerdict) -> EventState {
    match verdict {
        EventVerdict::Accepted => EventState::Accepted,
        EventVerdict::FalsePositive => EventState::FalsePositive,
    }
}

/// Records `verdict` on the event. A person's verdict sets its state and counts in its key's
/// budget once; an assistant's is kept as a suggestion beside the event and touches neither.
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
            "SELECT server_id, detector, metric, ack_verdict, state FROM proactive_events WHERE id = ?1 AND account_id = ?2",
            params![id.as_str(), account.as_str()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((server, detector, metric, previous, state)) = row else {
        return Ok(AckOutcome::NotFound);
    };
    let key = (server.as_str(), detector.as_str(), metric.as_str());
    let mut budget = load_budget(&tx, account, key)?;
    let (recorded_as, counted, state) = match &by.principal {
        Principal::Assistant { client_name, on_behalf_of, .. } => {
            // The latest suggestion replaces an earlier one; the event and its budget are as they were.
            tx.execute(
                "UPDATE proactive_events SET suggested_verdict = ?3, suggested_by = ?4, suggested_via = ?5,
                     suggested_note = ?6, suggested_at = ?7 WHERE id = ?1 AND account_id = ?2",
                params![id.as_str(), account.as_str(), verdict.as_str(), on_behalf_of.as_str(), client_name, note, now],
            )
            .map_err(internal)?;
            (AckRecordedAs::Suggestion, false, EventState::parse(&state).unwrap_or(EventState::New))
        }
        Principal::Human { user_id, name } => {
            let counted = match previous.as_deref().and_then(self::verdict) {
                Some(p) if p == verdict => false,
                Some(other) => return Ok(AckOutcome::Conflict(other)),
                None => {
                    match verdict {
                        EventVerdict::Accepted => budget.on_accepted(now),
                        EventVerdict::FalsePositive => {
                            budget.on_false_positive(now);
                        }
                    }
                    save_budget(&tx, account, key, &budget)?;
                    tx.execute(
                        "UPDATE proactive_events SET state = ?3, ack_verdict = ?4, ack_note = ?5, acked_by = ?6,
                             acked_by_name = ?7, acked_via = ?8, acked_at = ?9
                         WHERE id = ?1 AND account_id = ?2 AND ack_verdict IS NULL",
                        params![
                            id.as_str(),
                            account.as_str(),
                            state_of(verdict).as_str(),
                            verdict.as_str(),
                            note,
                            user_id.as_str(),
                            name,
                            by.via.as_str(),
                            now
                        ],
                    )
                    .map_err(internal)?;
                    true
                }
            };
            (AckRecordedAs::Verdict, counted, state_of(verdict))
        }
    };
    tx.commit().map_err(internal)?;
    let muted = budget.is_muted(now);
    let remaining = budget.remaining();
    Ok(AckOutcome::Done(ProactiveEventAck {
        event_id: id.clone(),
        state,
        recorded_as,
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

/// One windowed section of a brief: its rows with their time (ms), oldest first, read up to one
/// more than its limit so the reader knows whether it was cut.
struct Section<T> {
    rows: Vec<(i64, T)>,
    limit: usize,
}

impl<T> Section<T> {
    /// The latest time up to which this section's rows are all in hand: `None` when none was cut
    /// off. Rows sharing the time of the first one left out are left out together, so the next
    /// brief (from that time) starts with all of them.
    fn complete_until(&self, since: i64) -> Option<i64> {
        let (first_left_out, _) = self.rows.get(self.limit)?;
        let end = first_left_out.saturating_sub(1);
        // More than a whole section at one millisecond: take that millisecond whole (the reader
        // then holds more than the limit rather than never moving on).
        Some(if end > since { end } else { *first_left_out })
    }

    /// Whether rows up to `until` were left out (only when `until` is a crowded millisecond).
    fn crowded(&self, until: i64) -> bool {
        self.rows.get(self.limit).is_some_and(|(at, _)| *at <= until)
    }

    /// Its rows up to `until`, without their times.
    fn upto(self, until: i64) -> Vec<T> {
        self.rows.into_iter().take_while(|(at, _)| *at <= until).map(|(_, row)| row).collect()
    }
}

/// Reads one section: rows with their time in `(since, until]`, oldest first, at most `cap`.
fn section<T>(
    tx: &Connection,
    sql: &str,
    account: &AccountId,
    since: i64,
    until: i64,
    cap: usize,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<(i64, T)>,
) -> Result<Vec<(i64, T)>, MttrlyError> {
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    tx.prepare(sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![account.as_str(), since, until, cap], map)?.collect::<Result<Vec<_>, _>>()
        })
        .map_err(internal)
}

fn count(tx: &Connection, sql: &str, account: &AccountId, since: i64, until: i64) -> Result<u64, MttrlyError> {
    tx.query_row(sql, params![account.as_str(), since, until], |r| r.get::<_, i64>(0))
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(internal)
}

/// The windowed sections' SQL: (rows, count) per section; `?2` and `?3` bound the time, `?4`
/// caps the rows. Deploys go by when central learned of them (a CI report may carry an old start).
const EVENTS_SQL: &str = "FROM proactive_events WHERE account_id = ?1 AND detected_at > ?2 AND detected_at <= ?3
     AND muted_until IS NULL";
const ACTIONS_SQL: &str = "FROM actions WHERE account_id = ?1 AND status IN ('failed', 'failed_closed', 'expired')
     AND updated_at > ?2 AND updated_at <= ?3";
const DEPLOYS_SQL: &str = "FROM deploys WHERE account_id = ?1 AND recorded_at > ?2 AND recorded_at <= ?3";
const KNOWLEDGE_SQL: &str =
    "FROM knowledge WHERE account_id = ?1 AND removed_at IS NULL AND created_at > ?2 AND created_at <= ?3";

/// Reads the brief of the window `(since, now]`, cut short where a section reached its limit:
/// the window then ends at the last time all sections hold whole, and the rows after it are
/// counted. Reads only: the position is the caller's to keep.
pub(in crate::db) fn brief(
    conn: &Connection,
    account: &AccountId,
    since: i64,
    now: i64,
    first: bool,
) -> Result<BriefRows, MttrlyError> {
    // One read transaction: every section sees the same moment.
    let tx = conn.unchecked_transaction().map_err(internal)?;
    let since = since.min(now);
    let has_deploys = table_exists(&tx, "deploys")?;
    let has_knowledge = table_exists(&tx, "knowledge")?;

    let read_events = |until: i64, cap: usize| {
        section(
            &tx,
            &format!("SELECT {EVENT_COLUMNS} {EVENTS_SQL} ORDER BY detected_at, id LIMIT ?4"),
            account,
            since,
            until,
            cap,
            |r| event_of(r).map(|e| (e.detected_at.as_millisecond(), e)),
        )
    };
    let read_actions = |until: i64, cap: usize| {
        section(
            &tx,
            &format!(
                "SELECT id, server_id, status, description, updated_at {ACTIONS_SQL} ORDER BY updated_at, id LIMIT ?4"
            ),
            account,
            since,
            until,
            cap,
            |r| {
                let at: i64 = r.get(4)?;
                Ok((
                    at,
                    BriefAction {
                        action_id: stored_id(ActionId::parse, &r.get::<_, String>(0)?)?,
                        server_id: stored_id(ServerId::parse, &r.get::<_, String>(1)?)?,
                        status: r.get(2)?,
                        description: r.get(3)?,
                        updated_at: timestamp(at),
                    },
                ))
            },
        )
    };
    let read_deploys = |until: i64, cap: usize| {
        if !has_deploys {
            return Ok(Vec::new());
        }
        section(
            &tx,
            &format!(
                "SELECT id, server_id, service, version, status, started_at, recorded_at {DEPLOYS_SQL}
                 ORDER BY recorded_at, id LIMIT ?4"
            ),
            account,
            since,
            until,
            cap,
            |r| {
                Ok((
                    r.get(6)?,
                    BriefDeploy {
                        deploy_id: r.get(0)?,
                        server_id: stored_id(ServerId::parse, &r.get::<_, String>(1)?)?,
                        service: r.get(2)?,
                        version: r.get(3)?,
                        status: r.get(4)?,
                        started_at: timestamp(r.get(5)?),
                    },
                ))
            },
        )
    };
    let read_knowledge = |until: i64, cap: usize| {
        if !has_knowledge {
            return Ok(Vec::new());
        }
        section(
            &tx,
            &format!("SELECT id, kind, title, server_id, created_at {KNOWLEDGE_SQL} ORDER BY created_at, id LIMIT ?4"),
            account,
            since,
            until,
            cap,
            |r| {
                let at: i64 = r.get(4)?;
                Ok((
                    at,
                    BriefKnowledge {
                        knowledge_id: r.get(0)?,
                        kind: r.get(1)?,
                        title: r.get(2)?,
                        server_id: r
                            .get::<_, Option<String>>(3)?
                            .map(|s| stored_id(ServerId::parse, &s))
                            .transpose()?,
                        created_at: timestamp(at),
                    },
                ))
            },
        )
    };

    // First pass: each section up to one past its limit, to the end of the window.
    let mut events = Section { rows: read_events(now, BRIEF_EVENTS + 1)?, limit: BRIEF_EVENTS };
    let mut actions = Section { rows: read_actions(now, BRIEF_ROWS + 1)?, limit: BRIEF_ROWS };
    let mut deploys = Section { rows: read_deploys(now, BRIEF_ROWS + 1)?, limit: BRIEF_ROWS };
    let mut knowledge = Section { rows: read_knowledge(now, BRIEF_ROWS + 1)?, limit: BRIEF_ROWS };
    let until = [
        events.complete_until(since),
        actions.complete_until(since),
        deploys.complete_until(since),
        knowledge.complete_until(since),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(now);
    // A section whose end was a single crowded millisecond is read again, whole, up to it.
    if events.crowded(until) {
        events.rows = read_events(until, usize::MAX >> 1)?;
    }
    if actions.crowded(until) {
        actions.rows = read_actions(until, usize::MAX >> 1)?;
    }
    if deploys.crowded(until) {
        deploys.rows = read_deploys(until, usize::MAX >> 1)?;
    }
    if knowledge.crowded(until) {
        knowledge.rows = read_knowledge(until, usize::MAX >> 1)?;
    }
    let mut more_items = 0;
    if until < now {
        more_items += count(&tx, &format!("SELECT count(*) {EVENTS_SQL}"), account, until, now)?;
        more_items += count(&tx, &format!("SELECT count(*) {ACTIONS_SQL}"), account, until, now)?;
        if has_deploys {
            more_items += count(&tx, &format!("SELECT count(*) {DEPLOYS_SQL}"), account, until, now)?;
        }
        if has_knowledge {
            more_items += count(&tx, &format!("SELECT count(*) {KNOWLEDGE_SQL}"), account, until, now)?;
        }
        tracing::info!(account_id = %account, more_items, "a brief's window held more than one brief shows");
    }
    let window = params![account.as_str(), since, until];
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
    for (server_id, detector, metric, muted_until, reason) in active {
        let key = (server_id.as_str().to_owned(), detector.clone(), metric.clone());
        let entry = mutes.entry(key).or_insert_with(|| MuteRow {
            server_id,
            detector,
            metric,
            reason: String::new(),
            muted_until,
            muted_events: 0,
            latest_event_id: None,
        });
        // The budget is the latest word on why and until when.
        entry.muted_until = muted_until;
        entry.reason = reason;
    }

    // What stands now, not windowed: open alerts and actions waiting for a person.
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
    let mut pending = tx
        .prepare(&format!(
            "SELECT id, server_id, status, description, updated_at FROM actions WHERE account_id = ?1
             AND status = 'pending_approval' ORDER BY updated_at, id LIMIT {BRIEF_ROWS}"
        ))
        .and_then(|mut stmt| {
            stmt.query_map([account.as_str()], |r| {
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
    drop(tx);
    let mut actions = actions.upto(until);
    actions.append(&mut pending);
    actions
        .sort_by(|a, b| a.updated_at.cmp(&b.updated_at).then_with(|| a.action_id.as_str().cmp(b.action_id.as_str())));
    Ok(BriefRows {
        since,
        until,
        now,
        first,
        more_items,
        events: events.upto(until),
        mutes: mutes.into_values().collect(),
        alerts,
        actions,
        deploys: deploys.upto(until),
        knowledge: knowledge.upto(until),
    })
}

/// Removes, per account, what is older than its plan's retention: proactive events, deploy
/// verifications, deploys (with the verifications that point at them), and the budgets left
/// with no event and no running mute (a key's escalation is forgotten with its history). In one
/// transaction; returns the rows removed. Knowledge is kept: it is what people chose to keep.
pub(in crate::db) fn purge_incident_memory(
    conn: &mut Connection,
    now: i64,
    retention_ms_for: impl Fn(Option<mttrly_core::Plan>) -> i64,
) -> Result<usize, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let has_deploys = table_exists(&tx, "deploys")?;
    let mut removed = 0;
    for (account, cutoff) in super::retention_cutoffs(&tx, now, retention_ms_for)? {
        let mut run = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<(), MttrlyError> {
            removed += tx.execute(sql, args).map_err(internal)?;
            Ok(())
        };
        run("DELETE FROM proactive_events WHERE account_id = ?1 AND detected_at < ?2", &[&account, &cutoff])?;
        run(
            "DELETE FROM proactive_budgets AS b WHERE account_id = ?1 AND (muted_until IS NULL OR muted_until <= ?2)
             AND NOT EXISTS (SELECT 1 FROM proactive_events e WHERE e.account_id = b.account_id
                 AND e.server_id = b.server_id AND e.detector = b.detector AND e.metric = b.metric)",
            &[&account, &now],
        )?;
        if has_deploys {
            run(
                "DELETE FROM deploy_verifications WHERE account_id = ?1 AND (checked_at < ?2 OR deploy_id IN
                     (SELECT id FROM deploys WHERE account_id = ?1 AND recorded_at < ?2 AND started_at < ?2))",
                &[&account, &cutoff],
            )?;
            run(
                "DELETE FROM deploys WHERE account_id = ?1 AND recorded_at < ?2 AND started_at < ?2",
                &[&account, &cutoff],
            )?;
        }
    }
    tx.commit().map_err(internal)?;
    Ok(removed)
}
