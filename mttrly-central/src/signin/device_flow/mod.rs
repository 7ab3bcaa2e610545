//! `mttrly-cli login`: the device authorization flow (RFC 8628's shape, over gRPC for the CLI and
//! a browser page for the person), as operations of the app.
//!
//! 1. The CLI calls [`start`] (no token: it has none yet). It gets a device code (a 256-bit
//!    secret only it knows; central keeps its hash), a user code (`WDJB-MJHT`, [`super::device`])
//!    and the page's URL, valid [`EXPIRES_IN_SECS`].
//! 2. The person, signed in in a browser, types the user code on `/device` ([`page`]). The page
//!    shows which client asked and from which host and address, so a code someone else started
//!    (a phishing message: "go to … and enter WDJB-MJHT") is visible as such; they allow or deny.
//! 3. The CLI polls with the device code ([`poll`]) every `interval` seconds; polling sooner gets
//!    `slow_down` and a longer interval (RFC 8628 §3.5). After approval, the poll stores a fresh
//!    human API token of the approver (named `login: <client> on <host>`, listed and revocable
//!    like any other) and returns it, once: the device code is spent.
//!
//! Guessing: a user code is 20^8 ≈ 2^34.6. Starts are limited across central
//! ([`STARTS_PER_MINUTE`], so at most 300 codes live at once over their 10 minutes) and, should
//! that limiter be reset by a restart, [`MAX_PENDING`] codes wait at most: a guess hits a live code
//! with odds below 2^-25. A person gets [`WRONG_CODES_ALLOWED`] wrong codes per
//! [`WRONG_CODES_WINDOW`] on the page, however many sessions they open.
//!
//! The token is bound to the account of the person who approves, not to anything the CLI said:
//! the CLI names no account, so a code approved by a person of another account yields a token of
//! that account, never of one the CLI chose.

