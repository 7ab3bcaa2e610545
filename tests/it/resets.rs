//! Issue 12 review fixes. An admin token alone cannot take over someone's second factor: a
//! re-invite (whose link sets a new password and TOTP secret) of a user with an enrolled factor
//! needs the calling admin's own fresh code, an admin without a factor cannot do it, nobody
//! re-invites themselves past their own factor, the audit says when a factor was reset, and a
//! link issued while there was no factor dies when one is enrolled.
//! The same class, everywhere power is minted: once an admin of the account has a second factor,
//! an admin token alone adds no admin (invite or token), issues no token (any role), makes nobody
//! an admin and reuses no removed user's name without the caller's own fresh code; refused
//! attempts change nothing, wrong codes count toward the caller's lockout, and an account where
//! no admin has a factor keeps working code-free.
//! Red team R12 beside it: every re-invite needs that code too; so does lowering or removing
//! someone with a factor; a first factor by token is refused (it comes through an invite); a
//! read-only or toolset-scoped token manages nobody.
//! Four eyes against an admin's sock puppet: an approval by someone the requester's own human
//! added or re-invited is allowed but marked, in the audit and in `actions show`.

#![allow(clippy::unwrap_used)]

use mttrly_core::ErrorCode;
use mttrly_proto::central::v1::audit_service_client::AuditServiceClient;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_proto::central::v1::{
    AddUserRequest, AddUserResponse, InviteUserRequest, InviteUserResponse, ListAuditRequest, ListUsersRequest,
    SetUserRoleRequest,
};
use serde_json::{Value, json};

use crate::approvals::{add_server, add_user, approve, body, cli, code_at, enroll_totp, request};
use crate::common::{Harness, authed, code, harness};

async fn invite(h: &Harness, token: &str, name: &str, code: &str) -> Result<InviteUserResponse, tonic::Status> {
    UserServiceClient::new(h.channel().await)
        .invite_user(authed(token, InviteUserRequest { name: name.into(), second_factor_code: code.into() }))
        .await
        .map(tonic::Response::into_inner)
}

/// The parameters of the account's successful audit rows about `subject` (oldest first).
async fn audited(h: &Harness, subject: &str) -> Vec<Value> {
    h.central.central.audit.flush().await;
    let entries = AuditServiceClient::new(h.channel().await)
        .list_audit(authed(&h.admin, ListAuditRequest { server_id: String::new(), limit: 500, before_seq: 0 }))
        .await
        .unwrap()
        .into_inner()
        .entries_json;
    let mut rows: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter(|e| e["subject"] == subject && e["outcome"]["status"] == "ok")
        .map(|e| e["parameters"].clone())
        .collect();
    rows.reverse();
    rows
}

