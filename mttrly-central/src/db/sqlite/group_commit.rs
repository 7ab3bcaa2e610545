//! The journal writer: group commit for war-room notifications and audit rows. Both streams are
//! written in the same transactions and made durable with one `fsync` per batch.
//!
//! A team in an incident, its assistants and central's own posts publish in bursts, and every
//! tool call, decision and agent event appends an audit row; one transaction (and one disk flush)
//! per notification caps the war room at what the disk can flush per second. Here a dedicated
//! thread takes everything queued since its last commit (up to [`MAX_BATCH`] jobs, at most
//! [`MAX_PUBLISHES`] of them publishes), writes it in one transaction (a refused publish, an
//! unknown channel say, leaves the others and the database untouched: see
//! `warroom::publish_in`), commits once with `synchronous = FULL` (the WAL is flushed to disk
//! before anyone is answered: a published notification or an audit row survives a power cut, not
//! only a crash), then answers each publisher and tells each audit row's owner, in chain order.
//! A job someone waits for (a publish, a flush, a row whose producer awaits it or whose event
//! wakes someone) is never held on a timer: it is committed at once, with whatever was queued
//! while the previous commit ran. Rows nobody waits for (tool calls: see
//! `crate::events::Recorded::can_wait`) are held up to [`LINGER`] for company; the first job
//! that cannot wait ends the wait.
//!
//! **Why the linger.** Measured from outside (`scripts/mcp-wrk.sh`, one MCP session under
//! `wrk`, central pinned to one core; BENCHMARKS.md, "The journal writer's linger"), a stream of
//! 9,000 tool calls a second made 1,850 commits a second of 4.6 rows each, 22 page writes and one
//! `fsync` apiece: this thread was 30 % of central's CPU samples, the `fsync` alone 12 %. The
//! rows' callers had been answered already. Held 2 ms, the batches grew to ~40 rows; held 5 ms,
//! a call cost about a third less CPU; 10 ms saved little more, so 5 ms it is. A tool-call row
//! reaches the disk (and the bus, and a live view) up to [`LINGER`] later than it would
//! without the wait, and a crash can lose that much more of the newest tool-call rows (a call is
//! answered before its row is written either way).
//!
//! **Why one writer for both streams.** They used to be two writers, this thread and the audit
//! writer on a connection of its own, each committing with its own `fsync`, and each publish made
//! one of each (the notification, then its tool call's audit row). Measured from outside
//! (`tests/benches/warroom_outside.rs`), the two committed about as often as each other and a
//! batch often waited for the other's commit to release SQLite's one write lock. One writer pays
//! one commit for both.
//!
//! The thread shares the one writer connection (and its mutex) with [`super::Sqlite::call`], so
//! batches serialise with every other write as before.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::Thread;
use std::time::{Duration, Instant};

use mttrly_core::ids::AccountId;
use mttrly_core::{ErrorCode, MttrlyError};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::audit::{Heads, Stored};
use super::internal;
use crate::audit::chain::ChainedRow;
use crate::db::audit::Appended;
use crate::db::warroom::NewNotification;

/// The most jobs one transaction carries: enough to amortise the flush, few enough that the
/// writer connection is never held for long (each row is tens of microseconds).
const MAX_BATCH: usize = 4096;

/// The most publishes one transaction carries (each checks its channel and thread before its
/// insert, so they cost more than an audit row).
const MAX_PUBLISHES: usize = 512;

/// The longest a batch of rows nobody waits for is held for more rows before its commit (see
/// the module's docs): at ten thousand tool calls a second, about fifty rows per commit.
pub(in crate::db) const LINGER: Duration = Duration::from_millis(5);

pub(in crate::db) use super::warroom::Published;

/// The shortest time between two checkpoints of the checkpointer thread: under a steady stream of
/// publishes, ten checkpoints a second, each copying what the last tenth of a second wrote (a few
/// hundred pages at 10,000 publishes a second, about what one automatic checkpoint copies); idle,
/// none at all, as the thread only wakes after a commit.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(100);

/// How many times the automatic checkpoint threshold the WAL may stay after a checkpoint of the
/// checkpointer thread before the writer runs the checkpoint itself (see
/// [`Writer::checkpoint_pages`]): 4,000 pages, 16 MB with 4 KiB pages.
const WAL_BEHIND: i64 = 4;

