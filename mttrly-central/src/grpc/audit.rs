//! `mttrly.central.v1.AuditService`.

use std::sync::Arc;

use mttrly_core::ids::ServerId;
use mttrly_core::tools::actions::{AuditLimit, GetAuditLogInput};
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::audit_service_server::AuditService;
use mttrly_proto::central::v1::{ListAuditRequest, ListAuditResponse, VerifyAuditRequest, VerifyAuditResponse};
use tonic::{Request, Response};

use super::{GrpcResult, status};
use crate::auth::authenticate;
use crate::state::Central;

/// The audit service.
///
/// `VerifyAudit` goes through `central.verifications` (`audit::verified`): one recomputation at a
/// time per account and across accounts, shared by the requests that waited for it, so neither a
/// burst from one token nor another tenant's burst queues anyone behind more than one run.
pub struct AuditApi {
    central: Arc<Central>,
}

impl AuditApi {
    /// Serves `central`'s audit log.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

fn invalid(field: &str, message: String) -> tonic::Status {
    status(&MttrlyError::new(ErrorCode::ValidationError, message).with_detail("field", field))
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit(&self, request: Request<ListAuditRequest>) -> GrpcResult<ListAuditResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let server_id = match req.server_id.as_str() {
            "" => None,
            s => Some(ServerId::parse(s).map_err(|e| invalid("server_id", e.to_string()))?),
        };
        let limit = match req.limit {
            0 => AuditLimit::default(),
            n => AuditLimit::new(n).map_err(|e| invalid("limit", format!("limit {e}")))?,
        };
        let input = GetAuditLogInput {
            server_id,
            action_id: None,
            before_seq: (req.before_seq > 0).then_some(req.before_seq),
            limit,
        };
        let page = crate::tools::audit::audit_log(&self.central, &owner, input).await.map_err(|e| status(&e))?;
        Ok(Response::new(ListAuditResponse {
            entries_json: page.entries.iter().filter_map(|e| serde_json::to_string(e).ok()).collect(),
            next_before_seq: page.next_before_seq.unwrap_or(0),
        }))
    }

    async fn verify_audit(&self, request: Request<VerifyAuditRequest>) -> GrpcResult<VerifyAuditResponse> {
        let arrived = std::time::Instant::now();
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        self.central.audit.flush().await;
        let verification = self
            .central
            .verifications
            .fresh(&self.central, &owner.account_id, arrived)
            .await
            .map_err(|e| status(&e))?
            .verification;
        let (first_bad_seq, problem) = verification.first_bad.unwrap_or((0, String::new()));
        Ok(Response::new(VerifyAuditResponse {
            ok: problem.is_empty(),
            rows_checked: verification.rows_checked,
            first_bad_seq,
            problem,
        }))
    }
}
