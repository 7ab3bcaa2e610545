//! Issue 13 item 4, inbound alerts: Alertmanager webhook deliveries (recorded payload shape,
//! version 4) posted over real HTTP to an in-process central, then read back through gRPC
//! `ListAlerts` (what `mttrly-cli alerts list` prints) and the MCP tool `mttrly_get_alerts`.

#![allow(clippy::unwrap_used)]

use mttrly_central::hooks::{AlertmanagerHook, GrafanaHook, PagerDutyHook};
use mttrly_proto::central::v1::alert_service_client::AlertServiceClient;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::{AddServerRequest, Alert, ListAlertsRequest, ListAlertsResponse};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Harness, Mcp, authed, harness};

/// The variable holding the bearer token. Tests cannot set variables (`unsafe_code` is
/// forbidden), so they name one Cargo always sets when it runs a test binary.
pub(crate) const TOKEN_ENV: &str = "CARGO_PKG_NAME";

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
        self.list(ListAlertsRequest::default()).await.alerts
    }

    async fn list(&self, request: ListAlertsRequest) -> ListAlertsResponse {
        AlertServiceClient::new(self.channel().await)
            .list_alerts(authed(&self.admin, request))
            .await
            .unwrap()
            .into_inner()
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

    pub(crate) async fn deliver_ok(&self, body: String) -> Value {
        let (status, outcome) = self.deliver(Some(&format!("Bearer {}", token())), body).await;
        assert_eq!(status, 200, "{outcome}");
        outcome
    }
}

