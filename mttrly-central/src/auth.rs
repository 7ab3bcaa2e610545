//! Who is calling: one resolution of a bearer credential for every transport.
//!
//! [`resolve`] is the only place a presented credential becomes a [`TokenOwner`]. Transports
//! only find the credential in their own envelope ([`grpc_credential`] for gRPC metadata,
//! [`http_credential`] for an HTTP `Authorization` header) and render the refusal their way, so
//! the same token is accepted or refused identically on the gRPC API and on `/mcp`.
//!
//! What is accepted is decided from positive knowledge: the prefix says what central issued the
//! secret as ([`SecretKind::of`]), and only the kinds that stand for a caller are looked up:
//! human and assistant API tokens everywhere, OAuth access tokens only on the MCP resource they
//! were issued for (RFC 8707). Install tokens, agent credentials and the other OAuth secrets
//! are refused by kind, before any lookup, with a message saying what they are for; anything
//! without a known prefix is refused as unknown without touching the database.

use mttrly_core::ids::{AccountId, AssistantSessionId, ServerId};
use mttrly_core::{ErrorCode, MttrlyError, Principal, Role};
use tonic::metadata::MetadataMap;

use crate::db::accounts::TokenOwner;
use crate::secrets::{self, SecretKind};
use crate::state::Central;

/// Refuses a viewer `what` (a change: asking for an action, opening an investigation, publishing):
/// the viewer role reads and never decides, and a request is where every change starts, so a
/// viewer's credentials (and any assistant acting with them) may read servers, files, logs and
/// run what policy classifies read-only, but never ask for a change. Checked before anything is
/// stored.
pub(crate) fn refuse_viewer(caller: &TokenOwner, what: &str) -> Result<(), MttrlyError> {
    if caller.role == Role::Viewer {
        return Err(MttrlyError::new(
            ErrorCode::Forbidden,
            format!(
                "{} has the viewer role, which reads but does not {what}; an operator or admin can",
                caller.user_name
            ),
        )
        .with_detail("role", Role::Viewer.as_str()));
    }
    Ok(())
}

/// The longest credential looked at (every secret central issues is far shorter).
const MAX_CREDENTIAL_LEN: usize = 256;

/// Where a credential is presented: it decides which kinds are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// The gRPC API (CLI, standalone MCP binary, third parties): API tokens only. OAuth access
    /// tokens are refused here: they are bound to the MCP endpoint they were issued for.
    Api,
    /// `/mcp` over HTTP, whose OAuth resource identifier is the string (RFC 8707): API tokens,
    /// and OAuth access tokens issued for exactly this resource.
    Mcp(&'a str),
}

/// Why a credential was not accepted.
#[derive(Debug)]
pub enum AuthRefusal {
    /// No well-formed bearer credential was presented.
    Missing,
    /// Unknown, revoked or expired (deliberately one answer: no oracle on which).
    Unknown,
    /// An OAuth access token issued for another resource.
    WrongAudience,
    /// A secret central issued for something else than calling it (install token, agent
    /// credential, OAuth refresh token, …), or an OAuth access token on the gRPC API.
    NotHere(SecretKind),
    /// The lookup itself failed (database).
    Internal(MttrlyError),
}

impl AuthRefusal {
    /// Whether the credential was presented and refused (HTTP: `error="invalid_token"` in the
    /// challenge), as opposed to absent.
    pub fn invalid_token(&self) -> bool {
        matches!(self, Self::Unknown | Self::WrongAudience | Self::NotHere(_))
    }

    /// The error the caller sees: `AUTH_FAILED` with a message that says what to do, or the
    /// internal error of a failed lookup.
    pub fn error(self, resource: Resource<'_>) -> MttrlyError {
        let message = match self {
            Self::Internal(e) => return e,
            Self::Missing => match resource {
                Resource::Api => "missing bearer token: pass --token or set MTTRLY_TOKEN (`authorization: Bearer …`)",
                Resource::Mcp(_) => {
                    "this MCP server needs a bearer token: sign in through your client, or create one with `mttrly-cli tokens create --assistant NAME`"
                }
            },
            Self::Unknown => "the bearer token is unknown, revoked or expired",
            Self::WrongAudience => "the access token was issued for another resource",
            Self::NotHere(kind) => not_here(kind),
        };
        MttrlyError::new(ErrorCode::AuthFailed, message)
    }
}

