//! Issue 12, single sign-on: central against a real, certified OpenID provider (panva's
//! `oidc-provider`, `tests/oidc/provider.mjs`) run on loopback, driven through the provider's own
//! login and consent pages by a cookie-keeping HTTP client, as a browser would.
//!
//! Covered: sign-in matched by verified e-mail, then by the bound subject; the session at central;
//! the teammate flow with SSO (`mttrly-cli login` approved after SSO, a production action
//! the admin's assistant asked for approved by the teammate and not by the admin, run once, the
//! token revoked and refused at once on gRPC and `/mcp`); an MCP client's OAuth consent after SSO;
//! the refusals (wrong state, replayed callback and reused code, callback in another browser,
//! nonce mismatch, unverified e-mail, domain not allowed, unknown user, removed user, another
//! tenant's user, open redirect through `next`), each with nothing created; just-in-time creation
//! with the mapped role and lowering (never raising) a matched user's role; a misconfigured
//! provider stopping central at start with `VALIDATION_ERROR`.
//!
//! The provider's npm dependencies are installed on first use (`npm ci`, once per machine, under a
//! file lock) when `.ci/run` has not already done it, so a plain `cargo test` on a fresh clone
//! runs these too (it needs `node` and `npm` on the PATH).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use mttrly_central::config::Config;
use mttrly_central::secrets;
use mttrly_central::signin::oidc::config::{ClientSecret, OidcConfig};
use mttrly_core::ids::AccountId;
use mttrly_core::{ErrorCode, Plan, Role};
use serde_json::{Value, json};

use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::login_service_client::LoginServiceClient;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::{
    AddServerRequest, ApproveActionRequest, CreateTokenRequest, PollDeviceLoginRequest, PollDeviceLoginResponse,
    RevokeTokenRequest, StartDeviceLoginRequest, WhoAmIRequest, WhoAmIResponse,
};

use crate::common::{Harness, harness, urlencode};

const CLIENT_ID: &str = "mttrly-central";
const CLIENT_SECRET: &str = "a-test-client-secret-0123456789";

/// `tests/oidc`.
fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

/// Installs the provider's npm dependencies unless they are current: once per test process, and
/// under a file lock so test processes started side by side do not run `npm ci` over each other.
/// The same check as `.ci/run`: `node_modules/.package-lock.json` (npm writes it) at least as
/// new as `package-lock.json`.
fn ensure_provider_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = provider_dir();
        let lock = std::fs::File::create(std::env::temp_dir().join("mttrly-tests-oidc-npm.lock")).unwrap();
        lock.lock().unwrap();
        let installed = dir.join("node_modules/.package-lock.json");
        let current = match (std::fs::metadata(&installed), std::fs::metadata(dir.join("package-lock.json"))) {
            (Ok(i), Ok(l)) => i.modified().unwrap() >= l.modified().unwrap(),
            _ => false,
        };
        if !current {
            let out = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .output()
                .expect("npm is needed to install the test OpenID provider (tests/oidc)");
            assert!(
                out.status.success(),
                "npm ci in {} failed:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        lock.unlock().unwrap();
    });
}

/// A person known to the provider.
fn person(sub: &str, email: &str, verified: bool, groups: &[&str]) -> Value {
    json!({ "sub": sub, "email": email, "email_verified": verified, "groups": groups, "name": sub })
}

/// The real OpenID provider, killed when dropped.
struct Provider {
    child: Child,
    issuer: String,
    _config: tempfile::NamedTempFile,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// Starts the provider for one client redirecting to `redirect_uri`, with these people.
    fn start(redirect_uri: &str, accounts: &[Value]) -> Self {
        ensure_provider_installed();
        let config = tempfile::NamedTempFile::new().unwrap();
        let body = json!({
            "port": 0,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [redirect_uri],
            "accounts": accounts,
        });
        std::fs::write(config.path(), body.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(provider_dir().join("provider.mjs"))
            .arg(config.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node is needed to run the test OpenID provider");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(issuer) = line.strip_prefix("listening ") {
                    let _ = tx.send(issuer.to_owned());
                }
            }
        });
        let issuer = rx.recv_timeout(Duration::from_secs(30)).expect("the OpenID provider starts");
        Self { child, issuer, _config: config }
    }
}

