//! `mttrly.central.v1.AlertService`.

use std::sync::Arc;

use mttrly_core::ids::ServerId;
use mttrly_core::tools::servers::{AlertLimit, AlertStatus, GetAlertsInput};
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::alert_service_server::AlertService;
use mttrly_proto::central::v1::{Alert, ListAlertsRequest, ListAlertsResponse, UnmatchedAlert};
use tonic::{Request, Response};

use super::{GrpcResult, status};
use crate::auth::authenticate;
use crate::state::Central;
use crate::tools::servers as handlers;

/// The alert service.
pub struct AlertApi {
    central: Arc<Central>,
}

impl AlertApi {
    /// Serves `central`'s alerts.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

fn status_word(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Open => "open",
        AlertStatus::Resolved => "resolved",
    }
}

fn invalid(field: &str, message: String) -> tonic::Status {
    status(&MttrlyError::new(ErrorCode::ValidationError, message).with_detail("field", field))
}

#[tonic::async_trait]
impl AlertService for AlertApi {
    async fn list_alerts(&self, request: Request<ListAlertsRequest>) -> GrpcResult<ListAlertsResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let server_id = match req.server_id.as_str() {
            "" => None,
            s => Some(ServerId::parse(s).map_err(|e| invalid("server_id", e.to_string()))?),
        };
        let status_filter = match req.status.as_str() {
            "" => None,
            "open" => Some(AlertStatus::Open),
            "resolved" => Some(AlertStatus::Resolved),
            other => return Err(invalid("status", format!("unknown status `{other}`: expected open or resolved"))),
        };
        let limit = match req.limit {
            0 => AlertLimit::default(),
            n => AlertLimit::new(n).map_err(|e| invalid("limit", format!("limit {e}")))?,
        };
        let input = GetAlertsInput { server_id, severity: None, status: status_filter, limit };
        let list = handlers::alerts(&self.central, &owner, input).await.map_err(|e| status(&e))?;
        let alerts = list
            .alerts
            .into_iter()
            .map(|a| Alert {
                alert_id: a.alert_id.to_string(),
                server_id: a.server_id.to_string(),
                rule: a.rule,
                severity: a.severity.as_str().to_owned(),
                status: status_word(a.status).to_owned(),
                summary: a.summary,
                opened_at_unix_ms: a.opened_at.as_millisecond(),
                resolved_at_unix_ms: a.resolved_at.map_or(0, jiff::Timestamp::as_millisecond),
            })
            .collect();
        let unmatched_alerts = list
            .unmatched_alerts
            .into_iter()
            .map(|a| UnmatchedAlert {
                alert_id: a.alert_id.to_string(),
                source: a.source,
                name: a.name,
                host: a.host.unwrap_or_default(),
                severity: a.severity.as_str().to_owned(),
                status: status_word(a.status).to_owned(),
                summary: a.summary,
                labels: a.labels.into_iter().collect(),
                opened_at_unix_ms: a.opened_at.as_millisecond(),
                resolved_at_unix_ms: a.resolved_at.map_or(0, jiff::Timestamp::as_millisecond),
            })
            .collect();
        Ok(Response::new(ListAlertsResponse { alerts, unmatched_alerts }))
    }
}
