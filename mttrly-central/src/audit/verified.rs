//! Chain verifications of the audit log, for the dashboard's audit page and `audit verify` (gRPC
//! `VerifyAudit`): at most one running per account and one across all accounts, and a result
//! shared with whoever asked while it ran.
//!
//! Verifying recomputes every row of the account's log (linear in its size: about a second per
//! million rows here), and anyone signed in, viewers too, may ask with `?verify=1`, in a loop if
//! they like, and the page's live refresh keeps `verify=1` and fetches it again on every event.
//! So a result is kept per account with the chain head it checked (the last row's `seq` and
//! hash, one indexed read away), and whether to compute again is decided by [`Policy::reuse`]:
//! - the head has not moved: the result stands (nothing was appended; a row edited in place is
//!   found by the next recomputation, at most [`Policy::recheck`] later);
//! - the head moved, on a live refresh: the latest result is shown again for [`Policy::reuse`]
//!   with how many rows were recorded since and are not checked yet (a refresh follows an event,
//!   and most events move the head: recomputing on each is the loop this prevents);
//! - the head moved, on a person's request: recomputed, but not more often than
//!   [`Policy::min_gap`] (anyone whose token may call a tool can move the head, so "moved" alone
//!   must not be enough to buy a whole recomputation).
//!
//! Requests that arrive while a verification runs wait for it (the per-account async lock: a
//! single flight) and are then answered by the same rules, so they share its result.
//!
//! The CLI's `audit verify` (gRPC `VerifyAudit`, [`Verifications::fresh`]) asks for a result that
//! started after the request arrived: never an older one, so it sees an edit made a moment
//! before. Requests that arrive while one runs wait and share the next run, so a loop of them
//! costs one recomputation after another for that account, never a queue of its own.
//!
//! Across accounts, one recomputation runs at a time ([`Verifications::computing`]): each holds a
//! reader connection for its whole length, and one tenant's verifications must not hold every
//! reader. With the sharing above, another account waits for at most one of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mttrly_core::MttrlyError;
use mttrly_core::ids::AccountId;

use crate::audit::chain::Verification;
use crate::state::Central;

/// A chain head: the last row's `seq` and hash; `None` for an empty log.
pub(crate) type Head = Option<(u64, [u8; 32])>;

/// When a kept result is shown instead of computing again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// How long a result stands while the head has not moved.
    pub(crate) recheck: Duration,
    /// How long a live refresh shows a result again though the head moved.
    pub(crate) reuse: Duration,
    /// The shortest time between two recomputations a person's request starts.
    pub(crate) min_gap: Duration,
}

impl Policy {
    /// The dashboard's.
    pub(crate) const DASHBOARD: Self =
        Self { recheck: Duration::from_secs(60), reuse: Duration::from_secs(30), min_gap: Duration::from_secs(5) };

    /// Whether `kept`, finished `age` ago against head `checked`, answers a request now that the
    /// head is `now`; `refresh`: a live refresh rather than a person's request.
    pub(crate) fn reuses(&self, checked: &Head, now: &Head, age: Duration, refresh: bool) -> bool {
        if checked == now {
            return age < self.recheck;
        }
        age < if refresh { self.reuse } else { self.min_gap }
    }
}

/// A finished verification: what it found, how long it took, when it finished, and the head it
/// checked up to.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) verification: Verification,
    pub(crate) took: Duration,
    /// When it started reading the log.
    pub(crate) started: Instant,
    pub(crate) finished: Instant,
    pub(crate) head: Head,
    /// Rows recorded after `head` when it was shown (zero for one computed for this request).
    pub(crate) unchecked: u64,
}

impl Checked {
    /// How long ago it finished (zero for one computed for this very request).
    pub(crate) fn age(&self) -> Duration {
        self.finished.elapsed()
    }
}

/// The latest verification per account, each behind its own async lock (the single flight).
pub struct Verifications {
    accounts: Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<Option<Checked>>>>>,
    /// One recomputation at a time, whichever account.
    computing: tokio::sync::Semaphore,
    /// Recomputations started so far (what sharing saves is visible, and tested).
    recomputations: AtomicU64,
}

impl Default for Verifications {
    fn default() -> Self {
        Self {
            accounts: Mutex::default(),
            computing: tokio::sync::Semaphore::new(1),
            recomputations: AtomicU64::new(0),
        }
    }
}

