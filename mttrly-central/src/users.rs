//! An account's people as operations of the app: add (with an invite link, or a human token for
//! automation), invite again, list, change a role, remove. The gRPC `UserService` is a thin adapter over these; the coming
//! channels (invites, the dashboard, SSO's just-in-time creation) call the same functions, so the
//! rules below hold whichever way a person arrives.
//!
//! The rules: only human admins change users, with a token of full scope (`FORBIDDEN`
//! otherwise: a read-only or toolset-scoped token never mints, raises or removes anyone, or it
//! could mint its way out of its scope, which `tokens create` already refuses); the last admin can neither
//! be demoted nor removed (checked inside the storage transaction, so two admins demoting each
//! other at once cannot both succeed); a removed user's API tokens and OAuth grants are revoked
//! in the same transaction (with their browser sessions and invites) and the auth cache forgets
//! every credential at once, so an open MCP session or browser page of theirs fails on its next
//! request; their rows stay, so the audit log and old
//! actions still name them. Every change is audited, refused or not; a token never is.
//!
//! **An admin credential alone never takes over or out-ranks a person protected by a second
//! factor.** A bearer token (a leaked one, quickstart's `quickstart.json`) is one factor; once the
//! account uses second factors (a living admin has a confirmed one), every change that would let
//! such a token mint power past them needs the *calling* admin's own fresh code
//! (`second_factor_code`, typed by them just now, counted toward their lockout when wrong):
//! - `users add --role admin` (an invite link or a token: a new admin, whoever opens it);
//! - `users add --token`, any role (a token user never enrols, so the token is all they need;
//!   an operator can approve non-production actions, a viewer reads everything);
//! - `users add NAME` when a removed user had `NAME` (approval rules match people by name,
//!   `approvers = ["user:NAME"]`: the new person would satisfy the old person's rules; audited
//!   with `reuses_removed_name`);
//! - `users set-role NAME admin` of someone who is not an admin yet;
//! - `users invite NAME`, whoever NAME is (the link makes whoever opens it NAME, with a password
//!   and a second factor of their choosing: for an admin without a factor that is a new admin);
//! - `users set-role NAME ROLE` lowering, and `users remove NAME`, of someone with an enrolled
//!   factor: that out-ranks the person the factor protects, and lowering or removing the
//!   account's factor-holding admins would switch the gate off for every bare admin token.
//!
//! In any account, whether or not it uses second factors: `users invite NAME` of someone with an
//! enrolled factor (the link replaces it), and never for oneself past one's own factor.
//!
//! A caller with no enrolled factor of their own is refused these with the fix. In an account that
//! uses second factors a bearer token cannot give itself a first factor either
//! (`crate::second_factor`: `mttrly-cli totp enroll` is for re-enrolment there; a first factor
//! comes through an invite link, which needs an admin's code): else a leaked factor-less admin
//! token would enrol the attacker's own authenticator and pass every gate. Lowering or removing
//! an *admin* with a factor needs the caller's code (those are the people whose factors keep the
//! gate on); lowering or removing anyone else needs none: it gives a token nothing it lacked, and
//! it is what an admin does, fast, when a credential leaks. In an account where no admin has a factor the quickstart
//! and automation flows keep working code-free, lowering and removing included: there a token may
//! enrol a first factor and type its codes, so asking for one would prove nothing. The code is verified first (it needs the lockout
//! state); whether a code was needed is judged again inside the change's own transaction
//! ([`FactorGate`]), so an enrolment landing in between cannot slip through.
//!
//! "Uses second factors" is not made sticky (an account flag set at the first admin enrolment):
//! with the rules above only a factor holder's own code lowers or removes the factor-holding
//! admins, so the gate goes off only by a decision made with a second factor, and a sticky flag
//! would leave an account whose last factor-holding admin left with no way to issue the gated
//! invites at all.
//!
//! Approval rules are not also made to refuse a user created after an action was requested:
//! re-creating a removed name already needs a factor holder's fresh code and is audited as such,
//! and a rule naming `user:NAME` is a statement about whoever holds that name in the account,
//! which its admins (proven by their factor) decide. Refusing later-created users would also
//! refuse the legitimate case of adding the teammate a pending production action waits for.

use mttrly_core::approval::config::valid_user_name;
use mttrly_core::{ErrorCode, MttrlyError, Role, ToolSurface};

use crate::db::accounts::{FactorGate, GuardFacts, Removed, TokenOwner, User, UserRefusal};
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

