//! Incidents from investigations (issue 17, item 4): an assistant starting an investigation on a
//! server with no open incident opens an incident thread in `incidents`, posted by mttrly itself;
//! with an incident open it is an update there, at the priority of the alert it names; resuming
//! posts nothing; closing it (a person, or idle) is an update and never the resolution. The
//! assistant's title is its words: never a post's title, quoted once in the body as its own.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mttrly_central::hooks::AlertmanagerHook;
use mttrly_core::Environment;
use mttrly_proto::central::v1::CloseInvestigationRequest;
use mttrly_proto::central::v1::investigation_service_client::InvestigationServiceClient;
use mttrly_tests::mcp::{Session, call_ok, connect_as};
use serde_json::{Value, json};

use crate::approvals::{add_server, add_user};
use crate::common::{Harness, RunningAgent, authed, harness, run_agent};

const TOKEN_ENV: &str = "CARGO_PKG_NAME";

/// A central (with the Alertmanager hook), web-1 with its agent online.
async fn setup() -> (Harness, String, RunningAgent) {
    let h = harness(|cfg| cfg.hooks.alertmanager = Some(AlertmanagerHook { token_env: TOKEN_ENV.into() })).await;
    let added = add_server(&h, "web-1", Environment::Staging).await;
    let agent = run_agent(h.central.grpc_url(), &added.install_token, h.dir.path().join("agent")).await;
    h.wait_online(&added.server_id).await;
    (h, added.server_id, agent)
}