impl Verifications {
    /// The account's chain verification, kept or computed now by [`Policy::DASHBOARD`];
    /// `refresh`: a live refresh rather than a person's request.
    pub(crate) async fn check(
        &self,
        central: &Central,
        account: &AccountId,
        refresh: bool,
    ) -> Result<Checked, MttrlyError> {
        let slot = self.slot(account);
        let mut latest = slot.lock().await;
        let audit = central.db.account(account).audit();
        // Read under the lock, after any run this request waited for, so it is compared with
        // what that run checked.
        let head = audit.head().await?;
        if let Some(kept) = latest.as_ref().filter(|c| Policy::DASHBOARD.reuses(&c.head, &head, c.age(), refresh)) {
            let mut shown = kept.clone();
            shown.unchecked = since(&kept.head, &head);
            return Ok(shown);
        }
        // The head read before the rows: rows appended meanwhile are checked too, and only make
        // the next request find a moved head and check again.
        self.compute(central, account, head, &mut latest).await
    }

    /// A verification of `account`'s chain that started after `arrived` (when the request came):
    /// the one a request that waited for this account's lock finds finished, else a new one.
    pub(crate) async fn fresh(
        &self,
        central: &Central,
        account: &AccountId,
        arrived: Instant,
    ) -> Result<Checked, MttrlyError> {
        let slot = self.slot(account);
        let mut latest = slot.lock().await;
        if let Some(kept) = latest.as_ref().filter(|c| c.started >= arrived) {
            return Ok(kept.clone());
        }
        let head = central.db.account(account).audit().head().await?;
        self.compute(central, account, head, &mut latest).await
    }

    /// How many whole-chain recomputations have started since central did.
    pub fn recomputations(&self) -> u64 {
        self.recomputations.load(Ordering::Relaxed)
    }

    /// `account`'s lock and latest result.
    fn slot(&self, account: &AccountId) -> Arc<tokio::sync::Mutex<Option<Checked>>> {
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(accounts.entry(account.clone()).or_default())
    }

    /// Recomputes `account`'s chain (checked up to at least `head`) in its turn, and keeps it.
    async fn compute(
        &self,
        central: &Central,
        account: &AccountId,
        head: Head,
        latest: &mut Option<Checked>,
    ) -> Result<Checked, MttrlyError> {
        let _turn = self.computing.acquire().await.map_err(|_| {
            MttrlyError::new(mttrly_core::ErrorCode::InternalError, "the audit verifications are stopping")
        })?;
        self.recomputations.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let verification = central.db.account(account).audit().verify().await?;
        let checked =
            Checked { verification, took: started.elapsed(), started, finished: Instant::now(), head, unchecked: 0 };
        *latest = Some(checked.clone());
        Ok(checked)
    }
}

/// How many rows were recorded between head `checked` and head `now`.
fn since(checked: &Head, now: &Head) -> u64 {
    let seq = |h: &Head| h.map_or(0, |(seq, _)| seq);
    seq(now).saturating_sub(seq(checked))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy::DASHBOARD;
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn an_unmoved_head_reuses_the_result_until_the_recheck_for_everyone() {
        let head = Some((7, [1; 32]));
        for refresh in [false, true] {
            assert!(P.reuses(&head, &head, Duration::ZERO, refresh));
            assert!(P.reuses(&head, &head, P.recheck.saturating_sub(S), refresh));
            assert!(!P.reuses(&head, &head, P.recheck, refresh), "an edit in place must be found eventually");
        }
        assert!(P.reuses(&None, &None, S, false));
    }

    #[test]
    fn a_moved_head_recomputes_for_a_person_after_the_gap_and_for_a_refresh_after_the_reuse() {
        let (old, new) = (Some((7, [1; 32])), Some((8, [2; 32])));
        assert!(
            P.reuses(&old, &new, P.min_gap.saturating_sub(S), false),
            "a loop of requests must not recompute back to back"
        );
        assert!(!P.reuses(&old, &new, P.min_gap, false));
        assert!(P.reuses(&old, &new, P.reuse.saturating_sub(S), true));
        assert!(!P.reuses(&old, &new, P.reuse, true));
        // A rewritten head at the same seq is a moved head too.
        assert!(!P.reuses(&old, &Some((7, [3; 32])), P.min_gap, false));
        assert!(!P.reuses(&None, &old, P.min_gap, false));
        assert!(P.min_gap < P.reuse && P.reuse < P.recheck);
    }

    #[test]
    fn rows_since_count_from_the_checked_head() {
        assert_eq!(since(&Some((7, [1; 32])), &Some((10, [2; 32]))), 3);
        assert_eq!(since(&None, &Some((4, [2; 32]))), 4);
        assert_eq!(since(&Some((7, [1; 32])), &Some((7, [1; 32]))), 0);
        // A log cut behind the cache's back never shows a negative count.
        assert_eq!(since(&Some((7, [1; 32])), &None), 0);
    }
}