/// One alert as Alertmanager sends it.
pub(crate) fn am_alert(status: &str, name: &str, instance: &str, fingerprint: &str) -> Value {
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
pub(crate) fn notification(status: &str, alerts: &[Value]) -> String {
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
async fn an_alert_for_an_unknown_host_is_kept_and_listed_not_dropped() {
    let h = with_alertmanager().await;
    let web = h.add_server_named("web-1").await;
    let firing = notification("firing", &[am_alert("firing", "DiskFull", "nowhere:9100", "a1")]);
    let outcome = h.deliver_ok(firing.clone()).await;
    assert_eq!((outcome["opened"].clone(), outcome["unmatched"].clone()), (json!(1), json!(["DiskFull@nowhere"])));
    // Redelivered: still one.
    let outcome = h.deliver_ok(firing).await;
    assert_eq!((outcome["opened"].clone(), outcome["already_open"].clone()), (json!(0), json!(1)), "{outcome}");
    // No host label at all: kept too, with no host.
    let mut hostless = am_alert("firing", "Watchdog", "x", "b2");
    hostless["labels"].as_object_mut().unwrap().remove("instance");
    h.deliver_ok(notification("firing", &[hostless])).await;

    // gRPC: never on a server, listed apart with the host seen.
    let reply = h.list(ListAlertsRequest::default()).await;
    assert!(reply.alerts.is_empty(), "{:?}", reply.alerts);
    assert_eq!(reply.unmatched_alerts.len(), 2, "{:?}", reply.unmatched_alerts);
    let disk = reply.unmatched_alerts.iter().find(|a| a.name == "DiskFull").unwrap();
    assert_eq!(
        (disk.source.as_str(), disk.host.as_str(), disk.severity.as_str(), disk.status.as_str()),
        ("alertmanager", "nowhere", "critical", "open")
    );
    assert_eq!(disk.labels.get("instance").map(String::as_str), Some("nowhere:9100"));
    assert!(disk.summary.contains("DiskFull on nowhere:9100"), "{}", disk.summary);
    assert_eq!(reply.unmatched_alerts.iter().find(|a| a.name == "Watchdog").unwrap().host, "");
    // Asking about one server leaves them out.
    let reply = h.list(ListAlertsRequest { server_id: web.clone(), ..ListAlertsRequest::default() }).await;
    assert!(reply.unmatched_alerts.is_empty());

    // MCP: `unmatched_alerts` beside `alerts`, left out when the call names a server.
    let mcp = Mcp { addr: h.central.http_addr, token: h.admin.clone(), client: "claude-code" };
    let session = mcp.open().await.unwrap();
    let reply = mcp.call(&session, "mttrly_get_alerts").await;
    let out = &reply["result"]["structuredContent"];
    assert_eq!(out["alerts"], json!([]), "{reply}");
    let listed = out["unmatched_alerts"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 2, "{reply}");
    let disk = listed.iter().find(|a| a["name"] == "DiskFull").unwrap();
    assert_eq!((disk["host"].clone(), disk["source"].clone()), (json!("nowhere"), json!("alertmanager")));
    assert_eq!(disk["labels"]["alertname"], "DiskFull");
    let reply = mcp
        .request(&session, "tools/call", json!({ "name": "mttrly_get_alerts", "arguments": { "server_id": web } }))
        .await;
    assert_eq!(reply["result"]["structuredContent"]["unmatched_alerts"], json!([]), "{reply}");

    // The CLI shows them where the server would be.
    let out = crate::approvals::cli(&h, &h.admin, &["alerts", "list"], "").await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && table.contains("(unknown: nowhere)") && table.contains("(unknown: ?)"), "{table}");
    let out = crate::approvals::cli(&h, &h.admin, &["--output", "json", "alerts", "list"], "").await;
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["unmatched_alerts"].as_array().map(Vec::len), Some(2), "{listed}");

    // A server enrolled later under that name does not adopt them; "resolved" still closes them.
    h.add_server_named("nowhere").await;
    let outcome =
        h.deliver_ok(notification("resolved", &[am_alert("resolved", "DiskFull", "nowhere:9100", "a1")])).await;
    assert_eq!(outcome["resolved"], 1, "{outcome}");
    let reply = h.list(ListAlertsRequest::default()).await;
    assert!(reply.alerts.is_empty());
    let disk = reply.unmatched_alerts.iter().find(|a| a.name == "DiskFull").unwrap();
    assert_eq!(disk.status, "resolved");
    assert!(disk.resolved_at_unix_ms > 0);
    let open = h.list(ListAlertsRequest { status: "open".into(), ..ListAlertsRequest::default() }).await;
    assert_eq!(open.unmatched_alerts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["Watchdog"]);
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

async fn with_pagerduty() -> Harness {
    harness(|cfg| cfg.hooks.pagerduty = Some(PagerDutyHook { signing_secret_env: TOKEN_ENV.into() })).await
}

impl Harness {
    /// POSTs `body` to `/hooks/pagerduty` with `signature` (when given): status and JSON.
    async fn deliver_pagerduty(&self, signature: Option<&str>, body: &str) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}/hooks/pagerduty", self.central.http_url()))
            .header("Content-Type", "application/json")
            .header("X-Webhook-Id", "3bf9b2c8-4d6f-4a0b-9a6c-1e2f3a4b5c6d")
            .body(body.to_owned());
        if let Some(s) = signature {
            req = req.header("X-PagerDuty-Signature", s);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Delivers `body` signed with the configured secret; it must answer 200.
    async fn deliver_pagerduty_ok(&self, body: &str) -> Value {
        let (status, outcome) =
            self.deliver_pagerduty(Some(&format!("v1={}", hmac_hex(token().as_bytes(), body.as_bytes()))), body).await;
        assert_eq!(status, 200, "{outcome}");
        outcome
    }
}

/// A PagerDuty V3 webhook delivery (recorded shape, from PagerDuty's developer docs' incident
/// event example), for incident `incident` of service `service`, with `custom_fields`.
fn pagerduty_event(event_id: &str, event_type: &str, incident: &str, service: &str, custom_fields: &Value) -> String {
    let status = event_type.strip_prefix("incident.").unwrap_or("triggered");
    json!({
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": jiff::Timestamp::now().to_string(),
            "agent": { "html_url": "https://acme.pagerduty.com/users/PLH1HKV", "id": "PLH1HKV",
                "self": "https://api.pagerduty.com/users/PLH1HKV", "summary": "Tenex Engineer", "type": "user_reference" },
            "client": { "name": "PagerDuty" },
            "data": {
                "id": incident,
                "type": "incident",
                "self": format!("https://api.pagerduty.com/incidents/{incident}"),
                "html_url": format!("https://acme.pagerduty.com/incidents/{incident}"),
                "number": 2,
                "status": status,
                "incident_key": "d3640fbd41094207a1c11e58e46b1662",
                "created_at": "2020-04-09T15:16:27Z",
                "title": "A little bump in the road",
                "service": { "html_url": "https://acme.pagerduty.com/services/PF9KMXH", "id": "PF9KMXH",
                    "self": "https://api.pagerduty.com/services/PF9KMXH", "summary": service, "type": "service_reference" },
                "assignees": [{ "html_url": "https://acme.pagerduty.com/users/PTUXL6G", "id": "PTUXL6G",
                    "self": "https://api.pagerduty.com/users/PTUXL6G", "summary": "User 123", "type": "user_reference" }],
                "escalation_policy": { "html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE", "id": "PUS0KTE",
                    "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE", "summary": "Default",
                    "type": "escalation_policy_reference" },
                "teams": [],
                "priority": { "html_url": "https://acme.pagerduty.com/account/incident_priorities", "id": "PSO75BM",
                    "self": "https://api.pagerduty.com/priorities/PSO75BM", "summary": "P1", "type": "priority_reference" },
                "urgency": "high",
                "conference_bridge": null,
                "resolve_reason": null,
                "custom_fields": custom_fields
            }
        }
    })
    .to_string()
}

