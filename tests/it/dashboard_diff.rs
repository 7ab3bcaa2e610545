//! Issue 14, "a unified diff for file writes": an assistant asks to write a managed file on a
//! server with a real agent (in process, with an owner's policy managing a temp dir); a signed-in
//! person sees, on the action's page and on the pending page, under "Exactly what runs", the
//! unified diff of the file as it is now against the new content, with the changed line as `-`
//! and `+`, and a secret in the file masked on both sides (an unchanged secret line is context,
//! not a change). A server whose agent is older (it does not announce `file.current`) gets the new
//! content alone with the reason, and the page does not wait for it. One real-Chromium run renders
//! the diff at desktop and phone width (no sideways scroll: long lines wrap inside the box) and
//! takes the screenshots (`docs/dashboard-diff-*.png` with `MTTRLY_DOCS_SCREENSHOTS=1`).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use mttrly_core::capability::{CapabilityId, CapabilitySet, FileCurrent, FileCurrentParams, FileCurrentText};
use mttrly_core::tools::common::ServerPath;
use mttrly_tests::sim::{SimAgent, SimHost};
use serde_json::json;

use crate::approvals::add_server;
use crate::common::{Harness, RunningAgent, call_tool, harness};
use mttrly_tests::webdriver::Driver;

use crate::dashboard::{Http, LIVE, person, screenshot, sign_in};

/// A gitleaks-style AWS access key id: masked wherever it appears.
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

/// What the managed file holds now, and what the assistant asks to write.
const OLD: &str = "# app\nworkers = 2\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\nlog = info\n";
const NEW: &str = "# app\nworkers = 4\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\nlog = info\n";

/// A production server whose in-process agent runs `policy`; its id and the agent.
async fn online_with_policy(h: &Harness, policy: &std::path::Path) -> (String, RunningAgent) {
    let added = add_server(h, "web-1", mttrly_core::Environment::Production).await;
    let state = h.dir.path().join("agent");
    mttrly_agent::enroll::enroll(h.central.grpc_url(), &added.install_token, None, &state, false).await.unwrap();
    let policy = mttrly_agent::policy::LocalPolicy::load(policy).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(mttrly_agent::run(mttrly_agent::RunOptions::new(state, policy), stopped));
    h.wait_online(&added.server_id).await;
    (added.server_id, (stop, agent))
}

/// A production server whose agent manages `*.conf` under `srv/` in the test's directory, with
/// `file` there holding `content`: the server's id, the agent, and the file's path.
async fn managed(h: &Harness, file: &str, content: &str) -> (String, RunningAgent, String) {
    let root = h.dir.path().canonicalize().unwrap().join("srv");
    std::fs::create_dir_all(&root).unwrap();
    let path = root.join(file);
    std::fs::write(&path, content).unwrap();
    let policy = h.dir.path().join("policy.toml");
    std::fs::write(&policy, format!("managed_files = [\"{}/*.conf\"]\n", root.display())).unwrap();
    let (server, agent) = online_with_policy(h, &policy).await;
    (server, agent, path.display().to_string())
}

/// Asks the server's agent for `file.current` directly, with a generous deadline. Also warms the
/// in-process agent up: an unoptimised test build compiles the redactor's rules on first use,
/// which can take longer than the page's 3 s deadline (a release build takes milliseconds).
async fn current(h: &Harness, server: &str, path: &str) -> FileCurrentText {
    let sid = mttrly_core::ids::ServerId::parse(server).unwrap();
    let params = FileCurrentParams { path: ServerPath::new(path).unwrap() };
    h.central.central.agents.ask::<FileCurrent>(&sid, &params, Duration::from_secs(60)).await.unwrap()
}

