//! Issue 12, people and tokens: users added with the real CLI, roles gating decisions (four eyes
//! on production with a second human), the last admin protected, tokens listed without secrets
//! and revoked at once on gRPC and on an open MCP session, and the tenant wall around all of it.

#![allow(clippy::unwrap_used)]

use mttrly_core::{ErrorCode, Plan};
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_proto::central::v1::{
    AddUserRequest, ListTokensRequest, ListUsersRequest, RemoveUserRequest, RevokeTokenRequest, WhoAmIRequest,
};
use mttrly_tests::TestCentral;
use serde_json::{Value, json};

use crate::common::{Harness, Mcp, authed, code, harness, http, urlencode};

/// The error body a failed `--output json` CLI call printed on stderr.
fn cli_error(out: &std::process::Output) -> Value {
    assert_eq!(out.status.code(), Some(1), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    serde_json::from_slice(&out.stderr).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The value with every id, secret and time replaced by its shape, for a stable snapshot.
fn masked(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        (_, Value::Null) => Value::Null,
                        (
                            "user_id" | "owner_id" | "account_id" | "id" | "token_id" | "token" | "created_at"
                            | "last_used_at",
                            v,
                        ) => {
                            let s = v.as_str().unwrap_or_default();
                            let shape = s.split_once('_').map_or("time", |(prefix, _)| prefix);
                            Value::String(format!("[{shape}]"))
                        }
                        (_, v) => masked(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

fn cli_json_as(central: &TestCentral, token: &str, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = central.cli_as(token, &all);
    assert!(out.status.success(), "mttrly-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn error_as(central: &TestCentral, token: &str, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    cli_error(&central.cli_as(token, &all))
}

#[test]
fn a_second_human_approves_what_the_admins_assistant_asked_for_on_production() {
    let dir = tempfile::tempdir().unwrap();
    let central = TestCentral::start(dir.path());
    let admin = central.admin_token.clone();

    // Without --print-token, an invite link (the browser flow is tests/it/signin.rs); the invited
    // user is removed again so the rest of this scenario sees three people.
    let invited = cli_json_as(&central, &admin, &["users", "add", "dee", "--role", "viewer"]);
    assert!(invited["invite_url"].as_str().unwrap().contains("/invite/"), "{invited}");
    assert!(invited.get("token").is_none(), "{invited}");
    cli_json_as(&central, &admin, &["users", "remove", "dee"]);

    // The issue's grammar: a bare `--token` asks for the new user's token; the admin's own comes
    // from MTTRLY_TOKEN.
    let out = std::process::Command::new(mttrly_tests::binary("mttrly-cli"))
        .args(["--central", &central.grpc_url, "--output", "json"])
        .args(["users", "add", "bob", "--role", "operator", "--email", "bob@example.com", "--token"])
        .env("MTTRLY_TOKEN", &admin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bob: Value = serde_json::from_slice(&out.stdout).unwrap();
    insta::assert_json_snapshot!("users_add_json", masked(&bob));
    // A bare `--token` anywhere else is a mistake, said as such.
    let err = error_as(&central, &admin, &["servers", "list", "--token"]);
    assert_eq!(err["code"], "VALIDATION_ERROR", "{err}");
    assert_eq!(bob["name"], "bob");
    assert_eq!(bob["role"], "operator");
    assert!(bob["user_id"].as_str().unwrap().starts_with("usr_"), "{bob}");
    let bob_token = bob["token"].as_str().unwrap().to_owned();
    assert!(bob_token.starts_with("mttrly_h_"));
    let vic = cli_json_as(&central, &admin, &["users", "add", "vic", "--role", "viewer", "--print-token"]);
    let vic_token = vic["token"].as_str().unwrap().to_owned();

    // Names are unique and checked, e-mails shaped.
    for (args, field) in [
        (vec!["users", "add", "bob", "--role", "viewer", "--print-token"], "name"),
        (vec!["users", "add", "bad name", "--role", "viewer", "--print-token"], "name"),
        (vec!["users", "add", "eve", "--role", "viewer", "--email", "not-an-address", "--print-token"], "email"),
    ] {
        let err = error_as(&central, &admin, &args);
        assert_eq!(err["code"], "VALIDATION_ERROR", "{args:?}: {err}");
        assert_eq!(err["details"]["field"], field, "{args:?}: {err}");
    }

    let listed = cli_json_as(&central, &admin, &["users", "list"]);
    insta::assert_json_snapshot!("users_list_json", masked(&listed));
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|u| u["name"].as_str()).collect();
    assert_eq!(names.len(), 3, "{listed}");
    assert!(names.contains(&"bob") && names.contains(&"vic"), "{listed}");
    assert_eq!(listed.as_array().unwrap().iter().find(|u| u["name"] == "bob").unwrap()["email"], "bob@example.com");

    let me = cli_json_as(&central, &bob_token, &["whoami"]);
    insta::assert_json_snapshot!("whoami_json", masked(&me));
    assert_eq!((me["user_name"].as_str(), me["role"].as_str()), (Some("bob"), Some("operator")), "{me}");

    // Only admins manage users.
    for token in [&bob_token, &vic_token] {
        let err = error_as(&central, token, &["users", "add", "mallory", "--role", "admin", "--print-token"]);
        assert_eq!(err["code"], "FORBIDDEN", "{err}");
        assert_eq!(error_as(&central, token, &["users", "remove", "vic"])["code"], "FORBIDDEN");
    }

    // The admin's assistant asks for a change on a production server.
    let server_id =
        central.cli_json(&["servers", "add", "db-1", "--env", "production"])["server_id"].as_str().unwrap().to_owned();
    let assistant = central.assistant_token("claude-code");
    let asked = central.call_tool(&assistant, "mttrly_regenerate_install_token", &json!({ "server_id": server_id }));
    assert_eq!(asked["status"], "pending_approval", "{asked}");
    let id = asked["action_id"].as_str().unwrap().to_owned();

    // Four eyes: the admin behind the assistant cannot approve it; a viewer never decides.
    let err = error_as(&central, &admin, &["actions", "approve", &id, "--yes"]);
    assert_eq!(err["code"], "FORBIDDEN", "{err}");
    assert!(err["message"].as_str().unwrap().contains("four-eyes"), "{err}");
    assert_eq!(central.cli_json(&["actions", "show", &id])["status"], "pending_approval");
    assert_eq!(error_as(&central, &vic_token, &["actions", "approve", &id, "--yes"])["code"], "FORBIDDEN");
    assert_eq!(central.cli_json(&["actions", "show", &id])["status"], "pending_approval");

    // Bob, an operator, approves it and it runs, once.
    let approved = cli_json_as(&central, &bob_token, &["actions", "approve", &id, "--yes"]);
    assert_eq!(approved["status"], "succeeded", "{approved}");
    let again = error_as(&central, &bob_token, &["actions", "approve", &id, "--yes"]);
    assert_ne!(again["code"], "INTERNAL_ERROR", "an action runs once, refused cleanly: {again}");
    assert_eq!(central.cli_json(&["actions", "show", &id])["status"], "succeeded");

    // Everything about people is audited, and no token reached the log.
    let audit = central.cli_json(&["audit", "list", "--limit", "200"]);
    let text = audit.to_string();
    assert!(text.contains("AddUser"), "{audit}");
    assert!(!text.contains(&bob_token) && !text.contains(&vic_token), "a token in the audit log");
}

#[test]
fn roles_change_the_last_admin_stays_and_a_removed_user_is_locked_out_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let central = TestCentral::start(dir.path());
    let admin = central.admin_token.clone();
    let admin_name = cli_json_as(&central, &admin, &["whoami"])["user_name"].as_str().unwrap().to_owned();
    let before = cli_json_as(&central, &admin, &["users", "list"]);

    // The last admin can be neither demoted nor removed; state untouched.
    let err = error_as(&central, &admin, &["users", "set-role", &admin_name, "operator"]);
    assert_eq!(err["code"], "VALIDATION_ERROR", "{err}");
    assert!(err["message"].as_str().unwrap().contains("last admin"), "{err}");
    let err = error_as(&central, &admin, &["users", "remove", &admin_name]);
    assert!(err["message"].as_str().unwrap().contains("last admin"), "{err}");
    assert_eq!(cli_json_as(&central, &admin, &["users", "list"]), before);
    assert_eq!(error_as(&central, &admin, &["users", "remove", "nobody"])["code"], "NOT_FOUND");

    let bob = cli_json_as(&central, &admin, &["users", "add", "bob", "--role", "viewer", "--print-token"]);
    let bob_token = bob["token"].as_str().unwrap().to_owned();
    assert_eq!(cli_json_as(&central, &bob_token, &["whoami"])["role"], "viewer");
    let changed = cli_json_as(&central, &admin, &["users", "set-role", "bob", "admin"]);
    assert_eq!(changed["previous_role"], "viewer");
    assert_eq!(cli_json_as(&central, &bob_token, &["whoami"])["role"], "admin", "effective at once");

    // With two admins, one may step down; then bob is the last one.
    cli_json_as(&central, &bob_token, &["users", "set-role", &admin_name, "operator"]);
    assert_eq!(error_as(&central, &bob_token, &["users", "set-role", "bob", "viewer"])["code"], "VALIDATION_ERROR");
    cli_json_as(&central, &bob_token, &["users", "set-role", &admin_name, "admin"]);

    let removed = cli_json_as(&central, &admin, &["users", "remove", "bob"]);
    assert_eq!(removed["user_id"], bob["user_id"]);
    assert_eq!(removed["revoked_tokens"], 1);
    assert_eq!(error_as(&central, &bob_token, &["whoami"])["code"], "AUTH_FAILED", "bob's token died with him");
    let names: Vec<String> = cli_json_as(&central, &admin, &["users", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["name"].as_str().map(str::to_owned))
        .collect();
    assert!(!names.contains(&"bob".to_owned()), "{names:?}");
    // The name is free again; the history of the removed bob stays in the audit log.
    cli_json_as(&central, &admin, &["users", "add", "bob", "--role", "viewer", "--print-token"]);
    let audit = central.cli_json(&["audit", "list", "--limit", "200"]).to_string();
    assert!(audit.contains("RemoveUser") && audit.contains(bob["user_id"].as_str().unwrap()), "{audit}");
}

#[test]
fn tokens_are_listed_without_secrets_and_revoked_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let central = TestCentral::start(dir.path());
    let admin = central.admin_token.clone();
    let assistant = central.assistant_token("claude-code");
    let bob = cli_json_as(&central, &admin, &["users", "add", "bob", "--role", "operator", "--print-token"]);
    let bob_token = bob["token"].as_str().unwrap().to_owned();
    // Used, so a last use is recorded (written off the request, at most once a minute).
    mttrly_tests::wait_for("bob's last use recorded", std::time::Duration::from_secs(5), || {
        cli_json_as(&central, &bob_token, &["tokens", "list"])[0]["last_used_at"].is_string().then_some(())
    });

    let listed = cli_json_as(&central, &admin, &["tokens", "list"]);
    insta::assert_json_snapshot!("tokens_list_json", masked(&listed));
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 3, "the admin's, the assistant's and bob's: {listed}");
    let text = listed.to_string();
    for secret in [&admin, &assistant, &bob_token] {
        assert!(!text.contains(secret.as_str()), "a secret in tokens list");
    }
    assert!(!text.contains("mttrly_h_") && !text.contains("mttrly_a_"), "{text}");
    for row in rows {
        assert!(row["id"].as_str().unwrap().starts_with("tkn_"), "{row}");
        assert!(row["created_at"].is_string(), "{row}");
    }
    let assistant_row = rows.iter().find(|r| r["kind"] == "assistant").unwrap();
    assert_eq!(assistant_row["name"], "claude-code");
    let assistant_id = assistant_row["id"].as_str().unwrap().to_owned();
    let admin_row = rows.iter().find(|r| r["kind"] == "human" && r["owner"] != "bob").unwrap();
    let admin_id = admin_row["id"].as_str().unwrap().to_owned();
    assert!(admin_row["last_used_at"].is_string(), "the admin's token was used: {admin_row}");

    // A non-admin sees only their own, and cannot revoke another's (it looks missing).
    let mine = cli_json_as(&central, &bob_token, &["tokens", "list"]);
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["owner"], "bob");
    assert_eq!(error_as(&central, &bob_token, &["tokens", "revoke", &admin_id])["code"], "NOT_FOUND");
    assert_eq!(cli_json_as(&central, &admin, &["whoami"])["role"], "admin");
    // An assistant manages no tokens.
    assert_eq!(error_as(&central, &assistant, &["tokens", "list"])["code"], "FORBIDDEN");

    // The admin revokes the assistant's token: it fails at once.
    cli_json_as(&central, &admin, &["tokens", "revoke", &assistant_id]);
    assert_eq!(error_as(&central, &assistant, &["whoami"])["code"], "AUTH_FAILED");
    assert_eq!(error_as(&central, &admin, &["tokens", "revoke", &assistant_id])["code"], "NOT_FOUND", "once");
    assert_eq!(cli_json_as(&central, &admin, &["tokens", "list"]).as_array().unwrap().len(), 2);
}

impl Harness {
    /// Adds a user through `UserService.AddUser` with a token; returns the token.
    async fn add_user(&self, name: &str, role: &str) -> String {
        UserServiceClient::new(self.channel().await)
            .add_user(authed(
                &self.admin,
                AddUserRequest {
                    name: name.into(),
                    role: role.into(),
                    email: String::new(),
                    issue_token: true,
                    second_factor_code: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .token
    }

    async fn who(&self, token: &str) -> Result<String, ErrorCode> {
        AccountServiceClient::new(self.channel().await)
            .who_am_i(authed(token, WhoAmIRequest {}))
            .await
            .map(|r| r.into_inner().user_name)
            .map_err(|s| code(&s))
    }

    /// The next call on an open MCP session: its HTTP status.
    async fn mcp_status(&self, token: &str, session: &str) -> u16 {
        let call = json!({
            "jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": { "name": "mttrly_list_servers", "arguments": {} }
        });
        let bearer = format!("Bearer {token}");
        http(self.central.http_addr, "POST", &Mcp::headers(&bearer, Some(session)), &call.to_string()).await.0
    }
}

#[tokio::test]
async fn removing_a_user_or_revoking_a_token_ends_open_mcp_sessions_at_once() {
    let h = harness(|_| {}).await;
    let bob = h.add_user("bob", "operator").await;
    let carol = h.add_user("carol", "operator").await;
    let mut sessions = Vec::new();
    for token in [&bob, &carol] {
        let mcp = Mcp { addr: h.central.http_addr, token: token.clone(), client: "claude-code" };
        let session = mcp.open().await.unwrap();
        assert_eq!(mcp.call(&session, "mttrly_list_servers").await["result"]["isError"], false);
        assert_eq!(h.mcp_status(token, &session).await, 200);
        sessions.push(session);
    }

    // Carol's token revoked by id: refused on gRPC and on her open MCP session, at once.
    let tokens = AccountServiceClient::new(h.channel().await)
        .list_tokens(authed(&h.admin, ListTokensRequest {}))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    let carol_id = tokens.iter().find(|t| t.owner_name == "carol").unwrap().id.clone();
    AccountServiceClient::new(h.channel().await)
        .revoke_token(authed(&h.admin, RevokeTokenRequest { id: carol_id }))
        .await
        .unwrap();
    assert_eq!(h.who(&carol).await, Err(ErrorCode::AuthFailed));
    assert_eq!(h.mcp_status(&carol, &sessions[1]).await, 401);

    // Bob removed: the same, for every token of his.
    assert_eq!(h.who(&bob).await.as_deref(), Ok("bob"));
    UserServiceClient::new(h.channel().await)
        .remove_user(authed(&h.admin, RemoveUserRequest { name: "bob".into(), second_factor_code: String::new() }))
        .await
        .unwrap();
    assert_eq!(h.who(&bob).await, Err(ErrorCode::AuthFailed));
    assert_eq!(h.mcp_status(&bob, &sessions[0]).await, 401);
    h.central.shutdown().await;
}

#[tokio::test]
async fn another_accounts_admin_can_neither_see_nor_touch_these_users_and_tokens() {
    let h = harness(|_| {}).await;
    let bob = h.add_user("bob", "operator").await;
    let eve = mttrly_central::secrets::generate(mttrly_central::secrets::SecretKind::Human);
    h.central
        .central
        .db
        .create_tenant("other", Plan::DeploymentCrew, "eve", &mttrly_central::secrets::hash(&eve))
        .await
        .unwrap();

    let users = UserServiceClient::new(h.channel().await)
        .list_users(authed(&eve, ListUsersRequest {}))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["eve"]);
    let tokens = AccountServiceClient::new(h.channel().await)
        .list_tokens(authed(&eve, ListTokensRequest {}))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert!(tokens.iter().all(|t| t.owner_name == "eve"), "{tokens:?}");

    let bobs = AccountServiceClient::new(h.channel().await)
        .list_tokens(authed(&h.admin, ListTokensRequest {}))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    let bob_id = bobs.iter().find(|t| t.owner_name == "bob").unwrap().id.clone();
    let err = AccountServiceClient::new(h.channel().await)
        .revoke_token(authed(&eve, RevokeTokenRequest { id: bob_id }))
        .await
        .unwrap_err();
    assert_eq!(code(&err), ErrorCode::NotFound);
    let err = UserServiceClient::new(h.channel().await)
        .remove_user(authed(&eve, RemoveUserRequest { name: "bob".into(), second_factor_code: String::new() }))
        .await
        .unwrap_err();
    assert_eq!(code(&err), ErrorCode::NotFound);
    assert_eq!(h.who(&bob).await.as_deref(), Ok("bob"), "bob is untouched");
    h.central.shutdown().await;
}

/// An MCP client authorized through OAuth (registration, consent by the person signed in in
/// `browser`, code exchange with PKCE): its access token.
fn oauth_access_token(central: &TestCentral, browser: &mut crate::login::Browser) -> String {
    use mttrly_tests::http_request;
    const VERIFIER: &str = "mttrly-test-verifier-0123456789-abcdefghijklmnop";
    const CHALLENGE: &str = "C9Eh3DAjL3z19MNierO69n6t9wNopjgg6-J2xUBrGN0";
    const REDIRECT: &str = "http://127.0.0.1:53682/callback";
    let base = &central.http_url;
    let form = |pairs: &[(&str, &str)]| {
        pairs.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&")
    };
    let post = |path: &str, body: &str| {
        http_request(base, "POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], body)
    };
    let meta: Value =
        serde_json::from_str(&http_request(base, "GET", "/.well-known/oauth-protected-resource/mcp", &[], "").body)
            .unwrap();
    let resource = meta["resource"].as_str().unwrap().to_owned();
    let reg = http_request(
        base,
        "POST",
        "/oauth/register",
        &[("Content-Type", "application/json")],
        &json!({ "redirect_uris": [REDIRECT], "client_name": "Cursor", "token_endpoint_auth_method": "none" })
            .to_string(),
    );
    let client_id = serde_json::from_str::<Value>(&reg.body).unwrap()["client_id"].as_str().unwrap().to_owned();
    let csrf = browser.csrf("/device");
    let consent = browser.post(
        "/oauth/authorize",
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "s"),
            ("resource", &resource),
            ("scope", "mcp"),
            ("csrf", &csrf),
            ("decision", "approve"),
        ],
    );
    assert_eq!(consent.status, 302, "{consent:?}");
    let location = consent.header("location").unwrap().to_owned();
    let code = location.split(['?', '&']).find_map(|kv| kv.strip_prefix("code=")).unwrap().to_owned();
    let exchanged = post(
        "/oauth/token",
        &form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("resource", &resource),
        ]),
    );
    assert_eq!(exchanged.status, 200, "{exchanged:?}");
    serde_json::from_str::<Value>(&exchanged.body).unwrap()["access_token"].as_str().unwrap().to_owned()
}

/// The status of an MCP `initialize` with this bearer.
fn mcp_initialize_status(central: &TestCentral, bearer: &str) -> u16 {
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
    });
    mttrly_tests::http_request(
        &central.http_url,
        "POST",
        "/mcp",
        &[
            ("Authorization", &format!("Bearer {bearer}")),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        &init.to_string(),
    )
    .status
}