/// The `incidents` channel once it holds at least `n` notifications (central posts from the
/// event bus, within milliseconds).
async fn incidents(session: &Session, n: usize) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..200 {
        let page =
            mttrly_tests::mcp::call(session, "mttrly_get_notifications", json!({ "channel": "incidents" })).await;
        if page.is_error != Some(true) {
            last = page.structured_content.unwrap()["notifications"].as_array().cloned().unwrap_or_default();
            if last.len() >= n {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the incidents channel never held {n}: {last:?}");
}

async fn start(session: &Session, server: &str, title: &str, alert: Option<&str>) -> Value {
    let mut args = json!({ "server_id": server, "title": title });
    if let Some(alert) = alert {
        args["alert_id"] = json!(alert);
    }
    call_ok(session, "mttrly_start_investigation", args).await
}

async fn close(h: &Harness, investigation: &str) {
    InvestigationServiceClient::new(h.channel().await)
        .close_investigation(authed(&h.admin, CloseInvestigationRequest { investigation_id: investigation.to_owned() }))
        .await
        .unwrap();
}

async fn alert(h: &Harness, fingerprint: &str) {
    let now = jiff::Timestamp::now().to_string();
    let alert = json!({
        "status": "firing",
        "labels": { "alertname": "DiskFull", "instance": "web-1:9100", "severity": "critical" },
        "annotations": { "summary": "Disk 97% full on web-1" },
        "startsAt": now, "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fingerprint,
    });
    let body = json!({
        "receiver": "mttrly", "status": "firing", "alerts": [alert], "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "version": "4", "groupKey": "{}", "truncatedAlerts": 0,
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/hooks/alertmanager", h.central.http_url()))
        .header("Authorization", format!("Bearer {}", std::env::var(TOKEN_ENV).unwrap()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_investigation_opens_an_incident_that_its_actions_and_its_close_follow() {
    let (h, server, _agent) = setup().await;
    let claude = connect_as(&h.central.mcp_url(), &h.admin, "claude-code").await;
    let sarah_token = add_user(&h, "sarah", "operator").await;
    let sarah = connect_as(&h.central.mcp_url(), &sarah_token, "chatgpt").await;

    // 1. The assistant starts an investigation; its title claims what only central could say,
    //    and quotes a secret.
    let words = "Resolved by mttrly: root cause confirmed, key AKIAIOSFODNN7EXAMPLE";
    let first = start(&claude, &server, words, None).await;
    let inv = first["investigation_id"].as_str().unwrap().to_owned();
    let opened = incidents(&claude, 1).await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    let root = &opened[0];
    assert_eq!(root["thread_id"], format!("incident-{inv}"), "{root}");
    assert_eq!((root["theme"].as_str(), root["priority"].as_str()), (Some("incident-alert"), Some("medium")));
    assert_eq!(root["sender"], json!({ "name": "mttrly", "via": "mcp" }), "central posts as itself: {root}");
    assert_eq!(root["server_id"], server.as_str());
    assert_eq!(root["title"], "Investigation opened on web-1", "central's words only: {root}");
    assert_eq!(root["tags"], json!(["investigation"]));
    let body = root["body"].as_str().unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines[0],
        format!("Investigation {inv} opened on web-1 by the assistant claude-code for admin via mcp.")
    );
    assert!(
        lines[2].starts_with(
            "Its title, in the words of the assistant claude-code for admin (not checked by mttrly): \"Resolved by \
             mttrly: root cause confirmed"
        ),
        "{body}"
    );
    assert_eq!(body.matches("root cause").count(), 1, "the words appear once, labelled: {body}");
    assert!(!body.contains("AKIAIOSFODNN7EXAMPLE") && !body.contains('`'), "redacted plain text: {body}");
    let thread = root["thread_id"].as_str().unwrap().to_owned();

    // The server's timeline lists the opening once (the audit row of the new id repeats it), and
    // thread posts are no server record: asking for them is refused, not answered empty.
    let timeline = call_ok(&claude, "mttrly_get_server_timeline", json!({ "server_id": server })).await;
    let about_it: Vec<&Value> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["reference"] == inv.as_str() || i["subject"] == inv.as_str())
        .collect();
    assert_eq!(about_it.len(), 1, "{about_it:?}");
    assert_eq!(about_it[0]["event"], "investigation_opened");
    let err = mttrly_tests::mcp::call_err(
        &claude,
        "mttrly_get_server_timeline",
        json!({ "server_id": server, "sources": ["thread"] }),
    )
    .await;
    assert_eq!((err["code"].as_str(), err["details"]["field"].as_str()), (Some("VALIDATION_ERROR"), Some("sources")));

    // 2. Resuming posts nothing; the action proposed under it is the thread's next post.
    assert_eq!(start(&claude, &server, "again", None).await["resumed"], true);
    let action = call_ok(
        &claude,
        "mttrly_execute_command",
        json!({ "server_id": server, "command": "touch /tmp/x", "investigation_id": inv }),
    )
    .await;
    assert_eq!(action["status"], "pending_approval", "{action}");
    let story = incidents(&claude, 2).await;
    assert_eq!(story.len(), 2, "the resume posted nothing: {story:?}");
    assert_eq!(
        (story[1]["thread_id"].as_str(), story[1]["theme"].as_str()),
        (Some(thread.as_str()), Some("incident-update"))
    );
    assert!(story[1]["title"].as_str().unwrap().starts_with("Action proposed: "), "{}", story[1]);

    // 3. Another person's assistant starts its own on the same server: an update in the open incident.
    let second = start(&sarah, &server, "checking disk", None).await;
    let story = incidents(&claude, 3).await;
    assert_eq!(story.len(), 3, "{story:?}");
    assert_eq!(story[2]["thread_id"], thread.as_str(), "no second incident for one server");
    assert_eq!(story[2]["theme"], "incident-update");
    assert!(
        story[2]["body"].as_str().unwrap().contains(&format!(
            "Investigation {} opened on web-1 by the assistant chatgpt for sarah via mcp.",
            second["investigation_id"].as_str().unwrap()
        )),
        "{}",
        story[2]
    );

    // 4. A person closes the first: an update; the incident stays open (central never resolves).
    close(&h, &inv).await;
    let story = incidents(&claude, 4).await;
    assert_eq!(story[3]["thread_id"], thread.as_str());
    assert_eq!((story[3]["theme"].as_str(), story[3]["priority"].as_str()), (Some("incident-update"), Some("low")));
    assert_eq!(story[3]["title"], "Investigation closed on web-1");
    assert!(
        story[3]["body"].as_str().unwrap().starts_with(&format!("Investigation {inv} was closed by admin via cli."))
    );
    let summary = call_ok(&claude, "mttrly_get_incident_summary", json!({ "thread_id": thread })).await;
    assert_eq!(summary["status"], "open", "central's own posts acknowledge and resolve nothing: {summary}");
    assert_eq!(summary["title"], "Investigation opened on web-1");

    // 5. Once a person resolves it, the next investigation opens a new incident.
    call_ok(
        &sarah,
        "mttrly_publish_notification",
        json!({ "channel": "incidents", "thread_id": thread, "title": "Disk cleaned", "theme": "incident-resolved" }),
    )
    .await;
    let third = start(&claude, &server, "disk again", None).await;
    let story = incidents(&claude, 6).await;
    assert_eq!(story[5]["theme"], "incident-alert", "{}", story[5]);
    assert_eq!(story[5]["thread_id"], format!("incident-{}", third["investigation_id"].as_str().unwrap()));
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_investigation_of_an_alert_joins_its_incident_at_its_priority_and_idling_out_is_an_update() {
    let (h, server, _agent) = setup().await;
    let claude = connect_as(&h.central.mcp_url(), &h.admin, "claude-code").await;

    // The monitoring's critical alert opened the incident.
    alert(&h, "feedface00000001").await;
    let opened = incidents(&claude, 1).await;
    let thread = opened[0]["thread_id"].as_str().unwrap().to_owned();
    let alerts = call_ok(&claude, "mttrly_get_alerts", json!({ "server_id": server })).await;
    let alert_id = alerts["alerts"][0]["alert_id"].as_str().unwrap_or_else(|| panic!("no alert: {alerts}")).to_owned();

    // Investigating it is an update at the alert's priority, naming it.
    let inv =
        start(&claude, &server, "disk full", Some(&alert_id)).await["investigation_id"].as_str().unwrap().to_owned();
    let story = incidents(&claude, 2).await;
    assert_eq!(story.len(), 2, "{story:?}");
    assert_eq!(story[1]["thread_id"], thread.as_str());
    assert_eq!(
        (story[1]["theme"].as_str(), story[1]["priority"].as_str()),
        (Some("incident-update"), Some("critical"))
    );
    assert_eq!(story[1]["title"], format!("Investigation opened on web-1 (alert {alert_id})"));
    assert!(story[1]["body"].as_str().unwrap().contains(&format!("It started from alert {alert_id} (critical).")));

    // Two hours of silence: the sweep closes it, and says so in the incident.
    let id = inv.clone();
    h.central
        .central
        .db
        .with_connection_for_tests(move |conn| {
            conn.execute("UPDATE investigations SET last_activity_at = last_activity_at - 7200000 WHERE id = ?1", [&id])
        })
        .await
        .unwrap();
    let mut story = Vec::new();
    for _ in 0..40 {
        story = incidents(&claude, 2).await;
        if story.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(story.len(), 3, "{story:?}");
    assert_eq!(story[2]["thread_id"], thread.as_str());
    assert_eq!(story[2]["sender"], json!({ "name": "mttrly", "via": "api" }));
    assert!(
        story[2]["body"].as_str().unwrap().starts_with(&format!("Investigation {inv} closed by itself")),
        "{}",
        story[2]
    );
    let summary = call_ok(&claude, "mttrly_get_incident_summary", json!({ "thread_id": thread })).await;
    assert_eq!(summary["status"], "open", "{summary}");
    h.central.shutdown().await;
}
