//! How people sign in: their credentials (password hash, sealed TOTP secret, last accepted step,
//! lockout), recovery codes, invites and browser sessions.
//!
//! Two handles. [`People`] (from [`Account::people`]) is one tenant's: every query filters on its
//! account. [`SignIns`] (from [`Db::signins`]) holds the lookups that *find* the tenant from what a
//! browser presents (a session cookie, an invite link, a name typed on the sign-in page), like
//! `credentials()` does for API tokens; it returns the account it found, and everything after
//! that goes through the tenant handle.
//!
//! Secrets are never stored: sessions and invites by the SHA-256 of their secret, recovery codes
//! by theirs, the TOTP secret sealed (AEAD) with a key kept beside the database, not in it
//! (`crate::second_factor`); this module only moves the sealed bytes.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::second_factor::{LockoutState, RecoveryCodeHash};
use mttrly_core::{MttrlyError, Role};

use super::accounts::{FactorGate, User, UserRefusal};
use super::{Account, Db, sqlite};

/// A TOTP secret sealed by `crate::second_factor` (nonce and ciphertext); opaque here.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub Vec<u8>);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

/// A user's second-factor state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    /// The user's name (audit rows carry it).
    pub name: String,
    /// The confirmed TOTP secret, sealed; `None` if not enrolled.
    pub sealed: Option<Sealed>,
    /// A secret shown for enrolment and not yet confirmed by a code.
    pub pending: Option<Sealed>,
    /// The last accepted TOTP step.
    pub last_step: Option<u64>,
    /// Consecutive wrong second-factor codes and their lock (TOTP checks: approvals, sign-in's
    /// code, `totp enroll`).
    pub lockout: LockoutState,
    /// Unused recovery codes left.
    pub recovery_left: u32,
    /// Consecutive wrong passwords on the sign-in page and their lock (sign-in by password only).
    pub password_lockout: LockoutState,
}

/// How a browser session was opened (kept with the session, shown in the audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// Password and TOTP on the sign-in page.
    Password,
    /// The invite link (password set and TOTP enrolled just now).
    Invite,
    /// An OpenID Connect provider.
    Oidc,
}

impl SignInMethod {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Invite => "invite",
            Self::Oidc => "oidc",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Password, Self::Invite, Self::Oidc].into_iter().find(|m| m.as_str() == s)
    }
}

/// A live session (not ended, its user living), found by the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The tenant.
    pub account_id: AccountId,
    /// The person.
    pub user_id: UserId,
    /// Their name now.
    pub name: String,
    /// Their role now.
    pub role: Role,
    /// How they signed in.
    pub method: SignInMethod,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub last_seen_at: i64,
}

/// An invite found by the hash of its secret (whatever its state: the page explains it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRow {
    /// The tenant.
    pub account_id: AccountId,
    /// The person invited.
    pub user_id: UserId,
    /// Their name.
    pub name: String,
    /// Unix ms.
    pub expires_at: i64,
    /// Unix ms, once confirmed.
    pub used_at: Option<i64>,
    /// Unix ms, when a newer invite or the user's removal ended it.
    pub revoked_at: Option<i64>,
    /// Whether the user was removed.
    pub user_removed: bool,
    /// The password hash chosen on the invite page, applied at confirmation.
    pub password_hash: Option<String>,
    /// The TOTP secret shown on the invite page, applied at confirmation.
    pub pending: Option<Sealed>,
}

/// The one person a sign-in's login names, who can sign in with a password (one is set and a
/// second factor confirmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The tenant.
    pub account_id: AccountId,
    /// The person.
    pub user_id: UserId,
    /// Their name.
    pub name: String,
    /// Their password hash (PHC).
    pub password_hash: String,
}

/// Whether a password may be checked now ([`People::password_attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAttempt {
    /// Counted as a failure already (so parallel guesses cannot pass the limit); a right password
    /// clears it ([`People::password_accepted`]). The state after counting.
    Admitted(LockoutState),
    /// Sign-in by password is locked until then (Unix ms); nothing counted.
    Locked {
        /// Unix ms.
        until: i64,
    },
    /// Not a living user of this account.
    Unknown,
}

