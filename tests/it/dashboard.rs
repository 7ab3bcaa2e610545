//! Issue 14, the web dashboard, in a real headless Chromium (Debian's `chromium` through its
//! `chromedriver`, `mttrly_tests::webdriver`): a person signs in with password and TOTP, a pending
//! action requested over gRPC for a server with a real agent appears without a reload, they
//! approve it with a fresh code and the result arrives live; another rejects with a reason; a
//! viewer sees but has no buttons, and a POST they forge is refused; a POST without the CSRF token
//! is refused; a hostile command is shown as inert text. Screenshots of the pending page at desktop
//! and phone width are taken every run and written to `docs/` with `MTTRLY_DOCS_SCREENSHOTS=1`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use mttrly_core::second_factor::TotpSecret;
use mttrly_proto::central::v1::AddUserRequest;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_tests::webdriver::{Browser, Driver};
use serde_json::{Value, json};

use crate::approvals::{add_server, code_at, now_step};
use crate::common::{Harness, RunningAgent, authed, call_tool, get_action, harness, run_agent, urlencode};

pub(crate) const PASSWORD: &str = "correct horse battery staple";
/// How long anything live may take to show.
pub(crate) const LIVE: Duration = Duration::from_secs(15);

/// A person with a password and TOTP: their name, their authenticator's secret, and the last
/// step a code was accepted for (a code never counts twice).
pub(crate) struct Person {
    name: String,
    secret: TotpSecret,
    last_step: u64,
}

impl Person {
    /// A code for a step after the last one used, waiting until the clock allows it (±1 step).
    pub(crate) async fn fresh_code(&mut self) -> String {
        let step = self.last_step + 1;
        while now_step() + 1 < step {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.last_step = step;
        code_at(&self.secret, step)
    }
}

/// A cookie-keeping HTTP client for the invite pages (set-up, not under test here).
pub(crate) struct Http {
    pub(crate) http: reqwest::Client,
    base: String,
    pub(crate) jar: BTreeMap<String, String>,
}

impl Http {
    pub(crate) fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: base.to_owned(), jar: BTreeMap::new() }
    }

    pub(crate) async fn send(&mut self, request: reqwest::RequestBuilder) -> (u16, String) {
        let cookies = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let request = if cookies.is_empty() { request } else { request.header(reqwest::header::COOKIE, cookies) };
        let response = request.send().await.unwrap();
        for set in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let (name, value) = set.to_str().unwrap().split(';').next().unwrap().split_once('=').unwrap();
            self.jar.insert(name.to_owned(), value.to_owned());
        }
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub(crate) async fn get(&mut self, path: &str) -> (u16, String) {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// Signs `who` in through `/signin` with password and a fresh code; the session cookie stays
    /// in the jar, so later requests are theirs.
    pub(crate) async fn sign_in(&mut self, who: &mut Person) {
        let (status, page) = self.get("/signin").await;
        assert_eq!(status, 200, "{page}");
        let csrf = hidden(&page, "csrf");
        let code = who.fresh_code().await;
        let name = who.name.clone();
        let (status, page) = self
            .post(
                "/signin",
                &[("csrf", &csrf), ("next", "/"), ("login", &name), ("password", PASSWORD), ("code", &code)],
            )
            .await;
        assert_eq!(status, 303, "signed in: {page}");
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let body = form.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect::<Vec<_>>().join("&");
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ORIGIN, &self.base)
            .body(body);
        self.send(request).await
    }
}

/// The value of the hidden input `name` in a page.
pub(crate) fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = body.find(&marker).unwrap_or_else(|| panic!("no {name} in {body}")) + marker.len();
    body[at..].split('"').next().unwrap().to_owned()
}

