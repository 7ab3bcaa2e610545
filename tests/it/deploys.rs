//! Issue 15, item 3: deploys end to end against a central in this process. The signed
//! `POST /hooks/deploy` over real HTTP (good, forged and stale signatures, replays, a status that
//! moves forward), `mttrly-cli deploys record|list` (the real binary over gRPC), a real
//! `mttrly-agent` process detecting a release flip in a temporary directory, and
//! `mttrly_run_deploy_verifier` with that agent probing an HTTP server this test runs: its four
//! verdicts, the SSRF rule, and another tenant's server.

#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use mttrly_central::db::audit::AuditFilter;
use mttrly_central::hooks::deploy::DeployHook;
use mttrly_core::ids::ServerId;
use mttrly_core::tools::common::ConnectionStatus;
use mttrly_core::{Environment, Plan};
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use mttrly_proto::central::v1::deploy_service_client::DeployServiceClient;
use mttrly_proto::central::v1::{CreateTokenRequest, Deploy, ListDeploysRequest};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::approvals::{add_server, cli};
use crate::common::{Harness, authed, call_tool, harness};

/// The variable naming the hook secret: one Cargo always sets for a test binary (tests cannot set
/// variables), so the secret is its value.
pub(crate) const SECRET_ENV: &str = "CARGO_PKG_NAME";

fn secret() -> String {
    std::env::var(SECRET_ENV).unwrap()
}

async fn with_deploy_hook() -> Harness {
    harness(|cfg| cfg.hooks.deploy = Some(DeployHook { hmac_secret_env: SECRET_ENV.into() })).await
}

/// HMAC-SHA256 (RFC 2104) written out here, so the test does not share central's implementation.
fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    hex::encode(Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize())
}

fn now_s() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Signs `body` at `at` (Unix seconds) with `key`: the two headers a CI sends.
fn signed(key: &str, at: i64, body: &str) -> Vec<(String, String)> {
    let signature = hmac_hex(key.as_bytes(), format!("{at}.{body}").as_bytes());
    vec![("X-Mttrly-Timestamp".into(), at.to_string()), ("X-Mttrly-Signature".into(), format!("sha256={signature}"))]
}