/// Why an invite step was not taken; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteRefusal {
    /// No such invite (or another account's).
    Unknown,
    /// Past its expiry.
    Expired,
    /// Already used.
    Used,
    /// Replaced by a newer invite, or the user was removed.
    Revoked,
    /// The password step has not been done (or the enrolment secret changed meanwhile).
    NotReady,
}

/// Why a pending TOTP enrolment was not confirmed; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingRefusal {
    /// The pending secret changed (another enrolment started) or is gone.
    Changed,
    /// A first factor, in an account that uses second factors: only an invite gives one there.
    FirstFactorByInvite,
}

/// A user added with an invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invited {
    /// The user.
    pub user_id: UserId,
    /// Unix ms.
    pub expires_at: i64,
}

/// One person of the account as the admin page lists them: living or removed, with how they can
/// sign in (never a secret, only whether one is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// The user.
    pub user: User,
    /// Unix ms, when removed; their row stays for the audit.
    pub removed_at: Option<i64>,
    /// A password is set (sign-in by password and TOTP).
    pub has_password: bool,
    /// A TOTP second factor is confirmed.
    pub has_second_factor: bool,
    /// Bound to a subject of an OpenID Connect provider (single sign-on).
    pub has_sso: bool,
}

/// An invite link still open (unused, not replaced, unexpired, its user living): who and until
/// when. Never the secret, which only its hash stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvite {
    /// The person the link makes whoever opens it.
    pub user_id: UserId,
    /// Their name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
}

/// One tenant's sign-in data. Built by [`Account::people`].
pub struct People<'a> {
    pub(super) account: Account<'a>,
}

