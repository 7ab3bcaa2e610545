//! The dashboard's chain verifications: at most one running per account, and the live refresh
//! of a verified page shown the latest result instead of recomputing it.
//!
//! Verifying recomputes every row of the account's log (linear in its size: about a second per
//! million rows here), and anyone signed in, viewers too, may ask with `?verify=1`, which the
//! page's live refresh then fetches again on every event. Without this, a few open tabs on a busy
//! account would keep a reader thread hashing the whole log back to back. With it:
//! - a live refresh (a fragment request) shows the latest result while it is younger than
//!   [`REUSE`], with its age;
//! - a request a person made (loading the page, the "Verify again" button) recomputes, so an edit
//!   to the database is found at once, but requests that arrive while a verification runs wait
//!   for it and share its result instead of starting their own.
//!
//! The CLI's `audit verify` (gRPC `VerifyAudit`) always recomputes on its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mttrly_core::MttrlyError;
use mttrly_core::ids::AccountId;

use crate::audit::chain::Verification;
use crate::state::Central;

/// How long a live refresh shows a finished verification again instead of recomputing it.
pub(crate) const REUSE: Duration = Duration::from_secs(30);

/// A finished verification: what it found, how long it took, and when it finished.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) verification: Verification,
    pub(crate) took: Duration,
    pub(crate) finished: Instant,
}

impl Checked {
    /// How long ago it finished (zero for one computed for this very request).
    pub(crate) fn age(&self) -> Duration {
        self.finished.elapsed()
    }
}

/// The latest verification per account, each behind its own async lock (the single flight).
#[derive(Default)]
pub(crate) struct Verifications {
    accounts: Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<Option<Checked>>>>>,
}

impl Verifications {
    /// The account's chain verification. `fresh` (a person asked): one that finished after this
    /// request arrived (it waited for a run under way), else a new one. Not `fresh` (a live
    /// refresh): the latest while younger than [`REUSE`], else a new one.
    pub(crate) async fn check(
        &self,
        central: &Central,
        account: &AccountId,
        fresh: bool,
    ) -> Result<Checked, MttrlyError> {
        let arrived = Instant::now();
        let slot = {
            let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(accounts.entry(account.clone()).or_default())
        };
        let mut latest = slot.lock().await;
        let reusable = |c: &&Checked| if fresh { c.finished >= arrived } else { c.age() < REUSE };
        if let Some(checked) = latest.as_ref().filter(reusable) {
            return Ok(checked.clone());
        }
        let started = Instant::now();
        let verification = central.db.account(account).audit().verify().await?;
        let checked = Checked { verification, took: started.elapsed(), finished: Instant::now() };
        *latest = Some(checked.clone());
        Ok(checked)
    }
}