/// Opens an invite link in a browser: sets a password and enrols a new TOTP secret.
async fn sign_up(h: &Harness, url: &str) {
    let (base, url) = (h.central.http_url(), url.to_owned());
    tokio::task::spawn_blocking(move || drop(crate::login::sign_up(&base, &url))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_token_alone_cannot_replace_an_enrolled_users_second_factor() {
    let h = harness(|_| {}).await;
    let bob = add_user(&h, "bob", "operator").await;
    let (bob_secret, bob_step, _) = enroll_totp(&h, &bob).await;

    // An admin with no second factor of their own cannot reset bob's: told to enrol first.
    let err = invite(&h, &h.admin, "bob", "123456").await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::Forbidden, "{err:?}");
    assert!(body(&err).message().contains("mttrly-cli totp enroll"), "{err:?}");
    assert!(body(&err).details().get("second_factor_code").is_none(), "no code would help: {err:?}");

    let (secret, step, recovery) = enroll_totp(&h, &h.admin).await;
    // No code: FORBIDDEN, saying a code of the admin's own is what is missing.
    let err = invite(&h, &h.admin, "bob", "").await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::Forbidden, "{err:?}");
    assert_eq!(body(&err).details()["second_factor_code"], "required", "{err:?}");
    // A wrong code, or bob's own code (the admin holds no phone of bob's): AUTH_FAILED.
    let wrong = format!("{:06}", (secret.code_at(step + 1) + 1) % 1_000_000);
    let err = invite(&h, &h.admin, "bob", &wrong).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed, "{err:?}");
    let err = invite(&h, &h.admin, "bob", &code_at(&bob_secret, bob_step + 1)).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed, "{err:?}");
    // Nothing was issued by the refused attempts.
    assert!(audited(&h, "InviteUser").await.is_empty());

    // The admin's own fresh code: a link, which works, and the audit says a factor was reset.
    let fresh = code_at(&secret, step + 1);
    let link = invite(&h, &h.admin, "bob", &fresh).await.unwrap();
    assert!(link.invite_url.contains("/invite/"), "{link:?}");
    sign_up(&h, &link.invite_url).await;
    let invites = audited(&h, "InviteUser").await;
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert_eq!(invites[0]["resets_second_factor"], true, "{invites:?}");
    assert!(!serde_json::to_string(&invites).unwrap().contains(&fresh), "a code in the audit log");
    // The same code again: spent.
    let err = invite(&h, &h.admin, "bob", &fresh).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed, "{err:?}");

    // Re-inviting oneself past one's own factor: refused, pointing at `totp enroll`, even with a
    // valid code (a recovery code here).
    let err = invite(&h, &h.admin, "admin", &recovery[0]).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::Forbidden, "{err:?}");
    assert!(body(&err).message().contains("mttrly-cli totp enroll"), "{err:?}");

    // Someone without a factor has nothing to reset, but the account now uses second factors and
    // the link makes whoever opens it carol: a code is asked all the same (redteam12, finding 2).
    // (Added with an invite link: a token would need the admin's code too.)
    add(&h, &h.admin, "carol", "viewer", false, "").await.unwrap();
    let err = invite(&h, &h.admin, "carol", "").await.unwrap_err();
    assert_eq!(body(&err).details()["second_factor_code"], "required", "{err:?}");
    invite(&h, &h.admin, "carol", &recovery[2]).await.unwrap();
    let invites = audited(&h, "InviteUser").await;
    assert_eq!(invites.last().unwrap()["name"], "carol");
    assert_eq!(invites.last().unwrap()["resets_second_factor"], false, "{invites:?}");

    // The CLI reads the admin's code from one line of stdin, as a script pipes it, and without
    // one changes nothing.
    let out = cli(&h, &h.admin, &["--output", "json", "users", "invite", "carol"], "").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = cli(&h, &h.admin, &["--output", "json", "users", "invite", "carol"], &format!("{}\n", recovery[3])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&h, &h.admin, &["--output", "json", "users", "invite", "bob"], "").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no code entered"), "{out:?}");
    let out = cli(&h, &h.admin, &["--output", "json", "users", "invite", "bob"], &format!("{}\n", recovery[1])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(printed["invite_url"].as_str().unwrap().contains("/invite/"), "{printed}");
    let invites = audited(&h, "InviteUser").await;
    assert_eq!(invites.last().unwrap()["name"], "bob");
    assert_eq!(invites.last().unwrap()["resets_second_factor"], true, "{invites:?}");
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_issued_before_an_enrolment_cannot_replace_that_factor_later() {
    let h = harness(|_| {}).await;
    // Erin has no factor: re-invited without a code (nothing to take yet).
    let erin = add_user(&h, "erin", "operator").await;
    let link = invite(&h, &h.admin, "erin", "").await.unwrap().invite_url;
    // She enrols from the terminal; the link handed out before would now replace that factor
    // without anyone's code, so it no longer opens.
    enroll_totp(&h, &erin).await;
    let (base, path) = (h.central.http_url(), link[link.find("/invite/").unwrap()..].to_owned());
    let page = tokio::task::spawn_blocking(move || crate::login::Browser::new(&base).get(&path)).await.unwrap();
    assert_eq!(page.status, 410, "{page:?}");
    assert!(page.body.contains("replaced by a newer one or withdrawn"), "{page:?}");
    h.central.shutdown().await;
}

/// The `actions show --output json` approvals of `id`, and the text `actions show` prints.
async fn shown(h: &Harness, id: &str) -> (Vec<Value>, String) {
    let out = cli(h, &h.admin, &["--output", "json", "actions", "show", id], "").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = cli(h, &h.admin, &["actions", "show", id], "").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (json["approvals"].as_array().unwrap().clone(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_by_someone_the_requester_added_is_marked_in_the_audit_and_in_actions_show() {
    let h = harness(|_| {}).await;
    let db1 = add_server(&h, "db-1", mttrly_core::Environment::Production).await;
    let regenerate = json!({ "server_id": db1.server_id });

    // The admin adds `sock` and approves their own production request with it: allowed (admins
    // manage people), but marked.
    let sock = add_user(&h, "sock", "operator").await;
    let first = request(&h, &h.admin, "mttrly_regenerate_install_token", regenerate.clone()).await;
    assert_eq!(approve(&h, &sock, &first, "").await.unwrap().status, "succeeded");
    let (approvals, text) = shown(&h, &first).await;
    assert_eq!(approvals[0]["approver_added_by_requester"], true, "{approvals:?}");
    assert_eq!(approvals[0]["approver_introduced"]["how"], "added", "{approvals:?}");
    assert_eq!(approvals[0]["approver_introduced"]["by"], "admin", "{approvals:?}");
    let note = text.lines().find(|l| l.starts_with("note:")).unwrap_or_else(|| panic!("no note in {text}"));
    assert!(note.contains("sock was added by admin, whose assistant requested this action,"), "{note}");
    assert!(note.ends_with("before approving"), "{note}");

    // Someone another admin added is not marked. (That admin is made on the data directory, as
    // `mttrly-central accounts create` does: an admin the requester added would mark whoever
    // they add in turn, "admin (through ann)".)
    let account = h.central.central.db.first_account().await.unwrap().unwrap().0;
    let ann = mttrly_central::secrets::generate(mttrly_central::secrets::SecretKind::Human);
    let users = h.central.central.db.account(&account).users();
    let hash = mttrly_central::secrets::hash(&ann);
    users.add_with_token("ann", mttrly_core::Role::Admin, None, &hash).await.unwrap().unwrap();
    let dave = UserServiceClient::new(h.channel().await)
        .add_user(authed(
            &ann,
            mttrly_proto::central::v1::AddUserRequest {
                name: "dave".into(),
                role: "operator".into(),
                email: String::new(),
                issue_token: true,
                second_factor_code: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    let second = request(&h, &h.admin, "mttrly_regenerate_install_token", regenerate.clone()).await;
    assert_eq!(approve(&h, &dave, &second, "").await.unwrap().status, "succeeded");
    let (approvals, text) = shown(&h, &second).await;
    assert_eq!(approvals[0]["approver_added_by_requester"], false, "{approvals:?}");
    assert!(approvals[0].get("approver_introduced").is_none(), "{approvals:?}");
    assert!(!text.contains("note:"), "{text}");
    // Once the requester re-invites dave (a link that sets dave's password and second factor),
    // dave's next approval of the requester's action is marked.
    invite(&h, &h.admin, "dave", "").await.unwrap();
    let third = request(&h, &h.admin, "mttrly_regenerate_install_token", regenerate).await;
    assert_eq!(approve(&h, &dave, &third, "").await.unwrap().status, "succeeded");
    let (approvals, text) = shown(&h, &third).await;
    assert_eq!(approvals[0]["approver_introduced"]["how"], "reinvited", "{approvals:?}");
    assert!(
        text.contains("note:        dave was sent an invite link by admin, whose assistant requested this action"),
        "{text}"
    );
    // The earlier decision keeps its answer: the re-invite came after it.
    assert_eq!(shown(&h, &second).await.0[0]["approver_added_by_requester"], false);

    // The decisions' audit parameters say the same.
    let mut marked = Vec::new();
    for id in [&first, &second, &third] {
        marked.push(audited_decision(&h, id).await["approver_added_by_requester"] == true);
    }
    assert_eq!(marked, [true, false, true]);

    // Someone the requester adds or re-invites while the request waits is the requester again
    // under production's four eyes: refused, nothing decided, no code asked for.
    let fourth = request(&h, &h.admin, "mttrly_regenerate_install_token", json!({ "server_id": db1.server_id })).await;
    let late = add_user(&h, "late", "operator").await;
    invite(&h, &h.admin, "dave", "").await.unwrap();
    for (token, name, how) in [(&late, "late", "added"), (&dave, "dave", "sent an invite link")] {
        let err = approve(&h, token, &fourth, "").await.unwrap_err();
        assert_eq!(code(&err), ErrorCode::Forbidden, "{err:?}");
        assert!(
            err.message().contains(&format!("four-eyes rule: {name} was {how} by admin after this was requested")),
            "{}",
            err.message()
        );
    }
    let (approvals, _) = shown(&h, &fourth).await;
    assert!(approvals.is_empty(), "{approvals:?}");
    // sock, added before the request, still may: marked as before.
    assert_eq!(approve(&h, &sock, &fourth, "").await.unwrap().status, "succeeded");
    h.central.shutdown().await;
}

/// The parameters of the successful approval of `action` in the audit log.
async fn audited_decision(h: &Harness, action: &str) -> Value {
    let rows = audited(h, action).await;
    rows.into_iter().find(|p| p["decision"] == "approve").unwrap_or_else(|| panic!("no approval of {action}"))
}

/// `UserService.AddUser` as `token`: `with_token` for a human token, else an invite link.
pub(crate) async fn add(
    h: &Harness,
    token: &str,
    name: &str,
    role: &str,
    with_token: bool,
    code: &str,
) -> Result<AddUserResponse, tonic::Status> {
    let request = AddUserRequest {
        name: name.into(),
        role: role.into(),
        email: String::new(),
        issue_token: with_token,
        second_factor_code: code.into(),
    };
    UserServiceClient::new(h.channel().await).add_user(authed(token, request)).await.map(tonic::Response::into_inner)
}

/// `UserService.SetUserRole` as `token`: the previous role.
pub(crate) async fn set_role(
    h: &Harness,
    token: &str,
    name: &str,
    role: &str,
    code: &str,
) -> Result<String, tonic::Status> {
    let request = SetUserRoleRequest { name: name.into(), role: role.into(), second_factor_code: code.into() };
    UserServiceClient::new(h.channel().await)
        .set_user_role(authed(token, request))
        .await
        .map(|r| r.into_inner().previous_role)
}

/// The account's living users as `(name, role)`, oldest first.
async fn people(h: &Harness) -> Vec<(String, String)> {
    let users = UserServiceClient::new(h.channel().await)
        .list_users(authed(&h.admin, ListUsersRequest {}))
        .await
        .unwrap()
        .into_inner()
        .users;
    users.into_iter().map(|u| (u.name, u.role)).collect()
}

/// The admin's consecutive second-factor failures.
async fn admin_failures(h: &Harness) -> u32 {
    let owner = mttrly_central::auth::resolve(&h.central.central, Some(&h.admin), mttrly_central::auth::Resource::Api)
        .await
        .unwrap();
    let mttrly_core::Principal::Human { user_id, .. } = &owner.principal else { panic!("{owner:?}") };
    let factor = h.central.central.db.account(&owner.account_id).people().factor(user_id).await.unwrap().unwrap();
    factor.lockout.failures
}

/// A refusal for want of the caller's own code (FORBIDDEN, detail `second_factor_code`).
#[track_caller]
fn wants_code(result: Result<impl std::fmt::Debug, tonic::Status>) {
    let err = result.unwrap_err();
    assert_eq!(code(&err), ErrorCode::Forbidden, "{err:?}");
    assert_eq!(body(&err).details()["second_factor_code"], "required", "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_admin_token_cannot_mint_admins_tokens_or_roles_past_the_accounts_second_factors() {
    let h = harness(|_| {}).await;
    // No admin has a factor yet: quickstart and automation flows stay code-free.
    let auto = add(&h, &h.admin, "auto", "operator", true, "").await.unwrap().token;
    assert!(auto.starts_with("mttrly_h_"));
    add(&h, &h.admin, "temp", "admin", true, "").await.unwrap();
    assert_eq!(set_role(&h, &h.admin, "temp", "viewer", "").await.unwrap(), "admin");

    let (secret, step, recovery) = enroll_totp(&h, &h.admin).await;
    let before = people(&h).await;
    // The review's chain: a new admin (token or link), a token of any role, an operator made
    // admin; each refused without the caller's code, and nothing changes.
    wants_code(add(&h, &h.admin, "eve", "admin", true, "").await);
    wants_code(add(&h, &h.admin, "eve", "admin", false, "").await);
    wants_code(add(&h, &h.admin, "mallory", "operator", true, "").await);
    wants_code(add(&h, &h.admin, "mallory", "viewer", true, "").await);
    wants_code(set_role(&h, &h.admin, "auto", "admin", "").await);
    assert_eq!(people(&h).await, before, "no user created, no role changed");
    assert_eq!(admin_failures(&h).await, 0, "a missing code is not a wrong one");
    assert!(audited(&h, "AddUser").await.iter().all(|p| p["name"] != "eve" && p["name"] != "mallory"));

    // What raises nobody stays code-free: an operator's invite link (they enrol on it), a
    // demotion.
    add(&h, &h.admin, "olga", "operator", false, "").await.unwrap();
    assert_eq!(set_role(&h, &h.admin, "olga", "viewer", "").await.unwrap(), "operator");

    // A wrong code: AUTH_FAILED, counted toward the admin's lockout, nothing created.
    let wrong = format!("{:06}", (secret.code_at(step + 1) + 1) % 1_000_000);
    let err = add(&h, &h.admin, "eve", "admin", true, &wrong).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed, "{err:?}");
    assert_eq!(admin_failures(&h).await, 1);
    let err = set_role(&h, &h.admin, "auto", "admin", &wrong).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed, "{err:?}");
    assert_eq!(admin_failures(&h).await, 2);
    assert!(!people(&h).await.iter().any(|(n, _)| n == "eve"));

    // The admin's own fresh code (TOTP, then recovery codes): each change goes through, audited.
    let ann = add(&h, &h.admin, "ann", "admin", true, &code_at(&secret, step + 1)).await.unwrap().token;
    assert_eq!(admin_failures(&h).await, 0, "a success clears the count");
    add(&h, &h.admin, "inv", "admin", false, &recovery[0]).await.unwrap();
    add(&h, &h.admin, "bot", "viewer", true, &recovery[1]).await.unwrap();
    assert_eq!(set_role(&h, &h.admin, "auto", "admin", &recovery[2]).await.unwrap(), "operator");
    let added = audited(&h, "AddUser").await;
    let ann_row = added.iter().find(|p| p["name"] == "ann").unwrap();
    assert_eq!(ann_row["second_factor_confirmed"], true, "{ann_row}");
    let roles = audited(&h, "SetUserRole").await;
    assert_eq!(roles.last().unwrap()["second_factor_confirmed"], true, "{roles:?}");
    // A spent recovery code is refused.
    let err = add(&h, &h.admin, "late", "viewer", true, &recovery[0]).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed, "{err:?}");

    // An admin with no factor of their own (ann, added by token) cannot do any of it: told how
    // to get one (an invite link: `mttrly-cli totp enroll` refuses a first factor here), with no
    // code that would help.
    for refused in [
        add(&h, &ann, "x1", "admin", false, "123456").await.map(drop),
        add(&h, &ann, "x2", "operator", true, "").await.map(drop),
        set_role(&h, &ann, "olga", "admin", "").await.map(drop),
    ] {
        let err = refused.unwrap_err();
        assert_eq!(code(&err), ErrorCode::Forbidden, "{err:?}");
        assert!(body(&err).message().contains("mttrly-cli users invite ann"), "{err:?}");
        assert!(body(&err).details().get("second_factor_code").is_none(), "{err:?}");
    }

    // The real CLI: without a code on stdin, `--output json` prints the refusal with the detail
    // and changes nothing; with one piped in, the token user is added.
    let out =
        cli(&h, &h.admin, &["--output", "json", "users", "add", "eve", "--role", "admin", "--print-token"], "").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["details"]["second_factor_code"], "required", "{err}");
    assert!(err["message"].as_str().unwrap().contains("no code entered"), "{err}");
    let out = cli(&h, &h.admin, &["--output", "json", "users", "set-role", "olga", "admin"], "").await;
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["details"]["second_factor_code"], "required", "{err}");
    assert!(!people(&h).await.iter().any(|(n, r)| n == "eve" || (n == "olga" && r == "admin")));
    let args = ["--output", "json", "users", "add", "eve", "--role", "admin", "--print-token"];
    let out = cli(&h, &h.admin, &args, &format!("{}\n", recovery[3])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(printed["token"].as_str().unwrap().starts_with("mttrly_h_"), "{printed}");
    let args = ["--output", "json", "users", "set-role", "olga", "admin"];
    let out = cli(&h, &h.admin, &args, &format!("{}\n", recovery[4])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(people(&h).await.iter().any(|(n, r)| n == "olga" && r == "admin"));
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_users_name_is_reused_only_with_the_callers_code_and_audited_as_such() {
    let h = harness(|_| {}).await;
    // Without factors in the account: reused code-free, but audited as a reuse.
    add(&h, &h.admin, "bob", "operator", false, "").await.unwrap();
    cli(&h, &h.admin, &["users", "remove", "bob"], "").await;
    add(&h, &h.admin, "bob", "operator", false, "").await.unwrap();
    let rows = audited(&h, "AddUser").await;
    assert_eq!(
        (rows[0]["reuses_removed_name"].clone(), rows[1]["reuses_removed_name"].clone()),
        (json!(false), json!(true))
    );

    // The admin enrols; bob (who approval rules may name as `user:bob`) is removed, and a new
    // bob, even an invited viewer, needs the admin's fresh code.
    let (_, _, recovery) = enroll_totp(&h, &h.admin).await;
    let out = cli(&h, &h.admin, &["users", "remove", "bob"], "").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wants_code(add(&h, &h.admin, "bob", "viewer", false, "").await);
    assert!(!people(&h).await.iter().any(|(n, _)| n == "bob"), "no user created");
    let err = add(&h, &h.admin, "bob", "viewer", false, "000000").await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed, "{err:?}");
    assert_eq!(admin_failures(&h).await, 1, "counted toward the lockout");
    // A name nobody used before needs nothing.
    add(&h, &h.admin, "bobby", "viewer", false, "").await.unwrap();
    add(&h, &h.admin, "bob", "viewer", false, &recovery[0]).await.unwrap();
    let rows = audited(&h, "AddUser").await;
    let last = rows.iter().rev().find(|p| p["name"] == "bob").unwrap();
    assert_eq!(
        (last["reuses_removed_name"].clone(), last["second_factor_confirmed"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(rows.iter().find(|p| p["name"] == "bobby").unwrap()["reuses_removed_name"], false);
    h.central.shutdown().await;
}

/// Red team R12, findings 1, 3 and 10 from the sides their own tests leave: every `UserService`
/// change and TOTP enrolment refuses a read-only or toolset-scoped token; once an admin has a
/// second factor, another person's first one by token is refused (the CLI says to ask for an
/// invite), the invite an admin confirms with their code gives it, and removing that person
/// then needs the admin's code, which the CLI asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrow_tokens_manage_nobody_and_a_first_factor_comes_through_an_invite_once_admins_use_them() {
    use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
    use mttrly_proto::central::v1::{CreateTokenRequest, RemoveUserRequest, StartTotpEnrollmentRequest};

    let h = harness(|_| {}).await;
    let bob = add_user(&h, "bob", "operator").await;
    let before = people(&h).await;
    for (read_only, toolsets) in [(true, ""), (false, "servers")] {
        let request =
            CreateTokenRequest { assistant_name: String::new(), human: true, read_only, toolsets: toolsets.into() };
        let narrow = AccountServiceClient::new(h.channel().await)
            .create_token(authed(&h.admin, request))
            .await
            .unwrap()
            .into_inner()
            .token;
        let remove = RemoveUserRequest { name: "bob".into(), second_factor_code: String::new() };
        let enrol = StartTotpEnrollmentRequest { current_code: String::new() };
        let refusals = [
            add(&h, &narrow, "eve", "viewer", false, "").await.map(drop),
            invite(&h, &narrow, "bob", "").await.map(drop),
            set_role(&h, &narrow, "bob", "viewer", "").await.map(drop),
            UserServiceClient::new(h.channel().await).remove_user(authed(&narrow, remove)).await.map(drop),
            UserServiceClient::new(h.channel().await).start_totp_enrollment(authed(&narrow, enrol)).await.map(drop),
        ];
        for refused in refusals {
            let err = refused.unwrap_err();
            assert_eq!(code(&err), ErrorCode::Forbidden, "read_only {read_only}, toolsets {toolsets:?}: {err:?}");
            assert!(body(&err).message().contains("cannot manage people"), "{err:?}");
        }
    }
    assert_eq!(people(&h).await, before, "nothing changed");

    // The admin enrols: the account uses second factors, and bob's first one by token is refused.
    let (secret, step, recovery) = enroll_totp(&h, &h.admin).await;
    let out = cli(&h, &bob, &["--output", "json", "totp", "enroll"], "").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["code"], "FORBIDDEN", "{err}");
    assert!(err["message"].as_str().unwrap().contains("ask an admin for `mttrly-cli users invite bob`"), "{err}");
    let status = |out: std::process::Output| serde_json::from_slice::<Value>(&out.stdout).unwrap()["enrolled"].clone();
    assert_eq!(status(cli(&h, &bob, &["--output", "json", "totp", "status"], "").await), false);
    // The invite, confirmed with the admin's code, gives him one.
    let url = invite(&h, &h.admin, "bob", &code_at(&secret, step + 1)).await.unwrap().invite_url;
    sign_up(&h, &url).await;
    assert_eq!(status(cli(&h, &bob, &["--output", "json", "totp", "status"], "").await), true);

    // Made an admin (which needs the admin's code), removing him now needs it too: without one
    // the CLI changes nothing, with one piped in he is removed, audited as confirmed. (An
    // operator with a factor is removed without one: that out-ranks nobody who keeps the gate.)
    set_role(&h, &h.admin, "bob", "admin", &recovery[1]).await.unwrap();
    let out = cli(&h, &h.admin, &["--output", "json", "users", "remove", "bob"], "").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["details"]["second_factor_code"], "required", "{err}");
    assert!(people(&h).await.iter().any(|(n, _)| n == "bob"));
    let out = cli(&h, &h.admin, &["--output", "json", "users", "remove", "bob"], &format!("{}\n", recovery[0])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!people(&h).await.iter().any(|(n, _)| n == "bob"));
    let removed = audited(&h, "RemoveUser").await;
    assert_eq!(removed.last().unwrap()["second_factor_confirmed"], true, "{removed:?}");
    h.central.shutdown().await;
}
