//! An account's people as operations of the app: add (with an invite link, or a human token for
//! automation), invite again, list, change a role, remove. The gRPC `UserService` is a thin adapter over these; the coming
//! channels (invites, the dashboard, SSO's just-in-time creation) call the same functions, so the
//! rules below hold whichever way a person arrives.
//!
//! The rules: only human admins change users (`FORBIDDEN` otherwise); the last admin can neither
//! be demoted nor removed (checked inside the storage transaction, so two admins demoting each
//! other at once cannot both succeed); a removed user's API tokens and OAuth grants are revoked
//! in the same transaction (with their browser sessions and invites) and the auth cache forgets
//! every credential at once, so an open MCP session or browser page of theirs fails on its next
//! request; their rows stay, so the audit log and old
//! actions still name them. Every change is audited, refused or not; a token never is.

use mttrly_core::approval::config::valid_user_name;
use mttrly_core::{ErrorCode, MttrlyError, Role};

use crate::db::accounts::{Removed, TokenOwner, User, UserRefusal};
use crate::secrets::{self, SecretKind};
use crate::state::Central;

/// A user just added, with what lets them in (shown once). No `Debug`: both are secrets.
pub struct Added {
    /// The new user.
    pub user: User,
    /// Their way in.
    pub credential: Credential,
}

/// What a new user gets.
pub enum Credential {
    /// A human API token at once (`--token`, for automation).
    Token {
        /// The token (only its hash is stored).
        token: String,
        /// Its public id (what `tokens revoke` takes).
        token_id: String,
    },
    /// A single-use invite link: a password and a second factor, set in the browser.
    Invite(Invite),
}

/// An invite link, shown once (only its secret's hash is stored).
pub struct Invite {
    /// `{base}/invite/<secret>`.
    pub url: String,
    /// When it stops working (Unix ms).
    pub expires_at: i64,
}

/// The longest e-mail address accepted (RFC 5321's path limit).
const MAX_EMAIL_LEN: usize = 254;

fn invalid(field: &str, message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message).with_detail("field", field)
}

/// Only human admins manage users.
fn require_admin(caller: &TokenOwner) -> Result<(), MttrlyError> {
    if !caller.principal.is_human() {
        return Err(MttrlyError::new(
            ErrorCode::Forbidden,
            "users are managed by humans; assistant tokens cannot change them",
        ));
    }
    if caller.role != Role::Admin {
        return Err(MttrlyError::new(ErrorCode::Forbidden, "managing users needs the admin role"));
    }
    Ok(())
}

/// A user name as central stores it (shared with the approval rules' `user:NAME`).
pub fn check_name(name: &str) -> Result<(), MttrlyError> {
    if valid_user_name(name) {
        Ok(())
    } else {
        Err(invalid(
            "name",
            "a user name is 1 to 64 of letters, digits, `.`, `-`, `_`, starting with a letter or digit",
        ))
    }
}

/// The shape of an e-mail address: one `@`, a non-empty local part, a dotted domain, no spaces or
/// control characters. Whether it is deliverable is the mail system's business.
pub fn check_email(email: &str) -> Result<(), MttrlyError> {
    let shaped = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.split('.').count() >= 2
                && domain.split('.').all(|label| !label.is_empty())
        });
    if shaped {
        Ok(())
    } else {
        Err(invalid("email", format!("`{email}` is not an e-mail address (name@example.com)")))
    }
}

/// The error for a refused change, naming the user.
fn refused(refusal: &UserRefusal, name: &str) -> MttrlyError {
    match refusal {
        UserRefusal::NotFound => MttrlyError::new(
            ErrorCode::NotFound,
            format!("no user `{name}` in this account; `mttrly-cli users list` shows them"),
        )
        .with_detail("name", name),
        UserRefusal::NameTaken => invalid("name", format!("a user named `{name}` already exists in this account")),
        UserRefusal::EmailTaken => invalid(
            "email",
            "another user of this account already has this e-mail address (compared without case); each person's must be their own",
        ),
        UserRefusal::LastAdmin => MttrlyError::new(
            ErrorCode::ValidationError,
            format!("`{name}` is the account's last admin; make someone else admin first (`mttrly-cli users set-role NAME admin`)"),
        )
        .with_detail("name", name),
    }
}

/// The account's living users, for any human of the account.
pub async fn list(central: &Central, caller: &TokenOwner) -> Result<Vec<User>, MttrlyError> {
    if !caller.principal.is_human() {
        return Err(MttrlyError::new(ErrorCode::Forbidden, "assistant tokens cannot list users"));
    }
    central.db.account(&caller.account_id).users().list().await
}

