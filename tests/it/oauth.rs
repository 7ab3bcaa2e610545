//! OAuth 2.1 end to end over real HTTP: discovery, dynamic registration, the authorization code
//! with PKCE S256 through the consent page of a person signed in in the browser (central's own
//! sign-in, through `login::sign_up`), the token calling `/mcp`, refresh rotation and its replay
//! detection, the refusals (wrong verifier, reused code, wrong redirect, plain PKCE, another
//! resource, a consent without a session, without this session's CSRF token or from another
//! site), and the grant bound to the person (revoked with `tokens revoke oauth_…`, dead with
//! `users remove`).

use crate::common::urlencode;
use std::cell::RefCell;

use mttrly_tests::{RawResponse, TestCentral, http_request};
use serde_json::{Value, json};

use crate::login::{Browser, signed_in};

const VERIFIER: &str = "mttrly-test-verifier-0123456789-abcdefghijklmnop";
const CHALLENGE: &str = "C9Eh3DAjL3z19MNierO69n6t9wNopjgg6-J2xUBrGN0";
const REDIRECT: &str = "http://127.0.0.1:53682/callback";

fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&")
}

fn json_of(r: &RawResponse) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| {
            let mut out = Vec::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap_or(b'?'));
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    })
}

struct Flow<'a> {
    central: &'a TestCentral,
    client_id: String,
    resource: String,
    /// The person consenting, signed in.
    browser: RefCell<Browser>,
}

impl Flow<'_> {
    fn post_form(&self, path: &str, body: &str) -> RawResponse {
        http_request(
            &self.central.http_url,
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body,
        )
    }

    /// The consent form as the signed-in person's browser posts it, with `csrf` (this session's
    /// token unless a test says otherwise).
    fn authorize_with(&self, decision: &str, method: &str, csrf: Option<&str>) -> RawResponse {
        let mut browser = self.browser.borrow_mut();
        // One token per session: any of its forms carries it.
        let session_csrf = browser.csrf("/device");
        browser.post(
            "/oauth/authorize",
            &[
                ("response_type", "code"),
                ("client_id", &self.client_id),
                ("redirect_uri", REDIRECT),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", method),
                ("state", "xyz"),
                ("resource", &self.resource),
                ("scope", "mcp"),
                ("csrf", csrf.unwrap_or(&session_csrf)),
                ("decision", decision),
            ],
        )
    }

    fn authorize(&self, decision: &str, method: &str) -> RawResponse {
        self.authorize_with(decision, method, None)
    }

    fn code(&self) -> String {
        let r = self.authorize("approve", "S256");
        assert_eq!(r.status, 302, "{r:?}");
        let location = r.header("location").expect("location").to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(query_param(&location, "state").as_deref(), Some("xyz"));
        assert_eq!(query_param(&location, "iss").as_deref(), Some(self.central.http_url.as_str()));
        query_param(&location, "code").expect("code")
    }

    fn exchange(&self, code: &str, verifier: &str) -> RawResponse {
        self.post_form(
            "/oauth/token",
            &form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", REDIRECT),
                ("client_id", &self.client_id),
                ("resource", &self.resource),
            ]),
        )
    }

    fn refresh(&self, refresh: &str) -> RawResponse {
        self.post_form(
            "/oauth/token",
            &form(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", &self.client_id)]),
        )
    }

    fn mcp_initialize(&self, access: &str) -> RawResponse {
        let bearer = format!("Bearer {access}");
        let init = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "oauth-test", "version": "1" } }
        });
        http_request(
            &self.central.http_url,
            "POST",
            "/mcp",
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
            ],
            &init.to_string(),
        )
    }
}