/// Only human admins manage users, with a token of full scope.
fn require_admin(caller: &TokenOwner) -> Result<(), MttrlyError> {
    if !caller.principal.is_human() {
        return Err(MttrlyError::new(
            ErrorCode::Forbidden,
            "users are managed by humans; assistant tokens cannot change them",
        ));
    }
    require_full_scope(caller)?;
    if caller.role != Role::Admin {
        return Err(MttrlyError::new(ErrorCode::Forbidden, "managing users needs the admin role"));
    }
    Ok(())
}

/// A token narrower than full scope changes no person (nor a second factor): a person added with
/// `--token` gets an unscoped token, so a read-only or toolset-scoped holder would mint its way
/// out of its scope, which `tokens create` refuses for the same reason.
pub(crate) fn require_full_scope(caller: &TokenOwner) -> Result<(), MttrlyError> {
    if caller.scope == ToolSurface::ALL {
        return Ok(());
    }
    Err(MttrlyError::new(
        ErrorCode::Forbidden,
        "a read-only or toolset-scoped token cannot manage people: use a full human token (`mttrly-cli login`)",
    ))
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
        // The facts changed between the look before and the change's transaction (someone
        // enrolled meanwhile): the same answer as a missing code, so the CLI asks for one.
        UserRefusal::SecondFactorRequired => MttrlyError::new(
            ErrorCode::Forbidden,
            format!(
                "a second factor was enrolled in this account meanwhile, and this change about `{name}` now needs a \
                 fresh code of your own: run the command again (`mttrly-cli` asks for the code)"
            ),
        )
        .with_detail("name", name)
        .with_detail("second_factor_code", "required"),
    }
}

/// A change the second-factor rule (module doc) judges.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// `users add`, with a token or an invite link.
    Add { role: Role, with_token: bool },
    /// `users set-role`.
    SetRole { role: Role },
    /// `users invite`.
    Reinvite,
    /// `users remove`.
    Remove,
}

/// What the rule decided for one change.
struct Confirmed {
    /// What the change's transaction re-checks.
    gate: FactorGate,
    /// A removed user had the name (for the audit).
    reuses_removed_name: bool,
}

/// Why `change` of `name` needs the caller's fresh code, given `facts`; `None` if it does not.
/// Refuses an invite for oneself past one's own factor outright.
fn why_code_needed(
    change: Change,
    name: &str,
    facts: &GuardFacts,
    me: &mttrly_core::ids::UserId,
) -> Result<Option<String>, MttrlyError> {
    let guarded = "an admin of this account has a second factor, so an admin token alone must not be enough";
    Ok(match change {
        // Refused as a taken name by the transaction; no code is spent on it.
        Change::Add { .. } if facts.target.is_some() => None,
        Change::Add { role, with_token } if facts.factors_in_use => {
            if role == Role::Admin {
                Some(format!("adding `{name}` as an admin needs a fresh code of your own second factor ({guarded})"))
            } else if with_token {
                Some(format!(
                    "a token for `{name}` skips enrolling a second factor, so issuing one needs a fresh code of your \
                     own ({guarded})"
                ))
            } else if facts.name_removed {
                Some(format!(
                    "`{name}` was the name of a removed user, and approval rules naming `user:{name}` would count the \
                     new one: reusing it needs a fresh code of your own second factor ({guarded})"
                ))
            } else {
                None
            }
        }
        Change::SetRole { role } => match &facts.target {
            Some((user, _)) if role == Role::Admin && user.role != Role::Admin && facts.factors_in_use => {
                Some(format!("making `{name}` an admin needs a fresh code of your own second factor ({guarded})"))
            }
            // Roles order from most to least powerful: a greater role is a weaker one.
            Some((user, true)) if role > user.role && user.role == Role::Admin && facts.factors_in_use => {
                Some(format!(
                    "`{name}` is an admin with a second factor enrolled, and lowering their role out-ranks it: that \
                 needs a fresh code of your own second factor"
                ))
            }
            _ => None,
        },
        Change::Remove => match &facts.target {
            Some((user, true)) if user.role == Role::Admin && facts.factors_in_use => Some(format!(
                "`{name}` is an admin with a second factor enrolled, and removing them out-ranks it: that needs a \
                 fresh code of your own second factor"
            )),
            _ => None,
        },
        Change::Reinvite => match &facts.target {
            Some((user, true)) if user.id == *me => {
                return Err(MttrlyError::new(
                    ErrorCode::Forbidden,
                    "you have a second factor enrolled, and an invite for yourself would replace it without it: \
                     re-enrol with `mttrly-cli totp enroll` (it asks for a current code, or one of your recovery codes)",
                )
                .with_detail("name", name));
            }
            Some((_, true)) => Some(format!(
                "`{name}` has a second factor enrolled, which the invite would replace; that needs a fresh code of \
                 your own second factor"
            )),
            Some(_) if facts.factors_in_use => Some(format!(
                "the link makes whoever opens it `{name}`, with a password and a second factor of their choosing: \
                 that needs a fresh code of your own second factor ({guarded})"
            )),
            _ => None,
        },
        Change::Add { .. } => None,
    })
}

