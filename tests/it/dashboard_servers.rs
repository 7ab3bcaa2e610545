//! Issue 14, the servers pages: `/servers` pages through ten thousand servers without reading
//! them all (totals, a filter by name, environment and state, previous / next links that work
//! without JavaScript), and `/servers/{id}` shows one server: its host facts, its metrics now, a
//! history chart drawn from samples the heartbeat flush took, its open alerts, recent actions and
//! audit rows; another account's server is a 404; hostile names and mount points stay inert. One
//! real-Chromium run renders both at desktop and phone width (no sideways scroll) and takes the
//! screenshots (`docs/dashboard-servers-*.png`, `docs/dashboard-server-*.png` with
//! `MTTRLY_DOCS_SCREENSHOTS=1`).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mttrly_core::Plan;
use mttrly_core::ids::{AccountId, ServerId};
use mttrly_tests::webdriver::Driver;
use serde_json::json;

use crate::common::{Harness, harness};
use crate::dashboard::{Http, LIVE, online_production, person, request, screenshot, sign_in};

/// A table row linking to a server's page.
const ROW: &str = "<th scope=\"row\"><a href=\"/servers/";

/// Hostile text a server could choose: markup, an ANSI escape, a CR, a bidi override.
const HOSTILE: &str = "<script>document.title='pwned'</script>\u{1b}[31mred\rX\u{202e}gnp.exe";

/// Writes servers straight into the account's database (the plan's limit would stop at a few):
/// `names[i]` in `environment(i)`, every third one with an open alert. Returns their ids.
async fn add_servers(h: &Harness, account: &AccountId, names: Vec<String>, metrics: Option<String>) -> Vec<String> {
    let account = account.to_string();
    h.central
        .central
        .db
        .with_connection_for_tests(move |c| {
            let tx = c.transaction()?;
            let mut ids = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let id = ServerId::generate().to_string();
                let environment = ["production", "staging", "development"][i % 3];
                tx.execute(
                    "INSERT INTO servers (id, account_id, name, environment, created_at, metrics_json)
                     VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                    rusqlite::params![id, account, name, environment, metrics],
                )?;
                if i % 3 == 0 {
                    tx.execute(
                        "INSERT INTO alerts (id, account_id, server_id, rule, subject, severity, status, summary, opened_at)
                         VALUES (?1, ?2, ?3, 'disk_usage', '/', 'warning', 'open', 'disk / at 91%', 0)",
                        rusqlite::params![mttrly_core::ids::AlertId::generate().to_string(), account, id],
                    )?;
                }
                ids.push(id);
            }
            tx.commit()?;
            Ok(ids)
        })
        .await
        .unwrap()
}

async fn first_account(h: &Harness) -> AccountId {
    h.central.central.db.first_account().await.unwrap().unwrap().0
}

