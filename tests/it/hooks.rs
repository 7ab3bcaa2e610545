//! Issue 13 item 4, inbound alerts: Alertmanager webhook deliveries (recorded payload shape,
//! version 4) posted over real HTTP to an in-process central, then read back through gRPC
//! `ListAlerts` (what `mttrly-cli alerts list` prints) and the MCP tool `mttrly_get_alerts`.

#![allow(clippy::unwrap_used)]

use mttrly_central::hooks::{AlertmanagerHook, GrafanaHook};
use mttrly_proto::central::v1::alert_service_client::AlertServiceClient;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::{AddServerRequest, Alert, ListAlertsRequest};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Harness, Mcp, authed, harness};

/// The variable holding the bearer token. Tests cannot set variables (`unsafe_code` is
/// forbidden), so they name one Cargo always sets when it runs a test binary.
const TOKEN_ENV: &str = "CARGO_PKG_NAME";

fn token() -> String {
    std::env::var(TOKEN_ENV).unwrap()
}

async fn with_alertmanager() -> Harness {
    harness(|cfg| cfg.hooks.alertmanager = Some(AlertmanagerHook { token_env: TOKEN_ENV.into() })).await
}

impl Harness {
    async fn add_server_named(&self, name: &str) -> String {
        ServerServiceClient::new(self.channel().await)
            .add_server(authed(&self.admin, AddServerRequest { name: name.into(), environment: 2 }))
            .await
            .unwrap()
            .into_inner()
            .server_id
    }

    async fn alerts(&self) -> Vec<Alert> {
        AlertServiceClient::new(self.channel().await)
            .list_alerts(authed(&self.admin, ListAlertsRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .alerts
    }

    /// POSTs `body` to `/hooks/alertmanager` with `authorization` (when given): status and JSON.
    async fn deliver(&self, authorization: Option<&str>, body: String) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}/hooks/alertmanager", self.central.http_url()))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// POSTs `body` to `/hooks/grafana` with `signature` (when given): status and JSON.
    async fn deliver_grafana(&self, signature: Option<&str>, body: String) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}/hooks/grafana", self.central.http_url()))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(s) = signature {
            req = req.header("X-Grafana-Alerting-Signature", s);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn deliver_ok(&self, body: String) -> Value {
        let (status, outcome) = self.deliver(Some(&format!("Bearer {}", token())), body).await;
        assert_eq!(status, 200, "{outcome}");
        outcome
    }
}

/// One alert as Alertmanager sends it.
fn am_alert(status: &str, name: &str, instance: &str, fingerprint: &str) -> Value {
    let now = jiff::Timestamp::now();
    json!({
        "status": status,
        "labels": { "alertname": name, "instance": instance, "job": "node", "severity": "critical" },
        "annotations": { "summary": format!("{name} on {instance}"), "description": "Disk is almost full." },
        "startsAt": now.to_string(),
        "endsAt": if status == "resolved" { now.to_string() } else { "0001-01-01T00:00:00Z".to_owned() },
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fingerprint,
    })
}

/// A version 4 notification, as recorded from Alertmanager 0.27's webhook receiver.
fn notification(status: &str, alerts: &[Value]) -> String {
    json!({
        "receiver": "mttrly",
        "status": status,
        "alerts": alerts,
        "groupLabels": { "alertname": "DiskFull" },
        "commonLabels": { "alertname": "DiskFull", "job": "node" },
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"DiskFull\"}",
        "truncatedAlerts": 0
    })
    .to_string()
}

