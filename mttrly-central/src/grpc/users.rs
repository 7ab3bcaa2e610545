//! `mttrly.central.v1.UserService`: a thin adapter over [`crate::users`] and, for a person's own
//! second factor, [`crate::second_factor`].

use std::sync::Arc;

use mttrly_proto::central::v1::user_service_server::UserService;
use mttrly_proto::central::v1::{
    AddUserRequest, AddUserResponse, ConfirmTotpEnrollmentRequest, ConfirmTotpEnrollmentResponse, GetTotpStatusRequest,
    GetTotpStatusResponse, InviteUserRequest, InviteUserResponse, ListUsersRequest, ListUsersResponse,
    RemoveUserRequest, RemoveUserResponse, SetUserRoleRequest, SetUserRoleResponse, StartTotpEnrollmentRequest,
    StartTotpEnrollmentResponse, User,
};
use mttrly_proto::central::v1::{
    ChatLink, LinkChatRequest, LinkChatResponse, ListChatLinksRequest, ListChatLinksResponse, UnlinkChatRequest,
    UnlinkChatResponse,
};
use mttrly_proto::convert::role_from_wire;
use tonic::{Request, Response};

use super::{GrpcResult, status};
use crate::auth::authenticate;
use crate::db::accounts;
use crate::state::Central;

/// The user service.
pub struct UserApi {
    central: Arc<Central>,
    /// The public HTTP base URL invite links live under.
    base_url: String,
}

impl UserApi {
    /// Serves `central`'s users; invite links point at `base_url`.
    pub fn new(central: Arc<Central>, base_url: String) -> Self {
        Self { central, base_url }
    }
}

fn to_wire(user: &accounts::User) -> User {
    User {
        user_id: user.id.to_string(),
        name: user.name.clone(),
        role: user.role.as_str().to_owned(),
        email: user.email.clone().unwrap_or_default(),
        created_at: user.created_at,
    }
}

