//! Issue 12, `mttrly-cli login`: the device flow end to end with the real CLI and a browser
//! signed in through central's own pages (invite → password → TOTP → session cookie), the
//! credentials file (0600, used when no token is given, named by `whoami`, removed by `logout`),
//! the token in `tokens list` and killed by `tokens revoke`; and the probes: unknown, expired and
//! spent device codes, polling too fast, denial, CSRF and origin on `/device`, wrong-code
//! lockout, and a code approved by a person of another account yielding a token of that account
//! only.
//!
//! [`Browser`] and [`sign_up`] are shared with `oauth.rs` (the consent page uses the same
//! sign-in).

#![allow(clippy::unwrap_used)]

use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mttrly_core::second_factor::TotpSecret;
use mttrly_proto::central::v1::login_service_client::LoginServiceClient;
use mttrly_proto::central::v1::{
    AddUserRequest, PollDeviceLoginRequest, PollDeviceLoginResponse, StartDeviceLoginRequest, StartDeviceLoginResponse,
    WhoAmIRequest,
};
use mttrly_tests::{RawResponse, TestCentral, http_request};
use serde_json::Value;

use crate::common::authed;

/// A browser: a cookie jar over raw HTTP/1.1, sending `Origin` on every POST as a browser does.
pub(crate) struct Browser {
    base: String,
    cookies: Vec<(String, String)>,
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", crate::common::urlencode(v))).collect::<Vec<_>>().join("&")
}

/// The value of the first `name="NAME" value="…"` input in a page.
pub(crate) fn input_value(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\" value=\""))? + name.len() + 15;
    Some(body[at..].split('"').next()?.replace("&amp;", "&"))
}

impl Browser {
    /// A browser with no cookies for the site at `base`.
    pub(crate) fn new(base: &str) -> Self {
        Self { base: base.trim_end_matches('/').to_owned(), cookies: Vec::new() }
    }

    fn keep_cookies(&mut self, r: &RawResponse) {
        for (k, v) in &r.headers {
            if k != "set-cookie" {
                continue;
            }
            let Some((name, rest)) = v.split_once('=') else { continue };
            let value = rest.split(';').next().unwrap_or_default().to_owned();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() && !v.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// GET `path` with the jar's cookies.
    pub(crate) fn get(&mut self, path: &str) -> RawResponse {
        let cookie = self.cookie_header();
        let mut headers = vec![];
        if !cookie.is_empty() {
            headers.push(("Cookie", cookie.as_str()));
        }
        let r = http_request(&self.base, "GET", path, &headers, "");
        self.keep_cookies(&r);
        r
    }

    /// POST a form to `path`, from `origin` (this site's own unless a test says otherwise).
    pub(crate) fn post_from(&mut self, origin: &str, path: &str, pairs: &[(&str, &str)]) -> RawResponse {
        let cookie = self.cookie_header();
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded"), ("Origin", origin)];
        if !cookie.is_empty() {
            headers.push(("Cookie", cookie.as_str()));
        }
        let r = http_request(&self.base, "POST", path, &headers, &form(pairs));
        self.keep_cookies(&r);
        r
    }

    /// POST a form to `path` from this site.
    pub(crate) fn post(&mut self, path: &str, pairs: &[(&str, &str)]) -> RawResponse {
        let origin = self.base.clone();
        self.post_from(&origin, path, pairs)
    }

    /// The CSRF token of the form at `path` (a GET).
    pub(crate) fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path);
        assert_eq!(page.status, 200, "{path}: {page:?}");
        input_value(&page.body, "csrf").unwrap_or_else(|| panic!("no csrf input on {path}: {}", page.body))
    }
}

/// The password every test person chooses.
const PASSWORD: &str = "correct horse battery staple";

/// A browser signed in as the person an invite link is for: it opens the link, chooses a
/// password, enrols the TOTP key the page shows with a code computed from it, and keeps the
/// session cookie that sets.
pub(crate) fn sign_up(base: &str, invite_url: &str) -> Browser {
    sign_up_keeping_key(base, invite_url).0
}

