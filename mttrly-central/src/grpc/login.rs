//! `mttrly.central.v1.LoginService`: `mttrly-cli login`'s device flow, a thin adapter over
//! [`crate::signin::device_flow`]. The one service called without a token (the caller has none
//! yet); what it hands out is bound to whoever approves in the browser, never to the caller.

use std::sync::Arc;

use mttrly_proto::central::v1::login_service_server::LoginService;
use mttrly_proto::central::v1::{
    PollDeviceLoginRequest, PollDeviceLoginResponse, StartDeviceLoginRequest, StartDeviceLoginResponse,
};
use tonic::{Request, Response};

use super::{GrpcResult, status};
use crate::db::device::Polled;
use crate::signin::device_flow;
use crate::state::Central;

/// The login service.
pub struct LoginApi {
    central: Arc<Central>,
    /// Central's public HTTP URL, where the `/device` page is.
    base_url: String,
}

impl LoginApi {
    /// Serves `central`'s device logins; the page is under `base_url`.
    pub fn new(central: Arc<Central>, base_url: String) -> Self {
        Self { central, base_url }
    }
}

#[tonic::async_trait]
impl LoginService for LoginApi {
    async fn start_device_login(
        &self,
        request: Request<StartDeviceLoginRequest>,
    ) -> GrpcResult<StartDeviceLoginResponse> {
        // Central's listener wraps each connection (`conn.rs`), so the address rides in its handle;
        // tonic's own `remote_addr` is the fallback.
        let extensions = request.extensions();
        let peer = extensions
            .get::<crate::conn::ConnHandle>()
            .or_else(|| {
                extensions
                    .get::<tonic::transport::server::TlsConnectInfo<crate::conn::ConnHandle>>()
                    .map(tonic::transport::server::TlsConnectInfo::get_ref)
            })
            .and_then(crate::conn::ConnHandle::peer)
            .or_else(|| request.remote_addr())
            .map_or_else(|| "unknown address".to_owned(), |a| a.ip().to_string());
        let req = request.into_inner();
        let started = device_flow::start(&self.central, &self.base_url, &req.client_name, &req.client_host, &peer)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(StartDeviceLoginResponse {
            device_code: started.device_code,
            user_code: started.user_code,
            verification_uri: started.verification_uri,
            verification_uri_complete: started.verification_uri_complete,
            expires_in: started.expires_in,
            interval: started.interval,
        }))
    }

    async fn poll_device_login(&self, request: Request<PollDeviceLoginRequest>) -> GrpcResult<PollDeviceLoginResponse> {
        let code = request.into_inner().device_code;
        let answer = device_flow::poll(&self.central, &code).await.map_err(|e| status(&e))?;
        let reply = |status: &str, interval: i64, message: &str| PollDeviceLoginResponse {
            status: status.to_owned(),
            interval,
            message: message.to_owned(),
            ..PollDeviceLoginResponse::default()
        };
        Ok(Response::new(match answer.polled {
            Polled::Pending(interval) => reply("authorization_pending", interval, "waiting for the browser"),
            Polled::SlowDown(interval) => {
                reply("slow_down", interval, "polled sooner than the interval; the interval is now longer")
            }
            Polled::Denied => reply("access_denied", 0, "the login was denied in the browser"),
            Polled::Expired => reply("expired_token", 0, "the login expired before it was approved; start again"),
            Polled::Used => reply("expired_token", 0, "this login already delivered its token; start again"),
            Polled::Unknown => reply("invalid_grant", 0, "no such device login"),
            Polled::Approved(issued) => PollDeviceLoginResponse {
                status: "approved".to_owned(),
                token: answer.token.unwrap_or_default(),
                token_id: issued.token_id,
                user_name: issued.user_name,
                role: issued.role.as_str().to_owned(),
                account_id: issued.account_id.to_string(),
                message: "approved".to_owned(),
                interval: 0,
            },
        }))
    }
}
