//! The war room's live side: every notification, handed to this process's listeners once its
//! row is durable (MCP sessions that subscribed to a resource, chat delivery).
//!
//! Notifications have their own durable log (the `notifications` table, whose positions are the
//! pull path's cursors), so the feed follows that table as the event bus follows the audit log:
//! published after the commit, never waiting for a listener, and a listener that falls behind is
//! told how much it missed and resyncs (an MCP session tells its client to re-read everything it
//! subscribed to; a missed chat message is in the channel for the pull path).
//!
//! Each published notification carries its channel's subscribers with their filters, read once
//! per publish from a cache kept exact in this process: a subscription change removes the
//! channel's entry, and a read that raced a change is not stored (generation check). So a
//! listener decides "does this person want it" without a database read, whatever the number of
//! listeners.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mttrly_core::MttrlyError;
use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::tools::notify::Notification;
use tokio::sync::broadcast;

use crate::db::Db;
use crate::db::warroom::StoredSubscription;

/// Notifications held for a listener that has not read them yet.
pub const CAPACITY: usize = 16_384;

/// The most channels whose subscribers are cached; past it the cache starts over (a cold entry
/// costs one indexed read on its next publish).
const CACHE_MAX: usize = 50_000;

/// One stored notification, as listeners see it.
#[derive(Debug)]
pub struct Published {
    /// The tenant: listeners serving people filter on it first.
    pub account_id: AccountId,
    /// Its position (the pull path's cursor is `n{seq}`).
    pub seq: i64,
    /// The notification as stored (redacted).
    pub notification: Notification,
    /// The channel's subscribers, with their filters, when it was published.
    pub subscribers: Arc<[StoredSubscription]>,
}

impl Published {
    /// Whether `user` wants it pushed: by their subscription's filter when they have one on
    /// this channel; `None` when they have none.
    pub fn wanted_by(&self, user: &UserId) -> Option<bool> {
        self.subscribers.iter().find(|s| &s.user_id == user).map(|s| s.filter.matches(&self.notification))
    }
}

/// A channel of an account.
type ChannelKey = (AccountId, String);

/// The feed. One per central.
pub struct Feed {
    tx: broadcast::Sender<Arc<Published>>,
    cache: Mutex<HashMap<ChannelKey, Arc<[StoredSubscription]>>>,
    generation: AtomicU64,
}

impl Default for Feed {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self { tx, cache: Mutex::default(), generation: AtomicU64::new(0) }
    }
}

impl Feed {
    /// A new listener; it sees every notification published from now on.
    pub fn listen(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    /// How many listeners are live.
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Hands a stored notification to every listener. Never waits.
    pub(crate) fn publish(&self, published: Published) {
        // `send` fails only when nobody listens, which is not an error for a publisher.
        let _ = self.tx.send(Arc::new(published));
    }

    /// `channel`'s subscribers, from the cache or (once per change) the database.
    pub(crate) async fn subscribers(
        &self,
        db: &Db,
        account: &AccountId,
        channel: &str,
    ) -> Result<Arc<[StoredSubscription]>, MttrlyError> {
        let key = (account.clone(), channel.to_owned());
        if let Some(hit) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(Arc::clone(hit));
        }
        let before = self.generation.load(Ordering::Acquire);
        let read: Arc<[StoredSubscription]> =
            db.account(account).warroom().subscribers(channel.to_owned()).await?.into();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        // A change since the read began may not be in it: use it for this publish, keep it not.
        if self.generation.load(Ordering::Acquire) == before {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, Arc::clone(&read));
        }
        Ok(read)
    }

    /// Forgets `channel`'s subscribers after a change, so the next publish reads them.
    pub(crate) fn changed(&self, account: &AccountId, channel: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        cache.remove(&(account.clone(), channel.to_owned()));
    }

    /// Forgets every cached subscriber list (a person was removed or their role changed).
    pub(crate) fn forget_all(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        cache.clear();
    }
}
