//! Incidents from what central sees (issue 17, item 4): an Alertmanager alert on a server opens
//! an incident thread in the `incidents` channel, posted by mttrly itself; the action an assistant
//! then proposes on that server, its approval and its run land in the same thread; a person's
//! acknowledgement makes it theirs; once a person resolves it, the next alert opens a new one.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mttrly_central::hooks::AlertmanagerHook;
use mttrly_core::Environment;
use mttrly_tests::mcp::{Session, call_ok, connect_as};
use serde_json::{Value, json};

use crate::approvals::{add_server, add_user, approve, request};
use crate::common::{Harness, harness, run_agent};

const TOKEN_ENV: &str = "CARGO_PKG_NAME";

async fn alert(h: &Harness, status: &str, fingerprint: &str) {
    let now = jiff::Timestamp::now().to_string();
    let alert = json!({
        "status": status,
        "labels": { "alertname": "DiskFull", "instance": "web-1:9100", "severity": "critical" },
        "annotations": { "summary": "Disk 97% full on web-1" },
        "startsAt": now, "endsAt": if status == "resolved" { now.clone() } else { "0001-01-01T00:00:00Z".to_owned() },
        "fingerprint": fingerprint,
    });
    h.post_alertmanager(&std::env::var(TOKEN_ENV).unwrap(), status, json!([alert])).await;
}

/// The thread's notifications once it holds `n` (central posts from the event bus, within ms).
async fn thread_of(session: &Session, thread: &str, n: usize) -> Vec<Value> {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = call_ok(session, "mttrly_get_thread", json!({ "thread_id": thread })).await;
        let notes = last["notifications"].as_array().cloned().unwrap_or_default();
        if notes.len() >= n {
            return notes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("thread {thread} never held {n}: {last}");
}

async fn incidents(session: &Session) -> Vec<Value> {
    for _ in 0..200 {
        let page =
            mttrly_tests::mcp::call(session, "mttrly_get_notifications", json!({ "channel": "incidents" })).await;
        if page.is_error != Some(true) {
            let notes = page.structured_content.unwrap()["notifications"].as_array().cloned().unwrap_or_default();
            if !notes.is_empty() {
                return notes;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no incident was posted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_opens_an_incident_thread_that_carries_the_servers_actions() {
    let h = harness(|cfg| cfg.hooks.alertmanager = Some(AlertmanagerHook { token_env: TOKEN_ENV.into() })).await;
    let added = add_server(&h, "web-1", Environment::Staging).await;
    let (_stop, _agent) = run_agent(h.central.grpc_url(), &added.install_token, h.dir.path().join("agent")).await;
    h.wait_online(&added.server_id).await;
    let bob = add_user(&h, "bob", "operator").await;
    let sarah_token = add_user(&h, "sarah", "operator").await;
    let session = connect_as(&h.central.mcp_url(), &h.admin, "claude-code").await;
    let sarah = connect_as(&h.central.mcp_url(), &sarah_token, "chatgpt").await;

    // 1. Monitoring fires: central opens the incident, as itself, about web-1.
    alert(&h, "firing", "f00dfeed00000001").await;
    let opened = incidents(&session).await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    let root = &opened[0];
    assert_eq!(
        (root["theme"].as_str(), root["priority"].as_str()),
        (Some("incident-alert"), Some("critical")),
        "{root}"
    );
    assert!(root["title"].as_str().unwrap().starts_with("alertmanager:DiskFull on web-1: "), "{root}");
    assert_eq!(root["server_id"], added.server_id.as_str(), "{root}");
    assert_eq!(root["sender"], json!({ "name": "mttrly", "via": "api" }), "no person, no assistant: {root}");
    let thread = root["thread_id"].as_str().unwrap().to_owned();
    assert!(thread.starts_with("incident-"), "{thread}");

    // 2. The assistant proposes a fix on that server; a human approves; the agent runs it.
    let id = request(
        &h,
        &h.admin,
        "mttrly_execute_command",
        json!({ "server_id": added.server_id, "command": "true", "reason": "free disk" }),
    )
    .await;
    approve(&h, &bob, &id, "").await.unwrap();
    let story = thread_of(&session, &thread, 4).await;
    let themes: Vec<&str> = story.iter().map(|n| n["theme"].as_str().unwrap()).collect();
    assert_eq!(themes, ["incident-alert", "incident-update", "incident-decision", "incident-update"], "{story:?}");
    assert!(story[1]["title"].as_str().unwrap().starts_with("Action proposed: "), "{}", story[1]);
    assert!(story[1]["body"].as_str().unwrap().contains(&id), "{}", story[1]);
    assert!(story[2]["body"].as_str().unwrap().contains("approved by bob via"), "{}", story[2]);
    assert!(story[3]["title"].as_str().unwrap().starts_with("Action succeeded: "), "{}", story[3]);
    assert!(story.iter().all(|n| n["sender"]["name"] == "mttrly"), "{story:?}");

    // Central's own posts acknowledge nothing; Sarah's update does, and makes her the owner.
    let summary = call_ok(&session, "mttrly_get_incident_summary", json!({ "thread_id": thread })).await;
    assert_eq!(summary["status"], "open", "{summary}");
    call_ok(
        &sarah,
        "mttrly_publish_notification",
        json!({ "channel": "incidents", "thread_id": thread, "title": "On it", "theme": "incident-update" }),
    )
    .await;
    let summary = call_ok(&session, "mttrly_get_incident_summary", json!({ "thread_id": thread })).await;
    assert_eq!((summary["status"].as_str(), summary["owner"]["name"].as_str()), (Some("acknowledged"), Some("sarah")));

    // The alert clears: an update, never the resolution (a person says when it is over).
    alert(&h, "resolved", "f00dfeed00000001").await;
    let story = thread_of(&session, &thread, 6).await;
    assert_eq!(story[5]["theme"], "incident-update", "{}", story[5]);
    call_ok(
        &sarah,
        "mttrly_publish_notification",
        json!({ "channel": "incidents", "thread_id": thread, "title": "Resolved", "theme": "incident-resolved" }),
    )
    .await;
    // Firing again after that opens a new incident, in a new thread.
    alert(&h, "firing", "f00dfeed00000001").await;
    let mut all = Vec::new();
    for _ in 0..200 {
        all = incidents(&session).await;
        if all.len() >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = all.last().unwrap();
    assert_eq!(last["theme"], "incident-alert", "{last}");
    assert_ne!(last["thread_id"], thread.as_str(), "{last}");
    h.central.shutdown().await;
}
