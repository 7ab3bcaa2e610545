//! What sign-in through an OpenID Connect provider stores: the browser's pending logins (between
//! the redirect to the provider and its callback) and which provider subject is which user.
//!
//! A pending login is non-tenant (nobody is signed in yet) and single-use: [`PendingLogins::take`]
//! removes it in the statement that reads it, so a replayed callback finds nothing. A subject
//! binding is tenant data: [`Sso::sign_in`] matches, binds, demotes or creates in one transaction.

use mttrly_core::MttrlyError;
use mttrly_core::Role;

use super::accounts::User;
use super::{Account, Db, sqlite};

/// A sign-in started in a browser and not yet finished. `Debug` shows only `next`: the rest is
/// what completes the sign-in.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The `state` sent to the provider, which the callback must echo.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier (its S256 challenge went to the provider).
    pub code_verifier: String,
    /// Where to go after sign-in (already checked to be a local path).
    pub next: Option<String>,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the verifier, nor the state and nonce that go with it.
        f.debug_struct("PendingLogin").field("next", &self.next).finish_non_exhaustive()
    }
}

/// The browser's pending logins, keyed by the SHA-256 of the random key in its cookie. Built by
/// [`Db::oidc_logins`].
pub struct PendingLogins<'a> {
    pub(super) db: &'a Db,
}

impl PendingLogins<'_> {
    /// Stores a pending login until `expires_at` (Unix ms), first dropping expired ones. Refused
    /// (`false`, nothing written) when `cap` live pending logins exist already, so an anonymous
    /// client looping on the sign-in start cannot grow the table without bound.
    pub async fn insert(
        &self,
        key_hash: &[u8; 32],
        login: PendingLogin,
        now: i64,
        expires_at: i64,
        cap: u32,
    ) -> Result<bool, MttrlyError> {
        let key = *key_hash;
        self.db.sqlite.call(move |conn| sqlite::oidc::insert_pending(conn, &key, &login, now, expires_at, cap)).await
    }

    /// Removes and returns the live pending login with this key, if any: a second call with the
    /// same key finds nothing, however close behind the first.
    pub async fn take(&self, key_hash: &[u8; 32], now: i64) -> Result<Option<PendingLogin>, MttrlyError> {
        let key = *key_hash;
        self.db.sqlite.call(move |conn| sqlite::oidc::take_pending(conn, &key, now)).await
    }
}

/// Who the provider vouched for, as the matching needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    /// The provider's issuer (bindings are per issuer).
    pub issuer: String,
    /// The provider's subject.
    pub subject: String,
    /// The verified e-mail address, lower-cased.
    pub verified_email: Option<String>,
    /// The role the person's groups map to.
    pub mapped_role: Option<Role>,
}

/// A user to create when nobody matches (just-in-time creation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    /// Names to try in order; the first free one among the living is taken.
    pub names: Vec<String>,
    /// The role (from the group claim).
    pub role: Role,
}

/// How a sign-in matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// The subject was bound to this living user already.
    Bound(User),
    /// A living user with this verified e-mail; the subject is now bound to them.
    ByEmail(User),
    /// Nobody matched; this user was created (and bound).
    Created(User),
}

impl Matched {
    /// The user signed in.
    pub fn user(&self) -> &User {
        match self {
            Self::Bound(u) | Self::ByEmail(u) | Self::Created(u) => u,
        }
    }
}

/// A sign-in matched, and what changed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Who.
    pub matched: Matched,
    /// The role they had before the group claim lowered it (their role now is in the user).
    pub demoted_from: Option<Role>,
    /// The group claim asked for a lower role but they are the account's last admin, or its last
    /// admin with a second factor (lowering them would switch off the second-factor gate).
    pub kept_last_admin: bool,
    /// Names just-in-time creation passed over because a removed user had them (approval rules
    /// name people, `user:NAME`: a newcomer under an old name would satisfy the old person's
    /// rules). Empty unless a user was created.
    pub skipped_removed_names: Vec<String>,
}

/// Why nobody was signed in; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoRefusal {
    /// The subject was bound to a user who has been removed (and no living user took their
    /// e-mail since).
    Removed,
    /// No user matches and creation is off (or the person has no mapped role).
    Unknown,
    /// Several living users have this e-mail: which one is meant is not for sign-in to guess.
    Ambiguous,
    /// The living user with this e-mail is bound to another subject of this provider.
    BoundToOther,
    /// Every name tried for a new user is taken (by a living user, or once by a removed one).
    NameTaken,
}

/// A tenant's subject bindings. Built by [`Account::sso`].
pub struct Sso<'a> {
    pub(super) account: Account<'a>,
}