enum Job {
    Publish {
        account: AccountId,
        /// Boxed: a notification is several times the size of the other jobs.
        new: Box<NewNotification>,
        done: oneshot::Sender<Published>,
    },
    Append {
        item: Box<dyn Appended>,
        /// The item's [`Appended::can_wait`], asked once by the sender: the sender's decision to
        /// wake the writer and the writer's decision to hold the batch are the same answer.
        can_wait: bool,
    },
    /// Answered once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
}

impl Job {
    /// Whether the job may be held for company (see [`LINGER`]).
    fn can_wait(&self) -> bool {
        match self {
            Job::Append { can_wait, .. } => *can_wait,
            Job::Publish { .. } | Job::Flush(_) => false,
        }
    }
}

/// How a job that cannot wait ends the writer's linger: the writer sets `lingering` before it
/// looks at the queue a last time and parks; a sender of such a job queues it, then unparks the
/// writer if it is lingering. The fences between each side's write and read make sure one of
/// them sees the other (a job queued just as the linger starts is found by the writer's look, or
/// the sender sees the flag). A job that can wait is only queued: it adds no unpark (the channel
/// itself wakes the writer only when it sits idle in `recv`, with nothing queued).
#[derive(Default)]
struct Nudge {
    lingering: AtomicBool,
    /// The writer thread, set by the thread itself before its first job.
    writer: OnceLock<Thread>,
}

impl Nudge {
    /// Called by a sender after it queued a job that cannot wait.
    fn wake(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.lingering.load(Ordering::SeqCst)
            && let Some(writer) = self.writer.get()
        {
            writer.unpark();
        }
    }
}

/// The sending side of the writer's queue: queues a job and wakes a lingering writer for a job
/// that cannot wait.
#[derive(Clone)]
struct Queue {
    jobs: mpsc::Sender<Job>,
    nudge: Arc<Nudge>,
}

impl Queue {
    fn send(&self, job: Job) -> Result<(), MttrlyError> {
        let urgent = !job.can_wait();
        self.jobs.send(job).map_err(|_| stopped())?;
        if urgent {
            self.nudge.wake();
        }
        Ok(())
    }
}

/// The queue to the journal writer thread. The thread ends when the last handle is dropped (the
/// database's and every [`JournalQueue`]), and the checkpointer thread after it.
pub(in crate::db) struct Publisher {
    queue: Queue,
    /// Checkpoints the checkpointer thread has completed (none without one): for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    checkpoints: Arc<AtomicU64>,
    /// Transactions the writer has committed: for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
}

/// A handle on the journal writer's queue for audit rows (`crate::db::audit::AuditAppender`).
#[derive(Clone)]
pub(in crate::db) struct JournalQueue(Queue);

impl JournalQueue {
    pub(in crate::db) fn append(&self, item: Box<dyn Appended>) -> Result<(), MttrlyError> {
        let can_wait = item.can_wait();
        self.0.send(Job::Append { item, can_wait })
    }

    pub(in crate::db) fn flush(&self, done: oneshot::Sender<()>) -> Result<(), MttrlyError> {
        self.0.send(Job::Flush(done))
    }
}

/// The writer's handle on the checkpointer thread.
struct Checkpointer {
    wake: mpsc::SyncSender<()>,
    /// Set by the checkpointer thread when its last checkpoint left the WAL longer than
    /// [`WAL_BEHIND`] times `pages`: see [`Writer::checkpoint_pages`].
    behind: Arc<std::sync::atomic::AtomicBool>,
    /// The writer connection's own automatic checkpoint threshold, restored after each batch.
    pages: i64,
}

impl Publisher {
    /// Starts the writer thread on `conn`, the database's writer connection, and the
    /// checkpointer on a connection of its own. Without one (an in-memory database, or the file
    /// cannot be opened again) the batches keep SQLite's automatic checkpoint.
    pub(in crate::db) fn start(conn: Arc<Mutex<Connection>>, linger: Duration) -> std::io::Result<Self> {
        let checkpoints = Arc::new(AtomicU64::new(0));
        let checkpointer = {
            let guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            start_checkpointer(&guard, Arc::clone(&checkpoints))?
        };
        let commits = Arc::new(AtomicU64::new(0));
        let (jobs, queued) = mpsc::channel();
        let nudge = Arc::new(Nudge::default());
        let writer = Writer {
            conn,
            checkpointer,
            heads: Heads::new(),
            commits: Arc::clone(&commits),
            nudge: Arc::clone(&nudge),
            linger,
        };
        // Left under the default scheduling policy, unlike the readers (`threads.rs` says why).
        std::thread::Builder::new().name("mttrly-journal".to_owned()).spawn(move || writer.run(&queued))?;
        Ok(Self { queue: Queue { jobs, nudge }, checkpoints, commits })
    }