/// A free loopback port for central's HTTP listener: the provider must know central's redirect URI
/// before central (which reads the provider's discovery at start) exists.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn oidc_config(issuer: &str, tune: impl FnOnce(&mut OidcConfig)) -> OidcConfig {
    let mut config = OidcConfig {
        issuer: issuer.to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret_env: "MTTRLY_TEST_OIDC_SECRET_NOT_READ".to_owned(),
        allowed_domains: vec!["example.com".to_owned()],
        role_claim: None,
        role_map: BTreeMap::new(),
        create_users: false,
        scopes: vec!["groups".to_owned()],
        display_name: Some("Test IdP".to_owned()),
        account: None,
        client_secret: Some(ClientSecret(CLIENT_SECRET.to_owned())),
    };
    tune(&mut config);
    config
}

/// A provider with `accounts` and a central using it, configured by `tune`.
async fn sso(accounts: &[Value], tune: impl FnOnce(&mut OidcConfig)) -> (Provider, Harness) {
    let port = free_port();
    let provider = Provider::start(&format!("http://127.0.0.1:{port}/signin/oidc/callback"), accounts);
    let oidc = oidc_config(&provider.issuer, tune);
    let h = harness(move |c: &mut Config| {
        c.http_listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        c.oidc = Some(oidc);
    })
    .await;
    (provider, h)
}

/// A browser: keeps cookies (by name and path, as the provider scopes its own), follows nothing
/// on its own.
struct Browser {
    http: reqwest::Client,
    jar: BTreeMap<(String, String), String>,
}

/// What a request answered.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new() -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, jar: BTreeMap::new() }
    }

    fn cookie_header(&self, url: &str) -> String {
        let path = reqwest::Url::parse(url).unwrap().path().to_owned();
        self.jar
            .iter()
            .filter(|((_, p), _)| path.starts_with(p.as_str()))
            .map(|((name, _), value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let mut parts = set.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let mut path = "/".to_owned();
            let mut gone = value.is_empty();
            for attr in parts {
                let lower = attr.to_ascii_lowercase();
                if lower.starts_with("path=") {
                    attr[5..].clone_into(&mut path);
                }
                if lower == "max-age=0" || lower.starts_with("expires=thu, 01 jan 1970") {
                    gone = true;
                }
            }
            if gone {
                self.jar.remove(&(name.to_owned(), path));
            } else {
                self.jar.insert((name.to_owned(), path), value.to_owned());
            }
        }
    }

    /// The value of a cookie, whatever its path.
    fn cookie(&self, name: &str) -> Option<String> {
        self.jar.iter().find(|((n, _), _)| n == name).map(|(_, v)| v.clone())
    }

    async fn send(&mut self, request: reqwest::RequestBuilder, url: &str) -> Answer {
        let cookies = self.cookie_header(url);
        let request = if cookies.is_empty() { request } else { request.header(reqwest::header::COOKIE, cookies) };
        let response = request.send().await.unwrap();
        self.keep(&response);
        let status = response.status().as_u16();
        let location = response.headers().get(reqwest::header::LOCATION).map(|l| {
            let base = reqwest::Url::parse(url).unwrap();
            base.join(l.to_str().unwrap()).unwrap().to_string()
        });
        Answer { status, location, body: response.text().await.unwrap() }
    }

    async fn get(&mut self, url: &str) -> Answer {
        self.send(self.http.get(url), url).await
    }

    async fn post(&mut self, url: &str, form: &[(String, String)]) -> Answer {
        let body = form.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect::<Vec<_>>().join("&");
        let request =
            self.http.post(url).header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(body);
        self.send(request, url).await
    }

    /// Starts a sign-in at central and goes through the provider's pages as `login`, up to the
    /// redirect back to central's callback, which is returned unvisited.
    async fn through_provider(&mut self, central: &str, next: Option<&str>, login: &str) -> String {
        let mut url = format!("{central}/signin/oidc");
        if let Some(next) = next {
            url = format!("{url}?next={}", urlencode(next));
        }
        let callback = format!("{central}/signin/oidc/callback");
        for _ in 0..20 {
            let answer = self.get(&url).await;
            url = match (answer.status, answer.location) {
                (302 | 303, Some(location)) if location.starts_with(&callback) => return location,
                (302 | 303, Some(location)) => location,
                (200, None) => {
                    let (action, fields) = form_of(&answer.body);
                    let form: Vec<(String, String)> = fields
                        .into_iter()
                        .map(|(name, value)| match name.as_str() {
                            "login" => (name, login.to_owned()),
                            "password" => (name, "any password".to_owned()),
                            _ => (name, value),
                        })
                        .collect();
                    let posted = self.post(&action, &form).await;
                    assert!(
                        matches!(posted.status, 302 | 303),
                        "{} after posting {action}: {}",
                        posted.status,
                        posted.body
                    );
                    posted.location.unwrap()
                }
                (status, _) => panic!("{status} at {url}: {}", answer.body),
            };
        }
        panic!("the provider never sent the browser back");
    }

    /// A whole sign-in: the provider's pages, then the callback at central.
    async fn sign_in(&mut self, central: &str, next: Option<&str>, login: &str) -> Answer {
        let callback = self.through_provider(central, next, login).await;
        self.get(&callback).await
    }
}

