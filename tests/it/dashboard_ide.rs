//! Issue 14, IDE approvals a client cannot fake: `mttrly_approve_action` / `mttrly_cancel_action`
//! through MCP send a client with URL-mode elicitation to the action's dashboard page; the call
//! then reports what the human signed in there decided. The client's "accept" decides nothing (an
//! auto-accepting client gets the refusal once the wait ends, the action still pending); a client
//! whose user declines, or without URL mode, gets the refusal at once, naming the page.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use mttrly_tests::mcp::{self, Human};
use serde_json::{Value, json};

use crate::common::harness;
use crate::dashboard::{Http, LIVE, hidden, online_production, person, status_of};

/// The pages `pages` holds once it holds `n` (waiting for the client to be asked).
async fn asked(pages: &std::sync::Mutex<Vec<String>>, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + LIVE;
    loop {
        let now = pages.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "the client was never sent to the page: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The structured body of a finished call.
fn body(result: &rmcp::model::CallToolResult) -> Value {
    result.structured_content.clone().unwrap_or_else(|| panic!("no structured content: {result:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ide_sends_its_user_to_the_page_and_reports_what_the_human_decided_there() {
    let h = harness(|cfg| cfg.mcp_approval_wait_seconds = 120).await;
    let base = h.central.http_url();
    let mcp_url = format!("{base}/mcp");
    let (server, _agent) = online_production(&h).await;
    let mut bob = person(&h, "bob", "operator").await;
    let mut page = Http::new(&base);
    page.sign_in(&mut bob).await;

    let (session, forms, pages) = mcp::connect_with_pages(&mcp_url, &h.admin, Some(Human::OpensPages)).await;
    let session = Arc::new(session);
    let marker = h.dir.path().join("approved-on-the-page");
    let command = format!("touch {}", marker.display());
    let pending = mcp::call_ok(
        &session,
        "mttrly_execute_command",
        json!({ "server_id": server, "command": command, "reason": "the disk is filling up" }),
    )
    .await;
    let id = pending["action_id"].as_str().unwrap().to_owned();

    let call = tokio::spawn({
        let (session, id) = (Arc::clone(&session), id.clone());
        async move { mcp::call(&session, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" })).await }
    });
    let sent = asked(&pages, 1).await;
    assert_eq!(sent, vec![format!("{base}/actions/{id}")], "the action's own page, on central's address");
    // The client said its user went there: that decided nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status_of(&h, &id).await, "pending_approval");
    assert!(!call.is_finished(), "the call waits for the human");

    // Bob, signed in, approves on the page the client opened.
    let (status, shown) = page.get(&format!("/actions/{id}")).await;
    assert_eq!(status, 200, "{shown}");
    let (csrf, seen) = (hidden(&shown, "csrf"), hidden(&shown, "seen_sha256"));
    let (status, answer) =
        page.post(&format!("/actions/{id}/approve"), &[("csrf", &csrf), ("seen_sha256", &seen)]).await;
    assert_eq!(status, 303, "{answer}");

    let result = tokio::time::timeout(Duration::from_secs(60), call).await.unwrap().unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let view = body(&result);
    assert_eq!(view["status"], "succeeded", "the call reports the run: {view}");
    let said = result.content[0].as_text().map(|t| t.text.clone()).unwrap_or_default();
    assert!(
        said.starts_with(&format!("Action {id} is now succeeded (approved via dashboard). You asked to approve")),
        "the outcome comes first, in words: {said}"
    );
    assert_eq!(view["approvals"][0]["channel"], "dashboard", "{view}");
    assert!(marker.exists(), "the agent ran it");
    assert!(forms.lock().unwrap().is_empty(), "no form was shown, only the page");

    // Rejecting through the page: another session of the assistant asks to cancel (not its own
    // request, so a human must reject), and Bob rejects with a reason.
    let second = mcp::call_ok(
        &session,
        "mttrly_execute_command",
        json!({ "server_id": server, "command": format!("touch {}-2", marker.display()) }),
    )
    .await;
    let second = second["action_id"].as_str().unwrap().to_owned();
    let (other, _, other_pages) = mcp::connect_with_pages(&mcp_url, &h.admin, Some(Human::OpensPages)).await;
    let other = Arc::new(other);
    let call = tokio::spawn({
        let (other, second) = (Arc::clone(&other), second.clone());
        async move { mcp::call(&other, "mttrly_cancel_action", json!({ "action_id": second })).await }
    });
    assert_eq!(asked(&other_pages, 1).await, vec![format!("{base}/actions/{second}")]);
    let (_, shown) = page.get(&format!("/actions/{second}")).await;
    let csrf = hidden(&shown, "csrf");
    let (status, answer) =
        page.post(&format!("/actions/{second}/reject"), &[("csrf", &csrf), ("reason", "not during the sale")]).await;
    assert_eq!(status, 303, "{answer}");
    let result = tokio::time::timeout(Duration::from_secs(60), call).await.unwrap().unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let view = body(&result);
    assert_eq!(view["status"], "rejected", "{view}");
    let said = result.content[0].as_text().map(|t| t.text.clone()).unwrap_or_default();
    assert!(said.contains("is now rejected (rejected via dashboard). You asked to cancel"), "{said}");
    assert_eq!(view["approvals"][0]["decision"], "reject", "{view}");
    assert_eq!(view["approvals"][0]["channel"], "dashboard", "{view}");
    assert_eq!(view["approvals"][0]["reason"], "not during the sale", "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_accepting_client_a_declining_user_and_a_client_without_url_mode_decide_nothing() {
    let h = harness(|cfg| cfg.mcp_approval_wait_seconds = 2).await;
    let base = h.central.http_url();
    let mcp_url = format!("{base}/mcp");
    let (server, _agent) = online_production(&h).await;
    let marker = h.dir.path().join("never");
    let (session, forms, pages) = mcp::connect_with_pages(&mcp_url, &h.admin, Some(Human::OpensPages)).await;
    let pending = mcp::call_ok(
        &session,
        "mttrly_execute_command",
        json!({ "server_id": server, "command": format!("touch {}", marker.display()) }),
    )
    .await;
    let id = pending["action_id"].as_str().unwrap().to_owned();
    let url = format!("{base}/actions/{id}");

    // Accepts the page, nobody comes: once the wait is over, the refusal, the action untouched.
    let started = std::time::Instant::now();
    let refused =
        mcp::call_err(&session, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" })).await;
    assert!(started.elapsed() >= Duration::from_secs(2), "it waited for the human");
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message
            .contains("it was not decided there within 1 min: it still waits for a human decision (0 of 1 approvals)"),
        "{message}"
    );
    assert_eq!(refused["details"]["action_url"], url, "{refused}");
    assert_eq!(pages.lock().unwrap().clone(), vec![url.clone()]);
    assert!(forms.lock().unwrap().is_empty(), "never a form");

    // One session holds at most four waits: a fifth concurrent call gets the refusal at once.
    let session = Arc::new(session);
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let (session, id) = (Arc::clone(&session), id.clone());
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let refused =
                    mcp::call_err(&session, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" }))
                        .await;
                (started.elapsed(), refused)
            })
        })
        .collect();
    let mut quick = 0;
    for call in calls {
        let (took, refused) = call.await.unwrap();
        assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
        if took < Duration::from_millis(1500) {
            quick += 1;
            assert!(!refused["message"].as_str().unwrap().contains("was not decided there"), "{refused}");
        }
    }
    assert_eq!(quick, 1, "exactly one call found no free wait");
    assert_eq!(pages.lock().unwrap().len(), 1 + 4, "four more pages shown, not five");

    // The user declines to open it: the refusal at once, saying so.
    let (declining, _, declined_pages) = mcp::connect_with_pages(&mcp_url, &h.admin, Some(Human::DeclinesPages)).await;
    let refused =
        mcp::call_err(&declining, "mttrly_approve_action", json!({ "action_id": id, "decision": "reject" })).await;
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("The user did not open the action's page ({url}): it still waits")),
        "{message}"
    );
    assert_eq!(declined_pages.lock().unwrap().len(), 1);

    // Clients without URL mode (forms only, or no elicitation): the refusal names the page.
    for human in [Some(Human::Confirms), None] {
        let (plain, forms, pages) = mcp::connect_with_pages(&mcp_url, &h.admin, human).await;
        let refused =
            mcp::call_err(&plain, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" })).await;
        assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
        let message = refused["message"].as_str().unwrap();
        assert!(message.contains(&format!("approve it on the dashboard at {url}")), "{message}");
        assert!(message.contains(&format!("mttrly-cli actions approve {id}")), "{message}");
        assert_eq!(refused["details"]["action_url"], url, "{refused}");
        assert!(forms.lock().unwrap().is_empty() && pages.lock().unwrap().is_empty(), "{human:?}: nothing shown");
    }

    let still = mcp::call_ok(&session, "mttrly_get_action_result", json!({ "action_id": id })).await;
    assert_eq!(still["status"], "pending_approval", "{still}");
    assert!(still["approvals"].as_array().is_some_and(Vec::is_empty), "{still}");
    assert!(!marker.exists());

    // A decision that leaves nothing to decide is answered at once, without a page.
    let withdrawn = mcp::call_ok(&session, "mttrly_cancel_action", json!({ "action_id": id })).await;
    assert_eq!(withdrawn["status"], "cancelled", "the requester withdraws its own: {withdrawn}");
    let refused =
        mcp::call_err(&session, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" })).await;
    assert_eq!(refused["code"], "VALIDATION_ERROR", "{refused}");
    assert_eq!(pages.lock().unwrap().len(), 5, "no page for a cancelled action");
}

/// The same on 2026-07-28, which has no server-to-client requests: the call's first answer is
/// `input_required` with the page's URL-mode request; the client opens it and retries; the retry
/// waits for what the human decides on the page. A 2026-07-28 client without URL mode gets the
/// refusal naming the page at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stateless_client_is_sent_to_the_page_by_an_input_request_and_reports_the_decision() {
    let h = harness(|cfg| cfg.mcp_approval_wait_seconds = 120).await;
    let base = h.central.http_url();
    let mcp_url = format!("{base}/mcp");
    let (server, _agent) = online_production(&h).await;
    let mut bob = person(&h, "bob", "operator").await;
    let mut page = Http::new(&base);
    page.sign_in(&mut bob).await;

    let (session, pages) = mcp::connect_stateless_with_pages(&mcp_url, &h.admin, Some(Human::OpensPages)).await;
    let session = Arc::new(session);
    let marker = h.dir.path().join("approved-from-2026");
    let pending = mcp::call_ok(
        &session,
        "mttrly_execute_command",
        json!({ "server_id": server, "command": format!("touch {}", marker.display()) }),
    )
    .await;
    let id = pending["action_id"].as_str().unwrap().to_owned();

    // Without URL mode: refused at once, naming the page.
    let (plain, plain_pages) = mcp::connect_stateless_with_pages(&mcp_url, &h.admin, None).await;
    let refused =
        mcp::call_err(&plain, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" })).await;
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    assert_eq!(refused["details"]["action_url"], format!("{base}/actions/{id}"), "{refused}");
    assert!(plain_pages.lock().unwrap().is_empty());

    let call = tokio::spawn({
        let (session, id) = (Arc::clone(&session), id.clone());
        async move { mcp::call(&session, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" })).await }
    });
    assert_eq!(asked(&pages, 1).await, vec![format!("{base}/actions/{id}")]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status_of(&h, &id).await, "pending_approval", "the client's answer decided nothing");
    assert!(!call.is_finished(), "the retried call waits for the human");

    let (_, shown) = page.get(&format!("/actions/{id}")).await;
    let (csrf, seen) = (hidden(&shown, "csrf"), hidden(&shown, "seen_sha256"));
    let (status, answer) =
        page.post(&format!("/actions/{id}/approve"), &[("csrf", &csrf), ("seen_sha256", &seen)]).await;
    assert_eq!(status, 303, "{answer}");
    let result = tokio::time::timeout(Duration::from_secs(60), call).await.unwrap().unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let view = body(&result);
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["approvals"][0]["channel"], "dashboard", "{view}");
    assert!(marker.exists(), "the agent ran it");
}
