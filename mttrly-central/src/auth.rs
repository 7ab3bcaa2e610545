//! Resolving the caller of an API request from its bearer token.

use mttrly_core::{ErrorCode, MttrlyError};
use tonic::metadata::MetadataMap;

use crate::db::accounts::{Role, TokenOwner};
use crate::secrets;
use crate::state::Central;

/// The bearer token in `authorization: Bearer …`, if well-formed.
pub fn bearer(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?.trim();
    (!token.is_empty() && token.len() <= 256).then_some(token)
}

/// The owner of the request's token, or `AUTH_FAILED`.
pub async fn authenticate(central: &Central, metadata: &MetadataMap) -> Result<TokenOwner, MttrlyError> {
    let Some(token) = bearer(metadata) else {
        return Err(MttrlyError::new(
            ErrorCode::AuthFailed,
            "missing bearer token: pass --token or set MTTRLY_TOKEN (`authorization: Bearer …`)",
        ));
    };
    let hash = secrets::hash(token);
    central
        .db
        .call(move |conn| crate::db::accounts::token_owner(conn, &hash))
        .await?
        .ok_or_else(|| MttrlyError::new(ErrorCode::AuthFailed, "unknown or revoked token"))
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
