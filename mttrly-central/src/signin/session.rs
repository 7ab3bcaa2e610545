//! Browser sessions: the cookie, its lifetime rules and the CSRF token bound to it.
//!
//! The session id is a 256-bit secret in an `HttpOnly`, `SameSite=Lax` cookie; only its SHA-256 is
//! stored server-side, so a copy of the database does not hold live sessions. Over HTTPS the
//! cookie is `Secure` and uses the `__Host-` prefix (the browser then refuses it from a sub-domain
//! or without `Secure`, `Path=/`); on a loopback address over plain HTTP (quickstart, tests) it is
//! neither, since browsers drop `Secure` cookies there. A new id is issued at every sign-in, so an
//! id planted before sign-in (session fixation) is never the one that gets authenticated.
//!
//! Every state-changing form carries a CSRF token derived from the session secret with HMAC, so
//! it needs no storage and changes when the session does; a cross-site page can neither read it
//! nor compute it.

use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

/// The cookie's name over HTTPS.
pub const SECURE_COOKIE: &str = "__Host-mttrly_session";
/// The cookie's name over plain HTTP on loopback.
pub const LOOPBACK_COOKIE: &str = "mttrly_session";
/// A session unused this long ends.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(12 * 3600);
/// A session ends this long after sign-in, however active.
pub const DEFAULT_ABSOLUTE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How the site is served, which decides the cookie's name and attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS: `Secure`, `__Host-` prefix.
    Https,
    /// Plain HTTP on a loopback address.
    LoopbackHttp,
}

impl Transport {
    /// The session cookie's name.
    pub const fn cookie_name(self) -> &'static str {
        match self {
            Self::Https => SECURE_COOKIE,
            Self::LoopbackHttp => LOOPBACK_COOKIE,
        }
    }

    /// The `Set-Cookie` value that sets the session (`max_age`: the absolute lifetime).
    pub fn set_cookie(self, secret: &str, max_age: Duration) -> String {
        format!(
            "{}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            self.cookie_name(),
            max_age.as_secs(),
            if self == Self::Https { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes it.
    pub fn clear_cookie(self) -> String {
        self.set_cookie("", Duration::ZERO)
    }

    /// The session secret from a `Cookie` header, if present under this transport's name.
    /// Another name (a `mttrly_session` cookie sent over HTTPS, set by a sibling host) is ignored.
    pub fn session_from(self, cookie_header: &str) -> Option<&str> {
        cookie_header.split(';').map(str::trim).find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == self.cookie_name() && !value.is_empty()).then_some(value)
        })
    }
}

/// A stored session's times, in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// When the person signed in.
    pub created_ms: i64,
    /// When the session was last used.
    pub last_seen_ms: i64,
}

/// Whether a session is still alive at `now_ms`.
pub fn alive(times: Times, now_ms: i64, idle: Duration, absolute: Duration) -> bool {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    now_ms < times.last_seen_ms.saturating_add(ms(idle)) && now_ms < times.created_ms.saturating_add(ms(absolute))
}

/// The CSRF token for the session whose secret is `session_secret`.
pub fn csrf_token(session_secret: &str) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(session_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(b"mttrly csrf v1");
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `presented` is the CSRF token of `session_secret` (constant-time).
pub fn csrf_ok(session_secret: &str, presented: &str) -> bool {
    let mut mac = <Hmac<Sha256>>::new_from_slice(session_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(b"mttrly csrf v1");
    match hex::decode(presented) {
        Ok(bytes) => mac.verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_host_only_secure_and_http_only_over_https() {
        let c = Transport::Https.set_cookie("s3cret", DEFAULT_ABSOLUTE);
        assert_eq!(c, "__Host-mttrly_session=s3cret; Path=/; HttpOnly; SameSite=Lax; Max-Age=604800; Secure");
        assert!(!c.contains("Domain"));
        let c = Transport::LoopbackHttp.set_cookie("s3cret", DEFAULT_ABSOLUTE);
        assert!(c.starts_with("mttrly_session=s3cret;") && !c.contains("Secure") && c.contains("HttpOnly"));
        assert!(Transport::Https.clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn only_this_transports_cookie_is_read() {
        let header = "theme=dark; mttrly_session=planted; __Host-mttrly_session=real";
        assert_eq!(Transport::Https.session_from(header), Some("real"));
        assert_eq!(Transport::LoopbackHttp.session_from(header), Some("planted"));
        assert_eq!(Transport::Https.session_from("mttrly_session=planted"), None);
        assert_eq!(Transport::Https.session_from("__Host-mttrly_session="), None);
        assert_eq!(Transport::Https.session_from("x__Host-mttrly_session=a"), None);
    }

    #[test]
    fn idle_and_absolute_timeouts_both_end_a_session() {
        let t = Times { created_ms: 0, last_seen_ms: 0 };
        let (idle, abs) = (Duration::from_secs(60), Duration::from_secs(600));
        assert!(alive(t, 59_999, idle, abs));
        assert!(!alive(t, 60_000, idle, abs));
        let busy = Times { created_ms: 0, last_seen_ms: 599_000 };
        assert!(alive(busy, 599_999, idle, abs));
        assert!(!alive(busy, 600_000, idle, abs), "activity never extends past the absolute limit");
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let t = csrf_token("session-a");
        assert!(csrf_ok("session-a", &t));
        assert!(!csrf_ok("session-b", &t));
        assert!(!csrf_ok("session-a", ""));
        assert!(!csrf_ok("session-a", &t[..62]));
        assert!(!csrf_ok("session-a", "zz"));
    }
}
