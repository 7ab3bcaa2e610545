//! Resolved API tokens, kept so that a request on an open MCP session (or a gRPC call) does not
//! pay a database round trip to learn who it is.
//!
//! Measured before this cache (BENCHMARKS.md, "MCP over Streamable HTTP"), the token lookup was
//! the largest single cost of a `tools/call`: a hop to the blocking pool, the one connection's
//! lock, and the SQL parsed again, on every request of a session whose caller never changes.
//!
//! Revocation stays immediate because every change to what a credential resolves to goes through
//! a hook here, not because entries are short-lived:
//!
//! - whoever revokes a token, changes a user's role, removes a user or changes an account's plan
//!   calls [`AuthCache::invalidate`] (one credential) or [`AuthCache::invalidate_all`] right
//!   after the change commits; the next request, on any open session, is resolved afresh;
//! - a lookup that started before the change cannot put its stale answer back: an answer is kept
//!   only if no invalidation happened since its [`Ticket`] was taken, before the lookup began.
//!
//! Entries also age out after [`MAX_AGE`], a backstop for a change made behind central's back
//! (someone editing the database file), never the mechanism. Only human and assistant API
//! tokens are kept: an OAuth access token's lookup checks its expiry and the human token behind
//! it, which this cache would have to mirror, so those are resolved every time. Refusals are
//! never kept (a token created a moment later must work at once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::db::accounts::TokenOwner;

/// How long an entry is trusted without a hook firing: a backstop, see the module docs.
pub const MAX_AGE: Duration = Duration::from_secs(10);

/// At most this many credentials are kept; past it the table is emptied and refills from use
/// (a flood of distinct valid tokens is bounded by the tokens that exist, but memory must be
/// bounded regardless).
const MAX_ENTRIES: usize = 4096;

/// The cache; one per [`crate::state::Central`].
#[derive(Default)]
pub struct AuthCache {
    /// Bumped by every invalidation; an answer looked up under an older value is not kept.
    generation: AtomicU64,
    entries: RwLock<HashMap<[u8; 32], Entry>>,
}

struct Entry {
    owner: TokenOwner,
    stored: Instant,
}

/// Taken before a lookup starts; see [`AuthCache::keep`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct Ticket(u64);

impl AuthCache {
    /// The owner of the credential with this SHA-256, if known and not too old.
    pub fn get(&self, hash: &[u8; 32]) -> Option<TokenOwner> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(hash)?;
        (entry.stored.elapsed() < MAX_AGE).then(|| entry.owner.clone())
    }

    /// How many invalidations there have been: a holder of a resolved owner that outlives a
    /// request (a push stream) checks again when it changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Call before looking a credential up in the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    /// Keeps a lookup's answer, unless an invalidation happened since `ticket` was taken.
    pub fn keep(&self, ticket: Ticket, hash: [u8; 32], owner: &TokenOwner) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        // Checked under the write lock, which every invalidation also takes after bumping the
        // generation: either the bump is seen here, or the invalidation runs after this insert
        // and removes it.
        if self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&hash) {
            entries.retain(|_, e| e.stored.elapsed() < MAX_AGE);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash, Entry { owner: owner.clone(), stored: Instant::now() });
    }

    /// The hook for a change to one credential (revoked, narrowed): its next use is looked up.
    pub fn invalidate(&self, hash: &[u8; 32]) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.write().unwrap_or_else(PoisonError::into_inner).remove(hash);
    }

    /// The hook for a change to a credential this cache never holds (an OAuth grant revoked):
    /// nothing to drop, but what holds an owner beyond a request (a push stream) reads it again.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The hook for a change that may affect many credentials (a user's role or removal, an
    /// account's plan): every credential's next use is looked up.
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.write().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mttrly_core::ids::{AccountId, UserId};
    use mttrly_core::{Plan, Principal, ToolSurface};

    use super::*;
    use mttrly_core::Role;

    fn owner(name: &str) -> TokenOwner {
        TokenOwner {
            account_id: AccountId::generate(),
            plan: Plan::Watchdog,
            principal: Principal::Human { user_id: UserId::generate(), name: name.to_owned() },
            role: Role::Admin,
            user_name: name.to_owned(),
            scope: ToolSurface::ALL,
            credential: format!("tok_{name}"),
        }
    }

    #[test]
    fn a_kept_answer_is_returned_until_its_credential_is_invalidated() {
        let cache = AuthCache::default();
        let (a, b) = ([1; 32], [2; 32]);
        assert!(cache.get(&a).is_none());
        cache.keep(cache.ticket(), a, &owner("alice"));
        cache.keep(cache.ticket(), b, &owner("bob"));
        assert_eq!(cache.get(&a).unwrap().user_name, "alice");
        cache.invalidate(&a);
        assert!(cache.get(&a).is_none(), "revoked: looked up again at once");
        assert_eq!(cache.get(&b).unwrap().user_name, "bob", "other credentials stay");
        cache.invalidate_all();
        assert!(cache.get(&b).is_none());
    }

    #[test]
    fn a_lookup_that_raced_an_invalidation_is_not_kept() {
        let cache = AuthCache::default();
        let hash = [7; 32];
        // The lookup starts (ticket), the token is revoked and the hook fires, then the lookup's
        // answer (read before the revocation committed) arrives.
        let ticket = cache.ticket();
        cache.invalidate(&hash);
        cache.keep(ticket, hash, &owner("stale"));
        assert!(cache.get(&hash).is_none());
        let ticket = cache.ticket();
        cache.invalidate_all();
        cache.keep(ticket, hash, &owner("stale"));
        assert!(cache.get(&hash).is_none());
    }

    #[test]
    fn the_table_stays_bounded() {
        let cache = AuthCache::default();
        for i in 0..=MAX_ENTRIES {
            let mut hash = [0; 32];
            hash[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.keep(cache.ticket(), hash, &owner("many"));
        }
        assert!(cache.entries.read().unwrap().len() <= MAX_ENTRIES);
    }
}
