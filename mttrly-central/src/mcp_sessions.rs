//! The MCP sessions central's `/mcp` gate knows about: who opened each one, with which token,
//! and when it was last used.
//!
//! Sessions cost memory (a worker task and its channels, ~60 KB each) and `initialize` is one
//! request, so without a cap one token can open thousands. Live sessions are capped per token and
//! per user. At a cap, the least recently used session of that token (or user) is ended if it has
//! been idle for [`EVICT_IDLE`]: real clients leak sessions (a restarted IDE never sends DELETE),
//! and they should not be locked out until the idle timeout; a client whose session was ended
//! gets 404 and opens a new one, as the MCP specification requires. When every session at the cap
//! is in active use, `initialize` is refused with `RATE_LIMITED` instead, so a flood cannot evict
//! the sessions that are working. A session with a request in flight (a long tool call, an open
//! SSE stream) is in use however long ago that request started: it is never evicted nor swept,
//! and its idle time counts from when its last request ended.
//!
//! The gate is the authority on a session's lifetime: a session idle for the configured timeout
//! is ended here (and closed in the MCP layer), DELETE frees its slot at once, and an id this table
//! does not know gets 404 before it reaches the MCP layer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use mttrly_core::{ErrorCode, MttrlyError};

/// How long a session must have been idle before a new one of the same token or user may
/// replace it at the cap.
pub(crate) const EVICT_IDLE: Duration = Duration::from_secs(60);

/// The caps and the idle lifetime.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionLimits {
    /// Live sessions per token.
    pub(crate) per_token: u32,
    /// Live sessions per user (all their tokens).
    pub(crate) per_user: u32,
    /// A session unused this long has ended.
    pub(crate) idle: Duration,
}

struct Entry {
    user: String,
    token: String,
    last_used_ms: AtomicU64,
    /// Requests in flight on the session (their response bodies not yet ended).
    busy: AtomicU32,
}

impl Entry {
    /// How long the session has been unused at `now`: zero while a request is in flight.
    fn idle_ms(&self, now: u64) -> u64 {
        if self.busy.load(Ordering::Acquire) > 0 {
            return 0;
        }
        now.saturating_sub(self.last_used_ms.load(Ordering::Relaxed))
    }
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Entry>,
    /// Live sessions plus reservations, per token and per user.
    per_token: HashMap<String, u32>,
    per_user: HashMap<String, u32>,
}

impl Inner {
    fn decrement(&mut self, token: &str, user: &str) {
        for (map, key) in [(&mut self.per_token, token), (&mut self.per_user, user)] {
            if let Some(n) = map.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        match self.sessions.remove(id) {
            Some(entry) => {
                self.decrement(&entry.token, &entry.user);
                true
            }
            None => false,
        }
    }
}

/// What the table knows about a session id presented by a user.
pub(crate) enum Lookup {
    /// Never opened here, ended, or expired (the caller closes it in the MCP layer).
    Unknown,
    /// Another user's session.
    Foreign,
    /// The user's own live session, in use until the returned guard drops (keep it with the
    /// response body, so a stream counts for as long as it is open).
    Mine(SessionUse),
}

/// One request on a session: while it lives the session is in use (never evicted nor swept);
/// when it drops, the session's idle time starts again from then.
pub(crate) struct SessionUse {
    table: Arc<SessionTable>,
    id: String,
}

impl Drop for SessionUse {
    fn drop(&mut self) {
        let now = self.table.now_ms();
        let inner = self.table.inner.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = inner.sessions.get(&self.id) {
            e.last_used_ms.store(now, Ordering::Relaxed);
            e.busy.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A response body that keeps its session (or stateless slot) in use until it ends.
pub(crate) struct InUseBody<B, G = SessionUse> {
    pub(crate) body: B,
    pub(crate) _use: G,
}

/// How many 2026-07-28 (stateless) requests one person may have in flight at once: a
/// `subscriptions/listen` stream holds one for as long as it is open. Stateless requests open no
/// session, so the session caps do not bound them; this does.
pub(crate) const STATELESS_PER_USER: usize = 32;

/// One stateless request in flight; frees its slot when the response body ends.
pub(crate) struct StatelessUse {
    table: Arc<SessionTable>,
    user: String,
}

impl Drop for StatelessUse {
    fn drop(&mut self) {
        let mut stateless = self.table.stateless.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = stateless.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                stateless.remove(&self.user);
            }
        }
    }
}

impl<B: http_body::Body + Unpin, G: Unpin> http_body::Body for InUseBody<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The sessions, their owners and their counts.
pub(crate) struct SessionTable {
    limits: SessionLimits,
    epoch: Instant,
    inner: RwLock<Inner>,
    /// Stateless requests in flight, per person.
    stateless: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// A slot held for an `initialize` in flight: counted against the caps from the moment it is
/// taken, so concurrent `initialize` requests cannot overshoot. Dropped without
/// [`Reservation::commit`] (the MCP layer refused, the client went away), it frees the slot.
pub(crate) struct Reservation {
    table: Arc<SessionTable>,
    token: String,
    user: String,
    committed: bool,
    /// Sessions ended to make room; the caller closes them in the MCP layer.
    pub(crate) evicted: Vec<String>,
}

impl Reservation {
    /// The session was created with this id.
    pub(crate) fn commit(mut self, id: &str) {
        let now = self.table.now_ms();
        let mut inner = self.table.write();
        let entry = Entry {
            user: self.user.clone(),
            token: self.token.clone(),
            last_used_ms: AtomicU64::new(now),
            busy: AtomicU32::new(0),
        };
        if let Some(old) = inner.sessions.insert(id.to_owned(), entry) {
            // A reused id (never expected from random ids): keep the counts exact.
            inner.decrement(&old.token, &old.user);
        }
        self.committed = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.committed {
            self.table.write().decrement(&self.token, &self.user);
        }
    }
}

impl SessionTable {
    /// An empty table.
    pub(crate) fn new(limits: SessionLimits) -> Self {
        Self { limits, epoch: Instant::now(), inner: RwLock::default(), stateless: std::sync::Mutex::default() }
    }