/// Applies the second-factor rule (module doc) to `change` of `name` before the change: when it
/// needs the caller's fresh code, refuses a caller with no factor of their own and a missing
/// code, and verifies the code (a wrong one counts toward the caller's lockout).
async fn confirm(
    central: &Central,
    caller: &TokenOwner,
    name: &str,
    change: Change,
    code: Option<&str>,
    command: &str,
) -> Result<Confirmed, MttrlyError> {
    let mttrly_core::Principal::Human { user_id: me, .. } = &caller.principal else {
        return Err(MttrlyError::new(ErrorCode::Forbidden, "users are managed by humans"));
    };
    let facts = central.db.account(&caller.account_id).users().guard_facts(name).await?;
    let reuses_removed_name = facts.name_removed && matches!(change, Change::Add { .. });
    let Some(why) = why_code_needed(change, name, &facts, me)? else {
        return Ok(Confirmed { gate: FactorGate::Checked { code_verified: false }, reuses_removed_name });
    };
    if !crate::second_factor::enrolled(central, &caller.account_id, me).await? {
        // Where the account uses second factors a token cannot enrol a first one
        // (`crate::second_factor`): say so rather than send the person to a refusal.
        let fix = if facts.factors_in_use {
            format!(
                "you have none, and in this account a first one comes only through an invite link (`mttrly-cli totp \
                 enroll` refuses it): ask an admin who has one for `mttrly-cli users invite {}`",
                caller.user_name
            )
        } else {
            "you have none: enrol first with `mttrly-cli totp enroll`".to_owned()
        };
        return Err(MttrlyError::new(ErrorCode::Forbidden, format!("{why}; {fix}")).with_detail("name", name));
    }
    let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
        return Err(MttrlyError::new(
            ErrorCode::Forbidden,
            format!("{why}: confirm with a fresh code of your own (`{command}` asks for it)"),
        )
        .with_detail("name", name)
        .with_detail("second_factor_code", "required"));
    };
    crate::second_factor::verify_from(central, &caller.account_id, me, code, mttrly_core::Source::Cli).await?;
    Ok(Confirmed { gate: FactorGate::Checked { code_verified: true }, reuses_removed_name })
}

/// The account's living users, for any human of the account.
pub async fn list(central: &Central, caller: &TokenOwner) -> Result<Vec<User>, MttrlyError> {
    if !caller.principal.is_human() {
        return Err(MttrlyError::new(ErrorCode::Forbidden, "assistant tokens cannot list users"));
    }
    central.db.account(&caller.account_id).users().list().await
}

/// What `users add` asks for.
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    /// The name (unique among the living).
    pub name: &'a str,
    /// Their role.
    pub role: Role,
    /// Their e-mail address, if given.
    pub email: Option<&'a str>,
    /// A human token at once instead of an invite link.
    pub with_token: bool,
}

