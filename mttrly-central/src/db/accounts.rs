//! Accounts, users and API tokens: who a credential belongs to, and a tenant's people.

use mttrly_core::ids::{AccountId, AssistantSessionId, ServerId, UserId};
use mttrly_core::{MttrlyError, Plan, Principal, Role, ToolSurface};

use super::{Account, Db, sqlite};

/// Who a bearer token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    /// The tenant.
    pub account_id: AccountId,
    /// The tenant's plan.
    pub plan: Plan,
    /// The human, or the assistant acting for a human.
    pub principal: Principal,
    /// The human's role.
    pub role: Role,
    /// The human's display name (the one an approval through MCP is recorded under).
    pub user_name: String,
    /// The token's scope: the tools it may reach, before the deployment's own narrowing.
    pub scope: ToolSurface,
    /// Which credential this is (derived from its hash, never the secret): the key of the
    /// per-token rate limit, shared by every MCP session opened with the same token.
    pub credential: String,
}

/// The stable, non-secret key of a credential: the first half of its SHA-256.
pub(crate) fn credential_key(hash: &[u8; 32]) -> String {
    format!("tok_{}", hex::encode(&hash[..16]))
}

/// A stable assistant session id derived from a digest (a token's hash, or a hash of who and which
/// client), so audit rows of the same token or client group together.
pub(crate) fn derived_session_id(digest: &[u8]) -> AssistantSessionId {
    let head = &digest[..digest.len().min(16)];
    AssistantSessionId::parse(&format!("ses_{}", hex::encode(head))).unwrap_or_else(|_| AssistantSessionId::generate())
}

/// Non-tenant: the lookups that turn a presented secret into its owner, and so find the tenant.
/// Built by [`Db::credentials`]; only `crate::auth` calls it.
pub struct Credentials<'a> {
    pub(super) db: &'a Db,
}

impl Credentials<'_> {
    /// The owner of a human or assistant API token's hash; `None` for unknown or revoked tokens.
    pub async fn api_token(&self, hash: &[u8; 32]) -> Result<Option<TokenOwner>, MttrlyError> {
        let hash = *hash;
        self.db.sqlite.call(move |conn| sqlite::accounts::token_owner(conn, &hash)).await
    }

    /// The owner of an OAuth access token's hash, valid at `now` (ms) for `resource`, or why not.
    pub async fn oauth_access(
        &self,
        hash: &[u8; 32],
        resource: &str,
        now: i64,
    ) -> Result<Result<TokenOwner, super::oauth::AccessRefusal>, MttrlyError> {
        let (hash, resource) = (*hash, resource.to_owned());
        self.db.sqlite.call(move |conn| sqlite::oauth::access_owner(conn, &hash, &resource, now)).await
    }

    /// The live server (and its account) an agent secret's hash belongs to, if the secret is
    /// current.
    pub async fn agent(&self, secret_hash: &[u8; 32]) -> Result<Option<(ServerId, AccountId)>, MttrlyError> {
        let hash = *secret_hash;
        self.db.sqlite.call(move |conn| sqlite::servers::credential_owner(conn, &hash)).await
    }
}

/// A tenant's users and API tokens. Built by [`Account::users`].
pub struct Users<'a> {
    pub(super) account: Account<'a>,
}

impl Users<'_> {
    /// Adds a user with `role`.
    pub async fn create(&self, name: &str, role: Role) -> Result<UserId, MttrlyError> {
        let (account, name) = (self.account.id.clone(), name.to_owned());
        self.account.db.sqlite.call(move |conn| sqlite::accounts::create_user(conn, &account, &name, role)).await
    }

    /// The first admin (by creation), if any.
    pub async fn first_admin(&self) -> Result<Option<UserId>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.call(move |conn| sqlite::accounts::first_admin(conn, &account)).await
    }

    /// Stores the hash of a new API token of `user` (an assistant token when `assistant` names
    /// the assistant), reaching at most `scope`.
    pub async fn insert_token(
        &self,
        hash: &[u8; 32],
        user: &UserId,
        assistant: Option<&str>,
        scope: &ToolSurface,
    ) -> Result<String, MttrlyError> {
        let (account, hash, user) = (self.account.id.clone(), *hash, user.clone());
        let (assistant, scope) = (assistant.map(str::to_owned), scope.clone());
        self.account
            .db
            .sqlite
            .call(move |conn| {
                sqlite::accounts::insert_token(conn, &hash, &account, &user, assistant.as_deref(), &scope)
            })
            .await
    }
}

