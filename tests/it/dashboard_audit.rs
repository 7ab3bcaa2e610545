//! Issue 14, the dashboard's Alerts and Audit pages, over HTTP as a signed-in person: the audit
//! log's filters (server, actor, source, kind, subject, time) really filter, paging by sequence
//! number reaches every row once, the CSV and JSON exports carry every matching row (across the
//! export's read chunks) with download headers, a formula cell is neutralised, hostile text is
//! shown escaped, another account's rows never appear, the chain shows verified and then broken
//! after a row is edited in the SQLite file, bad parameters get the page with a 400. The alerts
//! page lists open first then resolved, filters by status, severity and server, shows alerts for
//! no known server apart. One real Chromium run renders both pages at desktop and phone width.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use mttrly_central::db::alerts::{InboundChange, NewAlert, NewUnmatchedAlert};
use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::{AccountId, AlertId, AssistantSessionId, ServerId, UserId};
use mttrly_core::tools::common::Severity;
use mttrly_core::{Plan, Source};
use mttrly_proto::central::v1::ListAuditRequest;
use mttrly_proto::central::v1::audit_service_client::AuditServiceClient;
use mttrly_tests::webdriver::Driver;
use serde_json::{Value, json};

use crate::approvals::{add_server, add_user, approve};
use crate::common::{Harness, authed, call_tool, harness, urlencode};
use crate::dashboard::{LIVE, PASSWORD, Person, hidden, online_production, person, request, screenshot, sign_in};

/// A hostile string: markup, an ANSI escape, a carriage return and a bidi override.
const HOSTILE: &str = "<script>alert(1)</script>\u{1b}[31mred\rback \u{202e}gnp.exe";

/// A signed-in browser session over plain HTTP that keeps the response headers.
struct Session {
    http: reqwest::Client,
    base: String,
    cookies: String,
}

impl Session {
    /// Signs `who` (named `name`) in through `/signin` with the password and a fresh code.
    async fn sign_in(base: &str, who: &mut Person, name: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let mut s = Self { http, base: base.to_owned(), cookies: String::new() };
        let r = s.http.get(format!("{base}/signin")).send().await.unwrap();
        s.keep(&r);
        let page = r.text().await.unwrap();
        let csrf = hidden(&page, "csrf");
        let code = who.fresh_code().await;
        let form = [("csrf", csrf.as_str()), ("next", "/"), ("login", name), ("password", PASSWORD), ("code", &code)];
        let body = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
        let r = s
            .http
            .post(format!("{base}/signin"))
            .header(reqwest::header::COOKIE, &s.cookies)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ORIGIN, base)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "signed in");
        s.keep(&r);
        s
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for set in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            let mut kept: Vec<String> = self
                .cookies
                .split("; ")
                .filter(|c| !c.is_empty() && !c.starts_with(&format!("{name}=")))
                .map(str::to_owned)
                .collect();
            kept.push(pair);
            self.cookies = kept.join("; ");
        }
    }

    async fn fetch(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookies)
            .send()
            .await
            .unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, headers, r.text().await.unwrap())
    }

    /// What a live refresh fetches: `<main>`'s content only.
    async fn fragment(&self, path: &str) -> String {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookies)
            .header("X-Mttrly-Fragment", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.text().await.unwrap()
    }

    /// A page that must answer 200.
    async fn page(&self, path: &str) -> String {
        let (status, _, body) = self.fetch(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

async fn account(h: &Harness) -> AccountId {
    h.central.central.db.first_account().await.unwrap().unwrap().0
}

async fn user_id(h: &Harness, name: &str) -> UserId {
    let users = h.central.central.db.account(&account(h).await).users().list().await.unwrap();
    users.into_iter().find(|u| u.name == name).unwrap().id
}

/// An audit row written straight through central's one writer, with exactly these fields.
#[allow(clippy::too_many_arguments)]
fn row(
    account: &AccountId,
    ago_hours: i64,
    server: Option<&ServerId>,
    actor: AuditActor,
    source: Source,
    kind: AuditKind,
    subject: &str,
    parameters: Value,
) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::from_millisecond(jiff::Timestamp::now().as_millisecond() - ago_hours * 3_600_000).unwrap(),
        account_id: account.clone(),
        server_id: server.cloned(),
        actor,
        source,
        kind,
        subject: subject.to_owned(),
        parameters,
        outcome: AuditOutcome::Ok,
        duration_ms: Some(3),
    }
}