/// What a secret that does not stand for a caller is for.
fn not_here(kind: SecretKind) -> &'static str {
    match kind {
        SecretKind::OAuthAccess => {
            "OAuth access tokens only work on the MCP endpoint they were issued for; the gRPC API takes a CLI or assistant token (`mttrly-cli tokens create`)"
        }
        SecretKind::Install => {
            "this is an install token: it only enrolls an agent (`mttrly-agent enroll`); call the API with a CLI or assistant token"
        }
        SecretKind::Agent => {
            "this is an agent credential: it only opens an agent's session; call the API with a CLI or assistant token"
        }
        SecretKind::OAuthRefresh => {
            "this is an OAuth refresh token: exchange it at the token endpoint for an access token"
        }
        SecretKind::DeviceCode => {
            "this is a device code: only `mttrly-cli login` polls with it; call with a CLI or assistant token"
        }
        SecretKind::OAuthClient | SecretKind::OAuthCode | SecretKind::Human | SecretKind::Assistant => {
            "this is not a bearer token; call with a CLI or assistant token"
        }
    }
}

/// The credential in an `Authorization` value: the `Bearer` scheme (any case, RFC 9110), one
/// space, then a non-empty token of at most 256 characters.
fn bearer_value(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_CREDENTIAL_LEN).then_some(token)
}

/// The bearer credential in gRPC metadata (`authorization: Bearer …`), if well-formed.
pub fn grpc_credential(metadata: &MetadataMap) -> Option<&str> {
    bearer_value(metadata.get("authorization")?.to_str().ok()?)
}

/// The bearer credential in HTTP headers, if well-formed.
pub fn http_credential(headers: &http::HeaderMap) -> Option<&str> {
    bearer_value(headers.get(http::header::AUTHORIZATION)?.to_str().ok()?)
}

/// The caller a credential stands for when presented to `resource`, or why it is refused.
pub async fn resolve(
    central: &Central,
    credential: Option<&str>,
    resource: Resource<'_>,
) -> Result<TokenOwner, AuthRefusal> {
    let Some(credential) = credential else { return Err(AuthRefusal::Missing) };
    let hash = secrets::hash(credential);
    match (SecretKind::of(credential), resource) {
        (Some(SecretKind::Human | SecretKind::Assistant), _) => {
            // Kept across requests; revocation stays immediate through the cache's hooks.
            if let Some(owner) = central.auth_cache.get(&hash) {
                record_use(central, &hash);
                return Ok(owner);
            }
            let ticket = central.auth_cache.ticket();
            let owner = central
                .db
                .credentials()
                .api_token(&hash)
                .await
                .map_err(AuthRefusal::Internal)?
                .ok_or(AuthRefusal::Unknown)?;
            central.auth_cache.keep(ticket, hash, &owner);
            record_use(central, &hash);
            Ok(owner)
        }
        (Some(SecretKind::OAuthAccess), Resource::Mcp(resource)) => {
            match central
                .db
                .credentials()
                .oauth_access(&hash, resource, crate::db::now_ms())
                .await
                .map_err(AuthRefusal::Internal)?
            {
                Ok(owner) => Ok(owner),
                Err(crate::db::oauth::AccessRefusal::WrongAudience) => Err(AuthRefusal::WrongAudience),
                Err(crate::db::oauth::AccessRefusal::Invalid) => Err(AuthRefusal::Unknown),
            }
        }
        (Some(kind), _) => Err(AuthRefusal::NotHere(kind)),
        (None, _) => Err(AuthRefusal::Unknown),
    }
}

/// Notes a use of an API token; its first use in a minute is written to the database on a spawned
/// task, never on the request (see `crate::tokens::Usage` for why not a write per request).
fn record_use(central: &Central, hash: &[u8; 32]) {
    let Some(at) = central.token_usage.due(hash, crate::db::now_ms()) else { return };
    let (db, hash) = (central.db.clone(), *hash);
    tokio::spawn(async move {
        if let Err(e) = db.credentials().touch(vec![(hash, at)]).await {
            tracing::warn!(error = %e, "could not record a token's last use");
        }
    });
}

/// The server an agent's session credential stands for, and its account. Only an agent
/// credential (`mttrly_s_`) is looked up; it must belong to the server the agent claims
/// (`x-mttrly-server-id`), so a leaked credential cannot open another server's session.
pub async fn resolve_agent(
    central: &Central,
    credential: Option<&str>,
    claimed: Option<ServerId>,
) -> Result<(ServerId, AccountId), MttrlyError> {
    let refused = |m: &str| MttrlyError::new(ErrorCode::AuthFailed, m);
    let credential = credential.ok_or_else(|| refused("missing agent credentials"))?;
    let claimed = claimed.ok_or_else(|| refused("missing or malformed x-mttrly-server-id"))?;
    let unknown = || refused("agent credentials are unknown, revoked or belong to another server; re-enroll");
    if SecretKind::of(credential) != Some(SecretKind::Agent) {
        return Err(unknown());
    }
    let hash = secrets::hash(credential);
    match central.db.credentials().agent(&hash).await? {
        Some((server, account)) if server == claimed => Ok((server, account)),
        _ => Err(unknown()),
    }
}