#[tokio::test]
async fn pagerduty_is_not_found_until_configured() {
    let h = harness(|_| {}).await;
    let body = pagerduty_event("e1", "incident.triggered", "Q1", "web-1", &json!([]));
    let (status, _) =
        h.deliver_pagerduty(Some(&format!("v1={}", hmac_hex(token().as_bytes(), body.as_bytes()))), &body).await;
    assert_eq!(status, 404);
    h.central.shutdown().await;
}

/// `hex` with its first digit changed: a forged signature however the digits fall (changing an
/// `A` only forged one when the signature held an `A`, which one in sixty does not).
fn one_digit_changed(hex: &str) -> String {
    let first = if hex.starts_with('0') { "1" } else { "0" };
    format!("{first}{}", &hex[1..])
}

#[tokio::test]
async fn pagerduty_forged_signatures_are_refused_and_a_rotation_pair_with_one_valid_is_accepted() {
    let h = with_pagerduty().await;
    h.add_server_named("web-1").await;
    let secret = token();
    let body = pagerduty_event("e1", "incident.triggered", "Q1", "web-1", &json!([]));
    let other = pagerduty_event("e2", "incident.triggered", "Q2", "web-1", &json!([]));
    let good = hmac_hex(secret.as_bytes(), body.as_bytes());
    let forged = hmac_hex(b"not-the-secret", body.as_bytes());
    let replayed = hmac_hex(secret.as_bytes(), other.as_bytes());
    for sig in [
        None,
        Some(String::new()),
        Some(format!("v1={forged}")),
        Some(format!("v1={replayed}")),
        Some(format!("v1={forged},v1={replayed}")),
        Some(good.clone()),
        Some(format!("v0={good}")),
        Some(format!("v1={}", &good[..32])),
        Some(format!("v1={}", one_digit_changed(&good.to_uppercase()))),
    ] {
        let (status, err) = h.deliver_pagerduty(sig.as_deref(), &body).await;
        assert_eq!(status, 401, "{sig:?}: {err}");
        assert_eq!(err["code"], "AUTH_FAILED");
    }
    // Refused before the body is read: garbage with a wrong signature is 401, not 400.
    let (status, _) = h.deliver_pagerduty(Some(&format!("v1={forged}")), "{nope").await;
    assert_eq!(status, 401);
    assert!(h.list(ListAlertsRequest::default()).await.alerts.is_empty());

    // During a rotation PagerDuty signs with both secrets: the old one first here.
    let (status, outcome) = h.deliver_pagerduty(Some(&format!("v1={forged},v1={good}")), &body).await;
    assert_eq!((status, outcome["opened"].clone()), (200, json!(1)), "{outcome}");
    assert_eq!(h.alerts().await.len(), 1);
    h.central.shutdown().await;
}