/// The first form of a page: its action and its inputs (name, value).
fn form_of(html: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let start = tag.find(&key)? + key.len();
        Some(tag[start..].split('"').next()?.to_owned())
    };
    let form_start = html.find("<form").expect("a form on the provider's page");
    let form = &html[form_start..];
    let action = attr(&form[..form.find('>').unwrap()], "action").unwrap();
    let end = form.find("</form>").unwrap();
    let inputs = form[..end]
        .match_indices("<input")
        .filter_map(|(i, _)| {
            let tag = &form[i..i + form[i..].find('>').unwrap()];
            Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
        })
        .collect();
    (action, inputs)
}

fn base(h: &Harness) -> String {
    h.central.http_url()
}

async fn account(h: &Harness) -> AccountId {
    h.central.central.db.first_account().await.unwrap().unwrap().0
}

/// Adds a user with an e-mail to the first account.
async fn add_user(h: &Harness, name: &str, role: Role, email: &str) {
    let account = account(h).await;
    let hash = secrets::hash(&secrets::generate(secrets::SecretKind::Human));
    h.central
        .central
        .db
        .account(&account)
        .users()
        .add_with_token(name, role, Some(email), &hash)
        .await
        .unwrap()
        .unwrap();
}

async fn users(h: &Harness) -> Vec<(String, Role)> {
    let account = account(h).await;
    let users = h.central.central.db.account(&account).users().list().await.unwrap();
    users.into_iter().map(|u| (u.name, u.role)).collect()
}

