//! The read side of the SQLite backend: a few dedicated threads, each owning its own read-only
//! connection to the WAL database.
//!
//! Why not `spawn_blocking` onto the one shared connection, as writes do: under load every read
//! then paid a blocking-pool hand-off (a thread woken per query) plus a wait on the connection's
//! mutex behind every other read and write, and the profile of the MCP call path showed those
//! two costs larger than the query itself. In WAL mode SQLite lets any number of readers run
//! beside the one writer, each seeing the last committed state when its statement starts, so each
//! reader thread keeps its own connection (and its own prepared-statement cache) and drains its
//! own queue: a reader that is already busy picks up the next job without being woken, and a job
//! goes to the reader with the fewest jobs in flight, so a slow read holds up the next one only
//! when every reader is busy. There is no stealing: a read already queued behind a slow one
//! waits for it even if another reader frees up meanwhile.
//!
//! Read-your-write holds: every write operation commits before its `await` returns (autocommit or
//! an explicit transaction on the writer connection), and a reader's statement starts a fresh
//! read transaction, so a read issued after a write completed sees it.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::Thread;

use mttrly_core::{ErrorCode, MttrlyError};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::busy_wait;

/// Prepared statements kept per reader connection: every read query of every domain fits, so a
/// hot query is parsed once per reader, not once per call.
const STATEMENT_CACHE: usize = 64;

/// One queued read: runs on a reader thread with that thread's connection.
type Job = Box<dyn FnOnce(&Connection) + Send>;

/// The reader threads' queues. The threads stop when the last handle (every `Db` clone) is gone.
pub(super) struct Readers {
    lanes: Box<[Lane]>,
}

/// One reader thread's queue, and the handle that wakes it.
///
/// Why not a `std::sync::mpsc` channel, as before: a profile of the MCP call path (one core,
/// `perf record --call-graph dwarf`) showed that channel's waker contended in about 5 % of
/// central's samples: it sits behind a mutex that the sending runtime thread and the reader
/// going to sleep both take, so a send could sleep on the lock the reader held.
/// Here a send is a short lock of the queue plus `Thread::unpark`, which is one atomic swap
/// while the reader is awake and one futex wake only when it is parked; the reader parks only
/// after it has found the queue empty, and the park token makes a wake-up that lands between
/// that look and the park return at once, so none is lost.
struct Lane {
    shared: Arc<Shared>,
    reader: Thread,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Jobs sent to this reader and not finished yet.
    in_flight: AtomicUsize,
    /// The reader thread has ended (it only does after `closing`, or if it died): a job sent
    /// now would never run, so it is refused. Set under the queue's lock, so a send that holds
    /// the lock sees it; read without the lock to steer reads away from a reader that has died.
    stopped: AtomicBool,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Every handle is gone: the reader finishes what is queued, then stops.
    closing: bool,
}