    /// A slot for one 2026-07-28 request of `user`, held until its response ends; refused past
    /// [`STATELESS_PER_USER`] in flight.
    pub(crate) fn take_stateless(self: &Arc<Self>, user: &str) -> Result<StatelessUse, MttrlyError> {
        let mut stateless = self.stateless.lock().unwrap_or_else(PoisonError::into_inner);
        let n = stateless.entry(user.to_owned()).or_insert(0);
        if *n >= STATELESS_PER_USER {
            return Err(MttrlyError::new(
                ErrorCode::RateLimited,
                format!(
                    "{STATELESS_PER_USER} MCP requests of yours are already in flight (open subscriptions/listen streams count); end one first"
                ),
            )
            .with_detail("retry_after_seconds", 1));
        }
        *n += 1;
        Ok(StatelessUse { table: Arc::clone(self), user: user.to_owned() })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn idle_ms(&self) -> u64 {
        u64::try_from(self.limits.idle.as_millis()).unwrap_or(u64::MAX)
    }

    /// Looks `id` up for `user` and, when it is theirs, marks it in use until the returned guard
    /// drops. Takes only the read lock on the hot path.
    pub(crate) fn touch(self: &Arc<Self>, id: &str, user: &str) -> Lookup {
        let now = self.now_ms();
        {
            let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            match inner.sessions.get(id) {
                None => return Lookup::Unknown,
                Some(e) if e.user != user => return Lookup::Foreign,
                Some(e) if e.idle_ms(now) < self.idle_ms() => {
                    e.last_used_ms.store(now, Ordering::Relaxed);
                    e.busy.fetch_add(1, Ordering::AcqRel);
                    return Lookup::Mine(SessionUse { table: Arc::clone(self), id: id.to_owned() });
                }
                Some(_) => {}
            }
        }
        // Expired: forget it so its slot is free.
        self.write().remove(id);
        Lookup::Unknown
    }

    /// Takes a slot for a new session of `token` (credential key) opened by `user`, ending the
    /// least recently used idle session where a cap is reached, or refuses with `RATE_LIMITED`.
    pub(crate) fn reserve(self: &Arc<Self>, token: &str, user: &str) -> Result<Reservation, MttrlyError> {
        let now = self.now_ms();
        let evict_ms = u64::try_from(EVICT_IDLE.min(self.limits.idle).as_millis()).unwrap_or(u64::MAX);
        let mut inner = self.write();
        let mut evicted = Vec::new();
        // Below the caps nothing is scanned; at a cap, an expired session is the first to go
        // (it is idle longer than any eviction threshold).
        for scope in [Scope::Token, Scope::User] {
            let (key, cap) = match scope {
                Scope::Token => (token, self.limits.per_token),
                Scope::User => (user, self.limits.per_user),
            };
            let held = match scope {
                Scope::Token => inner.per_token.get(key),
                Scope::User => inner.per_user.get(key),
            }
            .copied()
            .unwrap_or(0);
            if held < cap {
                continue;
            }
            let oldest = inner
                .sessions
                .iter()
                .filter(|(_, e)| match scope {
                    Scope::Token => e.token == key,
                    Scope::User => e.user == key,
                })
                .map(|(id, e)| (id.clone(), e.idle_ms(now)))
                .max_by_key(|(_, idle)| *idle);
            match oldest {
                Some((id, idle)) if idle >= evict_ms => {
                    tracing::info!(
                        scope = scope.name(),
                        cap,
                        "MCP session cap reached: ending the least recently used idle session"
                    );
                    inner.remove(&id);
                    evicted.push(id);
                }
                other => {
                    let wait_ms = other.map_or(1000, |(_, idle)| evict_ms.saturating_sub(idle));
                    let retry = wait_ms.div_ceil(1000).max(1);
                    tracing::warn!(
                        scope = scope.name(),
                        cap,
                        "MCP session cap reached and every session is in use; refused initialize"
                    );
                    return Err(MttrlyError::new(
                        ErrorCode::RateLimited,
                        format!(
                            "this {} already has {held} live MCP sessions (the limit is {cap}) and all are in use; \
                             end one (DELETE /mcp) or retry in {retry}s",
                            scope.noun()
                        ),
                    )
                    .with_detail("scope", scope.name())
                    .with_detail("limit", cap)
                    .with_detail("current", held)
                    .with_detail("retry_after_seconds", retry));
                }
            }
        }
        *inner.per_token.entry(token.to_owned()).or_default() += 1;
        *inner.per_user.entry(user.to_owned()).or_default() += 1;
        drop(inner);
        Ok(Reservation {
            table: Arc::clone(self),
            token: token.to_owned(),
            user: user.to_owned(),
            committed: false,
            evicted,
        })
    }

    /// Ends a session (DELETE). Whether it was live.
    pub(crate) fn remove(&self, id: &str) -> bool {
        self.write().remove(id)
    }

    /// Forgets every session idle past the timeout and returns their ids.
    pub(crate) fn sweep(&self) -> Vec<String> {
        let now = self.now_ms();
        let idle_ms = self.idle_ms();
        let mut inner = self.write();
        let expired: Vec<String> =
            inner.sessions.iter().filter(|(_, e)| e.idle_ms(now) >= idle_ms).map(|(id, _)| id.clone()).collect();
        for id in &expired {
            inner.remove(id);
        }
        expired
    }

    /// Live sessions.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).sessions.len()
    }