#[tokio::test]
async fn servers_page_through_totals_filters_and_links() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url();
    let account = first_account(&h).await;
    // node-000 .. node-249: production, staging, development in turn; node-000, -003, ... alerting.
    let ids = add_servers(&h, &account, (0..250).map(|i| format!("node-{i:03}")).collect(), None).await;
    let mut bob = person(&h, "bob", "operator").await;
    let mut http = Http::new(&base);
    http.sign_in(&mut bob).await;

    let (status, page) = http.get("/servers").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("250 servers"), "{page}");
    assert!(page.contains("0 online") && page.contains("250 never connected"), "{page}");
    assert!(page.contains("84 alerting"), "every third of 250: {page}");
    assert_eq!(page.matches(ROW).count(), 100, "one page");
    assert!(page.contains(&format!("{ROW}{}\">node-000</a>", ids[0])), "rows link to the server's page");
    assert!(page.contains("Showing 1–100 of 250 (page 1 of 3)"), "{page}");
    assert!(page.contains("rel=\"next\" href=\"/servers?page=2\""), "{page}");
    assert!(!page.contains("rel=\"prev\""), "no previous page");
    assert!(page.contains("data-url=\"/servers\""));

    let (_, page) = http.get("/servers?page=3").await;
    assert_eq!(page.matches(ROW).count(), 50, "the last page");
    assert!(page.contains("node-249") && !page.contains("node-199<"), "{page}");
    assert!(page.contains("rel=\"prev\" href=\"/servers?page=2\"") && !page.contains("rel=\"next\""), "{page}");

    // By name (case does not matter), by environment, both; the links keep the filter.
    let (_, page) = http.get("/servers?q=NODE-01").await;
    assert_eq!(page.matches(ROW).count(), 10, "node-010 .. node-019");
    assert!(page.contains("of 10 matching") && page.contains("value=\"NODE-01\""), "{page}");
    let (_, page) = http.get("/servers?env=staging").await;
    assert!(page.contains("of 83 matching"), "{page}");
    assert!(page.contains("(page 1 of 1)") && !page.contains("rel=\"next\""), "{page}");
    assert!(page.contains("data-url=\"/servers?env=staging\""), "a live refresh keeps the filter");
    let (_, page) = http.get("/servers?q=node-1&env=development&page=1").await;
    // node-100..node-199 with i % 3 == 2: 101, 104, ..., 197 → 33.
    assert!(page.contains("of 33 matching"), "{page}");
    assert_eq!(page.matches(ROW).count(), 33);

    // By state: the alerting ones, the never connected, nothing offline.
    let (_, page) = http.get("/servers?state=alerting&page=1").await;
    assert!(page.contains("of 84 matching") && page.contains("node-003") && !page.contains(">node-001<"), "{page}");
    let (_, page) = http.get("/servers?state=never&page=2").await;
    assert!(page.contains("Showing 101–200 of 250 matching"), "{page}");
    assert!(
        page.contains("rel=\"next\" href=\"/servers?state=never&amp;page=3\""),
        "the links keep the filter: {page}"
    );
    assert!(page.contains("rel=\"prev\" href=\"/servers?state=never\""), "{page}");
    let (status, page) = http.get("/servers?state=offline").await;
    assert_eq!(status, 200);
    assert!(page.contains("No server matches this filter.") && page.matches(ROW).count() == 0, "{page}");
    let (status, page) = http.get("/servers?page=9").await;
    assert_eq!(status, 200);
    assert!(page.contains("No page 9: 250 servers match, 3 pages."), "{page}");
    assert!(page.contains("rel=\"prev\" href=\"/servers?page=3\""), "a way back: {page}");

    // Bad filters are refused with the reason, in the page.
    for (query, message) in [
        ("env=prod", "unknown environment `prod`"),
        ("state=up", "unknown state `up`"),
        ("page=0", "page `0` is not a page number"),
    ] {
        let (status, page) = http.get(&format!("/servers?{query}")).await;
        assert_eq!(status, 400, "{query}: {page}");
        assert!(page.contains(message), "{query}: {page}");
        assert_eq!(page.matches(ROW).count(), 0);
    }

    // Another account's servers are never counted or listed.
    let (other, _) = h.central.central.db.create_tenant("other", Plan::DeploymentCrew, "eve", &[7; 32]).await.unwrap();
    add_servers(&h, &other, vec!["node-theirs".into()], None).await;
    let (_, page) = http.get("/servers?q=theirs").await;
    assert!(page.contains("250 servers") && page.contains("No server matches this filter."), "{page}");
}

