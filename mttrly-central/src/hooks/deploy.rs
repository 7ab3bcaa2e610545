//! `POST /hooks/deploy`: a CI records a deploy, signed with HMAC-SHA256.
//!
//! The sender signs `TIMESTAMP.BODY` (the Unix time in seconds, a dot, the raw body bytes) with
//! the secret named by `[hooks.deploy] hmac_secret_env` and sends `X-Mttrly-Timestamp: TIMESTAMP`
//! and `X-Mttrly-Signature: sha256=<hex>`. Signing the time with the body means a captured
//! delivery cannot be replayed after five minutes, and within them replaying it changes nothing
//! (the deploy id is the idempotency key). The body is [`DeployReport`] as JSON; the deploy lands
//! in `[hooks] account` (the first account when unset).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit as _, Mac as _};
use mttrly_core::{ErrorCode, MttrlyError};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{error, target_account};
use crate::app_state::AppState;
use crate::db::deploys::Recorded;
use crate::deploys::{Actor, DeployReport, record};

/// The header with the Unix time (seconds) the sender signed.
pub const TIMESTAMP_HEADER: &str = "x-mttrly-timestamp";
/// The header with `sha256=<hex HMAC-SHA256 of "TIMESTAMP.BODY">`.
pub const SIGNATURE_HEADER: &str = "x-mttrly-signature";
/// How old (or how far ahead) a signed timestamp may be, in seconds.
pub const MAX_SKEW_SECONDS: i64 = 300;
/// The largest report accepted (one deploy is well under a kilobyte).
pub const MAX_BODY: usize = 64 * 1024;

/// `[hooks.deploy]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployHook {
    /// The environment variable holding the shared HMAC secret (kept out of the file so it is
    /// never committed). Give the same secret to the CI as a masked variable.
    pub hmac_secret_env: String,
}

/// Why a delivery's signature is refused: each says what to fix, never what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No or unreadable timestamp header.
    NoTimestamp,
    /// The timestamp is more than five minutes old.
    Stale(i64),
    /// The timestamp is more than five minutes ahead.
    Future(i64),
    /// No signature header, or not `sha256=<64 hex digits>`.
    Malformed,
    /// A well-formed signature that does not match.
    Mismatch,
}

impl Refusal {
    fn message(self) -> String {
        match self {
            Self::NoTimestamp => "X-Mttrly-Timestamp is missing or not a Unix time in seconds".into(),
            Self::Stale(age) => format!(
                "X-Mttrly-Timestamp is {age} s old; deliveries signed more than {MAX_SKEW_SECONDS} s ago are refused \
                 (sign each delivery when it is sent, and check the sender's clock)"
            ),
            Self::Future(ahead) => format!(
                "X-Mttrly-Timestamp is {ahead} s in the future; more than {MAX_SKEW_SECONDS} s is refused (check the \
                 sender's clock)"
            ),
            Self::Malformed => "X-Mttrly-Signature is missing or not `sha256=<64 hex digits>`".into(),
            Self::Mismatch => "X-Mttrly-Signature does not match: sign the bytes `TIMESTAMP.BODY` (the header's \
                               value, a dot, the raw body) with HMAC-SHA256 under the deploy hook secret"
                .into(),
        }
    }
}

/// Checks a delivery's timestamp (against `now`, Unix seconds) and signature. The MAC comparison
/// is constant-time ([`Mac::verify_slice`]).
pub(crate) fn verify(secret: &[u8], headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Refusal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let stamp = header(TIMESTAMP_HEADER).ok_or(Refusal::NoTimestamp)?;
    let at: i64 = stamp.parse().map_err(|_| Refusal::NoTimestamp)?;
    // Checked: the stamp is the sender's, unauthenticated yet, and may be any i64.
    let behind = now.checked_sub(at).ok_or(Refusal::NoTimestamp)?;
    if behind > MAX_SKEW_SECONDS {
        return Err(Refusal::Stale(behind));
    }
    if -behind > MAX_SKEW_SECONDS {
        return Err(Refusal::Future(-behind));
    }
    let given = header(SIGNATURE_HEADER)
        .and_then(|s| s.strip_prefix("sha256="))
        .filter(|hex| hex.len() == 64)
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or(Refusal::Malformed)?;
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).map_err(|_| Refusal::Mismatch)?;
    mac.update(stamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| Refusal::Mismatch)
}

/// What the receiver answers: the deploy's id, what happened, the row.
#[derive(Debug, Serialize)]
struct Answer<'a> {
    deploy_id: &'a str,
    /// `created`, `updated` or `unchanged`.
    outcome: &'static str,
    deploy: &'a mttrly_core::tools::deploys::DeployRecord,
}