    #[cfg(test)]
    fn age(&self, id: &str, by: Duration) {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = inner.sessions.get(id) {
            let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
            e.last_used_ms.fetch_sub(by.min(e.last_used_ms.load(Ordering::Relaxed)), Ordering::Relaxed);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Scope {
    Token,
    User,
}

impl Scope {
    const fn name(self) -> &'static str {
        match self {
            Self::Token => "mcp_sessions_per_token",
            Self::User => "mcp_sessions_per_user",
        }
    }

    const fn noun(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::User => "user",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn table(per_token: u32, per_user: u32) -> Arc<SessionTable> {
        // The epoch is backdated so `age` can move sessions into the past.
        let t = SessionTable::new(SessionLimits { per_token, per_user, idle: Duration::from_secs(300) });
        Arc::new(SessionTable { epoch: Instant::now().checked_sub(Duration::from_secs(3600)).unwrap(), ..t })
    }

    fn open(t: &Arc<SessionTable>, token: &str, user: &str, id: &str) -> Vec<String> {
        let r = t.reserve(token, user).unwrap();
        let evicted = r.evicted.clone();
        r.commit(id);
        evicted
    }

    fn look(t: &Arc<SessionTable>, id: &str, user: &str) -> &'static str {
        match t.touch(id, user) {
            Lookup::Unknown => "unknown",
            Lookup::Foreign => "foreign",
            Lookup::Mine(_) => "mine",
        }
    }

    #[test]
    fn a_session_with_a_request_in_flight_is_neither_evicted_nor_swept() {
        let t = table(1, 10);
        open(&t, "tok", "u", "s1");
        // A long tool call, or an open SSE stream, started on s1 long ago.
        let Lookup::Mine(call) = t.touch("s1", "u") else { panic!("s1 is live") };
        t.age("s1", Duration::from_secs(400));
        let err = t.reserve("tok", "u").err().expect("a flood of initialize cannot end a working session");
        assert_eq!(err.code(), ErrorCode::RateLimited);
        assert!(t.sweep().is_empty(), "past the idle timeout, but in use");
        assert_eq!(look(&t, "s1", "u"), "mine");
        // Its idle time starts when the request ends.
        drop(call);
        assert!(t.reserve("tok", "u").is_err(), "just used");
        t.age("s1", Duration::from_secs(61));
        let r = t.reserve("tok", "u").unwrap();
        assert_eq!(r.evicted, ["s1"]);
    }

    #[test]
    fn the_token_cap_refuses_when_every_session_is_in_use() {
        let t = table(2, 10);
        open(&t, "tok", "u", "s1");
        open(&t, "tok", "u", "s2");
        let err = t.reserve("tok", "u").err().unwrap();
        assert_eq!(err.code(), ErrorCode::RateLimited);
        assert_eq!(err.details()["scope"], "mcp_sessions_per_token");
        assert_eq!(err.details()["limit"], 2);
        assert!(err.details()["retry_after_seconds"].as_u64().unwrap() >= 1);
        // Another token of the same user is not affected.
        assert!(t.reserve("tok2", "u").is_ok());
    }

    #[test]
    fn at_the_cap_the_least_recently_used_idle_session_makes_room() {
        let t = table(2, 10);
        open(&t, "tok", "u", "s1");
        open(&t, "tok", "u", "s2");
        t.age("s1", Duration::from_secs(120));
        t.age("s2", Duration::from_secs(90));
        assert_eq!(open(&t, "tok", "u", "s3"), ["s1"]);
        assert_eq!(look(&t, "s1", "u"), "unknown");
        assert_eq!(look(&t, "s2", "u"), "mine", "still live, and now used");
        assert!(t.reserve("tok", "u").is_err(), "s2 was just used, s3 is new");
    }

    #[test]
    fn the_user_cap_spans_tokens() {
        let t = table(10, 2);
        open(&t, "a", "u", "s1");
        open(&t, "b", "u", "s2");
        let err = t.reserve("c", "u").err().unwrap();
        assert_eq!(err.details()["scope"], "mcp_sessions_per_user");
        assert!(t.reserve("c", "other-user").is_ok());
    }

    #[test]
    fn reservations_count_and_free_their_slot_when_dropped() {
        let t = table(1, 10);
        let held = t.reserve("tok", "u").unwrap();
        assert!(t.reserve("tok", "u").is_err(), "a reservation in flight holds the slot");
        drop(held);
        assert!(t.reserve("tok", "u").is_ok());
    }

    #[test]
    fn deleted_and_expired_sessions_free_their_slots() {
        let t = table(1, 10);
        open(&t, "tok", "u", "s1");
        assert!(t.remove("s1"));
        assert!(!t.remove("s1"));
        open(&t, "tok", "u", "s2");
        t.age("s2", Duration::from_secs(301));
        assert_eq!(t.sweep(), ["s2"]);
        assert_eq!(t.live(), 0);
        open(&t, "tok", "u", "s3");
        t.age("s3", Duration::from_secs(301));
        assert_eq!(look(&t, "s3", "u"), "unknown", "expired on use, even before a sweep");
        assert!(t.reserve("tok", "u").is_ok());
    }

    #[test]
    fn sessions_belong_to_their_user() {
        let t = table(5, 5);
        open(&t, "tok", "u", "s1");
        assert_eq!(look(&t, "s1", "intruder"), "foreign");
        assert_eq!(look(&t, "nope", "u"), "unknown");
    }

    #[test]
    fn concurrent_initializes_never_overshoot_the_cap() {
        let t = table(8, 100);
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..32)
                .map(|i| {
                    let t = Arc::clone(&t);
                    s.spawn(move || match t.reserve("tok", "u") {
                        Ok(r) => {
                            r.commit(&format!("s{i}"));
                            1
                        }
                        Err(_) => 0,
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 8);
        assert_eq!(t.live(), 8);
    }
}