impl Shared {
    /// The queue, also after a panic elsewhere poisoned it: a job never runs under this lock
    /// and every change to `Queue` is a single step, so it is never left half-changed.
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Undoes a lane's in-flight count when its job ends, however it ends (answered, panicked, or
/// dropped unrun because the thread is gone).
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Readers {
    /// Opens `count` read-only connections to the (already migrated) database at `path` and
    /// starts one thread for each. If one fails, the readers already started stop (their lanes
    /// close when dropped).
    pub(super) fn start(path: &Path, count: usize) -> Result<Self, rusqlite::Error> {
        let mut lanes = Vec::with_capacity(count);
        for index in 0..count.max(1) {
            let conn = open(path)?;
            let shared = Arc::new(Shared::default());
            let reader = std::thread::Builder::new()
                .name(format!("mttrly-db-read-{index}"))
                .spawn({
                    let shared = Arc::clone(&shared);
                    move || run(&conn, &shared)
                })
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            lanes.push(Lane { shared, reader: reader.thread().clone() });
        }
        Ok(Self { lanes: lanes.into_boxed_slice() })
    }

    /// Runs `f` on the least busy reader and waits for its answer without blocking the runtime.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, MttrlyError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, MttrlyError> + Send + 'static,
    {
        let lane = self.least_busy();
        lane.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(Arc::clone(&lane.shared));
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            // Counted out before the caller hears back, so its next read sees this lane idle.
            drop(guard);
            // The caller may have gone away (a dropped request): nobody to tell.
            let _ = answer.send(result);
        });
        lane.send(job)?;
        answered.await.map_err(|_| stopped())?
    }

    /// The live reader with the fewest jobs in flight. Ties go to the lowest index, so a light
    /// load keeps one reader hot instead of waking every thread in turn. A reader that has died
    /// (a bug) is passed over; if every one has, the first is returned and refuses the job.
    fn least_busy(&self) -> &Lane {
        let mut best: Option<(&Lane, usize)> = None;
        for lane in &self.lanes {
            if lane.shared.stopped.load(Ordering::Relaxed) {
                continue;
            }
            let in_flight = lane.shared.in_flight.load(Ordering::Relaxed);
            if best.is_none_or(|(_, fewest)| in_flight < fewest) {
                best = Some((lane, in_flight));
                if in_flight == 0 {
                    break;
                }
            }
        }
        // `start` makes at least one lane.
        best.map_or(&self.lanes[0], |(lane, _)| lane)
    }
}

impl Lane {
    fn send(&self, job: Job) -> Result<(), MttrlyError> {
        {
            let mut queue = self.shared.queue();
            if self.shared.stopped.load(Ordering::Relaxed) {
                // Dropped here, after the lock: its in-flight count goes with it.
                drop(queue);
                drop(job);
                return Err(stopped());
            }
            queue.jobs.push_back(job);
        }
        self.reader.unpark();
        Ok(())
    }
}

/// A lane's thread finishes what is queued and stops once the lane is gone: when every handle
/// to the readers is dropped, or when `Readers::start` gives up half-way.
impl Drop for Lane {
    fn drop(&mut self) {
        self.shared.queue().closing = true;
        self.reader.unpark();
    }
}

/// A reader connection: read-only at open (so a write on it fails loudly, never silently
/// succeeds beside the writer), shared cache off, its own statement cache.
fn open(path: &Path) -> Result<Connection, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_handler(Some(busy_wait))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// A reader thread: runs its queue's jobs in order until every handle is gone. A panicking job
/// (a bug) drops its answer, which the caller sees as an internal error, and the reader goes on.
fn run(conn: &Connection, shared: &Shared) {
    let _stopped = Stopped(shared);
    super::threads::run_as_batch();
    loop {
        let job = {
            let mut queue = shared.queue();
            match queue.jobs.pop_front() {
                Some(job) => job,
                None if queue.closing => return,
                None => {
                    drop(queue);
                    // Returns at once if a job was sent since the look above (the park token),
                    // and may return spuriously: either way the loop looks again.
                    std::thread::park();
                    continue;
                }
            }
        };
        if catch_unwind(AssertUnwindSafe(|| job(conn))).is_err() {
            tracing::error!("database read panicked");
        }
    }
}

/// Marks a lane stopped when its reader thread ends, however it ends, and drops what is still
/// queued, so every waiting caller hears an error instead of waiting forever.
struct Stopped<'a>(&'a Shared);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        let orphans = {
            let mut queue = self.0.queue();
            self.0.stopped.store(true, Ordering::Relaxed);
            std::mem::take(&mut queue.jobs)
        };
        drop(orphans);
    }
}

