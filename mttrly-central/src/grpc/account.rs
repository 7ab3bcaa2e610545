//! `mttrly.central.v1.AccountService`.

use std::sync::Arc;

use mttrly_core::{ErrorCode, MttrlyError, Principal};
use mttrly_proto::central::v1::account_service_server::AccountService;
use mttrly_proto::central::v1::{
    CreateTokenRequest, CreateTokenResponse, ListTokensRequest, ListTokensResponse, RevokeTokenRequest,
    RevokeTokenResponse, TokenInfo, WhoAmIRequest, WhoAmIResponse,
};
use tonic::{Request, Response};

use super::{GrpcResult, status};
use crate::auth::{authenticate, require_operator};
use crate::secrets::{self, SecretKind};
use crate::state::Central;

/// The account service.
pub struct AccountApi {
    central: Arc<Central>,
}

impl AccountApi {
    /// Serves `central`'s accounts.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

/// `FORBIDDEN` for a token request wider than the caller's own scope, saying how to ask for one
/// that fits.
fn wider_than_caller(mine: &mttrly_core::ToolSurface, asked: &mttrly_core::ToolSurface) -> MttrlyError {
    let flags = |s: &mttrly_core::ToolSurface| {
        let mut f = Vec::new();
        if s.read_only {
            f.push("--read-only".to_owned());
        }
        if let Some(t) = s.toolsets_flag() {
            f.push(format!("--toolsets {t}"));
        }
        if f.is_empty() { "no scope (every tool)".to_owned() } else { f.join(" ") }
    };
    MttrlyError::new(
        ErrorCode::Forbidden,
        format!(
            "a token can only create tokens as narrow as itself or narrower: yours is {}, the request is {}; ask with at least {}",
            flags(mine),
            flags(asked),
            flags(mine)
        ),
    )
    .with_detail("caller_read_only", mine.read_only)
    .with_detail("caller_toolsets", mine.toolsets_flag())
}

fn token_to_wire(t: &crate::db::accounts::TokenRow) -> TokenInfo {
    TokenInfo {
        id: t.id.clone(),
        kind: t.kind.as_str().to_owned(),
        owner_id: t.owner_id.to_string(),
        owner_name: t.owner_name.clone(),
        name: t.name.clone().unwrap_or_default(),
        read_only: t.scope.read_only,
        toolsets: t.scope.toolsets_flag().unwrap_or_default(),
        created_at: t.created_at.unwrap_or(0),
        last_used_at: t.last_used_at.unwrap_or(0),
    }
}

#[tonic::async_trait]
impl AccountService for AccountApi {
    async fn who_am_i(&self, request: Request<WhoAmIRequest>) -> GrpcResult<WhoAmIResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let (principal_type, name) = match &owner.principal {
            Principal::Human { name, .. } => ("human", name.clone()),
            Principal::Assistant { client_name, .. } => ("assistant", client_name.clone()),
        };
        Ok(Response::new(WhoAmIResponse {
            account_id: owner.account_id.to_string(),
            plan: owner.plan.as_str().to_owned(),
            principal_type: principal_type.to_owned(),
            user_id: owner.principal.accountable_user().to_string(),
            name,
            role: owner.role.as_str().to_owned(),
            user_name: owner.user_name.clone(),
        }))
    }

    async fn list_tokens(&self, request: Request<ListTokensRequest>) -> GrpcResult<ListTokensResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let tokens = crate::tokens::list(&self.central, &owner).await.map_err(|e| status(&e))?;
        Ok(Response::new(ListTokensResponse { tokens: tokens.iter().map(token_to_wire).collect() }))
    }

    async fn revoke_token(&self, request: Request<RevokeTokenRequest>) -> GrpcResult<RevokeTokenResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let id = request.into_inner().id;
        crate::tokens::revoke(&self.central, &owner, id.trim()).await.map_err(|e| status(&e))?;
        Ok(Response::new(RevokeTokenResponse {}))
    }

    async fn create_token(&self, request: Request<CreateTokenRequest>) -> GrpcResult<CreateTokenResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        require_operator(&owner).map_err(|e| status(&e))?;
        let req = request.into_inner();
        let assistant = match (req.human, req.assistant_name.trim()) {
            (true, "") => None,
            (false, name) if !name.is_empty() => {
                if name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c)) {
                    return Err(status(
                        &MttrlyError::new(
                            ErrorCode::ValidationError,
                            "assistant name must be 1 to 64 of letters, digits, space, `-`, `_`, `.`",
                        )
                        .with_detail("field", "assistant_name"),
                    ));
                }
                Some(name.to_owned())
            }
            _ => {
                return Err(status(&MttrlyError::new(
                    ErrorCode::ValidationError,
                    "ask for exactly one of a human token or an assistant token (with its name)",
                )));
            }
        };
        let scope = mttrly_core::ToolSurface::from_flags(req.read_only, Some(&req.toolsets))
            .map_err(|e| status(&e.with_detail("field", "toolsets")))?;
        // A token creates only tokens narrower than (or as narrow as) itself: a read-only or
        // toolset-scoped holder can never mint its way out of its scope.
        if !owner.scope.covers(&scope) {
            let err = wider_than_caller(&owner.scope, &scope);
            let params = serde_json::json!({ "read_only": req.read_only, "toolsets": req.toolsets });
            self.central.audit(crate::audit::events::api_call(
                &owner,
                "CreateToken",
                None,
                params,
                &Err::<(), _>(err.clone()),
            ));
            return Err(status(&err));
        }
        let kind = if assistant.is_some() { SecretKind::Assistant } else { SecretKind::Human };
        let token = secrets::generate(kind);
        let hash = secrets::hash(&token);
        let user = owner.principal.accountable_user();
        let result = self
            .central
            .db
            .account(&owner.account_id)
            .users()
            .insert_token(&hash, user, assistant.as_deref(), &scope)
            .await;
        // The token itself never reaches the audit log.
        let params = serde_json::json!({
            "assistant_name": assistant,
            "human": assistant.is_none(),
            "read_only": req.read_only,
            "toolsets": req.toolsets,
        });
        self.central.audit(crate::audit::events::api_call(&owner, "CreateToken", None, params, &result));
        let token_id = result.map_err(|e| status(&e))?;
        Ok(Response::new(CreateTokenResponse {
            token_id,
            token,
            principal_type: if assistant.is_some() { "assistant" } else { "human" }.to_owned(),
        }))
    }
}