#[tokio::test]
async fn firing_opens_once_and_resolved_resolves_visible_in_grpc_and_mcp() {
    let h = with_alertmanager().await;
    let web = h.add_server_named("web-1").await;

    let firing = notification("firing", &[am_alert("firing", "DiskFull", "web-1:9100", "a1b2c3d4e5f60708")]);
    let outcome = h.deliver_ok(firing.clone()).await;
    assert_eq!(outcome["opened"], 1, "{outcome}");
    // Alertmanager re-sends a firing group every repeat_interval: still one alert.
    let outcome = h.deliver_ok(firing).await;
    assert_eq!((outcome["opened"].clone(), outcome["already_open"].clone()), (json!(0), json!(1)), "{outcome}");

    let alerts = h.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(
        (a.server_id.as_str(), a.rule.as_str(), a.status.as_str()),
        (web.as_str(), "alertmanager:DiskFull", "open")
    );
    assert_eq!(a.severity, "critical");
    assert!(a.summary.contains("DiskFull on web-1:9100"), "{}", a.summary);
    assert!(a.summary.contains("Disk is almost full."), "{}", a.summary);
    assert!(a.summary.contains("http://prometheus:9090/graph"), "{}", a.summary);

    // The assistant sees it through MCP.
    let mcp = Mcp { addr: h.central.http_addr, token: h.admin.clone(), client: "claude-code" };
    let session = mcp.open().await.unwrap();
    let reply = mcp.call(&session, "mttrly_get_alerts").await;
    let listed = reply["result"]["structuredContent"]["alerts"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{reply}");
    assert_eq!(listed[0]["rule"], "alertmanager:DiskFull");
    assert_eq!(listed[0]["status"], "open");

    let resolved = notification("resolved", &[am_alert("resolved", "DiskFull", "web-1:9100", "a1b2c3d4e5f60708")]);
    let outcome = h.deliver_ok(resolved.clone()).await;
    assert_eq!(outcome["resolved"], 1, "{outcome}");
    let alerts = h.alerts().await;
    assert_eq!((alerts.len(), alerts[0].status.as_str()), (1, "resolved"), "{alerts:?}");
    // A second resolved (or one for a fingerprint never seen) changes nothing.
    let outcome = h.deliver_ok(resolved).await;
    assert_eq!((outcome["resolved"].clone(), outcome["unknown_resolved"].clone()), (json!(0), json!(1)));
    let outcome =
        h.deliver_ok(notification("resolved", &[am_alert("resolved", "Other", "web-1", "ffffffffffffffff")])).await;
    assert_eq!(outcome["unknown_resolved"], 1);
    assert_eq!(h.alerts().await.len(), 1);

    // Firing again after resolving opens a new alert (a new incident).
    let outcome =
        h.deliver_ok(notification("firing", &[am_alert("firing", "DiskFull", "web-1:9100", "a1b2c3d4e5f60708")])).await;
    assert_eq!(outcome["opened"], 1);
    assert_eq!(h.alerts().await.len(), 2);
    h.central.shutdown().await;
}

#[tokio::test]
async fn one_notification_with_many_alerts_maps_each_by_its_host_label() {
    let h = harness(|cfg| {
        cfg.hooks.alertmanager = Some(AlertmanagerHook { token_env: TOKEN_ENV.into() });
        cfg.hooks.server_label = Some("node".into());
    })
    .await;
    let a = h.add_server_named("db-1").await;
    let b = h.add_server_named("db-2").await;
    let mut first = am_alert("firing", "HighLoad", "ignored:9100", "0000000000000001");
    first["labels"]["node"] = json!("DB-1");
    let mut second = am_alert("firing", "HighLoad", "ignored:9100", "0000000000000002");
    second["labels"]["node"] = json!("db-2:9100");
    let outcome = h.deliver_ok(notification("firing", &[first, second])).await;
    assert_eq!(outcome["opened"], 2, "{outcome}");
    let mut servers: Vec<String> = h.alerts().await.into_iter().map(|x| x.server_id).collect();
    servers.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(servers, expected);
    h.central.shutdown().await;
}

#[tokio::test]
async fn wrong_or_missing_tokens_are_refused_and_store_nothing() {
    let h = with_alertmanager().await;
    h.add_server_named("web-1").await;
    let body = notification("firing", &[am_alert("firing", "DiskFull", "web-1", "a1")]);
    let wrong = format!("Bearer {}x", token());
    for auth in [None, Some("Bearer "), Some(wrong.as_str()), Some("Basic bXR0cmx5OnRlc3Q=")] {
        let (status, err) = h.deliver(auth, body.clone()).await;
        assert_eq!(status, 401, "{auth:?}: {err}");
        assert_eq!(err["code"], "AUTH_FAILED", "{err}");
    }
    assert!(h.alerts().await.is_empty());
    h.central.shutdown().await;
}

#[tokio::test]
async fn an_unconfigured_source_is_not_found() {
    let h = harness(|_| {}).await;
    h.add_server_named("web-1").await;
    let body = notification("firing", &[am_alert("firing", "DiskFull", "web-1", "a1")]);
    let (status, _) = h.deliver(Some(&format!("Bearer {}", token())), body).await;
    assert_eq!(status, 404);
    assert!(h.alerts().await.is_empty());
    h.central.shutdown().await;
}

#[tokio::test]
async fn bad_json_is_a_validation_error_and_oversized_bodies_are_refused() {
    let h = with_alertmanager().await;
    let auth = format!("Bearer {}", token());
    for body in ["{not json", "{\"alerts\": [{\"status\": \"exploded\"}]}", "[]"] {
        let (status, err) = h.deliver(Some(&auth), body.into()).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["code"], "VALIDATION_ERROR", "{err}");
    }
    // Just over 1 MiB of valid JSON.
    let big = notification("firing", &[json!({ "status": "firing", "labels": { "x": "y".repeat(1024 * 1024) } })]);
    let (status, _) = h.deliver(Some(&auth), big).await;
    assert_eq!(status, 413);
    h.central.shutdown().await;
}

#[tokio::test]
async fn an_alert_for_an_unknown_host_is_reported_not_stored_on_another_server() {
    let h = with_alertmanager().await;
    h.add_server_named("web-1").await;
    let outcome = h.deliver_ok(notification("firing", &[am_alert("firing", "DiskFull", "nowhere:9100", "a1")])).await;
    assert_eq!(outcome["opened"], 0);
    assert_eq!(outcome["unmatched"], json!(["DiskFull@nowhere"]));
    assert!(h.alerts().await.is_empty());
    h.central.shutdown().await;
}