impl People<'_> {
    /// A user's second-factor state; `None` if the user is not a living user of this account.
    pub async fn factor(&self, user: &UserId) -> Result<Option<Factor>, MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account.db.sqlite.read(move |conn| sqlite::people::factor(conn, &account, &user)).await
    }

    /// The account's living users with a confirmed TOTP enrolment, in one read (feasibility
    /// judges every person at once; one `factor` read each would be N round trips).
    pub async fn enrolled_users(&self) -> Result<std::collections::HashSet<UserId>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::people::enrolled_users(conn, &account)).await
    }

    /// Every user of the account, removed ones included (marked), oldest first, with whether each
    /// has a password, a confirmed second factor and a single sign-on binding: one read.
    pub async fn roster(&self) -> Result<Vec<RosterEntry>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::people::roster(conn, &account)).await
    }

    /// The account's invite links still open at `now` (ms), soonest to expire first.
    pub async fn open_invites(&self, now: i64) -> Result<Vec<OpenInvite>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::people::open_invites(conn, &account, now)).await
    }

    /// Records an accepted TOTP step, only if it is later than the stored one and the user is not
    /// locked at `now` (one conditional UPDATE: of two concurrent uses of one code, one wins);
    /// resets the failure count. `false`: refused (replayed, or locked meanwhile).
    pub async fn accept_step(&self, user: &UserId, step: u64, now: i64) -> Result<bool, MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account.db.sqlite.call(move |conn| sqlite::people::accept_step(conn, &account, &user, step, now)).await
    }

    /// Uses a recovery code (single use: one conditional UPDATE), even while TOTP checks are
    /// locked (a recovery code cannot be guessed); resets the second factor's failure count and
    /// lock. `false`: no such unused code.
    pub async fn use_recovery_code(
        &self,
        user: &UserId,
        code: &RecoveryCodeHash,
        now: i64,
    ) -> Result<bool, MttrlyError> {
        let (account, user, code) = (self.account.id.clone(), user.clone(), code.0.clone());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::people::use_recovery_code(conn, &account, &user, &code, now))
            .await
    }

    /// Counts a wrong second-factor code at `now` under `policy`, in one transaction; returns
    /// the new state. Wrong passwords have their own counter ([`Self::password_attempt`]).
    pub async fn record_failure(
        &self,
        user: &UserId,
        policy: mttrly_core::second_factor::Lockout,
        now: i64,
    ) -> Result<LockoutState, MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::people::record_failure(conn, &account, &user, policy, now))
            .await
    }

    /// Admits a password check at `now` under `policy`: unless sign-in by password is locked,
    /// counts it as a failure in the same transaction, before the password is looked at (of
    /// parallel guesses, at most `max_failures` are ever checked per lock period). This counter
    /// is the password's alone: it never locks second-factor checks.
    pub async fn password_attempt(
        &self,
        user: &UserId,
        policy: mttrly_core::second_factor::Lockout,
        now: i64,
    ) -> Result<PasswordAttempt, MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::people::password_attempt(conn, &account, &user, policy, now))
            .await
    }

    /// The password was right: clears the count [`Self::password_attempt`] made.
    pub async fn password_accepted(&self, user: &UserId, now: i64) -> Result<(), MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account.db.sqlite.call(move |conn| sqlite::people::password_accepted(conn, &account, &user, now)).await
    }

    /// Keeps a TOTP secret shown for (re-)enrolment until a code confirms it.
    pub async fn set_pending(&self, user: &UserId, pending: Sealed) -> Result<bool, MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account.db.sqlite.call(move |conn| sqlite::people::set_pending(conn, &account, &user, &pending.0)).await
    }

    /// Confirms the pending secret (only if it is still `pending`): it becomes the user's secret
    /// with `step` accepted, the recovery codes are replaced by `codes`, the failure count reset,
    /// and the user's unused invites end (each would replace this factor).
    /// `false`: the pending secret changed or is gone. Not gated (tests, set-up); a bearer
    /// token's request goes through [`Self::confirm_pending_gated`].
    pub async fn confirm_pending(
        &self,
        user: &UserId,
        pending: Sealed,
        step: u64,
        codes: Vec<RecoveryCodeHash>,
    ) -> Result<bool, MttrlyError> {
        Ok(self.confirm_pending_gated(user, pending, step, codes, FactorGate::Unchecked).await?.is_ok())
    }

    /// [`Self::confirm_pending`], refused with [`PendingRefusal::FirstFactorByInvite`] inside the
    /// transaction when `gate` is checked, the user has no confirmed factor yet and the account
    /// uses second factors (a living admin has one): a bearer token alone must not give its
    /// holder a first factor there, or it passes every gate with codes of its own choosing
    /// (`crate::users`); that first factor comes through an invite an admin confirmed with theirs.
    pub async fn confirm_pending_gated(
        &self,
        user: &UserId,
        pending: Sealed,
        step: u64,
        codes: Vec<RecoveryCodeHash>,
        gate: FactorGate,
    ) -> Result<Result<(), PendingRefusal>, MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::people::confirm_pending(conn, &account, &user, &pending.0, step, &codes, gate))
            .await
    }

    /// Adds a user with an invite (its secret's hash, valid until `expires_at`), in one
    /// transaction; the name must be free among the living. Not gated (see
    /// [`FactorGate::Unchecked`]); requests go through [`Self::add_with_invite_gated`].
    pub async fn add_with_invite(
        &self,
        name: &str,
        role: Role,
        email: Option<&str>,
        invite_hash: &[u8; 32],
        expires_at: i64,
    ) -> Result<Result<User, UserRefusal>, MttrlyError> {
        self.add_with_invite_gated(name, role, email, invite_hash, expires_at, FactorGate::Unchecked).await
    }

    /// [`Self::add_with_invite`], refused with [`UserRefusal::SecondFactorRequired`] inside the
    /// transaction when `gate` is checked, the account uses second factors, no code was verified
    /// and the new user is an admin or takes a removed user's name.
    pub async fn add_with_invite_gated(
        &self,
        name: &str,
        role: Role,
        email: Option<&str>,
        invite_hash: &[u8; 32],
        expires_at: i64,
        gate: FactorGate,
    ) -> Result<Result<User, UserRefusal>, MttrlyError> {
        let (account, name, email, hash) =
            (self.account.id.clone(), name.to_owned(), email.map(str::to_owned), *invite_hash);
        self.account
            .db
            .sqlite
            .call(move |conn| {
                sqlite::people::add_with_invite(conn, &account, &name, role, email.as_deref(), &hash, expires_at, gate)
            })
            .await
    }

    /// A fresh invite for a living user by name; their earlier invites die in the same
    /// transaction. Not gated; requests go through [`Self::reinvite_gated`].
    pub async fn reinvite(
        &self,
        name: &str,
        invite_hash: &[u8; 32],
        expires_at: i64,
    ) -> Result<Result<User, UserRefusal>, MttrlyError> {
        Ok(self.reinvite_gated(name, invite_hash, expires_at, FactorGate::Unchecked).await?.map(|(user, _)| user))
    }

    /// [`Self::reinvite`], refused with [`UserRefusal::SecondFactorRequired`] inside the
    /// transaction when `gate` is checked, the user has a confirmed second factor (which the
    /// invite would replace) and no code was verified. Also says whether they had one.
    pub async fn reinvite_gated(
        &self,
        name: &str,
        invite_hash: &[u8; 32],
        expires_at: i64,
        gate: FactorGate,
    ) -> Result<Result<(User, bool), UserRefusal>, MttrlyError> {
        let (account, name, hash) = (self.account.id.clone(), name.to_owned(), *invite_hash);
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::people::reinvite(conn, &account, &name, &hash, expires_at, gate))
            .await
    }

    /// Stores the invite page's password hash and TOTP secret on the invite (usable, unexpired at
    /// `now`); replaces an earlier choice made with the same invite.
    pub async fn invite_choose(
        &self,
        invite_hash: &[u8; 32],
        password_hash: &str,
        pending: Sealed,
        now: i64,
    ) -> Result<Result<(), InviteRefusal>, MttrlyError> {
        let (account, hash, password) = (self.account.id.clone(), *invite_hash, password_hash.to_owned());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::people::invite_choose(conn, &account, &hash, &password, &pending.0, now))
            .await
    }

    /// Completes an invite in one transaction: marks it used (only if usable at `now` and its
    /// pending secret is still `pending`), gives the user the invite's password and TOTP secret
    /// with `step` accepted, replaces their recovery codes with `codes`, resets the lockout and
    /// ends their browser sessions (credentials replaced).
    pub async fn complete_invite(
        &self,
        invite_hash: &[u8; 32],
        pending: Sealed,
        step: u64,
        codes: Vec<RecoveryCodeHash>,
        now: i64,
    ) -> Result<Result<UserId, InviteRefusal>, MttrlyError> {
        let (account, hash) = (self.account.id.clone(), *invite_hash);
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::people::complete_invite(conn, &account, &hash, &pending.0, step, &codes, now))
            .await
    }

    /// Opens a browser session for a living user of this account (hash of its secret) at `now`;
    /// returns their name. `None`: no such living user here.
    pub async fn start_session(
        &self,
        session_hash: &[u8; 32],
        user: &UserId,
        method: SignInMethod,
        now: i64,
    ) -> Result<Option<String>, MttrlyError> {
        let (account, hash, user) = (self.account.id.clone(), *session_hash, user.clone());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::people::start_session(conn, &account, &hash, &user, method, now))
            .await
    }

    /// Records a session's use at `now` (the caller does it at most once a minute).
    pub async fn touch_session(&self, session_hash: &[u8; 32], now: i64) -> Result<(), MttrlyError> {
        let (account, hash) = (self.account.id.clone(), *session_hash);
        self.account.db.sqlite.call(move |conn| sqlite::people::touch_session(conn, &account, &hash, now)).await
    }

    /// Ends a session of this account (sign-out).
    pub async fn end_session(&self, session_hash: &[u8; 32], now: i64) -> Result<bool, MttrlyError> {
        let (account, hash) = (self.account.id.clone(), *session_hash);
        self.account.db.sqlite.call(move |conn| sqlite::people::end_session(conn, &account, &hash, now)).await
    }
}

