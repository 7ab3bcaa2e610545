//! Proactive events, their false-positive budgets, and each user's brief cursor.
//!
//! An event's row and its budget change in one transaction: the state an event is stored with
//! (`new` or `muted`) is decided from the budget as it is when the row is written, and an
//! acknowledgement counts in the budget exactly once (a second identical acknowledgement changes
//! nothing). The SQL is in `sqlite/proactive.rs`; the rules in `crate::proactive::budget`.

use mttrly_core::MttrlyError;
use mttrly_core::ids::{EventId, ServerId, UserId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::proactive::{
    BriefAction, BriefAlert, BriefDeploy, BriefKnowledge, EventVerdict, ProactiveEvent, ProactiveEventAck,
};

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

/// Who acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct Acker {
    /// The accountable user.
    pub user_id: UserId,
    /// Their display name.
    pub name: String,
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

/// Everything a brief shows, read in the transaction that moves the cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct BriefRows {
    /// The window's start (ms).
    pub since: i64,
    /// The window's end (ms).
    pub until: i64,
    /// Whether the user had no cursor.
    pub first: bool,
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

    /// Reads `user`'s brief up to `now` (ms) and moves their cursor there, in one transaction, so
    /// two briefs never overlap or leave a gap. A first brief looks back `first_window_ms`.
    pub async fn brief(&self, user: &UserId, now: i64, first_window_ms: i64) -> Result<BriefRows, MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::proactive::brief(conn, &account, &user, now, first_window_ms))
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mttrly_core::tools::proactive::EventState;
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

    #[tokio::test]
    async fn the_budget_mutes_acks_count_once_and_briefs_are_per_user_and_per_tenant() {
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
        let mine = db.account(&account).proactive();
        let theirs = db.account(&other).proactive();
        let by = Acker { user_id: alice.clone(), name: "alice".into() };
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
        let eve_by = Acker { user_id: eve.clone(), name: "eve".into() };
        let outcome =
            theirs.acknowledge(&muted.event_id, EventVerdict::Accepted, None, eve_by, now + 30).await.unwrap();
        assert_eq!(outcome, AckOutcome::NotFound);
        assert_eq!(mine.get(&muted.event_id).await.unwrap().unwrap().state, EventState::Muted, "untouched");

        // Alice's first brief: the 24 h window; the next one starts where it ended.
        let brief = mine.brief(&alice, now + 40, DAY).await.unwrap();
        assert!(brief.first);
        assert_eq!((brief.since, brief.until), (now + 40 - DAY, now + 40));
        assert_eq!(brief.events.len(), 3, "the three announced ones");
        assert_eq!(brief.mutes.len(), 1);
        assert_eq!(brief.mutes[0].muted_events, 1);
        assert_eq!(brief.mutes[0].latest_event_id.as_ref(), Some(&muted.event_id));
        assert!(brief.mutes[0].reason.starts_with("3 false positives in a row"), "{}", brief.mutes[0].reason);
        let next = mine.brief(&alice, now + 50, DAY).await.unwrap();
        assert!(!next.first && next.events.is_empty());
        assert_eq!(next.since, now + 40);
        assert_eq!(next.mutes.len(), 1, "a running mute is still said, with nothing new held back");
        assert_eq!(next.mutes[0].muted_events, 0);
        // Eve's brief is her tenant's: nothing of Alice's.
        let eves = theirs.brief(&eve, now + 50, DAY).await.unwrap();
        assert!(eves.events.is_empty() && eves.mutes.is_empty());
    }
}
