//! Tokens you can see and kill: listing an account's credentials, revoking one by its public
//! id, and remembering when each was last used, as operations of the app (the gRPC
//! `AccountService` is a thin adapter over them).
//!
//! Who sees what: an admin sees and revokes every credential of the account (a leaked assistant
//! token is killed by whoever notices, if they are an admin); everyone else only their own. A
//! credential of another account, or of another user for a non-admin, behaves exactly like a
//! missing one (`NOT_FOUND`), so ids cannot be probed.
//!
//! Revocation is effective at once on every transport: the row is revoked first, then the auth
//! cache's hook fires, so the next request on any open MCP session or gRPC channel is looked up
//! afresh and refused. OAuth access tokens are never cached; their grant's revocation is seen by
//! the next lookup.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use mttrly_core::{ErrorCode, MttrlyError, Role, Source};

use crate::db::accounts::{Revoked, TokenOwner, TokenRow};
use crate::state::Central;

/// Tokens' last uses are written at most once per this many milliseconds per token.
pub const USAGE_RESOLUTION_MS: i64 = 60_000;

/// At most this many tokens' last writes are remembered; past it the table is emptied (costing
/// at most one extra write per token in use).
const MAX_TRACKED: usize = 4096;

/// When each API token was last used, written to the database at most once a minute per token.
///
/// Why not a write per request: the MCP path resolves a token on every call from the auth cache
/// without touching the database (BENCHMARKS.md); a write per request would put it back on the
/// one connection's lock. Why not a periodic flusher: a token's first use in a minute is written
/// at once (off the request, on a spawned task) so `tokens list` is never more than a minute
/// behind, and nothing needs flushing at shutdown beyond that minute. The request only pays a
/// short lock and a map lookup.
#[derive(Default)]
pub struct Usage {
    /// The minute (Unix ms / 60 000) of each token's last written use.
    written: Mutex<HashMap<[u8; 32], i64>>,
}

impl Usage {
    /// Whether a use at `now_ms` needs writing: true for the first use of a token in a minute.
    fn should_write(&self, hash: &[u8; 32], now_ms: i64) -> bool {
        let minute = now_ms / USAGE_RESOLUTION_MS;
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        if written.get(hash) == Some(&minute) {
            return false;
        }
        if written.len() >= MAX_TRACKED && !written.contains_key(hash) {
            written.clear();
        }
        written.insert(*hash, minute);
        true
    }

    /// Records a use of the API token with this hash at `now_ms`: `Some(minute start)` when this
    /// is its first use in that minute, which the caller (`auth::resolve`, the only place that
    /// sees every use) writes off the request; `None` otherwise.
    pub fn due(&self, hash: &[u8; 32], now_ms: i64) -> Option<i64> {
        // Stored to the minute: the precision promised, and no finer-grained usage trail.
        self.should_write(hash, now_ms).then(|| now_ms - now_ms.rem_euclid(USAGE_RESOLUTION_MS))
    }
}

/// Only humans manage credentials; an assistant never lists or revokes tokens.
fn require_human(caller: &TokenOwner) -> Result<(), MttrlyError> {
    if caller.principal.is_human() {
        Ok(())
    } else {
        Err(MttrlyError::new(
            ErrorCode::Forbidden,
            "tokens are managed by humans; assistant tokens cannot list or revoke them",
        ))
    }
}

/// The credentials the caller may see: the account's for an admin, their own otherwise.
pub async fn list(central: &Central, caller: &TokenOwner) -> Result<Vec<TokenRow>, MttrlyError> {
    require_human(caller)?;
    let only = (caller.role != Role::Admin).then(|| caller.principal.accountable_user());
    central.db.account(&caller.account_id).users().tokens(only).await
}

/// Revokes a credential by its public id (`tkn_…` or `oauth_…`), effective at once; audited.
pub async fn revoke(central: &Central, caller: &TokenOwner, id: &str) -> Result<(), MttrlyError> {
    revoke_from(central, caller, id, Source::Api).await
}

/// [`revoke`] asked through `source` (the dashboard's Revoke button): the same checks, the same
/// cache hook and the same audit row, naming the channel it came through.
pub async fn revoke_from(central: &Central, caller: &TokenOwner, id: &str, source: Source) -> Result<(), MttrlyError> {
    let result = revoke_unaudited(central, caller, id).await;
    let mut event =
        crate::audit::events::api_call(caller, "RevokeToken", None, serde_json::json!({ "token_id": id }), &result);
    event.source = source;
    central.audit(event);
    result
}

async fn revoke_unaudited(central: &Central, caller: &TokenOwner, id: &str) -> Result<(), MttrlyError> {
    require_human(caller)?;
    // Admins revoke anyone's, with a full token: a read-only or toolset-scoped token manages
    // nobody else's credentials (revoking them all mid-incident would be its own outage).
    let only = (caller.role != Role::Admin || caller.scope != mttrly_core::ToolSurface::ALL)
        .then(|| caller.principal.accountable_user());
    let revoked = central.db.account(&caller.account_id).users().revoke_token(id, only).await?;
    match revoked {
        Some(Revoked::ApiToken(hash)) => {
            central.auth_cache.invalidate(&hash);
            Ok(())
        }
        Some(Revoked::OAuthGrant) => {
            // Not cached, so nothing to drop; open push streams read their credential again.
            central.auth_cache.changed();
            Ok(())
        }
        None => Err(MttrlyError::new(
            ErrorCode::NotFound,
            format!("no live token {id} that you may revoke; `mttrly-cli tokens list` shows the ids"),
        )
        .with_detail("token_id", id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_written_once_a_minute_at_most() {
        let usage = Usage::default();
        let (a, b) = ([1; 32], [2; 32]);
        let t = 1_700_000_000_000 - 1_700_000_000_000 % USAGE_RESOLUTION_MS;
        assert!(usage.should_write(&a, t));
        assert!(!usage.should_write(&a, t + 1));
        assert!(!usage.should_write(&a, t + USAGE_RESOLUTION_MS - 1));
        assert!(usage.should_write(&b, t + 5), "each token has its own minute");
        assert!(usage.should_write(&a, t + USAGE_RESOLUTION_MS), "the next minute writes again");
    }

    #[test]
    fn the_table_stays_bounded() {
        let usage = Usage::default();
        for i in 0..=MAX_TRACKED {
            let mut hash = [0; 32];
            hash[..8].copy_from_slice(&(i as u64).to_le_bytes());
            assert!(usage.should_write(&hash, 0));
        }
        assert!(usage.written.lock().unwrap().len() <= MAX_TRACKED);
    }
}