/// The receiver.
pub(crate) async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let central = &state.central;
    let Some(secret) = central.config.hooks.deploy_secret.as_ref() else {
        return error(StatusCode::NOT_FOUND, &MttrlyError::new(ErrorCode::NotFound, "no such hook"));
    };
    if let Err(refusal) = verify(secret.0.as_bytes(), &headers, &body, jiff::Timestamp::now().as_second()) {
        tracing::warn!(source = "deploy", ?refusal, "deploy hook delivery refused");
        return error(StatusCode::UNAUTHORIZED, &MttrlyError::new(ErrorCode::AuthFailed, refusal.message()));
    }
    let report: DeployReport = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &MttrlyError::new(ErrorCode::ValidationError, format!("not a deploy report: {e}")),
            );
        }
    };
    let result = match target_account(central).await {
        Ok(account) => record(central, &account, Actor::Webhook, &report).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(recorded) => {
            let outcome = match &recorded {
                Recorded::Created(_) => "created",
                Recorded::Updated { .. } => "updated",
                Recorded::Unchanged(_) => "unchanged",
            };
            let row = recorded.row();
            (StatusCode::OK, Json(Answer { deploy_id: row.deploy_id.as_str(), outcome, deploy: row })).into_response()
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status.is_server_error() {
                tracing::error!(source = "deploy", error = %e, "cannot record a deploy");
            }
            error(status, &e)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const NOW: i64 = 1_796_256_000;

    fn signed(secret: &[u8], stamp: &str, body: &[u8]) -> HeaderMap {
        let mut mac = <Hmac<Sha256>>::new_from_slice(secret).unwrap();
        mac.update(format!("{stamp}.").as_bytes());
        mac.update(body);
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(stamp).unwrap());
        headers.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(&format!("sha256={}", hex::encode(mac.finalize().into_bytes()))).unwrap(),
        );
        headers
    }

    #[test]
    fn only_a_fresh_signature_over_this_time_and_body_is_accepted() {
        let body = br#"{"id":"1"}"#;
        let now = NOW.to_string();
        assert_eq!(verify(b"k", &signed(b"k", &now, body), body, NOW), Ok(()));
        // Another body, key or time under the same signature.
        assert_eq!(verify(b"k", &signed(b"k", &now, body), b"{}", NOW), Err(Refusal::Mismatch));
        assert_eq!(verify(b"other", &signed(b"k", &now, body), body, NOW), Err(Refusal::Mismatch));
        let mut moved = signed(b"k", &now, body);
        moved.insert(TIMESTAMP_HEADER, HeaderValue::from_str(&(NOW - 1).to_string()).unwrap());
        assert_eq!(verify(b"k", &moved, body, NOW), Err(Refusal::Mismatch));
        // Stale and future stamps, even correctly signed.
        let old = (NOW - 301).to_string();
        assert_eq!(verify(b"k", &signed(b"k", &old, body), body, NOW), Err(Refusal::Stale(301)));
        let ahead = (NOW + 301).to_string();
        assert_eq!(verify(b"k", &signed(b"k", &ahead, body), body, NOW), Err(Refusal::Future(301)));
        let edge = (NOW - 300).to_string();
        assert_eq!(verify(b"k", &signed(b"k", &edge, body), body, NOW), Ok(()));
    }

    #[test]
    fn missing_or_malformed_headers_say_which() {
        let body = b"{}";
        let now = NOW.to_string();
        let mut h = signed(b"k", &now, body);
        h.remove(TIMESTAMP_HEADER);
        assert_eq!(verify(b"k", &h, body, NOW), Err(Refusal::NoTimestamp));
        let mut h = signed(b"k", &now, body);
        h.insert(TIMESTAMP_HEADER, HeaderValue::from_static("2026-12-03T00:00:00Z"));
        assert_eq!(verify(b"k", &h, body, NOW), Err(Refusal::NoTimestamp));
        // Extreme stamps neither overflow nor pass.
        for extreme in [i64::MIN, i64::MAX] {
            let h = signed(b"k", &extreme.to_string(), body);
            assert!(verify(b"k", &h, body, NOW).is_err(), "{extreme}");
        }
        for bad in ["", "sha1=00", "abcd", "sha256=zz", "sha256=00"] {
            let mut h = signed(b"k", &now, body);
            h.insert(SIGNATURE_HEADER, HeaderValue::from_str(bad).unwrap());
            assert_eq!(verify(b"k", &h, body, NOW), Err(Refusal::Malformed), "{bad}");
        }
    }

    #[test]
    fn refusals_never_carry_the_expected_value() {
        let body = b"{}";
        let now = NOW.to_string();
        let good = signed(b"k", &now, body);
        let expected = good[SIGNATURE_HEADER].to_str().unwrap().trim_start_matches("sha256=").to_owned();
        let mut wrong = good.clone();
        wrong.insert(SIGNATURE_HEADER, HeaderValue::from_str(&format!("sha256={}", "0".repeat(64))).unwrap());
        let refusal = verify(b"k", &wrong, body, NOW).unwrap_err();
        for r in [refusal, Refusal::NoTimestamp, Refusal::Stale(9), Refusal::Future(9), Refusal::Malformed] {
            let m = r.message();
            assert!(m.starts_with("X-Mttrly-") && !m.contains(&expected) && !m.contains("k."), "{m}");
        }
    }
}
