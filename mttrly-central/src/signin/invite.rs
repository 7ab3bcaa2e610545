//! Invites: how a person without an identity provider gets a password and a second factor.
//!
//! `users add NAME` (and `users invite NAME`, for someone who lost their phone) makes a
//! single-use link valid for 72 hours: `{base}/invite/<secret>`, 256 random bits of which only the
//! SHA-256 is stored. The secret rides in the path, not a query string, and every page sets
//! `Referrer-Policy: same-origin`, so it leaves the browser only toward central.
//!
//! Opening it takes two steps. The password step stores the chosen password's hash and a fresh
//! TOTP secret *on the invite*; nothing of the person's changes yet. The code step verifies a
//! code from that secret and then, in one transaction, marks the invite used, gives the person
//! the password and the secret (replacing any earlier ones), new recovery codes, and ends their
//! browser sessions. So an interrupted enrolment resumes with the same link until it expires, and
//! an enrolment is complete, and sign-in possible, only once a code has proved the app holds the
//! secret. A newer invite for the same person kills the older ones.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::second_factor::{RecoveryCode, TotpSecret};
use mttrly_core::{ErrorCode, MttrlyError};

use crate::db::people::{InviteRefusal, InviteRow};
use crate::state::Central;

/// How long an invite link works.
pub const TTL_MS: i64 = 72 * 3600 * 1000;
/// Where the invite pages live.
pub const PATH: &str = "/invite/";

/// A fresh invite secret and its stored hash.
pub(crate) fn fresh() -> (String, [u8; 32]) {
    let secret = crate::signin::web::fresh_secret();
    let hash = crate::secrets::hash(&secret);
    (secret, hash)
}

/// The link for `secret` on the site at `base_url`.
pub fn url(base_url: &str, secret: &str) -> String {
    format!("{}{PATH}{secret}", base_url.trim_end_matches('/'))
}

/// Whether `secret` has the shape of an invite secret (so nothing else is looked up).
fn well_formed(secret: &str) -> bool {
    secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An invite as found from its link, usable at the time of the lookup.
pub(crate) struct Open {
    /// The stored row.
    pub row: InviteRow,
    /// The secret's hash.
    pub hash: [u8; 32],
}

/// Finds the invite of a link and says whether it is usable now.
pub(crate) async fn find(central: &Central, secret: &str) -> Result<Result<Open, InviteRefusal>, MttrlyError> {
    if !well_formed(secret) {
        return Ok(Err(InviteRefusal::Unknown));
    }
    let hash = crate::secrets::hash(secret);
    let Some(row) = central.db.signins().invite(&hash).await? else { return Ok(Err(InviteRefusal::Unknown)) };
    Ok(if row.used_at.is_some() {
        Err(InviteRefusal::Used)
    } else if row.revoked_at.is_some() || row.user_removed {
        Err(InviteRefusal::Revoked)
    } else if crate::db::now_ms() >= row.expires_at {
        Err(InviteRefusal::Expired)
    } else {
        Ok(Open { row, hash })
    })
}

/// The TOTP secret waiting on the invite, once the password step is done.
pub(crate) async fn pending_secret(central: &Central, open: &Open) -> Result<Option<TotpSecret>, MttrlyError> {
    match (&open.row.password_hash, &open.row.pending) {
        (Some(_), Some(sealed)) => {
            Ok(Some(crate::second_factor::open(central, &open.row.account_id, &open.row.user_id, sealed).await?))
        }
        _ => Ok(None),
    }
}

/// The password step: checks the rules, hashes it (blocking pool) and keeps it on the invite
/// with a fresh TOTP secret, which it returns for the enrolment step.
pub(crate) async fn choose_password(
    central: &Central,
    open: &Open,
    password: &str,
) -> Result<Result<TotpSecret, InviteRefusal>, MttrlyError> {
    crate::signin::password::check_new(password, &open.row.name)
        .map_err(|r| MttrlyError::new(ErrorCode::ValidationError, r.to_string()).with_detail("field", "password"))?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || crate::signin::password::hash(&password))
        .await
        .map_err(|_| MttrlyError::new(ErrorCode::InternalError, "hashing the password failed"))?;
    let (secret, sealed) = crate::second_factor::seal_new(central, &open.row.account_id, &open.row.user_id).await?;
    let people = central.db.account(&open.row.account_id).people();
    Ok(people.invite_choose(&open.hash, &hash, sealed, crate::db::now_ms()).await?.map(|()| secret))
}

/// The code step: a code from the invite's secret completes the invite (see the module doc).
/// Returns the person and their recovery codes (shown once). `AUTH_FAILED` for a wrong code.
pub(crate) async fn confirm(
    central: &Central,
    open: &Open,
    code: &str,
) -> Result<Result<(UserId, Vec<RecoveryCode>), InviteRefusal>, MttrlyError> {
    let Some(sealed) = open.row.pending.clone().filter(|_| open.row.password_hash.is_some()) else {
        return Ok(Err(InviteRefusal::NotReady));
    };
    let (account, user): (&AccountId, &UserId) = (&open.row.account_id, &open.row.user_id);
    let secret = crate::second_factor::open(central, account, user, &sealed).await?;
    let now = crate::db::now_ms();
    let Ok(step) = secret.verify(code, u64::try_from(now / 1000).unwrap_or(0), None) else {
        return Err(MttrlyError::new(
            ErrorCode::AuthFailed,
            "wrong code: type the six digits your authenticator app shows for this entry",
        ));
    };
    let codes = crate::second_factor::fresh_recovery_codes();
    let hashes = codes.iter().map(RecoveryCode::hash).collect();
    let done = central.db.account(account).people().complete_invite(&open.hash, sealed, step, hashes, now).await?;
    Ok(done.map(|user| (user, codes)))
}

/// What a person sees for an invite that cannot be used.
pub(crate) fn refusal_text(refusal: InviteRefusal) -> &'static str {
    match refusal {
        InviteRefusal::Unknown => {
            "This invite link is not known here. Check that it was copied whole, or ask an admin for a new one (`mttrly-cli users invite NAME`)."
        }
        InviteRefusal::Expired => {
            "This invite link has expired (links work for 72 hours). Ask an admin for a new one (`mttrly-cli users invite NAME`)."
        }
        InviteRefusal::Used => {
            "This invite link was already used. Sign in with your password and code, or ask an admin for a new link if you lost them."
        }
        InviteRefusal::Revoked => {
            "This invite link was replaced by a newer one or withdrawn. Use the newest link you were sent, or ask an admin."
        }
        InviteRefusal::NotReady => "Choose a password first: open the invite link again.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_puts_the_secret_in_the_path() {
        let (secret, hash) = fresh();
        assert!(well_formed(&secret));
        assert_eq!(hash, crate::secrets::hash(&secret));
        assert_eq!(url("https://c.example/", &secret), format!("https://c.example/invite/{secret}"));
        assert!(!well_formed("../../etc"));
        assert!(!well_formed(&format!("{secret}x")));
    }
}
