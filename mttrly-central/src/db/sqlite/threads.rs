//! How the kernel schedules central's own database threads (the readers, the journal writer and
//! its checkpointer).
//!
//! Why `SCHED_BATCH`: each of these threads is woken by a runtime thread that hands it work (a
//! read, a row, a commit to copy). Under the default policy a thread that wakes up is allowed to
//! preempt the running one when they share a CPU, so on a busy central every read cost two
//! context switches and cut the runtime thread off in the middle of its poll. A profile of the
//! MCP call path on one core (`perf record --call-graph dwarf`, 2026-12-05) had 15 % of
//! central's samples in those switches. Under `SCHED_BATCH` a waking thread does not preempt: the
//! runtime thread finishes what it is doing and the database thread runs when a CPU is free (at
//! once on an idle machine) or at the scheduler's next tick, and then drains every job queued
//! meanwhile in one go. Measured from outside with `scripts/mcp-wrk.sh`: 61 -> 53 µs of CPU per
//! `tools/call` on one core, and a lower p99 (BENCHMARKS.md, "The database threads'
//! scheduling policy").
//!
//! The nice value stays what it was (an operator's `nice` is kept, never undone), and a kernel
//! or sandbox that refuses the change leaves the thread as it was, which is only slower.

/// Puts the calling thread under `SCHED_BATCH` with its nice value unchanged. Call it first thing
/// in a database thread; a refusal is logged and otherwise harmless.
pub(super) fn run_as_batch() {
    #[cfg(target_os = "linux")]
    if let Err(reason) = linux::batch() {
        tracing::debug!(%reason, "database thread left under the default scheduling policy");
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };

    const BATCH: ThreadSchedulePolicy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);

    /// Why a thread kept its policy.
    #[derive(Debug, thiserror::Error)]
    pub(super) enum Unchanged {
        #[error("could not read the thread's nice value")]
        Nice(#[source] rustix::io::Errno),
        #[error("no priority maps to nice value {0}")]
        NoPriority(i32),
        #[error("the kernel refused SCHED_BATCH")]
        Refused(#[source] thread_priority::Error),
    }

    pub(super) fn batch() -> Result<(), Unchanged> {
        // `getpriority(PRIO_PROCESS, 0)` is the calling thread's own nice value on Linux.
        let nice = rustix::process::getpriority_process(None).map_err(Unchanged::Nice)?;
        // The crate sets a normal policy's nice value from a 0..=99 priority; take the one that
        // maps to the current nice value, so the call changes the policy and nothing else.
        let priority = keeping(nice).ok_or(Unchanged::NoPriority(nice))?;
        set_thread_priority_and_policy(thread_native_id(), priority, BATCH).map_err(Unchanged::Refused)
    }

    /// The priority the crate turns into this nice value under a normal policy.
    fn keeping(nice: i32) -> Option<ThreadPriority> {
        (0..=99u8)
            .filter_map(|p| ThreadPriorityValue::try_from(p).ok())
            .map(ThreadPriority::Crossplatform)
            .find(|priority| priority.to_posix(BATCH).is_ok_and(|value| value == nice))
    }

    /// `SCHED_BATCH` in `/proc/<pid>/task/<tid>/stat`'s `policy` field (sched(7)).
    #[cfg(test)]
    pub(in crate::db::sqlite) const SCHED_BATCH: u32 = 3;

    /// The scheduling policy field (the 41st) of a `stat` file under `/proc`.
    #[cfg(test)]
    pub(in crate::db::sqlite) fn policy_of(stat: &str) -> u32 {
        let text = std::fs::read_to_string(stat).unwrap_or_default();
        // The command name (field 2) is in parentheses and may hold spaces: count after it.
        let after_name = text.rsplit_once(')').map_or("", |(_, rest)| rest);
        after_name.split_whitespace().nth(38).and_then(|field| field.parse().ok()).unwrap_or(u32::MAX)
    }
    #[cfg(test)]
    mod tests {
        #![allow(clippy::unwrap_used)]

        use super::*;

        /// Every nice value a thread can have maps back to itself, so switching the policy never
        /// changes how nice a thread is.
        #[test]
        fn every_nice_value_is_kept() {
            for nice in -20..=19 {
                let priority = keeping(nice).unwrap_or_else(|| panic!("nice {nice} has no priority"));
                assert_eq!(priority.to_posix(BATCH).unwrap(), nice);
            }
        }

        /// A thread that asks is scheduled under `SCHED_BATCH` afterwards, at the nice value it
        /// had (read back from the kernel, not from the crate).
        #[test]
        fn a_thread_that_asks_runs_as_batch_at_its_own_nice_value() {
            std::thread::spawn(|| {
                let before = rustix::process::getpriority_process(None).unwrap();
                batch().unwrap();
                assert_eq!(policy_of("/proc/thread-self/stat"), SCHED_BATCH);
                assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
            })
            .join()
            .unwrap();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use super::linux::{SCHED_BATCH, policy_of};
    use crate::db::sqlite::Sqlite;

    /// The policy of every live thread of this process whose name starts with `prefix` (the
    /// kernel keeps 15 bytes of a name).
    fn policies(prefix: &str) -> Vec<u32> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end().starts_with(prefix) {
                found.push(policy_of(&task.path().join("stat").to_string_lossy()));
            }
        }
        found
    }

    /// Reads, journal commits and checkpoints all run on threads under `SCHED_BATCH`: a read
    /// reports its own thread's policy, and the writer's and checkpointer's threads are found
    /// by name once they have work behind them.
    #[tokio::test]
    async fn the_database_threads_run_as_batch() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Sqlite::open(&dir.path().join("central.db")).unwrap();
        for _ in 0..8 {
            let policy = sqlite.read(|_| Ok(policy_of("/proc/thread-self/stat"))).await.unwrap();
            assert_eq!(policy, SCHED_BATCH, "a reader thread runs under policy {policy}");
        }
        // Other tests open databases too, and their threads may be just starting: each thread
        // switches first thing, so every one of them is seen switched within the deadline.
        let deadline = Instant::now() + Duration::from_secs(10);
        for prefix in ["mttrly-journal", "mttrly-checkpoi", "mttrly-db-read-"] {
            loop {
                let found = policies(prefix);
                if !found.is_empty() && found.iter().all(|&policy| policy == SCHED_BATCH) {
                    break;
                }
                assert!(Instant::now() < deadline, "{prefix}* threads run under policies {found:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
