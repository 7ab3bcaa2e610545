//! Accounts, users and API tokens: who a credential belongs to, and a tenant's people.

use mttrly_core::ids::{AccountId, AssistantSessionId, ServerId, UserId};
use mttrly_core::{MttrlyError, Plan, Principal, ToolSurface};

use super::{Account, Db, sqlite};

/// A user's role within an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including managing users and tokens.
    Admin,
    /// Servers, approvals.
    Operator,
    /// Read only.
    Viewer,
}

impl Role {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "admin" => Self::Admin,
            "operator" => Self::Operator,
            _ => Self::Viewer,
        }
    }
}

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
    ) -> Result<(), MttrlyError> {
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
