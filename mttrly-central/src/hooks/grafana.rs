//! `POST /hooks/grafana`: Grafana unified alerting's webhook contact point, signed with HMAC.
//!
//! Grafana's alerts carry the same fields as Alertmanager's (`status`, `labels`, `annotations`,
//! `startsAt`, `endsAt`, `generatorURL`, `fingerprint`), so they are mapped the same way, as rule
//! `grafana:<alertname>`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hmac::{Hmac, KeyInit as _, Mac as _};
use mttrly_core::{ErrorCode, MttrlyError};
use sha2::Sha256;

use super::alertmanager::{Notification, inbound};
use super::{apply, error, respond};
use crate::app_state::AppState;

/// The `source` part of the rule id of every alert this receiver opens.
const SOURCE: &str = "grafana";

/// The header carrying the hex HMAC-SHA256 of the body.
const SIGNATURE_HEADER: &str = "x-grafana-alerting-signature";

/// The receiver.
pub(crate) async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let central = &state.central;
    let Some(secret) = central.config.hooks.grafana_secret.as_ref() else {
        return error(StatusCode::NOT_FOUND, &MttrlyError::new(ErrorCode::NotFound, "no such hook"));
    };
    let signed = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sig| signature_matches(secret.0.as_bytes(), &body, sig));
    if !signed {
        tracing::warn!(source = SOURCE, "hook delivery refused: missing or wrong signature");
        return error(
            StatusCode::UNAUTHORIZED,
            &MttrlyError::new(ErrorCode::AuthFailed, "a valid X-Grafana-Alerting-Signature is required"),
        );
    }
    let notification: Notification = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &MttrlyError::new(ErrorCode::ValidationError, format!("not a Grafana webhook payload: {e}")),
            );
        }
    };
    let label = central.config.hooks.server_label.as_deref();
    respond(apply(central, SOURCE, inbound(SOURCE, label, notification)).await, SOURCE)
}

/// Whether `signature` (hex) is the HMAC-SHA256 of `body` under `secret`, compared in constant
/// time by the MAC itself.
fn signature_matches(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256>>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bodys_own_signature_matches() {
        let mut mac = <Hmac<Sha256>>::new_from_slice(b"k").unwrap();
        mac.update(b"{}");
        let good = hex::encode(mac.finalize().into_bytes());
        assert!(signature_matches(b"k", b"{}", &good));
        assert!(signature_matches(b"k", b"{}", &good.to_uppercase()));
        assert!(!signature_matches(b"k", b"{ }", &good));
        assert!(!signature_matches(b"other", b"{}", &good));
        assert!(!signature_matches(b"k", b"{}", &good[..10]));
        assert!(!signature_matches(b"k", b"{}", "zz"));
        assert!(!signature_matches(b"k", b"{}", ""));
    }
}
