//! `mttrly.central.v1.UserService`: a thin adapter over [`crate::users`].

use std::sync::Arc;

use mttrly_proto::central::v1::user_service_server::UserService;
use mttrly_proto::central::v1::{
    AddUserRequest, AddUserResponse, ListUsersRequest, ListUsersResponse, RemoveUserRequest, RemoveUserResponse,
    SetUserRoleRequest, SetUserRoleResponse, User,
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
}

impl UserApi {
    /// Serves `central`'s users.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
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

#[tonic::async_trait]
impl UserService for UserApi {
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
        let added = crate::users::add(&self.central, &owner, &req.name, role, email, req.issue_token)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(AddUserResponse {
            user: Some(to_wire(&added.user)),
            token: added.token,
            token_id: added.token_id,
        }))
    }

    async fn set_user_role(&self, request: Request<SetUserRoleRequest>) -> GrpcResult<SetUserRoleResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let role = role_from_wire(&req.role, "role").map_err(|e| status(&e))?;
        let before = crate::users::set_role(&self.central, &owner, &req.name, role).await.map_err(|e| status(&e))?;
        Ok(Response::new(SetUserRoleResponse { previous_role: before.role.as_str().to_owned() }))
    }

    async fn remove_user(&self, request: Request<RemoveUserRequest>) -> GrpcResult<RemoveUserResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let name = request.into_inner().name;
        let removed = crate::users::remove(&self.central, &owner, &name).await.map_err(|e| status(&e))?;
        Ok(Response::new(RemoveUserResponse {
            user_id: removed.user.id.to_string(),
            revoked_tokens: u32::try_from(removed.revoked_tokens).unwrap_or(u32::MAX),
        }))
    }
}
