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

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use mttrly_core::ids::AccountId;
use mttrly_core::{ErrorCode, MttrlyError};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::db::warroom::NewNotification;

/// The most publishes one transaction carries: enough to amortise the flush, few enough that the
/// writer connection is never held for long (each row is tens of microseconds).
pub(in crate::db) const MAX_BATCH: usize = 512;

pub(in crate::db) use super::warroom::Published;

struct Job {
    account: AccountId,
    new: NewNotification,
    done: oneshot::Sender<Published>,
}

/// The queue to the notification writer thread. The thread ends when the last handle is dropped.
pub(in crate::db) struct Publisher {
    queue: mpsc::Sender<Job>,
}

impl Publisher {
    /// Starts the writer thread on `conn`, the database's writer connection.
    pub(in crate::db) fn start(conn: Arc<Mutex<Connection>>) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel();
        std::thread::Builder::new().name("mttrly-notify-writer".to_owned()).spawn(move || run(&conn, &jobs))?;
        Ok(Self { queue })
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

fn run(conn: &Mutex<Connection>, jobs: &mpsc::Receiver<Job>) {
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
            super::warroom::publish_batch(&mut guard, &items)
        }));
        let results: Vec<Published> = match written {
            Ok(Ok(results)) => results,
            Ok(Err(err)) => vec![Err(err); batch.len()],
            Err(_) => {
                tracing::error!(count = batch.len(), "the notification writer panicked on a batch");
                vec![Err(MttrlyError::new(ErrorCode::InternalError, "internal database error")); batch.len()]
            }
        };
        for (job, result) in batch.into_iter().zip(results) {
            // A publisher that gave up (its request was cancelled) is not waiting: its row stands.
            let _ = job.done.send(result);
        }
    }
}