/// A living user of an account (removed users keep their row for the audit, but are never listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The stable id (audit rows name it).
    pub id: UserId,
    /// Unique among the account's living users.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Where to reach them, if given.
    pub email: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Why a change to the account's users was not made; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRefusal {
    /// No living user of this account has that name.
    NotFound,
    /// A living user of this account already has that name.
    NameTaken,
    /// A living user of this account already has that e-mail (compared without case).
    EmailTaken,
    /// The change would leave the account without an admin.
    LastAdmin,
    /// The change needs the caller's fresh second-factor code (see `crate::users`: the account
    /// uses second factors and the change creates or raises admin power, hands out a token,
    /// reuses a removed user's name, re-invites anyone, or demotes or removes someone with an
    /// enrolled factor; or, in any account, it re-invites someone with an enrolled factor), and
    /// none was verified. Judged inside the change's own
    /// transaction, on the facts as they are then.
    SecondFactorRequired,
}

/// Whether a change's transaction checks the second-factor rule of `crate::users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorGate {
    /// Not checked: callers that act on the data directory or on a proof of their own (tests,
    /// quickstart's first admin, SSO's just-in-time creation), never a bearer token's request.
    Unchecked,
    /// Checked in the transaction; `code_verified` says whether the caller's own fresh code was
    /// verified just before (the verification needs the lockout state, so it runs first).
    Checked {
        /// The caller typed a fresh code of their own enrolled factor, and it was accepted.
        code_verified: bool,
    },
}

/// What the second-factor rule looks at, read before a change to decide whether to ask for the
/// caller's code (the change's transaction judges the same facts again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardFacts {
    /// A living admin of the account has a confirmed second factor ("the account uses second
    /// factors").
    pub factors_in_use: bool,
    /// A removed user of the account had this name.
    pub name_removed: bool,
    /// The living user with this name, if any, and whether they have a confirmed second factor.
    pub target: Option<(User, bool)>,
}

/// What kind of credential a token row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A person's API token (the CLI).
    Human,
    /// An assistant's API token (an MCP client without OAuth).
    Assistant,
    /// An OAuth grant to an MCP client (its access and refresh tokens, one family).
    OAuth,
}

impl TokenKind {
    /// The printed name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Assistant => "assistant",
            Self::OAuth => "oauth",
        }
    }
}

/// The public id of an OAuth grant: its refresh family, which is no secret (it already keys the
/// grant's rate-limit bucket).
pub(crate) const OAUTH_GRANT_PREFIX: &str = "oauth_";

/// A live credential as its owner and their admins see it: never the secret, never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// The public id (`tkn_…` for API tokens, `oauth_…` for grants): what `revoke` takes.
    pub id: String,
    /// Human, assistant or OAuth grant.
    pub kind: TokenKind,
    /// The person it acts for.
    pub owner_id: UserId,
    /// Their name.
    pub owner_name: String,
    /// The assistant's or OAuth client's name; `None` for a human token.
    pub name: Option<String>,
    /// The tools it may reach.
    pub scope: ToolSurface,
    /// Unix milliseconds; `None` for a grant made before creation times were kept.
    pub created_at: Option<i64>,
    /// Unix milliseconds, to the minute; `None` if never used.
    pub last_used_at: Option<i64>,
}

/// A revoked credential: what the caller's auth cache must forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// An API token, by its hash.
    ApiToken([u8; 32]),
    /// An OAuth grant (its tokens are never cached).
    OAuthGrant,
}

/// A user removed, with everything that stood for them revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Who it was.
    pub user: User,
    /// How many API tokens and OAuth tokens were revoked with them.
    pub revoked_tokens: usize,
}