/// Adds a user. With `with_token` they get a human token at once (for automation); without, a
/// single-use invite link on the site at `base_url`, valid 72 hours (`signin::invite`).
pub async fn add(
    central: &Central,
    caller: &TokenOwner,
    name: &str,
    role: Role,
    email: Option<&str>,
    with_token: bool,
    base_url: &str,
) -> Result<Added, MttrlyError> {
    let result = add_unaudited(central, caller, name, role, email, with_token, base_url).await;
    // Neither the token nor the link reaches the audit log; that one was issued does.
    let (token_id, invite_expires) = match result.as_ref().map(|a| &a.credential) {
        Ok(Credential::Token { token_id, .. }) => (Some(token_id.clone()), None),
        Ok(Credential::Invite(invite)) => (None, Some(invite.expires_at)),
        Err(_) => (None, None),
    };
    let params = serde_json::json!({
        "name": name,
        "role": role.as_str(),
        "email": email,
        "token_issued": token_id.is_some(),
        "invite_issued": invite_expires.is_some(),
        "invite_expires_at": invite_expires,
        "user_id": result.as_ref().ok().map(|a| a.user.id.to_string()),
        "token_id": token_id,
    });
    central.audit(crate::audit::events::api_call(caller, "AddUser", None, params, &result));
    result
}

/// A fresh invite link for an existing user (a lost phone, a forgotten password): their earlier
/// invites die; using it replaces their password and second factor. Admins only; audited (with
/// `resets_second_factor` when the user had one enrolled).
///
/// Whoever opens the link chooses the user's new second factor, so re-inviting someone who has
/// one is taking it over: an admin token alone (a leaked one, quickstart's `quickstart.json`) must
/// not be enough. It needs the calling admin's own fresh code (`second_factor_code`, typed by them
/// just now), an admin without a second factor cannot do it at all, and nobody re-invites
/// themselves past their own factor (`mttrly-cli totp enroll` asks for a current code, or a
/// recovery code stands in for a lost phone). A user with no enrolled factor has nothing to take
/// and is re-invited as before.
pub async fn invite(
    central: &Central,
    caller: &TokenOwner,
    name: &str,
    second_factor_code: Option<&str>,
    base_url: &str,
) -> Result<(User, Invite), MttrlyError> {
    let mut resets_second_factor = false;
    let result = async {
        require_admin(caller)?;
        resets_second_factor = check_factor_reset(central, caller, name, second_factor_code).await?;
        let (secret, hash) = crate::signin::invite::fresh();
        let expires_at = crate::db::now_ms().saturating_add(crate::signin::invite::TTL_MS);
        let people = central.db.account(&caller.account_id).people();
        let user = people.reinvite(name, &hash, expires_at).await?.map_err(|r| refused(&r, name))?;
        Ok((user, Invite { url: crate::signin::invite::url(base_url, &secret), expires_at }))
    }
    .await;
    let params = serde_json::json!({
        "name": name,
        "user_id": result.as_ref().ok().map(|(u, _)| u.id.to_string()),
        "invite_expires_at": result.as_ref().ok().map(|(_, i)| i.expires_at),
        "resets_second_factor": resets_second_factor,
    });
    central.audit(crate::audit::events::api_call(caller, "InviteUser", None, params, &result));
    result
}

/// Whether re-inviting `name` replaces an enrolled second factor, after checking the caller may
/// do that: not for themselves, and only with a fresh code of their own enrolled factor.
async fn check_factor_reset(
    central: &Central,
    caller: &TokenOwner,
    name: &str,
    code: Option<&str>,
) -> Result<bool, MttrlyError> {
    let users = central.db.account(&caller.account_id).users().list().await?;
    // A missing user is reported by the re-invite itself, with the same words as elsewhere.
    let Some(target) = users.iter().find(|u| u.name == name) else { return Ok(false) };
    if !crate::second_factor::enrolled(central, &caller.account_id, &target.id).await? {
        return Ok(false);
    }
    let mttrly_core::Principal::Human { user_id: me, .. } = &caller.principal else {
        return Err(MttrlyError::new(ErrorCode::Forbidden, "users are managed by humans"));
    };
    if *me == target.id {
        return Err(MttrlyError::new(
            ErrorCode::Forbidden,
            "you have a second factor enrolled, and an invite for yourself would replace it without it:              re-enrol with `mttrly-cli totp enroll` (it asks for a current code, or one of your recovery codes)",
        )
        .with_detail("name", name));
    }
    if !crate::second_factor::enrolled(central, &caller.account_id, me).await? {
        return Err(MttrlyError::new(
            ErrorCode::Forbidden,
            format!(
                "`{name}` has a second factor enrolled, which the invite would replace; that needs a fresh code of                  your own second factor, and you have none: enrol first with `mttrly-cli totp enroll`"
            ),
        )
        .with_detail("name", name));
    }
    let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
        return Err(MttrlyError::new(
            ErrorCode::Forbidden,
            format!(
                "`{name}` has a second factor enrolled, which the invite would replace: confirm with a fresh code of                  your own (`mttrly-cli users invite {name}` asks for it)"
            ),
        )
        .with_detail("name", name)
        .with_detail("second_factor_code", "required"));
    };
    crate::second_factor::verify_from(central, &caller.account_id, me, code, mttrly_core::Source::Cli).await?;
    Ok(true)
}