/// Adds a user. With `with_token` they get a human token at once (for automation); without, a
/// single-use invite link on the site at `base_url`, valid 72 hours (`signin::invite`). When the
/// second-factor rule (module doc) asks for it, `second_factor_code` is the caller's fresh code.
pub async fn add(
    central: &Central,
    caller: &TokenOwner,
    new: NewUser<'_>,
    second_factor_code: Option<&str>,
    base_url: &str,
) -> Result<Added, MttrlyError> {
    let NewUser { name, role, email, .. } = new;
    let mut confirmed = (false, false);
    let result = add_unaudited(central, caller, new, second_factor_code, base_url, &mut confirmed).await;
    let (reuses_removed_name, second_factor_confirmed) = confirmed;
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
        "reuses_removed_name": reuses_removed_name,
        "second_factor_confirmed": second_factor_confirmed,
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
/// recovery code stands in for a lost phone). A user with no enrolled factor has nothing to take,
/// but the link still makes whoever opens it that user: in an account that uses second factors
/// every re-invite needs the caller's code, like adding someone.
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
        let command = format!("mttrly-cli users invite {name}");
        let confirmed = confirm(central, caller, name, Change::Reinvite, second_factor_code, &command).await?;
        let (secret, hash) = crate::signin::invite::fresh();
        let expires_at = crate::db::now_ms().saturating_add(crate::signin::invite::TTL_MS);
        let people = central.db.account(&caller.account_id).people();
        let (user, enrolled) =
            people.reinvite_gated(name, &hash, expires_at, confirmed.gate).await?.map_err(|r| refused(&r, name))?;
        resets_second_factor = enrolled;
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

/// [`add`] before its audit row; `confirmed` receives (reuses a removed name, a code was verified).
async fn add_unaudited(
    central: &Central,
    caller: &TokenOwner,
    new: NewUser<'_>,
    second_factor_code: Option<&str>,
    base_url: &str,
    confirmed: &mut (bool, bool),
) -> Result<Added, MttrlyError> {
    let NewUser { name, role, email, with_token } = new;
    require_admin(caller)?;
    check_name(name)?;
    if let Some(email) = email {
        check_email(email)?;
    }
    let command = format!("mttrly-cli users add {name}");
    let change = Change::Add { role, with_token };
    let rule = confirm(central, caller, name, change, second_factor_code, &command).await?;
    *confirmed = (rule.reuses_removed_name, rule.gate == (FactorGate::Checked { code_verified: true }));
    if !with_token {
        let (secret, hash) = crate::signin::invite::fresh();
        let expires_at = crate::db::now_ms().saturating_add(crate::signin::invite::TTL_MS);
        let people = central.db.account(&caller.account_id).people();
        return match people.add_with_invite_gated(name, role, email, &hash, expires_at, rule.gate).await? {
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
    match users.add_with_token_gated(name, role, email, &hash, rule.gate).await? {
        Ok((user, token_id)) => Ok(Added { user, credential: Credential::Token { token, token_id } }),
        Err(refusal) => Err(refused(&refusal, name)),
    }
}

/// Changes a user's role (never the last admin's away from admin). Returns the user as they were.
/// Making someone an admin in an account that uses second factors, or lowering someone with an
/// enrolled second factor, needs the caller's fresh code (module doc).
pub async fn set_role(
    central: &Central,
    caller: &TokenOwner,
    name: &str,
    role: Role,
    second_factor_code: Option<&str>,
) -> Result<User, MttrlyError> {
    let mut second_factor_confirmed = false;
    let result = async {
        require_admin(caller)?;
        let command = format!("mttrly-cli users set-role {name} {role}");
        let rule = confirm(central, caller, name, Change::SetRole { role }, second_factor_code, &command).await?;
        second_factor_confirmed = rule.gate == (FactorGate::Checked { code_verified: true });
        let before = central.db.account(&caller.account_id).users().set_role_gated(name, role, rule.gate).await?;
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
        "second_factor_confirmed": second_factor_confirmed,
    });
    central.audit(crate::audit::events::api_call(caller, "SetUserRole", None, params, &result));
    result
}

/// Removes a user (never the last admin); their tokens and grants die with them, at once.
/// Removing someone with an enrolled second factor needs the caller's fresh code (module doc).
pub async fn remove(
    central: &Central,
    caller: &TokenOwner,
    name: &str,
    second_factor_code: Option<&str>,
) -> Result<Removed, MttrlyError> {
    let mut second_factor_confirmed = false;
    let result = async {
        require_admin(caller)?;
        let command = format!("mttrly-cli users remove {name}");
        let rule = confirm(central, caller, name, Change::Remove, second_factor_code, &command).await?;
        second_factor_confirmed = rule.gate == (FactorGate::Checked { code_verified: true });
        let removed = central.db.account(&caller.account_id).users().remove_gated(name, rule.gate).await?;
        let removed = removed.map_err(|r| refused(&r, name))?;
        central.auth_cache.invalidate_all();
        // Their subscriptions stop delivering at once.
        central.warroom.forget_all();
        Ok(removed)
    }
    .await;
    let params = serde_json::json!({
        "name": name,
        "user_id": result.as_ref().ok().map(|r| r.user.id.to_string()),
        "revoked_tokens": result.as_ref().ok().map(|r| r.revoked_tokens),
        "second_factor_confirmed": second_factor_confirmed,
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
