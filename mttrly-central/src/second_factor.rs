//! A person's second factor as an operation of the app: verify a code typed right now, enrol
//! (or re-enrol) a TOTP secret, say whether someone is enrolled.
//!
//! The rules are `mttrly_core::second_factor`'s (RFC 6238 with ±1 step, the last accepted step
//! refused, single-use recovery codes, 5 wrong codes → 15 minutes; wrong passwords have their
//! own counter, kept by the sign-in page, and never lock codes); this module persists their state
//! and makes each check-and-set one conditional write, so two concurrent uses of one code cannot
//! both succeed (`db::people`), across restarts too (the step is stored, not remembered).
//!
//! TOTP secrets are stored sealed (ChaCha20-Poly1305, the account and user as associated data,
//! so a sealed secret copied onto another user's row does not open) with a 32-byte key kept in
//! the data directory (`second_factor.key`, 0600, created at first use), not in the database: a
//! copy of the database alone gives nobody a second factor. Losing the key file loses every
//! enrolment (people re-enrol through a fresh invite: `mttrly-cli users invite NAME`).
//!
//! A first enrolment through a bearer token (`mttrly-cli totp enroll`) works only in an account
//! that does not use second factors yet (no living admin has one). Once one does, a factor is what
//! lets an admin token past the gates of `crate::users`, and a token that could enrol a first one
//! on the spot (a leaked factor-less admin token, the attacker's own authenticator) would pass
//! them all: there a person's first factor comes through an invite link, which an admin issues
//! with a code of their own. Judged when the enrolment starts (a clear refusal) and again inside
//! the confirming transaction (an admin enrolling in between counts). Re-enrolment by someone who
//! has a factor needs a current code of it, as before; enrolment needs a token of full scope.
//!
//! Every verification and enrolment is audited (which method, which refusal; never the code).

use std::path::{Path, PathBuf};

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::second_factor::{Lockout, RecoveryCode, TotpRefusal, TotpSecret, recovery, totp};
use mttrly_core::{ErrorCode, MttrlyError, Source};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde_json::json;

use crate::db::accounts::FactorGate;
use crate::db::accounts::TokenOwner;
use crate::db::people::{Factor, PendingRefusal, Sealed};
use crate::state::Central;

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "second_factor.key";
/// The sealed format's version byte (a later cipher gets another).
const SEALED_V1: u8 = 1;

/// The sealing key, loaded (or created) on first use. Lives in [`Central`].
#[derive(Default)]
pub struct KeyCell(tokio::sync::OnceCell<std::sync::Arc<LessSafeKey>>);

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
enum KeyError {
    #[error("cannot read or create {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a 32-byte key; restore it from a backup, or move it away and re-enrol everyone")]
    Malformed { path: String },
}

/// Reads the key at `path`, creating it (0600, atomically: a half-written key is never seen, and
/// of two processes creating it at once both end up with the same one) if missing.
fn load_or_create(path: &Path) -> Result<[u8; 32], KeyError> {
    let io = |source| KeyError::Io { path: path.display().to_string(), source };
    match std::fs::read(path) {
        Ok(bytes) => return bytes.try_into().map_err(|_| KeyError::Malformed { path: path.display().to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap_or_else(|e| panic!("the operating system's random source failed: {e}"));
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = dir.join(format!(".{KEY_FILE}.{}", hex::encode(&key[..4])));
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(io)?;
        file.write_all(&key).and_then(|()| file.sync_all()).map_err(io)?;
    }
    // A hard link never replaces an existing file: whoever links first wins, the other reads it.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = std::fs::read(path).map_err(io)?;
            bytes.try_into().map_err(|_| KeyError::Malformed { path: path.display().to_string() })
        }
        Err(e) => Err(io(e)),
    }
}

impl KeyCell {
    async fn key(&self, data_dir: &Path) -> Result<std::sync::Arc<LessSafeKey>, MttrlyError> {
        let path: PathBuf = data_dir.join(KEY_FILE);
        self.0
            .get_or_try_init(|| async move {
                let bytes = tokio::task::spawn_blocking(move || load_or_create(&path))
                    .await
                    .map_err(|_| MttrlyError::new(ErrorCode::InternalError, "loading the second-factor key failed"))?
                    .map_err(|e| {
                        tracing::error!(error = %mttrly_core::error_chain::ErrorChain(&e), "second-factor key unavailable");
                        MttrlyError::new(ErrorCode::InternalError, "the second-factor key is unavailable; see central's log")
                    })?;
                let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
                    .map_err(|_| MttrlyError::new(ErrorCode::InternalError, "bad second-factor key"))?;
                Ok(std::sync::Arc::new(LessSafeKey::new(unbound)))
            })
            .await
            .cloned()
    }
}