/// The lookups that find a tenant from what a browser presents. Built by [`Db::signins`]; only
/// `crate::signin` calls it.
pub struct SignIns<'a> {
    pub(super) db: &'a Db,
}

impl SignIns<'_> {
    /// The live session with this secret hash (not ended, user living); timeouts are the
    /// caller's rule.
    pub async fn session(&self, session_hash: &[u8; 32]) -> Result<Option<SessionRow>, MttrlyError> {
        let hash = *session_hash;
        self.db.sqlite.read(move |conn| sqlite::people::session(conn, &hash)).await
    }

    /// Ends whatever session has this secret hash, in any account: a browser that signs in
    /// again never keeps the id it came with (it may have been planted).
    pub async fn end_presented(&self, session_hash: &[u8; 32], now: i64) -> Result<(), MttrlyError> {
        let hash = *session_hash;
        self.db.sqlite.call(move |conn| sqlite::people::end_presented(conn, &hash, now)).await
    }

    /// The invite with this secret hash, whatever its state.
    pub async fn invite(&self, invite_hash: &[u8; 32]) -> Result<Option<InviteRow>, MttrlyError> {
        let hash = *invite_hash;
        self.db.sqlite.read(move |conn| sqlite::people::invite(conn, &hash)).await
    }

    /// The one person `login` names on the whole central, if they can sign in with a password:
    /// `ACCOUNT/NAME`, or a name or e-mail only one living user has. Ambiguous (the same name in
    /// two accounts), unknown, or not set up yet: `None`. A password is then only ever compared
    /// with this one person's, never tried across accounts (which would tell a tenant whether
    /// its guess is another tenant's password).
    pub async fn resolve(&self, login: &str) -> Result<Option<Candidate>, MttrlyError> {
        let login = login.to_owned();
        self.db.sqlite.read(move |conn| sqlite::people::resolve(conn, &login)).await
    }

    /// Whether the central holds more than one account.
    pub async fn shared(&self) -> Result<bool, MttrlyError> {
        self.db.sqlite.read(sqlite::people::shared).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mttrly_core::Role;
    use mttrly_core::second_factor::{Lockout, LockoutState, RecoveryCode};

    use super::{InviteRefusal, Sealed, SignInMethod};
    use crate::db::Db;

    async fn two_tenants() -> (tempfile::TempDir, Db, mttrly_core::ids::AccountId, mttrly_core::ids::AccountId) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        let (a, _) = db.create_tenant("a", mttrly_core::Plan::DeploymentCrew, "ann", &[1; 32]).await.unwrap();
        let (b, _) = db.create_tenant("b", mttrly_core::Plan::DeploymentCrew, "bea", &[2; 32]).await.unwrap();
        (dir, db, a, b)
    }

    #[tokio::test]
    async fn an_invite_completes_once_and_only_in_its_account() {
        let (_dir, db, a, b) = two_tenants().await;
        let now = crate::db::now_ms();
        let bob = db.account(&a).people().add_with_invite("bob", Role::Operator, None, &[9; 32], now + 1000).await;
        let bob = bob.unwrap().unwrap();
        let pending = Sealed(vec![1, 2, 3]);
        // Another account cannot take a step on it, and completing before the password is refused.
        let other = db.account(&b).people().invite_choose(&[9; 32], "$pw", pending.clone(), now).await.unwrap();
        assert_eq!(other, Err(InviteRefusal::Unknown));
        let early = db.account(&a).people().complete_invite(&[9; 32], pending.clone(), 5, vec![], now).await.unwrap();
        assert_eq!(early, Err(InviteRefusal::NotReady));
        db.account(&a).people().invite_choose(&[9; 32], "$pw", pending.clone(), now).await.unwrap().unwrap();
        assert!(db.account(&a).people().factor(&bob.id).await.unwrap().unwrap().sealed.is_none(), "not yet");
        let codes = vec![RecoveryCode::from_bytes([3; 10]).hash()];
        let stale = db.account(&a).people().complete_invite(&[9; 32], Sealed(vec![7]), 5, codes.clone(), now).await;
        assert_eq!(stale.unwrap(), Err(InviteRefusal::NotReady), "another secret than the one shown");
        let done = db.account(&a).people().complete_invite(&[9; 32], pending.clone(), 5, codes.clone(), now).await;
        assert_eq!(done.unwrap(), Ok(bob.id.clone()));
        let again = db.account(&a).people().complete_invite(&[9; 32], pending, 6, codes, now).await.unwrap();
        assert_eq!(again, Err(InviteRefusal::Used));
        let factor = db.account(&a).people().factor(&bob.id).await.unwrap().unwrap();
        assert_eq!((factor.sealed, factor.last_step, factor.recovery_left), (Some(Sealed(vec![1, 2, 3])), Some(5), 1));
        assert!(db.account(&b).people().factor(&bob.id).await.unwrap().is_none(), "another account's user");
        assert_eq!(db.signins().resolve("bob").await.unwrap().map(|c| c.user_id), Some(bob.id.clone()));
        assert_eq!(db.signins().resolve("a/bob").await.unwrap().map(|c| c.user_id), Some(bob.id.clone()));
        assert_eq!(db.signins().resolve("b/bob").await.unwrap(), None, "another account");
    }

    #[tokio::test]
    async fn an_expired_or_replaced_invite_is_refused_and_changes_nothing() {
        let (_dir, db, a, _) = two_tenants().await;
        let now = crate::db::now_ms();
        let people = db.account(&a).people();
        people.add_with_invite("bob", Role::Viewer, None, &[9; 32], now - 1).await.unwrap().unwrap();
        let late = people.invite_choose(&[9; 32], "$pw", Sealed(vec![1]), now).await.unwrap();
        assert_eq!(late, Err(InviteRefusal::Expired));
        people.reinvite("bob", &[8; 32], now + 1000).await.unwrap().unwrap();
        assert!(db.signins().invite(&[9; 32]).await.unwrap().unwrap().revoked_at.is_some());
        people.reinvite("bob", &[7; 32], now + 1000).await.unwrap().unwrap();
        let old = people.invite_choose(&[8; 32], "$pw", Sealed(vec![1]), now).await.unwrap();
        assert_eq!(old, Err(InviteRefusal::Revoked));
        assert!(people.reinvite("nobody", &[6; 32], now + 1000).await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_step_is_accepted_once_even_when_raced() {
        let (_dir, db, a, _) = two_tenants().await;
        let now = crate::db::now_ms();
        let people = db.account(&a).people();
        let bob = people.add_with_invite("bob", Role::Viewer, None, &[9; 32], now + 1000).await.unwrap().unwrap();
        people.invite_choose(&[9; 32], "$pw", Sealed(vec![1]), now).await.unwrap().unwrap();
        people.complete_invite(&[9; 32], Sealed(vec![1]), 10, vec![], now).await.unwrap().unwrap();
        for step in 11..31 {
            let (first, second) = (db.account(&a).people(), db.account(&a).people());
            let (one, two) =
                tokio::join!(first.accept_step(&bob.id, step, now), second.accept_step(&bob.id, step, now));
            assert_eq!(u8::from(one.unwrap()) + u8::from(two.unwrap()), 1, "exactly one wins step {step}");
        }
        assert!(!people.accept_step(&bob.id, 12, now).await.unwrap(), "an older step");
    }

    #[tokio::test]
    async fn five_wrong_codes_lock_totp_steps_and_a_recovery_code_lifts_the_lock() {
        let (_dir, db, a, _) = two_tenants().await;
        let now = crate::db::now_ms();
        let people = db.account(&a).people();
        let bob = people.add_with_invite("bob", Role::Viewer, None, &[9; 32], now + 1000).await.unwrap().unwrap();
        people.invite_choose(&[9; 32], "$pw", Sealed(vec![1]), now).await.unwrap().unwrap();
        let code = RecoveryCode::from_bytes([4; 10]);
        people.complete_invite(&[9; 32], Sealed(vec![1]), 10, vec![code.hash()], now).await.unwrap().unwrap();
        let mut state = mttrly_core::second_factor::LockoutState::default();
        for _ in 0..5 {
            state = people.record_failure(&bob.id, Lockout::default(), now).await.unwrap();
        }
        assert_eq!(state.locked_until_ms, Some(now + Lockout::default().lock_ms));
        assert!(!people.accept_step(&bob.id, 11, now + 1).await.unwrap());
        // A recovery code still works while TOTP is locked, once, and lifts the lock.
        assert!(people.use_recovery_code(&bob.id, &code.hash(), now + 1).await.unwrap());
        assert!(!people.use_recovery_code(&bob.id, &code.hash(), now + 1).await.unwrap(), "single use");
        let factor = people.factor(&bob.id).await.unwrap().unwrap();
        assert_eq!((factor.lockout, factor.recovery_left), (LockoutState::default(), 0));
        assert!(people.accept_step(&bob.id, 11, now + 1).await.unwrap());
    }

    #[tokio::test]
    async fn wrong_passwords_have_their_own_lock() {
        use super::PasswordAttempt;
        let (_dir, db, a, b) = two_tenants().await;
        let now = crate::db::now_ms();
        let people = db.account(&a).people();
        let bob = people.add_with_invite("bob", Role::Viewer, None, &[9; 32], now + 1000).await.unwrap().unwrap();
        people.invite_choose(&[9; 32], "$pw", Sealed(vec![1]), now).await.unwrap().unwrap();
        people.complete_invite(&[9; 32], Sealed(vec![1]), 10, vec![], now).await.unwrap().unwrap();
        let policy = Lockout::default();
        for i in 1..=5 {
            let attempt = people.password_attempt(&bob.id, policy, now).await.unwrap();
            assert!(matches!(attempt, PasswordAttempt::Admitted(s) if s.failures == i), "{attempt:?}");
        }
        let until = now + policy.lock_ms;
        assert_eq!(people.password_attempt(&bob.id, policy, now + 1).await.unwrap(), PasswordAttempt::Locked { until });
        let factor = people.factor(&bob.id).await.unwrap().unwrap();
        assert_eq!(factor.password_lockout.locked_until_ms, Some(until));
        assert_eq!(factor.lockout, LockoutState::default(), "the second factor's counter is untouched");
        assert!(people.accept_step(&bob.id, 11, now + 1).await.unwrap(), "codes still work");
        // After the lock, a right password clears the count; another account cannot touch it.
        assert!(matches!(people.password_attempt(&bob.id, policy, until).await.unwrap(), PasswordAttempt::Admitted(_)));
        people.password_accepted(&bob.id, until).await.unwrap();
        assert_eq!(people.factor(&bob.id).await.unwrap().unwrap().password_lockout, LockoutState::default());
        let other = db.account(&b).people().password_attempt(&bob.id, policy, until).await.unwrap();
        assert_eq!(other, PasswordAttempt::Unknown, "another account's user");
    }

    #[tokio::test]
    async fn sessions_are_per_account_and_die_with_their_user() {
        let (_dir, db, a, b) = two_tenants().await;
        let now = crate::db::now_ms();
        let bob = db.account(&a).people().add_with_invite("bob", Role::Viewer, None, &[9; 32], now + 1000).await;
        let bob = bob.unwrap().unwrap();
        let other = db.account(&b).people().start_session(&[5; 32], &bob.id, SignInMethod::Password, now).await;
        assert_eq!(other.unwrap(), None, "another account's user");
        let started = db.account(&a).people().start_session(&[5; 32], &bob.id, SignInMethod::Password, now).await;
        assert_eq!(started.unwrap().as_deref(), Some("bob"));
        let row = db.signins().session(&[5; 32]).await.unwrap().unwrap();
        assert_eq!((row.account_id, row.name.as_str(), row.method), (a.clone(), "bob", SignInMethod::Password));
        assert!(!db.account(&b).people().end_session(&[5; 32], now).await.unwrap(), "another account's session");
        db.account(&a).users().remove("bob").await.unwrap().unwrap();
        assert_eq!(db.signins().session(&[5; 32]).await.unwrap(), None);
        let invite = db.signins().invite(&[9; 32]).await.unwrap().unwrap();
        assert!(invite.revoked_at.is_some() && invite.user_removed);
    }
}