impl Harness {
    /// POSTs `body` to `/hooks/deploy` with `headers`: status and JSON.
    async fn deploy_hook(&self, headers: &[(String, String)], body: &str) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}/hooks/deploy", self.central.http_url()))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A correctly signed delivery, now.
    pub(crate) async fn deploy_signed(&self, body: &Value) -> (u16, Value) {
        let body = body.to_string();
        self.deploy_hook(&signed(&secret(), now_s(), &body), &body).await
    }

    async fn deploy_list(&self, token: &str, server: &str) -> Vec<Deploy> {
        DeployServiceClient::new(self.channel().await)
            .list_deploys(authed(token, ListDeploysRequest { server: server.into(), ..Default::default() }))
            .await
            .unwrap()
            .into_inner()
            .deploys
    }

    /// Waits until `server`'s agent is online.
    async fn deploy_agent_online(&self, server: &str) {
        let id = ServerId::parse(server).unwrap();
        for _ in 0..150 {
            let now = jiff::Timestamp::now().as_millisecond();
            if self.central.central.agents.status(&id, now).status == ConnectionStatus::Online {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the agent of {server} did not come online");
    }
}

pub(crate) fn report(id: &str, server: &str, status: &str) -> Value {
    json!({
        "id": id, "server": server, "service": "web", "version": "v2.3.1",
        "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8", "repo_url": "https://git.example.com/web",
        "environment": "production", "status": status,
        "url": "https://ci.example.com/run/42?access_token=ghp_0123456789abcdefghijklmnopqrstuvwxyz",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_record_a_deploy_once_and_move_it_forward() {
    let h = with_deploy_hook().await;
    let server = add_server(&h, "web-1", Environment::Production).await.server_id;

    // By name; a finished status without an end time ends now.
    let (status, first) = h.deploy_signed(&report("gh-42", "web-1", "started")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["outcome"], "created");
    let id = first["deploy_id"].as_str().unwrap().to_owned();
    assert_eq!(first["deploy"]["server_id"], server.as_str());
    assert_eq!(first["deploy"]["source"], "webhook");
    let link = first["deploy"]["url"].as_str().unwrap();
    assert!(!link.contains("ghp_0123456789abcdef"), "the token in the link is redacted before storing: {link}");

    // The same delivery again (a retry, or a replay within five minutes): the same row.
    let (status, again) = h.deploy_signed(&report("gh-42", "web-1", "started")).await;
    assert_eq!(
        (status, again["outcome"].as_str(), again["deploy_id"].as_str()),
        (200, Some("unchanged"), Some(id.as_str()))
    );

    // A later report moves it forward; an old one arriving late moves nothing back.
    let (status, done) = h.deploy_signed(&report("gh-42", &server, "succeeded")).await;
    assert_eq!(
        (status, done["outcome"].as_str(), done["deploy_id"].as_str()),
        (200, Some("updated"), Some(id.as_str()))
    );
    assert_eq!(done["deploy"]["status"], "succeeded");
    assert!(done["deploy"]["finished_at"].is_string());
    let (_, late) = h.deploy_signed(&report("gh-42", &server, "started")).await;
    assert_eq!((late["outcome"].as_str(), late["deploy"]["status"].as_str()), (Some("unchanged"), Some("succeeded")));

    // A reused id for another version is refused, naming the field; nothing changes.
    let mut other = report("gh-42", &server, "succeeded");
    other["version"] = json!("v9");
    let (status, refused) = h.deploy_signed(&other).await;
    assert_eq!((status, refused["code"].as_str()), (400, Some("VALIDATION_ERROR")), "{refused}");

    let list = h.deploy_list(&h.admin, &server).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (list[0].deploy_id.as_str(), list[0].status.as_str(), list[0].version.as_str()),
        (id.as_str(), "succeeded", "v2.3.1")
    );

    // Recorded and updated are audited, with the deploy's id.
    let account = h.central.central.db.first_account().await.unwrap().unwrap().0;
    let count = |subject: &'static str| {
        let audit = h.central.central.db.account(&account).audit();
        async move {
            let filter = AuditFilter { subject: Some(subject.into()), limit: 100, ..AuditFilter::default() };
            audit.list(&filter).await.unwrap().len()
        }
    };
    let mut counts = (0, 0);
    for _ in 0..50 {
        counts = (count("deploy.recorded").await, count("deploy.updated").await);
        if counts == (1, 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counts, (1, 1), "one row for the recording, one for the update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_malformed_deliveries_are_refused_and_store_nothing() {
    let h = with_deploy_hook().await;
    let server = add_server(&h, "web-1", Environment::Production).await.server_id;
    let body = report("gh-1", "web-1", "succeeded").to_string();

    let wrong_key = signed("not-the-secret", now_s(), &body);
    let (status, e) = h.deploy_hook(&wrong_key, &body).await;
    assert_eq!((status, e["code"].as_str()), (401, Some("AUTH_FAILED")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("does not match"), "{e}");
    let expected = hmac_hex(secret().as_bytes(), format!("{}.{body}", now_s()).as_bytes());
    assert!(!e.to_string().contains(&expected), "the 401 never carries the expected signature");

    // Signed, then the body changed in flight.
    let tampered = body.replace("v2.3.1", "v6.6.6");
    let (status, _) = h.deploy_hook(&signed(&secret(), now_s(), &body), &tampered).await;
    assert_eq!(status, 401);

    // Correctly signed six minutes ago: a replay.
    let old = now_s() - 360;
    let (status, e) = h.deploy_hook(&signed(&secret(), old, &body), &body).await;
    assert_eq!(status, 401);
    assert!(e["message"].as_str().unwrap().contains("s old"), "{e}");

    // No headers; a signature in another format.
    let (status, e) = h.deploy_hook(&[], &body).await;
    assert!(status == 401 && e["message"].as_str().unwrap().contains("X-Mttrly-Timestamp"), "{e}");
    let mut sha1 = signed(&secret(), now_s(), &body);
    sha1[1].1 = sha1[1].1.replace("sha256=", "sha1=");
    let (status, e) = h.deploy_hook(&sha1, &body).await;
    assert!(status == 401 && e["message"].as_str().unwrap().contains("X-Mttrly-Signature"), "{e}");

    // Signed but invalid: a clear error naming the field.
    for (field, value) in
        [("url", json!("javascript:alert(1)")), ("status", json!("done")), ("service", json!("../etc"))]
    {
        let mut bad = report("gh-2", "web-1", "succeeded");
        bad[field] = value;
        let (status, e) = h.deploy_signed(&bad).await;
        assert_eq!(
            (status, e["code"].as_str(), e["details"]["field"].as_str()),
            (400, Some("VALIDATION_ERROR"), Some(field)),
            "{e}"
        );
    }
    let (status, e) = h.deploy_signed(&report("gh-3", "no-such-host", "succeeded")).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("SERVER_NOT_FOUND")), "{e}");

    assert!(h.deploy_list(&h.admin, &server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_is_not_found_until_configured() {
    let h = harness(|_| {}).await;
    let body = report("gh-1", "web-1", "succeeded").to_string();
    let (status, _) = h.deploy_hook(&signed(&secret(), now_s(), &body), &body).await;
    assert_eq!(status, 404);
}

/// `mttrly-cli --output json ARGS` as `token`: (success, JSON, stderr).
async fn dcli(h: &Harness, token: &str, args: &[&str]) -> (bool, Value, String) {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = cli(h, token, &all, "").await;
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn assistant(h: &Harness, owner: &str) -> String {
    AccountServiceClient::new(h.channel().await)
        .create_token(authed(owner, CreateTokenRequest { assistant_name: "claude-code".into(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_record_and_list_deploys_with_the_cli_and_assistants_cannot() {
    let h = harness(|_| {}).await;
    let server = add_server(&h, "api-1", Environment::Staging).await.server_id;
    let record = [
        "deploys",
        "record",
        "--id",
        "manual-7",
        "--server",
        "api-1",
        "--service",
        "api",
        "--version",
        "1.4.0",
        "--status",
        "started",
        "--started-at",
        "2026-01-05T10:00:00Z",
    ];
    let (ok, created, err) = dcli(&h, &h.admin, &record).await;
    assert!(ok, "{err}");
    assert_eq!((created["outcome"].as_str(), created["deploy"]["source"].as_str()), (Some("created"), Some("cli")));
    assert_eq!(created["deploy"]["started_at"], "2026-01-05T10:00:00Z");
    let (ok, again, _) = dcli(&h, &h.admin, &record).await;
    assert!(ok && again["outcome"] == "unchanged" && again["deploy"]["deploy_id"] == created["deploy"]["deploy_id"]);
    let mut finished = record.to_vec();
    finished[11] = "rolled_back";
    let (ok, moved, err) = dcli(&h, &h.admin, &finished).await;
    assert!(ok && moved["outcome"] == "updated" && moved["deploy"]["status"] == "rolled_back", "{moved} {err}");

    let (ok, listed, _) = dcli(&h, &h.admin, &["deploys", "list", "--server", &server]).await;
    assert!(ok);
    assert_eq!(listed["deploys"].as_array().unwrap().len(), 1, "{listed}");
    let out = cli(&h, &h.admin, &["deploys", "list"], "").await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && table.contains("rolled_back") && table.contains("api"), "{table}");

    // Bad input: a clear error, nothing stored.
    let (ok, _, err) = dcli(
        &h,
        &h.admin,
        &[
            "deploys",
            "record",
            "--id",
            "x y",
            "--server",
            "api-1",
            "--service",
            "api",
            "--version",
            "1",
            "--status",
            "succeeded",
        ],
    )
    .await;
    assert!(!ok && err.contains("VALIDATION_ERROR") && err.contains("id"), "{err}");
    // Assistants never record history by themselves.
    let bot = assistant(&h, &h.admin).await;
    let (ok, _, err) = dcli(
        &h,
        &bot,
        &[
            "deploys",
            "record",
            "--id",
            "bot-1",
            "--server",
            "api-1",
            "--service",
            "api",
            "--version",
            "1",
            "--status",
            "succeeded",
        ],
    )
    .await;
    assert!(!ok && err.contains("FORBIDDEN"), "{err}");
    assert_eq!(h.deploy_list(&h.admin, "").await.len(), 1);
}

/// A real agent for the server `install_token` enrolls, running with the policy `body` (written
/// under `dir`, its state there too), once central sees it online.
pub(crate) async fn agent_with_policy(
    h: &Harness,
    install_token: &str,
    server: &str,
    dir: &Path,
    body: &str,
) -> mttrly_tests::TestAgent {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, body).unwrap();
    let agent =
        mttrly_tests::TestAgent::start_with_policy(h.central.grpc_url(), install_token, &dir.join("state"), &policy);
    h.deploy_agent_online(server).await;
    agent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_agent_reports_a_release_flip_once_as_an_agent_deploy() {
    let h = harness(|_| {}).await;
    let added = add_server(&h, "web-1", Environment::Production).await;
    let dir = tempfile::tempdir().unwrap();
    let releases = dir.path().join("releases");
    for n in ["41", "42"] {
        std::fs::create_dir_all(releases.join(n)).unwrap();
        std::fs::write(releases.join(n).join("app.js"), format!("build {n}")).unwrap();
    }
    let current = dir.path().join("current");
    std::os::unix::fs::symlink(releases.join("41"), &current).unwrap();
    let watch = format!("deploy_watch_seconds = 1\n[deploys.web]\nwatch = [\"{}\"]\n", current.display());
    let _agent = agent_with_policy(&h, &added.install_token, &added.server_id, dir.path(), &watch).await;
    // The baseline: the agent's first look is not a deploy.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(h.deploy_list(&h.admin, &added.server_id).await.is_empty());

    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink(releases.join("42"), &current).unwrap();
    let mut found = Vec::new();
    for _ in 0..100 {
        found = h.deploy_list(&h.admin, &added.server_id).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].source.as_str(), found[0].service.as_str(), found[0].version.as_str()),
        ("agent", "web", "42")
    );
    assert!(found[0].external_id.starts_with("agent:"));
    // Nothing else moved: still one deploy a few ticks later.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(h.deploy_list(&h.admin, &added.server_id).await.len(), 1);
}

/// How the test's HTTP server answers.
pub(crate) const HEALTHY: u32 = 0;
const FAILING: u32 = 1;
const WRONG_BODY: u32 = 2;

/// A tiny HTTP/1.1 server answering every request by `mode`, counting requests.
pub(crate) fn http_server(mode: Arc<AtomicU32>, hits: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            hits.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let (status, body) = match mode.load(Ordering::SeqCst) {
                HEALTHY => ("200 OK", "status: ok"),
                FAILING => ("500 Internal Server Error", "status: ok"),
                _ => ("200 OK", "maintenance"),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

async fn verify(h: &Harness, token: &str, args: Value) -> (bool, Value) {
    call_tool(h.channel().await, token, "mttrly_run_deploy_verifier", args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_gives_its_four_verdicts_with_a_real_agent_and_probes_only_configured_urls() {
    let h = with_deploy_hook().await;
    let added = add_server(&h, "web-1", Environment::Production).await;
    let server = added.server_id.clone();
    let (mode, hits) = (Arc::new(AtomicU32::new(HEALTHY)), Arc::new(AtomicUsize::new(0)));
    let url = http_server(Arc::clone(&mode), Arc::clone(&hits));
    let decoy_hits = Arc::new(AtomicUsize::new(0));
    let decoy = http_server(Arc::new(AtomicU32::new(HEALTHY)), Arc::clone(&decoy_hits));
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join("web.log");
    let before = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1200)).to_string();
    std::fs::write(&log, format!("{before} ERROR an old failure, before the deploy\n{before} INFO started\n")).unwrap();
    let policy = format!(
        "file_roots = [\"{}/*.log\"]\n\
         [deploys.web]\nlog_file = \"{}\"\n\
         [deploys.web.healthcheck]\nurl = \"{url}\"\nbody_contains = \"status: ok\"\nsamples = 3\ninterval_ms = 20\n\
         [deploys.worker]\n",
        logs.display(),
        log.display(),
    );
    let _agent = agent_with_policy(&h, &added.install_token, &server, dir.path(), &policy).await;
    let bot = assistant(&h, &h.admin).await;

    // Before any deploy is recorded: a healthy service is still only inconclusive.
    let (is_error, v) = verify(&h, &bot, json!({ "server_id": server, "service": "web" })).await;
    assert!(!is_error, "{v}");
    assert_eq!(v["verdict"], "inconclusive", "{v}");
    assert_eq!(v["checks"]["deploy"]["verdict"], "inconclusive");
    assert_eq!(v["checks"]["healthcheck"]["verdict"], "pass");

    let (status, recorded) = h.deploy_signed(&report("gh-100", "web-1", "succeeded")).await;
    assert_eq!(status, 200, "{recorded}");
    let deploy_id = recorded["deploy_id"].as_str().unwrap().to_owned();

    // Healthy: pass, with three samples and the old error line outside the window.
    let (_, v) = verify(&h, &bot, json!({ "server_id": server })).await;
    assert_eq!(v["verdict"], "pass", "{v}");
    assert_eq!(v["deploy"]["deploy_id"], deploy_id.as_str());
    assert_eq!(v["checks"]["healthcheck"]["samples"].as_array().unwrap().len(), 3);
    assert_eq!(v["checks"]["logs"]["error_lines"], 0, "{v}");
    assert_eq!(v["checks"]["unit"]["verdict"], "skipped");
    assert!(v["reasons"].as_array().unwrap().is_empty());

    // 500s: fail, each sample's status as evidence.
    mode.store(FAILING, Ordering::SeqCst);
    let (_, v) = verify(&h, &bot, json!({ "server_id": server, "deploy_id": deploy_id })).await;
    assert_eq!(v["verdict"], "fail", "{v}");
    assert!(
        v["checks"]["healthcheck"]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status_code"] == 500 && s["ok"] == false)
    );

    // 200 with the wrong body: fail on the body match.
    mode.store(WRONG_BODY, Ordering::SeqCst);
    let (_, v) = verify(&h, &bot, json!({ "server_id": server })).await;
    assert_eq!(v["verdict"], "fail", "{v}");
    assert!(v["checks"]["healthcheck"]["samples"].as_array().unwrap().iter().all(|s| s["body_matched"] == false));

    // Healthy again, but the service logged errors after the deploy: fail, with redacted examples.
    mode.store(HEALTHY, Ordering::SeqCst);
    let after = jiff::Timestamp::now().to_string();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(f, "{after} ERROR payment failed token=ghp_0123456789abcdefghijklmnopqrstuvwxyz").unwrap();
    drop(f);
    let (_, v) = verify(&h, &bot, json!({ "server_id": server })).await;
    assert_eq!(v["verdict"], "fail", "{v}");
    assert_eq!(v["checks"]["logs"]["error_lines"], 1, "{v}");
    let example = v["checks"]["logs"]["examples"][0].as_str().unwrap();
    assert!(example.contains("payment failed") && !example.contains("ghp_0123456789abcdef"), "{example}");

    // No healthcheck configured for the service: inconclusive, never pass.
    let (_, v) = verify(&h, &bot, json!({ "server_id": server, "service": "worker" })).await;
    assert_eq!(v["verdict"], "inconclusive", "{v}");
    assert_eq!(v["checks"]["healthcheck"]["verdict"], "inconclusive");

    // SSRF: a URL the policy does not list is refused before any request; a non-http one is bad input.
    let probed = hits.load(Ordering::SeqCst);
    let (is_error, e) =
        verify(&h, &bot, json!({ "server_id": server, "service": "web", "healthcheck_url": decoy })).await;
    assert!(is_error && e["code"] == "POLICY_DENIED", "{e}");
    let (is_error, e) =
        verify(&h, &bot, json!({ "server_id": server, "healthcheck_url": "http://169.254.169.254/latest/meta-data/" }))
            .await;
    assert!(is_error && e["code"] == "POLICY_DENIED", "{e}");
    let (is_error, e) = verify(&h, &bot, json!({ "server_id": server, "healthcheck_url": "file:///etc/shadow" })).await;
    assert!(is_error && e["code"] == "VALIDATION_ERROR", "{e}");
    assert_eq!(decoy_hits.load(Ordering::SeqCst), 0, "the unlisted URL was never requested");
    assert_eq!(hits.load(Ordering::SeqCst), probed, "a refused run probes nothing");
    // The configured URL, named exactly, is fine.
    let (is_error, v) =
        verify(&h, &bot, json!({ "server_id": server, "service": "web", "healthcheck_url": url })).await;
    assert!(!is_error && v["checks"]["healthcheck"]["url"] == url.as_str(), "{v}");

    // Every run was stored; the latest is what the retrospective reads.
    let account = h.central.central.db.first_account().await.unwrap().unwrap().0;
    let latest = h
        .central
        .central
        .db
        .account(&account)
        .deploys()
        .latest_verification(&ServerId::parse(&server).unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&latest).unwrap()["verification_id"], v["verification_id"]);

    // Another tenant's assistant: the server does not exist for it, the deploy id neither.
    let eve = mttrly_central::secrets::generate(mttrly_central::secrets::SecretKind::Human);
    h.central
        .central
        .db
        .create_tenant("other", Plan::DeploymentCrew, "eve", &mttrly_central::secrets::hash(&eve))
        .await
        .unwrap();
    let eve_bot = assistant(&h, &eve).await;
    let (is_error, e) = verify(&h, &eve_bot, json!({ "server_id": server })).await;
    assert!(is_error && e["code"] == "SERVER_NOT_FOUND", "{e}");
    assert!(h.deploy_list(&eve, "").await.is_empty());
    let other = add_server_as(&h, &eve, "eve-1").await;
    let (is_error, e) = verify(&h, &eve_bot, json!({ "server_id": other, "deploy_id": deploy_id })).await;
    assert!(is_error && e["code"] == "NOT_FOUND", "{e}");
}

async fn add_server_as(h: &Harness, token: &str, name: &str) -> String {
    use mttrly_proto::central::v1::AddServerRequest;
    use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
    ServerServiceClient::new(h.channel().await)
        .add_server(authed(token, AddServerRequest { name: name.into(), environment: 2 }))
        .await
        .unwrap()
        .into_inner()
        .server_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_agent_is_an_error_verdict_and_still_stored() {
    let h = harness(|_| {}).await;
    let server = add_server(&h, "web-1", Environment::Production).await.server_id;
    let bot = assistant(&h, &h.admin).await;
    let (is_error, v) = verify(&h, &bot, json!({ "server_id": server })).await;
    assert!(!is_error, "{v}");
    assert_eq!(v["verdict"], "error", "{v}");
    assert!(v["checks"]["healthcheck"]["note"].as_str().unwrap().contains("SERVER_OFFLINE"), "{v}");
    let account = h.central.central.db.first_account().await.unwrap().unwrap().0;
    let stored = h.central.central.db.account(&account).deploys();
    let latest = stored.latest_verification(&ServerId::parse(&server).unwrap(), None).await.unwrap().unwrap();
    let latest: Value = serde_json::from_str(&latest).unwrap();
    assert_eq!(
        (latest["verification_id"].clone(), latest["verdict"].clone()),
        (v["verification_id"].clone(), json!("error"))
    );
}
