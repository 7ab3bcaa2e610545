//! Issue 12, people sign in without an identity provider: an invite link sets a password and
//! enrols TOTP, sign-in asks for both, sessions are server-side cookies. A real central over HTTP,
//! a cookie-keeping client, codes computed with `mttrly_core::second_factor::totp`. The probes
//! each assert that nothing changed: a replayed code (also after a restart), the lockout, expired,
//! reused, replaced and unknown invites, session fixation, CSRF (missing, wrong, cross-site), a
//! removed user's session, another tenant, idle and absolute timeouts, plain HTTP to a remote
//! address. And `mttrly-cli totp enroll` through the real binary.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};

use mttrly_core::ErrorCode;
use mttrly_core::second_factor::TotpSecret;
use mttrly_core::second_factor::totp::STEP_SECONDS;
use mttrly_proto::central::v1::AddUserRequest;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use serde_json::Value;

use crate::common::{Harness, authed, harness, urlencode};

/// A browser that keeps cookies (one site) and follows no redirect on its own.
struct Browser {
    http: reqwest::Client,
    base: String,
    jar: BTreeMap<String, String>,
    /// The `Origin` its POSTs carry (a real browser sends the page's own).
    origin: Option<String>,
}

/// What a request answered.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: base.to_owned(), jar: BTreeMap::new(), origin: Some(base.to_owned()) }
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if value.is_empty() || set.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let cookies = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let request = if cookies.is_empty() { request } else { request.header(reqwest::header::COOKIE, cookies) };
        let response = request.send().await.unwrap();
        self.keep(&response);
        let status = response.status().as_u16();
        let location = response.headers().get(reqwest::header::LOCATION).map(|l| l.to_str().unwrap().to_owned());
        Answer { status, location, body: response.text().await.unwrap() }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = form.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect::<Vec<_>>().join("&");
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        if let Some(origin) = &self.origin {
            request = request.header(reqwest::header::ORIGIN, origin);
        }
        self.send(request).await
    }

    fn session(&self) -> Option<String> {
        self.jar.get("mttrly_session").cloned()
    }

    /// Whether `GET /` shows a signed-in page naming `name`.
    async fn signed_in_as(&mut self, name: &str) -> bool {
        let home = self.get("/").await;
        home.status == 200 && home.body.contains(&format!("Signed in as <b>{name}</b>"))
    }
}

/// The value of the hidden input `name` in a page.
fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = body.find(&marker).unwrap_or_else(|| panic!("no {name} in {body}")) + marker.len();
    body[at..].split('"').next().unwrap().to_owned()
}

fn now_step() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_second()).unwrap() / STEP_SECONDS
}

fn code_at(secret: &TotpSecret, step: u64) -> String {
    format!("{:06}", secret.code_at(step))
}

/// A person enrolled through their invite: the secret their app holds, the step last used, the
/// recovery codes, and the browser that did it (signed in).
struct Enrolled {
    secret: TotpSecret,
    last_step: u64,
    recovery: Vec<String>,
    browser: Browser,
}

const PASSWORD: &str = "correct horse battery staple";

impl Harness {
    fn base(&self) -> String {
        self.central.http_url()
    }