#[test]
fn register_authorize_token_call_refresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let base = central.http_url.clone();

    // Discovery: the 401 points at the resource metadata, which points at the authorization server.
    let meta = json_of(&http_request(&base, "GET", "/.well-known/oauth-protected-resource/mcp", &[], ""));
    assert_eq!(meta["authorization_servers"][0], base.as_str());
    let resource = meta["resource"].as_str().expect("resource").to_owned();
    let as_meta = json_of(&http_request(&base, "GET", "/.well-known/oauth-authorization-server", &[], ""));
    assert_eq!(as_meta["issuer"], base.as_str());
    assert_eq!(as_meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(as_meta["registration_endpoint"], format!("{base}/oauth/register"));

    // Dynamic registration (RFC 7591); bad redirect URIs are refused.
    let bad = http_request(
        &base,
        "POST",
        "/oauth/register",
        &[("Content-Type", "application/json")],
        &json!({ "redirect_uris": ["http://evil.example/cb"] }).to_string(),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(json_of(&bad)["error"], "invalid_redirect_uri");
    let reg = http_request(
        &base,
        "POST",
        "/oauth/register",
        &[("Content-Type", "application/json")],
        &json!({ "redirect_uris": [REDIRECT], "client_name": "Test <Client>", "token_endpoint_auth_method": "none" })
            .to_string(),
    );
    assert_eq!(reg.status, 201, "{reg:?}");
    let client_id = json_of(&reg)["client_id"].as_str().expect("client_id").to_owned();
    let flow = Flow {
        central: &central,
        client_id,
        resource: resource.clone(),
        browser: RefCell::new(signed_in(&central, "ann", "admin")),
    };

    // Without a session, the authorization URL sends the browser to sign in and back to itself.
    let q = form(&[
        ("response_type", "code"),
        ("client_id", &flow.client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
        ("resource", &resource),
    ]);
    let authorize_url = format!("/oauth/authorize?{q}");
    let anonymous = http_request(&base, "GET", &authorize_url, &[], "");
    assert_eq!(anonymous.status, 303, "{anonymous:?}");
    assert_eq!(anonymous.header("location"), Some(format!("/signin?next={}", urlencode(&authorize_url)).as_str()));
    // Signed in: the consent page names the person and the client (escaped), with no token field.
    let page = flow.browser.borrow_mut().get(&authorize_url);
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("Test &lt;Client&gt;") && !page.body.contains("<Client>"), "{}", page.body);
    assert!(page.body.contains("Signed in as <b>ann</b>"), "{}", page.body);
    assert!(page.body.contains("name=\"csrf\"") && !page.body.contains("name=\"token\""), "{}", page.body);
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    // An unregistered redirect URI: a page, never a redirect, signed in or not.
    let evil = q.replace(&urlencode(REDIRECT), &urlencode("http://127.0.0.1:1/evil"));
    for refused in [
        http_request(&base, "GET", &format!("/oauth/authorize?{evil}"), &[], ""),
        flow.browser.borrow_mut().get(&format!("/oauth/authorize?{evil}")),
    ] {
        assert_eq!(refused.status, 400, "{refused:?}");
        assert!(refused.header("location").is_none());
    }

    // PKCE plain is refused (back to the client with an error); deny says so.
    let plain = flow.authorize("approve", "plain");
    assert_eq!(plain.status, 302);
    assert_eq!(query_param(plain.header("location").expect("loc"), "error").as_deref(), Some("invalid_request"));
    let denied = flow.authorize("deny", "S256");
    assert_eq!(query_param(denied.header("location").expect("loc"), "error").as_deref(), Some("access_denied"));
    // A consent without this session's CSRF token, from another site, or without a session is
    // refused with a page: no code, no redirect.
    let forged = flow.authorize_with("approve", "S256", Some("00"));
    assert_eq!((forged.status, forged.header("location")), (403, None), "{forged:?}");
    let csrf = flow.browser.borrow_mut().csrf("/device");
    let approve = [
        ("response_type", "code"),
        ("client_id", flow.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
        ("resource", resource.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", "approve"),
    ];
    let cross_site = flow.browser.borrow_mut().post_from("https://evil.example", "/oauth/authorize", &approve);
    assert_eq!((cross_site.status, cross_site.header("location")), (403, None), "{cross_site:?}");
    let no_session = flow.post_form("/oauth/authorize", &form(&approve));
    assert_eq!((no_session.status, no_session.header("location")), (401, None), "{no_session:?}");

    // The code, with the right verifier, once.
    let code = flow.code();
    let wrong_verifier = flow.exchange(&code, "another-verifier-0123456789-abcdefghijklmnopq");
    assert_eq!(json_of(&wrong_verifier)["error"], "invalid_grant");
    let code = flow.code();
    let tokens = flow.exchange(&code, VERIFIER);
    assert_eq!(tokens.status, 200, "{tokens:?}");
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    let t = json_of(&tokens);
    assert_eq!(t["token_type"], "Bearer");
    let access = t["access_token"].as_str().expect("access").to_owned();
    let refresh = t["refresh_token"].as_str().expect("refresh").to_owned();

    // The access token opens /mcp.
    assert_eq!(flow.mcp_initialize(&access).status, 200);
    assert_eq!(flow.mcp_initialize("mttrly_o_forged").status, 401);

    // Refresh rotates; the old refresh token used again revokes the whole sign-in.
    let rotated = json_of(&flow.refresh(&refresh));
    let access2 = rotated["access_token"].as_str().expect("access2").to_owned();
    let refresh2 = rotated["refresh_token"].as_str().expect("refresh2").to_owned();
    assert_ne!(refresh2, refresh);
    assert_eq!(flow.mcp_initialize(&access2).status, 200);
    assert_eq!(json_of(&flow.refresh(&refresh))["error"], "invalid_grant");
    assert_eq!(flow.mcp_initialize(&access2).status, 401, "replay revoked the family");
    assert_eq!(json_of(&flow.refresh(&refresh2))["error"], "invalid_grant");

    // A code used twice: the second use fails and revokes what the first one gave.
    let code3 = flow.code();
    let access3 = json_of(&flow.exchange(&code3, VERIFIER))["access_token"].as_str().expect("access3").to_owned();
    assert_eq!(flow.mcp_initialize(&access3).status, 200);
    assert_eq!(json_of(&flow.exchange(&code3, VERIFIER))["error"], "invalid_grant");
    assert_eq!(flow.mcp_initialize(&access3).status, 401, "a replayed code revokes its tokens");
    // A malformed verifier is refused before anything is looked up.
    assert_eq!(json_of(&flow.exchange(&flow.code(), "short"))["error"], "invalid_request");

    // The grant is the person's: listed as theirs, it acts as their assistant, and it ends when
    // revoked (`tokens revoke oauth_…`)…
    let code4 = flow.code();
    let signed4 = json_of(&flow.exchange(&code4, VERIFIER));
    let access4 = signed4["access_token"].as_str().expect("access4").to_owned();
    assert_eq!(flow.mcp_initialize(&access4).status, 200);
    let grants = central.cli_json(&["tokens", "list"]);
    let grant = grants
        .as_array()
        .expect("tokens")
        .iter()
        .rfind(|t| t["kind"] == "oauth" && t["owner"] == "ann")
        .unwrap_or_else(|| panic!("ann's grant in {grants}"))["id"]
        .as_str()
        .expect("id")
        .to_owned();
    central.cli_json(&["tokens", "revoke", &grant]);
    assert_eq!(flow.mcp_initialize(&access4).status, 401, "a revoked grant's access token is refused");
    assert_eq!(json_of(&flow.refresh(signed4["refresh_token"].as_str().expect("r4")))["error"], "invalid_grant");
    // …or when the person is removed (an operator here: the last admin cannot be).
    let olly = Flow {
        central: &central,
        client_id: flow.client_id.clone(),
        resource: resource.clone(),
        browser: RefCell::new(signed_in(&central, "olly", "operator")),
    };
    let olly_tokens = json_of(&olly.exchange(&olly.code(), VERIFIER));
    let olly_access = olly_tokens["access_token"].as_str().expect("access").to_owned();
    assert_eq!(olly.mcp_initialize(&olly_access).status, 200);
    central.cli_json(&["users", "remove", "olly"]);
    assert_eq!(olly.mcp_initialize(&olly_access).status, 401, "a removed person's grant is dead");
    assert_eq!(json_of(&olly.refresh(olly_tokens["refresh_token"].as_str().expect("r")))["error"], "invalid_grant");

    // Tokens are stored hashed: no token appears in the database file.
    let mut db = std::fs::read(central.data_dir.join("central.db")).expect("db");
    db.extend(std::fs::read(central.data_dir.join("central.db-wal")).unwrap_or_default());
    let text = String::from_utf8_lossy(&db);
    assert!(!text.contains(&access) && !text.contains(&refresh) && !text.contains(&code));
}

#[test]
fn a_token_for_another_resource_is_refused_at_mcp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let reg = http_request(
        &central.http_url,
        "POST",
        "/oauth/register",
        &[("Content-Type", "application/json")],
        &json!({ "redirect_uris": [REDIRECT] }).to_string(),
    );
    let client_id = json_of(&reg)["client_id"].as_str().expect("client_id").to_owned();
    let flow = Flow {
        central: &central,
        client_id,
        resource: "https://other.example/mcp".to_owned(),
        browser: RefCell::new(signed_in(&central, "ann", "admin")),
    };
    let r = flow.authorize("approve", "S256");
    assert_eq!(query_param(r.header("location").expect("loc"), "error").as_deref(), Some("invalid_target"));
}

/// Refreshing buys nothing: every access token of one sign-in is the same credential for the MCP
/// session cap (and the per-token rate limit, keyed the same way). Only a new sign-in, which a
/// human must consent to, is a new one.
#[test]
fn a_refreshed_access_token_shares_the_sign_ins_session_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start_with(dir.path(), &[], &[("MTTRLY_MCP_SESSIONS_PER_TOKEN", "1")], |_| {});
    let base = central.http_url.clone();
    let meta = json_of(&http_request(&base, "GET", "/.well-known/oauth-protected-resource/mcp", &[], ""));
    let resource = meta["resource"].as_str().expect("resource").to_owned();
    let reg = http_request(
        &base,
        "POST",
        "/oauth/register",
        &[("Content-Type", "application/json")],
        &json!({ "redirect_uris": [REDIRECT], "client_name": "cap", "token_endpoint_auth_method": "none" }).to_string(),
    );
    let client_id = json_of(&reg)["client_id"].as_str().expect("client_id").to_owned();
    let flow =
        Flow { central: &central, client_id, resource, browser: RefCell::new(signed_in(&central, "ann", "admin")) };
    let signed_in = json_of(&flow.exchange(&flow.code(), VERIFIER));
    let access = signed_in["access_token"].as_str().expect("access").to_owned();
    assert_eq!(flow.mcp_initialize(&access).status, 200);
    let refreshed = json_of(&flow.refresh(signed_in["refresh_token"].as_str().expect("refresh")));
    let access2 = refreshed["access_token"].as_str().expect("access2").to_owned();
    let refused = flow.mcp_initialize(&access2);
    assert_eq!(refused.status, 429, "a refreshed token opened a session beyond its sign-in's cap: {refused:?}");
    assert_eq!(json_of(&refused)["details"]["scope"], "mcp_sessions_per_token", "{refused:?}");
    let other = json_of(&flow.exchange(&flow.code(), VERIFIER));
    assert_eq!(flow.mcp_initialize(other["access_token"].as_str().expect("access3")).status, 200);
}