/// A provider named on the wire, or `VALIDATION_ERROR` listing the known ones.
fn provider_from_wire(name: &str) -> Result<mttrly_core::ChatProvider, mttrly_core::MttrlyError> {
    name.trim().to_ascii_lowercase().parse().map_err(|_| {
        mttrly_core::MttrlyError::new(
            mttrly_core::ErrorCode::ValidationError,
            format!("unknown chat provider `{name}`: use telegram or slack"),
        )
        .with_detail("field", "provider")
    })
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn link_chat(&self, request: Request<LinkChatRequest>) -> GrpcResult<LinkChatResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let provider = provider_from_wire(&request.into_inner().provider).map_err(|e| status(&e))?;
        let code = crate::chat::links::issue(&self.central, &owner, provider).await.map_err(|e| status(&e))?;
        Ok(Response::new(LinkChatResponse {
            instructions: crate::chat::links::instructions(provider, &code.code),
            code: code.code,
            provider: provider.as_str().to_owned(),
            expires_at: code.expires_at,
        }))
    }

    async fn unlink_chat(&self, request: Request<UnlinkChatRequest>) -> GrpcResult<UnlinkChatResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let provider = provider_from_wire(&req.provider).map_err(|e| status(&e))?;
        let name = Some(req.name.trim()).filter(|n| !n.is_empty());
        let removed =
            crate::chat::links::unlink(&self.central, &owner, provider, name).await.map_err(|e| status(&e))?;
        Ok(Response::new(UnlinkChatResponse { removed }))
    }

    async fn list_chat_links(&self, request: Request<ListChatLinksRequest>) -> GrpcResult<ListChatLinksResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let links = crate::chat::links::list(&self.central, &owner).await.map_err(|e| status(&e))?;
        Ok(Response::new(ListChatLinksResponse {
            links: links
                .into_iter()
                .map(|l| ChatLink {
                    provider: l.provider.as_str().to_owned(),
                    external_id: l.external_id,
                    label: l.label,
                    linked_at: l.linked_at,
                })
                .collect(),
        }))
    }

    async fn list_users(&self, request: Request<ListUsersRequest>) -> GrpcResult<ListUsersResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let users = crate::users::list(&self.central, &owner).await.map_err(|e| status(&e))?;
        Ok(Response::new(ListUsersResponse { users: users.iter().map(to_wire).collect() }))
    }

    async fn add_user(&self, request: Request<AddUserRequest>) -> GrpcResult<AddUserResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let role = role_from_wire(&req.role, "role").map_err(|e| status(&e))?;
        let email = Some(req.email.trim()).filter(|e| !e.is_empty());
        let code = Some(req.second_factor_code.as_str()).filter(|c| !c.trim().is_empty());
        let new = crate::users::NewUser { name: &req.name, role, email, with_token: req.issue_token };
        let added =
            crate::users::add(&self.central, &owner, new, code, &self.base_url).await.map_err(|e| status(&e))?;
        let mut response = AddUserResponse { user: Some(to_wire(&added.user)), ..AddUserResponse::default() };
        match added.credential {
            crate::users::Credential::Token { token, token_id } => {
                response.token = token;
                response.token_id = token_id;
            }
            crate::users::Credential::Invite(invite) => {
                response.invite_url = invite.url;
                response.expires_at = invite.expires_at;
            }
        }
        Ok(Response::new(response))
    }

    async fn set_user_role(&self, request: Request<SetUserRoleRequest>) -> GrpcResult<SetUserRoleResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let role = role_from_wire(&req.role, "role").map_err(|e| status(&e))?;
        let code = Some(req.second_factor_code.as_str()).filter(|c| !c.trim().is_empty());
        let before =
            crate::users::set_role(&self.central, &owner, &req.name, role, code).await.map_err(|e| status(&e))?;
        Ok(Response::new(SetUserRoleResponse { previous_role: before.role.as_str().to_owned() }))
    }

    async fn remove_user(&self, request: Request<RemoveUserRequest>) -> GrpcResult<RemoveUserResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let code = Some(req.second_factor_code.as_str()).filter(|c| !c.trim().is_empty());
        let removed = crate::users::remove(&self.central, &owner, &req.name, code).await.map_err(|e| status(&e))?;
        Ok(Response::new(RemoveUserResponse {
            user_id: removed.user.id.to_string(),
            revoked_tokens: u32::try_from(removed.revoked_tokens).unwrap_or(u32::MAX),
        }))
    }

    async fn invite_user(&self, request: Request<InviteUserRequest>) -> GrpcResult<InviteUserResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let code = Some(req.second_factor_code.as_str()).filter(|c| !c.trim().is_empty());
        let (user, invite) = crate::users::invite(&self.central, &owner, &req.name, code, &self.base_url)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(InviteUserResponse {
            user: Some(to_wire(&user)),
            invite_url: invite.url,
            expires_at: invite.expires_at,
        }))
    }

    async fn get_totp_status(&self, request: Request<GetTotpStatusRequest>) -> GrpcResult<GetTotpStatusResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let s = crate::second_factor::status(&self.central, &owner).await.map_err(|e| status(&e))?;
        Ok(Response::new(GetTotpStatusResponse {
            enrolled: s.enrolled,
            recovery_codes_left: s.recovery_codes_left,
            locked_until: s.locked_until.unwrap_or(0),
        }))
    }

    async fn start_totp_enrollment(
        &self,
        request: Request<StartTotpEnrollmentRequest>,
    ) -> GrpcResult<StartTotpEnrollmentResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let code = request.into_inner().current_code;
        let code = Some(code.as_str()).filter(|c| !c.trim().is_empty());
        let enrolment =
            crate::second_factor::start_enrolment(&self.central, &owner, code).await.map_err(|e| status(&e))?;
        Ok(Response::new(StartTotpEnrollmentResponse { otpauth_uri: enrolment.otpauth_uri, secret: enrolment.secret }))
    }

    async fn confirm_totp_enrollment(
        &self,
        request: Request<ConfirmTotpEnrollmentRequest>,
    ) -> GrpcResult<ConfirmTotpEnrollmentResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let code = request.into_inner().code;
        let codes =
            crate::second_factor::confirm_enrolment(&self.central, &owner, &code).await.map_err(|e| status(&e))?;
        Ok(Response::new(ConfirmTotpEnrollmentResponse {
            recovery_codes: codes.iter().map(ToString::to_string).collect(),
        }))
    }
}