    /// Adds a user through gRPC (as the admin) and returns the invite link's path.
    async fn invite(&self, name: &str, role: &str) -> String {
        let added = UserServiceClient::new(self.channel().await)
            .add_user(authed(
                &self.admin,
                AddUserRequest {
                    name: name.into(),
                    role: role.into(),
                    email: String::new(),
                    issue_token: false,
                    second_factor_code: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(added.token.is_empty(), "an invite, not a token");
        let url = added.invite_url;
        assert!(url.starts_with(&format!("{}/invite/", self.base())), "{url}");
        url[self.base().len()..].to_owned()
    }

    /// Goes through an invite as its person would (resuming at the code step if the password
    /// was chosen before).
    async fn enrol(&self, path: &str) -> Enrolled {
        self.enrol_as(path, PASSWORD).await
    }

    /// [`Self::enrol`] choosing `password`.
    async fn enrol_as(&self, path: &str, password: &str) -> Enrolled {
        let mut browser = Browser::new(&self.base());
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path} {:?} {}", page.location, page.body);
        let csrf = hidden(&page.body, "csrf");
        let step = if page.body.contains("Set your password") {
            browser
                .post(
                    path,
                    &[("csrf", &csrf), ("step", "password"), ("password", password), ("password_again", password)],
                )
                .await
        } else {
            page
        };
        assert_eq!(step.status, 200, "{}", step.body);
        assert!(step.body.contains("<svg"), "a QR code: {}", step.body);
        let secret = key_of(&step.body);
        let now = now_step();
        let done = browser.post(path, &[("csrf", &csrf), ("step", "code"), ("code", &code_at(&secret, now))]).await;
        assert_eq!(done.status, 200, "{}", done.body);
        let recovery: Vec<String> =
            done.body.split("<li><code>").skip(1).map(|s| s.split('<').next().unwrap().to_owned()).collect();
        assert_eq!(recovery.len(), 10, "{}", done.body);
        assert!(browser.session().is_some(), "the invite signs the person in");
        Enrolled { secret, last_step: now, recovery, browser }
    }

    /// Signs in on a fresh browser; the answer to the POST.
    async fn sign_in(&self, browser: &mut Browser, login: &str, password: &str, code: &str, next: &str) -> Answer {
        let page = browser.get(&format!("/signin?next={}", urlencode(next))).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = hidden(&page.body, "csrf");
        let next = hidden(&page.body, "next");
        browser
            .post(
                "/signin",
                &[("csrf", &csrf), ("login", login), ("password", password), ("code", code), ("next", &next)],
            )
            .await
    }

    /// Runs SQL on central's database (the tests' hatch), e.g. to move time.
    async fn sql(&self, sql: &'static str, user: &str) -> usize {
        let user = user.to_owned();
        self.central
            .central
            .db
            .with_connection_for_tests(move |c| c.execute(sql, rusqlite::params![user, now_ms()]))
            .await
            .unwrap()
    }

    async fn user_id(&self, name: &str) -> mttrly_core::ids::UserId {
        let (account, _) = self.central.central.db.first_account().await.unwrap().unwrap();
        let users = self.central.central.db.account(&account).users().list().await.unwrap();
        users.into_iter().find(|u| u.name == name).unwrap().id
    }

    async fn account(&self) -> mttrly_core::ids::AccountId {
        self.central.central.db.first_account().await.unwrap().unwrap().0
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The base32 key an enrolment page shows.
fn key_of(body: &str) -> TotpSecret {
    let at = body.find("Key: <code>").unwrap() + "Key: <code>".len();
    let key: String = body[at..].split('<').next().unwrap().chars().filter(|c| !c.is_whitespace()).collect();
    TotpSecret::from_base32(&key).unwrap()
}

// The CLI runs as a child process while central serves in this runtime: two workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_sets_a_password_and_totp_then_sign_in_asks_for_both() {
    let h = harness(|_| {}).await;
    // The CLI prints the invite (the JSON field names are a contract).
    let out = std::process::Command::new(mttrly_tests::binary("mttrly-cli"))
        .args(["--central", h.central.grpc_url(), "--token", &h.admin, "--output", "json"])
        .args(["users", "add", "bob", "--role", "operator", "--email", "bob@example.com"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = added.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["user_id", "name", "role", "invite_url", "expires_at"], "{added}");
    assert_eq!((added["name"].as_str(), added["role"].as_str()), (Some("bob"), Some("operator")));
    let expires: jiff::Timestamp = added["expires_at"].as_str().unwrap().parse().unwrap();
    let hours = (expires.as_second() - jiff::Timestamp::now().as_second()) / 3600;
    assert!((71..=72).contains(&hours), "72 hours: {added}");
    let url = added["invite_url"].as_str().unwrap();
    let path = &url[h.base().len()..];

    // Before the code confirms the enrolment, nobody can sign in as bob.
    let mut early = Browser::new(&h.base());
    let page = early.get(path).await;
    let csrf = hidden(&page.body, "csrf");
    let short = early
        .post(path, &[("csrf", &csrf), ("step", "password"), ("password", "short"), ("password_again", "short")])
        .await;
    assert_eq!(short.status, 400, "{}", short.body);
    assert!(short.body.contains("at least 12 characters"), "{}", short.body);
    let differ = early
        .post(
            path,
            &[("csrf", &csrf), ("step", "password"), ("password", PASSWORD), ("password_again", "another long one")],
        )
        .await;
    assert!(differ.body.contains("differ"), "{}", differ.body);
    let step = early
        .post(path, &[("csrf", &csrf), ("step", "password"), ("password", PASSWORD), ("password_again", PASSWORD)])
        .await;
    let shown = key_of(&step.body);
    let mut other = Browser::new(&h.base());
    let refused = h.sign_in(&mut other, "bob", PASSWORD, &code_at(&shown, now_step()), "/").await;
    assert_eq!(refused.status, 401, "not enrolled until a code confirms it");
    // The interrupted enrolment resumes with the same secret; a wrong code changes nothing.
    let resumed = early.get(path).await;
    assert_eq!(key_of(&resumed.body), shown, "{}", resumed.body);
    let wrong = early.post(path, &[("csrf", &csrf), ("step", "code"), ("code", "000000")]).await;
    let wrong_is_right = code_at(&shown, now_step()) == "000000";
    if !wrong_is_right {
        assert_eq!(wrong.status, 400, "{}", wrong.body);
        assert!(early.session().is_none());
    }

    let bob = h.enrol(path).await;
    let mut browser = bob.browser;
    assert!(browser.signed_in_as("bob").await);

    // Sign out needs the session's CSRF token; then the home page sends to sign-in.
    let home = browser.get("/").await;
    let csrf = hidden(&home.body, "csrf");
    let out = browser.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/signin")));
    assert!(browser.session().is_none(), "the cookie is cleared");
    let home = browser.get("/").await;
    assert_eq!((home.status, home.location.as_deref()), (303, Some("/signin")));
    let deep = browser.get("/?view=7").await;
    assert_eq!(deep.location.as_deref(), Some("/signin?next=%2F%3Fview%3D7"), "the way back is kept");

    // Sign in with the name or the e-mail, password and the next code; `next` only on this site.
    let mut fresh = Browser::new(&h.base());
    let ok = h
        .sign_in(&mut fresh, "bob@example.com", PASSWORD, &code_at(&bob.secret, bob.last_step + 1), "/actions?id=7")
        .await;
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/actions?id=7")), "{}", ok.body);
    assert!(fresh.signed_in_as("bob").await);
    let cookie = ok_cookie(&fresh);
    assert_eq!(cookie.len(), 43);
    // A recovery code works once in place of a code, and `next` off-site falls back to `/`.
    let mut third = Browser::new(&h.base());
    let ok = h.sign_in(&mut third, "bob", PASSWORD, &bob.recovery[0].to_uppercase(), "//evil.example/x").await;
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/")), "{}", ok.body);
    let mut fourth = Browser::new(&h.base());
    let again = h.sign_in(&mut fourth, "bob", PASSWORD, &bob.recovery[0], "/").await;
    assert_eq!(again.status, 401, "a recovery code is single-use");

    // Every failure reads the same: unknown name, wrong password, wrong code.
    let mut probe = Browser::new(&h.base());
    let unknown = h.sign_in(&mut probe, "nobody", PASSWORD, "123456", "/").await;
    let bad_password = h.sign_in(&mut probe, "bob", "not the password at all", "123456", "/").await;
    let bad_code = h.sign_in(&mut probe, "bob", PASSWORD, "12345", "/").await;
    assert_eq!((unknown.status, bad_password.status, bad_code.status), (401, 401, 401));
    let message = |a: &Answer| a.body.split("class=\"err\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert_eq!(message(&unknown), message(&bad_password));
    assert_eq!(message(&unknown), message(&bad_code));
    assert!(probe.session().is_none());

    // The audit log has the sign-ins and the invite, never a password or a code.
    h.central.central.audit.flush().await;
    let filter = mttrly_central::db::audit::AuditFilter { limit: 1000, ..Default::default() };
    let rows = h.central.central.db.account(&h.account().await).audit().list(&filter).await.unwrap();
    let text = format!("{rows:?}");
    for subject in ["AcceptInvite", "SignIn", "SignOut", "VerifySecondFactor", "AddUser"] {
        assert!(text.contains(subject), "{subject} audited");
    }
    assert!(!text.contains(PASSWORD) && !text.contains(&bob.recovery[1]));
}

fn ok_cookie(browser: &Browser) -> String {
    browser.session().unwrap()
}

#[tokio::test]
async fn a_code_is_never_accepted_twice_also_after_a_restart() {
    let h = harness(|_| {}).await;
    let path = h.invite("bob", "viewer").await;
    let bob = h.enrol(&path).await;
    // The code that confirmed the enrolment is spent already.
    let mut browser = Browser::new(&h.base());
    let replay = h.sign_in(&mut browser, "bob", PASSWORD, &code_at(&bob.secret, bob.last_step), "/").await;
    assert_eq!(replay.status, 401);
    let next = code_at(&bob.secret, bob.last_step + 1);
    let ok = h.sign_in(&mut browser, "bob", PASSWORD, &next, "/").await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let mut other = Browser::new(&h.base());
    assert_eq!(h.sign_in(&mut other, "bob", PASSWORD, &next, "/").await.status, 401, "replayed");

    // Restarted on the same data directory: still spent (the step is stored, not remembered).
    let Harness { dir, central, admin } = h;
    central.shutdown().await;
    let restarted = mttrly_central::server::start(crate::common::config(dir.path())).await.unwrap();
    let h = Harness { dir, central: restarted, admin };
    let mut after = Browser::new(&h.base());
    assert_eq!(h.sign_in(&mut after, "bob", PASSWORD, &next, "/").await.status, 401, "replayed after a restart");
    // The sealed secret still opens with the data directory's key: with the stored step moved
    // back (the hatch; the clock has not moved on), the current code works.
    let user = h.user_id("bob").await;
    h.sql(
        "UPDATE user_credentials SET totp_last_step = totp_last_step - 5 WHERE user_id = ?1 AND ?2 > 0",
        user.as_str(),
    )
    .await;
    let ok = h.sign_in(&mut after, "bob", PASSWORD, &code_at(&bob.secret, now_step()), "/").await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    // The key file is the owner's alone, and the database holds no secret in the clear.
    let key = h.dir.path().join("data").join(mttrly_central::second_factor::KEY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let stored: Vec<u8> = h
        .central
        .central
        .db
        .with_connection_for_tests(|c| c.query_row("SELECT totp_sealed FROM user_credentials", [], |r| r.get(0)))
        .await
        .unwrap();
    let b32 = bob.secret.to_base32();
    assert!(!String::from_utf8_lossy(&stored).contains(&b32[..16]));
}

#[tokio::test]
async fn five_wrong_codes_lock_codes_and_five_wrong_passwords_lock_only_password_sign_in() {
    let h = harness(|_| {}).await;
    let path = h.invite("bob", "viewer").await;
    let bob = h.enrol(&path).await;
    let user = h.user_id("bob").await;
    let account = h.account().await;
    let central = &h.central.central;
    let mut browser = Browser::new(&h.base());
    let wrong = if code_at(&bob.secret, now_step()) == "999999" { "999998" } else { "999999" };
    for _ in 0..5 {
        assert_eq!(h.sign_in(&mut browser, "bob", PASSWORD, wrong, "/").await.status, 401);
    }
    // Locked: even the right password and the next code are refused, and nothing is spent.
    let right = code_at(&bob.secret, bob.last_step + 1);
    assert_eq!(h.sign_in(&mut browser, "bob", PASSWORD, &right, "/").await.status, 401);
    let locked = mttrly_central::second_factor::verify(central, &account, &user, &right).await;
    let err = locked.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited, "{err:?}");
    assert!(err.message().contains("locked until"), "{err:?}");
    // Fifteen minutes, not more: move the lock to its end (the hatch) and the same code works.
    let until: i64 = central
        .db
        .with_connection_for_tests(|c| c.query_row("SELECT locked_until FROM user_credentials", [], |r| r.get(0)))
        .await
        .unwrap();
    let lock_ms = until - now_ms();
    assert!((14 * 60_000..=15 * 60_000).contains(&lock_ms), "{lock_ms}");
    h.sql("UPDATE user_credentials SET locked_until = ?2 - 1 WHERE user_id = ?1", user.as_str()).await;
    assert_eq!(h.sign_in(&mut browser, "bob", PASSWORD, &right, "/").await.status, 303);

    // Wrong passwords have their own counter: five lock sign-in by password (the right password
    // with a recovery code is refused unchecked, nothing spent) ...
    let mut other = Browser::new(&h.base());
    for _ in 0..5 {
        assert_eq!(h.sign_in(&mut other, "bob", "a wrong password here", wrong, "/").await.status, 401);
    }
    assert_eq!(h.sign_in(&mut other, "bob", PASSWORD, &bob.recovery[0], "/").await.status, 401, "locked by passwords");
    let factor = central.db.account(&account).people().factor(&user).await.unwrap().unwrap();
    assert_eq!(factor.recovery_left, 10, "a locked attempt spends nothing");
    assert!(other.session().is_none());
    let password_lock = factor.password_lockout.locked_until_ms.unwrap() - now_ms();
    assert!((14 * 60_000..=15 * 60_000).contains(&password_lock), "{password_lock}");
    // ... and never the person's codes: the second factor's counter is untouched, a fresh code
    // (what an approval with `second_factor = "totp"` checks) is accepted.
    assert_eq!((factor.lockout.failures, factor.lockout.locked_until_ms), (0, None), "{factor:?}");
    let fresh = code_at(&bob.secret, bob.last_step + 2);
    if now_step() + 1 >= bob.last_step + 2 {
        mttrly_central::second_factor::verify(central, &account, &user, &fresh).await.unwrap();
    } else {
        mttrly_central::second_factor::verify(central, &account, &user, &bob.recovery[1]).await.unwrap();
    }
    // Fifteen minutes later the right password works again, and clears the count.
    h.sql("UPDATE user_credentials SET password_locked_until = ?2 - 1 WHERE user_id = ?1", user.as_str()).await;
    assert_eq!(h.sign_in(&mut other, "bob", PASSWORD, &bob.recovery[2], "/").await.status, 303);
    let factor = central.db.account(&account).people().factor(&user).await.unwrap().unwrap();
    assert_eq!(factor.password_lockout, mttrly_core::second_factor::LockoutState::default());
}

// The CLI runs as a child process while central serves in this runtime: two workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_used_replaced_and_unknown_invites_change_nothing() {
    let h = harness(|_| {}).await;
    let account = h.account().await;
    let path = h.invite("bob", "viewer").await;
    let user = h.user_id("bob").await;
    let mut browser = Browser::new(&h.base());
    let page = browser.get(&path).await;
    let csrf = hidden(&page.body, "csrf");

    // Expired (moved past its expiry through the hatch): a clear page, nothing stored.
    h.sql("UPDATE invites SET expires_at = ?2 - 1 WHERE user_id = ?1", user.as_str()).await;
    let expired = browser.get(&path).await;
    assert_eq!(expired.status, 410);
    assert!(expired.body.contains("expired"), "{}", expired.body);
    let post = browser
        .post(&path, &[("csrf", &csrf), ("step", "password"), ("password", PASSWORD), ("password_again", PASSWORD)])
        .await;
    assert_eq!(post.status, 410);
    let factor = h.central.central.db.account(&account).people().factor(&user).await.unwrap().unwrap();
    assert!(factor.sealed.is_none() && factor.pending.is_none());
    assert!(!mttrly_central::second_factor::enrolled(&h.central.central, &account, &user).await.unwrap());

    // A fresh link (`users invite`) works; the old one says it was replaced.
    let out = std::process::Command::new(mttrly_tests::binary("mttrly-cli"))
        .args(["--central", h.central.grpc_url(), "--token", &h.admin, "--output", "json", "users", "invite", "bob"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fresh: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fresh_path = fresh["invite_url"].as_str().unwrap()[h.base().len()..].to_owned();
    let bob = h.enrol(&fresh_path).await;
    assert_eq!(browser.get(&path).await.status, 410, "the older link");

    // Used: a second enrolment through the same link is refused, the factor unchanged.
    let mut again = Browser::new(&h.base());
    let used = again.get(&fresh_path).await;
    assert_eq!(used.status, 410);
    assert!(used.body.contains("already used"), "{}", used.body);
    let csrf = hidden(&browser.get("/signin").await.body, "csrf");
    let post = again.post(&fresh_path, &[("csrf", &csrf), ("step", "code"), ("code", "123456")]).await;
    assert!(post.status == 403 || post.status == 410, "{}", post.status);
    let mut check = Browser::new(&h.base());
    let ok = h.sign_in(&mut check, "bob", PASSWORD, &code_at(&bob.secret, bob.last_step + 1), "/").await;
    assert_eq!(ok.status, 303, "the enrolment that used the link stands");

    // Unknown, malformed or another site's secret: not found, nothing looked up.
    for bad in ["/invite/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/invite/..%2F..%2Fetc", "/invite/x"] {
        let page = again.get(bad).await;
        assert_eq!(page.status, 404, "{bad}");
        assert!(page.body.contains("not known"), "{bad}: {}", page.body);
    }
    // A lost phone: `users invite` again replaces the password and the factor on use, and ends
    // the sessions of the old ones.
    let mut old_session = bob.browser;
    assert!(old_session.signed_in_as("bob").await);
    let relink = h.invite_again("bob").await;
    let renewed = h.enrol(&relink).await;
    assert!(!old_session.signed_in_as("bob").await, "the old session ended with the old factor");
    let mut check = Browser::new(&h.base());
    let old_code = code_at(&bob.secret, now_step() + 1);
    let new_code = code_at(&renewed.secret, renewed.last_step + 1);
    if old_code != new_code {
        assert_eq!(h.sign_in(&mut check, "bob", PASSWORD, &old_code, "/").await.status, 401, "the old factor is gone");
    }
    assert_eq!(h.sign_in(&mut check, "bob", PASSWORD, &new_code, "/").await.status, 303);
}

impl Harness {
    /// A fresh invite for `name`, who has a second factor: replacing it needs a code of the
    /// admin's own (`tests/it/resets.rs`), so the admin enrols here and confirms with a recovery code.
    async fn invite_again(&self, name: &str) -> String {
        let (_, _, recovery) = crate::approvals::enroll_totp(self, &self.admin).await;
        let request =
            mttrly_proto::central::v1::InviteUserRequest { name: name.into(), second_factor_code: recovery[0].clone() };
        let invited = UserServiceClient::new(self.channel().await)
            .invite_user(authed(&self.admin, request))
            .await
            .unwrap()
            .into_inner();
        invited.invite_url[self.base().len()..].to_owned()
    }
}

#[tokio::test]
async fn a_planted_session_id_is_never_the_one_signed_in() {
    let h = harness(|_| {}).await;
    let mallory = h.enrol(&h.invite("mallory", "viewer").await).await;
    let bob = h.enrol(&h.invite("bob", "viewer").await).await;
    // Mallory plants her own live session id, and a made-up one, in the victim's browser.
    let planted = mallory.browser.session().unwrap();
    for plant in [planted.clone(), "A".repeat(43)] {
        let mut victim = Browser::new(&h.base());
        let csrf = hidden(&victim.get("/signin").await.body, "csrf");
        victim.jar.insert("mttrly_session".into(), plant.clone());
        // The next code the first time; a recovery code the second (the next step is spent).
        let code = if plant == planted { code_at(&bob.secret, bob.last_step + 1) } else { bob.recovery[0].clone() };
        let form = [("csrf", csrf.as_str()), ("login", "bob"), ("password", PASSWORD), ("code", &code), ("next", "/")];
        let ok = victim.post("/signin", &form).await;
        assert_eq!(ok.status, 303, "{}", ok.body);
        let after = victim.session().unwrap();
        assert_ne!(after, plant, "rotated at sign-in");
        assert!(victim.signed_in_as("bob").await);
        // Whoever holds the planted id is not bob.
        let mut attacker = Browser::new(&h.base());
        attacker.jar.insert("mttrly_session".into(), plant);
        assert!(!attacker.signed_in_as("bob").await);
        assert_eq!(attacker.get("/").await.status, 303, "the planted session was ended too");
    }
}

#[tokio::test]
async fn forms_without_the_right_token_or_from_another_site_are_refused() {
    let h = harness(|_| {}).await;
    let bob = h.enrol(&h.invite("bob", "viewer").await).await;
    let mut browser = bob.browser;
    let csrf = hidden(&browser.get("/").await.body, "csrf");

    // Sign-out: no token, a wrong one, the right one from another site. Still signed in.
    let wrong = "0".repeat(64);
    for form in [vec![], vec![("csrf", wrong.as_str())]] {
        let r = browser.post("/signout", &form).await;
        assert_eq!(r.status, 403, "{form:?}");
    }
    browser.origin = Some("https://evil.example".into());
    assert_eq!(browser.post("/signout", &[("csrf", &csrf)]).await.status, 403);
    browser.origin = None;
    let cross = browser
        .send(
            browser
                .http
                .post(format!("{}/signout", h.base()))
                .header("sec-fetch-site", "cross-site")
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(cross.status, 403);
    assert!(browser.signed_in_as("bob").await, "nothing changed");
    // Another session's token is not this one's.
    let mut second = Browser::new(&h.base());
    h.sign_in(&mut second, "bob", PASSWORD, &code_at(&bob.secret, bob.last_step + 1), "/").await;
    let other_csrf = hidden(&second.get("/").await.body, "csrf");
    assert_ne!(other_csrf, csrf);
    browser.origin = Some(h.base());
    assert_eq!(browser.post("/signout", &[("csrf", &other_csrf)]).await.status, 403);
    assert!(browser.signed_in_as("bob").await);
    assert_eq!(browser.post("/signout", &[("csrf", &csrf)]).await.status, 303);

    // The invite forms and the sign-in form carry the pre-session token.
    let path = h.invite("ann", "viewer").await;
    let user = h.user_id("ann").await;
    let mut fresh = Browser::new(&h.base());
    let page = fresh.get(&path).await;
    let csrf = hidden(&page.body, "csrf");
    let form = [("step", "password"), ("password", PASSWORD), ("password_again", PASSWORD)];
    assert_eq!(fresh.post(&path, &form).await.status, 403, "no token");
    let mut with_wrong = form.to_vec();
    with_wrong.push(("csrf", &wrong));
    assert_eq!(fresh.post(&path, &with_wrong).await.status, 403, "a wrong token");
    let mut right = form.to_vec();
    right.push(("csrf", &csrf));
    fresh.origin = Some("https://evil.example".into());
    assert_eq!(fresh.post(&path, &right).await.status, 403, "another site");
    // A token without its cookie (an attacker's page has the token of its own visit only).
    let mut cookieless = Browser::new(&h.base());
    assert_eq!(cookieless.post(&path, &right).await.status, 403, "no cookie");
    let stored: Option<String> = h
        .central
        .central
        .db
        .with_connection_for_tests(move |c| {
            c.query_row("SELECT password_hash FROM invites WHERE user_id = ?1", [user.as_str()], |r| r.get(0))
        })
        .await
        .unwrap();
    assert_eq!(stored, None, "nothing was chosen");
    fresh.origin = Some(h.base());
    assert_eq!(fresh.post(&path, &right).await.status, 200);

    let mut login = Browser::new(&h.base());
    let sign_in =
        [("login", "bob"), ("password", PASSWORD), ("code", "123456"), ("next", "/"), ("csrf", wrong.as_str())];
    let r = login.post("/signin", &sign_in).await;
    assert_eq!(r.status, 403, "the sign-in form needs its token too");
}

#[tokio::test]
async fn a_removed_users_session_ends_at_once() {
    let h = harness(|_| {}).await;
    let bob = h.enrol(&h.invite("bob", "operator").await).await;
    let mut browser = bob.browser;
    assert!(browser.signed_in_as("bob").await);
    UserServiceClient::new(h.channel().await)
        .remove_user(authed(
            &h.admin,
            mttrly_proto::central::v1::RemoveUserRequest { name: "bob".into(), second_factor_code: String::new() },
        ))
        .await
        .unwrap();
    let home = browser.get("/").await;
    assert_eq!((home.status, home.location.as_deref()), (303, Some("/signin")));
    let mut again = Browser::new(&h.base());
    let code = code_at(&bob.secret, bob.last_step + 1);
    assert_eq!(h.sign_in(&mut again, "bob", PASSWORD, &code, "/").await.status, 401);
}

#[tokio::test]
async fn another_tenants_people_stay_on_their_side_of_the_wall() {
    let h = harness(|_| {}).await;
    let db = &h.central.central.db;
    let a = h.account().await;
    let bob_a = h.enrol(&h.invite("bob", "viewer").await).await;
    // Account B, with its own bob, invited through the storage operation.
    let (b, _) = db.create_tenant("other", mttrly_core::Plan::DeploymentCrew, "root", &[42; 32]).await.unwrap();
    let secret = "B".repeat(43);
    let hash = mttrly_central::secrets::hash(&secret);
    let bob_b_user = db
        .account(&b)
        .people()
        .add_with_invite("bob", mttrly_core::Role::Admin, None, &hash, now_ms() + 3_600_000)
        .await
        .unwrap()
        .unwrap();
    let b_password = "another tenant's passphrase";
    let mut browser = Browser::new(&h.base());
    let page = browser.get(&format!("/invite/{secret}")).await;
    let csrf = hidden(&page.body, "csrf");
    let step = browser
        .post(
            &format!("/invite/{secret}"),
            &[("csrf", &csrf), ("step", "password"), ("password", b_password), ("password_again", b_password)],
        )
        .await;
    let b_secret = key_of(&step.body);
    let done = browser
        .post(
            &format!("/invite/{secret}"),
            &[("csrf", &csrf), ("step", "code"), ("code", &code_at(&b_secret, now_step()))],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(browser.body_role("admin").await, "B's bob is B's admin");

    // Same name, two tenants: `bob` alone names nobody; `account/bob` names one, in its account.
    let mut as_a = Browser::new(&h.base());
    let a_code = code_at(&bob_a.secret, bob_a.last_step + 1);
    assert_eq!(h.sign_in(&mut as_a, "bob", PASSWORD, &a_code, "/").await.status, 401, "ambiguous");
    h.sign_in(&mut as_a, "default/bob", PASSWORD, &a_code, "/").await;
    assert!(as_a.body_role("viewer").await);
    let session_a =
        db.signins().session(&mttrly_central::secrets::hash(&as_a.session().unwrap())).await.unwrap().unwrap();
    assert_eq!(session_a.account_id, a);
    // A's password with B's code (or the reverse) is nobody.
    let mut mixed = Browser::new(&h.base());
    let r = h.sign_in(&mut mixed, "default/bob", PASSWORD, &code_at(&b_secret, now_step() + 1), "/").await;
    assert_eq!(r.status, 401);
    let r = h.sign_in(&mut mixed, "other/bob", PASSWORD, &code_at(&b_secret, now_step() + 1), "/").await;
    assert_eq!(r.status, 401);
    // App operations keyed by another account's id behave as if the person did not exist.
    let central = &h.central.central;
    let code = code_at(&b_secret, now_step() + 1);
    let err = mttrly_central::second_factor::verify(central, &a, &bob_b_user.id, &code).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden, "{err:?}");
    assert!(!mttrly_central::second_factor::enrolled(central, &a, &bob_b_user.id).await.unwrap());
    assert!(mttrly_central::second_factor::enrolled(central, &b, &bob_b_user.id).await.unwrap());
    assert!(db.account(&a).people().factor(&bob_b_user.id).await.unwrap().is_none());
    let hash_b = mttrly_central::secrets::hash(&browser.session().unwrap());
    assert!(!db.account(&a).people().end_session(&hash_b, now_ms()).await.unwrap(), "A cannot end B's session");
    assert!(browser.body_role("admin").await, "still signed in");
}

impl Browser {
    /// Whether `GET /` shows a signed-in page with `role`.
    async fn body_role(&mut self, role: &str) -> bool {
        let home = self.get("/").await;
        home.status == 200 && home.body.contains(&format!("({role}, through"))
    }
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_a_session() {
    let h = harness(|_| {}).await;
    let bob = h.enrol(&h.invite("bob", "viewer").await).await;
    let mut browser = bob.browser;
    assert!(browser.signed_in_as("bob").await);
    let hash = hex::encode(mttrly_central::secrets::hash(&browser.session().unwrap()));
    // Unused for the idle limit (12 h): signed out.
    h.sql_hash(
        "UPDATE web_sessions SET last_seen_at = ?2 - 12 * 3600 * 1000 - 1 WHERE hex(session_hash) = upper(?1)",
        &hash,
    )
    .await;
    assert!(!browser.signed_in_as("bob").await, "idle");
    // Busy, but signed in longer than the absolute limit (7 days): signed out.
    let mut again = Browser::new(&h.base());
    h.sign_in(&mut again, "bob", PASSWORD, &code_at(&bob.secret, bob.last_step + 1), "/").await;
    assert!(again.signed_in_as("bob").await);
    let hash = hex::encode(mttrly_central::secrets::hash(&again.session().unwrap()));
    h.sql_hash(
        "UPDATE web_sessions SET created_at = ?2 - 7 * 24 * 3600 * 1000 - 1, last_seen_at = ?2 WHERE hex(session_hash) = upper(?1)",
        &hash,
    )
    .await;
    assert!(!again.signed_in_as("bob").await, "absolute");
    // Just inside both limits: still signed in, and the use is recorded.
    let mut third = Browser::new(&h.base());
    h.sign_in(&mut third, "bob", PASSWORD, &bob.recovery[0], "/").await;
    let hash = hex::encode(mttrly_central::secrets::hash(&third.session().unwrap()));
    h.sql_hash(
        "UPDATE web_sessions SET last_seen_at = ?2 - 12 * 3600 * 1000 + 60000 WHERE hex(session_hash) = upper(?1)",
        &hash,
    )
    .await;
    assert!(third.signed_in_as("bob").await);
    let seen: i64 = h
        .central
        .central
        .db
        .with_connection_for_tests(move |c| {
            c.query_row("SELECT last_seen_at FROM web_sessions WHERE hex(session_hash) = upper(?1)", [hash], |r| {
                r.get(0)
            })
        })
        .await
        .unwrap();
    assert!(now_ms() - seen < 60_000, "touched on use");
}

impl Harness {
    async fn sql_hash(&self, sql: &'static str, hash: &str) -> usize {
        let n = self.sql(sql, hash).await;
        assert_eq!(n, 1, "{sql}");
        n
    }
}

#[tokio::test]
async fn no_session_is_set_over_plain_http_to_a_remote_address() {
    let h = harness(|c| c.public_http_url = Some("http://10.9.8.7:8080".into())).await;
    let mut browser = Browser::new(&h.base());
    let page = browser.get("/signin").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("HTTPS"), "{}", page.body);
    assert!(browser.jar.is_empty(), "no cookie of any kind");
}

#[test]
fn totp_enroll_from_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let central = mttrly_tests::TestCentral::start(dir.path());
    let admin = central.admin_token.clone();
    let status = |token: &str| -> Value {
        let out = central.cli_as(token, &["--output", "json", "totp", "status"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(status(&admin)["enrolled"], false);

    // Enrol: read the key the CLI prints, answer the prompt with a code from it.
    let (secret, out) = enroll(&central, &admin, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("otpauth://totp/"), "{text}");
    assert!(text.contains('▀') || text.contains('▄') || text.contains('█'), "a QR code in the terminal: {text}");
    let codes: Vec<&str> =
        text.lines().filter(|l| l.trim().len() == 19 && l.trim().matches('-').count() == 3).collect();
    assert_eq!(codes.len(), 10, "{text}");
    let s = status(&admin);
    assert_eq!((s["enrolled"].as_bool(), s["recovery_codes_left"].as_u64()), (Some(true), Some(10)), "{s}");

    // Re-enrolling needs a current code: a wrong one is refused and the factor stays.
    let wrong = if code_at(&secret, now_step()) == "111111" { "222222" } else { "111111" };
    let (_, out) = enroll(&central, &admin, Some(wrong));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong code"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status(&admin)["recovery_codes_left"], 10);
    // With a recovery code it works, and the new factor replaces the old codes.
    let (_, out) = enroll(&central, &admin, Some(codes[0].trim()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status(&admin)["recovery_codes_left"], 10);

    // An assistant token enrols nothing.
    let out = central.cli_as(&admin, &["--output", "json", "tokens", "create", "--assistant", "claude-code"]);
    let token: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = central.cli_as(token["token"].as_str().unwrap(), &["--output", "json", "totp", "status"]);
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["code"], "FORBIDDEN", "{err}");
    let help = std::process::Command::new(mttrly_tests::binary("mttrly-cli"))
        .args(["totp", "enroll", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("recovery codes") && help.contains("users invite NAME"), "{help}");
}

/// Runs `totp enroll` as `token`, answering the current-code prompt with `current` (when a
/// factor exists) and the confirmation prompt with a code from the key it printed.
fn enroll(
    central: &mttrly_tests::TestCentral,
    token: &str,
    current: Option<&str>,
) -> (TotpSecret, std::process::Output) {
    let mut child = std::process::Command::new(mttrly_tests::binary("mttrly-cli"))
        .args(["--central", &central.grpc_url, "--token", token, "totp", "enroll"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(current) = current {
        writeln!(stdin, "{current}").unwrap();
    }
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut secret = None;
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if let Some(key) = line.trim().strip_prefix("key: ") {
            let key = TotpSecret::from_base32(key).unwrap();
            writeln!(stdin, "{}", code_at(&key, now_step())).unwrap();
            secret = Some(key);
            break;
        }
    }
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut output = child.wait_with_output().unwrap();
    output.stdout = format!("{seen}{rest}").into_bytes();
    (secret.unwrap_or_else(|| TotpSecret::from_bytes([0; 20])), output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_uses_of_one_code_let_exactly_one_through() {
    let h = harness(|_| {}).await;
    let bob = h.enrol(&h.invite("bob", "viewer").await).await;
    let (account, user) = (h.account().await, h.user_id("bob").await);
    let central = &h.central.central;
    for step in [bob.last_step + 1, bob.last_step + 2] {
        // The second step may lie outside the window still; then both are refused, never both let in.
        let code = code_at(&bob.secret, step);
        let (one, two) = tokio::join!(
            mttrly_central::second_factor::verify(central, &account, &user, &code),
            mttrly_central::second_factor::verify(central, &account, &user, &code),
        );
        let passed = usize::from(one.is_ok()) + usize::from(two.is_ok());
        assert!(passed <= 1, "step {step}: {one:?} {two:?}");
        if step == bob.last_step + 1 {
            assert_eq!(passed, 1, "{one:?} {two:?}");
        }
        for refused in [one, two].into_iter().filter_map(Result::err) {
            assert_eq!(refused.code(), ErrorCode::AuthFailed, "{refused:?}");
        }
    }
}

// Red-team probes (review of issue 12): sign-in names one person before any password is checked,
// wrong passwords and wrong codes lock different things, a replay is not a failure.

impl Harness {
    /// Adds `name` to `account` through the storage operation (any account, with an e-mail) and
    /// enrols them through the invite pages with `password`.
    async fn enrol_in(
        &self,
        account: &mttrly_core::ids::AccountId,
        name: &str,
        email: Option<&str>,
        password: &str,
    ) -> Enrolled {
        let secret = hex::encode(mttrly_central::secrets::hash(&format!("{account}/{name}")))[..43].to_owned();
        let hash = mttrly_central::secrets::hash(&secret);
        let people = self.central.central.db.account(account).people();
        people
            .add_with_invite(name, mttrly_core::Role::Admin, email, &hash, now_ms() + 3_600_000)
            .await
            .unwrap()
            .unwrap();
        self.enrol_as(&format!("/invite/{secret}"), password).await
    }

    async fn counters(
        &self,
        account: &mttrly_core::ids::AccountId,
        user: &mttrly_core::ids::UserId,
    ) -> (mttrly_core::second_factor::LockoutState, mttrly_core::second_factor::LockoutState) {
        let factor = self.central.central.db.account(account).people().factor(user).await.unwrap().unwrap();
        (factor.lockout, factor.password_lockout)
    }

    async fn sign_in_rows(&self, account: &mttrly_core::ids::AccountId) -> usize {
        self.central.central.audit.flush().await;
        let filter = mttrly_central::db::audit::AuditFilter { limit: 1000, ..Default::default() };
        let rows = self.central.central.db.account(account).audit().list(&filter).await.unwrap();
        rows.iter().filter(|r| format!("{r:?}").contains("\"SignIn\"")).count()
    }
}

fn error_text(answer: &Answer) -> String {
    answer.body.split("class=\"err\">").nth(1).unwrap().split('<').next().unwrap().to_owned()
}

/// The reviewer's oracle: a tenant's admin makes their own `bob` and `carol` with a guessed
/// password (right for A's bob, wrong for A's carol) and signs in by the bare name. Before, the
/// password was tried on every account's `bob` and a right guess answered differently (A's bob
/// matched, then failed on the code) from a wrong one (their own user signed in). Now the bare
/// name names nobody: both guesses read the same, and A's people have nothing counted and nothing
/// audited. `account/name` signs in the right one in each account.
#[tokio::test]
async fn another_tenant_cannot_test_password_guesses_against_this_ones_people() {
    let h = harness(|_| {}).await;
    let db = &h.central.central.db;
    let a = h.account().await;
    let bob_a = h.enrol(&h.invite("bob", "operator").await).await;
    let carol_a = h.enrol_as(&h.invite("carol", "operator").await, "her very own long passphrase").await;
    let (bob_id, carol_id) = (h.user_id("bob").await, h.user_id("carol").await);

    let (b, _) = db.create_tenant("other", mttrly_core::Plan::DeploymentCrew, "root", &[42; 32]).await.unwrap();
    let guess = PASSWORD;
    let bob_b = h.enrol_in(&b, "bob", None, guess).await;
    let carol_b = h.enrol_in(&b, "carol", None, guess).await;
    let signed_in_a = h.sign_in_rows(&a).await;

    let mut attacker = Browser::new(&h.base());
    let right = h.sign_in(&mut attacker, "bob", guess, &code_at(&bob_b.secret, bob_b.last_step + 1), "/").await;
    let wrong = h.sign_in(&mut attacker, "carol", guess, &code_at(&carol_b.secret, carol_b.last_step + 1), "/").await;
    assert_eq!((right.status, wrong.status), (401, 401), "no difference between a right and a wrong guess");
    assert_eq!(error_text(&right), error_text(&wrong));
    // The same answer as a unique name with a wrong password, or a name nobody has.
    let nobody = h.sign_in(&mut attacker, "nobody-at-all", guess, "123456", "/").await;
    assert_eq!((nobody.status, error_text(&nobody)), (401, error_text(&right)));
    assert!(attacker.session().is_none());
    for user in [&bob_id, &carol_id] {
        let (codes, passwords) = h.counters(&a, user).await;
        assert_eq!((codes.failures, passwords.failures), (0, 0), "the victims' counters are untouched");
    }
    assert_eq!(h.sign_in_rows(&a).await, signed_in_a, "nothing recorded in the victims' account");
    // Any number of tries: a bare shared name never locks anyone.
    for _ in 0..6 {
        assert_eq!(h.sign_in(&mut attacker, "bob", "wrong guess number n", "123456", "/").await.status, 401);
    }
    assert_eq!(h.counters(&a, &bob_id).await.1.failures, 0);

    // `account/name` names one person, and signs them into their own account.
    let mut as_a = Browser::new(&h.base());
    let ok = h.sign_in(&mut as_a, "default/bob", PASSWORD, &code_at(&bob_a.secret, bob_a.last_step + 1), "/").await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let session = db.signins().session(&mttrly_central::secrets::hash(&as_a.session().unwrap())).await.unwrap();
    assert_eq!(session.unwrap().account_id, a);
    let mut as_b = Browser::new(&h.base());
    let ok = h.sign_in(&mut as_b, "other/carol", guess, &code_at(&carol_b.secret, carol_b.last_step + 1), "/").await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let session = db.signins().session(&mttrly_central::secrets::hash(&as_b.session().unwrap())).await.unwrap();
    assert_eq!(session.unwrap().account_id, b);
    // The tenant's own guess against `default/carol` is an ordinary wrong password, counted on
    // carol's password counter only (5 → 15 minutes), never on her codes.
    let r = h.sign_in(&mut attacker, "default/carol", guess, "123456", "/").await;
    assert_eq!((r.status, error_text(&r)), (401, error_text(&right)));
    let (codes, passwords) = h.counters(&a, &carol_id).await;
    assert_eq!((codes.failures, passwords.failures), (0, 1));
    let mut carol = Browser::new(&h.base());
    let code = code_at(&carol_a.secret, carol_a.last_step + 1);
    let ok = h.sign_in(&mut carol, "default/carol", "her very own long passphrase", &code, "/").await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(h.counters(&a, &carol_id).await.1.failures, 0, "the right password clears the count");

    // Only a central with several accounts mentions `account/name`.
    let page = Browser::new(&h.base()).get("/signin").await;
    assert!(page.body.contains("sign in as account/name"), "{}", page.body);
    let single = harness(|_| {}).await;
    let page = Browser::new(&single.base()).get("/signin").await;
    assert!(!page.body.contains("account/name"), "{}", page.body);
}

/// A name or e-mail that two living users share is refused like a wrong password, without a
/// password check on either; the e-mail alone works once it is unique again.
#[tokio::test]
async fn an_ambiguous_login_is_refused_generically() {
    let h = harness(|_| {}).await;
    let db = &h.central.central.db;
    let a = h.account().await;
    let ann = h.enrol_in(&a, "ann", Some("Ann@Example.com"), PASSWORD).await;
    let (b, _) = db.create_tenant("other", mttrly_core::Plan::DeploymentCrew, "root", &[42; 32]).await.unwrap();
    let ann_b = h.enrol_in(&b, "annie", Some("ann@example.com"), "another tenant's passphrase").await;
    let mut browser = Browser::new(&h.base());
    let code = code_at(&ann.secret, ann.last_step + 1);
    let r = h.sign_in(&mut browser, "ANN@example.com", PASSWORD, &code, "/").await;
    assert_eq!(r.status, 401, "one e-mail, two accounts");
    let r = h
        .sign_in(
            &mut browser,
            "annie",
            "another tenant's passphrase",
            &code_at(&ann_b.secret, ann_b.last_step + 1),
            "/",
        )
        .await;
    assert_eq!(r.status, 303, "a unique name works: {}", r.body);
    // Once B's annie is gone, the e-mail names ann alone (compared without case).
    db.account(&b).users().remove("annie").await.unwrap().unwrap();
    let mut fresh = Browser::new(&h.base());
    let r = h.sign_in(&mut fresh, "ANN@example.com", PASSWORD, &code, "/").await;
    assert_eq!(r.status, 303, "{}", r.body);
}

/// A replay of the last accepted code is refused but never counted: a double-submit cannot lock
/// its owner out.
#[tokio::test]
async fn a_replayed_code_is_refused_and_not_counted() {
    let h = harness(|_| {}).await;
    let bob = h.enrol(&h.invite("bob", "viewer").await).await;
    let (account, user) = (h.account().await, h.user_id("bob").await);
    let central = &h.central.central;
    let spent = code_at(&bob.secret, bob.last_step);
    for _ in 0..7 {
        let err = mttrly_central::second_factor::verify(central, &account, &user, &spent).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::AuthFailed, "{err:?}");
    }
    let mut browser = Browser::new(&h.base());
    for _ in 0..3 {
        assert_eq!(h.sign_in(&mut browser, "bob", PASSWORD, &spent, "/").await.status, 401);
    }
    let (codes, passwords) = h.counters(&account, &user).await;
    assert_eq!((codes, passwords), Default::default(), "nothing counted");
    let ok = h.sign_in(&mut browser, "bob", PASSWORD, &code_at(&bob.secret, bob.last_step + 1), "/").await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    // A wrong code still counts.
    let wrong = format!("{:06}", (bob.secret.code_at(bob.last_step + 2) + 1) % 1_000_000);
    let wrong = if wrong == code_at(&bob.secret, bob.last_step + 3) { "000001".to_owned() } else { wrong };
    let _ = mttrly_central::second_factor::verify(central, &account, &user, &wrong).await.unwrap_err();
    assert_eq!(h.counters(&account, &user).await.0.failures, 1);
}

/// Five wrong codes lock TOTP checks; a recovery code still works (at sign-in and for an
/// approval's check), is spent, and lifts the lock.
#[tokio::test]
async fn a_recovery_code_works_while_totp_is_locked_and_lifts_the_lock() {
    let h = harness(|_| {}).await;
    let bob = h.enrol(&h.invite("bob", "viewer").await).await;
    let (account, user) = (h.account().await, h.user_id("bob").await);
    let central = &h.central.central;
    let wrong = if code_at(&bob.secret, now_step()) == "999999" { "999998" } else { "999999" };
    let wrong = if code_at(&bob.secret, now_step() + 1) == wrong { "999997" } else { wrong };
    for _ in 0..5 {
        let _ = mttrly_central::second_factor::verify(central, &account, &user, wrong).await.unwrap_err();
    }
    let next = code_at(&bob.secret, bob.last_step + 1);
    let err = mttrly_central::second_factor::verify(central, &account, &user, &next).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited, "{err:?}");
    assert!(err.message().contains("recovery code still works"), "{err:?}");
    // A wrong recovery code while locked: refused, the lock not extended.
    let until = h.counters(&account, &user).await.0.locked_until_ms;
    let bogus = "0000-0000-0000-0000";
    assert!(!bob.recovery.contains(&bogus.to_owned()));
    assert!(mttrly_central::second_factor::verify(central, &account, &user, bogus).await.is_err());
    assert_eq!(h.counters(&account, &user).await.0.locked_until_ms, until);
    // The right password and a recovery code sign in while locked; the lock is gone after.
    let mut browser = Browser::new(&h.base());
    let ok = h.sign_in(&mut browser, "bob", PASSWORD, &bob.recovery[0], "/").await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(h.counters(&account, &user).await.0, mttrly_core::second_factor::LockoutState::default());
    mttrly_central::second_factor::verify(central, &account, &user, &next).await.unwrap();
    let left = central.db.account(&account).people().factor(&user).await.unwrap().unwrap().recovery_left;
    assert_eq!(left, 9, "spent");
}

/// E-mails are unique among an account's living users, compared without case, whichever way a
/// user is added; another account, or a removed user's address, does not count.
#[tokio::test]
async fn a_duplicate_e_mail_is_refused_naming_the_field() {
    let h = harness(|_| {}).await;
    let add = |name: &str, email: &str, issue_token: bool| {
        let request = AddUserRequest {
            name: name.into(),
            role: "viewer".into(),
            email: email.into(),
            issue_token,
            second_factor_code: String::new(),
        };
        let channel = h.channel();
        let admin = h.admin.clone();
        async move { UserServiceClient::new(channel.await).add_user(authed(&admin, request)).await }
    };
    add("bob", "bob@example.com", false).await.unwrap();
    for (name, email, token) in [("dup", "BOB@example.com", false), ("dup2", "Bob@Example.COM", true)] {
        let err = add(name, email, token).await.unwrap_err();
        let body = mttrly_proto::status::from_status(&err);
        assert_eq!(body.code(), ErrorCode::ValidationError, "{err:?}");
        assert_eq!(body.details()["field"], "email", "{err:?}");
    }
    let users = h.central.central.db.account(&h.account().await).users().list().await.unwrap();
    assert!(users.iter().all(|u| !u.name.starts_with("dup")), "nothing was added");
    // Another account may hold the same address; a removed user's is free again.
    let (b, _) = h
        .central
        .central
        .db
        .create_tenant("other", mttrly_core::Plan::DeploymentCrew, "root", &[42; 32])
        .await
        .unwrap();
    let other = h.central.central.db.account(&b).people();
    other
        .add_with_invite("bob", mttrly_core::Role::Viewer, Some("BOB@example.com"), &[7; 32], now_ms() + 1000)
        .await
        .unwrap()
        .unwrap();
    let again = other
        .add_with_invite("bobby", mttrly_core::Role::Viewer, Some("bob@EXAMPLE.com"), &[8; 32], now_ms() + 1000)
        .await
        .unwrap();
    assert!(again.is_err(), "the storage operation checks too");
    UserServiceClient::new(h.channel().await)
        .remove_user(authed(
            &h.admin,
            mttrly_proto::central::v1::RemoveUserRequest { name: "bob".into(), second_factor_code: String::new() },
        ))
        .await
        .unwrap();
    add("robert", "BOB@example.com", true).await.unwrap();
}
