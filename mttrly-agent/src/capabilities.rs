//! What the agent can do when central asks, by capability name.

use std::sync::{Arc, Mutex, PoisonError};

use mttrly_core::{ErrorCode, MttrlyError};
use serde_json::Value;

use crate::metrics::MetricsCollector;

/// Fresh host metrics, on demand.
pub const HOST_METRICS: &str = "host.metrics";

/// The capabilities this agent offers, as announced in `Hello`.
pub const ALL: &[&str] = &[HOST_METRICS];

/// Runs a capability. Blocking work happens on the blocking pool.
pub async fn invoke(
    capability: &str,
    _params: Value,
    collector: &Arc<Mutex<MetricsCollector>>,
) -> Result<Value, MttrlyError> {
    match capability {
        HOST_METRICS => {
            let collector = Arc::clone(collector);
            let sample =
                tokio::task::spawn_blocking(move || collector.lock().unwrap_or_else(PoisonError::into_inner).sample())
                    .await
                    .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("metrics sampling failed: {e}")))?;
            let metrics = mttrly_proto::convert::metrics_from_wire(&sample, jiff::Timestamp::now());
            serde_json::to_value(metrics)
                .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot encode metrics: {e}")))
        }
        other => Err(MttrlyError::new(
            ErrorCode::PolicyDenied,
            format!("this agent does not offer the capability `{other}`"),
        )
        .with_detail("capability", other)),
    }
}