/// Adds `name` with `role` and goes through their invite: password, then TOTP.
pub(crate) async fn person(h: &Harness, name: &str, role: &str) -> Person {
    let base = h.central.http_url();
    let added = UserServiceClient::new(h.channel().await)
        .add_user(authed(
            &h.admin,
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
    let path = added.invite_url[base.len()..].to_owned();
    let mut http = Http::new(&base);
    let (status, page) = http.get(&path).await;
    assert_eq!(status, 200, "{page}");
    let csrf = hidden(&page, "csrf");
    let (status, page) = http
        .post(&path, &[("csrf", &csrf), ("step", "password"), ("password", PASSWORD), ("password_again", PASSWORD)])
        .await;
    assert_eq!(status, 200, "{page}");
    let at = page.find("Key: <code>").unwrap() + "Key: <code>".len();
    let key: String = page[at..].split('<').next().unwrap().chars().filter(|c| !c.is_whitespace()).collect();
    let secret = TotpSecret::from_base32(&key).unwrap();
    let step = now_step();
    let (status, page) =
        http.post(&path, &[("csrf", &csrf), ("step", "code"), ("code", &code_at(&secret, step))]).await;
    assert_eq!(status, 200, "{page}");
    Person { name: name.to_owned(), secret, last_step: step }
}

/// A production server with a real agent online: its id and the agent.
pub(crate) async fn online_production(h: &Harness) -> (String, RunningAgent) {
    let added = add_server(h, "web-1", mttrly_core::Environment::Production).await;
    let agent = run_agent(h.central.grpc_url(), &added.install_token, h.dir.path().join("agent")).await;
    h.wait_online(&added.server_id).await;
    (added.server_id, agent)
}

/// The admin's assistant asks to run `command` on `server`; the pending action's id.
pub(crate) async fn request(h: &Harness, server: &str, command: &str, reason: &str) -> String {
    let args = json!({ "server_id": server, "command": command, "reason": reason });
    let (is_error, answer) = call_tool(h.channel().await, &h.admin, "mttrly_execute_command", args).await;
    assert!(!is_error, "{answer}");
    assert_eq!(answer["status"], "pending_approval", "{answer}");
    answer["action_id"].as_str().unwrap().to_owned()
}

/// Signs `who` in through the sign-in page, typing a fresh code; lands on the pending page with
/// its live feed connected.
pub(crate) async fn sign_in(browser: &Browser, base: &str, who: &mut Person) {
    browser.goto(&format!("{base}/")).await;
    assert!(browser.url().await.contains("/signin"), "signed out, `/` leads to the sign-in page");
    let login = browser.wait_for("input[name=login]", LIVE).await;
    browser.type_into(&login, &who.name).await;
    browser.type_into(&browser.wait_for("input[name=password]", LIVE).await, PASSWORD).await;
    let code = who.fresh_code().await;
    browser.type_into(&browser.wait_for("input[name=code]", LIVE).await, &code).await;
    browser.click(&browser.wait_for("form[action='/signin'] button[type=submit]", LIVE).await).await;
    browser.wait_for("main#main[data-live='pending'][data-connected]", LIVE).await;
    assert!(browser.text_of("header.top").await.contains(&format!("Signed in as {}", who.name)));
}

/// The Approve button at `selector` once it takes clicks: after the list of actions changed,
/// the page holds its Approve buttons for a moment (`app.js`, `settle`).
pub(crate) async fn settled(browser: &Browser, selector: &str) -> mttrly_tests::webdriver::Element {
    let button = browser.wait_for(selector, LIVE).await;
    browser
        .wait_until(&format!("const b = document.querySelector({selector:?}); return !!b && !b.disabled;"), LIVE)
        .await;
    button
}

/// The action's status as central stores it.
pub(crate) async fn status_of(h: &Harness, id: &str) -> String {
    get_action(h.channel().await, &h.admin, id).await.status
}

/// Takes a screenshot of the viewport (always: it must be a PNG); with
/// `MTTRLY_DOCS_SCREENSHOTS=1` it is written to the repository's `docs/NAME.png`, which the
/// README shows (otherwise each run would rewrite the committed images).
pub(crate) async fn screenshot(browser: &Browser, name: &str) {
    let png = base64::engine::general_purpose::STANDARD.decode(browser.screenshot_base64().await).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if std::env::var_os("MTTRLY_DOCS_SCREENSHOTS").is_some_and(|v| v == "1") {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::write(docs.join(format!("{name}.png")), png).unwrap();
    }
}

/// POSTs a form from inside the page (same origin, the session's cookie), as a script forging a
/// request would; the HTTP status.
pub(crate) async fn post_from_page(browser: &Browser, path: &str, fields: Value) -> u16 {
    let status = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], { method: 'POST', body: new URLSearchParams(arguments[1]), redirect: 'manual' })
               .then(r => done(r.status), e => done(String(e)));",
            json!([path, fields]),
        )
        .await;
    u16::try_from(status.as_u64().unwrap_or_else(|| panic!("fetch failed: {status}"))).unwrap()
}