/// Waits until the flush has stored the agent's metrics, then samples twice a minute apart
/// through the flush itself (the production flusher samples once a minute).
async fn two_samples(h: &Harness, server: &str) {
    let account = first_account(h).await;
    let id = ServerId::parse(server).unwrap();
    let db = &h.central.central.db;
    for _ in 0..600 {
        let row = db.account(&account).servers().get(&id).await.unwrap().unwrap();
        if row.metrics_json.as_deref().is_some_and(|j| j.contains("cpu_percent")) {
            let now = mttrly_central::db::now_ms();
            db.fleet().flush_heartbeats(Vec::new(), Some(now - 60_000)).await.unwrap();
            db.fleet().flush_heartbeats(Vec::new(), Some(now)).await.unwrap();
            let samples = db.account(&account).servers().metrics_history(&id, now - 3_600_000).await.unwrap();
            // The flusher's own once-a-minute sample may add a third at a minute's turn.
            assert!(samples.len() >= 2, "{samples:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the agent's metrics never reached the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_servers_page_shows_its_facts_metrics_history_actions_and_audit() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url();
    let (server, _agent) = online_production(&h).await;
    two_samples(&h, &server).await;
    let marker = h.dir.path().join("never-run");
    let action = request(&h, &server, &format!("touch {}", marker.display()), "mark it").await;
    let mut bob = person(&h, "bob", "operator").await;
    let mut http = Http::new(&base);
    http.sign_in(&mut bob).await;

    let (status, page) = http.get(&format!("/servers/{server}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("data-live=\"server:{server}\"")), "app.js refreshes it on its events");
    assert!(page.contains("<h1>web-1 <span class=\"env production\">production</span></h1>"), "{page}");
    assert!(page.contains("<span class=\"conn online\">online</span>"), "{page}");
    for fact in ["Agent version", "Operating system", "Kernel", "Capabilities", "Load (1/5/15 min)", "Mount point"] {
        assert!(page.contains(fact), "{fact} missing: {page}");
    }
    // The chart: two samples a minute apart draw a line for every series the agent reports
    // (CPU, memory, load and, with a filesystem, the fullest disk), described in words.
    let lines = page.matches("<polyline").count();
    assert!(lines >= 3, "{lines} lines: {page}");
    assert!(page.contains("<title id=\"chart-percent-title\">CPU, memory and fullest disk (%)</title>"), "{page}");
    let described = page.find(" samples. CPU: latest").unwrap();
    let count: usize = page[..described].rsplit('>').next().unwrap().parse().unwrap();
    assert!(count >= 2, "{page}");
    assert!(page.contains(&format!("The numbers ({count} samples)")), "{page}");
    assert!(!page.contains("style="), "the CSP forbids inline styles");
    // Its recent action links to the action's page; its audit rows are there.
    assert!(page.contains(&format!("href=\"/actions/{action}\"")), "{page}");
    assert!(page.contains("pending_approval"), "{page}");
    let audit = &page[page.find("id=\"audit\"").unwrap()..];
    assert!(audit.contains("tool_call"), "the assistant's request, audited against this server: {audit}");

    // The window: 24 hours is offered, 7 is not.
    let (status, page) = http.get(&format!("/servers/{server}?hours=24")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("data-url=\"/servers/{server}?hours=24\"")), "{page}");
    let (status, page) = http.get(&format!("/servers/{server}?hours=7")).await;
    assert_eq!(status, 400);
    assert!(page.contains("is not a chart window"), "{page}");

    // Another account's server, an unknown one and a malformed id: the same 404 page.
    let (other, _) = h.central.central.db.create_tenant("other", Plan::DeploymentCrew, "eve", &[7; 32]).await.unwrap();
    let theirs = add_servers(&h, &other, vec!["theirs".into()], None).await.remove(0);
    for id in [theirs.as_str(), "srv_0123456789abcdef0123456789abcdef", "not-an-id<b>"] {
        let (status, page) = http.get(&format!("/servers/{}", crate::common::urlencode(id))).await;
        assert_eq!(status, 404, "{id}: {page}");
        assert!(page.contains("No such server") && !page.contains("theirs<"), "{id}: {page}");
        let main = &page[page.find("<main").unwrap()..];
        assert!(!main.contains("<b>") && main.contains("&lt;b&gt;") == id.contains('<'), "{main}");
    }
}

#[tokio::test]
async fn hostile_names_and_mount_points_are_shown_escaped() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url();
    let account = first_account(&h).await;
    let metrics = json!({
        "collected_at": "2026-12-01T10:00:00Z", "cpu_percent": 5.0, "memory_total_bytes": 100, "memory_used_bytes": 50,
        "memory_percent": 50.0, "swap_total_bytes": 0, "swap_used_bytes": 0, "load_average": [0.1, 0.1, 0.1],
        "uptime_seconds": 60,
        "filesystems": [{ "mount_point": HOSTILE, "fs_type": "<i>ext4</i>", "total_bytes": 100, "used_bytes": 99, "used_percent": 99.0 }]
    })
    .to_string();
    let id = add_servers(&h, &account, vec![HOSTILE.to_owned()], Some(metrics)).await.remove(0);
    let mut bob = person(&h, "bob", "operator").await;
    let mut http = Http::new(&base);
    http.sign_in(&mut bob).await;
    let shown = "&lt;script&gt;document.title='pwned'&lt;/script&gt;\\x1b[31mred\\rX\\u{202e}gnp.exe";
    for path in ["/servers".to_owned(), format!("/servers/{id}")] {
        let (status, page) = http.get(&path).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.matches(shown).count() >= 2, "name and mount point, visible and inert on {path}: {page}");
        assert!(!page.contains("<script>document") && !page.contains("<i>"), "{path}: {page}");
        assert!(!page.contains('\u{1b}') && !page.contains('\r') && !page.contains('\u{202e}'), "{path}");
    }
}

