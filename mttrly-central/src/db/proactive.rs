//! Proactive events, their false-positive budgets, and the brief's reads.
//!
//! An event's row and its budget change in one transaction: the state an event is stored with
//! (`new` or `muted`) is decided from the budget as it is when the row is written, and a person's
//! acknowledgement counts in the budget exactly once (a second identical acknowledgement changes
//! nothing); an assistant's is a suggestion and counts nowhere. A brief only reads. The SQL is in
//! `sqlite/proactive.rs`; the rules in `crate::proactive::budget`.

use mttrly_core::ids::{EventId, ServerId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::proactive::{
    BriefAction, BriefAlert, BriefDeploy, BriefKnowledge, EventVerdict, ProactiveEvent, ProactiveEventAck,
};
use mttrly_core::{MttrlyError, Principal, Source};

use super::{Account, sqlite};

/// An event to store, already redacted and worded by central.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The server that raised it.
    pub server_id: ServerId,
    /// The detectors, joined with `+`, or `near_miss`.
    pub detector: String,
    /// The metric.
    pub metric: String,
    /// How serious.
    pub severity: Severity,
    /// One line, written by central.
    pub summary: String,
    /// The anomalous value.
    pub value: f64,
    /// The baseline or threshold.
    pub baseline: f64,
    /// Consecutive intervals.
    pub intervals: u32,
    /// The rest of what the sender said (scores, direction, its clock), as a JSON object.
    pub details_json: String,
    /// When central received it (ms): the time the brief and the budget go by.
    pub detected_at: i64,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, PartialEq)]
pub enum AckOutcome {
    /// No such event in this account.
    NotFound,
    /// It already carries the other verdict (the first acknowledgement stands).
    Conflict(EventVerdict),
    /// Recorded (or found already recorded with the same verdict: `counted` is false).
    Done(ProactiveEventAck),
}

/// Who acknowledged, and through what: the principal that really acted (a person, or an
/// assistant session on a person's behalf), never just the accountable human.
#[derive(Debug, Clone, PartialEq)]
pub struct Acker {
    /// The person, or the assistant and whom it acts for.
    pub principal: Principal,
    /// The channel (CLI, chat, dashboard, MCP).
    pub via: Source,
}

/// A muted key as the brief reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct MuteRow {
    /// The server.
    pub server_id: ServerId,
    /// The detector.
    pub detector: String,
    /// The metric.
    pub metric: String,
    /// Why.
    pub reason: String,
    /// Until when (ms).
    pub muted_until: i64,
    /// Events held back in the window.
    pub muted_events: u32,
    /// The latest of them.
    pub latest_event_id: Option<EventId>,
}

/// Everything a brief shows, read in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct BriefRows {
    /// The window's start (ms).
    pub since: i64,
    /// The window's end (ms): `now`, or earlier when a section was cut at its limit.
    pub until: i64,
    /// When it was read (ms).
    pub now: i64,
    /// Whether the caller gave no start.
    pub first: bool,
    /// Rows after `until` left for the next brief.
    pub more_items: u64,
    /// Announced events in the window (not muted), oldest first.
    pub events: Vec<ProactiveEvent>,
    /// Muted keys.
    pub mutes: Vec<MuteRow>,
    /// Open alerts.
    pub alerts: Vec<BriefAlert>,
    /// Pending actions, and failed or expired ones in the window.
    pub actions: Vec<BriefAction>,
    /// Deploys in the window (empty while this central has no deploys table).
    pub deploys: Vec<BriefDeploy>,
    /// Knowledge in the window (empty while this central has no knowledge table).
    pub knowledge: Vec<BriefKnowledge>,
}

/// A tenant's proactive events. Built by [`Account::proactive`].
pub struct Proactive<'a> {
    pub(super) account: Account<'a>,
}

impl Proactive<'_> {
    /// Stores an event, muted when its key's budget is spent; returns the stored event.
    pub async fn record(&self, event: NewEvent) -> Result<ProactiveEvent, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.call(move |conn| sqlite::proactive::record(conn, &account, &event)).await
    }

    /// One event of this account.
    pub async fn get(&self, id: &EventId) -> Result<Option<ProactiveEvent>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.read(move |conn| sqlite::proactive::get(conn, &account, &id)).await
    }

    /// Records a verdict on an event at `now` (ms), updating its key's budget once.
    pub async fn acknowledge(
        &self,
        id: &EventId,
        verdict: EventVerdict,
        note: Option<String>,
        by: Acker,
        now: i64,
    ) -> Result<AckOutcome, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::proactive::acknowledge(conn, &account, &id, verdict, note.as_deref(), &by, now))
            .await
    }

    /// Reads the brief of `(since, now]` (ms), or of `(now - first_window_ms, now]` without a
    /// `since`. Changes nothing: the end of the window it returns is the next call's `since`.
    pub async fn brief(&self, since: Option<i64>, now: i64, first_window_ms: i64) -> Result<BriefRows, MttrlyError> {
        let account = self.account.id.clone();
        let start = since.unwrap_or_else(|| now.saturating_sub(first_window_ms));
        self.account
            .db
            .sqlite
            .read(move |conn| sqlite::proactive::brief(conn, &account, start, now, since.is_none()))
            .await
    }
}