#[tokio::test]
async fn pagerduty_incidents_open_once_resolve_and_other_events_change_nothing() {
    let h = with_pagerduty().await;
    let web = h.add_server_named("web-1").await;
    let triggered = pagerduty_event("01E1", "incident.triggered", "PGR0VU2", "web-1", &json!([]));
    let outcome = h.deliver_pagerduty_ok(&triggered).await;
    assert_eq!(outcome["opened"], 1, "{outcome}");
    // PagerDuty delivers at least once: the same event again, and a later event of the incident.
    let outcome = h.deliver_pagerduty_ok(&triggered).await;
    assert_eq!((outcome["opened"].clone(), outcome["already_open"].clone()), (json!(0), json!(1)), "{outcome}");
    for event_type in ["incident.acknowledged", "incident.priority_updated", "incident.annotated"] {
        let outcome =
            h.deliver_pagerduty_ok(&pagerduty_event("01E2", event_type, "PGR0VU2", "web-1", &json!([]))).await;
        assert_eq!(outcome["ignored"], 1, "{event_type}: {outcome}");
    }
    let ping = json!({ "event": { "id": "01E3", "event_type": "pagey.ping", "resource_type": "pagey",
        "occurred_at": "2026-12-02T10:00:00Z", "agent": null, "client": null,
        "data": { "message": "Hello from your friend Pagey!", "type": "ping" } } })
    .to_string();
    assert_eq!(h.deliver_pagerduty_ok(&ping).await["ignored"], 1);

    let alerts = h.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(
        (a.server_id.as_str(), a.rule.as_str(), a.severity.as_str(), a.status.as_str()),
        (web.as_str(), "pagerduty:incident", "critical", "open")
    );
    assert!(
        a.summary.starts_with("[pagerduty] #2 A little bump in the road — service web-1, urgency high, priority P1")
    );
    assert!(a.summary.contains("https://acme.pagerduty.com/incidents/PGR0VU2"), "{}", a.summary);

    let resolved = pagerduty_event("01E4", "incident.resolved", "PGR0VU2", "web-1", &json!([]));
    assert_eq!(h.deliver_pagerduty_ok(&resolved).await["resolved"], 1);
    assert_eq!(h.deliver_pagerduty_ok(&resolved).await["unknown_resolved"], 1);
    let alerts = h.alerts().await;
    assert_eq!((alerts.len(), alerts[0].status.as_str()), (1, "resolved"), "{alerts:?}");
    // The triggered event retried after the resolution (a webhook delivered out of order) is
    // stale: nothing opens again.
    assert_eq!(h.deliver_pagerduty_ok(&triggered).await["opened"], 0);
    assert!(h.alerts().await.iter().all(|a| a.status == "resolved"));
    // The incident triggered again, later: it opens.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let again = pagerduty_event("01E5", "incident.triggered", "PGR0VU2", "web-1", &json!([]));
    assert_eq!(h.deliver_pagerduty_ok(&again).await["opened"], 1);

    // An incident event without an incident is malformed.
    let bad =
        json!({ "event": { "id": "x", "event_type": "incident.triggered", "data": { "title": "no id" } } }).to_string();
    let (status, err) =
        h.deliver_pagerduty(Some(&format!("v1={}", hmac_hex(token().as_bytes(), bad.as_bytes()))), &bad).await;
    assert_eq!((status, err["code"].clone()), (400, json!("VALIDATION_ERROR")), "{err}");
    h.central.shutdown().await;
}