// Central, its agent and the test share the runtime; chromedriver and Chromium are processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pending_action_appears_live_is_approved_with_a_fresh_code_and_its_result_arrives() {
    let h = harness(|cfg| {
        cfg.approvals = serde_json::from_value(json!({ "production": { "second_factor": "totp" } })).unwrap();
    })
    .await;
    let base = h.central.http_url();
    let (server, _agent) = online_production(&h).await;
    let mut bob = person(&h, "bob", "operator").await;
    let driver = Driver::start().await;
    let browser = driver.browser(1280, 900).await;
    sign_in(&browser, &base, &mut bob).await;
    assert!(browser.text_of("main").await.contains("Nothing waits for a decision."));

    // The page stays the same document (no reload) while the action appears.
    browser.execute("window.sameDocument = 'yes'; return true;", json!([])).await;
    let marker = h.dir.path().join("approved-from-the-dashboard");
    let command = format!("touch {}", marker.display());
    let id = request(&h, &server, &command, "the disk is filling up").await;
    let card = format!("#action-{id}");
    browser.wait_for(&card, LIVE).await;
    assert_eq!(browser.execute("return window.sameDocument;", json!([])).await, "yes", "no reload");
    // The list just changed: its Approve buttons wait a moment before they take a click.
    let held =
        browser.execute(&format!("return document.querySelector('{card} button.approve').disabled;"), json!([])).await;
    assert_eq!(held, true, "an Approve button that just moved into place is held");

    let shown = get_action(h.channel().await, &h.admin, &id).await;
    let text = browser.text_of(&card).await;
    for fact in [
        "web-1 (production)",
        &command,
        &shown.content_sha256,
        "assistant claude-code for admin",
        "0 of 1 received",
        "fresh code from your authenticator app",
        "assistant's reason (unverified):",
        "the disk is filling up",
    ] {
        assert!(text.contains(fact), "{fact:?} missing from {text}");
    }
    let expiry = browser.text_of(&format!("{card} .left")).await;
    assert!(expiry.starts_with("(in "), "the expiry counts down: {expiry}");
    let seen = browser.wait_for(&format!("{card} input[name=seen_sha256]"), LIVE).await;
    assert_eq!(browser.attribute(&seen, "value").await.unwrap(), shown.content_sha256);

    screenshot(&browser, "dashboard-pending-desktop").await;
    browser.resize(390, 844).await;
    browser.wait_until("return document.documentElement.scrollWidth <= window.innerWidth;", LIVE).await;
    screenshot(&browser, "dashboard-pending-phone").await;
    browser.resize(1280, 900).await;

    // A wrong code is refused on the action's page, nothing decided.
    browser.type_into(&browser.wait_for(&format!("{card} input[name=code]"), LIVE).await, "000000").await;
    browser.click(&settled(&browser, &format!("{card} button.approve")).await).await;
    browser.wait_for("main[data-connected] p.err[role=alert]", LIVE).await;
    let refusal = browser.text_of("p.err[role=alert]").await;
    assert!(refusal.starts_with("Refused:"), "{refusal}");
    assert_eq!(status_of(&h, &id).await, "pending_approval");

    // The right code approves; the page follows the action to its result without a reload.
    browser.execute("window.sameDocument = 'still'; return true;", json!([])).await;
    let code = bob.fresh_code().await;
    let form = format!("#action-{id} form.approve");
    browser.type_into(&browser.wait_for(&format!("{form} input[name=code]"), LIVE).await, &code).await;
    browser.click(&settled(&browser, &format!("{form} button.approve")).await).await;
    browser.wait_for(&format!("main[data-live='action:{id}']"), LIVE).await;
    browser.wait_for("main[data-connected] .status .state.succeeded", LIVE).await;
    assert!(marker.exists(), "the agent ran it");
    let page = browser.text_of("main").await;
    assert!(page.contains("bob approved via dashboard"), "{page}");
    assert_eq!(browser.text_of("section.result dd").await, "0", "the exit code: {page}");
    assert_eq!(status_of(&h, &id).await, "succeeded");

    // The action's life, from its audit rows: created, a refused approval, the approval, the run.
    let life = browser.text_of("ol.life").await;
    assert!(life.contains("approval_decision by bob via dashboard — approve (refused"), "{life}");
    assert!(life.contains("execution_result"), "{life}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reject_with_a_reason_a_viewer_cannot_decide_forms_need_the_token_and_hostile_text_stays_inert() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url();
    let (server, _agent) = online_production(&h).await;
    let mut vic = person(&h, "vic", "viewer").await;
    let mut bob = person(&h, "bob", "operator").await;
    let driver = Driver::start().await;

    // ESC sequences, a CR that would rewrite the line, a bidi override, markup, a very long line.
    let hostile = format!(
        "echo '<img src=x id=pwned><b>bold</b>' \u{1b}[2J\u{1b}[31mred\rSAFE \u{202e}fdp.exe {}",
        "A".repeat(600)
    );
    let id = request(&h, &server, &hostile, "<script>document.title='pwned'</script> trust me").await;
    let card = format!("#action-{id}");

    // The viewer sees everything and has no button; the page says why.
    let viewer = driver.browser(1280, 900).await;
    sign_in(&viewer, &base, &mut vic).await;
    viewer.wait_for(&card, LIVE).await;
    assert!(viewer.find_all(&format!("{card} form")).await.is_empty(), "no decision form for a viewer");
    let why = viewer.text_of(&format!("{card} .cannot")).await;
    assert!(why.starts_with("You cannot approve this:"), "{why}");
    // Hostile text is shown, every character visible, and nothing in it became an element.
    let exact = viewer.text_of(&format!("{card} dl.content")).await;
    assert!(
        exact.contains("echo '<img src=x id=pwned><b>bold</b>' \\x1b[2J\\x1b[31mred\\rSAFE \\u{202e}fdp.exe AAAA"),
        "{exact}"
    );
    assert!(viewer.find_all("#pwned, main img, main b").await.is_empty(), "no element injected");
    assert_ne!(viewer.execute("return document.title;", json!([])).await, "pwned");
    let reason = viewer.text_of(&format!("{card} .reason")).await;
    assert!(reason.contains("<script>document.title='pwned'</script> trust me"), "{reason}");
    viewer
        .wait_until(
            &format!(
                "return [...document.querySelectorAll('{card} pre.exact')].every(p => p.scrollWidth <= p.clientWidth);"
            ),
            LIVE,
        )
        .await;
    // A POST the viewer forges (with their own valid token) is refused by the engine.
    let csrf =
        viewer.attribute(&viewer.wait_for("form[action='/signout'] input[name=csrf]", LIVE).await, "value").await;
    let sha = get_action(h.channel().await, &h.admin, &id).await.content_sha256;
    let forged = json!({ "csrf": csrf.unwrap(), "seen_sha256": sha });
    assert_eq!(post_from_page(&viewer, &format!("/actions/{id}/approve"), forged).await, 403);
    assert_eq!(status_of(&h, &id).await, "pending_approval");

    // An operator's POST without the CSRF token, or with another's, is refused before anything.
    let operator = driver.browser(1280, 900).await;
    sign_in(&operator, &base, &mut bob).await;
    operator.wait_for(&format!("{card} form.reject"), LIVE).await;
    let no_token = json!({ "seen_sha256": sha });
    assert_eq!(post_from_page(&operator, &format!("/actions/{id}/approve"), no_token).await, 403);
    let wrong_token = json!({ "csrf": "A".repeat(43), "reason": "x" });
    assert_eq!(post_from_page(&operator, &format!("/actions/{id}/reject"), wrong_token).await, 403);
    // Content changed since the page was shown: the hash it carried no longer matches.
    let stale = json!({ "csrf": operator.attribute(&operator.wait_for(&format!("{card} form.reject input[name=csrf]"), LIVE).await, "value").await.unwrap(), "seen_sha256": "0".repeat(64) });
    assert_eq!(post_from_page(&operator, &format!("/actions/{id}/approve"), stale).await, 400);
    assert_eq!(status_of(&h, &id).await, "pending_approval");

    // The operator rejects with a reason; the viewer's open page drops the action live.
    let reason = operator.wait_for(&format!("{card} form.reject input[name=reason]"), LIVE).await;
    operator.type_into(&reason, "not during business hours").await;
    operator.click(&operator.wait_for(&format!("{card} button.reject"), LIVE).await).await;
    operator.wait_for(".status .state.rejected", LIVE).await;
    let page = operator.text_of("main").await;
    assert!(page.contains("bob rejected via dashboard"), "{page}");
    assert!(page.contains("not during business hours"), "{page}");
    assert_eq!(status_of(&h, &id).await, "rejected");
    viewer.wait_until(&format!("return document.querySelector('{card}') === null;"), LIVE).await;
    assert!(viewer.text_of("main").await.contains("Nothing waits for a decision."));
}