/// [`sign_up`], also returning the TOTP key enrolled and the step whose code was used.
pub(crate) fn sign_up_keeping_key(base: &str, invite_url: &str) -> (Browser, TotpSecret, u64) {
    let path = &invite_url[invite_url.find("/invite/").expect("an invite path")..];
    let mut b = Browser::new(base);
    let csrf = b.csrf(path);
    let step =
        b.post(path, &[("csrf", &csrf), ("step", "password"), ("password", PASSWORD), ("password_again", PASSWORD)]);
    assert_eq!(step.status, 200, "{step:?}");
    let key_at = step.body.find("Key: <code>").expect("the TOTP key on the page") + "Key: <code>".len();
    let key: String = step.body[key_at..].split('<').next().unwrap().chars().filter(|c| !c.is_whitespace()).collect();
    let totp = TotpSecret::from_base32(&key).expect("a base32 key");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let code = format!("{:06}", totp.code_at(now / 30));
    let done = b.post(path, &[("csrf", &csrf), ("step", "code"), ("code", &code)]);
    assert_eq!(done.status, 200, "{done:?}");
    assert!(b.cookies.iter().any(|(k, _)| k == "mttrly_session"), "a session cookie: {done:?}");
    (b, totp, now / 30)
}

/// `users add NAME --role ROLE` through the real CLI, then [`sign_up`].
pub(crate) fn signed_in(central: &TestCentral, name: &str, role: &str) -> Browser {
    let added = central.cli_json(&["users", "add", name, "--role", role]);
    sign_up(&central.http_url, added["invite_url"].as_str().expect("invite_url"))
}

/// Looks the code up on `/device` and allows (or denies) it; returns the outcome page.
pub(crate) fn decide(b: &mut Browser, user_code: &str, decision: &str) -> RawResponse {
    let csrf = b.csrf(&format!("/device?code={user_code}"));
    let confirm = b.post("/device", &[("csrf", &csrf), ("code", user_code)]);
    assert_eq!(confirm.status, 200, "{confirm:?}");
    b.post("/device", &[("csrf", &csrf), ("code", user_code), ("decision", decision)])
}

/// `mttrly-cli` with only this config home: no token, no central from the caller's environment.
pub(crate) fn cli_in(config_home: &std::path::Path) -> Command {
    let mut c = Command::new(mttrly_tests::binary("mttrly-cli"));
    c.env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .env_remove("MTTRLY_TOKEN")
        .env_remove("MTTRLY_CENTRAL");
    c
}

/// `mttrly-cli login` started in the background: the child, and the user code and complete URL
/// it printed (read from its stderr; the rest of stderr is collected for the test's checks).
pub(crate) fn start_cli_login(
    central: &TestCentral,
    config_home: &std::path::Path,
) -> (std::process::Child, String, String, mpsc::Receiver<String>) {
    let mut child = cli_in(config_home)
        .args(["--central", &central.grpc_url, "--output", "json", "login"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let (mut code, mut complete) = (None, None);
    while code.is_none() || complete.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(15)).expect("login prints its code");
        if let Some(c) = line.strip_prefix("and enter the code ") {
            code = Some(c.trim().to_owned());
        }
        if let Some(u) = line.strip_prefix("(or open ") {
            complete = Some(u.trim_end_matches(')').to_owned());
        }
    }
    (child, code.unwrap(), complete.unwrap(), rx)
}