pub(crate) mod page;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use mttrly_core::audit::{AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{ErrorCode, MttrlyError, Principal, Source};
use serde_json::json;

use crate::db::device::{Inserted, Issued, NewDeviceLogin, PendingLogin, Polled, TokenToIssue};
use crate::db::now_ms;
use crate::ratelimit::RateLimiter;
use crate::secrets::{self, SecretKind};
use crate::state::Central;

/// How long a device login waits for a decision (RFC 8628's `expires_in`).
pub const EXPIRES_IN_SECS: i64 = 600;
/// How often the CLI may poll, in seconds, until told to slow down.
pub const INTERVAL_SECS: i64 = 5;
/// Device logins started per minute, across central.
pub const STARTS_PER_MINUTE: u32 = 30;
/// Device logins waiting for a decision at once, across central.
pub const MAX_PENDING: i64 = 512;
/// Wrong user codes a person may type per window.
pub const WRONG_CODES_ALLOWED: u32 = 5;
/// The window those wrong codes are counted in.
pub const WRONG_CODES_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest client name or host name kept (longer ones are cut, on a character boundary).
const MAX_LABEL_CHARS: usize = 64;
/// People whose wrong codes are remembered at most; past it, finished windows are forgotten.
const MAX_TRACKED: usize = 4096;

/// The limits that make the user-code space a real guessing budget: starts across central, and
/// wrong codes per person. In memory: a restart forgets them, which only ever allows one more
/// window's worth.
pub struct Guards {
    starts: RateLimiter,
    wrong: Mutex<HashMap<UserId, (Instant, u32)>>,
}

impl Default for Guards {
    fn default() -> Self {
        Self { starts: RateLimiter::new(STARTS_PER_MINUTE), wrong: Mutex::new(HashMap::new()) }
    }
}

impl Guards {
    /// Whether `user` may still try a code; `Err(seconds until they may)` otherwise.
    fn may_try(&self, user: &UserId) -> Result<(), u64> {
        let wrong = self.wrong.lock().unwrap_or_else(PoisonError::into_inner);
        match wrong.get(user) {
            Some((since, count)) if *count >= WRONG_CODES_ALLOWED && since.elapsed() < WRONG_CODES_WINDOW => {
                Err(WRONG_CODES_WINDOW.saturating_sub(since.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong code typed by `user`.
    fn wrong_code(&self, user: &UserId) {
        let mut wrong = self.wrong.lock().unwrap_or_else(PoisonError::into_inner);
        if wrong.len() >= MAX_TRACKED && !wrong.contains_key(user) {
            wrong.retain(|_, (since, _)| since.elapsed() < WRONG_CODES_WINDOW);
            if wrong.len() >= MAX_TRACKED {
                // Everyone tracked is inside a window: forget the oldest window rather than
                // grow without bound.
                if let Some(oldest) = wrong.iter().min_by_key(|(_, (since, _))| *since).map(|(u, _)| u.clone()) {
                    wrong.remove(&oldest);
                }
            }
        }
        let entry = wrong.entry(user.clone()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WRONG_CODES_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

/// A started device login, as the CLI gets it.
#[derive(Debug, Clone)]
pub struct Started {
    /// The CLI's polling secret.
    pub device_code: String,
    /// What the person types.
    pub user_code: String,
    /// The page.
    pub verification_uri: String,
    /// The page with the code filled in.
    pub verification_uri_complete: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Seconds between polls.
    pub interval: i64,
}

/// A label the person will read (client or host name): control characters dropped, cut to
/// [`MAX_LABEL_CHARS`], `fallback` when nothing is left. Escaped again by the page.
fn label(raw: &str, fallback: &str) -> String {
    let cleaned: String = raw.chars().filter(|c| !c.is_control()).take(MAX_LABEL_CHARS).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() { fallback.to_owned() } else { cleaned.to_owned() }
}

/// A fresh user code.
fn draw_user_code() -> String {
    loop {
        let mut bytes = [0u8; 32];
        // The OS RNG failing is unrecoverable: no code may ever be predictable.
        getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the operating system's random source failed: {e}"));
        // 32 bytes hold 8 usable ones with overwhelming odds (each is usable with p = 15/16).
        if let Some(code) = super::device::user_code(&bytes) {
            return code;
        }
    }
}

/// Starts a device login for `client_name` on `client_host` (what the CLI says), seen from
/// `peer`. `base_url` is central's public HTTP URL, where the page is.
pub async fn start(
    central: &Central,
    base_url: &str,
    client_name: &str,
    client_host: &str,
    peer: &str,
) -> Result<Started, MttrlyError> {
    let now = now_ms();
    central.device_logins.starts.take("start", now).map_err(|retry| {
        MttrlyError::new(ErrorCode::RateLimited, format!("too many logins are being started; retry in {retry}s"))
            .with_detail("retry_after_seconds", retry)
            .with_detail("limit_per_minute", STARTS_PER_MINUTE)
    })?;
    let client_name = label(client_name, "unnamed client");
    let client_host = label(client_host, "unnamed host");
    let device_code = secrets::generate(SecretKind::DeviceCode);
    // A taken code is drawn again; a handful of tries is plenty unless the space is nearly full,
    // which MAX_PENDING rules out.
    for _ in 0..8 {
        let user_code = draw_user_code();
        let login = NewDeviceLogin {
            device_hash: secrets::hash(&device_code),
            user_code: user_code.clone(),
            client_name: client_name.clone(),
            client_host: client_host.clone(),
            peer: peer.to_owned(),
            created_at: now,
            expires_at: now + EXPIRES_IN_SECS * 1000,
            interval_secs: INTERVAL_SECS,
        };
        match central.db.device_logins().insert(login, MAX_PENDING).await? {
            Inserted::Stored => {
                let verification_uri = format!("{}/device", base_url.trim_end_matches('/'));
                tracing::info!(client = %client_name, host = %client_host, %peer, "device login started");
                return Ok(Started {
                    device_code,
                    verification_uri_complete: format!("{verification_uri}?code={user_code}"),
                    verification_uri,
                    user_code,
                    expires_in: EXPIRES_IN_SECS,
                    interval: INTERVAL_SECS,
                });
            }
            Inserted::CodeTaken => {}
            Inserted::TooMany => break,
        }
    }
    Err(MttrlyError::new(ErrorCode::RateLimited, "too many logins are waiting for a decision; retry in a minute")
        .with_detail("retry_after_seconds", 60))
}

/// The name of the token a login issues: what `tokens list` shows its owner.
fn token_name(client_name: &str, client_host: &str) -> String {
    format!("login: {client_name} on {client_host}")
}

/// A poll's answer: what the store found, and the token when it was just issued.
#[derive(Debug)]
pub struct PollAnswer {
    /// RFC 8628's answer.
    pub polled: Polled,
    /// The new token (only with `Polled::Approved`).
    pub token: Option<String>,
}

/// Polls with a device code. Anything that is not a device code central issued is `Unknown`,
/// before any lookup.
pub async fn poll(central: &Central, device_code: &str) -> Result<PollAnswer, MttrlyError> {
    let device_code = device_code.trim();
    if SecretKind::of(device_code) != Some(SecretKind::DeviceCode) || device_code.len() > 256 {
        return Ok(PollAnswer { polled: Polled::Unknown, token: None });
    }
    let device_hash = secrets::hash(device_code);
    // Anyone may poll: a code that matches nothing is answered from a reader, without the
    // transaction (and the write lock) a real poll takes.
    if !central.db.device_logins().known(&device_hash).await? {
        return Ok(PollAnswer { polled: Polled::Unknown, token: None });
    }
    // Drawn on every poll, stored only by the one that finds the login approved.
    let token = secrets::generate(SecretKind::Human);
    let issue = TokenToIssue { hash: secrets::hash(&token), name: token_name };
    let polled = central.db.device_logins().poll(&device_hash, issue, now_ms()).await?;
    if let Polled::Approved(issued) = &polled {
        central.audit(delivered_event(issued));
        return Ok(PollAnswer { polled, token: Some(token) });
    }
    Ok(PollAnswer { polled, token: None })
}

/// The audit row of a delivered token: the approver's account, the CLI as the source.
fn delivered_event(issued: &Issued) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: issued.account_id.clone(),
        server_id: None,
        actor: Principal::Human { user_id: issued.user_id.clone(), name: issued.user_name.clone() }.into(),
        source: Source::Cli,
        kind: AuditKind::ApiCall,
        subject: "DeviceLoginTokenIssued".to_owned(),
        parameters: json!({ "token_id": issued.token_id, "role": issued.role.as_str() }),
        outcome: AuditOutcome::Ok,
        duration_ms: None,
    }
}

/// The person deciding on the page: a signed-in human of an account.
#[derive(Debug, Clone)]
pub struct Decider {
    /// Their account.
    pub account_id: AccountId,
    /// Who they are.
    pub user_id: UserId,
    /// Their name (for the audit row).
    pub name: String,
}

/// Why a code typed on the page finds nothing to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupRefusal {
    /// Not a code, or no login waits under it (unknown, expired, decided): counted as wrong.
    NoSuchCode,
    /// Too many wrong codes: try again in this many seconds.
    TooManyWrong(u64),
}

/// The login a person's typed code names, counting a miss against them.
pub async fn lookup(
    central: &Central,
    decider: &Decider,
    typed: &str,
) -> Result<Result<PendingLogin, LookupRefusal>, MttrlyError> {
    if let Err(wait) = central.device_logins.may_try(&decider.user_id) {
        return Ok(Err(LookupRefusal::TooManyWrong(wait)));
    }
    let found = match super::device::normalise(typed) {
        Some(code) => central.db.device_logins().pending(&code, now_ms()).await?,
        None => None,
    };
    if let Some(login) = found {
        return Ok(Ok(login));
    }
    central.device_logins.wrong_code(&decider.user_id);
    tracing::info!(user = %decider.user_id, "a device code typed on the page matched no waiting login");
    Ok(Err(LookupRefusal::NoSuchCode))
}

/// Allows or denies the login with this user code as `decider`; audited either way (who
/// decided which client's login, from where). `Ok(false)` when it was no longer waiting.
pub async fn decide(
    central: &Central,
    decider: &Decider,
    login: &PendingLogin,
    approve: bool,
) -> Result<bool, MttrlyError> {
    let result = central
        .db
        .device_logins()
        .decide(&login.user_code, &decider.account_id, &decider.user_id, approve, now_ms())
        .await
        .and_then(|decided| {
            if decided {
                Ok(())
            } else {
                Err(MttrlyError::new(ErrorCode::NotFound, "this login is no longer waiting (expired or decided)"))
            }
        });
    central.audit(AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: decider.account_id.clone(),
        server_id: None,
        actor: Principal::Human { user_id: decider.user_id.clone(), name: decider.name.clone() }.into(),
        source: Source::Dashboard,
        kind: AuditKind::ApiCall,
        subject: if approve { "DeviceLoginApproved" } else { "DeviceLoginDenied" }.to_owned(),
        parameters: json!({
            "user_code": login.user_code,
            "client_name": login.client_name,
            "client_host": login.client_host,
            "peer": login.peer,
        }),
        outcome: match &result {
            Ok(()) => AuditOutcome::Ok,
            Err(e) => AuditOutcome::Error { code: e.code() },
        },
        duration_ms: None,
    });
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_printable_bounded_and_never_empty() {
        assert_eq!(label("  mttrly-cli ", "x"), "mttrly-cli");
        assert_eq!(label("evil\u{1b}[2Jhost\nname", "x"), "evil[2Jhostname");
        assert_eq!(label("", "unnamed host"), "unnamed host");
        assert_eq!(label("\n\t", "unnamed host"), "unnamed host");
        assert_eq!(label(&"é".repeat(100), "x").chars().count(), MAX_LABEL_CHARS);
    }

    #[test]
    fn wrong_codes_lock_a_person_out_for_the_window_and_only_them() {
        let guards = Guards::default();
        let (eve, bob) = (UserId::generate(), UserId::generate());
        for _ in 0..WRONG_CODES_ALLOWED {
            assert!(guards.may_try(&eve).is_ok());
            guards.wrong_code(&eve);
        }
        let wait = guards.may_try(&eve).expect_err("locked out");
        assert!(wait > 0 && wait <= WRONG_CODES_WINDOW.as_secs(), "{wait}");
        assert!(guards.may_try(&bob).is_ok(), "another person is not affected");
    }

    #[test]
    fn user_codes_come_from_the_code_alphabet() {
        for _ in 0..100 {
            let code = draw_user_code();
            assert_eq!(super::super::device::normalise(&code).as_deref(), Some(code.as_str()));
        }
    }
}