/// The gRPC API's adapter: the owner of the request's token, or `AUTH_FAILED`.
pub async fn authenticate(central: &Central, metadata: &MetadataMap) -> Result<TokenOwner, MttrlyError> {
    resolve(central, grpc_credential(metadata), Resource::Api).await.map_err(|r| r.error(Resource::Api))
}

impl TokenOwner {
    /// Who owns an MCP session: the account and the accountable human. The `/mcp` gate's session
    /// table and the MCP layer's per-session check both key on it, so they cannot disagree.
    pub fn session_key(&self) -> String {
        format!("{}/{}", self.account_id, self.principal.accountable_user())
    }
}

/// The caller as an MCP session's assistant: the session's id and client name, on behalf of the
/// token's human (every MCP call is the assistant's, never the human's own). An assistant token
/// keeps the name its human gave it.
pub fn as_assistant(owner: &TokenOwner, session_id: AssistantSessionId, client_name: &str) -> TokenOwner {
    let client_name = match &owner.principal {
        Principal::Assistant { client_name, .. } => client_name.clone(),
        Principal::Human { .. } => client_name.to_owned(),
    };
    TokenOwner {
        principal: Principal::Assistant {
            session_id,
            client_name,
            on_behalf_of: owner.principal.accountable_user().clone(),
        },
        ..owner.clone()
    }
}

/// The assistant behind a call the standalone MCP server relays over gRPC: one stable session id
/// per token and client name, so its audit rows group together. The token is part of it: names
/// are the caller's to choose (and assistant names are not unique), so without it another token
/// of the same human could claim the same client name, become the same principal, and withdraw
/// that assistant's requests as if they were its own.
pub fn relayed_assistant(owner: &TokenOwner, client_name: &str) -> TokenOwner {
    use sha2::Digest as _;
    let name = mttrly_core::display::client_name(client_name);
    let user = owner.principal.accountable_user().clone();
    let digest = sha2::Sha256::digest(format!("{}/{user}/{}/{name}", owner.account_id, owner.credential).as_bytes());
    let session_id = crate::db::accounts::derived_session_id(&digest);
    as_assistant(owner, session_id, &name)
}

/// Refuses assistants and read-only humans: for changes only a person with at least the
/// operator role may make (registering servers, issuing tokens).
pub fn require_operator(owner: &TokenOwner) -> Result<(), MttrlyError> {
    if !owner.principal.is_human() {
        return Err(MttrlyError::new(
            ErrorCode::Forbidden,
            "this operation is reserved for humans; assistant tokens cannot perform it",
        ));
    }
    if owner.role == Role::Viewer {
        return Err(MttrlyError::new(ErrorCode::Forbidden, "this operation needs the operator or admin role"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_bounded() {
        assert_eq!(bearer_value("Bearer mttrly_h_x"), Some("mttrly_h_x"));
        assert_eq!(bearer_value("bearer mttrly_h_x"), Some("mttrly_h_x"));
        assert_eq!(bearer_value("BEARER  mttrly_h_x "), Some("mttrly_h_x"));
        assert_eq!(bearer_value("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_value("Bearer"), None);
        assert_eq!(bearer_value("Bearer   "), None);
        assert_eq!(bearer_value("Bearermttrly_h_x"), None);
        assert_eq!(bearer_value(&format!("Bearer {}", "a".repeat(257))), None);
    }

    #[test]
    fn both_adapters_read_the_same_credential() {
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", tonic::metadata::MetadataValue::from_static("bearer mttrly_a_abc"));
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("bearer mttrly_a_abc"));
        assert_eq!(grpc_credential(&metadata), http_credential(&headers));
        assert_eq!(grpc_credential(&MetadataMap::new()), None);
        assert_eq!(http_credential(&http::HeaderMap::new()), None);
    }

    #[test]
    fn every_refusal_of_a_presented_token_is_an_invalid_token_challenge() {
        assert!(!AuthRefusal::Missing.invalid_token());
        assert!(AuthRefusal::Unknown.invalid_token());
        assert!(AuthRefusal::WrongAudience.invalid_token());
        for kind in SecretKind::ALL {
            assert!(AuthRefusal::NotHere(kind).invalid_token());
            assert_eq!(AuthRefusal::NotHere(kind).error(Resource::Api).code(), ErrorCode::AuthFailed);
        }
    }
}