/// The subjects of the rows a page of `/audit` shows.
fn subjects(page: &str) -> BTreeSet<String> {
    page.split("<td class=\"subject\">")
        .skip(1)
        .map(|cell| {
            let cell = cell.split("</td>").next().unwrap();
            let code = cell.split("<code>").nth(1).unwrap();
            code.split("</code>").next().unwrap().to_owned()
        })
        .collect()
}

/// The sequence numbers of the rows a page of `/audit` shows, in order.
fn seqs(page: &str) -> Vec<u64> {
    page.split("<td class=\"seq\">").skip(1).map(|c| c.split('<').next().unwrap().parse().unwrap()).collect()
}

fn ts(ago_hours: i64) -> String {
    jiff::Timestamp::from_millisecond(jiff::Timestamp::now().as_millisecond() - ago_hours * 3_600_000)
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_filters_paging_exports_verification_and_isolation() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url().clone();
    let (web, _agent) = online_production(&h).await;
    let web = ServerId::parse(&web).unwrap();
    let db_server =
        ServerId::parse(&add_server(&h, "db-1", mttrly_core::Environment::Staging).await.server_id).unwrap();
    // carol's token first: once an admin has a second factor, issuing a token asks for a code.
    let carol = add_user(&h, "carol", "operator").await;
    let mut alice = person(&h, "alice", "admin").await;
    let acct = account(&h).await;
    let alice_id = user_id(&h, "alice").await;

    // Real rows: the admin's assistant asks for a command, carol approves it with the CLI's
    // gRPC call; a tool call through the assistant.
    let marker = h.dir.path().join("approved-by-cli");
    let action = request(&h, web.as_str(), &format!("touch {}", marker.display()), "mark it").await;
    approve(&h, &carol, &action, "").await.unwrap();
    let (is_error, _) = call_tool(h.channel().await, &h.admin, "mttrly_list_servers", json!({})).await;
    assert!(!is_error);

    // Crafted rows with known fields, one per filter dimension.
    let audit = &h.central.central.audit;
    let session = AssistantSessionId::generate();
    let human = || AuditActor::Human { user_id: alice_id.clone(), name: "alice".into() };
    let assistant = || AuditActor::Assistant {
        session_id: session.clone(),
        client_name: "cursor".into(),
        on_behalf_of: alice_id.clone(),
    };
    audit.append(row(&acct, 50, Some(&db_server), human(), Source::Cli, AuditKind::ApiCall, "subj-a", json!({})));
    audit.append(row(&acct, 40, None, assistant(), Source::Mcp, AuditKind::ToolCall, "subj-b", json!({})));
    audit.append(row(
        &acct,
        30,
        Some(&web),
        AuditActor::Agent { server_id: web.clone() },
        Source::Agent,
        AuditKind::AgentEvent,
        "subj-c",
        json!({}),
    ));
    audit.append(row(&acct, 20, None, AuditActor::System, Source::Telegram, AuditKind::Alert, "subj-d", json!({})));
    audit.append(row(
        &acct,
        10,
        None,
        AuditActor::Human { user_id: alice_id.clone(), name: HOSTILE.into() },
        Source::Dashboard,
        AuditKind::ApiCall,
        "=HYPERLINK(\"http://evil.example/\",\"click\")",
        json!({ "note": HOSTILE }),
    ));
    // Enough rows of one subject for several pages and more than one export read chunk (1000).
    for i in 0..1100 {
        audit.append(row(&acct, 5, None, human(), Source::Api, AuditKind::ToolCall, "bulk", json!({ "i": i })));
    }
    // Another account's row, named so it would be found anywhere it leaked.
    let (other, eve) = h
        .central
        .central
        .db
        .create_tenant("other", Plan::DeploymentCrew, "eve", &mttrly_central::secrets::hash("eve-secret"))
        .await
        .unwrap();
    audit.append(row(
        &other,
        1,
        None,
        AuditActor::Human { user_id: eve, name: "eve".into() },
        Source::Cli,
        AuditKind::ApiCall,
        "other-account-secret",
        json!({}),
    ));
    audit.flush().await;

    let s = Session::sign_in(&base, &mut alice, "alice").await;

    // Unfiltered: newest first, the chain not yet checked, nothing of the other account.
    let all = s.page("/audit").await;
    assert!(all.contains("Audit log"), "{all}");
    assert!(all.contains("checked on request"), "{all}");
    let first = seqs(&all);
    assert_eq!(first.len(), 100, "a page is 100 rows");
    assert!(first.windows(2).all(|w| w[0] > w[1]), "newest first: {first:?}");
    assert!(!all.contains("other-account-secret"));

    // Each filter keeps exactly its rows (among the crafted ones, told apart by subject).
    let crafted: BTreeSet<&str> = ["subj-a", "subj-b", "subj-c", "subj-d"].into();
    let only = |page: &str| -> BTreeSet<String> {
        subjects(page).into_iter().filter(|s| crafted.contains(s.as_str())).collect()
    };
    let set = |items: &[&str]| -> BTreeSet<String> { items.iter().map(|s| (*s).to_owned()).collect() };
    for (query, expected) in [
        (format!("server={db_server}"), set(&["subj-a"])),
        (format!("server={web}"), set(&["subj-c"])),
        ("source=cli".to_owned(), set(&["subj-a"])),
        ("source=mcp".to_owned(), set(&["subj-b"])),
        ("source=telegram".to_owned(), set(&["subj-d"])),
        ("kind=agent_event".to_owned(), set(&["subj-c"])),
        ("kind=alert".to_owned(), set(&["subj-d"])),
        ("actor=agent".to_owned(), set(&["subj-c"])),
        ("actor=system".to_owned(), set(&["subj-d"])),
        (format!("actor=assistant:{alice_id}"), set(&["subj-b"])),
        (format!("actor=human:{alice_id}&kind=api_call&source=cli"), set(&["subj-a"])),
        (format!("from={}&to={}", urlencode(&ts(45)), urlencode(&ts(25))), set(&["subj-b", "subj-c"])),
    ] {
        let page = s.page(&format!("/audit?{query}")).await;
        assert_eq!(only(&page), expected, "{query}");
    }
    // A filter that matches nothing says so.
    let none = s.page("/audit?source=slack").await;
    assert!(none.contains("No audit row matches"), "{none}");
    // `source=cli` also finds carol's approval through the CLI's gRPC call, and the action
    // links to its page.
    let cli = s.page("/audit?source=cli&kind=approval_decision").await;
    assert!(cli.contains(&format!("href=\"/actions/{action}\"")), "{cli}");
    assert!(cli.contains("carol"), "{cli}");
    let by_subject = s.page(&format!("/audit?subject={action}")).await;
    assert!(subjects(&by_subject).iter().all(|s| s == &action), "{by_subject}");
    assert!(!subjects(&by_subject).is_empty());

    // Paging by sequence number: every `bulk` row exactly once, through the Older links.
    let mut seen = Vec::new();
    let mut path = "/audit?subject=bulk".to_owned();
    loop {
        let page = s.page(&path).await;
        seen.extend(seqs(&page));
        match page.split("rel=\"next\"").next().and_then(|p| p.rsplit("href=\"").next()) {
            Some(href) if page.contains("rel=\"next\"") => path = href.split('"').next().unwrap().replace("&amp;", "&"),
            _ => break,
        }
        assert!(path.contains("subject=bulk") && path.contains("before_seq="), "{path}");
    }
    assert_eq!(seen.len(), 1100);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 1100, "no row twice");

    // Hostile text is shown as visible escapes, inert.
    let hostile = s.page("/audit?source=dashboard").await;
    assert!(hostile.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31mred\\rback \\u{202e}gnp.exe"), "{hostile}");
    assert!(!hostile.contains("<script>alert"), "no live markup");
    for raw in ['\u{1b}', '\r', '\u{202e}'] {
        assert!(!hostile.contains(raw), "{raw:?} shown raw");
    }

    // Exports: every matching row (1100 > one read chunk), as a download.
    let (status, headers, csv) = s.fetch("/audit.csv?subject=bulk").await;
    assert_eq!(status, 200);
    assert!(headers[reqwest::header::CONTENT_TYPE].to_str().unwrap().starts_with("text/csv"));
    let disposition = headers[reqwest::header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\"mttrly-audit-") && disposition.ends_with(".csv\""));
    let records: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        records[0],
        "\"seq\",\"at\",\"actor\",\"actor_type\",\"actor_user_id\",\"assistant_session_id\",\"source\",\"kind\",\"subject\",\"server_id\",\"outcome\",\"duration_ms\",\"parameters\""
    );
    assert_eq!(records.len(), 1101, "header and every row");
    assert!(records[1].contains("\"bulk\"") && records[1].contains("\"{\"\"i\"\":1099}\""), "{}", records[1]);
    // The formula cell starts with `'`; the CR inside the name is kept inside its quoted field.
    let formula_subject = urlencode("=HYPERLINK(\"http://evil.example/\",\"click\")");
    let (_, _, formula) = s.fetch(&format!("/audit.csv?source=dashboard&subject={formula_subject}")).await;
    assert!(formula.contains("\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"click\"\")\""), "{formula}");
    assert!(!formula.contains(",\"=HYPERLINK"), "{formula}");
    assert_eq!(formula.matches("\r\n").count(), 2, "one record besides the header: {formula:?}");

    let (status, headers, body) = s.fetch("/audit.json?subject=bulk").await;
    assert_eq!(status, 200);
    assert_eq!(headers[reqwest::header::CONTENT_TYPE], "application/json");
    assert!(headers[reqwest::header::CONTENT_DISPOSITION].to_str().unwrap().starts_with("attachment;"));
    let exported: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(exported.len(), 1100);
    // The same objects gRPC `ListAudit` returns.
    let listed = AuditServiceClient::new(h.channel().await)
        .list_audit(authed(&h.admin, ListAuditRequest { server_id: String::new(), before_seq: 0, limit: 500 }))
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<Value> = listed.entries_json.iter().map(|j| serde_json::from_str(j).unwrap()).collect();
    let (_, _, whole) = s.fetch("/audit.json").await;
    let whole: Vec<Value> = serde_json::from_str(&whole).unwrap();
    let by_seq: std::collections::HashMap<u64, &Value> =
        whole.iter().map(|e| (e["seq"].as_u64().unwrap(), e)).collect();
    assert_eq!(listed.len(), 500);
    for entry in &listed {
        assert_eq!(by_seq.get(&entry["seq"].as_u64().unwrap()), Some(&entry), "the export's objects are gRPC's");
    }
    assert!(!whole.iter().any(|e| e["subject"] == "other-account-secret"));
    let (_, _, csv_all) = s.fetch("/audit.csv").await;
    assert!(!csv_all.contains("other-account-secret"));
    // The page links to the exports with its filters.
    let linked = s.page("/audit?source=cli&kind=api_call").await;
    assert!(linked.contains("href=\"/audit.csv?source=cli&amp;kind=api_call\""), "{linked}");
    assert!(linked.contains("href=\"/audit.json?source=cli&amp;kind=api_call\""), "{linked}");

    // Bad parameters: the page with the reason, 400, VALIDATION_ERROR; never a 500.
    for query in [
        "server=srv_nope",
        "from=yesterday",
        "to=2026-02-30",
        "source=fax",
        "kind=gossip",
        "actor=robot",
        "before_seq=-1",
        &format!("server={}", ServerId::generate()),
    ] {
        for path in ["/audit", "/audit.csv", "/audit.json"] {
            let (status, headers, body) = s.fetch(&format!("{path}?{query}")).await;
            assert_eq!(status, 400, "{path}?{query}: {body}");
            assert!(headers[reqwest::header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
            assert!(body.contains("VALIDATION_ERROR"), "{path}?{query}: {body}");
            assert!(body.contains("<form class=\"query\""), "the form stays: {body}");
        }
    }

    // The chain: verified on request, then broken once a row is edited in the file.
    let verified = s.page("/audit?verify=1").await;
    assert!(verified.contains("Chain verified"), "{verified}");
    let tampered_seq = first[50];
    let conn = rusqlite::Connection::open(h.dir.path().join("data").join("central.db")).unwrap();
    let changed = conn
        .execute(
            "UPDATE audit_log SET subject = 'rewritten' WHERE account_id = ?1 AND seq = ?2",
            rusqlite::params![acct.as_str(), i64::try_from(tampered_seq).unwrap()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    // Nothing was appended (the chain head did not move): a live refresh and a person's own
    // request alike, a loop of them too, show that result again with its age, instead of
    // recomputing the whole chain each time.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refreshed = s.fragment("/audit?verify=1").await;
    assert!(refreshed.contains("Chain verified") && refreshed.contains("second"), "{refreshed}");
    assert!(refreshed.contains("no row recorded since"), "{refreshed}");
    for _ in 0..3 {
        let again = s.page("/audit?verify=1&source=api").await;
        assert!(again.contains("Chain verified") && again.contains("no row recorded since"), "{again}");
    }
    // A row recorded moves the head: past the few seconds between two recomputations, a person's
    // request recomputes, and the edit is found.
    h.central.central.audit.append(row(
        &acct,
        0,
        None,
        AuditActor::System,
        Source::Api,
        AuditKind::AgentEvent,
        "after-the-edit",
        json!({}),
    ));
    h.central.central.audit.flush().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let broken = s.page("/audit?verify=1&source=api").await;
    assert!(broken.contains(&format!("Chain broken at row {tampered_seq}")), "{broken}");
    assert!(broken.contains("edited"), "{broken}");
    // The filters stay with the verification.
    assert!(broken.contains("data-url=\"/audit?source=api&amp;verify=1\""), "{broken}");
}

/// An export streams for as long as the log is long, but not past its session: signed out (or
/// expired, or removed) midway, the download ends with an error instead of going on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_ends_when_its_session_does() {
    let h = harness(|_| {}).await;
    let acct = account(&h).await;
    for i in 0..20_000 {
        let params = json!({ "n": i });
        h.central.central.audit.append(row(
            &acct,
            1,
            None,
            AuditActor::System,
            Source::Api,
            AuditKind::ApiCall,
            "bulk",
            params,
        ));
    }
    h.central.central.audit.flush().await;
    let mut viewer = person(&h, "vera", "viewer").await;
    let s = Session::sign_in(&h.central.http_url(), &mut viewer, "vera").await;
    // Whole while signed in.
    let (status, _, whole) = s.fetch("/audit.json?source=api").await;
    assert_eq!(status, 200);
    assert!(whole.matches("\"subject\":\"bulk\"").count() >= 20_000, "{}", whole.len());
    // Ended right after the download starts: the rest never comes.
    let r = s
        .http
        .get(format!("{}/audit.json?source=api", s.base))
        .header(reqwest::header::COOKIE, &s.cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let conn = rusqlite::Connection::open(h.dir.path().join("data").join("central.db")).unwrap();
    conn.execute("UPDATE web_sessions SET ended_at = 1 WHERE ended_at IS NULL", []).unwrap();
    let body = r.text().await;
    match body {
        Err(_) => {}
        Ok(text) => panic!("the export went on after its session ended: {} bytes, complete", text.len()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_reads_the_audit_and_alerts_of_their_account_only() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url().clone();
    let mut vera = person(&h, "vera", "viewer").await;
    let s = Session::sign_in(&base, &mut vera, "vera").await;
    let page = s.page("/audit").await;
    assert!(page.contains("AcceptInvite") || page.contains("SignIn"), "the viewer's own sign-in is there: {page}");
    assert!(s.page("/alerts").await.contains("No open alert matches."));
    let (status, _, _) = s.fetch("/audit.csv").await;
    assert_eq!(status, 200);
    // Signed out: the sign-in page, for the exports too.
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for path in ["/audit", "/audit.csv", "/audit.json", "/alerts"] {
        let r = anonymous.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
    }
}

/// Opens and resolves alerts the way a monitoring delivery does (one write per change).
async fn alerts(h: &Harness, changes: Vec<InboundChange>) {
    h.central.central.db.account(&account(h).await).alerts().apply_inbound(changes).await.unwrap();
}

fn alert(
    account: &AccountId,
    server: &ServerId,
    rule: &str,
    severity: Severity,
    summary: &str,
    ago_min: i64,
) -> NewAlert {
    NewAlert {
        id: AlertId::generate(),
        account_id: account.clone(),
        server_id: server.clone(),
        rule: rule.into(),
        subject: summary.into(),
        severity,
        summary: summary.into(),
        opened_at: jiff::Timestamp::now().as_millisecond() - ago_min * 60_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alerts_open_first_filtered_with_unmatched_ones_apart() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url().clone();
    let web = ServerId::parse(&add_server(&h, "web-1", mttrly_core::Environment::Production).await.server_id).unwrap();
    let db = ServerId::parse(&add_server(&h, "db-1", mttrly_core::Environment::Staging).await.server_id).unwrap();
    let acct = account(&h).await;
    alerts(
        &h,
        vec![
            InboundChange::Open(alert(&acct, &web, "alertmanager:DiskFull", Severity::Critical, "disk-web", 30)),
            InboundChange::Open(alert(&acct, &db, "disk_usage", Severity::Warning, "disk-db", 20)),
            InboundChange::Open(alert(&acct, &db, "grafana:Latency", Severity::Info, HOSTILE, 10)),
            InboundChange::Open(alert(&acct, &web, "pagerduty:incident", Severity::Critical, "paged-web", 40)),
            InboundChange::OpenUnmatched(NewUnmatchedAlert {
                id: AlertId::generate(),
                source: "alertmanager".into(),
                fingerprint: "f1".into(),
                name: "NodeDown".into(),
                host: Some("ghost-7".into()),
                severity: Severity::Critical,
                summary: "no such host".into(),
                labels: std::collections::BTreeMap::default(),
                opened_at: jiff::Timestamp::now().as_millisecond() - 5 * 60_000,
            }),
        ],
    )
    .await;
    // The PagerDuty incident resolves.
    alerts(
        &h,
        vec![InboundChange::Resolve {
            source: "pagerduty".into(),
            rule: "pagerduty:incident".into(),
            subject: "paged-web".into(),
            at: jiff::Timestamp::now().as_millisecond(),
        }],
    )
    .await;
    let mut alice = person(&h, "alice", "operator").await;
    let s = Session::sign_in(&base, &mut alice, "alice").await;

    let page = s.page("/alerts").await;
    let open_at = page.find("<h2>Open</h2>").unwrap();
    let resolved_at = page.find("<h2>Resolved</h2>").unwrap();
    let unmatched_at = page.find("Alerts for no known server").unwrap();
    assert!(open_at < resolved_at && resolved_at < unmatched_at, "open, resolved, unmatched: {page}");
    let (open, rest) = page[open_at..].split_at(resolved_at - open_at);
    for summary in ["disk-web", "disk-db", "gnp.exe"] {
        assert!(open.contains(summary), "{summary} open");
    }
    assert!(rest[..unmatched_at - resolved_at].contains("paged-web"), "resolved");
    assert!(page[unmatched_at..].contains("ghost-7") && page[unmatched_at..].contains("NodeDown"));
    // Where each came from, and a link to its server.
    for source in ["Alertmanager", "Grafana", "PagerDuty", "agent rule"] {
        assert!(page.contains(&format!("<span class=\"source\">{source}</span>")), "{source}: {page}");
    }
    assert!(page.contains(&format!("href=\"/servers/{web}\">web-1</a>")), "{page}");
    // Hostile text escaped.
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31mred\\rback \\u{202e}gnp.exe"), "{page}");
    assert!(!page.contains("<script>alert") && !page.contains('\u{202e}') && !page.contains('\u{1b}'));

    // Filters.
    let critical = s.page("/alerts?severity=critical").await;
    assert!(critical.contains("disk-web") && critical.contains("paged-web") && critical.contains("ghost-7"));
    assert!(!critical.contains("disk-db") && !critical.contains("gnp.exe"));
    let on_db = s.page(&format!("/alerts?server={db}")).await;
    assert!(on_db.contains("disk-db") && on_db.contains("gnp.exe"));
    assert!(!on_db.contains("disk-web") && !on_db.contains("paged-web"), "another server's");
    assert!(!on_db.contains("ghost-7"), "unmatched alerts belong to no server");
    let resolved = s.page("/alerts?status=resolved").await;
    assert!(resolved.contains("paged-web") && !resolved.contains("disk-web") && !resolved.contains("<h2>Open</h2>"));
    let open = s.page("/alerts?status=open&severity=warning").await;
    assert!(open.contains("disk-db") && !open.contains("paged-web") && !open.contains("<h2>Resolved</h2>"));
    assert!(open.contains("<option value=\"warning\" selected>"), "the form keeps the filter: {open}");

    // Bad parameters: the page with the reason, 400.
    for query in ["severity=loud", "status=maybe", "server=srv_nope", "older=x"] {
        let (status, _, body) = s.fetch(&format!("/alerts?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains("VALIDATION_ERROR") && body.contains("<form class=\"query\""), "{query}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_alerts_page_pages_resolved_alerts() {
    let h = harness(|_| {}).await;
    let base = h.central.http_url().clone();
    let web = ServerId::parse(&add_server(&h, "web-1", mttrly_core::Environment::Production).await.server_id).unwrap();
    let acct = account(&h).await;
    for i in 0..120 {
        let name = format!("flap-{i:03}");
        alerts(
            &h,
            vec![InboundChange::Open(alert(&acct, &web, "alertmanager:Flap", Severity::Warning, &name, 200 - i))],
        )
        .await;
        alerts(
            &h,
            vec![InboundChange::Resolve {
                source: "alertmanager".into(),
                rule: "alertmanager:Flap".into(),
                subject: name,
                at: jiff::Timestamp::now().as_millisecond(),
            }],
        )
        .await;
    }
    let mut alice = person(&h, "alice", "operator").await;
    let s = Session::sign_in(&base, &mut alice, "alice").await;
    let mut seen = BTreeSet::new();
    let mut path = "/alerts?status=resolved".to_owned();
    let mut pages = 0;
    loop {
        let page = s.page(&path).await;
        pages += 1;
        let shown: Vec<&str> = page.split("flap-").skip(1).map(|s| &s[..3]).collect();
        for n in &shown {
            assert!(seen.insert((*n).to_owned()), "flap-{n} twice");
        }
        match page.find("rel=\"next\"") {
            Some(at) => {
                let href = page[..at].rsplit("href=\"").next().unwrap();
                path = href.split('"').next().unwrap().replace("&amp;", "&");
            }
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (120, 3), "50 a page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_pages_render_at_desktop_and_phone_width_in_chromium() {
    // Alertmanager deliveries accepted with the value of a variable Cargo always sets.
    let h = harness(|cfg| {
        cfg.hooks.alertmanager = Some(mttrly_central::hooks::AlertmanagerHook { token_env: "CARGO_PKG_NAME".into() });
    })
    .await;
    let base = h.central.http_url().clone();
    let web = ServerId::parse(&add_server(&h, "web-1", mttrly_core::Environment::Production).await.server_id).unwrap();
    let acct = account(&h).await;
    alerts(
        &h,
        vec![
            InboundChange::Open(alert(
                &acct,
                &web,
                "alertmanager:DiskFull",
                Severity::Critical,
                "/var is 97% full",
                30,
            )),
            InboundChange::Open(alert(
                &acct,
                &web,
                "cpu_sustained",
                Severity::Warning,
                "CPU above 90% for 10 minutes",
                12,
            )),
        ],
    )
    .await;
    let (is_error, _) = call_tool(h.channel().await, &h.admin, "mttrly_list_servers", json!({})).await;
    assert!(!is_error);
    let long = "x".repeat(400);
    h.central.central.audit.append(row(
        &acct,
        1,
        Some(&web),
        AuditActor::System,
        Source::Agent,
        AuditKind::AgentEvent,
        &format!("a-very-long-subject-{long}"),
        json!({ "detail": long }),
    ));
    h.central.central.audit.flush().await;
    let mut alice = person(&h, "alice", "admin").await;
    let driver = Driver::start().await;
    let browser = driver.browser(1280, 900).await;
    sign_in(&browser, &base, &mut alice).await;
    let no_sideways = "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;";
    for (path, name, expect) in
        [("/audit?verify=1", "audit", "Chain verified"), ("/alerts", "alerts", "/var is 97% full")]
    {
        browser.resize(1280, 900).await;
        browser.goto(&format!("{base}{path}")).await;
        browser.wait_until("return document.getElementById('main').dataset.connected === '1';", LIVE).await;
        assert!(browser.text_of("main").await.contains(expect), "{path}");
        browser.wait_until(no_sideways, LIVE).await;
        screenshot(&browser, &format!("dashboard-{name}-desktop")).await;
        browser.resize(390, 844).await;
        browser.wait_until(no_sideways, LIVE).await;
        assert!(browser.text_of("main").await.contains(expect), "{path} after the live refresh");
        screenshot(&browser, &format!("dashboard-{name}-phone")).await;
    }
    // A new alert from monitoring appears on the open alerts page without a reload.
    browser.goto(&format!("{base}/alerts")).await;
    browser.wait_until("return document.getElementById('main').dataset.connected === '1';", LIVE).await;
    browser.execute("window.sameDocument = 'yes'; return true;", json!([])).await;
    let now = jiff::Timestamp::now().to_string();
    let delivery = json!({
        "receiver": "mttrly", "status": "firing", "version": "4", "groupKey": "{}:{alertname=\"MemoryLow\"}",
        "groupLabels": { "alertname": "MemoryLow" }, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
        "alerts": [{
            "status": "firing",
            "labels": { "alertname": "MemoryLow", "instance": "web-1:9100", "severity": "warning" },
            "annotations": { "summary": "MemoryLow on web-1" },
            "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": "0badc0ffee000001",
        }],
    });
    let delivered = reqwest::Client::new()
        .post(format!("{base}/hooks/alertmanager"))
        .header("Authorization", format!("Bearer {}", std::env::var("CARGO_PKG_NAME").unwrap()))
        .header("Content-Type", "application/json")
        .body(delivery.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 200);
    browser
        .wait_until("return document.getElementById('main').textContent.includes('MemoryLow on web-1');", LIVE)
        .await;
    assert_eq!(browser.execute("return window.sameDocument;", json!([])).await, "yes", "no reload");

    // The filter form works without script: choosing a source and submitting narrows the page.
    browser.resize(1280, 900).await;
    browser.goto(&format!("{base}/audit?source=agent")).await;
    browser.wait_for("table.audit", LIVE).await;
    let text = browser.text_of("table.audit").await;
    assert!(text.contains("a-very-long-subject") && !text.contains("mttrly_list_servers"), "{text}");
}
