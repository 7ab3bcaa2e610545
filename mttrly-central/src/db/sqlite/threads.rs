//! How the kernel schedules central's own background database threads: the readers and the
//! journal writer's checkpointer.
//!
//! Why `SCHED_BATCH`: a reader is woken by a runtime thread that hands it a read. Under the
//! default policy a thread that wakes up may preempt the running one when they share a CPU, so
//! on a busy central a read cut the runtime thread off in the middle of its poll and cost two
//! extra context switches. A profile of the MCP call path on one core (`perf record
//! --call-graph dwarf`, 2026-12-05) had 15 % of central's samples in those switches. A
//! `SCHED_BATCH` thread does not preempt on wake-up: the runtime thread finishes its poll and the
//! reader runs on a free CPU (at once on an idle machine) or, when every CPU is busy, once the
//! running task's time slice is used up (a few milliseconds with one competitor, checked at
//! scheduler ticks; longer when many tasks compete for the CPU), and then drains every read
//! queued meanwhile in one go. It is still scheduled fairly,
//! at its nice value. Measured from outside with `scripts/mcp-wrk.sh` (BENCHMARKS.md, "The
//! database threads' scheduling policy").
//!
//! The journal writer is left under the default policy on purpose: it holds the writer
//! connection through each commit and its `fsync`, and an approval, a rejection and every other
//! write wait for that connection, so it must run the moment its `fsync` returns, not after
//! someone else's time slice.
//!
//! Only a thread under the default policy is switched, and its nice value stays what it was: an
//! operator who chose another policy (`chrt`, systemd's `CPUSchedulingPolicy=`) or a nice value
//! keeps it. An explicit `SCHED_OTHER` (`chrt -o`, `CPUSchedulingPolicy=other`) cannot be told
//! apart from the default and is switched like it. A kernel or sandbox that refuses the change leaves the thread as it was, which is
//! only slower.