    /// How many checkpoints the checkpointer thread has completed.
    #[cfg(test)]
    pub(in crate::db) fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::Relaxed)
    }

    /// How many transactions the journal writer has committed.
    #[cfg(test)]
    pub(in crate::db) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Stores `new` in `account`'s war room with whatever else is being written now.
    pub(in crate::db) async fn publish(&self, account: AccountId, new: NewNotification) -> Published {
        let (done, answer) = oneshot::channel();
        self.queue.send(Job::Publish { account, new: Box::new(new), done })?;
        answer.await.map_err(|_| stopped())?
    }

    /// A handle for appending audit rows.
    pub(in crate::db) fn journal(&self) -> JournalQueue {
        JournalQueue(self.queue.clone())
    }
}

fn stopped() -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, "the database's journal writer is not running")
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
    let behind = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let report = Arc::clone(&behind);
    std::thread::Builder::new().name("mttrly-checkpoint".to_owned()).spawn(move || {
        super::threads::run_as_batch();
        checkpoints(&conn, &woken, &done, &report, pages);
    })?;
    Ok(Some(Checkpointer { wake, behind, pages }))
}

/// The checkpointer thread: after a commit, one `PASSIVE` checkpoint, then a pause. Ends when
/// the writer thread (the only sender) has ended. Reports in `behind` whether the WAL it left is
/// longer than [`WAL_BEHIND`] × `pages` frames.
fn checkpoints(
    conn: &Connection,
    woken: &mpsc::Receiver<()>,
    done: &AtomicU64,
    behind: &std::sync::atomic::AtomicBool,
    pages: i64,
) {
    while woken.recv().is_ok() {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))) {
            Ok((frames, copied)) => {
                behind.store(frames > WAL_BEHIND * pages.max(1), Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(frames, copied, "checkpoint");
            }
            Err(err) => tracing::warn!(error = %err, "WAL checkpoint failed; the next commit retries it"),
        }
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
}

/// Runs a setting `PRAGMA` from the connection's statement cache. A batch sets and restores up to
/// four settings; parsing them anew each time was most of what a one-row batch cost beyond its
/// commit.
fn pragma(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query([])?;
    // Some settings answer with their new value: read it off so the statement completes.
    while rows.next()?.is_some() {}
    Ok(())
}

/// Turns the writer connection's automatic checkpoint to `pages` (0: off).
fn set_autocheckpoint(conn: &Connection, pages: i64) {
    if let Err(err) = pragma(conn, &format!("PRAGMA wal_autocheckpoint = {pages}")) {
        tracing::warn!(error = %err, pages, "cannot set the automatic checkpoint threshold");
    }
}

/// The journal writer thread's state.
struct Writer {
    conn: Arc<Mutex<Connection>>,
    checkpointer: Option<Checkpointer>,
    /// The audit chains' heads as committed.
    heads: Heads,
    commits: Arc<AtomicU64>,
    nudge: Arc<Nudge>,
    /// [`LINGER`], except in tests.
    linger: Duration,
}

/// One batch, split by stream, each in queue order.
#[derive(Default)]
struct Batch {
    publishes: Vec<(AccountId, Box<NewNotification>, oneshot::Sender<Published>)>,
    appends: Vec<Box<dyn Appended>>,
    flushes: Vec<oneshot::Sender<()>>,
    /// Whether some job in the batch cannot wait (see [`LINGER`]).
    urgent: bool,
}

impl Batch {
    fn add(&mut self, job: Job) {
        self.urgent |= !job.can_wait();
        match job {
            Job::Publish { account, new, done } => self.publishes.push((account, new, done)),
            Job::Append { item, .. } => self.appends.push(item),
            Job::Flush(done) => self.flushes.push(done),
        }
    }

    fn len(&self) -> usize {
        self.publishes.len() + self.appends.len() + self.flushes.len()
    }

    /// Whether one more job fits. Queue order is kept: the batch stops at the first job that
    /// would overflow it.
    fn has_room(&self) -> bool {
        self.len() < MAX_BATCH && self.publishes.len() < MAX_PUBLISHES
    }

