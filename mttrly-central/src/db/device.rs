//! Device logins (`mttrly-cli login`, RFC 8628): a pending sign-in started by a CLI, found by the
//! hash of its device code (the CLI's secret) or by its user code (what a person types), decided
//! by a signed-in human, and turned into that human's API token exactly once.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{MttrlyError, Role};

use super::{Db, sqlite};

/// A device login to store.
#[derive(Debug, Clone)]
pub struct NewDeviceLogin {
    /// SHA-256 of the device code (the CLI's secret; never stored itself).
    pub device_hash: [u8; 32],
    /// The user code in its stored form (`WDJB-MJHT`).
    pub user_code: String,
    /// The name the CLI gave (shown on the confirmation page).
    pub client_name: String,
    /// The host name the CLI said it runs on (shown, as a claim).
    pub client_host: String,
    /// The address central saw the request come from (shown beside the claim).
    pub peer: String,
    /// When it was started (ms).
    pub created_at: i64,
    /// When it ends if nobody decides (ms).
    pub expires_at: i64,
    /// The polling interval the CLI was told (seconds).
    pub interval_secs: i64,
}

/// What storing a device login found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored.
    Stored,
    /// Another login holds this user code: draw another.
    CodeTaken,
    /// Too many logins are waiting for a decision: the user-code space is the guessing budget,
    /// so the number of live codes is capped.
    TooMany,
}

/// A login waiting for a decision, as the confirmation page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The user code (`WDJB-MJHT`).
    pub user_code: String,
    /// The client's name.
    pub client_name: String,
    /// The host name the client claimed.
    pub client_host: String,
    /// The address it connected from.
    pub peer: String,
    /// When it was started (ms).
    pub created_at: i64,
    /// When it expires (ms).
    pub expires_at: i64,
}

/// The token a poll of an approved login issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The token's public id (`tkn_…`).
    pub token_id: String,
    /// The approver's account.
    pub account_id: AccountId,
    /// The approver.
    pub user_id: UserId,
    /// The approver's name.
    pub user_name: String,
    /// The approver's role.
    pub role: Role,
}

/// What a poll found (RFC 8628 §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// No login has this device code.
    Unknown,
    /// Its time is over, undecided or uncollected.
    Expired,
    /// Its token was already delivered: a device code is good for one token.
    Used,
    /// Nobody decided yet; poll again after this many seconds.
    Pending(i64),
    /// Polled sooner than the interval: the interval is now this many seconds (5 more).
    SlowDown(i64),
    /// The human denied it (or the approver no longer exists).
    Denied,
    /// Approved: the token whose hash the poll passed is now stored, for the approver.
    Approved(Issued),
}

/// The token a poll stores if the login was approved: the caller draws it, only its hash and
/// its name come here.
#[derive(Debug, Clone)]
pub struct TokenToIssue {
    /// SHA-256 of the new human token.
    pub hash: [u8; 32],
    /// Its name in `tokens list` from the login's client and host names (`login: mttrly-cli on
    /// laptop`): the app words it, the store knows the names.
    pub name: fn(&str, &str) -> String,
}

/// Non-tenant: device logins have no account until a human approves one. Built by
/// [`Db::device_logins`].
pub struct DeviceLogins<'a> {
    pub(super) db: &'a Db,
}

impl DeviceLogins<'_> {
    /// Stores a new login unless its user code is taken or `max_pending` logins already wait
    /// (one IMMEDIATE transaction, which also drops logins that ended over an hour ago).
    pub async fn insert(&self, login: NewDeviceLogin, max_pending: i64) -> Result<Inserted, MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::device::insert(conn, &login, max_pending)).await
    }

    /// The login waiting for a decision with this user code at `now` (ms), if any.
    pub async fn pending(&self, user_code: &str, now: i64) -> Result<Option<PendingLogin>, MttrlyError> {
        let code = user_code.to_owned();
        self.db.sqlite.read(move |conn| sqlite::device::pending(conn, &code, now)).await
    }

    /// Decides the pending login with this user code as `user` of `account` (a living user of
    /// it, checked in the same statement). `false` when there is no such pending, unexpired login
    /// (decided already, expired, unknown) or the user is not a living member of the account.
    pub async fn decide(
        &self,
        user_code: &str,
        account: &AccountId,
        user: &UserId,
        approve: bool,
        now: i64,
    ) -> Result<bool, MttrlyError> {
        let (code, account, user) = (user_code.to_owned(), account.clone(), user.clone());
        self.db.sqlite.call(move |conn| sqlite::device::decide(conn, &code, &account, &user, approve, now)).await
    }

    /// Whether a login with this device code's hash exists (a read, off the writer: unknown codes,
    /// which anyone may send, never queue for the write lock).
    pub async fn known(&self, device_hash: &[u8; 32]) -> Result<bool, MttrlyError> {
        let hash = *device_hash;
        self.db.sqlite.read(move |conn| sqlite::device::known(conn, &hash)).await
    }

    /// A poll at `now` (ms) with the device code's hash: the RFC 8628 answer, and for an approved
    /// login the token `issue` stored for the approver, in one IMMEDIATE transaction (so two
    /// polls racing deliver it once).
    pub async fn poll(&self, device_hash: &[u8; 32], issue: TokenToIssue, now: i64) -> Result<Polled, MttrlyError> {
        let hash = *device_hash;
        self.db.sqlite.call(move |conn| sqlite::device::poll(conn, &hash, &issue, now)).await
    }
}

