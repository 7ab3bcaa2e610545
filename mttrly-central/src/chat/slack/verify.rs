//! Slack's request signatures: whatever Slack POSTs to central is checked here, on the raw body
//! bytes, before anything reads it.
//!
//! Slack signs `v0:{X-Slack-Request-Timestamp}:{body}` with HMAC-SHA256 under the app's signing
//! secret and sends `X-Slack-Signature: v0=<hex>`. A request is accepted only when that signature
//! matches (compared in constant time) and its timestamp is within five minutes of now, either
//! way: a captured request cannot be replayed later, and a clock far ahead is not a way around it.

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

/// The header carrying `v0=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// The header carrying the Unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// How far a request's timestamp may be from now, in seconds (Slack's own SDKs use five minutes).
pub const MAX_SKEW_SECONDS: i64 = 5 * 60;

/// Why a request was refused (logged; the sender only gets 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No timestamp header, or not a number.
    #[error("no usable X-Slack-Request-Timestamp")]
    NoTimestamp,
    /// The timestamp is more than five minutes from now.
    #[error("the request's timestamp is more than five minutes from now (a replay, or a wrong clock)")]
    Stale,
    /// No signature header, or not `v0=<64 hex>`.
    #[error("no usable X-Slack-Signature")]
    NoSignature,
    /// The signature does not match the body and timestamp under our secret.
    #[error("the signature does not match")]
    Mismatch,
}

/// The `v0=<hex>` signature of `body` sent at `timestamp` under `secret`, as Slack computes it.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret, timestamp, body).finalize().into_bytes()))
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// Checks a request Slack claims to have sent: `timestamp` and `signature` are the header values
/// (absent when missing), `body` the raw bytes, `now` the current Unix time in seconds.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Refused> {
    let timestamp = timestamp.map(str::trim).ok_or(Refused::NoTimestamp)?;
    // Digits only: the value is also part of the signed text, so `+1700000000` or ` 17…` must not
    // pass as the same time under a different signature base.
    if timestamp.is_empty() || timestamp.len() > 12 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refused::NoTimestamp);
    }
    let at: i64 = timestamp.parse().map_err(|_| Refused::NoTimestamp)?;
    if (now - at).abs() > MAX_SKEW_SECONDS {
        return Err(Refused::Stale);
    }
    let given = signature
        .and_then(|s| s.trim().strip_prefix("v0="))
        .filter(|hex| hex.len() == 64)
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or(Refused::NoSignature)?;
    // `verify_slice` compares in constant time.
    mac(secret, timestamp, body).verify_slice(&given).map_err(|_| Refused::Mismatch)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const NOW: i64 = 1_800_000_000;

    fn ok(body: &[u8], at: i64) -> (String, String) {
        let ts = at.to_string();
        let sig = sign(SECRET, &ts, body);
        (ts, sig)
    }

    #[test]
    fn slacks_documented_example_verifies() {
        // The worked example in Slack's "Verifying requests from Slack" guide.
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(sign(secret, "1531420618", body), expected);
        assert_eq!(verify(secret, Some("1531420618"), Some(expected), body, 1_531_420_618 + 10), Ok(()));
    }

    #[test]
    fn missing_headers_are_refused() {
        let body = b"payload=%7B%7D";
        let (ts, sig) = ok(body, NOW);
        assert_eq!(verify(SECRET, None, Some(&sig), body, NOW), Err(Refused::NoTimestamp));
        assert_eq!(verify(SECRET, Some(&ts), None, body, NOW), Err(Refused::NoSignature));
        assert_eq!(verify(SECRET, Some(""), Some(&sig), body, NOW), Err(Refused::NoTimestamp));
        assert_eq!(verify(SECRET, Some(&ts), Some(""), body, NOW), Err(Refused::NoSignature));
        assert_eq!(verify(SECRET, Some(&ts), Some(&sig[3..]), body, NOW), Err(Refused::NoSignature), "no v0=");
        assert_eq!(verify(SECRET, Some(&ts), Some("v0=zz"), body, NOW), Err(Refused::NoSignature));
        assert_eq!(verify(SECRET, Some(&format!("+{ts}")), Some(&sig), body, NOW), Err(Refused::NoTimestamp));
    }

    #[test]
    fn replayed_and_future_timestamps_are_refused_at_the_five_minute_edge() {
        let body = b"payload=%7B%7D";
        for (at, expected) in [
            (NOW - MAX_SKEW_SECONDS, Ok(())),
            (NOW - MAX_SKEW_SECONDS - 1, Err(Refused::Stale)),
            (NOW + MAX_SKEW_SECONDS, Ok(())),
            (NOW + MAX_SKEW_SECONDS + 1, Err(Refused::Stale)),
            (NOW - 86_400, Err(Refused::Stale)),
        ] {
            let (ts, sig) = ok(body, at);
            assert_eq!(verify(SECRET, Some(&ts), Some(&sig), body, NOW), expected, "{at}");
        }
    }

    #[test]
    fn a_signature_for_another_secret_or_timestamp_is_refused() {
        let body = b"payload=%7B%7D";
        let ts = NOW.to_string();
        let other = sign(b"another-apps-signing-secret-0000", &ts, body);
        assert_eq!(verify(SECRET, Some(&ts), Some(&other), body, NOW), Err(Refused::Mismatch));
        // A valid signature moved to a fresh timestamp.
        let old = sign(SECRET, &(NOW - 1000).to_string(), body);
        assert_eq!(verify(SECRET, Some(&ts), Some(&old), body, NOW), Err(Refused::Mismatch));
        // Upper-case hex is the same bytes: accepted (Slack sends lower case; either is honest).
        let (ts, sig) = ok(body, NOW);
        assert_eq!(verify(SECRET, Some(&ts), Some(&sig.to_uppercase().replace("V0=", "v0=")), body, NOW), Ok(()));
    }

    proptest! {
        #[test]
        fn any_change_to_the_signed_body_is_refused(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            index in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let (ts, sig) = ok(&body, NOW);
            prop_assert_eq!(verify(SECRET, Some(&ts), Some(&sig), &body, NOW), Ok(()));
            let mut altered = body.clone();
            if altered.is_empty() {
                altered.push(flip);
            } else {
                let i = index.index(altered.len());
                altered[i] ^= flip;
            }
            prop_assert_eq!(verify(SECRET, Some(&ts), Some(&sig), &altered, NOW), Err(Refused::Mismatch));
            let mut appended = body.clone();
            appended.push(b'&');
            prop_assert_eq!(verify(SECRET, Some(&ts), Some(&sig), &appended, NOW), Err(Refused::Mismatch));
        }

        #[test]
        fn forged_signatures_are_refused(body in proptest::collection::vec(any::<u8>(), 0..256), forged in proptest::collection::vec(any::<u8>(), 32)) {
            let ts = NOW.to_string();
            let sig = format!("v0={}", hex::encode(&forged));
            prop_assume!(sig != sign(SECRET, &ts, &body));
            prop_assert_eq!(verify(SECRET, Some(&ts), Some(&sig), &body, NOW), Err(Refused::Mismatch));
        }
    }
}