/// Every dashboard response carries the security headers; assets are served with their type and
/// a long cache; signed out, pages lead to the sign-in page and `/events` is refused.
#[tokio::test]
async fn headers_assets_and_signed_out_requests() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for path in ["/", "/servers", "/actions/act_x", "/events"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        let to = r.headers()[reqwest::header::LOCATION].to_str().unwrap().to_owned();
        assert!(to.starts_with("/signin"), "{path} → {to}");
    }
    let r = http.post(format!("{base}/actions/act_x/approve")).body("").send().await.unwrap();
    assert_eq!(r.status(), 401);
    for (path, kind) in [("/assets/app.css", "text/css"), ("/assets/app.js", "text/javascript")] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let headers = r.headers().clone();
        assert!(headers[reqwest::header::CONTENT_TYPE].to_str().unwrap().starts_with(kind), "{path}");
        assert!(headers[reqwest::header::CACHE_CONTROL].to_str().unwrap().contains("immutable"), "{path}");
        let etag = headers[reqwest::header::ETAG].clone();
        let again =
            http.get(format!("{base}{path}")).header(reqwest::header::IF_NONE_MATCH, etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    // A signed-in page, through the HTTP sign-in of a person with a password and a code.
    let mut alice = person(&h, "alice", "admin").await;
    let mut http_session = Http::new(&base);
    let (_, page) = http_session.get("/signin").await;
    let csrf = hidden(&page, "csrf");
    let code = alice.fresh_code().await;
    let (status, _) = http_session
        .post("/signin", &[("csrf", &csrf), ("login", "alice"), ("password", PASSWORD), ("code", &code), ("next", "/")])
        .await;
    assert_eq!(status, 303);
    let cookies = http_session.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    for path in ["/", "/servers", "/actions/act_nope"] {
        let r = http.get(format!("{base}{path}")).header(reqwest::header::COOKIE, &cookies).send().await.unwrap();
        assert!(r.status() == 200 || r.status() == 404, "{path}: {}", r.status());
        let h = r.headers();
        assert_eq!(
            h[reqwest::header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(h[reqwest::header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(h[reqwest::header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[reqwest::header::REFERRER_POLICY], "same-origin", "{path}");
        assert_eq!(h[reqwest::header::CACHE_CONTROL], "no-store", "{path}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("<script>") && !body.contains(" style="), "no inline script or style: {path}");
    }
    // The live feed: an event stream, told when a server of this account changes, ended when
    // central stops (a graceful shutdown never waits for an open page).
    let mut events = http.get(format!("{base}/events")).header(reqwest::header::COOKIE, &cookies).send().await.unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()[reqwest::header::CONTENT_TYPE], "text/event-stream");
    // Another tenant's person, signed in through their invite, listens too: they hear nothing of
    // this account.
    let db = &h.central.central.db;
    let (other, _) = db.create_tenant("other", mttrly_core::Plan::DeploymentCrew, "root", &[42; 32]).await.unwrap();
    let invite = "B".repeat(43);
    let expires = jiff::Timestamp::now().as_millisecond() + 3_600_000;
    let hash = mttrly_central::secrets::hash(&invite);
    db.account(&other)
        .people()
        .add_with_invite("eve", mttrly_core::Role::Admin, None, &hash, expires)
        .await
        .unwrap()
        .unwrap();
    let mut eve = Http::new(&base);
    let (_, page) = eve.get(&format!("/invite/{invite}")).await;
    let csrf = hidden(&page, "csrf");
    let form = [("csrf", csrf.as_str()), ("step", "password"), ("password", PASSWORD), ("password_again", PASSWORD)];
    let (_, page) = eve.post(&format!("/invite/{invite}"), &form).await;
    let at = page.find("Key: <code>").unwrap() + "Key: <code>".len();
    let key: String = page[at..].split('<').next().unwrap().chars().filter(|c| !c.is_whitespace()).collect();
    let code = code_at(&TotpSecret::from_base32(&key).unwrap(), now_step());
    let (status, _) =
        eve.post(&format!("/invite/{invite}"), &[("csrf", &csrf), ("step", "code"), ("code", &code)]).await;
    assert_eq!(status, 200);
    let eve_cookies = eve.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let mut eve_events =
        http.get(format!("{base}/events")).header(reqwest::header::COOKIE, &eve_cookies).send().await.unwrap();
    assert_eq!(eve_events.status(), 200);

    let added = add_server(&h, "web-2", mttrly_core::Environment::Staging).await;
    let agent = run_agent(h.central.grpc_url(), &added.install_token, h.dir.path().join("agent")).await;
    let mut heard = String::new();
    while !heard.contains(&format!("event: server\ndata: {}", added.server_id)) {
        let chunk = tokio::time::timeout(LIVE, events.chunk()).await.expect("the agent coming online is heard");
        heard.push_str(&String::from_utf8_lossy(&chunk.unwrap().expect("the feed is open")));
    }
    // Published to both at once; the other tenant's feed stays silent.
    let silent = tokio::time::timeout(Duration::from_secs(2), eve_events.chunk()).await;
    assert!(silent.is_err(), "another tenant heard: {silent:?}");
    let _ = agent.0.send(true);
    let Harness { central, dir: _dir, .. } = h;
    let stopping = tokio::spawn(central.shutdown());
    let ended =
        tokio::time::timeout(Duration::from_secs(5), async { while let Ok(Some(_)) = events.chunk().await {} }).await;
    assert!(ended.is_ok(), "the feed ends when central stops");
    stopping.await.unwrap();
}

/// An action's page follows its execution: while the command runs, what it printed so far is on
/// the page (redacted) and the live feed names the action each time it prints; the result then
/// replaces it. Plain HTTP: the feed is read as a browser's `EventSource` would.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_running_actions_output_reaches_its_page_while_it_runs() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url();
    let (server, _agent) = online_production(&h).await;
    let mut bob = person(&h, "bob", "operator").await;
    let mut page = Http::new(&base);
    page.sign_in(&mut bob).await;
    let marker = h.dir.path().join("finished");
    let command = format!(
        "echo first-line token=ghp_0123456789abcdefABCDEFGHIJ0123456789; sleep 4; echo second-line; touch {}",
        marker.display()
    );
    let id = request(&h, &server, &command, "watch it run").await;

    // The live feed, with Bob's cookie.
    let cookies = page.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let mut feed =
        page.http.get(format!("{base}/events")).header(reqwest::header::COOKIE, cookies).send().await.unwrap();
    assert_eq!(feed.status(), 200);

    let (_, shown) = page.get(&format!("/actions/{id}")).await;
    let (csrf, seen) = (hidden(&shown, "csrf"), hidden(&shown, "seen_sha256"));
    let (status, answer) =
        page.post(&format!("/actions/{id}/approve"), &[("csrf", &csrf), ("seen_sha256", &seen)]).await;
    assert_eq!(status, 303, "{answer}");

    // The feed names the action when it prints.
    let wanted = format!("event: output\ndata: {id}\n");
    let mut heard = String::new();
    let until = tokio::time::Instant::now() + LIVE;
    while !heard.contains(&wanted) {
        let chunk = tokio::time::timeout_at(until, feed.chunk()).await.expect("an output event in time");
        heard.push_str(&String::from_utf8_lossy(&chunk.unwrap().expect("the feed stays open")));
    }
    // The page shows the first line, redacted, before the command ends.
    let (_, running) = page.get(&format!("/actions/{id}")).await;
    assert!(running.contains("Output so far"), "{running}");
    // What it printed is redacted (the command itself, exactly what runs, is shown as approved).
    assert!(running.contains("<pre class=\"output\">first-line token=[REDACTED:github_token]\n</pre>"), "{running}");
    assert!(!marker.exists(), "it is still running");

    for _ in 0..200 {
        if status_of(&h, &id).await == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, done) = page.get(&format!("/actions/{id}")).await;
    assert!(done.contains("second-line\n</pre>") && !done.contains("Output so far"), "the result replaces it: {done}");
}