// Central, its agent and the test share the runtime; chromedriver and Chromium are processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_servers_pages_render_in_chromium_at_desktop_and_phone_width() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url();
    let (server, _agent) = online_production(&h).await;
    let account = first_account(&h).await;
    let names = (1..=40).map(|i| format!("app-{i:02}.eu-west.example.com")).collect();
    add_servers(&h, &account, names, None).await;
    two_samples(&h, &server).await;
    request(&h, &server, &format!("touch {}", h.dir.path().join("never-run").display()), "the disk alert").await;
    let mut bob = person(&h, "bob", "operator").await;
    let driver = Driver::start().await;
    let browser = driver.browser(1280, 900).await;
    sign_in(&browser, &base, &mut bob).await;

    browser.goto(&format!("{base}/servers")).await;
    browser.wait_for("main[data-live='servers'][data-connected] table.servers", LIVE).await;
    let summary = browser.text_of("p.summary").await;
    assert!(summary.contains("41 servers: 1 online, 0 offline, 40 never connected; 14 alerting"), "{summary}");
    screenshot(&browser, "dashboard-servers-desktop").await;
    browser.resize(390, 844).await;
    browser.wait_until("return document.documentElement.scrollWidth <= window.innerWidth;", LIVE).await;
    screenshot(&browser, "dashboard-servers-phone").await;
    browser.resize(1280, 900).await;

    // The filter works without script: a GET form.
    browser.type_into(&browser.wait_for("form.filters input[name=q]", LIVE).await, "web").await;
    browser.click(&browser.wait_for("form.filters button[type=submit]", LIVE).await).await;
    browser.wait_until("return location.search === '?q=web&env=&state=';", LIVE).await;
    browser.wait_for("main[data-connected] p.showing", LIVE).await;
    assert!(browser.text_of("p.showing").await.contains("Showing 1–1 of 1 matching"));

    browser.click(&browser.wait_for(&format!("a[href='/servers/{server}']"), LIVE).await).await;
    browser.wait_for(&format!("main[data-live='server:{server}'][data-connected] figure.chart svg"), LIVE).await;
    // The chart's description is not rendered text: read it as a screen reader would.
    let label = browser.execute("return document.getElementById('chart-percent-desc').textContent;", json!([])).await;
    assert!(label.as_str().unwrap().contains(" samples. CPU: latest"), "{label}");
    assert!(browser.text_of("section#actions").await.contains("pending_approval"));
    screenshot(&browser, "dashboard-server-desktop").await;
    browser.resize(390, 844).await;
    browser.wait_until("return document.documentElement.scrollWidth <= window.innerWidth;", LIVE).await;
    screenshot(&browser, "dashboard-server-phone").await;
}
