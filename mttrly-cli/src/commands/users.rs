//! `mttrly-cli users add|invite|list|set-role|remove` and `mttrly-cli whoami`.

use mttrly_core::MttrlyError;
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_proto::central::v1::{
    AddUserRequest, InviteUserRequest, ListUsersRequest, RemoveUserRequest, SetUserRoleRequest, User, WhoAmIRequest,
};
use serde_json::{Value, json};

use super::rfc3339;
use crate::cli::{OutputFormat, UsersCommand};
use crate::client::{Authed, error};
use crate::output::Printer;

/// A user as `--output json` prints it (field names are a contract with scripts).
fn user_json(u: &User) -> Value {
    json!({
        "user_id": u.user_id,
        "name": u.name,
        "role": u.role,
        "email": (!u.email.is_empty()).then_some(&u.email),
        "created_at": rfc3339(u.created_at),
    })
}

/// `bare_token`: `--token` was given without a value, which in `users add` asks for the new
/// user's token (see `caller_token` in `lib.rs`).
pub(crate) async fn run(
    cmd: &UsersCommand,
    bare_token: bool,
    channel: Authed,
    printer: &Printer,
) -> Result<(), MttrlyError> {
    let mut client = UserServiceClient::new(channel);
    match cmd {
        UsersCommand::Link { provider } => super::chat_links::link(&mut client, printer, *provider).await,
        UsersCommand::Unlink { provider, user } => {
            super::chat_links::unlink(&mut client, printer, *provider, user.as_deref()).await
        }
        UsersCommand::Links => super::chat_links::list(&mut client, printer).await,
        UsersCommand::Add(args) => {
            let request = |second_factor_code: String| AddUserRequest {
                name: args.name.clone(),
                role: args.role.as_str().to_owned(),
                email: args.email.clone().unwrap_or_default(),
                issue_token: args.print_token || bare_token,
                second_factor_code,
            };
            // Asked only when central says so (an account whose admins use second factors, and a
            // new admin, a token, or a removed user's name), right before the call that uses it.
            let added = match client.add_user(request(String::new())).await.map_err(|s| error(&s)) {
                Err(e) if needs_code(&e) => {
                    let code = own_code(&format!(
                        "adding {} needs a fresh code of your own (this account's admins use second factors)",
                        mttrly_core::display::text(&args.name)
                    ))?;
                    client.add_user(request(code)).await.map_err(|s| error(&s))?
                }
                other => other?,
            }
            .into_inner();
            let user = added.user.unwrap_or_default();
            if added.token.is_empty() {
                return print_invite(printer, &user, &added.invite_url, added.expires_at, "added");
            }
            match printer.format() {
                OutputFormat::Json => printer.json(&json!({
                    "user_id": user.user_id,
                    "name": user.name,
                    "role": user.role,
                    "token": added.token,
                    "token_id": added.token_id,
                })),
                OutputFormat::Table => {
                    printer.text(&format!(
                        "added {} ({}, {})\n\n{}'s human token (shown once; hand it over privately):\n  {}\n\nthey use it with: export MTTRLY_TOKEN=…",
                        user.name, user.role, user.user_id, user.name, added.token
                    ));
                    Ok(())
                }
            }
        }
        UsersCommand::Invite { name } => {
            let request = |second_factor_code: String| InviteUserRequest { name: name.clone(), second_factor_code };
            // Asked only when central says so (the invite would replace an enrolled second factor,
            // or the account's admins use second factors), and right before the call that uses
            // it, since a code lives a minute or so.
            let invited = match client.invite_user(request(String::new())).await.map_err(|s| error(&s)) {
                Err(e) if needs_code(&e) => {
                    let code = own_code(&format!(
                        "a new invite for {} (it makes whoever opens it that person, with a second factor of their \
                         choosing) needs a fresh code of your own",
                        mttrly_core::display::text(name)
                    ))?;
                    client.invite_user(request(code)).await.map_err(|s| error(&s))?
                }
                other => other?,
            }
            .into_inner();
            let user = invited.user.unwrap_or_default();
            print_invite(printer, &user, &invited.invite_url, invited.expires_at, "new invite for")
        }
        UsersCommand::List => {
            let users = client.list_users(ListUsersRequest {}).await.map_err(|s| error(&s))?.into_inner().users;
            match printer.format() {
                OutputFormat::Json => printer.json(&users.iter().map(user_json).collect::<Vec<_>>()),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = users
                        .iter()
                        .map(|u| {
                            vec![
                                u.name.clone(),
                                u.role.clone(),
                                if u.email.is_empty() { "-".to_owned() } else { u.email.clone() },
                                super::ago(u.created_at),
                                u.user_id.clone(),
                            ]
                        })
                        .collect();
                    printer.table(&["NAME", "ROLE", "EMAIL", "CREATED", "ID"], &rows);
                    Ok(())
                }
            }
        }
        UsersCommand::SetRole { name, role } => {
            let request = |second_factor_code: String| SetUserRoleRequest {
                name: name.clone(),
                role: role.as_str().to_owned(),
                second_factor_code,
            };
            let before = match client.set_user_role(request(String::new())).await.map_err(|s| error(&s)) {
                Err(e) if needs_code(&e) => {
                    let code = own_code(&format!(
                        "changing {}'s role needs a fresh code of your own (they have a second factor, or this \
                         account's admins use them)",
                        mttrly_core::display::text(name)
                    ))?;
                    client.set_user_role(request(code)).await.map_err(|s| error(&s))?
                }
                other => other?,
            }
            .into_inner();
            match printer.format() {
                OutputFormat::Json => {
                    printer.json(&json!({ "name": name, "role": role.as_str(), "previous_role": before.previous_role }))
                }
                OutputFormat::Table => {
                    printer.text(&format!("{name}: {} → {role}", before.previous_role));
                    Ok(())
                }
            }
        }
        UsersCommand::Remove { name } => {
            let request = |second_factor_code: String| RemoveUserRequest { name: name.clone(), second_factor_code };
            let removed = match client.remove_user(request(String::new())).await.map_err(|s| error(&s)) {
                Err(e) if needs_code(&e) => {
                    let code = own_code(&format!(
                        "{} has a second factor enrolled: removing them needs a fresh code of your own",
                        mttrly_core::display::text(name)
                    ))?;
                    client.remove_user(request(code)).await.map_err(|s| error(&s))?
                }
                other => other?,
            }
            .into_inner();
            match printer.format() {
                OutputFormat::Json => printer.json(&json!({
                    "name": name,
                    "user_id": removed.user_id,
                    "revoked_tokens": removed.revoked_tokens,
                })),
                OutputFormat::Table => {
                    printer.text(&format!(
                        "removed {name} ({}); {} token(s) revoked; their history stays in the audit log",
                        removed.user_id, removed.revoked_tokens
                    ));
                    Ok(())
                }
            }
        }
    }
}