#[tokio::test]
async fn pagerduty_maps_by_custom_field_then_service_else_keeps_the_alert_unmatched() {
    let h = with_pagerduty().await;
    let db = h.add_server_named("db-1").await;
    let api = h.add_server_named("api").await;
    // A `host` custom field wins over the service.
    let outcome = h
        .deliver_pagerduty_ok(&pagerduty_event("e1", "incident.triggered", "Q1", "api", &json!([
            { "name": "host", "value": "db-1", "display_name": "Host", "data_type": "string", "field_type": "single_value" }
        ])))
        .await;
    assert_eq!(outcome["opened"], 1);
    // No field: the service names the server.
    h.deliver_pagerduty_ok(&pagerduty_event("e2", "incident.triggered", "Q2", "API", &json!([]))).await;
    // Neither matches: kept, listed with the host tried first.
    let outcome = h
        .deliver_pagerduty_ok(&pagerduty_event(
            "e3",
            "incident.triggered",
            "Q3",
            "Checkout",
            &json!({ "host": "gone-1" }),
        ))
        .await;
    assert_eq!(outcome["unmatched"], json!(["A little bump in the road@gone-1"]), "{outcome}");
    let reply = h.list(ListAlertsRequest::default()).await;
    let mut servers: Vec<&str> = reply.alerts.iter().map(|a| a.server_id.as_str()).collect();
    servers.sort_unstable();
    let mut expected = vec![db.as_str(), api.as_str()];
    expected.sort_unstable();
    assert_eq!(servers, expected);
    assert_eq!(reply.unmatched_alerts.len(), 1);
    let kept = &reply.unmatched_alerts[0];
    assert_eq!((kept.source.as_str(), kept.host.as_str()), ("pagerduty", "gone-1"));
    assert_eq!(kept.labels.get("service").map(String::as_str), Some("Checkout"));
    assert_eq!(kept.labels.get("incident_id").map(String::as_str), Some("Q3"));
    // Its "resolved" closes it.
    let outcome =
        h.deliver_pagerduty_ok(&pagerduty_event("e4", "incident.resolved", "Q3", "Checkout", &json!({}))).await;
    assert_eq!(outcome["resolved"], 1, "{outcome}");
    assert_eq!(h.list(ListAlertsRequest::default()).await.unmatched_alerts[0].status, "resolved");
    h.central.shutdown().await;
}

/// Where the Debian package `prometheus-alertmanager` installs Alertmanager.
const ALERTMANAGER: &str = "prometheus-alertmanager";

/// A real Alertmanager process, killed when dropped.
struct RealAlertmanager {
    child: std::process::Child,
    url: String,
    log: std::path::PathBuf,
}