/// Puts the calling thread under `SCHED_BATCH` if it runs under the default policy, with its
/// nice value unchanged. Call it first thing in a reader or the checkpointer; a thread not
/// switched is logged (with the policy it runs under) and otherwise harmless.
pub(super) fn run_as_batch() {
    #[cfg(target_os = "linux")]
    if let Err(reason) = linux::batch() {
        tracing::debug!(
            reason = %mttrly_core::ErrorChain(&reason),
            "database thread not switched to SCHED_BATCH"
        );
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
        #[error("could not read the thread's scheduling policy")]
        Policy(#[source] thread_priority::Error),
        #[error("the thread runs under {0:?}, which the operator chose")]
        Chosen(ThreadSchedulePolicy),
        #[error("could not read the thread's nice value")]
        Nice(#[source] rustix::io::Errno),
        #[error("no priority maps to nice value {0}")]
        NoPriority(i32),
        /// The crate sets the policy, then the nice value: a refusal of the second leaves the
        /// thread under `SCHED_BATCH`, so the policy in force is read back and said.
        #[error("the kernel refused SCHED_BATCH or the nice value; the thread now runs under {now:?}")]
        Refused {
            now: Option<ThreadSchedulePolicy>,
            #[source]
            source: thread_priority::Error,
        },
    }

    pub(super) fn batch() -> Result<(), Unchanged> {
        // A realtime or idle policy, or batch already, was chosen by whoever started central.
        let policy = thread_priority::thread_schedule_policy().map_err(Unchanged::Policy)?;
        if policy != ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other) {
            return Err(Unchanged::Chosen(policy));
        }
        // `getpriority(PRIO_PROCESS, 0)` is the calling thread's own nice value on Linux.
        let nice = rustix::process::getpriority_process(None).map_err(Unchanged::Nice)?;
        // The crate sets a normal policy's nice value from a 0..=99 priority; take the one that
        // maps to the current nice value, so the call changes the policy and nothing else.
        let priority = keeping(nice).ok_or(Unchanged::NoPriority(nice))?;
        set_thread_priority_and_policy(thread_native_id(), priority, BATCH)
            .map_err(|source| Unchanged::Refused { now: thread_priority::thread_schedule_policy().ok(), source })
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

    /// `SCHED_IDLE` in the same field.
    #[cfg(test)]
    const SCHED_IDLE: u32 = 5;

    /// `SCHED_OTHER`, the default policy, in the same field.
    #[cfg(test)]
    pub(in crate::db::sqlite) const SCHED_OTHER: u32 = 0;

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

        /// Every nice value a thread can have has a priority that the crate turns back into
        /// that nice value, so `batch` never fails for want of one (what the kernel does with it
        /// is the next test's).
        #[test]
        fn every_nice_value_has_a_priority_that_maps_back_to_it() {
            for nice in -20..=19 {
                let priority = keeping(nice).unwrap_or_else(|| panic!("nice {nice} has no priority"));
                assert_eq!(priority.to_posix(BATCH).unwrap(), nice);
            }
        }

        /// A thread at any nice value it can move to without privilege (from the test's own up
        /// to 19) runs under `SCHED_BATCH` afterwards at that same nice value, both read back
        /// from the kernel.
        #[test]
        fn a_thread_runs_as_batch_at_the_nice_value_it_had() {
            let start = rustix::process::getpriority_process(None).unwrap();
            for nice in start..=19 {
                std::thread::spawn(move || {
                    rustix::process::setpriority_process(None, nice).unwrap();
                    batch().unwrap();
                    assert_eq!(policy_of("/proc/thread-self/stat"), SCHED_BATCH, "at nice {nice}");
                    assert_eq!(rustix::process::getpriority_process(None).unwrap(), nice);
                })
                .join()
                .unwrap();
            }
        }

        /// A thread that an operator put under another policy (here `SCHED_IDLE`, which any
        /// thread may take) keeps it, and its nice value.
        #[test]
        fn a_policy_the_operator_chose_is_kept() {
            std::thread::spawn(|| {
                let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
                set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle).unwrap();
                let nice = rustix::process::getpriority_process(None).unwrap();
                assert!(matches!(batch(), Err(Unchanged::Chosen(policy)) if policy == idle));
                assert_eq!(policy_of("/proc/thread-self/stat"), SCHED_IDLE);
                assert_eq!(rustix::process::getpriority_process(None).unwrap(), nice);
            })
            .join()
            .unwrap();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use super::linux::{SCHED_BATCH, SCHED_OTHER, policy_of};
    use crate::db::sqlite::Sqlite;

    /// Every live thread of this process whose name starts with one of `prefixes` (the kernel
    /// keeps 15 bytes of a name): its id, the prefix it matched, and its policy.
    fn threads(prefixes: &[&'static str]) -> HashMap<String, (&'static str, u32)> {
        let mut found = HashMap::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if let Some(&prefix) = prefixes.iter().find(|&&prefix| comm.trim_end().starts_with(prefix)) {
                let policy = policy_of(&task.path().join("stat").to_string_lossy());
                found.insert(task.file_name().to_string_lossy().into_owned(), (prefix, policy));
            }
        }
        found
    }

    /// The readers and the checkpointer of a database run under `SCHED_BATCH`, and its journal
    /// writer under the default policy (it holds the writer connection through its commits).
    /// A read reports its own thread's policy; the others are the threads of each kind that
    /// appeared when the database was opened (other tests open databases at the same time, and
    /// theirs must obey the same rule).
    #[tokio::test]
    async fn readers_and_the_checkpointer_run_as_batch_and_the_journal_writer_does_not() {
        let expected =
            [("mttrly-db-read-", SCHED_BATCH), ("mttrly-checkpoi", SCHED_BATCH), ("mttrly-journal", SCHED_OTHER)];
        let prefixes = expected.map(|(prefix, _)| prefix);
        let before = threads(&prefixes);
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Sqlite::open(&dir.path().join("central.db")).unwrap();
        for _ in 0..8 {
            let policy = sqlite.read(|_| Ok(policy_of("/proc/thread-self/stat"))).await.unwrap();
            assert_eq!(policy, SCHED_BATCH, "a reader thread runs under policy {policy}");
        }
        // A thread switches first thing after it starts: give a new one a moment to get there.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let new: Vec<_> = threads(&prefixes).into_iter().filter(|(id, _)| !before.contains_key(id)).collect();
            let kinds_seen = expected.iter().all(|(prefix, _)| new.iter().any(|(_, (seen, _))| seen == prefix));
            let wrong: Vec<_> = new
                .iter()
                .filter(|(_, (prefix, policy))| expected.iter().any(|(p, want)| p == prefix && want != policy))
                .collect();
            if kinds_seen && wrong.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "new database threads {new:?}: wrong policy {wrong:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
