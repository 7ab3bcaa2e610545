//! Issue 12 review fixes. An admin token alone cannot take over someone's second factor: a
//! re-invite (whose link sets a new password and TOTP secret) of a user with an enrolled factor
//! needs the calling admin's own fresh code, an admin without a factor cannot do it, nobody
//! re-invites themselves past their own factor, the audit says when a factor was reset, and a
//! link issued while there was no factor dies when one is enrolled.
//! Four eyes against an admin's sock puppet: an approval by someone the requester's own human
//! added or re-invited is allowed but marked, in the audit and in `actions show`.

#![allow(clippy::unwrap_used)]

use mttrly_core::ErrorCode;
use mttrly_proto::central::v1::audit_service_client::AuditServiceClient;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_proto::central::v1::{InviteUserRequest, InviteUserResponse, ListAuditRequest};
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

    // Someone without a factor is re-invited as before: no code asked, nothing reset.
    add_user(&h, "carol", "viewer").await;
    invite(&h, &h.admin, "carol", "").await.unwrap();
    let invites = audited(&h, "InviteUser").await;
    assert_eq!(invites.last().unwrap()["name"], "carol");
    assert_eq!(invites.last().unwrap()["resets_second_factor"], false, "{invites:?}");

    // The CLI: no prompt for carol (empty stdin is fine); for bob (enrolled again through the
    // link) it reads the admin's code from one line of stdin, as a script pipes it.
    let out = cli(&h, &h.admin, &["--output", "json", "users", "invite", "carol"], "").await;
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

    // Someone another admin added is not marked.
    let ann = add_user(&h, "ann", "admin").await;
    let dave = UserServiceClient::new(h.channel().await)
        .add_user(authed(
            &ann,
            mttrly_proto::central::v1::AddUserRequest {
                name: "dave".into(),
                role: "operator".into(),
                email: String::new(),
                issue_token: true,
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
    h.central.shutdown().await;
}

/// The parameters of the successful approval of `action` in the audit log.
async fn audited_decision(h: &Harness, action: &str) -> Value {
    let rows = audited(h, action).await;
    rows.into_iter().find(|p| p["decision"] == "approve").unwrap_or_else(|| panic!("no approval of {action}"))
}