fn aad(account: &AccountId, user: &UserId) -> Vec<u8> {
    format!("mttrly totp v1\0{}\0{}", account.as_str(), user.as_str()).into_bytes()
}

fn seal(key: &LessSafeKey, account: &AccountId, user: &UserId, secret: &TotpSecret) -> Result<Sealed, MttrlyError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).unwrap_or_else(|e| panic!("the operating system's random source failed: {e}"));
    let mut in_out = secret.to_base32().into_bytes();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad(account, user)), &mut in_out)
        .map_err(|_| MttrlyError::new(ErrorCode::InternalError, "sealing a TOTP secret failed"))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
    out.push(SEALED_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&in_out);
    Ok(Sealed(out))
}

fn unseal(key: &LessSafeKey, account: &AccountId, user: &UserId, sealed: &Sealed) -> Result<TotpSecret, MttrlyError> {
    let broken = || {
        tracing::error!(%account, %user, "a stored TOTP secret does not open with this data directory's key");
        MttrlyError::new(
            ErrorCode::InternalError,
            "the stored second factor cannot be read with this central's key; an admin can send a fresh invite (`mttrly-cli users invite NAME`)",
        )
    };
    let (&version, rest) = sealed.0.split_first().ok_or_else(broken)?;
    if version != SEALED_V1 || rest.len() < NONCE_LEN {
        return Err(broken());
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| broken())?;
    let mut buf = ciphertext.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(aad(account, user)), &mut buf).map_err(|_| broken())?;
    let text = std::str::from_utf8(plain).map_err(|_| broken())?;
    TotpSecret::from_base32(text).map_err(|_| broken())
}

/// A fresh secret from the operating system.
fn fresh_secret() -> TotpSecret {
    let mut bytes = [0u8; totp::SECRET_BYTES];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the operating system's random source failed: {e}"));
    TotpSecret::from_bytes(bytes)
}

/// A fresh set of recovery codes.
pub(crate) fn fresh_recovery_codes() -> Vec<RecoveryCode> {
    (0..recovery::CODES_PER_ENROLLMENT)
        .map(|_| {
            let mut bytes = [0u8; recovery::CODE_BYTES];
            getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the operating system's random source failed: {e}"));
            RecoveryCode::from_bytes(bytes)
        })
        .collect()
}

/// Seals a new secret for `user` with central's key.
pub(crate) async fn seal_new(
    central: &Central,
    account: &AccountId,
    user: &UserId,
) -> Result<(TotpSecret, Sealed), MttrlyError> {
    let key = central.second_factor_key.key(&central.config.data_dir).await?;
    let secret = fresh_secret();
    let sealed = seal(&key, account, user, &secret)?;
    Ok((secret, sealed))
}

/// Opens a secret sealed for `user`.
pub(crate) async fn open(
    central: &Central,
    account: &AccountId,
    user: &UserId,
    sealed: &Sealed,
) -> Result<TotpSecret, MttrlyError> {
    let key = central.second_factor_key.key(&central.config.data_dir).await?;
    unseal(&key, account, user, sealed)
}

/// The name authenticator apps show for this central (the public host, so one phone can hold
/// several centrals apart).
pub(crate) fn issuer(central: &Central) -> String {
    central
        .config
        .public_http_url
        .as_deref()
        .and_then(|u| u.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.split(['/', ':']).next())
        .filter(|h| !h.is_empty())
        .map_or_else(|| "mttrly".to_owned(), |host| format!("mttrly {host}"))
}

/// Unix seconds now, for TOTP steps.
fn unix_now(now_ms: i64) -> u64 {
    u64::try_from(now_ms / 1000).unwrap_or(0)
}