impl super::Maintenance<'_> {
    /// Removes proactive events, deploys and deploy verifications past each account's retention
    /// (`retention_ms_for` its plan) and the budgets left with nothing; returns the rows removed.
    pub async fn purge_incident_memory(
        &self,
        now: i64,
        retention_ms_for: impl Fn(Option<mttrly_core::Plan>) -> i64 + Send + 'static,
    ) -> Result<usize, MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::proactive::purge_incident_memory(conn, now, retention_ms_for)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mttrly_core::tools::proactive::{AckRecordedAs, EventState};
    use mttrly_core::{Environment, Plan};

    use super::*;
    use crate::db::Db;
    use crate::db::servers::Registered;

    const DAY: i64 = 86_400_000;

    fn event(server: &ServerId, at: i64) -> NewEvent {
        NewEvent {
            server_id: server.clone(),
            detector: "ewma+mad".into(),
            metric: "cpu_percent".into(),
            severity: Severity::Warning,
            summary: "cpu_percent rose".into(),
            value: 90.0,
            baseline: 20.0,
            intervals: 3,
            details_json: "{}".into(),
            detected_at: at,
        }
    }

    struct Setup {
        _dir: tempfile::TempDir,
        db: Db,
        account: mttrly_core::ids::AccountId,
        other: mttrly_core::ids::AccountId,
        alice: Acker,
        eve: Acker,
        server: ServerId,
    }

    async fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (account, alice) = db.create_tenant("a", Plan::DeploymentCrew, "alice", &[1; 32]).await.unwrap();
        let (other, eve) = db.create_tenant("b", Plan::DeploymentCrew, "eve", &[2; 32]).await.unwrap();
        let Registered::Added(server) = db
            .account(&account)
            .servers()
            .register("web", Environment::Production, &[3; 32], i64::MAX, 10)
            .await
            .unwrap()
        else {
            panic!("under the limit")
        };
        let human = |user_id, name: &str| Acker {
            principal: Principal::Human { user_id, name: name.into() },
            via: Source::Cli,
        };
        Setup { alice: human(alice, "alice"), eve: human(eve, "eve"), _dir: dir, db, account, other, server }
    }

    fn assistant_of(human: &Acker) -> Acker {
        Acker {
            principal: Principal::Assistant {
                session_id: mttrly_core::ids::AssistantSessionId::generate(),
                client_name: "claude-code".into(),
                on_behalf_of: human.principal.accountable_user().clone(),
            },
            via: Source::Mcp,
        }
    }

    #[tokio::test]
    async fn the_budget_mutes_acks_count_once_and_briefs_are_per_tenant_and_pure() {
        let Setup { _dir, db, account, other, alice, eve, server, .. } = setup().await;
        let mine = db.account(&account).proactive();
        let theirs = db.account(&other).proactive();
        let by = alice;
        let now = 1_800_000_000_000;

        let mut ids = Vec::new();
        for i in 0..3 {
            let e = mine.record(event(&server, now + i)).await.unwrap();
            assert_eq!(e.state, EventState::New);
            ids.push(e.event_id);
        }
        let ack = |id: EventId, verdict| {
            let by = by.clone();
            let mine = &mine;
            async move { mine.acknowledge(&id, verdict, None, by, now + 10).await.unwrap() }
        };
        let AckOutcome::Done(first) = ack(ids[0].clone(), EventVerdict::FalsePositive).await else { panic!() };
        assert!(first.counted && !first.detector_muted);
        let AckOutcome::Done(again) = ack(ids[0].clone(), EventVerdict::FalsePositive).await else { panic!() };
        assert!(!again.counted, "acknowledging twice counts once");
        assert_eq!(again.false_positive_budget_remaining, 2);
        assert_eq!(
            ack(ids[0].clone(), EventVerdict::Accepted).await,
            AckOutcome::Conflict(EventVerdict::FalsePositive)
        );
        ack(ids[1].clone(), EventVerdict::FalsePositive).await;
        let AckOutcome::Done(muting) = ack(ids[2].clone(), EventVerdict::FalsePositive).await else { panic!() };
        assert!(muting.detector_muted);
        assert_eq!(muting.muted_until.map(jiff::Timestamp::as_millisecond), Some(now + 10 + DAY));

        // Muted events are stored, not dropped; another tenant cannot see or acknowledge them.
        let muted = mine.record(event(&server, now + 20)).await.unwrap();
        assert_eq!(muted.state, EventState::Muted);
        assert!(mine.get(&muted.event_id).await.unwrap().is_some());
        assert_eq!(theirs.get(&muted.event_id).await.unwrap(), None);
        let outcome = theirs.acknowledge(&muted.event_id, EventVerdict::Accepted, None, eve, now + 30).await.unwrap();
        assert_eq!(outcome, AckOutcome::NotFound);
        assert_eq!(mine.get(&muted.event_id).await.unwrap().unwrap().state, EventState::Muted, "untouched");

        // Without `since`: the last 24 h. Reading twice reads the same: nothing moved.
        let brief = mine.brief(None, now + 40, DAY).await.unwrap();
        assert!(brief.first);
        assert_eq!((brief.since, brief.until, brief.more_items), (now + 40 - DAY, now + 40, 0));
        assert_eq!(brief.events.len(), 3, "the three announced ones");
        assert_eq!(brief.mutes.len(), 1);
        assert_eq!(brief.mutes[0].muted_events, 1);
        assert_eq!(brief.mutes[0].latest_event_id.as_ref(), Some(&muted.event_id));
        assert!(brief.mutes[0].reason.starts_with("3 false positives in a row"), "{}", brief.mutes[0].reason);
        assert_eq!(mine.brief(None, now + 40, DAY).await.unwrap(), brief, "a brief is a pure read");
        // From where it ended: nothing new.
        let next = mine.brief(Some(brief.until), now + 50, DAY).await.unwrap();
        assert!(!next.first && next.events.is_empty());
        assert_eq!(next.since, now + 40);
        assert_eq!(next.mutes.len(), 1, "a running mute is still said, with nothing new held back");
        assert_eq!(next.mutes[0].muted_events, 0);
        // Eve's brief is her tenant's: nothing of Alice's.
        let eves = theirs.brief(None, now + 50, DAY).await.unwrap();
        assert!(eves.events.is_empty() && eves.mutes.is_empty());
    }

    /// A window holding more than a brief shows is cut at the last item shown, never past one it
    /// did not show: before, the cursor jumped to now and everything after the limit was lost, so
    /// an agent flooding events blinded the account's brief for good.
    #[tokio::test]
    async fn a_crowded_window_ends_at_the_last_item_shown_and_the_rest_waits() {
        let Setup { _dir, db, account, .. } = setup().await;
        let mine = db.account(&account).proactive();
        let now = 1_800_000_000_000;
        let total = sqlite::proactive::BRIEF_EVENTS_FOR_TESTS + 25;
        db.with_connection_for_tests(move |conn| {
            let tx = conn.transaction()?;
            for i in 0..total {
                let at = now + i64::try_from(i).unwrap_or(0);
                tx.execute(
                    "INSERT INTO proactive_events (id, account_id, server_id, detector, metric, severity, summary, value,
                         baseline, intervals, details_json, detected_at, state)
                     VALUES (?1, ?2, ?3, 'ewma+mad', 'cpu_percent', 'warning', 's', 1.0, 0.0, 3, '{}', ?4, 'new')",
                    rusqlite::params![EventId::generate().as_str(), account_str(&tx)?, server_str(&tx)?, at],
                )?;
            }
            tx.commit()
        })
        .await
        .unwrap();
        let end = now + 100_000;
        let first = mine.brief(Some(now - 1), end, DAY).await.unwrap();
        assert_eq!(first.events.len(), sqlite::proactive::BRIEF_EVENTS_FOR_TESTS);
        let last_shown = first.events.last().unwrap().detected_at.as_millisecond();
        assert_eq!(first.until, last_shown, "the window ends at the last item shown");
        assert_eq!(first.more_items, 25);
        let rest = mine.brief(Some(first.until), end, DAY).await.unwrap();
        assert_eq!((rest.events.len(), rest.until, rest.more_items), (25, end, 0), "nothing lost");
        let mut seen: Vec<_> = first.events.iter().chain(&rest.events).map(|e| e.event_id.clone()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), total, "every event once");
    }

    fn account_str(conn: &rusqlite::Connection) -> rusqlite::Result<String> {
        conn.query_row("SELECT id FROM accounts WHERE name = 'a'", [], |r| r.get(0))
    }

    fn server_str(conn: &rusqlite::Connection) -> rusqlite::Result<String> {
        conn.query_row("SELECT id FROM servers WHERE name = 'web'", [], |r| r.get(0))
    }

    /// An assistant's acknowledgement is a suggestion: it is kept with the client it came
    /// through and shown on the event, but it neither sets the event's state nor counts in the
    /// budget, so no number of them mutes a detector. A person's verdict still does.
    #[tokio::test]
    async fn an_assistants_acknowledgement_is_a_suggestion_and_never_mutes() {
        let Setup { _dir, db, account, alice, server, .. } = setup().await;
        let mine = db.account(&account).proactive();
        let now = 1_800_000_000_000;
        let bot = assistant_of(&alice);
        for i in 0..5 {
            let e = mine.record(event(&server, now + i)).await.unwrap();
            let AckOutcome::Done(ack) =
                mine.acknowledge(&e.event_id, EventVerdict::FalsePositive, None, bot.clone(), now + 10).await.unwrap()
            else {
                panic!()
            };
            assert_eq!((ack.recorded_as, ack.counted, ack.state), (AckRecordedAs::Suggestion, false, EventState::New));
            assert!(!ack.detector_muted, "an assistant muted the detector at its {}th false positive", i + 1);
            let stored = mine.get(&e.event_id).await.unwrap().unwrap();
            let suggestion = stored.suggestion.unwrap();
            assert_eq!(
                (suggestion.verdict, suggestion.client_name.as_str()),
                (EventVerdict::FalsePositive, "claude-code")
            );
            assert_eq!(&suggestion.on_behalf_of, alice.principal.accountable_user());
            assert_eq!(stored.state, EventState::New);
        }
        assert_eq!(mine.record(event(&server, now + 20)).await.unwrap().state, EventState::New, "not muted");
        // The person's verdict on a suggested event counts.
        let e = mine.record(event(&server, now + 30)).await.unwrap();
        let AckOutcome::Done(ack) =
            mine.acknowledge(&e.event_id, EventVerdict::FalsePositive, None, alice, now + 40).await.unwrap()
        else {
            panic!()
        };
        assert_eq!((ack.recorded_as, ack.counted), (AckRecordedAs::Verdict, true));
        let acked_via: String = db
            .with_connection_for_tests(move |c| {
                c.query_row("SELECT acked_via FROM proactive_events WHERE id = ?1", [e.event_id.as_str()], |r| r.get(0))
            })
            .await
            .unwrap();
        assert_eq!(acked_via, "cli");
    }

    /// Past the plan's retention, events, deploys and their verifications go, and a budget with
    /// no event left and no running mute goes with them; a running mute stays.
    #[tokio::test]
    async fn the_retention_purge_takes_old_incident_memory() {
        let Setup { _dir, db, account, alice, server, .. } = setup().await;
        let mine = db.account(&account).proactive();
        let old = 1_000;
        let recent = 100 * DAY;
        let e = mine.record(event(&server, old)).await.unwrap();
        mine.acknowledge(&e.event_id, EventVerdict::FalsePositive, None, alice, old).await.unwrap();
        let mut other_metric = event(&server, recent);
        other_metric.metric = "load_1".into();
        let kept = mine.record(other_metric).await.unwrap();
        let acc = account.as_str().to_owned();
        let srv = server.as_str().to_owned();
        db.with_connection_for_tests(move |c| {
            c.execute(
                "INSERT INTO deploys (id, account_id, server_id, external_id, service, version, started_at, status, source,
                     recorded_at, updated_at) VALUES ('dep_old', ?1, ?2, 'x1', 'web', '1', ?3, 'succeeded', 'cli', ?3, ?3)",
                rusqlite::params![acc, srv, old],
            )?;
            c.execute(
                "INSERT INTO deploy_verifications (id, account_id, server_id, deploy_id, verdict, evidence_json, checked_at)
                 VALUES ('ver_old', ?1, ?2, 'dep_old', 'pass', '{}', ?3)",
                rusqlite::params![acc, srv, recent],
            )?;
            c.execute(
                "INSERT INTO proactive_budgets (account_id, server_id, detector, metric, fp_run, fp_total, acked_total,
                     mutes, muted_until, muted_events) VALUES (?1, ?2, 'near_miss', 'memory_percent', 0, 0, 0, 1, ?3, 0)",
                rusqlite::params![acc, srv, recent + DAY],
            )
        })
        .await
        .unwrap();
        let removed = db.maintenance().purge_incident_memory(recent + 1, |_| 30 * DAY).await.unwrap();
        assert_eq!(removed, 4, "the old event, its budget, the old deploy and its verification");
        assert!(mine.get(&e.event_id).await.unwrap().is_none());
        assert!(mine.get(&kept.event_id).await.unwrap().is_some());
        let left: (i64, i64, i64) = db
            .with_connection_for_tests(|c| {
                c.query_row(
                    "SELECT (SELECT count(*) FROM deploys), (SELECT count(*) FROM deploy_verifications),
                         (SELECT count(*) FROM proactive_budgets)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .await
            .unwrap();
        assert_eq!(left, (0, 0, 1), "the running mute's budget stays");
    }
}