fn sha256(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// The admin's assistant asks to write `content` to `path`; the pending action's id.
async fn write(h: &Harness, server: &str, path: &str, content: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(content);
    let args = json!({ "server_id": server, "path": path, "content_base64": b64, "reason": "more workers" });
    let (is_error, answer) = call_tool(h.channel().await, &h.admin, "mttrly_write_file", args).await;
    assert!(!is_error, "{answer}");
    assert_eq!(answer["status"], "pending_approval", "{answer}");
    answer["action_id"].as_str().unwrap().to_owned()
}

/// The diff section of action `id` in `page`.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let card = &page[page.find(&format!("id=\"action-{id}\"")).unwrap_or_else(|| panic!("no card {id}: {page}"))..];
    let start = card.find("<section class=\"filediff\">").unwrap_or_else(|| panic!("no diff for {id}: {card}"));
    let end = card[start..].find("</section>").unwrap() + start;
    &card[start..end]
}

#[tokio::test]
async fn a_pending_write_shows_its_diff_with_secrets_masked_on_both_sides() {
    let h = harness(|_| {}).await;
    let (server, _agent, conf) = managed(&h, "app.conf", OLD).await;
    let id = write(&h, &server, &conf, NEW).await;
    // Over the wire and through central's second pass: masked text, the raw hash intact.
    let current = current(&h, &server, &conf).await;
    assert!(current.exists && current.content.as_deref().is_some_and(|c| c.contains("workers = 2")), "{current:?}");
    assert!(!current.content.as_deref().unwrap_or_default().contains(AWS_KEY), "{current:?}");
    assert_eq!(current.sha256.as_deref(), Some(sha256(OLD).as_str()));

    let mut bob = person(&h, "bob", "operator").await;
    let mut http = Http::new(&h.central.http_url());
    http.sign_in(&mut bob).await;
    for path in [format!("/actions/{id}"), "/".to_owned()] {
        let (status, page) = http.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let diff = section(&page, &id);
        assert!(diff.contains("Secrets masked on both sides; what runs is bound by the SHA-256 above."), "{diff}");
        assert!(
            diff.contains(&format!("--- {conf} (now)")) && diff.contains(&format!("+++ {conf} (after the write)")),
            "{path}: {diff}"
        );
        assert!(diff.contains("@@ -1,4 +1,4 @@"), "{path}: {diff}");
        assert!(diff.contains("<span class=\"del\">-workers = 2</span>"), "{path}: {diff}");
        assert!(diff.contains("<span class=\"ins\">+workers = 4</span>"), "{path}: {diff}");
        // The unchanged secret line is context, masked, on both sides: not a change, not shown.
        assert!(diff.contains("<span class=\"ctx\"> aws_access_key_id = [REDACTED:"), "{path}: {diff}");
        assert_eq!(diff.matches("class=\"del\"").count(), 1, "{path}: {diff}");
        assert_eq!(diff.matches("class=\"ins\"").count(), 1, "{path}: {diff}");
        assert!(!page.contains(AWS_KEY), "{path}: the secret is on the page");
        // Nor the current file's raw hash, which would let a reader test guesses of the secret.
        assert!(!page.contains(&sha256(OLD)), "{path}: the current file's raw SHA-256 is on the page");
        assert!(diff.contains("different bytes from after the write"), "{path}: {diff}");
    }

    // The same bytes again: the raw SHA-256s match (the hash survives both redaction passes).
    let same = write(&h, &server, &conf, OLD).await;
    let (status, page) = http.get(&format!("/actions/{same}")).await;
    assert_eq!(status, 200, "{page}");
    let diff = section(&page, &same);
    assert!(diff.contains("No change: the current file"), "{diff}");
    assert!(!diff.contains("class=\"ins\"") && !page.contains(AWS_KEY), "{diff}");

    // A write the agent's policy refuses: the page says so and shows the new content alone.
    let outside = h.dir.path().canonicalize().unwrap().join("elsewhere.conf").display().to_string();
    std::fs::write(&outside, "secret = hunter2hunter2\n").unwrap();
    let refused = write(&h, &server, &outside, "x = 1\n").await;
    let (status, page) = http.get(&format!("/actions/{refused}")).await;
    assert_eq!(status, 200, "{page}");
    let diff = section(&page, &refused);
    assert!(diff.contains("refused to read it") && diff.contains("<span class=\"ins\">+x = 1</span>"), "{diff}");
    assert!(!page.contains("hunter2"), "{page}");
}