fn not_enrolled() -> MttrlyError {
    MttrlyError::new(
        ErrorCode::Forbidden,
        "no second factor is enrolled for this user: enrol one with `mttrly-cli totp enroll`, or open the invite link an admin sends (`mttrly-cli users invite NAME`)",
    )
}

fn wrong_code() -> MttrlyError {
    MttrlyError::new(
        ErrorCode::AuthFailed,
        "wrong code: type the current six-digit code from your authenticator app, or a recovery code",
    )
}

fn locked(until_ms: i64) -> MttrlyError {
    let until =
        crate::db::timestamp(until_ms).round(jiff::Unit::Second).unwrap_or_else(|_| crate::db::timestamp(until_ms));
    MttrlyError::new(
        ErrorCode::RateLimited,
        format!("too many wrong codes: TOTP checks are locked until {until} (UTC); a recovery code still works"),
    )
    .with_detail("locked_until", until.to_string())
}

/// What an attempt was, for the audit.
struct Attempt {
    method: &'static str,
    refusal: Option<&'static str>,
}

/// Verifies a TOTP code (or a recovery code) typed by the user right now: lockout, replay (last
/// accepted step persisted), single-use recovery codes. Audited (source `api`). Errors:
/// AUTH_FAILED (wrong code), RATE_LIMITED (locked out; message says until when), FORBIDDEN (not
/// enrolled, with the fix: `mttrly-cli totp enroll` or the invite link).
///
/// Only wrong codes count toward the lock, and only this function and enrolment count them: the
/// caller is someone who already proved something (a password on the sign-in page, a human
/// token for an approval), never an anonymous guess at a name. A replay of the last accepted
/// step is refused uncounted; a recovery code is accepted even while TOTP is locked and lifts
/// the lock.
pub async fn verify(central: &Central, account: &AccountId, user: &UserId, code: &str) -> Result<(), MttrlyError> {
    verify_from(central, account, user, code, Source::Api).await
}

/// [`verify`], recorded as coming through `source` (the sign-in page says `dashboard`, the CLI's
/// own prompts `cli`).
pub async fn verify_from(
    central: &Central,
    account: &AccountId,
    user: &UserId,
    code: &str,
    source: Source,
) -> Result<(), MttrlyError> {
    let people = central.db.account(account).people();
    let factor = people.factor(user).await?;
    let name = factor.as_ref().map(|f| f.name.clone());
    let mut attempt = Attempt { method: "totp", refusal: None };
    let result = check(central, account, user, code, factor, &mut attempt).await;
    if let Some(name) = name {
        let event = mttrly_core::audit::AuditEvent {
            at: jiff::Timestamp::now(),
            account_id: account.clone(),
            server_id: None,
            actor: mttrly_core::audit::AuditActor::Human { user_id: user.clone(), name },
            source,
            kind: mttrly_core::audit::AuditKind::ApiCall,
            subject: "VerifySecondFactor".to_owned(),
            parameters: json!({ "method": attempt.method, "refusal": attempt.refusal }),
            outcome: match &result {
                Ok(()) => mttrly_core::audit::AuditOutcome::Ok,
                Err(e) => mttrly_core::audit::AuditOutcome::Error { code: e.code() },
            },
            duration_ms: None,
        };
        central.audit(event);
    }
    result
}

async fn check(
    central: &Central,
    account: &AccountId,
    user: &UserId,
    code: &str,
    factor: Option<Factor>,
    attempt: &mut Attempt,
) -> Result<(), MttrlyError> {
    let people = central.db.account(account).people();
    // Another account's user, a removed one, or no enrolment: the same answer.
    let Some(factor) = factor else {
        attempt.refusal = Some("not_enrolled");
        return Err(not_enrolled());
    };
    let Some(sealed) = factor.sealed else {
        attempt.refusal = Some("not_enrolled");
        return Err(not_enrolled());
    };
    let policy = Lockout::default();
    let now = crate::db::now_ms();
    let refusal = if let Some(hash) = recovery::hash_typed(code) {
        // Checked even while TOTP is locked: 80 bits cannot be guessed in any number of tries,
        // and a recovery code is how a person gets past a lock someone else's guesses caused.
        attempt.method = "recovery_code";
        if people.use_recovery_code(user, &hash, now).await? {
            return Ok(());
        }
        "wrong"
    } else {
        if let Err(until) = policy.admit(&factor.lockout, now) {
            attempt.refusal = Some("locked");
            return Err(locked(until));
        }
        let secret = open(central, account, user, &sealed).await?;
        match secret.verify(code, unix_now(now), factor.last_step) {
            Ok(step) => {
                if people.accept_step(user, step, now).await? {
                    return Ok(());
                }
                // Another request accepted this step first (or a lock landed meanwhile).
                "replayed"
            }
            Err(TotpRefusal::Replayed) => "replayed",
            Err(TotpRefusal::Malformed) => "malformed",
            Err(TotpRefusal::Wrong) => "wrong",
        }
    };
    attempt.refusal = Some(refusal);
    if refusal == "replayed" {
        // The person's own last code again (a double-submit, a second approval within the same
        // 30 s): refused, never counted, or a valid code typed twice would lock its owner out.
        return Err(wrong_code());
    }
    let after = people.record_failure(user, policy, now).await?;
    match after.locked_until_ms {
        Some(until) if until > now => Err(locked(until)),
        _ => Err(wrong_code()),
    }
}