impl Sso<'_> {
    /// Matches the vouched person to a user of this account, in one IMMEDIATE transaction:
    /// 1. a binding of this issuer's subject to a living user;
    /// 2. else a single living user with the verified e-mail and no binding to this issuer
    ///    (a binding left by a removed user is replaced); the subject is bound to them;
    /// 3. else, if the subject was bound to a removed user, refused;
    /// 4. else, with `create`, a new user with the verified e-mail, bound.
    ///
    /// A matched user whose role is stronger than `vouched.mapped_role` is lowered to it (never
    /// raised), unless they are the last admin.
    pub async fn sign_in(
        &self,
        vouched: Vouched,
        create: Option<Create>,
    ) -> Result<Result<SignedIn, SsoRefusal>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.call(move |conn| sqlite::oidc::sign_in(conn, &account, &vouched, create.as_ref())).await
    }
}

impl Db {
    /// Non-tenant: the browsers' pending OpenID Connect logins.
    pub fn oidc_logins(&self) -> PendingLogins<'_> {
        PendingLogins { db: self }
    }

    /// Non-tenant: the id of the oldest account with this name (`None`: no such account).
    pub async fn account_named(&self, name: &str) -> Result<Option<mttrly_core::ids::AccountId>, MttrlyError> {
        let name = name.to_owned();
        self.sqlite.read(move |conn| sqlite::oidc::account_named(conn, &name)).await
    }
}

impl<'a> Account<'a> {
    /// Its users' OpenID Connect subject bindings, and single sign-on's matching.
    pub fn sso(self) -> Sso<'a> {
        Sso { account: self }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mttrly_core::ids::AccountId;
    use mttrly_core::{Plan, Role};

    use super::{Create, Matched, PendingLogin, SsoRefusal, Vouched};
    use crate::db::Db;

    fn login(state: &str) -> PendingLogin {
        PendingLogin { state: state.into(), nonce: "n".into(), code_verifier: "v".into(), next: Some("/x".into()) }
    }

    fn vouched(subject: &str, email: &str) -> Vouched {
        Vouched {
            issuer: "https://idp.example".into(),
            subject: subject.into(),
            verified_email: Some(email.into()),
            mapped_role: None,
        }
    }

    async fn tenant(db: &Db, name: &str, token: u8) -> AccountId {
        db.create_tenant(name, Plan::DeploymentCrew, "admin", &[token; 32]).await.unwrap().0
    }

    async fn add(db: &Db, account: &AccountId, name: &str, email: &str, token: u8) {
        db.account(account)
            .users()
            .add_with_token(name, Role::Operator, Some(email), &[token; 32])
            .await
            .unwrap()
            .unwrap();
    }

