//! Group commit for notifications: publishes that arrive together are written in one transaction
//! and made durable with one `fsync`.
//!
//! A team in an incident, its assistants and central's own posts publish in bursts; one
//! transaction (and one disk flush) per notification caps the war room at what the disk can flush
//! per second. Here a dedicated thread takes every publish queued since its last commit (up to
//! [`MAX_BATCH`]), writes each under its own savepoint (so one refused publish, an unknown channel
//! say, leaves the others and the database untouched), commits once with `synchronous = FULL`
//! (the WAL is flushed to disk before anyone is answered: a published notification survives a
//! power cut, not only a crash), then answers each publisher. Nothing waits on a timer: a lone
//! publish is committed at once, and the batch grows only while the previous commit runs.
//!
//! The thread shares the one writer connection (and its mutex) with [`super::Sqlite::call`], so
//! publishes serialise with every other write as before.
//!
//! WAL checkpoints are kept off the batch's commit: SQLite's automatic checkpoint runs inside the
//! commit that crosses its threshold (1,000 pages), on this thread, and the profile of the
//! storage path put it at about a tenth of the writer's time, during which no publisher was
//! answered. The writer turns the automatic checkpoint off for its own commits only (every other
//! write on the connection keeps it) and wakes a checkpointer thread, on a connection of its own,
//! which runs a `PASSIVE` checkpoint (it never blocks a writer or a reader) at most every
//! [`CHECKPOINT_PAUSE`]. Durability does not depend on it: a commit is on disk once its WAL
//! frames are; the checkpoint only copies them into the database file and lets the WAL restart.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mttrly_core::ids::AccountId;
use mttrly_core::{ErrorCode, MttrlyError};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::db::warroom::NewNotification;

/// The most publishes one transaction carries: enough to amortise the flush, few enough that the
/// writer connection is never held for long (each row is tens of microseconds).
pub(in crate::db) const MAX_BATCH: usize = 512;

pub(in crate::db) use super::warroom::Published;

/// The shortest time between two checkpoints of the checkpointer thread: under a steady stream of
/// publishes, ten checkpoints a second, each copying what the last tenth of a second wrote (a few
/// hundred pages at 10,000 publishes a second, about what one automatic checkpoint copies); idle,
/// none at all, as the thread only wakes after a commit.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(100);

struct Job {
    account: AccountId,
    new: NewNotification,
    done: oneshot::Sender<Published>,
}

/// The queue to the notification writer thread. The thread ends when the last handle is dropped,
/// and the checkpointer thread after it.
pub(in crate::db) struct Publisher {
    queue: mpsc::Sender<Job>,
    /// Checkpoints the checkpointer thread has completed (none without one): for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    checkpoints: Arc<AtomicU64>,
}

/// The writer's handle on the checkpointer thread.
struct Checkpointer {
    wake: mpsc::SyncSender<()>,
    /// The writer connection's own automatic checkpoint threshold, restored after each batch.
    pages: i64,
}

impl Publisher {
    /// Starts the writer thread on `conn`, the database's writer connection, and the
    /// checkpointer on a connection of its own. Without one (an in-memory database, or the file
    /// cannot be opened again) the batches keep SQLite's automatic checkpoint.
    pub(in crate::db) fn start(conn: Arc<Mutex<Connection>>) -> std::io::Result<Self> {
        let checkpoints = Arc::new(AtomicU64::new(0));
        let checkpointer = {
            let guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            start_checkpointer(&guard, Arc::clone(&checkpoints))?
        };
        let (queue, jobs) = mpsc::channel();
        std::thread::Builder::new()
            .name("mttrly-notify-writer".to_owned())
            .spawn(move || run(&conn, &jobs, checkpointer.as_ref()))?;
        Ok(Self { queue, checkpoints })
    }

    /// How many checkpoints the checkpointer thread has completed.
    #[cfg(test)]
    pub(in crate::db) fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::Relaxed)
    }

    /// Stores `new` in `account`'s war room with whatever else is being published now.
    pub(in crate::db) async fn publish(&self, account: AccountId, new: NewNotification) -> Published {
        let (done, answer) = oneshot::channel();
        self.queue.send(Job { account, new, done }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, "the notification writer is not running")
}

/// Opens the checkpointer's connection on the writer's file and starts its thread; `Ok(None)`
/// when there is no file to open again.
fn start_checkpointer(writer: &Connection, done: Arc<AtomicU64>) -> std::io::Result<Option<Checkpointer>> {
    let Some(path) = writer.path().filter(|p| !p.is_empty()).map(std::path::PathBuf::from) else {
        return Ok(None);
    };
    let pages = match writer.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get::<_, i64>(0)) {
        Ok(pages) => pages,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the automatic checkpoint threshold; publishes keep it");
            return Ok(None);
        }
    };
    let conn = match Connection::open(&path) {
        Ok(conn) => conn,
        Err(err) => {
            tracing::warn!(error = %err, "cannot open the checkpointer's connection; publishes keep the automatic checkpoint");
            return Ok(None);
        }
    };
    if let Err(err) = conn.busy_handler(Some(super::busy_wait)) {
        tracing::warn!(error = %err, "cannot set the checkpointer's busy handler");
    }
    // One pending wake-up is enough: commits made while a checkpoint runs are all copied by the
    // next one.
    let (wake, woken) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("mttrly-checkpoint".to_owned())
        .spawn(move || checkpoints(&conn, &woken, &done))?;
    Ok(Some(Checkpointer { wake, pages }))
}