/// Whether the user has a confirmed TOTP enrolment.
pub async fn enrolled(central: &Central, account: &AccountId, user: &UserId) -> Result<bool, MttrlyError> {
    Ok(central.db.account(account).people().factor(user).await?.is_some_and(|f| f.sealed.is_some()))
}

/// A second factor's state as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// A confirmed TOTP enrolment exists.
    pub enrolled: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// Until when (Unix ms) checks are locked, if they are.
    pub locked_until: Option<i64>,
}

/// The caller's own second-factor state.
pub async fn status(central: &Central, caller: &TokenOwner) -> Result<Status, MttrlyError> {
    let user = human(caller)?;
    let factor = central.db.account(&caller.account_id).people().factor(&user).await?;
    let now = crate::db::now_ms();
    Ok(factor.map_or(Status { enrolled: false, recovery_codes_left: 0, locked_until: None }, |f| Status {
        enrolled: f.sealed.is_some(),
        recovery_codes_left: f.recovery_left,
        locked_until: f.lockout.locked_until_ms.filter(|until| *until > now),
    }))
}

/// The human a token stands for; assistants are refused (a code never passes through one).
fn human(caller: &TokenOwner) -> Result<UserId, MttrlyError> {
    match &caller.principal {
        mttrly_core::Principal::Human { user_id, .. } => Ok(user_id.clone()),
        mttrly_core::Principal::Assistant { .. } => Err(MttrlyError::new(
            ErrorCode::Forbidden,
            "a second factor belongs to a person: enrol it with your own human token (`mttrly-cli login`), never an assistant's",
        )),
    }
}

/// The refusal of a first enrolment by token in an account that uses second factors.
fn first_factor_by_invite(caller: &TokenOwner) -> MttrlyError {
    MttrlyError::new(
        ErrorCode::Forbidden,
        format!(
            "this account's admins use second factors, so a first second factor is never enrolled with a token alone: \
             it comes through an invite link; ask an admin for `mttrly-cli users invite {}`",
            caller.user_name
        ),
    )
}

/// A secret to enrol, shown once: the authenticator app scans the URI.
pub struct Enrolment {
    /// The secret in base32 (for typing into an app by hand).
    pub secret: String,
    /// The `otpauth://totp/…` URI.
    pub otpauth_uri: String,
}

/// Starts (re-)enrolment of the caller's own TOTP: a new secret waits until a code from it is
/// confirmed ([`confirm_enrolment`]); the current factor stays valid meanwhile. Re-enrolment
/// needs a current code (or recovery code) of the enrolled factor; a first enrolment is refused
/// in an account that uses second factors (module doc).
pub async fn start_enrolment(
    central: &Central,
    caller: &TokenOwner,
    current_code: Option<&str>,
) -> Result<Enrolment, MttrlyError> {
    let result = async {
        let user = human(caller)?;
        crate::users::require_full_scope(caller)?;
        if enrolled(central, &caller.account_id, &user).await? {
            let Some(code) = current_code.filter(|c| !c.trim().is_empty()) else {
                return Err(MttrlyError::new(
                    ErrorCode::Forbidden,
                    "a second factor is already enrolled: re-enrolling needs a current code from it (or a recovery code); lost both? an admin can send a fresh invite (`mttrly-cli users invite NAME`)",
                ));
            };
            verify_from(central, &caller.account_id, &user, code, Source::Cli).await?;
        } else if central.db.account(&caller.account_id).users().uses_second_factors().await? {
            return Err(first_factor_by_invite(caller));
        }
        let (secret, sealed) = seal_new(central, &caller.account_id, &user).await?;
        if !central.db.account(&caller.account_id).people().set_pending(&user, sealed).await? {
            return Err(MttrlyError::new(ErrorCode::Forbidden, "this user no longer exists"));
        }
        Ok(Enrolment { secret: secret.to_base32(), otpauth_uri: secret.otpauth_uri(&issuer(central), &caller.user_name) })
    }
    .await;
    central.audit(crate::audit::events::api_call(caller, "StartTotpEnrollment", None, json!({}), &result));
    result
}