#[cfg(test)]
mod tests {
    use mttrly_core::Plan;

    use super::*;

    fn login(code: &str, now: i64) -> NewDeviceLogin {
        NewDeviceLogin {
            device_hash: crate::secrets::hash(code),
            user_code: code.to_owned(),
            client_name: "mttrly-cli".into(),
            client_host: "laptop".into(),
            peer: "127.0.0.1".into(),
            created_at: now,
            expires_at: now + 600_000,
            interval_secs: 5,
        }
    }

    fn issue(n: u8) -> TokenToIssue {
        TokenToIssue { hash: [n; 32], name: |client, host| format!("login: {client} on {host}") }
    }

    #[tokio::test]
    async fn a_login_yields_one_token_and_none_once_its_approver_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        let (account, admin) = db.create_tenant("a", Plan::DeploymentCrew, "ann", &[9; 32]).await.unwrap();
        let bob = db.account(&account).users().create("bob", Role::Operator).await.unwrap();
        let logins = db.device_logins();
        let now = crate::db::now_ms();

        assert_eq!(logins.insert(login("BCDF-GHJK", now), 2).await.unwrap(), Inserted::Stored);
        assert_eq!(logins.insert(login("BCDF-GHJK", now), 2).await.unwrap(), Inserted::CodeTaken);
        assert_eq!(logins.insert(login("ZZZZ-ZZZZ", now), 2).await.unwrap(), Inserted::Stored);
        assert_eq!(
            logins.insert(login("XXXX-XXXX", now), 2).await.unwrap(),
            Inserted::TooMany,
            "the cap on waiting logins"
        );

        // A user of another account (or a made-up one) cannot decide.
        let stranger = UserId::generate();
        assert!(!logins.decide("BCDF-GHJK", &account, &stranger, true, now).await.unwrap());
        assert!(logins.decide("BCDF-GHJK", &account, &admin, true, now).await.unwrap());
        assert!(!logins.decide("BCDF-GHJK", &account, &admin, false, now).await.unwrap(), "decided once");
        assert_eq!(logins.pending("BCDF-GHJK", now).await.unwrap(), None);
        let hash = crate::secrets::hash("BCDF-GHJK");
        let Polled::Approved(issued) = logins.poll(&hash, issue(1), now).await.unwrap() else { panic!("approved") };
        assert_eq!((issued.user_id, issued.user_name.as_str(), issued.role), (admin, "ann", Role::Admin));
        assert_eq!(logins.poll(&hash, issue(2), now).await.unwrap(), Polled::Used);
        let owner = db.credentials().api_token(&[1; 32]).await.unwrap().expect("the issued token works");
        assert_eq!(owner.account_id, account);
        assert_eq!(db.credentials().api_token(&[2; 32]).await.unwrap(), None, "a second poll stores nothing");

        // Approved by bob, who is removed before the CLI collects: no token.
        assert!(logins.decide("ZZZZ-ZZZZ", &account, &bob, true, now).await.unwrap());
        db.account(&account).users().remove("bob").await.unwrap().unwrap();
        let hash = crate::secrets::hash("ZZZZ-ZZZZ");
        assert_eq!(logins.poll(&hash, issue(3), now).await.unwrap(), Polled::Denied);
        assert_eq!(db.credentials().api_token(&[3; 32]).await.unwrap(), None);
    }
}