#[test]
fn oauth_grants_are_listed_as_tokens_and_revoked_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let central = TestCentral::start(dir.path());
    let admin = central.admin_token.clone();
    let bob = cli_json_as(&central, &admin, &["users", "add", "bob", "--role", "operator", "--print-token"]);
    let bob_token = bob["token"].as_str().unwrap().to_owned();
    // Consent is given in bob's signed-in browser (an invite sets his password and TOTP).
    let invite = cli_json_as(&central, &admin, &["users", "invite", "bob"]);
    let mut browser = crate::login::sign_up(&central.http_url, invite["invite_url"].as_str().unwrap());
    let access = oauth_access_token(&central, &mut browser);
    assert_eq!(mcp_initialize_status(&central, &access), 200);

    let mine = cli_json_as(&central, &bob_token, &["tokens", "list"]);
    let grant = mine.as_array().unwrap().iter().find(|t| t["kind"] == "oauth").unwrap_or_else(|| panic!("{mine}"));
    assert_eq!((grant["owner"].as_str(), grant["name"].as_str()), (Some("bob"), Some("Cursor")), "{grant}");
    assert!(grant["created_at"].is_string(), "{grant}");
    let grant_id = grant["id"].as_str().unwrap().to_owned();
    assert!(grant_id.starts_with("oauth_"), "{grant_id}");
    assert!(!mine.to_string().contains(&access), "never the secret");
    // The admin sees it too; another non-admin would not (bob revokes his own).
    assert!(cli_json_as(&central, &admin, &["tokens", "list"]).to_string().contains(&grant_id));

    cli_json_as(&central, &bob_token, &["tokens", "revoke", &grant_id]);
    assert_eq!(mcp_initialize_status(&central, &access), 401, "the grant's access token dies at once");
    let after = cli_json_as(&central, &bob_token, &["tokens", "list"]);
    assert!(!after.to_string().contains(&grant_id), "{after}");
    assert_eq!(mcp_initialize_status(&central, &bob_token), 200, "bob's own token lives on");
}