/// The checkpointer thread: after a commit, one `PASSIVE` checkpoint, then a pause. Ends when
/// the writer thread (the only sender) has ended.
fn checkpoints(conn: &Connection, woken: &mpsc::Receiver<()>, done: &AtomicU64) {
    while woken.recv().is_ok() {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))) {
            Ok((frames, copied)) => {
                done.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(frames, copied, "checkpoint");
            }
            Err(err) => tracing::warn!(error = %err, "WAL checkpoint failed; the next commit retries it"),
        }
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
}

/// Turns the writer connection's automatic checkpoint to `pages` (0: off).
fn set_autocheckpoint(conn: &Connection, pages: i64) {
    if let Err(err) = conn.pragma_update(None, "wal_autocheckpoint", pages) {
        tracing::warn!(error = %err, pages, "cannot set the automatic checkpoint threshold");
    }
}

fn run(conn: &Mutex<Connection>, jobs: &mpsc::Receiver<Job>, checkpointer: Option<&Checkpointer>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let items: Vec<(&AccountId, &NewNotification)> = batch.iter().map(|j| (&j.account, &j.new)).collect();
        // A bug in one batch answers its publishers with an error; the writer goes on serving.
        let written = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            if checkpointer.is_some() {
                set_autocheckpoint(&guard, 0);
            }
            let written = super::warroom::publish_batch(&mut guard, &items);
            if let Some(checkpointer) = checkpointer {
                // Every other write on this connection checkpoints as before.
                set_autocheckpoint(&guard, checkpointer.pages);
            }
            written
        }));
        if let Some(checkpointer) = checkpointer {
            // Full means a wake-up is already pending.
            let _ = checkpointer.wake.try_send(());
        }
        let results: Vec<Published> = match written {
            Ok(Ok(results)) => results,
            Ok(Err(err)) => vec![Err(err); batch.len()],
            Err(_) => {
                tracing::error!(count = batch.len(), "the notification writer panicked on a batch");
                // The panic may have skipped the restore above: other writes keep their checkpoint.
                if let Some(checkpointer) = checkpointer {
                    set_autocheckpoint(&conn.lock().unwrap_or_else(PoisonError::into_inner), checkpointer.pages);
                }
                vec![Err(MttrlyError::new(ErrorCode::InternalError, "internal database error")); batch.len()]
            }
        };
        for (job, result) in batch.into_iter().zip(results) {
            // A publisher that gave up (its request was cancelled) is not waiting: its row stands.
            let _ = job.done.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use mttrly_core::ids::{NotificationId, UserId};
    use mttrly_core::tools::notify::{Priority, Sender};
    use mttrly_core::{Plan, Role, Source};

    use crate::db::Db;
    use crate::db::warroom::NewNotification;

    /// The batches' checkpoints run on the checkpointer thread, and the writer connection keeps
    /// its automatic checkpoint for every other write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_are_checkpointed_off_the_writer_which_keeps_its_automatic_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (a, _) = db.create_tenant("a", Plan::DeploymentCrew, "alice", &[1; 32]).await.unwrap();
        let sender = Sender {
            user_id: Some(UserId::generate()),
            name: "alice".into(),
            role: Some(Role::Operator),
            ai_tool: None,
            via: Source::Cli,
        };
        let room = db.account(&a).warroom();
        room.create_channel("incidents".into(), String::new(), sender.clone(), 1, 0).await.unwrap();
        assert_eq!(db.sqlite.publisher.checkpoints(), 0, "nothing published, nothing to checkpoint");
        for at in 0..20 {
            let new = NewNotification {
                id: NotificationId::generate(),
                channel: "incidents".into(),
                thread_id: None,
                in_reply_to: None,
                title: "t".into(),
                body: "b".into(),
                priority: Priority::High,
                theme: None,
                tags: Vec::new(),
                server_id: None,
                sender: sender.clone(),
                redactions: 0,
                published_at: at,
            };
            room.publish(new).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while db.sqlite.publisher.checkpoints() == 0 {
            assert!(Instant::now() < deadline, "no checkpoint within 10 s of the publishes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pages: i64 = db
            .sqlite
            .call(|conn| Ok(conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).unwrap()))
            .await
            .unwrap();
        assert_eq!(pages, 1000, "SQLite's default threshold, restored after each batch");
    }
}