/// Confirms the caller's pending enrolment with a code from the new secret; returns the new
/// recovery codes (shown once; the earlier ones no longer work).
pub async fn confirm_enrolment(
    central: &Central,
    caller: &TokenOwner,
    code: &str,
) -> Result<Vec<RecoveryCode>, MttrlyError> {
    let result = async {
        let user = human(caller)?;
        crate::users::require_full_scope(caller)?;
        let people = central.db.account(&caller.account_id).people();
        let factor = people.factor(&user).await?.ok_or_else(not_enrolled)?;
        let Some(pending) = factor.pending else {
            return Err(MttrlyError::new(
                ErrorCode::ValidationError,
                "no enrolment is waiting for a code: start one with `mttrly-cli totp enroll`",
            ));
        };
        let now = crate::db::now_ms();
        if let Err(until) = Lockout::default().admit(&factor.lockout, now) {
            return Err(locked(until));
        }
        let secret = open(central, &caller.account_id, &user, &pending).await?;
        let Ok(step) = secret.verify(code, unix_now(now), None) else {
            let after = people.record_failure(&user, Lockout::default(), now).await?;
            return Err(match after.locked_until_ms {
                Some(until) if until > now => locked(until),
                _ => MttrlyError::new(ErrorCode::AuthFailed, "wrong code: type the current code your app shows for the new entry"),
            });
        };
        let codes = fresh_recovery_codes();
        let hashes = codes.iter().map(RecoveryCode::hash).collect();
        let gate = FactorGate::Checked { code_verified: false };
        match people.confirm_pending_gated(&user, pending, step, hashes, gate).await? {
            Ok(()) => {}
            Err(PendingRefusal::FirstFactorByInvite) => return Err(first_factor_by_invite(caller)),
            Err(PendingRefusal::Changed) => {
                return Err(MttrlyError::new(
                    ErrorCode::ValidationError,
                    "another enrolment was started meanwhile: finish that one, or start again with `mttrly-cli totp enroll`",
                ));
            }
        }
        Ok(codes)
    }
    .await;
    central.audit(crate::audit::events::api_call(caller, "ConfirmTotpEnrollment", None, json!({}), &result));
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join(KEY_FILE);
        let bytes = load_or_create(&key_path).unwrap();
        assert_eq!(load_or_create(&key_path).unwrap(), bytes, "the same key on the next start");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &bytes).unwrap());
        let (account, user, other) = (AccountId::generate(), UserId::generate(), UserId::generate());
        let secret = fresh_secret();
        let sealed = seal(&key, &account, &user, &secret).unwrap();
        assert!(!sealed.0.windows(8).any(|w| secret.to_base32().as_bytes().windows(8).any(|s| s == w)));
        assert_eq!(unseal(&key, &account, &user, &sealed).unwrap(), secret);
        assert!(unseal(&key, &account, &other, &sealed).is_err(), "moved to another user's row");
        let other_key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7; 32]).unwrap());
        assert!(unseal(&other_key, &account, &user, &sealed).is_err(), "another data directory's key");
        let mut flipped = sealed.clone();
        *flipped.0.last_mut().unwrap() ^= 1;
        assert!(unseal(&key, &account, &user, &flipped).is_err());
        std::fs::write(&key_path, b"short").unwrap();
        assert!(matches!(load_or_create(&key_path), Err(KeyError::Malformed { .. })));
    }
}