/// `path` as a live refresh fetches it (`<main>` only), with `http`'s session.
async fn fragment(http: &mut Http, base: &str, path: &str) -> (u16, String) {
    let request = http.http.get(format!("{base}{path}")).header("X-Mttrly-Fragment", "1");
    http.send(request).await
}

#[tokio::test]
async fn a_viewer_never_gets_the_file_and_a_refresh_shows_the_same_reading_with_its_age() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url();
    let (server, _agent, conf) = managed(&h, "app.conf", OLD).await;
    let id = write(&h, &server, &conf, NEW).await;
    current(&h, &server, &conf).await;

    // A viewer: the new content's size and hash and why there is no diff, on every page and
    // refresh that shows the action, never the file's lines (old or new).
    let mut vera = person(&h, "vera", "viewer").await;
    let mut viewer = Http::new(&base);
    viewer.sign_in(&mut vera).await;
    let action = format!("/actions/{id}");
    for (path, refresh) in [(action.as_str(), false), (action.as_str(), true), ("/", false), ("/", true)] {
        let (status, page) = if refresh { fragment(&mut viewer, &base, path).await } else { viewer.get(path).await };
        assert_eq!(status, 200, "{path}: {page}");
        let shown = section(&page, &id);
        assert!(shown.contains("The diff is not shown to you") && shown.contains("your role is viewer"), "{shown}");
        assert!(shown.contains(&sha256(NEW)) && shown.contains(&format!("{} bytes", NEW.len())), "{shown}");
        for line in ["workers = 2", "workers = 4", "log = info", "# app", "aws_access_key_id"] {
            assert!(!page.contains(line), "{path} (refresh {refresh}) shows `{line}` to a viewer: {page}");
        }
        assert!(!page.contains("pre class=\"diff\"") && !page.contains("Asked the agent"), "{page}");
    }
    for export in ["/audit.json", "/audit.csv"] {
        let (status, rows) = viewer.get(export).await;
        assert_eq!(status, 200, "{export}: {rows}");
        assert!(!rows.contains("workers = 2") && !rows.contains("log = info"), "{export}: {rows}");
    }

    // An operator sees the diff, with when the agent was asked.
    let mut bob = person(&h, "bob", "operator").await;
    let mut http = Http::new(&base);
    http.sign_in(&mut bob).await;
    let (status, page) = http.get(&action).await;
    assert_eq!(status, 200, "{page}");
    let diff = section(&page, &id);
    assert!(diff.contains("<span class=\"del\">-workers = 2</span>"), "{diff}");
    assert!(diff.contains("Asked the agent") && diff.contains("just now"), "{diff}");

    // The file changes on the server. A live refresh, and the pending list, show the reading
    // the agent gave (how old it is, said), instead of asking the agent again on every refresh.
    std::fs::write(&conf, OLD.replace("workers = 2", "workers = 3")).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (path, refresh) in [(action.as_str(), true), ("/", true), ("/", false)] {
        let (status, page) = if refresh { fragment(&mut http, &base, path).await } else { http.get(path).await };
        assert_eq!(status, 200, "{path}: {page}");
        let diff = section(&page, &id);
        assert!(diff.contains("<span class=\"del\">-workers = 2</span>") && !diff.contains("workers = 3"), "{diff}");
        assert!(diff.contains("Asked the agent") && diff.contains(" s ago: the diff is against the file"), "{diff}");
    }
}