impl Users<'_> {
    /// Whether `user` is still a living member of the account and the credential with this key
    /// ([`TokenOwner::credential`]) still stands for them at `now`: an API token not revoked, or
    /// an OAuth grant with a live access token whose human token stands. For what outlives the
    /// request that authenticated it (a push stream).
    pub async fn credential_live(&self, user: UserId, credential: String, now: i64) -> Result<bool, MttrlyError> {
        let account = self.account.id.clone();
        self.account
            .db
            .sqlite
            .read(move |conn| sqlite::accounts::credential_live(conn, &account, &user, &credential, now))
            .await
    }

    /// The account's living users, oldest first.
    pub async fn list(&self) -> Result<Vec<User>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.call(move |conn| sqlite::accounts::list_users(conn, &account)).await
    }

    /// Whether a living admin of the account has a confirmed second factor ("the account uses
    /// second factors", `crate::users`).
    pub async fn uses_second_factors(&self) -> Result<bool, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::accounts::factors_in_use(conn, &account)).await
    }

    /// What the second-factor rule of `crate::users` looks at for a change about `name`.
    pub async fn guard_facts(&self, name: &str) -> Result<GuardFacts, MttrlyError> {
        let (account, name) = (self.account.id.clone(), name.to_owned());
        self.account.db.sqlite.read(move |conn| sqlite::accounts::guard_facts(conn, &account, &name)).await
    }

    /// Adds a user with `role` and a human token (its hash), in one transaction: the name must be
    /// free among the living. Returns the user and the token's public id. Not gated (see
    /// [`FactorGate::Unchecked`]); requests go through [`Self::add_with_token_gated`].
    pub async fn add_with_token(
        &self,
        name: &str,
        role: Role,
        email: Option<&str>,
        token_hash: &[u8; 32],
    ) -> Result<Result<(User, String), UserRefusal>, MttrlyError> {
        self.add_with_token_gated(name, role, email, token_hash, FactorGate::Unchecked).await
    }

    /// [`Self::add_with_token`], refused with [`UserRefusal::SecondFactorRequired`] inside the
    /// transaction when `gate` is checked, the account uses second factors and no code was
    /// verified (a token skips enrolment, whatever the role).
    pub async fn add_with_token_gated(
        &self,
        name: &str,
        role: Role,
        email: Option<&str>,
        token_hash: &[u8; 32],
        gate: FactorGate,
    ) -> Result<Result<(User, String), UserRefusal>, MttrlyError> {
        let (account, name, email, hash) =
            (self.account.id.clone(), name.to_owned(), email.map(str::to_owned), *token_hash);
        self.account
            .db
            .sqlite
            .call(move |conn| {
                sqlite::accounts::add_user_with_token(conn, &account, &name, role, email.as_deref(), &hash, gate)
            })
            .await
    }

    /// Changes a user's role, unless that leaves the account without an admin. Returns the user
    /// as they were before. Not gated; requests go through [`Self::set_role_gated`].
    pub async fn set_role(&self, name: &str, role: Role) -> Result<Result<User, UserRefusal>, MttrlyError> {
        self.set_role_gated(name, role, FactorGate::Unchecked).await
    }

    /// [`Self::set_role`], refused with [`UserRefusal::SecondFactorRequired`] inside the
    /// transaction when `gate` is checked, no code was verified, and either the change makes a
    /// non-admin an admin, or lowers someone who has a confirmed second factor, in an account
    /// that uses second factors.
    pub async fn set_role_gated(
        &self,
        name: &str,
        role: Role,
        gate: FactorGate,
    ) -> Result<Result<User, UserRefusal>, MttrlyError> {
        let (account, name) = (self.account.id.clone(), name.to_owned());
        self.account.db.sqlite.call(move |conn| sqlite::accounts::set_role(conn, &account, &name, role, gate)).await
    }

    /// Removes a user, unless they are the last admin, and revokes every API token and OAuth
    /// token that stands for them, in one transaction. Their row stays for the audit. Not gated;
    /// requests go through [`Self::remove_gated`].
    pub async fn remove(&self, name: &str) -> Result<Result<Removed, UserRefusal>, MttrlyError> {
        self.remove_gated(name, FactorGate::Unchecked).await
    }

    /// [`Self::remove`], refused with [`UserRefusal::SecondFactorRequired`] inside the
    /// transaction when `gate` is checked, the account uses second factors, the user has a
    /// confirmed one and no code was verified (removing a person a factor protects is
    /// out-ranking them).
    pub async fn remove_gated(
        &self,
        name: &str,
        gate: FactorGate,
    ) -> Result<Result<Removed, UserRefusal>, MttrlyError> {
        let (account, name) = (self.account.id.clone(), name.to_owned());
        self.account.db.sqlite.call(move |conn| sqlite::accounts::remove_user(conn, &account, &name, gate)).await
    }

    /// The account's live credentials (API tokens and OAuth grants), or only `owner`'s.
    pub async fn tokens(&self, owner: Option<&UserId>) -> Result<Vec<TokenRow>, MttrlyError> {
        let (account, owner) = (self.account.id.clone(), owner.cloned());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::accounts::list_tokens(conn, &account, owner.as_ref(), super::now_ms()))
            .await
    }

    /// When each live OAuth grant of the account ends however often it is refreshed (Unix ms), by
    /// its public id (`oauth_…`); API tokens never expire and are not in it.
    pub async fn grant_ends(&self) -> Result<std::collections::HashMap<String, i64>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::accounts::grant_ends(conn, &account)).await
    }

    /// Revokes one live credential of the account by its public id (only if `owner` holds it,
    /// when given). `None`: no such live credential here (another account's id included).
    pub async fn revoke_token(&self, id: &str, owner: Option<&UserId>) -> Result<Option<Revoked>, MttrlyError> {
        let (account, id, owner) = (self.account.id.clone(), id.to_owned(), owner.cloned());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::accounts::revoke_token(conn, &account, &id, owner.as_ref(), super::now_ms()))
            .await
    }
}