fn stopped() -> MttrlyError {
    tracing::error!("database reader stopped");
    MttrlyError::new(ErrorCode::InternalError, "internal database error")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::super::Sqlite;
    use super::*;

    fn open() -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Sqlite::open(&dir.path().join("central.db")).unwrap();
        (dir, sqlite)
    }

    async fn scratch(sqlite: &Sqlite) {
        sqlite
            .call(|conn| conn.execute_batch("CREATE TABLE scratch (n INTEGER)").map_err(super::super::internal))
            .await
            .unwrap();
    }

    async fn count(sqlite: &Sqlite) -> i64 {
        sqlite
            .read(|conn| {
                conn.query_row("SELECT COUNT(*) FROM scratch", [], |r| r.get(0)).map_err(super::super::internal)
            })
            .await
            .unwrap()
    }

    /// Read-your-write: an action created and read at once must be found, so a read issued
    /// after a write's operation returned sees it, every time (the schema change included).
    #[tokio::test]
    async fn a_read_sees_every_write_that_returned_before_it() {
        let (_dir, sqlite) = open();
        scratch(&sqlite).await;
        for n in 1..=200 {
            sqlite
                .call(move |conn| conn.execute("INSERT INTO scratch VALUES (?1)", [n]).map_err(super::super::internal))
                .await
                .unwrap();
            assert_eq!(count(&sqlite).await, n, "the reader missed write {n}");
        }
    }

    /// A write sent to a reader by mistake fails instead of racing the writer connection.
    #[tokio::test]
    async fn a_reader_refuses_to_write() {
        let (_dir, sqlite) = open();
        scratch(&sqlite).await;
        let refused =
            sqlite.read(|conn| Ok(conn.execute("INSERT INTO scratch VALUES (1)", []).is_err())).await.unwrap();
        assert!(refused, "a reader connection accepted a write");
        assert_eq!(count(&sqlite).await, 0);
    }

    /// A long read (an audit verification, a large listing) does not queue the next read
    /// behind it: the next one goes to an idle reader.
    #[tokio::test]
    async fn a_slow_read_does_not_hold_up_the_next() {
        let (_dir, sqlite) = open();
        scratch(&sqlite).await;
        let (release, released) = std::sync::mpsc::channel::<()>();
        let slow = tokio::spawn({
            let sqlite = sqlite.clone();
            async move {
                sqlite
                    .read(move |_| {
                        released.recv_timeout(Duration::from_secs(10)).map_err(|_| {
                            MttrlyError::new(ErrorCode::InternalError, "the test never released the slow read")
                        })
                    })
                    .await
            }
        });
        // The slow read is on its reader before the next read is dispatched.
        while sqlite.readers.lanes.iter().all(|lane| lane.shared.in_flight.load(Ordering::Relaxed) == 0) {
            tokio::task::yield_now().await;
        }
        let next = tokio::time::timeout(Duration::from_secs(5), count(&sqlite)).await;
        release.send(()).unwrap();
        assert_eq!(next.expect("the second read waited for the slow one"), 0);
        slow.await.unwrap().unwrap();
    }

    /// One reader and one sender, reads back to back with a varying pause between them, so
    /// the next send often lands while the reader is going to sleep: a wake-up lost between the
    /// reader's look at its empty queue and its park leaves that read waiting, and nothing else
    /// would come to rescue it (there is no other sender and no other lane).
    #[tokio::test]
    async fn reads_racing_a_reader_going_to_sleep_are_all_answered() {
        let (dir, sqlite) = open();
        scratch(&sqlite).await;
        drop(sqlite);
        let readers = Readers::start(&dir.path().join("central.db"), 1).unwrap();
        let mut pause: u32 = 1;
        for round in 0..20_000 {
            let read = tokio::time::timeout(Duration::from_secs(1), readers.read(move |_| Ok(round)));
            assert_eq!(read.await.unwrap_or_else(|_| panic!("read {round} was never answered")).unwrap(), round);
            // 0 to ~4,000 spins (xorshift): from "still awake" to "fast asleep".
            pause ^= pause << 13;
            pause ^= pause >> 17;
            pause ^= pause << 5;
            for _ in 0..pause % 4_096 {
                std::hint::spin_loop();
            }
        }
    }

    /// Once the readers are dropped, every reader thread ends (and a read sent now would be
    /// refused): nothing parks forever holding a connection.
    /// `count` readers of their own over a migrated database (the `Sqlite` that made it closed),
    /// so that a test can stop or drop them.
    fn own_readers(count: usize) -> (tempfile::TempDir, Readers) {
        let (dir, sqlite) = open();
        drop(sqlite);
        let readers = Readers::start(&dir.path().join("central.db"), count).unwrap();
        (dir, readers)
    }

    #[tokio::test]
    async fn dropping_the_readers_ends_every_reader_thread() {
        let (_dir, readers) = own_readers(3);
        assert_eq!(readers.read(|_| Ok(7)).await.unwrap(), 7);
        let shared: Vec<_> = readers.lanes.iter().map(|lane| Arc::clone(&lane.shared)).collect();
        drop(readers);
        eventually("a reader thread outlived its lane", || shared.iter().all(|lane| stopped(lane))).await;
    }

    /// A reader thread that has ended (it only ends once every handle is gone, or if it dies)
    /// refuses new reads with an internal error at once, instead of queueing them forever.
    #[tokio::test]
    async fn a_read_sent_to_a_stopped_reader_is_refused_at_once() {
        let (_dir, readers) = own_readers(1);
        stop(&readers.lanes[0]).await;
        let refused = tokio::time::timeout(Duration::from_secs(5), readers.read(|_| Ok(1)))
            .await
            .expect("a read sent to a stopped reader waited");
        assert_eq!(refused.unwrap_err().code(), ErrorCode::InternalError);
        let lane = &readers.lanes[0];
        assert_eq!(lane.shared.in_flight.load(Ordering::Relaxed), 0, "the refused read is still counted");
    }

    /// Reads go to the readers still alive when one has ended (a bug killed it), even though
    /// the dead one counts no jobs in flight and comes first.
    #[tokio::test]
    async fn reads_pass_over_a_dead_reader() {
        let (_dir, readers) = own_readers(2);
        stop(&readers.lanes[0]).await;
        for n in 0..50 {
            assert_eq!(readers.read(move |_| Ok(n)).await.unwrap(), n);
        }
    }

    /// Jobs still queued when a reader thread ends are dropped, so each caller hears an error
    /// instead of waiting forever, and the lane is marked stopped for the next send.
    #[tokio::test]
    async fn jobs_queued_when_a_reader_ends_are_answered_with_an_error() {
        let shared = Shared::default();
        let mut waiting = Vec::new();
        for _ in 0..3 {
            let (answer, answered) = oneshot::channel::<Result<(), MttrlyError>>();
            shared.queue().jobs.push_back(Box::new(move |_| {
                let _ = answer.send(Ok(()));
            }));
            waiting.push(answered);
        }
        drop(Stopped(&shared));
        for answered in waiting {
            assert!(answered.await.is_err(), "a queued job's caller was never told");
        }
        assert!(stopped(&shared));
    }

    /// Closes one lane as its lane's drop would, and waits until its thread has ended.
    async fn stop(lane: &Lane) {
        lane.shared.queue().closing = true;
        lane.reader.unpark();
        eventually("the reader did not stop", || stopped(&lane.shared)).await;
    }

    fn stopped(lane: &Shared) -> bool {
        lane.stopped.load(Ordering::Relaxed)
    }

    /// Waits up to 5 s for `done`, failing with `failure` if it never holds.
    async fn eventually(failure: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{failure}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A read that panics (a bug) answers an internal error and its reader keeps serving.
    #[tokio::test]
    async fn a_panicking_read_answers_an_error_and_the_reader_goes_on() {
        let (_dir, sqlite) = open();
        scratch(&sqlite).await;
        let err = sqlite.read(|_| -> Result<(), MttrlyError> { panic!("a bug in a query") }).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InternalError);
        for _ in 0..4 {
            assert_eq!(count(&sqlite).await, 0);
        }
        // The panicking job is counted out while its reader unwinds, which may end just after
        // the caller heard of it.
        let idle = || sqlite.readers.lanes.iter().all(|lane| lane.shared.in_flight.load(Ordering::Relaxed) == 0);
        eventually("a lane still counts a finished job", idle).await;
    }
}