#[tokio::test]
async fn an_older_agent_gets_the_new_content_alone_and_the_reason() {
    let h = harness(|_| {}).await;
    let added = add_server(&h, "legacy-1", mttrly_core::Environment::Production).await;
    // Everything but `file.current`: an agent from before it.
    let offered: CapabilitySet =
        CapabilityId::ALL.iter().copied().filter(|c| *c != CapabilityId::FileCurrent).collect();
    let (url, token) = (h.central.grpc_url().to_owned(), added.install_token.clone());
    let sim =
        tokio::task::spawn_blocking(move || SimAgent::start(&url, &token, "0.9.0-sim", offered, SimHost::default()))
            .await
            .unwrap();
    h.wait_online(&sim.server_id).await;
    let id = write(&h, &sim.server_id, "/srv/app/app.conf", &format!("workers = 4\nkey = {AWS_KEY}\n")).await;

    let mut bob = person(&h, "bob", "operator").await;
    let mut http = Http::new(&h.central.http_url());
    http.sign_in(&mut bob).await;
    let started = Instant::now();
    let (status, page) = http.get(&format!("/actions/{id}")).await;
    let took = started.elapsed();
    eprintln!("the action page of an older agent's write took {took:?}");
    assert!(took < Duration::from_secs(3), "the page waited {took:?}");
    assert_eq!(status, 200, "{page}");
    let diff = section(&page, &id);
    assert!(diff.contains("too old to show the current file"), "{diff}");
    assert!(diff.contains("<span class=\"ins\">+workers = 4</span>"), "{diff}");
    assert!(diff.contains("<span class=\"ins\">+key = [REDACTED:"), "{diff}");
    assert!(!page.contains(AWS_KEY), "{page}");

    // The pending page shows at most ten diffs (each up to 256 KiB, fetched again on every live
    // refresh); the others link to their own page, which still shows theirs whole.
    let mut ids = vec![id];
    for i in 0..11 {
        ids.push(write(&h, &sim.server_id, &format!("/srv/app/{i}.conf"), &format!("n = {i}\n")).await);
    }
    let (status, page) = http.get("/").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page.matches("<section class=\"filediff\">").count(), 10, "{page}");
    assert_eq!(page.matches("More than 10 file writes are on this page").count(), 2, "{page}");
    let linked =
        ids.iter().filter(|id| page.contains(&format!("href=\"/actions/{id}\">open the action's page"))).count();
    assert_eq!(linked, 2, "{page}");
    tokio::task::spawn_blocking(move || drop(sim)).await.unwrap();
}

#[tokio::test]
async fn the_diff_renders_in_chromium_at_desktop_and_phone_width() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url();
    let mut old = String::from("# upstreams\n");
    for i in 1..=12 {
        old.push_str(&format!("server 10.0.0.{i}:8080 max_fails=3 fail_timeout=30s;\n"));
    }
    old.push_str(&format!("aws_access_key_id = {AWS_KEY}\n"));
    let long = format!("log_format main '{}';\n", "$remote_addr - $remote_user [$time_local] \"$request\" ".repeat(6));
    let new = old
        .replace("10.0.0.7:8080 max_fails=3", "10.0.0.7:8081 max_fails=5")
        .replace("# upstreams\n", &format!("# upstreams\n{long}\u{1b}[31mred\r\n"));
    let (server, _agent, conf) = managed(&h, "nginx.conf", &old).await;
    let id = write(&h, &server, &conf, &new).await;
    current(&h, &server, &conf).await;

    let mut bob = person(&h, "bob", "operator").await;
    let driver = Driver::start().await;
    let browser = driver.browser(1280, 900).await;
    sign_in(&browser, &base, &mut bob).await;
    let card = format!("article#action-{id}");
    browser.wait_for(&format!("{card} section.filediff pre.diff span.ins"), LIVE).await;
    let diff = browser.text_of(&format!("{card} section.filediff pre.diff")).await;
    assert!(
        diff.contains("-server 10.0.0.7:8080 max_fails=3") && diff.contains("+server 10.0.0.7:8081 max_fails=5"),
        "{diff}"
    );
    assert!(diff.contains("+\\x1b[31mred\\r"), "{diff}");
    assert!(!diff.contains(AWS_KEY), "{diff}");

    browser.goto(&format!("{base}/actions/{id}")).await;
    browser.wait_for(&format!("main[data-connected] {card} section.filediff pre.diff span.del"), LIVE).await;
    browser.execute("document.querySelector('section.filediff').scrollIntoView();", json!([])).await;
    screenshot(&browser, "dashboard-diff-desktop").await;
    browser.resize(390, 844).await;
    browser.wait_until("return document.documentElement.scrollWidth <= window.innerWidth;", LIVE).await;
    browser.execute("document.querySelector('section.filediff').scrollIntoView();", json!([])).await;
    screenshot(&browser, "dashboard-diff-phone").await;
}