/// Whether central refused a re-invite only for want of the caller's own second-factor code.
fn needs_code(e: &MttrlyError) -> bool {
    e.code() == mttrly_core::ErrorCode::Forbidden
        && e.details().get("second_factor_code").and_then(Value::as_str) == Some("required")
}

/// The caller's own fresh code for a change central refused for want of one (`what` says which),
/// from the terminal or one line of stdin. Nothing typed: an error that keeps the
/// `second_factor_code: "required"` detail, so a script reading `--output json` knows to pipe one.
fn own_code(what: &str) -> Result<String, MttrlyError> {
    let nothing = format!("no code entered: {what}; nothing was changed");
    super::actions::read_code(what, &nothing).map_err(|e| {
        if e.code() == mttrly_core::ErrorCode::ValidationError {
            e.with_detail("second_factor_code", "required")
        } else {
            e
        }
    })
}

/// Prints an invite link (the JSON field names are a contract with scripts).
fn print_invite(printer: &Printer, user: &User, url: &str, expires_at: i64, what: &str) -> Result<(), MttrlyError> {
    let expires = rfc3339(expires_at).unwrap_or_default();
    match printer.format() {
        OutputFormat::Json => printer.json(&json!({
            "user_id": user.user_id,
            "name": user.name,
            "role": user.role,
            "invite_url": url,
            "expires_at": expires,
        })),
        OutputFormat::Table => {
            printer.text(&format!(
                "{what} {} ({}, {})\n\nsend them this single-use link privately; it works until {expires}:\n  {url}\n\nthey choose a password and add an authenticator app there; earlier links for them no longer work",
                user.name, user.role, user.user_id
            ));
            Ok(())
        }
    }
}

/// `mttrly-cli whoami`; `source` is where the token came from (flag, environment, credentials
/// file), so a person can tell which of several tokens is in use.
pub(crate) async fn whoami(
    channel: Authed,
    printer: &Printer,
    source: &crate::credentials::TokenSource,
) -> Result<(), MttrlyError> {
    let me = AccountServiceClient::new(channel).who_am_i(WhoAmIRequest {}).await.map_err(|s| error(&s))?.into_inner();
    match printer.format() {
        OutputFormat::Json => printer.json(&json!({
            "user_id": me.user_id,
            "user_name": me.user_name,
            "role": me.role,
            "principal_type": me.principal_type,
            "name": me.name,
            "account_id": me.account_id,
            "plan": me.plan,
            "token_source": source.as_str(),
            "credentials_file": match source {
                crate::credentials::TokenSource::File(path) => Some(path.display().to_string()),
                _ => None,
            },
        })),
        OutputFormat::Table => {
            let who = if me.principal_type == "assistant" {
                format!("assistant {} acting for {} ({})", me.name, me.user_name, me.user_id)
            } else {
                format!("{} ({})", me.user_name, me.user_id)
            };
            printer.text(&format!(
                "{who}\nrole:    {}\naccount: {} (plan {})\ntoken:   from {}",
                me.role,
                me.account_id,
                me.plan,
                source.describe()
            ));
            Ok(())
        }
    }
}
