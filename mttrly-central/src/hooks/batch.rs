//! Group commit for inbound deliveries: alerts from monitoring arrive in bursts (Alertmanager
//! flushes every group at once, several senders in parallel), and each delivery as its own
//! transaction waits its turn for the one writer connection, which the journal writer (audit rows
//! and war-room publishes) holds through every durable commit. So deliveries queue here, and one task writes everything that queued
//! while the previous write ran in a single transaction: the lock is taken once per burst, not
//! once per delivery, and a lone delivery still goes at once (nothing waits for company).
//!
//! Each delivery keeps its own answer: its changes are applied in arrival order within the batch
//! (a resolve after an open of the same key, from two deliveries, sees the open), and the results
//! are split back by position. A failed write fails every delivery of its batch (each sender
//! retries; opening is idempotent, so a retry never doubles an alert).

use mttrly_core::ids::AccountId;
use mttrly_core::{ErrorCode, MttrlyError};
use tokio::sync::{mpsc, oneshot, watch};

use crate::db::Db;
use crate::db::alerts::{InboundApplied, InboundChange};

/// The most deliveries one transaction takes (a bound on its size and on the longest wait).
const MAX_BATCH: usize = 256;

type Answer = oneshot::Sender<Result<Vec<InboundApplied>, MttrlyError>>;

struct Job {
    account: AccountId,
    changes: Vec<InboundChange>,
    answer: Answer,
}

/// The queue in front of the inbound alert writer. Cheap to share; started on first use.
pub struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
}

fn stopped() -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, "central is stopping: the delivery was not applied; send it again")
}

impl Batcher {
    /// Starts the writer task over `db`; it ends when `stop` changes or the batcher is dropped.
    pub fn start(db: Db, stop: Option<watch::Receiver<bool>>) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(db, queue, stop));
        Self { jobs }
    }

    /// Applies one delivery's changes to `account`'s alerts, with whatever else is queued: one
    /// result per change, in order.
    pub async fn apply(
        &self,
        account: AccountId,
        changes: Vec<InboundChange>,
    ) -> Result<Vec<InboundApplied>, MttrlyError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let (answer, result) = oneshot::channel();
        self.jobs.send(Job { account, changes, answer }).map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }
}

async fn run(db: Db, mut queue: mpsc::UnboundedReceiver<Job>, mut stop: Option<watch::Receiver<bool>>) {
    loop {
        let first = match &mut stop {
            Some(stop) => tokio::select! {
                job = queue.recv() => job,
                _ = stop.changed() => None,
            },
            None => queue.recv().await,
        };
        let Some(first) = first else { return };
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // One transaction per account (hooks go to one account, so in practice one), each in
        // arrival order.
        while !jobs.is_empty() {
            let account = jobs[0].account.clone();
            let (mine, rest): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.account == account);
            jobs = rest;
            write(&db, &account, mine).await;
        }
    }
}

async fn write(db: &Db, account: &AccountId, jobs: Vec<Job>) {
    let counts: Vec<usize> = jobs.iter().map(|j| j.changes.len()).collect();
    let mut changes = Vec::with_capacity(counts.iter().sum());
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        changes.extend(job.changes);
        answers.push(job.answer);
    }
    match db.account(account).alerts().apply_inbound(changes).await {
        Ok(applied) => {
            let mut applied = applied.into_iter();
            for (answer, count) in answers.into_iter().zip(counts) {
                // The sender may have gone (its client hung up); the write stands either way.
                let _ = answer.send(Ok(applied.by_ref().take(count).collect()));
            }
        }
        Err(e) => {
            tracing::error!(error = %mttrly_core::ErrorChain(&e), deliveries = answers.len(), "inbound alerts not written");
            for answer in answers {
                let _ = answer.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use mttrly_core::Plan;
    use mttrly_core::ids::AlertId;
    use mttrly_core::tools::common::Severity;

    use super::*;
    use crate::db::alerts::NewUnmatchedAlert;

    fn open(fingerprint: &str) -> InboundChange {
        InboundChange::OpenUnmatched(NewUnmatchedAlert {
            id: AlertId::generate(),
            source: "alertmanager".into(),
            fingerprint: fingerprint.into(),
            name: "HostDown".into(),
            host: Some("gone-1".into()),
            severity: Severity::Warning,
            summary: "down".into(),
            labels: std::collections::BTreeMap::default(),
            opened_at: 1,
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_deliveries_each_get_their_own_answers_and_open_each_alert_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (account, _) = db.create_tenant("a", Plan::DeploymentCrew, "admin", &[1; 32]).await.unwrap();
        let batcher = Arc::new(Batcher::start(db.clone(), None));
        // 40 deliveries at once, each of 1 to 5 alerts out of 10 fingerprints: many overlap.
        let tasks: Vec<_> = (0..40usize)
            .map(|d| {
                let (batcher, account) = (Arc::clone(&batcher), account.clone());
                let changes: Vec<InboundChange> = (0..=d % 5).map(|i| open(&format!("fp-{}", (d + i) % 10))).collect();
                let count = changes.len();
                tokio::spawn(async move { (count, batcher.apply(account, changes).await.unwrap()) })
            })
            .collect();
        let mut opened = 0;
        for task in tasks {
            let (count, applied) = task.await.unwrap();
            assert_eq!(applied.len(), count, "one answer per change of that delivery");
            opened += applied.iter().filter(|a| matches!(a, InboundApplied::Opened(true))).count();
        }
        assert_eq!(opened, 10, "each fingerprint opened exactly once across all deliveries");
        assert!(batcher.apply(account, Vec::new()).await.unwrap().is_empty());
    }
}
