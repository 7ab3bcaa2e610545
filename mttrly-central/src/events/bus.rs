//! The fan-out: one bounded ring shared by every subscriber, each with its own cursor.
//!
//! Publishing never waits: when a subscriber falls more than the capacity behind, the oldest
//! events are overwritten for it and its next read says how many it missed ([`Next::Lagged`]),
//! so one stuck subscriber costs the others and the audit writer nothing. A value is dropped
//! as soon as every subscriber has read it, so memory follows the slowest live reader, capped.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::Event;

/// Events held for a subscriber that has not read them yet. One writer batch is at most 4096
/// rows, so a subscriber that reads between batches never lags.
pub const DEFAULT_CAPACITY: usize = 65_536;

/// The in-process event bus. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

/// What a subscriber reads next.
#[derive(Debug)]
pub enum Next {
    /// The next event, in audit order for its account.
    Event(Arc<Event>),
    /// This many events were missed (the subscriber was too slow); resync from the audit log
    /// after the last `seq` seen for each account, then carry on reading.
    Lagged(u64),
    /// The bus is gone (central is stopping).
    Closed,
}

/// One subscriber's cursor on the bus.
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
}

impl Bus {
    /// A bus holding at most `capacity` unread events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }

    /// A new subscriber; it sees every event published from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription { rx: self.tx.subscribe() }
    }

    /// How many subscribers are live.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Publishes one event. Never blocks; with no subscriber the event is simply dropped.
    pub(crate) fn publish(&self, event: Event) {
        // `send` fails only when nobody subscribes, which is not an error for a publisher.
        let _ = self.tx.send(Arc::new(event));
    }
}

impl Subscription {
    /// Waits for the next event.
    pub async fn next(&mut self) -> Next {
        match self.rx.recv().await {
            Ok(event) => Next::Event(event),
            Err(broadcast::error::RecvError::Lagged(n)) => Next::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Next::Closed,
        }
    }

    /// Like [`Subscription::next`], but [`Next::Closed`] as soon as `stop` changes (central is
    /// shutting down): subscriber tasks must not outlive the handles they hold.
    pub async fn next_or_stop(&mut self, stop: &mut watch::Receiver<bool>) -> Next {
        tokio::select! {
            next = self.next() => next,
            _ = stop.changed() => Next::Closed,
        }
    }

    /// The next event if one is ready, without waiting (`None`: nothing yet).
    pub fn try_next(&mut self) -> Option<Next> {
        match self.rx.try_recv() {
            Ok(event) => Some(Next::Event(event)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Next::Lagged(n)),
            Err(broadcast::error::TryRecvError::Closed) => Some(Next::Closed),
            Err(broadcast::error::TryRecvError::Empty) => None,
        }
    }
}