    /// Adds what is queued now, as long as it fits. `false` once every sender is gone: nothing
    /// more can arrive.
    fn gather(&mut self, jobs: &mpsc::Receiver<Job>) -> bool {
        while self.has_room() {
            match jobs.try_recv() {
                Ok(job) => self.add(job),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return false,
            }
        }
        true
    }
}

/// What a batch's transaction wrote: each publish's answer, and the audit rows as stored with
/// the chain heads they moved (or why none of them was stored).
pub(in crate::db) type Written = (Vec<Published>, Result<(Stored, Heads), MttrlyError>);

impl Writer {
    fn run(mut self, jobs: &mpsc::Receiver<Job>) {
        // Set before any job can make the thread linger.
        let _ = self.nudge.writer.set(std::thread::current());
        while let Ok(first) = jobs.recv() {
            let mut batch = Batch::default();
            batch.add(first);
            if batch.gather(jobs) && !batch.urgent {
                self.linger(&mut batch, jobs);
            }
            self.write(batch);
        }
    }

    /// Holds a batch of rows nobody waits for up to [`LINGER`], then takes what arrived (as
    /// much as fits). A job that cannot wait ends the wait at once (its sender unparks this
    /// thread); rows that can wait do not wake it, so a batch that fills up early is noticed at
    /// the deadline (4,096 tool calls within 5 ms is far beyond any load).
    fn linger(&self, batch: &mut Batch, jobs: &mpsc::Receiver<Job>) {
        let until = Instant::now() + self.linger;
        self.nudge.lingering.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        loop {
            let open = batch.gather(jobs);
            let now = Instant::now();
            if !open || batch.urgent || !batch.has_room() || now >= until {
                break;
            }
            std::thread::park_timeout(until - now);
        }
        self.nudge.lingering.store(false, Ordering::SeqCst);
    }

    fn write(&mut self, batch: Batch) {
        let Batch { publishes, appends, flushes, .. } = batch;
        if publishes.is_empty() && appends.is_empty() {
            // Only flushes: everything queued before them is already committed.
            for done in flushes {
                let _ = done.send(());
            }
            return;
        }
        // Redaction and serialisation of the audit rows are pure and most of a row's cost: done
        // before the write lock is taken, which every other writer waits for. A bug there fails
        // this batch's audit rows, not the writer (nor the batch's publishes).
        let rows = std::panic::catch_unwind(AssertUnwindSafe(|| {
            appends.iter().map(|item| (item.account(), item.row())).collect::<Vec<_>>()
        }))
        .map_err(|_| {
            tracing::error!(count = appends.len(), "preparing audit rows panicked");
            MttrlyError::new(ErrorCode::InternalError, "internal error preparing an audit row")
        });
        let items: Vec<(&AccountId, &NewNotification)> = publishes.iter().map(|(a, n, _)| (a, &**n)).collect();
        // A bug in one batch answers its jobs with an error; the writer goes on serving.
        let written = std::panic::catch_unwind(AssertUnwindSafe(|| self.transaction(rows, &items)));
        if let Some(checkpointer) = &self.checkpointer {
            // Full means a wake-up is already pending.
            let _ = checkpointer.wake.try_send(());
        }
        let (answers, audited) = match written {
            Ok(Ok((answers, audited))) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                (answers, audited)
            }
            Ok(Err(err)) => (vec![Err(err.clone()); items.len()], Err(err)),
            Err(_) => {
                tracing::error!(
                    publishes = items.len(),
                    appends = appends.len(),
                    "the journal writer panicked on a batch"
                );
                // The panic may have skipped the restore: other writes keep their settings.
                restore(
                    &self.conn.lock().unwrap_or_else(PoisonError::into_inner),
                    self.checkpointer.as_ref().map(|c| c.pages),
                );
                let err = MttrlyError::new(ErrorCode::InternalError, "internal database error");
                (vec![Err(err.clone()); items.len()], Err(err))
            }
        };
        drop(items);
        for ((_, _, done), answer) in publishes.into_iter().zip(answers) {
            // A publisher that gave up (its request was cancelled) is not waiting: its row stands.
            let _ = done.send(answer);
        }
        match audited {
            Ok((stored, touched)) => {
                self.heads.extend(touched);
                // Committed: each row's owner is told in chain order (the batch's order).
                for (item, row) in appends.into_iter().zip(stored) {
                    tell(item, Ok(row));
                }
            }
            Err(err) => {
                // Whatever was or was not stored, the next batch reads the heads again from the
                // database rather than trusting memory (a stale head would refuse every later row
                // of its account as a duplicate `seq`).
                self.heads.clear();
                if !appends.is_empty() {
                    tracing::error!(error = %err, count = appends.len(), "cannot write audit events");
                }
                for item in appends {
                    tell(item, Err(err.clone()));
                }
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }

    /// The automatic checkpoint threshold to restore after a batch that turned it off, `None`
    /// when this batch keeps it on: without a checkpointer, and while the checkpointer is behind.
    ///
    /// A `PASSIVE` checkpoint beside a writer that never pauses copies what it can, but the WAL
    /// only starts over once a checkpoint has copied *all* of it, which new commits keep from
    /// happening: under a sustained stream of audit rows the WAL grew to 440 MB in 15 s, and every
    /// page lookup through its index slowed down with it (the audit bench's writer went from ~10
    /// to ~14 µs a row). So when the checkpointer reports the WAL long, the next commits keep
    /// SQLite's automatic checkpoint, which runs inside the commit, with no writer beside it: it
    /// copies everything, and the next transaction starts the WAL over.
    fn checkpoint_pages(&self) -> Option<i64> {
        self.checkpointer.as_ref().filter(|c| !c.behind.load(Ordering::Relaxed)).map(|c| c.pages)
    }

    /// The batch's one transaction, on the writer connection.
    fn transaction(
        &self,
        rows: Result<Vec<(&AccountId, ChainedRow)>, MttrlyError>,
        items: &[(&AccountId, &NewNotification)],
    ) -> Result<Written, MttrlyError> {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        commit_batch(&mut guard, self.checkpoint_pages(), &self.heads, rows, items)
    }
}

/// Tells an audit row's owner what became of it; a bug in the owner is logged, and the writer
/// goes on.
fn tell(item: Box<dyn Appended>, result: Result<(ChainedRow, [u8; 32]), MttrlyError>) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| item.committed(result))).is_err() {
        tracing::error!("announcing a committed audit row panicked");
    }
}

