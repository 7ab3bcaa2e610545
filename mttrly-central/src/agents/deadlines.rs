//! When each server must next be judged online or offline: a min-heap of instants, so the offline
//! sweep touches only the servers whose time has come instead of every server every second.
//!
//! A server's status changes only at a few moments: its heartbeats stop (it turns offline
//! `offline_after` after the last one), its stream opens or closes, a heartbeat arrives after it
//! was judged offline, or an alert rule's sustain window runs out. Each of those *arms* a check
//! (see [`super::liveness`]); between them a judgement would find nothing new. The entry's
//! instant is also kept on the server's live entry (`check_at`): an entry popped with another
//! instant is stale (the check was moved earlier) and is dropped, so a server has one live entry
//! however often it is re-armed.
//!
//! Lock order: the connection table's lock may be held while this one is taken, never the
//! reverse.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Mutex, PoisonError};

use mttrly_core::ids::ServerId;

/// The heap of pending checks, earliest first.
#[derive(Default)]
pub(super) struct Deadlines {
    heap: Mutex<BinaryHeap<Reverse<(i64, ServerId)>>>,
}

impl Deadlines {
    /// Queues a check of `server` at `at_ms`.
    pub(super) fn push(&self, at_ms: i64, server: ServerId) {
        self.heap.lock().unwrap_or_else(PoisonError::into_inner).push(Reverse((at_ms, server)));
    }

    /// Takes every check due at `now_ms`, earliest first.
    pub(super) fn pop_due(&self, now_ms: i64) -> Vec<(i64, ServerId)> {
        let mut heap = self.heap.lock().unwrap_or_else(PoisonError::into_inner);
        let mut due = Vec::new();
        while heap.peek().is_some_and(|Reverse((at, _))| *at <= now_ms) {
            if let Some(Reverse(entry)) = heap.pop() {
                due.push(entry);
            }
        }
        due
    }

    /// Checks queued, stale ones included (for tests: the heap must not grow with heartbeats).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_only_what_is_due_earliest_first() {
        let deadlines = Deadlines::default();
        let (a, b, c) = (ServerId::generate(), ServerId::generate(), ServerId::generate());
        deadlines.push(30, a.clone());
        deadlines.push(10, b.clone());
        deadlines.push(50, c.clone());
        assert!(deadlines.pop_due(9).is_empty());
        assert_eq!(deadlines.pop_due(30), [(10, b), (30, a)]);
        assert_eq!(deadlines.len(), 1);
        assert_eq!(deadlines.pop_due(i64::MAX), [(50, c)]);
    }
}