#[test]
fn a_named_but_unset_token_variable_stops_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::common::config(dir.path());
    cfg.hooks.alertmanager = Some(AlertmanagerHook { token_env: "MTTRLY_TEST_SURELY_UNSET_HOOK_TOKEN".into() });
    mttrly_central::init::init(&cfg, None).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(mttrly_central::server::start(cfg)).err().unwrap();
    let shown = format!("{err:?}");
    assert!(shown.contains("MTTRLY_TEST_SURELY_UNSET_HOOK_TOKEN") && shown.contains("ValidationError"), "{shown}");
}

/// HMAC-SHA256 (RFC 2104) written out here, so the test does not share central's implementation.
fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(body).finalize();
    hex::encode(Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize())
}

/// A Grafana unified alerting webhook notification (recorded shape, Grafana 11/12).
fn grafana_notification(status: &str, fingerprint: &str) -> String {
    let now = jiff::Timestamp::now().to_string();
    json!({
        "receiver": "mttrly", "status": status, "orgId": 1,
        "alerts": [{
            "status": status,
            "labels": { "alertname": "HighCPU", "grafana_folder": "infra", "instance": "web-1:9100" },
            "annotations": { "summary": "CPU above 90% on web-1" },
            "startsAt": now,
            "endsAt": if status == "resolved" { now.clone() } else { "0001-01-01T00:00:00Z".to_owned() },
            "generatorURL": "http://grafana:3000/alerting/grafana/cdx1/view?orgId=1",
            "fingerprint": fingerprint,
            "silenceURL": "http://grafana:3000/alerting/silence/new",
            "dashboardURL": "", "panelURL": "",
            "values": { "A": 95.2 },
            "valueString": "[ var='A' labels={instance=web-1:9100} value=95.2 ]"
        }],
        "groupLabels": { "alertname": "HighCPU" }, "commonLabels": { "alertname": "HighCPU" },
        "commonAnnotations": {}, "externalURL": "http://grafana:3000/", "version": "1",
        "groupKey": "{}/{}:{alertname=\"HighCPU\"}", "truncatedAlerts": 0,
        "title": "[FIRING:1] HighCPU infra", "state": "alerting", "message": "**Firing**"
    })
    .to_string()
}

#[tokio::test]
async fn grafana_deliveries_are_verified_by_hmac_and_mapped_like_alertmanagers() {
    let h = harness(|cfg| cfg.hooks.grafana = Some(GrafanaHook { hmac_secret_env: TOKEN_ENV.into() })).await;
    let web = h.add_server_named("web-1").await;
    let secret = token();
    let firing = grafana_notification("firing", "57c6d9296de2ad39");

    // Unsigned, signed with another key, or a signature of another body: refused, nothing stored.
    let other_body = grafana_notification("firing", "0000000000000000");
    for sig in [
        None,
        Some(hmac_hex(b"not-the-secret", firing.as_bytes())),
        Some(hmac_hex(secret.as_bytes(), other_body.as_bytes())),
    ] {
        let (status, err) = h.deliver_grafana(sig.as_deref(), firing.clone()).await;
        assert_eq!(status, 401, "{sig:?}: {err}");
        assert_eq!(err["code"], "AUTH_FAILED");
    }
    assert!(h.alerts().await.is_empty());
    // Alertmanager is not configured on this central.
    let (status, _) = h.deliver(Some(&format!("Bearer {secret}")), notification("firing", &[])).await;
    assert_eq!(status, 404);

    let sig = hmac_hex(secret.as_bytes(), firing.as_bytes());
    for _ in 0..2 {
        let (status, outcome) = h.deliver_grafana(Some(&sig), firing.clone()).await;
        assert_eq!(status, 200, "{outcome}");
    }
    let alerts = h.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!((alerts[0].server_id.as_str(), alerts[0].rule.as_str()), (web.as_str(), "grafana:HighCPU"));
    assert_eq!(alerts[0].severity, "warning");
    assert!(alerts[0].summary.starts_with("[grafana] CPU above 90% on web-1"), "{}", alerts[0].summary);

    let resolved = grafana_notification("resolved", "57c6d9296de2ad39");
    let (status, outcome) = h.deliver_grafana(Some(&hmac_hex(secret.as_bytes(), resolved.as_bytes())), resolved).await;
    assert_eq!((status, outcome["resolved"].clone()), (200, json!(1)), "{outcome}");
    assert_eq!(h.alerts().await[0].status, "resolved");

    let (status, err) = h.deliver_grafana(Some(&hmac_hex(secret.as_bytes(), b"{nope")), "{nope".into()).await;
    assert_eq!((status, err["code"].clone()), (400, json!("VALIDATION_ERROR")));
    h.central.shutdown().await;
}