/// Puts the writer connection back to its everyday settings: `synchronous = NORMAL`, and its
/// automatic checkpoint when the batches turned it off.
fn restore(conn: &Connection, checkpoint_pages: Option<i64>) {
    if let Err(err) = pragma(conn, "PRAGMA synchronous = NORMAL") {
        tracing::warn!(error = %err, "cannot set the writer connection back to synchronous = NORMAL");
    }
    if let Some(pages) = checkpoint_pages {
        set_autocheckpoint(conn, pages);
    }
}

/// One batch's transaction: the audit rows (chained from `heads`), then the publishes, and one
/// durable commit (`synchronous = FULL` for this commit only). With `checkpoint_pages`, SQLite's
/// automatic checkpoint is off for this commit (the checkpointer thread runs it) and restored to
/// that many pages after. The connection is left with its everyday settings whatever happened.
///
/// The audit rows are written under one savepoint: when they cannot be (a stale chain head, a
/// row the database refuses), they alone are undone and fail, and the publishes go on. An error
/// that ends the transaction itself (a full disk, an I/O error) fails the whole batch, and then
/// nothing of it is stored. Once the commit has succeeded, the batch is reported as stored.
pub(in crate::db) fn commit_batch(
    conn: &mut Connection,
    checkpoint_pages: Option<i64>,
    heads: &Heads,
    rows: Result<Vec<(&AccountId, ChainedRow)>, MttrlyError>,
    items: &[(&AccountId, &NewNotification)],
) -> Result<Written, MttrlyError> {
    if checkpoint_pages.is_some() {
        set_autocheckpoint(conn, 0);
    }
    let written = pragma(conn, "PRAGMA synchronous = FULL").map_err(internal).and_then(|()| {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
        let audited = match rows {
            Ok(rows) if rows.is_empty() => Ok((Vec::new(), Heads::new())),
            // Without publishes there is nothing else for a failure to spare: no savepoint, and
            // a failure rolls the whole transaction back.
            Ok(rows) if items.is_empty() => Ok(super::audit::append(&tx, heads, rows)?),
            Ok(rows) => {
                let mut savepoint = tx.savepoint().map_err(internal)?;
                match super::audit::append(&savepoint, heads, rows) {
                    Ok(appended) => savepoint.commit().map_err(internal).map(|()| appended),
                    // Rolled back explicitly, not on drop (which ignores a failed rollback): rows
                    // left in place would be committed while their owners were told they failed,
                    // so a rollback that fails fails the whole batch.
                    Err(err) => {
                        savepoint.rollback().map_err(internal)?;
                        Err(err)
                    }
                }
            }
            Err(err) => Err(err),
        };
        if tx.is_autocommit() {
            // The audit rows' error ended the transaction: nothing may be written outside it.
            return Err(MttrlyError::new(ErrorCode::InternalError, "the journal transaction was rolled back"));
        }
        let answers = super::warroom::publish_in(&tx, items)?;
        tx.commit().map_err(internal)?;
        Ok((answers, audited))
    });
    // Back to the connection's everyday settings. A failure here is logged, not returned: the
    // batch is already committed (or already failed) either way.
    restore(conn, checkpoint_pages);
    written
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use mttrly_core::ids::{NotificationId, UserId};
    use mttrly_core::tools::notify::{Priority, Sender};
    use mttrly_core::{Plan, Role, Source};

    use super::super::audit::tests::api_call as row;
    use crate::db::Db;
    use crate::db::warroom::NewNotification;

    /// The batches' checkpoints run on the checkpointer thread, and the writer connection keeps
    /// its automatic checkpoint for every other write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_are_checkpointed_off_the_writer_which_keeps_its_automatic_checkpoint() {
        let (_dir, db, a, sender) = war_room().await;
        let room = db.account(&a).warroom();
        assert_eq!(db.sqlite.publisher.checkpoints(), 0, "nothing published, nothing to checkpoint");
        for at in 0..20 {
            room.publish(note("incidents", at, &sender)).await.unwrap();
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

    /// A database with one account and its channel `incidents`, and a person who posts there.
    async fn war_room() -> (tempfile::TempDir, Db, mttrly_core::ids::AccountId, Sender) {
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
        db.account(&a).warroom().create_channel("incidents".into(), String::new(), sender.clone(), 1, 0).await.unwrap();
        (dir, db, a, sender)
    }

    fn note(channel: &str, i: i64, sender: &Sender) -> NewNotification {
        NewNotification {
            id: NotificationId::generate(),
            channel: channel.into(),
            thread_id: Some(format!("t{}", i % 5)),
            in_reply_to: None,
            title: format!("update {i}"),
            body: "b".into(),
            priority: Priority::High,
            theme: None,
            tags: Vec::new(),
            server_id: None,
            sender: sender.clone(),
            redactions: 0,
            published_at: i,
        }
    }

    /// Holds the writer connection on another thread (as a long write would) until the returned
    /// sender is used or dropped.
    fn hold_connection(db: &Db) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (locked, is_locked) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let conn = std::sync::Arc::clone(&db.sqlite.conn);
        let holder = std::thread::spawn(move || {
            let _held = conn.lock().unwrap();
            locked.send(()).unwrap();
            let _ = released.recv();
        });
        is_locked.recv().unwrap();
        (release, holder)
    }

    /// The two streams share the journal writer's transactions: with the writer waiting for the
    /// connection on a batch of one row, fifty audit rows and fifty publishes queued meanwhile
    /// are committed by one more transaction, every publish is answered and stored, the audit
    /// chain verifies, and the bus hears each row once, in `seq` order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn audit_rows_and_publishes_queued_together_share_one_commit() {
        use crate::audit::AuditLog;
        use crate::events::{Bus, Next};

        let (_dir, db, a, sender) = war_room().await;
        let bus = Bus::default();
        let mut heard = bus.subscribe();
        let audit = AuditLog::start(&db, bus.clone());
        audit.flush().await;
        let before = db.sqlite.publisher.commits();

        let (release, holder) = hold_connection(&db);
        // The writer takes this row alone and waits for the connection with it.
        audit.append(row(&a, 0));
        tokio::time::sleep(Duration::from_millis(300)).await;
        for i in 1..=50 {
            audit.append(row(&a, i));
        }
        let publishes: Vec<_> = (0..50)
            .map(|i| {
                let (db, a, new) = (db.clone(), a.clone(), note("incidents", i, &sender));
                tokio::spawn(async move { db.account(&a).warroom().publish(new).await })
            })
            .collect();
        // Every publish reaches the queue while the writer waits.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        release.send(()).unwrap();
        holder.join().unwrap();
        for publish in publishes {
            publish.await.unwrap().unwrap();
        }
        audit.flush().await;
        assert_eq!(db.sqlite.publisher.commits() - before, 2, "the lone row, then the 100 queued jobs together");

        let verification = db.account(&a).audit().verify().await.unwrap();
        assert!(verification.first_bad.is_none(), "{verification:?}");
        assert_eq!(verification.rows_checked, 51);
        assert_eq!(db.account(&a).warroom().channels(0).await.unwrap()[0].notifications, 50);
        for seq in 1..=51 {
            match tokio::time::timeout(Duration::from_secs(10), heard.next()).await {
                Ok(Next::Event(event)) => assert_eq!(event.seq, seq),
                other => panic!("expected row {seq}, got {other:?}"),
            }
        }
    }

    /// A chain head the writer holds in memory can go stale (a row written to the file by other
    /// means): the batch's audit rows then collide with a stored `seq` and fail alone, its
    /// publishes are stored all the same, and the next batch reads the head again and chains on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_chain_head_fails_only_its_rows_and_the_next_batch_recovers() {
        use crate::audit::AuditLog;
        use crate::events::Bus;

        let (_dir, db, a, sender) = war_room().await;
        let room = db.account(&a).warroom();
        let audit = AuditLog::start(&db, Bus::default());
        audit.append_durable(row(&a, 1)).await.unwrap();
        // Another writer extends the chain behind the journal writer's back: row 2 and its head.
        db.sqlite
            .call({
                let a = a.clone();
                move |conn| {
                    let stored = crate::audit::writer::stored_row(&row(&a, 2), 0);
                    let tx = conn.unchecked_transaction().map_err(super::internal)?;
                    // No heads known: read from the file, as any other writer would.
                    super::super::audit::append(&tx, &super::Heads::new(), vec![(&a, stored)])?;
                    tx.commit().map_err(super::internal)
                }
            })
            .await
            .unwrap();

        let (release, holder) = hold_connection(&db);
        let stale = tokio::spawn({
            let audit = audit.clone();
            let a = a.clone();
            async move { audit.append_durable(row(&a, 3)).await }
        });
        let publish = tokio::spawn({
            let (db, a, new) = (db.clone(), a.clone(), note("incidents", 1, &sender));
            async move { db.account(&a).warroom().publish(new).await }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        release.send(()).unwrap();
        holder.join().unwrap();
        let refused = stale.await.unwrap();
        assert_eq!(refused.unwrap_err().code(), mttrly_core::ErrorCode::InternalError, "seq 2 is taken");
        publish.await.unwrap().expect("the publish of the same batch is stored");

        assert_eq!(audit.append_durable(row(&a, 4)).await.unwrap(), 3, "the head was read again");
        let verification = db.account(&a).audit().verify().await.unwrap();
        assert!(verification.first_bad.is_none(), "{verification:?}");
        assert_eq!(verification.rows_checked, 3);
        assert_eq!(room.channels(0).await.unwrap()[0].notifications, 1);
    }

    /// A row the test watches: `can_wait` as given, and what became of it sent to `told`.
    struct Watched {
        account: mttrly_core::ids::AccountId,
        i: i64,
        can_wait: bool,
        told: std::sync::mpsc::Sender<(i64, Result<u64, mttrly_core::MttrlyError>)>,
    }

    impl crate::db::audit::Appended for Watched {
        fn account(&self) -> &mttrly_core::ids::AccountId {
            &self.account
        }

        fn row(&self) -> crate::audit::chain::ChainedRow {
            crate::audit::writer::stored_row(&row(&self.account, self.i), 0)
        }

        fn can_wait(&self) -> bool {
            self.can_wait
        }

        fn committed(
            self: Box<Self>,
            result: Result<(crate::audit::chain::ChainedRow, [u8; 32]), mttrly_core::MttrlyError>,
        ) {
            let _ = self.told.send((self.i, result.map(|(row, _)| row.seq)));
        }
    }

    /// A journal writer of its own on `db`'s file, holding rows that can wait for `linger`.
    fn lingering_writer(dir: &tempfile::TempDir, linger: Duration) -> super::Publisher {
        let conn = rusqlite::Connection::open(dir.path().join("central.db")).unwrap();
        conn.busy_handler(Some(super::super::busy_wait)).unwrap();
        super::Publisher::start(std::sync::Arc::new(std::sync::Mutex::new(conn)), linger).unwrap()
    }

    /// Rows nobody waits for wait for company, and only them: with a linger of a minute, a row
    /// that can wait is still uncommitted after 300 ms, and the first job that cannot wait (a
    /// row someone waits for, a flush, a publish) is committed at once, in one commit with the
    /// rows held before it, in queue order. A wake-up lost between the writer and a sender would
    /// hold that job the whole minute, past the test's 10 s.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_that_can_wait_are_held_until_a_job_that_cannot_wait_arrives() {
        let (dir, _db, a, sender) = war_room().await;
        let writer = lingering_writer(&dir, Duration::from_secs(60));
        let journal = writer.journal();
        let (told, heard) = std::sync::mpsc::channel();
        let watched = |i, can_wait| Box::new(Watched { account: a.clone(), i, can_wait, told: told.clone() });
        let settle = Duration::from_millis(300);
        let within = Duration::from_secs(10);

        // Held rows, then a row someone waits for.
        journal.append(watched(0, true)).unwrap();
        journal.append(watched(1, true)).unwrap();
        tokio::time::sleep(settle).await;
        assert_eq!(writer.commits(), 0, "rows that can wait are held");
        assert!(heard.try_recv().is_err());
        journal.append(watched(2, false)).unwrap();
        let order: Vec<_> = (0..3).map(|_| heard.recv_timeout(within).expect("committed at once")).collect();
        assert_eq!(order.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(order.iter().map(|(_, seq)| *seq.as_ref().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(writer.commits(), 1, "the held rows shared the urgent row's commit");

        // A flush.
        journal.append(watched(3, true)).unwrap();
        tokio::time::sleep(settle).await;
        assert_eq!(writer.commits(), 1);
        let (done, flushed) = tokio::sync::oneshot::channel();
        journal.flush(done).unwrap();
        tokio::time::timeout(within, flushed).await.expect("flushed at once").unwrap();
        assert_eq!(heard.recv_timeout(within).unwrap().1.unwrap(), 4);
        assert_eq!(writer.commits(), 2);

        // A publish.
        journal.append(watched(4, true)).unwrap();
        tokio::time::sleep(settle).await;
        assert_eq!(writer.commits(), 2);
        let published = tokio::time::timeout(within, writer.publish(a.clone(), note("incidents", 1, &sender)))
            .await
            .expect("published at once");
        published.unwrap();
        assert_eq!(heard.recv_timeout(within).unwrap().1.unwrap(), 5);
        assert_eq!(writer.commits(), 3);
    }

    /// A row that can wait is committed once its linger is over, with nothing else queued.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lone_row_that_can_wait_is_committed_when_its_linger_ends() {
        let (dir, _db, a, _) = war_room().await;
        let writer = lingering_writer(&dir, Duration::from_millis(200));
        let (told, heard) = std::sync::mpsc::channel();
        let started = Instant::now();
        writer.journal().append(Box::new(Watched { account: a, i: 0, can_wait: true, told })).unwrap();
        let (_, seq) = heard.recv_timeout(Duration::from_secs(10)).expect("committed after its linger");
        assert_eq!(seq.unwrap(), 1);
        assert!(started.elapsed() >= Duration::from_millis(200), "held for its linger: {:?}", started.elapsed());
        assert_eq!(writer.commits(), 1);
    }

    /// The race the test above cannot reach: a job that cannot wait queued just as the writer
    /// starts to linger (between its flag and its look at the queue, or between a sender's send
    /// and its look at the flag). Two threads, each three hundred times: a row that can wait,
    /// then at once a row someone waits for. With a one-minute linger, a lost wake-up would
    /// stall its thread past the 10 s bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_cannot_wait_is_never_left_behind_a_linger_as_it_starts() {
        let (dir, db, a, _) = war_room().await;
        let writer = lingering_writer(&dir, Duration::from_secs(60));
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let (journal, a) = (writer.journal(), a.clone());
                std::thread::spawn(move || {
                    let (told, heard) = std::sync::mpsc::channel();
                    for i in 0..300 {
                        for (i, can_wait) in [(2 * i, true), (2 * i + 1, false)] {
                            let told = told.clone();
                            journal.append(Box::new(Watched { account: a.clone(), i, can_wait, told })).unwrap();
                        }
                        for _ in 0..2 {
                            let (_, seq) = heard.recv_timeout(Duration::from_secs(10)).expect("a lost wake-up");
                            seq.unwrap();
                        }
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        let verification = db.account(&a).audit().verify().await.unwrap();
        assert!(verification.first_bad.is_none(), "{verification:?}");
        assert_eq!(verification.rows_checked, 1200);
    }
}
