//! The OAuth authorization server's clients, codes and tokens (stored as SHA-256 hashes only).

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{MttrlyError, ToolSurface};

use super::{Db, sqlite};

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// Its id.
    pub client_id: String,
    /// The name it registered with (shown on the consent page and in the audit log).
    pub client_name: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
}

/// What a code was issued for.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    /// The client.
    pub client_id: String,
    /// The tenant.
    pub account_id: AccountId,
    /// The human who consented.
    pub user_id: UserId,
    /// The exact redirect URI of the authorization request.
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The resource (audience) the tokens will be bound to.
    pub resource: String,
    /// The granted scope.
    pub scope: String,
    /// The human token the consent was given with, when it was given by pasting one: revoking it
    /// ends the grant. `None` for a consent given in a signed-in browser: the grant is bound to
    /// the user alone (it ends when they are removed or the grant is revoked).
    pub human_token_hash: Option<Vec<u8>>,
    /// The tool surface of that token: the grant can never reach more.
    pub surface: ToolSurface,
    /// When the whole grant ends, however often it is refreshed (ms).
    pub grant_expires_at: i64,
}

/// What presenting a code found.
pub enum CodeUse {
    /// First use, unexpired: what it grants.
    Valid(Box<CodeGrant>),
    /// Used before: a replay. Whatever the first use issued has been revoked.
    Replayed,
    /// Unknown or expired.
    Invalid,
}

/// What using a refresh token found.
pub enum Refresh {
    /// Valid: it is now used; here is what it was for, and its family.
    Valid(Box<CodeGrant>, String),
    /// Already used: a replay. The whole family has been revoked.
    Replayed,
    /// Unknown, expired or revoked.
    Invalid,
}

/// Why an access token was refused.
pub enum AccessRefusal {
    /// Unknown, expired or revoked.
    Invalid,
    /// Issued for another resource.
    WrongAudience,
}

/// The tokens one exchange issues: an access token and its refresh token, of one family and one
/// grant, stored together or not at all.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// What they are issued for.
    pub grant: CodeGrant,
    /// The refresh family (one per authorization; reuse of a rotated refresh token revokes it).
    pub family: String,
    /// SHA-256 of the access token.
    pub access_hash: [u8; 32],
    /// When the access token expires (ms; never after the grant).
    pub access_expires_at: i64,
    /// SHA-256 of the refresh token.
    pub refresh_hash: [u8; 32],
    /// When the refresh token expires (ms; never after the grant).
    pub refresh_expires_at: i64,
}

/// Non-tenant: the authorization server's state. A client exists before any account consents,
/// and codes and tokens are found by their hash, which names the account. Built by [`Db::oauth`].
pub struct OAuth<'a> {
    pub(super) db: &'a Db,
}

impl OAuth<'_> {
    /// Registers a client at `now` (ms).
    pub async fn insert_client(&self, client: Client, now: i64) -> Result<(), MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::oauth::insert_client(conn, &client, now)).await
    }

    /// A client by id.
    pub async fn client(&self, id: &str) -> Result<Option<Client>, MttrlyError> {
        let id = id.to_owned();
        self.db.sqlite.read(move |conn| sqlite::oauth::client(conn, &id)).await
    }

    /// Stores a code's hash and what it grants, until `expires_at` (ms).
    pub async fn insert_code(&self, hash: &[u8; 32], grant: CodeGrant, expires_at: i64) -> Result<(), MttrlyError> {
        let hash = *hash;
        self.db.sqlite.call(move |conn| sqlite::oauth::insert_code(conn, &hash, &grant, expires_at)).await
    }

    /// Uses a code once at `now` (ms), recording the token `family` its exchange starts in the
    /// same statement. A second use revokes the tokens the first one issued (RFC 6749 §4.1.2).
    pub async fn take_code(&self, hash: &[u8; 32], family: &str, now: i64) -> Result<CodeUse, MttrlyError> {
        let (hash, family) = (*hash, family.to_owned());
        self.db.sqlite.call(move |conn| sqlite::oauth::take_code(conn, &hash, &family, now)).await
    }

    /// Uses a refresh token of `client_id` once at `now` (ms). The grant must still be alive: its
    /// user not removed, its human token (if it was given with one) unrevoked and its absolute
    /// lifetime not over.
    pub async fn use_refresh(&self, hash: &[u8; 32], client_id: &str, now: i64) -> Result<Refresh, MttrlyError> {
        let (hash, client) = (*hash, client_id.to_owned());
        self.db.sqlite.call(move |conn| sqlite::oauth::use_refresh(conn, &hash, &client, now)).await
    }

    /// Stores an access token and its refresh token in one transaction, unless the grant (the
    /// family) was revoked meanwhile: `Ok(false)` then, and nothing is stored. Checked inside the
    /// transaction, so a revocation (`tokens revoke oauth_…`, or a replayed refresh token) that
    /// lands between a refresh's check and this insert cannot be undone by it.
    pub async fn insert_token_pair(&self, pair: TokenPair) -> Result<bool, MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::oauth::insert_token_pair(conn, &pair)).await
    }
}