impl Credentials<'_> {
    /// Records when API tokens were last used (hash, Unix ms), in one transaction. Called at most
    /// once a minute per token (see `crate::tokens::Usage`), never once per request.
    pub async fn touch(&self, uses: Vec<([u8; 32], i64)>) -> Result<(), MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::accounts::touch_tokens(conn, &uses)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mttrly_core::Role;

    use super::{TokenKind, UserRefusal};
    use crate::db::Db;

    #[tokio::test]
    async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        let (account, _) = db.create_tenant("a", mttrly_core::Plan::DeploymentCrew, "ann", &[1; 32]).await.unwrap();
        let users = db.account(&account).users();
        users.add_with_token("ben", Role::Admin, None, &[2; 32]).await.unwrap().unwrap();
        for _ in 0..20 {
            let (first, second) = (db.account(&account).users(), db.account(&account).users());
            let (x, y) = tokio::join!(first.set_role("ann", Role::Operator), second.set_role("ben", Role::Operator));
            let refused = [x.unwrap(), y.unwrap()].into_iter().filter(|r| r == &Err(UserRefusal::LastAdmin)).count();
            assert_eq!(refused, 1, "exactly one demotion wins");
            let admins = users.list().await.unwrap().into_iter().filter(|u| u.role == Role::Admin).count();
            assert_eq!(admins, 1);
            users.set_role("ann", Role::Admin).await.unwrap().unwrap();
            users.set_role("ben", Role::Admin).await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn the_second_factor_gate_is_judged_inside_each_changes_transaction() {
        use super::FactorGate;
        use crate::db::people::Sealed;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        let (a, ann) = db.create_tenant("a", mttrly_core::Plan::DeploymentCrew, "ann", &[1; 32]).await.unwrap();
        let (users, people) = (db.account(&a).users(), db.account(&a).people());
        let (no_code, code) =
            (FactorGate::Checked { code_verified: false }, FactorGate::Checked { code_verified: true });
        let far = crate::db::now_ms() + 60_000;

        // No admin has a factor: nothing needs a code.
        users.add_with_token_gated("ben", Role::Viewer, None, &[2; 32], no_code).await.unwrap().unwrap();
        users.set_role_gated("ben", Role::Admin, no_code).await.unwrap().unwrap();
        users.set_role_gated("ben", Role::Viewer, no_code).await.unwrap().unwrap();
        assert!(!users.guard_facts("ben").await.unwrap().factors_in_use);

        // Ann (an admin) enrols: the account uses second factors. Ben started enrolling before
        // that, by token; his confirmation lands after it and is refused in its transaction.
        let ben = users.list().await.unwrap().into_iter().find(|u| u.name == "ben").unwrap().id;
        people.set_pending(&ben, Sealed(vec![9])).await.unwrap();
        people.set_pending(&ann, Sealed(vec![1])).await.unwrap();
        assert_eq!(people.confirm_pending_gated(&ann, Sealed(vec![1]), 5, vec![], no_code).await.unwrap(), Ok(()));
        let first = people.confirm_pending_gated(&ben, Sealed(vec![9]), 5, vec![], no_code).await.unwrap();
        assert_eq!(first, Err(crate::db::people::PendingRefusal::FirstFactorByInvite));
        // Ann re-enrols (she has a factor): not a first one.
        people.set_pending(&ann, Sealed(vec![2])).await.unwrap();
        assert_eq!(people.confirm_pending_gated(&ann, Sealed(vec![2]), 6, vec![], no_code).await.unwrap(), Ok(()));
        let facts = users.guard_facts("ann").await.unwrap();
        assert!(facts.factors_in_use && facts.target.is_some_and(|(_, enrolled)| enrolled));
        let refused = Some(UserRefusal::SecondFactorRequired);
        assert_eq!(
            users.add_with_token_gated("cy", Role::Viewer, None, &[3; 32], no_code).await.unwrap().err(),
            refused
        );
        let admin_invite = people.add_with_invite_gated("cy", Role::Admin, None, &[4; 32], far, no_code).await;
        assert_eq!(admin_invite.unwrap().err(), refused);
        assert_eq!(users.set_role_gated("ben", Role::Admin, no_code).await.unwrap().err(), refused);
        assert_eq!(people.reinvite_gated("ann", &[5; 32], far, no_code).await.unwrap().err(), refused);
        assert!(users.list().await.unwrap().iter().all(|u| u.name != "cy"), "nothing written");
        assert_eq!(users.list().await.unwrap().iter().find(|u| u.name == "ben").unwrap().role, Role::Viewer);
        // An operator's invite raises nobody and stays code-free; a re-invite, even of someone
        // without a factor, does not (the link makes whoever opens it that person).
        people.add_with_invite_gated("dee", Role::Operator, None, &[6; 32], far, no_code).await.unwrap().unwrap();
        assert_eq!(people.reinvite_gated("dee", &[7; 32], far, no_code).await.unwrap().err(), refused);
        let (_, had_factor) = people.reinvite_gated("dee", &[7; 32], far, code).await.unwrap().unwrap();
        assert!(!had_factor);
        // A removed user's name is taken again only with a code.
        users.remove("dee").await.unwrap().unwrap();
        assert!(users.guard_facts("dee").await.unwrap().name_removed);
        let reuse = people.add_with_invite_gated("dee", Role::Viewer, None, &[8; 32], far, no_code).await;
        assert_eq!(reuse.unwrap().err(), refused);
        people.add_with_invite_gated("dee", Role::Viewer, None, &[8; 32], far, code).await.unwrap().unwrap();
        // With a verified code, each goes through.
        users.add_with_token_gated("cy", Role::Admin, None, &[3; 32], code).await.unwrap().unwrap();
        users.set_role_gated("ben", Role::Admin, code).await.unwrap().unwrap();
        let (_, had_factor) = people.reinvite_gated("ann", &[5; 32], far, code).await.unwrap().unwrap();
        assert!(had_factor);
        // Lowering or removing the factor holder (no longer the last admin) needs a code; lowering
        // someone without one does not.
        assert_eq!(users.set_role_gated("ann", Role::Viewer, no_code).await.unwrap().err(), refused);
        assert_eq!(users.remove_gated("ann", no_code).await.unwrap().err(), refused);
        users.set_role_gated("cy", Role::Operator, no_code).await.unwrap().unwrap();
        users.set_role_gated("ann", Role::Operator, code).await.unwrap().unwrap();
        users.remove_gated("ann", code).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_token_is_revoked_only_by_its_account_and_when_asked_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        let (a, _) = db.create_tenant("a", mttrly_core::Plan::DeploymentCrew, "ann", &[1; 32]).await.unwrap();
        let (b, _) = db.create_tenant("b", mttrly_core::Plan::DeploymentCrew, "bea", &[3; 32]).await.unwrap();
        let (ben, ben_token) =
            db.account(&a).users().add_with_token("ben", Role::Viewer, None, &[2; 32]).await.unwrap().unwrap();
        let listed = db.account(&a).users().tokens(None).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|t| t.kind == TokenKind::Human && t.id.starts_with("tkn_") && t.id.len() == 36));
        let ann_token = listed.iter().find(|t| t.owner_name == "ann").unwrap().id.clone();

        assert_eq!(db.account(&b).users().revoke_token(&ben_token, None).await.unwrap(), None, "another account");
        assert_eq!(db.account(&a).users().revoke_token(&ann_token, Some(&ben.id)).await.unwrap(), None, "not his");
        assert!(db.credentials().api_token(&[1; 32]).await.unwrap().is_some());
        let revoked = db.account(&a).users().revoke_token(&ben_token, Some(&ben.id)).await.unwrap();
        assert_eq!(revoked, Some(super::Revoked::ApiToken([2; 32])));
        assert!(db.credentials().api_token(&[2; 32]).await.unwrap().is_none());
        assert_eq!(db.account(&a).users().tokens(Some(&ben.id)).await.unwrap(), vec![]);
    }
}