/// Waits for a child to end (within `within`), returning its output.
pub(crate) fn wait_output(mut child: std::process::Child, within: Duration) -> std::process::Output {
    let deadline = std::time::Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the CLI did not finish in {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// A `key = "value"` line's value in a TOML file (the credentials file has nothing fancier).
fn toml_string(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .to_owned()
}

/// Every line a background reader collected, once the child's stderr has closed.
fn drain(lines: &mpsc::Receiver<String>) -> Vec<String> {
    let mut all = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        all.push(line);
    }
    all
}

pub(crate) fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {:?} stderr {:?}", out.stdout, String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn cli_login_through_the_browser_keeps_a_private_token_that_works_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let central = TestCentral::start(dir.path());
    let mut bob = signed_in(&central, "bob", "operator");
    let home = dir.path().join("bob-home");
    std::fs::create_dir_all(&home).unwrap();

    let (child, user_code, complete, stderr) = start_cli_login(&central, &home);
    assert!(complete.starts_with(&format!("{}/device?code=", central.http_url)), "{complete}");
    assert!(complete.ends_with(&user_code), "{complete}");
    // The complete URL fills the code in; the confirmation names the client, the host and the
    // address central saw, next to the code.
    let path = &complete[complete.find("/device").unwrap()..];
    let form_page = bob.get(path);
    assert_eq!(input_value(&form_page.body, "code").as_deref(), Some(user_code.as_str()), "{}", form_page.body);
    let csrf = input_value(&form_page.body, "csrf").unwrap();
    let confirm = bob.post("/device", &[("csrf", &csrf), ("code", &user_code.to_lowercase().replace('-', ""))]);
    assert_eq!(confirm.status, 200, "{confirm:?}");
    for shown in ["mttrly-cli", "127.0.0.1", user_code.as_str(), "bob"] {
        assert!(confirm.body.contains(shown), "{shown} on the confirmation: {}", confirm.body);
    }
    let done = bob.post("/device", &[("csrf", &csrf), ("code", &user_code), ("decision", "allow")]);
    assert_eq!(done.status, 200, "{done:?}");

    let out = wait_output(child, Duration::from_secs(30));
    let err = drain(&stderr);
    assert!(out.status.success(), "login failed: {err:?}");
    let printed = json_of(&out);
    let file = home.join("mttrly").join("credentials.toml");
    assert_eq!(printed["user"], "bob", "{printed}");
    assert_eq!(printed["role"], "operator", "{printed}");
    assert_eq!(printed["central"], central.grpc_url.as_str(), "{printed}");
    assert_eq!(printed["credentials_file"], file.display().to_string(), "{printed}");

    // Stored 0600 in a 0700 directory, never printed.
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(file.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    let stored = std::fs::read_to_string(&file).unwrap();
    let token = toml_string(&stored, "token");
    assert!(token.starts_with("mttrly_h_"), "{stored}");
    assert_eq!(toml_string(&stored, "central"), central.grpc_url);
    let all_output = format!("{}{}", String::from_utf8_lossy(&out.stdout), err.join("\n"));
    assert!(!all_output.contains(&token), "the token was printed");

    // Every command uses it when no token (and no central) is given; whoami says so.
    let me = json_of(&cli_in(&home).args(["--output", "json", "whoami"]).output().unwrap());
    assert_eq!(me["user_name"], "bob", "{me}");
    assert_eq!(me["token_source"], "credentials_file", "{me}");
    assert_eq!(me["credentials_file"], file.display().to_string(), "{me}");
    // A token given explicitly still wins, and whoami says where it came from.
    let admin =
        json_of(&cli_in(&home).args(["--output", "json", "--token", &central.admin_token, "whoami"]).output().unwrap());
    assert_eq!((admin["token_source"].as_str(), admin["role"].as_str()), (Some("flag"), Some("admin")), "{admin}");
    let from_env = json_of(
        &cli_in(&home).env("MTTRLY_TOKEN", &central.admin_token).args(["--output", "json", "whoami"]).output().unwrap(),
    );
    assert_eq!(from_env["token_source"], "env", "{from_env}");
    // The saved token goes only to the central it came from: another `--central` (or a stale
    // MTTRLY_CENTRAL) is refused before anything is sent, naming both.
    let elsewhere = "http://127.0.0.1:9";
    let refused = cli_in(&home).args(["--output", "json", "--central", elsewhere, "whoami"]).output().unwrap();
    let err: Value = serde_json::from_slice(&refused.stderr).unwrap();
    assert!(!refused.status.success(), "{err}");
    assert!(err["message"].as_str().is_some_and(|m| m.contains("saved login is for")), "{err}");
    let same = cli_in(&home).env("MTTRLY_CENTRAL", format!("{}/", central.grpc_url)).args(["whoami"]).output().unwrap();
    assert!(same.status.success(), "the same central, spelled with a slash: {}", String::from_utf8_lossy(&same.stderr));

    // An ordinary human token of bob's, named after the login, listed and revocable.
    let tokens = central.cli_json(&["tokens", "list"]);
    let login_token = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().is_some_and(|n| n.starts_with("login: mttrly-cli on ")))
        .unwrap_or_else(|| panic!("the login's token in tokens list: {tokens}"))
        .clone();
    assert_eq!(login_token["owner"], "bob", "{login_token}");
    assert_eq!(login_token["kind"], "human", "{login_token}");
    assert_eq!(login_token["id"], toml_string(&stored, "token_id").as_str(), "{login_token}");

    // Logging in again replaces the file and revokes the token it held.
    let (child, second_code, _, second_stderr) = start_cli_login(&central, &home);
    assert_ne!(second_code, user_code);
    assert_eq!(decide(&mut bob, &second_code, "allow").status, 200);
    let out = wait_output(child, Duration::from_secs(30));
    let said = drain(&second_stderr);
    assert!(out.status.success(), "{said:?}");
    assert!(said.iter().any(|l| l.contains("previous login's token") && l.contains("was revoked")), "{said:?}");
    let stored_again = std::fs::read_to_string(&file).unwrap();
    let second_token = toml_string(&stored_again, "token");
    assert_ne!(second_token, token);
    let old = cli_in(&home).args(["--output", "json", "--token", &token, "whoami"]).output().unwrap();
    assert_eq!(old.status.code(), Some(1), "the replaced token is revoked");

    // Revoked by the admin: the stored token stops working at once.
    central.cli_json(&["tokens", "revoke", &toml_string(&stored_again, "token_id")]);
    let refused = cli_in(&home).args(["--output", "json", "whoami"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&refused.stderr).unwrap();
    assert_eq!(body["code"], "AUTH_FAILED", "{body}");

    // Logout deletes the file, and says the token could not be revoked again.
    let out = json_of(&cli_in(&home).args(["--output", "json", "logout"]).output().unwrap());
    assert_eq!((out["deleted"].as_bool(), out["revoked"].as_bool()), (Some(true), Some(false)), "{out}");
    assert!(!file.exists());

    // The approval is in bob's audit trail, naming the client.
    let audit = central.cli_json(&["audit", "list"]);
    assert!(audit.to_string().contains("DeviceLoginApproved"), "{audit}");
}

/// The gRPC side of the flow, for the probes.
struct Login {
    client: LoginServiceClient<tonic::transport::Channel>,
}

impl Login {
    async fn connect(central: &mttrly_central::server::RunningCentral) -> Self {
        Self { client: LoginServiceClient::new(mttrly_tests::in_process::channel(central).await) }
    }

    async fn start(&mut self) -> StartDeviceLoginResponse {
        self.client
            .start_device_login(StartDeviceLoginRequest {
                client_name: "mttrly-cli".into(),
                client_host: "laptop".into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn poll(&mut self, device_code: &str) -> PollDeviceLoginResponse {
        self.client
            .poll_device_login(PollDeviceLoginRequest { device_code: device_code.into() })
            .await
            .unwrap()
            .into_inner()
    }
}

/// Adds a user through gRPC as `admin` and signs them up in a browser (off the runtime: the
/// browser blocks).
async fn person(central: &mttrly_central::server::RunningCentral, admin: &str, name: &str, role: &str) -> Browser {
    let channel = mttrly_tests::in_process::channel(central).await;
    let added = mttrly_proto::central::v1::user_service_client::UserServiceClient::new(channel)
        .add_user(authed(admin, AddUserRequest { name: name.into(), role: role.into(), ..AddUserRequest::default() }))
        .await
        .unwrap()
        .into_inner();
    let base = central.http_url();
    tokio::task::spawn_blocking(move || sign_up(&base, &added.invite_url)).await.unwrap()
}

/// Runs a blocking browser step off the runtime.
async fn browse<T: Send + 'static>(b: Browser, f: impl FnOnce(&mut Browser) -> T + Send + 'static) -> (Browser, T) {
    tokio::task::spawn_blocking(move || {
        let mut b = b;
        let t = f(&mut b);
        (b, t)
    })
    .await
    .unwrap()
}

async fn whoami(
    central: &mttrly_central::server::RunningCentral,
    token: &str,
) -> mttrly_proto::central::v1::WhoAmIResponse {
    let channel = mttrly_tests::in_process::channel(central).await;
    mttrly_proto::central::v1::account_service_client::AccountServiceClient::new(channel)
        .who_am_i(authed(token, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn device_codes_are_paced_single_use_and_bound_to_whoever_approves() {
    let h = crate::common::harness(|_| {}).await;
    let central = &h.central;
    let mut login = Login::connect(central).await;
    let bob = person(central, &h.admin, "bob", "operator").await;

    // Shape: a device code of its own kind, a user code from the consonant alphabet, the page.
    let started = login.start().await;
    assert!(started.device_code.starts_with("mttrly_d_"), "{started:?}");
    assert_eq!(started.user_code.len(), 9, "{started:?}");
    assert_eq!((started.expires_in, started.interval), (600, 5), "{started:?}");
    assert_eq!(started.verification_uri, format!("{}/device", central.http_url()));
    assert_eq!(started.verification_uri_complete, format!("{}/device?code={}", central.http_url(), started.user_code));

    // Pending, then too fast: slow_down, 5 seconds more each time (RFC 8628 §3.5).
    let first = login.poll(&started.device_code).await;
    assert_eq!((first.status.as_str(), first.interval), ("authorization_pending", 5), "{first:?}");
    let fast = login.poll(&started.device_code).await;
    assert_eq!((fast.status.as_str(), fast.interval), ("slow_down", 10), "{fast:?}");
    let faster = login.poll(&started.device_code).await;
    assert_eq!((faster.status.as_str(), faster.interval), ("slow_down", 15), "{faster:?}");
    assert!(faster.token.is_empty());

    // Unknown device codes, and secrets of other kinds, find nothing.
    for bogus in ["", "mttrly_d_not-a-real-device-code-0123456789abcdefghijkl", "garbage", h.admin.as_str()] {
        let r = login.poll(bogus).await;
        assert_eq!(r.status, "invalid_grant", "{bogus}: {r:?}");
        assert!(r.token.is_empty());
    }

    // Approved by bob: the token is bob's (his account, his role), delivered once.
    let code = started.user_code.clone();
    let (bob, done) = browse(bob, move |b| decide(b, &code, "allow")).await;
    assert_eq!(done.status, 200, "{done:?}");
    let approved = login.poll(&started.device_code).await;
    assert_eq!(approved.status, "approved", "{approved:?}");
    assert!(approved.token.starts_with("mttrly_h_") && approved.token_id.starts_with("tkn_"), "{approved:?}");
    assert_eq!((approved.user_name.as_str(), approved.role.as_str()), ("bob", "operator"));
    let me = whoami(central, &approved.token).await;
    assert_eq!((me.user_name.as_str(), me.principal_type.as_str()), ("bob", "human"), "{me:?}");
    // Replay after success: refused, no second token.
    let replay = login.poll(&started.device_code).await;
    assert_eq!(replay.status, "expired_token", "{replay:?}");
    assert!(replay.token.is_empty());
    // And the user code is spent on the page too.
    let spent = started.user_code.clone();
    let (bob, again) = browse(bob, move |b| {
        let csrf = b.csrf("/device");
        b.post("/device", &[("csrf", &csrf), ("code", &spent)])
    })
    .await;
    assert_eq!(again.status, 404, "{again:?}");

    // Denied: the CLI is told, no token.
    let denied_login = login.start().await;
    let code = denied_login.user_code.clone();
    let (bob, page) = browse(bob, move |b| decide(b, &code, "deny")).await;
    assert_eq!(page.status, 200, "{page:?}");
    let denied = login.poll(&denied_login.device_code).await;
    assert_eq!(denied.status, "access_denied", "{denied:?}");
    assert!(denied.token.is_empty());

    // Expired before anyone decided: the page no longer finds it, the CLI is told.
    let late = login.start().await;
    central
        .central
        .db
        .with_connection_for_tests(|conn| {
            conn.execute("UPDATE device_logins SET expires_at = 1 WHERE status = 'pending'", [])
        })
        .await
        .unwrap();
    let code = late.user_code.clone();
    let (bob, gone) = browse(bob, move |b| {
        let csrf = b.csrf("/device");
        b.post("/device", &[("csrf", &csrf), ("code", &code)])
    })
    .await;
    assert_eq!(gone.status, 404, "{gone:?}");
    assert_eq!(login.poll(&late.device_code).await.status, "expired_token");

    // CSRF and origin on /device: a form without this session's token, or from another site,
    // decides nothing; without a session, a GET goes to sign-in and comes back, a POST is refused.
    let target = login.start().await;
    let code = target.user_code.clone();
    let base = central.http_url();
    let (_bob, (no_csrf, foreign, anonymous_get, anonymous_post)) = browse(bob, move |b| {
        let no_csrf = b.post("/device", &[("csrf", "0000"), ("code", &code), ("decision", "allow")]);
        let csrf = b.csrf("/device");
        let foreign =
            b.post_from("https://evil.example", "/device", &[("csrf", &csrf), ("code", &code), ("decision", "allow")]);
        let mut stranger = Browser::new(&base);
        let anonymous_get = stranger.get(&format!("/device?code={code}"));
        let anonymous_post = stranger.post("/device", &[("code", &code), ("decision", "allow")]);
        (no_csrf, foreign, anonymous_get, anonymous_post)
    })
    .await;
    assert_eq!(no_csrf.status, 403, "{no_csrf:?}");
    assert_eq!(foreign.status, 403, "{foreign:?}");
    assert_eq!(anonymous_get.status, 303, "{anonymous_get:?}");
    let location = anonymous_get.header("location").unwrap();
    assert!(location.starts_with("/signin?next=%2Fdevice%3Fcode%3D"), "{location}");
    assert_eq!(anonymous_post.status, 401, "{anonymous_post:?}");
    assert_eq!(login.poll(&target.device_code).await.status, "authorization_pending", "nothing was decided");

    // Another account's person approves a code: the token is of *their* account, and only there.
    let other_admin = format!("mttrly_h_{}", "o".repeat(43));
    let (other_account, _) = central
        .central
        .db
        .create_tenant("other", mttrly_core::Plan::DeploymentCrew, "olga", &mttrly_central::secrets::hash(&other_admin))
        .await
        .unwrap();
    let carol = person(central, &other_admin, "carol", "viewer").await;
    let code = target.user_code.clone();
    let (_carol, page) = browse(carol, move |b| decide(b, &code, "allow")).await;
    assert_eq!(page.status, 200, "{page:?}");
    let theirs = login.poll(&target.device_code).await;
    assert_eq!(theirs.status, "approved", "{theirs:?}");
    assert_eq!(theirs.account_id, other_account.to_string());
    assert_eq!(
        (theirs.user_name.as_str(), theirs.role.as_str()),
        ("carol", "viewer"),
        "a viewer's login is a viewer's token"
    );
    let me = whoami(central, &theirs.token).await;
    assert_eq!((me.account_id.as_str(), me.user_name.as_str()), (other_account.as_str(), "carol"));
    let first_admin = whoami(central, &h.admin).await;
    assert_ne!(first_admin.account_id, me.account_id);
    let channel = mttrly_tests::in_process::channel(central).await;
    let listed = mttrly_proto::central::v1::account_service_client::AccountServiceClient::new(channel)
        .list_tokens(authed(&h.admin, mttrly_proto::central::v1::ListTokensRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.tokens.iter().all(|t| t.id != theirs.token_id),
        "another account's token is invisible to this account's admin"
    );

    // `logout` with that token stored: revoked on central, then the file is gone.
    let home = h.dir.path().join("carol-home");
    let file = home.join("mttrly").join("credentials.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        format!(
            "central = \"{}\"\ntoken = \"{}\"\ntoken_id = \"{}\"\n",
            central.grpc_url(),
            theirs.token,
            theirs.token_id
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || cli_in(&home).args(["--output", "json", "logout"]).output().unwrap())
        .await
        .unwrap();
    let logged_out = json_of(&out);
    assert_eq!(
        (logged_out["revoked"].as_bool(), logged_out["deleted"].as_bool()),
        (Some(true), Some(true)),
        "{logged_out}"
    );
    assert!(!file.exists());
    let channel = mttrly_tests::in_process::channel(central).await;
    let refused = mttrly_proto::central::v1::account_service_client::AccountServiceClient::new(channel)
        .who_am_i(authed(&theirs.token, WhoAmIRequest {}))
        .await
        .expect_err("revoked by logout");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_codes_lock_the_person_out_of_the_device_page() {
    let h = crate::common::harness(|_| {}).await;
    let central = &h.central;
    let mut login = Login::connect(central).await;
    let eve = person(central, &h.admin, "eve", "viewer").await;
    let real = login.start().await;
    let code = real.user_code.clone();
    let (_eve, (misses, locked)) = browse(eve, move |b| {
        let csrf = b.csrf("/device");
        let misses: Vec<u16> = ["BBBB-BBBB", "CCCC-CCCC", "not a code", "DDDD-DDDD", "FFFF-FFFF"]
            .iter()
            .map(|guess| b.post("/device", &[("csrf", &csrf), ("code", guess)]).status)
            .collect();
        // Locked now, even for the right code.
        let locked = b.post("/device", &[("csrf", &csrf), ("code", &code)]);
        (misses, locked)
    })
    .await;
    assert_eq!(misses, vec![404; 5]);
    assert_eq!(locked.status, 429, "{locked:?}");
    assert!(locked.body.contains("Too many wrong codes"), "{}", locked.body);
    assert_eq!(login.poll(&real.device_code).await.status, "authorization_pending");
}

#[test]
fn ctrl_c_stops_a_login_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let central = TestCentral::start(dir.path());
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (child, _code, _url, stderr) = start_cli_login(&central, &home);
    // SIGINT, as Ctrl-C sends it.
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = wait_output(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let err = drain(&stderr).join("\n");
    assert!(err.contains("login cancelled"), "{err}");
    assert!(!home.join("mttrly").join("credentials.toml").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_logins_is_rate_limited_across_central() {
    let h = crate::common::harness(|_| {}).await;
    let mut login = Login::connect(&h.central).await;
    for _ in 0..mttrly_central::signin::device_flow::STARTS_PER_MINUTE {
        login.start().await;
    }
    // Another client, another connection: the budget is central's, not the caller's.
    let mut other = Login::connect(&h.central).await;
    let refused = other
        .client
        .start_device_login(StartDeviceLoginRequest { client_name: "x".into(), client_host: "y".into() })
        .await
        .expect_err("over the limit");
    let err = mttrly_proto::status::from_status(&refused);
    assert_eq!(err.code(), mttrly_core::ErrorCode::RateLimited, "{err:?}");
    assert!(err.details().get("retry_after_seconds").is_some(), "{err:?}");
}