    /// Gives every living admin named in `names` a confirmed factor (sealed bytes; never opened).
    async fn factor(db: &Db, account: &AccountId, names: &[&'static str]) {
        let account = account.as_str().to_owned();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        db.with_connection_for_tests(move |c| {
            for name in &names {
                c.execute(
                    "INSERT INTO user_credentials (user_id, account_id, totp_sealed, updated_at)
                     SELECT id, account_id, x'00', 0 FROM users WHERE account_id = ?1 AND name = ?2",
                    rusqlite::params![account, name],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_group_claim_never_lowers_the_last_admin_with_a_second_factor() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        let ours = tenant(&db, "ours", 1).await;
        add(&db, &ours, "lead", "lead@example.com", 3).await;
        db.account(&ours).users().set_role("lead", Role::Admin).await.unwrap().unwrap();
        factor(&db, &ours, &["lead"]).await;
        let lowered = Vouched { mapped_role: Some(Role::Viewer), ..vouched("s-lead", "lead@example.com") };
        let sso = db.account(&ours).sso();
        // Two admins, but only the lead has a factor: lowering her would switch the gate off.
        let kept = sso.sign_in(lowered.clone(), None).await.unwrap().unwrap();
        assert!(kept.kept_last_admin && kept.demoted_from.is_none());
        assert_eq!(
            db.account(&ours).users().list().await.unwrap().iter().find(|u| u.name == "lead").unwrap().role,
            Role::Admin
        );
        // Once another admin has one too, the claim applies.
        factor(&db, &ours, &["admin"]).await;
        let applied = sso.sign_in(lowered, None).await.unwrap().unwrap();
        assert_eq!((applied.kept_last_admin, applied.demoted_from), (false, Some(Role::Admin)));
    }

    #[tokio::test]
    async fn a_pending_login_is_taken_once_and_only_while_live() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        let logins = db.oidc_logins();
        assert!(logins.insert(&[1; 32], login("a"), 1_000, 2_000, 2).await.unwrap());
        assert!(logins.insert(&[2; 32], login("b"), 1_000, 2_000, 2).await.unwrap());
        assert!(!logins.insert(&[3; 32], login("c"), 1_000, 2_000, 2).await.unwrap(), "at the cap");
        assert_eq!(logins.take(&[1; 32], 1_500).await.unwrap(), Some(login("a")));
        assert_eq!(logins.take(&[1; 32], 1_500).await.unwrap(), None, "single use");
        assert_eq!(logins.take(&[2; 32], 2_000).await.unwrap(), None, "expired");
        // Expired rows make room at the next insert.
        assert!(logins.insert(&[4; 32], login("d"), 3_000, 4_000, 1).await.unwrap());
    }

    #[tokio::test]
    async fn matching_refuses_what_it_cannot_decide_and_stays_in_its_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        let (ours, theirs) = (tenant(&db, "ours", 1).await, tenant(&db, "theirs", 2).await);
        add(&db, &ours, "bob", "Bob@Example.com", 3).await;
        add(&db, &theirs, "carol", "carol@example.com", 4).await;
        add(&db, &ours, "twin-1", "twin@example.com", 5).await;
        // Two living users with one e-mail: refused by every add since e-mails became unique, but
        // a database from before may hold them.
        let ours_id = ours.as_str().to_owned();
        db.with_connection_for_tests(move |c| {
            c.execute(
                "INSERT INTO users (id, account_id, name, role, created_at, email) VALUES (?1, ?2, 'twin-2', 'operator', ?3, 'twin@example.com')",
                rusqlite::params![mttrly_core::ids::UserId::generate().as_str(), ours_id, crate::db::now_ms()],
            )
        })
        .await
        .unwrap();
        let sso = db.account(&ours).sso();

        let bob = sso.sign_in(vouched("s-bob", "bob@example.com"), None).await.unwrap().unwrap();
        assert!(matches!(&bob.matched, Matched::ByEmail(u) if u.name == "bob"));
        let again = sso.sign_in(vouched("s-bob", "changed@example.com"), None).await.unwrap().unwrap();
        assert!(matches!(&again.matched, Matched::Bound(u) if u.name == "bob"), "the subject, not the e-mail");
        // Another subject claiming bob's e-mail does not take bob over.
        assert_eq!(
            sso.sign_in(vouched("s-impostor", "bob@example.com"), None).await.unwrap(),
            Err(SsoRefusal::BoundToOther)
        );
        assert_eq!(sso.sign_in(vouched("s-twin", "twin@example.com"), None).await.unwrap(), Err(SsoRefusal::Ambiguous));
        // Carol exists only in the other tenant.
        assert_eq!(sso.sign_in(vouched("s-carol", "carol@example.com"), None).await.unwrap(), Err(SsoRefusal::Unknown));
        let create = Create { names: vec!["bob".into()], role: Role::Viewer };
        assert_eq!(
            sso.sign_in(vouched("s-new", "new@example.com"), Some(create)).await.unwrap(),
            Err(SsoRefusal::NameTaken)
        );
        let names: Vec<String> = db.account(&ours).users().list().await.unwrap().into_iter().map(|u| u.name).collect();
        assert_eq!(names, ["admin", "bob", "twin-1", "twin-2"], "nothing created by a refusal");
        assert_eq!(db.account(&theirs).users().list().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn just_in_time_creation_passes_over_the_names_removed_users_had() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        let (ours, theirs) = (tenant(&db, "ours", 1).await, tenant(&db, "theirs", 2).await);
        add(&db, &ours, "bob", "old-bob@example.com", 3).await;
        add(&db, &ours, "bob-2", "bob2@example.com", 4).await;
        db.account(&ours).users().remove("bob").await.unwrap().unwrap();
        // Another tenant's removed `bob-3` is no concern of this one.
        add(&db, &theirs, "bob-3", "x@example.com", 5).await;
        db.account(&theirs).users().remove("bob-3").await.unwrap().unwrap();
        let sso = db.account(&ours).sso();
        let names = ["bob", "bob-2", "bob-3"].map(String::from).to_vec();
        let created = sso
            .sign_in(vouched("s-new", "bob@example.com"), Some(Create { names, role: Role::Viewer }))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(&created.matched, Matched::Created(u) if u.name == "bob-3"), "{created:?}");
        assert_eq!(created.skipped_removed_names, ["bob"], "a living name is not a removed one");
        // Only removed names left: refused, nothing created.
        let only = Create { names: vec!["bob".into()], role: Role::Viewer };
        assert_eq!(
            sso.sign_in(vouched("s-newer", "b@example.com"), Some(only)).await.unwrap(),
            Err(SsoRefusal::NameTaken)
        );
    }
}