impl Drop for RealAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RealAlertmanager {
    /// Starts Alertmanager with one webhook receiver pointed at `central`'s `/hooks/alertmanager`
    /// with `token`, notifying at once (`group_wait: 0s`) and flushing changes every second.
    async fn start(dir: &std::path::Path, central: &str, token: &str) -> Self {
        let binary = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain([std::path::PathBuf::from("/usr/bin")])
            .map(|d| d.join(ALERTMANAGER))
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "`{ALERTMANAGER}` is not installed: run .ci/run, which installs the Debian package \
                     prometheus-alertmanager (apt-get install -y --no-install-recommends prometheus-alertmanager)"
                )
            });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: mttrly\n  group_by: ['alertname', 'instance']\n  group_wait: 0s\n  \
                 group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: mttrly\n    webhook_configs:\n      \
                 - url: '{central}/hooks/alertmanager'\n        send_resolved: true\n        http_config:\n          \
                 authorization:\n            type: Bearer\n            credentials: '{token}'\n"
            ),
        )
        .unwrap();
        let storage = dir.join("alertmanager-data");
        std::fs::create_dir_all(&storage).unwrap();
        let log = dir.join("alertmanager.log");
        let child = std::process::Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let am = Self { child, url: format!("http://127.0.0.1:{port}"), log };
        let client = reqwest::Client::new();
        let ready = am
            .wait_for(|| {
                let req = client.get(format!("{}/-/ready", am.url));
                async move { req.send().await.is_ok_and(|r| r.status().is_success()) }
            })
            .await;
        assert!(ready, "Alertmanager did not become ready: {}", am.logs());
        am
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `check` every 100 ms for at most 30 s.
    async fn wait_for<F: std::future::Future<Output = bool>>(&self, mut check: impl FnMut() -> F) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if check().await {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    }

    /// Posts alerts through Alertmanager's API v2, as Prometheus does.
    async fn post(&self, alerts: &Value) {
        let resp =
            reqwest::Client::new().post(format!("{}/api/v2/alerts", self.url)).json(alerts).send().await.unwrap();
        assert!(resp.status().is_success(), "{}: {}", resp.status(), resp.text().await.unwrap_or_default());
    }
}

/// Alerts as Prometheus posts them to Alertmanager, ending at `ends_at`.
fn prometheus_alerts(ends_at: jiff::Timestamp) -> Value {
    let starts_at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    let alert = |name: &str, instance: &str| {
        json!({
            "labels": { "alertname": name, "instance": instance, "job": "node", "severity": "critical" },
            "annotations": { "summary": format!("{name} on {instance}") },
            "startsAt": starts_at.to_string(),
            "endsAt": ends_at.to_string(),
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        })
    };
    json!([alert("RealDiskFull", "web-1:9100"), alert("RealDiskFull", "ghost-9:9100")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_opens_and_resolves_alerts_on_central() {
    let h = with_alertmanager().await;
    let web = h.add_server_named("web-1").await;
    let dir = tempfile::tempdir().unwrap();
    let am = RealAlertmanager::start(dir.path(), &h.central.http_url(), &token()).await;

    // Firing for an hour: Alertmanager notifies at once (group_wait 0s).
    am.post(&prometheus_alerts(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600))).await;
    let opened = am
        .wait_for(|| async {
            let reply = h.list(ListAlertsRequest::default()).await;
            reply.alerts.len() == 1 && reply.unmatched_alerts.len() == 1
        })
        .await;
    let reply = h.list(ListAlertsRequest::default()).await;
    assert!(opened, "central never showed the alerts: {reply:?}\n{}", am.logs());
    let a = &reply.alerts[0];
    assert_eq!(
        (a.server_id.as_str(), a.rule.as_str(), a.status.as_str(), a.severity.as_str()),
        (web.as_str(), "alertmanager:RealDiskFull", "open", "critical")
    );
    assert_eq!(reply.unmatched_alerts[0].host, "ghost-9");

    // Prometheus stops seeing them: posted again with endsAt in the past, Alertmanager sends them
    // as resolved at its next flush.
    am.post(&prometheus_alerts(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1))).await;
    let resolved = am
        .wait_for(|| async {
            let reply = h.list(ListAlertsRequest::default()).await;
            reply.alerts.iter().all(|a| a.status == "resolved")
                && reply.unmatched_alerts.iter().all(|a| a.status == "resolved")
        })
        .await;
    let reply = h.list(ListAlertsRequest::default()).await;
    assert!(resolved, "central never showed them resolved: {reply:?}\n{}", am.logs());
    // Every notification Alertmanager sent, repeats included, kept one alert per fingerprint.
    assert_eq!((reply.alerts.len(), reply.unmatched_alerts.len()), (1, 1), "{reply:?}");
    drop(am);
    h.central.shutdown().await;
}