async fn add_unaudited(
    central: &Central,
    caller: &TokenOwner,
    name: &str,
    role: Role,
    email: Option<&str>,
    with_token: bool,
    base_url: &str,
) -> Result<Added, MttrlyError> {
    require_admin(caller)?;
    check_name(name)?;
    if let Some(email) = email {
        check_email(email)?;
    }
    if !with_token {
        let (secret, hash) = crate::signin::invite::fresh();
        let expires_at = crate::db::now_ms().saturating_add(crate::signin::invite::TTL_MS);
        let people = central.db.account(&caller.account_id).people();
        return match people.add_with_invite(name, role, email, &hash, expires_at).await? {
            Ok(user) => {
                let url = crate::signin::invite::url(base_url, &secret);
                Ok(Added { user, credential: Credential::Invite(Invite { url, expires_at }) })
            }
            Err(refusal) => Err(refused(&refusal, name)),
        };
    }
    let token = secrets::generate(SecretKind::Human);
    let hash = secrets::hash(&token);
    let users = central.db.account(&caller.account_id).users();
    match users.add_with_token(name, role, email, &hash).await? {
        Ok((user, token_id)) => Ok(Added { user, credential: Credential::Token { token, token_id } }),
        Err(refusal) => Err(refused(&refusal, name)),
    }
}

/// Changes a user's role (never the last admin's away from admin). Returns the user as they were.
pub async fn set_role(central: &Central, caller: &TokenOwner, name: &str, role: Role) -> Result<User, MttrlyError> {
    let result = async {
        require_admin(caller)?;
        let before = central.db.account(&caller.account_id).users().set_role(name, role).await?;
        let before = before.map_err(|r| refused(&r, name))?;
        // Every credential of theirs (and only the cache knows which are open) now resolves to
        // the new role on its next request.
        central.auth_cache.invalidate_all();
        Ok(before)
    }
    .await;
    let params = serde_json::json!({
        "name": name,
        "role": role.as_str(),
        "previous_role": result.as_ref().ok().map(|u| u.role.as_str()),
    });
    central.audit(crate::audit::events::api_call(caller, "SetUserRole", None, params, &result));
    result
}

/// Removes a user (never the last admin); their tokens and grants die with them, at once.
pub async fn remove(central: &Central, caller: &TokenOwner, name: &str) -> Result<Removed, MttrlyError> {
    let result = async {
        require_admin(caller)?;
        let removed = central.db.account(&caller.account_id).users().remove(name).await?;
        let removed = removed.map_err(|r| refused(&r, name))?;
        central.auth_cache.invalidate_all();
        Ok(removed)
    }
    .await;
    let params = serde_json::json!({
        "name": name,
        "user_id": result.as_ref().ok().map(|r| r.user.id.to_string()),
        "revoked_tokens": result.as_ref().ok().map(|r| r.revoked_tokens),
    });
    central.audit(crate::audit::events::api_call(caller, "RemoveUser", None, params, &result));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mail_addresses_are_checked_for_shape() {
        for ok in ["bob@example.com", "b.o+b@mail.example.org"] {
            assert!(check_email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "bob",
            "@example.com",
            "bob@",
            "bob@example",
            "bob@@example.com",
            "bob @example.com",
            "bob@example..com",
            "bob@exa\nmple.com",
        ] {
            assert_eq!(check_email(bad).unwrap_err().code(), ErrorCode::ValidationError, "{bad:?}");
        }
        assert!(check_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn names_follow_the_approval_rules_vocabulary() {
        assert!(check_name("bob").is_ok());
        assert!(check_name("bob.smith-2").is_ok());
        for bad in ["", "-bob", "bob smith", "bob;rm", &"b".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