/// The audit rows of the first account with this subject (`SsoCreateUser`, …).
async fn audited(h: &Harness, subject: &'static str) -> Vec<String> {
    h.central.central.audit.flush().await;
    let account = account(h).await.to_string();
    h.central
        .central
        .db
        .with_connection_for_tests(move |conn| {
            let mut stmt =
                conn.prepare("SELECT parameters_json FROM audit_log WHERE account_id = ?1 AND subject = ?2")?;
            let rows = stmt.query_map(rusqlite::params![account, subject], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
        .await
        .unwrap()
}

/// Whether `/` shows this browser signed in as `name`.
async fn signed_in_as(browser: &mut Browser, base: &str, name: &str) -> bool {
    let page = browser.get(&format!("{base}/")).await;
    page.status == 200 && page.body.contains(&format!("Signed in as <b>{name}</b>"))
}

fn refused(answer: &Answer, status: u16, says: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(answer.body.contains("Sign-in refused"), "{}", answer.body);
    assert!(answer.body.contains(says), "wanted {says:?} in {}", answer.body);
    assert!(answer.location.is_none());
}

#[tokio::test]
async fn a_user_signs_in_by_verified_email_then_by_subject_and_gets_a_session() {
    let (_provider, h) = sso(&[person("idp-bob", "Bob@Example.com", true, &["sre"])], |_| {}).await;
    add_user(&h, "bob", Role::Operator, "bob@example.com").await;
    let base = base(&h);

    let mut browser = Browser::new();
    assert!(!signed_in_as(&mut browser, &base, "bob").await, "not signed in yet");
    let answer = browser.sign_in(&base, Some("/tokens?x=1"), "idp-bob").await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location.as_deref(), Some(format!("{base}/tokens?x=1").as_str()));
    assert!(browser.cookie("mttrly_oidc").is_none(), "the pending login's cookie is cleared");
    assert!(signed_in_as(&mut browser, &base, "bob").await);
    assert_eq!(audited(&h, "SsoBindSubject").await.len(), 1);
    assert_eq!(audited(&h, "SignIn").await.len(), 1);

    // The second time the subject binding finds bob (no new binding), in a new browser.
    let mut other = Browser::new();
    let answer = other.sign_in(&base, None, "idp-bob").await;
    assert_eq!(answer.location.as_deref(), Some(format!("{base}/").as_str()));
    assert!(signed_in_as(&mut other, &base, "bob").await);
    assert_eq!(audited(&h, "SsoBindSubject").await.len(), 1);

    // The sign-in page offers the provider.
    let signin = Browser::new().get(&format!("{base}/signin")).await;
    assert!(signin.body.contains("Sign in with Test IdP"), "{}", signin.body);
    assert!(signin.body.contains("/signin/oidc"), "{}", signin.body);
}

#[tokio::test]
async fn every_probe_is_refused_and_creates_nothing() {
    let accounts = [
        person("idp-bob", "bob@example.com", true, &["sre"]),
        person("idp-eve", "eve@example.com", false, &["sre"]),
        person("idp-mallory", "mallory@evil.example", true, &["sre"]),
        person("idp-nobody", "nobody@example.com", true, &["sre"]),
        person("idp-carol", "carol@example.com", true, &["sre"]),
        person("idp-dan", "dan@example.com", true, &["sre"]),
    ];
    let (_provider, h) = sso(&accounts, |_| {}).await;
    add_user(&h, "bob", Role::Operator, "bob@example.com").await;
    add_user(&h, "dan", Role::Viewer, "dan@example.com").await;
    // Carol is a user of another tenant only.
    let other = h.central.central.db.create_tenant("other", Plan::DeploymentCrew, "carol", &[7; 32]).await.unwrap().0;
    h.central
        .central
        .db
        .with_connection_for_tests(move |conn| {
            conn.execute("UPDATE users SET email = 'carol@example.com' WHERE account_id = ?1", [other.to_string()])
        })
        .await
        .unwrap();
    let base = base(&h);
    let users_before = users(&h).await;

    // Wrong state: refused, and the pending login is spent (the right state fails after it).
    let mut browser = Browser::new();
    let callback = browser.through_provider(&base, None, "idp-bob").await;
    let tampered = callback.replace("state=", "state=x");
    refused(&browser.get(&tampered).await, 400, "Start again");
    refused(&browser.get(&callback).await, 400, "Start again");

    // Replay: a completed callback, presented again with the pending cookie it had, finds nothing.
    let mut browser = Browser::new();
    let callback = browser.through_provider(&base, None, "idp-bob").await;
    let pending = browser.cookie("mttrly_oidc").unwrap();
    assert_eq!(browser.get(&callback).await.status, 303);
    browser.jar.insert(("mttrly_oidc".into(), "/".into()), pending);
    refused(&browser.get(&callback).await, 400, "Start again");
    // The code again, under a fresh pending login of this browser (its state): the provider
    // refuses a used code (and its verifier is not this login's).
    let fresh = browser.through_provider(&base, None, "idp-bob").await;
    let state = fresh.split("state=").nth(1).unwrap().split('&').next().unwrap();
    let code = callback.split("code=").nth(1).unwrap().split('&').next().unwrap();
    let reused = format!("{base}/signin/oidc/callback?code={code}&state={state}");
    refused(&browser.get(&reused).await, 502, "could not be completed");

    // The callback in another browser (a code and state lifted from the victim's): no pending
    // login there.
    let mut victim = Browser::new();
    let callback = victim.through_provider(&base, None, "idp-bob").await;
    refused(&Browser::new().get(&callback).await, 400, "Start again");

    // Nonce mismatch: the ID token carries the nonce sent, not the one this login now expects.
    let mut browser = Browser::new();
    let callback = browser.through_provider(&base, None, "idp-bob").await;
    h.central
        .central
        .db
        .with_connection_for_tests(|conn| conn.execute("UPDATE oidc_pending_logins SET nonce = 'another-nonce'", []))
        .await
        .unwrap();
    refused(&browser.get(&callback).await, 502, "could not be completed");

    // Unverified e-mail, a domain not allowed, nobody with that e-mail.
    refused(&Browser::new().sign_in(&base, None, "idp-eve").await, 403, "did not confirm your e-mail");
    refused(&Browser::new().sign_in(&base, None, "idp-mallory").await, 403, "domain is not allowed");
    refused(&Browser::new().sign_in(&base, None, "idp-nobody").await, 403, "No user here matches");
    // Carol's e-mail belongs to a user of another account: not signed into it, not into this one.
    let mut carol = Browser::new();
    refused(&carol.sign_in(&base, None, "idp-carol").await, 403, "No user here matches");
    assert!(!signed_in_as(&mut carol, &base, "carol").await);

    // A removed user: bound at a first sign-in, then removed, then refused.
    let mut dan = Browser::new();
    assert_eq!(dan.sign_in(&base, None, "idp-dan").await.status, 303);
    let account = account(&h).await;
    h.central.central.db.account(&account).users().remove("dan").await.unwrap().unwrap();
    refused(&Browser::new().sign_in(&base, None, "idp-dan").await, 403, "removed");

    // An open redirect through `next`: never followed off the site.
    for evil in ["//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example"] {
        let answer = Browser::new().sign_in(&base, Some(evil), "idp-bob").await;
        assert_eq!(answer.status, 303);
        assert_eq!(answer.location.as_deref(), Some(format!("{base}/").as_str()), "next={evil:?}");
    }

    // Refusals after the provider vouched are audited; nothing was created.
    assert!(audited(&h, "SsoSignIn").await.len() >= 5);
    let mut users_after = users(&h).await;
    users_after.push(("dan".into(), Role::Viewer));
    users_after.sort();
    let mut expected = users_before;
    expected.sort();
    assert_eq!(users_after, expected);
    assert!(audited(&h, "SsoCreateUser").await.is_empty());
}

#[tokio::test]
async fn users_are_created_just_in_time_with_the_mapped_role_and_never_raised() {
    let accounts = [
        person("idp-dave", "dave@example.com", true, &["sre", "unrelated"]),
        person("idp-lead", "lead@example.com", true, &["leads"]),
        person("idp-drifter", "drifter@example.com", true, &["unmapped"]),
        person("idp-ops", "ops@example.com", true, &["viewers"]),
        person("idp-ann", "ann@example.com", true, &["leads"]),
        person("idp-exlead", "exlead@example.com", true, &["unmapped"]),
        json!({ "sub": "idp-noclaim", "email": "noclaim@example.com", "email_verified": true }),
    ];
    let (_provider, h) = sso(&accounts, |c| {
        c.role_claim = Some("groups".into());
        c.role_map = BTreeMap::from([
            ("sre".into(), Role::Operator),
            ("leads".into(), Role::Admin),
            ("viewers".into(), Role::Viewer),
        ]);
        c.create_users = true;
    })
    .await;
    // ops is an admin here whose groups now say viewer: lowered at sign-in. ann is a viewer whose
    // groups say admin: not raised.
    add_user(&h, "ops", Role::Admin, "ops@example.com").await;
    add_user(&h, "ann", Role::Viewer, "ann@example.com").await;
    // Two admins who left every mapped group at the provider (one's claim lists only unmapped
    // groups, the other's has no groups claim at all): lowered to viewer.
    add_user(&h, "exlead", Role::Admin, "exlead@example.com").await;
    add_user(&h, "noclaim", Role::Admin, "noclaim@example.com").await;
    let base = base(&h);

    let mut dave = Browser::new();
    assert_eq!(dave.sign_in(&base, None, "idp-dave").await.status, 303);
    assert!(signed_in_as(&mut dave, &base, "dave").await);
    assert_eq!(Browser::new().sign_in(&base, None, "idp-lead").await.status, 303);
    refused(&Browser::new().sign_in(&base, None, "idp-drifter").await, 403, "No user here matches");
    assert_eq!(Browser::new().sign_in(&base, None, "idp-ops").await.status, 303);
    assert_eq!(Browser::new().sign_in(&base, None, "idp-ann").await.status, 303);
    assert_eq!(Browser::new().sign_in(&base, None, "idp-exlead").await.status, 303);
    assert_eq!(Browser::new().sign_in(&base, None, "idp-noclaim").await.status, 303);

    let users: BTreeMap<String, Role> = users(&h).await.into_iter().collect();
    assert_eq!(users.get("dave"), Some(&Role::Operator));
    assert_eq!(users.get("lead"), Some(&Role::Admin));
    assert_eq!(users.get("ops"), Some(&Role::Viewer), "lowered by the group claim");
    assert_eq!(users.get("ann"), Some(&Role::Viewer), "never raised by the group claim");
    assert_eq!(users.get("exlead"), Some(&Role::Viewer), "no mapped group left: the weakest role");
    assert_eq!(users.get("noclaim"), Some(&Role::Viewer), "no groups claim: no mapped group");
    assert!(!users.contains_key("drifter"));
    let created = audited(&h, "SsoCreateUser").await;
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created.iter().any(|p| p.contains("\"dave\"") && p.contains("\"operator\"")), "{created:?}");
    let lowered = audited(&h, "SsoLowerRole").await;
    assert_eq!(lowered.len(), 3, "{lowered:?}");
    assert!(lowered.iter().all(|p| p.contains("\"previous_role\":\"admin\"")), "{lowered:?}");
}

#[tokio::test]
async fn a_provider_central_cannot_use_stops_it_at_start() {
    let port = free_port();
    let provider = Provider::start(&format!("http://127.0.0.1:{port}/signin/oidc/callback"), &[]);
    let cases: Vec<(OidcConfig, &str)> = vec![
        // The discovery document names the issuer without the trailing slash.
        (oidc_config(&format!("{}/", provider.issuer), |_| {}), "names issuer"),
        (oidc_config("http://127.0.0.1:9", |_| {}), "cannot reach"),
        (oidc_config(&provider.issuer, |c| c.client_secret = Some(ClientSecret("short".into()))), "shorter than 16"),
        (oidc_config("http://idp.example.com", |_| {}), "must use https"),
        (oidc_config(&provider.issuer, |c| c.account = Some("nope".into())), "account `nope` does not exist"),
    ];
    for (oidc, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut config = mttrly_tests::in_process::config(dir.path());
        mttrly_central::init::init(&config, None).unwrap();
        config.oidc = Some(oidc);
        let started = std::time::Instant::now();
        let Err(err) = mttrly_central::server::start(config).await else { panic!("central started ({expected})") };
        let mttrly_central::server::StartError::Config(err) = err else { panic!("{err:?}") };
        assert_eq!(err.code(), ErrorCode::ValidationError);
        assert!(err.to_string().contains(expected), "{err} (wanted {expected})");
        assert!(started.elapsed() < Duration::from_secs(15));
    }
}

/// The hidden CSRF field of a page's form.
fn csrf_of(html: &str) -> String {
    let (_, fields) = form_of(html);
    fields.into_iter().find(|(name, _)| name == "csrf").map(|(_, v)| v).expect("a csrf field")
}

/// `mttrly-cli login` for `login` at the provider: a device login over gRPC, approved on the device
/// page by a browser that signs in through SSO on the way. The poll's answer (the CLI's token).
async fn cli_login_by_sso(h: &Harness, login: &str, name: &str) -> PollDeviceLoginResponse {
    let base = base(h);
    let mut logins = LoginServiceClient::new(h.channel().await);
    let started = logins
        .start_device_login(StartDeviceLoginRequest { client_name: "mttrly-cli".into(), client_host: "laptop".into() })
        .await
        .unwrap()
        .into_inner();
    let mut browser = Browser::new();
    let page = browser.get(&started.verification_uri_complete).await;
    assert_eq!(page.status, 303, "not signed in: off to the sign-in page");
    let next = reqwest::Url::parse(&page.location.unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .unwrap();

    // Single sign-on, back to the device page it came from.
    let back = browser.sign_in(&base, Some(&next), login).await.location.unwrap();
    assert!(back.contains("/device?code="), "{back}");
    let page = browser.get(&back).await;
    assert!(page.body.contains(&format!("Signed in as <b>{name}</b>")), "{}", page.body);
    let form = [("csrf".to_owned(), csrf_of(&page.body)), ("code".to_owned(), started.user_code.clone())];
    let confirm = browser.post(&format!("{base}/device"), &form).await;
    assert!(confirm.body.contains(&format!("asks to sign in as <b>{name}</b>")), "{}", confirm.body);
    let mut allow = form.to_vec();
    allow.push(("decision".to_owned(), "allow".to_owned()));
    allow[0].1 = csrf_of(&confirm.body);
    let done = browser.post(&format!("{base}/device"), &allow).await;
    assert_eq!(done.status, 200, "{}", done.body);

    let polled = logins
        .poll_device_login(PollDeviceLoginRequest { device_code: started.device_code })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(polled.status, "approved");
    assert_eq!(polled.user_name, name);
    polled
}

async fn who_am_i(h: &Harness, token: &str) -> Result<WhoAmIResponse, tonic::Status> {
    AccountServiceClient::new(h.channel().await)
        .who_am_i(crate::common::authed(token, WhoAmIRequest {}))
        .await
        .map(tonic::Response::into_inner)
}

/// Issue 12's "done when", signed in through the provider: bob gets a CLI token by SSO and
/// approves a production action the admin's assistant asked for (the admin cannot); it runs once;
/// bob's token, revoked, fails at once on gRPC and on `/mcp`.
#[tokio::test]
async fn the_teammate_flow_passes_with_sso() {
    let (_provider, h) = sso(&[person("idp-bob", "bob@example.com", true, &[])], |_| {}).await;
    add_user(&h, "bob", Role::Operator, "bob@example.com").await;
    let bob = cli_login_by_sso(&h, "idp-bob", "bob").await;
    let me = who_am_i(&h, &bob.token).await.unwrap();
    assert_eq!((me.user_name.as_str(), me.role.as_str(), me.principal_type.as_str()), ("bob", "operator", "human"));

    let assistant = AccountServiceClient::new(h.channel().await)
        .create_token(crate::common::authed(
            &h.admin,
            CreateTokenRequest { assistant_name: "claude-code".into(), ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    let server = ServerServiceClient::new(h.channel().await)
        .add_server(crate::common::authed(
            &h.admin,
            AddServerRequest {
                name: "db-1".into(),
                environment: mttrly_proto::convert::environment_to_wire(mttrly_core::Environment::Production),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let (is_error, answer) = crate::common::call_tool(
        h.channel().await,
        &assistant,
        "mttrly_regenerate_install_token",
        json!({ "server_id": server.server_id }),
    )
    .await;
    assert!(!is_error, "{answer}");
    assert_eq!(answer["status"], "pending_approval", "{answer}");
    let id = answer["action_id"].as_str().unwrap().to_owned();

    let approve = |token: String| {
        let id = id.clone();
        let channel = h.channel();
        async move {
            let channel = channel.await;
            let shown = crate::common::get_action(channel.clone(), &token, &id).await;
            ActionServiceClient::new(channel)
                .approve_action(crate::common::authed(
                    &token,
                    ApproveActionRequest {
                        action_id: id,
                        content_sha256: shown.content_sha256,
                        wait_seconds: 10,
                        via_mcp: false,
                        second_factor_code: String::new(),
                    },
                ))
                .await
                .map(|r| r.into_inner().action.unwrap().status)
        }
    };
    let refused = approve(h.admin.clone()).await.unwrap_err();
    assert_eq!(crate::common::code(&refused), ErrorCode::Forbidden, "four eyes: {refused:?}");
    assert_eq!(approve(bob.token.clone()).await.unwrap(), "succeeded");
    assert!(approve(bob.token.clone()).await.is_err(), "it ran once; nothing left to approve");

    // Revoked: refused at once on gRPC and on /mcp.
    AccountServiceClient::new(h.channel().await)
        .revoke_token(crate::common::authed(&bob.token, RevokeTokenRequest { id: bob.token_id.clone() }))
        .await
        .unwrap();
    let refused = who_am_i(&h, &bob.token).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "sso-test", "version": "1" } }
    });
    let mcp = reqwest::Client::new()
        .post(format!("{}/mcp", base(&h)))
        .bearer_auth(&bob.token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 401);
}

#[tokio::test]
async fn a_person_signed_in_by_sso_gives_an_mcp_client_consent() {
    use base64::Engine as _;
    use sha2::Digest as _;

    let (_provider, h) = sso(&[person("idp-bob", "bob@example.com", true, &[])], |_| {}).await;
    add_user(&h, "bob", Role::Operator, "bob@example.com").await;
    let base = base(&h);
    let mut browser = Browser::new();

    // An MCP client registers and sends the person to the authorization endpoint.
    let redirect = "http://127.0.0.1:53682/callback";
    let registered: Value = browser
        .http
        .post(format!("{base}/oauth/register"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(
            json!({ "redirect_uris": [redirect], "client_name": "sso-test", "token_endpoint_auth_method": "none" })
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let verifier = "sso-test-verifier-0123456789-abcdefghijklmnopqrstuv";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let resource = format!("{base}/mcp");
    let params = [
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", redirect),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "client-state"),
        ("resource", resource.as_str()),
    ];
    let query = params.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
    let answer = browser.get(&format!("{base}/oauth/authorize?{query}")).await;
    assert_eq!(answer.status, 303, "not signed in: off to the sign-in page");
    let next = reqwest::Url::parse(&answer.location.unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .unwrap();

    // Single sign-on, back to the consent page, Allow.
    let back = browser.sign_in(&base, Some(&next), "idp-bob").await.location.unwrap();
    let consent = browser.get(&back).await;
    assert!(consent.body.contains("Signed in as <b>bob</b>"), "{}", consent.body);
    let (_, mut fields) = form_of(&consent.body);
    fields.push(("decision".into(), "approve".into()));
    let approved = browser.post(&format!("{base}/oauth/authorize"), &fields).await;
    let to_client = reqwest::Url::parse(&approved.location.expect("back to the client")).unwrap();
    let code = to_client.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).unwrap();

    // The client's tokens act for bob.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier),
        ("redirect_uri", redirect),
        ("client_id", client_id.as_str()),
        ("resource", resource.as_str()),
    ];
    let body = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
    let tokens: Value = browser
        .http
        .post(format!("{base}/oauth/token"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap_or_else(|| panic!("{tokens}"));
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "sso-test", "version": "1" } }
    });
    let mcp = browser
        .http
        .post(format!("{base}/mcp"))
        .bearer_auth(access)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 200);
    let account = account(&h).await;
    let grants = h.central.central.db.account(&account).users().tokens(None).await.unwrap();
    assert!(
        grants.iter().any(|t| t.kind == mttrly_central::db::accounts::TokenKind::OAuth && t.owner_name == "bob"),
        "{grants:?}"
    );
}
