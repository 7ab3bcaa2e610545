//! Issue 13 item 3, approvals in Slack: a real central and a real agent, Slack's Web API faked on
//! loopback ([`mttrly_tests::fake_slack`]), and every request Slack would send central built and
//! signed here as Slack signs it. A person links their Slack account with `/mttrly link CODE`;
//! the eligible approver gets the Block Kit message; a tap approves (once), the message shows the
//! result, the audit says `slack` and the human. Forged, replayed and altered requests are 401
//! and decide nothing; strangers, double taps and taps after expiry are refused; a TOTP rule asks
//! for the code in a modal; a rejection's reason comes from a modal.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mttrly_central::chat::slack::config::SlackConfig;
use mttrly_proto::central::v1::ListAuditRequest;
use mttrly_proto::central::v1::audit_service_client::AuditServiceClient;
use mttrly_tests::fake_slack::{self, FakeSlack};
use serde_json::{Value, json};

use crate::approvals::{add_server, add_user, cli, code_at, enroll_totp};
use crate::common::{Harness, authed, call_tool, get_action, harness, run_agent};
use crate::dashboard::online_production;

/// Tests cannot set variables (`unsafe_code` is forbidden), so the secrets are read from
/// variables Cargo sets when it runs a test binary.
const BOT_TOKEN_ENV: &str = "CARGO_PKG_NAME";
const SIGNING_SECRET_ENV: &str = "CARGO_MANIFEST_DIR";
const TEAM: &str = "T0ACME";
const BOB: &str = "U0BOB";
const STRANGER: &str = "U0EVE";
const ADMIN: &str = "U0ADMIN";
const WAIT: Duration = Duration::from_secs(10);

fn signing_secret() -> String {
    std::env::var(SIGNING_SECRET_ENV).unwrap()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A central with `[slack]` pointing at a fresh fake, `approvals` as its `[approvals]` tables.
async fn slacked(approvals: Value) -> (Harness, FakeSlack) {
    let fake = FakeSlack::start(&std::env::var(BOT_TOKEN_ENV).unwrap()).await;
    let api_url = fake.api_url.clone();
    let h = harness(move |cfg| {
        cfg.slack = Some(SlackConfig {
            bot_token_env: BOT_TOKEN_ENV.into(),
            signing_secret_env: SIGNING_SECRET_ENV.into(),
            api_url,
        });
        cfg.approvals = serde_json::from_value(approvals).unwrap();
    })
    .await;
    (h, fake)
}

/// POSTs `body` to `path` with Slack's headers (`timestamp`, `signature`, each when given).
async fn post(h: &Harness, path: &str, body: &str, timestamp: Option<i64>, signature: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", h.central.http_url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some(ts) = timestamp {
        req = req.header("X-Slack-Request-Timestamp", ts.to_string());
    }
    if let Some(sig) = signature {
        req = req.header("X-Slack-Signature", sig);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// POSTs `body` signed now with the app's signing secret, as Slack does.
async fn signed(h: &Harness, path: &str, body: &str) -> (u16, String) {
    let ts = now();
    post(h, path, body, Some(ts), Some(&fake_slack::sign(&signing_secret(), ts, body))).await
}

/// `/mttrly TEXT` from `user`: the ephemeral answer's text.
async fn command(h: &Harness, user: &str, name: &str, text: &str) -> String {
    let (status, answer) = signed(h, "/hooks/slack/commands", &fake_slack::command_body(TEAM, user, name, text)).await;
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["response_type"], "ephemeral");
    answer["text"].as_str().unwrap().to_owned()
}

/// Adds operator `name` with a token and links Slack user `slack_user` to them with the CLI's code.
async fn linked_operator(h: &Harness, name: &str, slack_user: &str) -> String {
    let token = add_user(h, name, "operator").await;
    link(h, &token, name, slack_user).await;
    token
}

/// Links Slack user `slack_user` to `token`'s owner (`name`) with the CLI's code.
async fn link(h: &Harness, token: &str, name: &str, slack_user: &str) {
    let out = cli(h, token, &["--output", "json", "users", "link", "slack"], "").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let code = printed["code"].as_str().unwrap().to_owned();
    let answer = command(h, slack_user, name, &format!("link {code}")).await;
    assert!(answer.starts_with("Linked:") && answer.contains(name), "{answer}");
    // Single use.
    let again = command(h, slack_user, name, &format!("link {code}")).await;
    assert!(again.starts_with("Not linked:"), "{again}");
}

/// The admin asks to run `command` on `server`; the pending action's id.
async fn pending(h: &Harness, server: &str, command: &str) -> String {
    let (is_error, answer) = call_tool(
        h.channel().await,
        &h.admin,
        "mttrly_execute_command",
        json!({ "server_id": server, "command": command, "reason": "disk is full <@U0ALL> :fire:" }),
    )
    .await;
    assert!(!is_error, "{answer}");
    assert_eq!(answer["status"], "pending_approval", "{answer}");
    answer["action_id"].as_str().unwrap().to_owned()
}

/// Every text of a message body's blocks, and its fallback text, in order.
fn texts(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"]["text"].as_str().map(str::to_owned))
        .collect();
    out.push(body["text"].as_str().unwrap_or_default().to_owned());
    out
}

fn buttons(body: &Value) -> Vec<String> {
    body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().iter().map(|e| e["action_id"].as_str().unwrap().to_owned()))
        .collect()
}

/// The message posted to `user` about `action`: (channel, ts, body).
async fn message_to(fake: &FakeSlack, user: &str, action: &str) -> (String, String, Value) {
    let call = fake
        .wait_for("chat.postMessage", WAIT, |b| b["channel"] == user && b["blocks"].to_string().contains(action))
        .await;
    assert_eq!(call.answer["ok"], true, "{:?}", call.answer);
    let channel = call.answer["channel"].as_str().unwrap().to_owned();
    assert_eq!(channel, fake_slack::dm_of(user), "posted in the app's DM with them");
    (channel, call.answer["ts"].as_str().unwrap().to_owned(), call.body)
}

async fn tap(h: &Harness, user: &str, channel: &str, ts: &str, action_id: &str, trigger: &str) -> (u16, String) {
    let payload = fake_slack::block_actions(TEAM, user, channel, ts, action_id, trigger);
    signed(h, "/hooks/slack/interactions", &fake_slack::interaction_body(&payload)).await
}

async fn status_of(h: &Harness, id: &str) -> String {
    get_action(h.channel().await, &h.admin, id).await.status
}

async fn wait_status(h: &Harness, id: &str, want: &str) {
    for _ in 0..200 {
        if status_of(h, id).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never became {want}: {}", status_of(h, id).await);
}

async fn audit(h: &Harness) -> Vec<Value> {
    h.central.central.audit.flush().await;
    AuditServiceClient::new(h.channel().await)
        .list_audit(authed(&h.admin, ListAuditRequest { server_id: String::new(), limit: 500, before_seq: 0 }))
        .await
        .unwrap()
        .into_inner()
        .entries_json
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_approver_decides_with_a_tap_and_forgeries_strangers_and_double_taps_are_refused() {
    let (h, fake) = slacked(json!({})).await;
    // Help, and an unknown verb, answer with the help.
    assert!(command(&h, BOB, "bob", "help").await.contains("/mttrly link CODE"));
    assert!(command(&h, BOB, "bob", "").await.contains("/mttrly link CODE"));
    assert!(command(&h, BOB, "bob", "bogus").await.starts_with("Unknown command"));
    assert!(command(&h, BOB, "bob", "link nope").await.contains("not a link code"));
    linked_operator(&h, "bob", BOB).await;
    // The admin links too, but asks for the action below: four eyes leave them out.
    link(&h, &h.admin, "admin", ADMIN).await;
    let links =
        h.central.central.db.chat_lookups().owner(mttrly_core::ChatProvider::Slack, &format!("{TEAM}:{BOB}")).await;
    assert!(links.unwrap().is_some(), "TEAM:USER is the linked chat account");

    let (server, _agent) = online_production(&h).await;
    let marker = h.dir.path().join("approved-from-slack");
    let command_line = format!("touch {}", marker.display());
    // Slack rate-limits the first post briefly: it is retried after Retry-After.
    fake.rate_limit_next("chat.postMessage", 1);
    let id = pending(&h, &server, &command_line).await;
    let shown = get_action(h.channel().await, &h.admin, &id).await;

    // The eligible approver (bob; the admin asked, so four eyes leave them out) gets the message.
    let (channel, ts, body) = message_to(&fake, BOB, &id).await;
    assert_eq!(fake.calls_of("chat.postMessage").len(), 2, "one 429, one retry");
    let all = texts(&body).join("\n");
    for fact in [
        "web-1 (production)",
        &command_line,
        &shown.content_sha256,
        "Requested by: assistant claude-code for admin",
        "Expires:",
        "Waiting for approval",
    ] {
        assert!(all.contains(fact), "{fact} missing from {all}");
    }
    assert!(
        texts(&body).iter().any(|t| t.starts_with("Exactly:\n{\"type\":\"command\"") && t.contains(&command_line)),
        "exactly what runs, in its own block: {all}"
    );
    assert!(all.contains("<@U0ALL> :fire:"), "the assistant's words as typed: {all}");
    assert_eq!(buttons(&body), ["mttrly_approve", "mttrly_reject"]);
    assert!(body["text"].as_str().unwrap().starts_with("Approval needed:"), "{body}");

    // Forged, replayed, altered, unsigned: 401, nothing decided.
    let approve =
        fake_slack::interaction_body(&fake_slack::block_actions(TEAM, BOB, &channel, &ts, "mttrly_approve", "1.2.3"));
    let t = now();
    let secret = signing_secret();
    let forged = format!("v0={}", "ab".repeat(32));
    let other_secret = fake_slack::sign("another-apps-signing-secret", t, &approve);
    let old = t - 6 * 60;
    let altered = approve.replace(BOB, "U0BOC");
    for (what, ts_header, sig, body) in [
        ("forged", Some(t), Some(forged), approve.clone()),
        ("another secret", Some(t), Some(other_secret), approve.clone()),
        ("replayed", Some(old), Some(fake_slack::sign(&secret, old, &approve)), approve.clone()),
        ("from the future", Some(t + 600), Some(fake_slack::sign(&secret, t + 600, &approve)), approve.clone()),
        ("altered", Some(t), Some(fake_slack::sign(&secret, t, &approve)), altered),
        ("no signature", Some(t), None, approve.clone()),
        ("no timestamp", None, Some(fake_slack::sign(&secret, t, &approve)), approve.clone()),
    ] {
        let (status, answer) = post(&h, "/hooks/slack/interactions", &body, ts_header, sig.as_deref()).await;
        assert_eq!(status, 401, "{what}: {answer}");
    }
    let unsigned_link = fake_slack::command_body(TEAM, STRANGER, "eve", "link 0000-0000-0000");
    assert_eq!(post(&h, "/hooks/slack/commands", &unsigned_link, Some(t), None).await.0, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_of(&h, &id).await, "pending_approval");

    assert!(
        fake.calls_of("chat.postMessage").iter().all(|c| c.body["channel"] != ADMIN),
        "the requester is not an eligible approver in production"
    );
    // A tap on a message mttrly never sent: refused and told.
    let (status, _) = tap(&h, BOB, &channel, "1700000000.000001", "mttrly_approve", "1.2.9").await;
    assert_eq!(status, 200);
    let told = fake.wait_for("chat.postEphemeral", WAIT, |b| b["user"] == BOB).await;
    assert!(told.body["text"].as_str().unwrap().contains("not an approval request mttrly sent"), "{:?}", told.body);

    // A stranger's tap (an unlinked TEAM:USER): refused, told, audited.
    let (status, _) = tap(&h, STRANGER, &channel, &ts, "mttrly_approve", "1.2.4").await;
    assert_eq!(status, 200);
    let told = fake.wait_for("chat.postEphemeral", WAIT, |b| b["user"] == STRANGER).await;
    assert!(told.body["text"].as_str().unwrap().starts_with("Not decided:"), "{:?}", told.body);
    assert_eq!(status_of(&h, &id).await, "pending_approval");
    let refusals: Vec<Value> = audit(&h)
        .await
        .into_iter()
        .filter(|e| {
            e["kind"] == "approval_decision" && e["parameters"]["external_user"] == format!("{TEAM}:{STRANGER}")
        })
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["source"], "slack");
    assert_eq!(refusals[0]["outcome"]["code"], "FORBIDDEN", "{:?}", refusals[0]);

    // Bob taps Approve: acknowledged at once, approved, run once by the agent.
    let started = std::time::Instant::now();
    let (status, _) = tap(&h, BOB, &channel, &ts, "mttrly_approve", "1.2.5").await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(3), "acknowledged within Slack's 3 seconds");
    wait_status(&h, &id, "succeeded").await;
    assert!(marker.exists());
    // The message now shows the result, without buttons.
    let updated = fake
        .wait_for("chat.update", WAIT, |b| {
            b["ts"] == ts.as_str() && b["text"].as_str().is_some_and(|t| t.contains("Succeeded"))
        })
        .await;
    assert_eq!(updated.body["channel"], channel.as_str());
    assert!(buttons(&updated.body).is_empty(), "{:?}", updated.body);

    // A double tap: refused and told; still one execution.
    let (status, _) = tap(&h, BOB, &channel, &ts, "mttrly_approve", "1.2.6").await;
    assert_eq!(status, 200);
    let told = fake
        .wait_for("chat.postEphemeral", WAIT, |b| {
            b["user"] == BOB && !b["text"].as_str().unwrap().contains("not an approval request")
        })
        .await;
    assert!(told.body["text"].as_str().unwrap().starts_with("Not decided:"), "{:?}", told.body);
    let entries = audit(&h).await;
    assert_eq!(entries.iter().filter(|e| e["kind"] == "execution_result" && e["subject"] == id.as_str()).count(), 1);
    let approved: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "approval_decision" && e["subject"] == id.as_str() && e["outcome"]["status"] == "ok")
        .collect();
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert_eq!(approved[0]["source"], "slack");
    assert_eq!(
        (approved[0]["actor"]["type"].as_str(), approved[0]["actor"]["name"].as_str()),
        (Some("human"), Some("bob"))
    );
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_rule_asks_for_the_code_in_a_modal_and_only_the_right_code_approves() {
    let (h, fake) = slacked(json!({ "production": { "second_factor": "totp" } })).await;
    let bob = linked_operator(&h, "bob", BOB).await;
    let (secret, enrolled_at, _) = enroll_totp(&h, &bob).await;
    let (server, _agent) = online_production(&h).await;
    let id = pending(&h, &server, "true").await;
    let (channel, ts, _) = message_to(&fake, BOB, &id).await;

    // Slack refuses the modal (`"ok": false`, the trigger expired): the person is told to tap again.
    let (status, _) = tap(&h, BOB, &channel, &ts, "mttrly_approve", "expired.1.2").await;
    assert_eq!(status, 200);
    let told = fake.wait_for("chat.postEphemeral", WAIT, |b| b["user"] == BOB).await;
    assert!(told.body["text"].as_str().unwrap().contains("tap Approve again"), "{:?}", told.body);
    let (status, _) = tap(&h, BOB, &channel, &ts, "mttrly_approve", "77.88.trigger").await;
    assert_eq!(status, 200);
    let opened = fake.wait_for("views.open", WAIT, |b| b["trigger_id"] == "77.88.trigger").await;
    let view = opened.body["view"].clone();
    assert_eq!(view["callback_id"], "mttrly_approve_code");
    assert_eq!(status_of(&h, &id).await, "pending_approval", "nothing decided before the code");

    // A wrong code: shown in the modal, still pending.
    let wrong = format!("{:06}", (secret.code_at(enrolled_at + 1) + 1) % 1_000_000);
    let submit =
        |code: &str| fake_slack::interaction_body(&fake_slack::view_submission(TEAM, BOB, &view, &[("code", code)]));
    let (status, answer) = signed(&h, "/hooks/slack/interactions", &submit(&wrong)).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["response_action"], "errors", "{answer}");
    assert!(answer["errors"]["code"].as_str().unwrap().starts_with("Not decided:"), "{answer}");
    assert_eq!(status_of(&h, &id).await, "pending_approval");
    // The same modal submitted by a stranger with the right code: refused (the metadata names the
    // message, and the stranger is not its recipient).
    let right = code_at(&secret, enrolled_at + 1);
    let stranger =
        fake_slack::interaction_body(&fake_slack::view_submission(TEAM, STRANGER, &view, &[("code", &right)]));
    let (_, answer) = signed(&h, "/hooks/slack/interactions", &stranger).await;
    assert!(answer.contains("may not decide"), "{answer}");
    // The right code: the modal closes (an empty 200) and the action runs.
    let (status, answer) = signed(&h, "/hooks/slack/interactions", &submit(&right)).await;
    assert_eq!((status, answer.as_str()), (200, ""));
    wait_status(&h, &id, "succeeded").await;
    let decided = audit(&h)
        .await
        .into_iter()
        .find(|e| e["kind"] == "approval_decision" && e["subject"] == id.as_str() && e["outcome"]["status"] == "ok");
    let decided = decided.unwrap();
    assert_eq!(
        (decided["source"].as_str(), decided["parameters"]["second_factor"].as_str()),
        (Some("slack"), Some("totp"))
    );
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_asks_for_a_reason_in_a_modal_and_a_tap_after_expiry_is_refused() {
    let (h, fake) = slacked(json!({})).await;
    linked_operator(&h, "bob", BOB).await;
    let (server, _agent) = online_production(&h).await;
    let id = pending(&h, &server, "true").await;
    let (channel, ts, _) = message_to(&fake, BOB, &id).await;

    let (status, _) = tap(&h, BOB, &channel, &ts, "mttrly_reject", "5.6.reject").await;
    assert_eq!(status, 200);
    let opened = fake.wait_for("views.open", WAIT, |b| b["trigger_id"] == "5.6.reject").await;
    let view = opened.body["view"].clone();
    assert_eq!(view["callback_id"], "mttrly_reject_reason");
    let submit = fake_slack::interaction_body(&fake_slack::view_submission(
        TEAM,
        BOB,
        &view,
        &[("reason", "not during the sale")],
    ));
    let (status, answer) = signed(&h, "/hooks/slack/interactions", &submit).await;
    assert_eq!((status, answer.as_str()), (200, ""));
    assert_eq!(status_of(&h, &id).await, "rejected");
    let rejected = audit(&h).await.into_iter().find(|e| {
        e["kind"] == "approval_decision" && e["subject"] == id.as_str() && e["parameters"]["decision"] == "reject"
    });
    let rejected = rejected.unwrap();
    assert_eq!(
        (rejected["source"].as_str(), rejected["parameters"]["reason"].as_str()),
        (Some("slack"), Some("not during the sale"))
    );
    let updated = fake
        .wait_for("chat.update", WAIT, |b| {
            b["ts"] == ts.as_str() && b["text"].as_str().is_some_and(|t| t.contains("Rejected by bob"))
        })
        .await;
    assert!(buttons(&updated.body).is_empty());

    // Another action, expired before the tap: refused and told.
    let late = pending(&h, &server, "true").await;
    let (channel, ts, _) = message_to(&fake, BOB, &late).await;
    let stale = late.clone();
    h.central
        .central
        .db
        .with_connection_for_tests(move |conn| {
            conn.execute("UPDATE actions SET expires_at = 1 WHERE id = ?1", [&stale])
        })
        .await
        .unwrap();
    let before = fake.calls_of("chat.postEphemeral").len();
    let (status, _) = tap(&h, BOB, &channel, &ts, "mttrly_approve", "5.6.late").await;
    assert_eq!(status, 200);
    for _ in 0..200 {
        if fake.calls_of("chat.postEphemeral").len() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let told = fake.calls_of("chat.postEphemeral").pop().unwrap();
    assert!(told.body["text"].as_str().unwrap().contains("expired"), "{:?}", told.body);
    assert_ne!(status_of(&h, &late).await, "succeeded");
    h.central.shutdown().await;
}

#[tokio::test]
async fn slack_routes_are_not_found_until_configured() {
    let h = harness(|_| {}).await;
    for path in ["/hooks/slack/interactions", "/hooks/slack/commands"] {
        let (status, _) = signed(&h, path, "payload=%7B%7D").await;
        assert_eq!(status, 404, "{path}");
    }
    h.central.shutdown().await;
}

#[test]
fn a_named_but_unset_slack_variable_stops_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::common::config(dir.path());
    cfg.slack = Some(SlackConfig {
        bot_token_env: BOT_TOKEN_ENV.into(),
        signing_secret_env: "MTTRLY_TEST_SURELY_UNSET_SLACK_SECRET".into(),
        api_url: "http://127.0.0.1:9/api".into(),
    });
    mttrly_central::init::init(&cfg, None).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(mttrly_central::server::start(cfg)).err().unwrap();
    let shown = format!("{err:?}");
    assert!(shown.contains("MTTRLY_TEST_SURELY_UNSET_SLACK_SECRET") && shown.contains("ValidationError"), "{shown}");
}

/// Issue 15 item 2 in Slack: an assistant's bypass request reaches the linked person who may
/// grant it as Block Kit plain text (a hostile pattern stays text), Grant opens the code modal,
/// a wrong code is refused in the modal, the right one grants exactly the request shown (audited
/// from `slack`), the message is updated, and an exec the bypass covers runs without approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bypass_request_is_granted_in_slack_with_a_code_in_a_modal() {
    let (h, fake) = slacked(json!({})).await;
    let bob = linked_operator(&h, "bob", BOB).await;
    let (secret, enrolled_at, _) = enroll_totp(&h, &bob).await;
    let added = add_server(&h, "web-1", mttrly_core::Environment::Staging).await;
    let _agent = run_agent(h.central.grpc_url(), &added.install_token, h.dir.path().join("agent")).await;
    h.wait_online(&added.server_id).await;
    let assistant = mttrly_proto::central::v1::account_service_client::AccountServiceClient::new(h.channel().await)
        .create_token(authed(
            &h.admin,
            mttrly_proto::central::v1::CreateTokenRequest {
                assistant_name: "claude-code".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    let tool = |name: &'static str, args: Value| {
        let (h, assistant) = (&h, assistant.clone());
        async move {
            let (is_error, answer) = call_tool(h.channel().await, &assistant, name, args).await;
            assert!(!is_error, "{name}: {answer}");
            answer
        }
    };
    let investigation = tool("mttrly_start_investigation", json!({ "server_id": added.server_id, "title": "disk" }))
        .await["investigation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mark = h.dir.path().join("slack-fixed");
    let touch = ["touch", mark.to_str().unwrap()];
    let hostile = ["echo", "<!channel> *bold* :fire: <https://evil.example|docs>"];
    let args = json!({
        "investigation_id": investigation, "tools": ["execute_command"], "max_actions": 1,
        "duration_minutes": 10, "patterns": [touch, hostile],
    });
    let bypass = tool("mttrly_acquire_investigation_bypass", args).await["bypass_id"].as_str().unwrap().to_owned();

    let (channel, ts, body) = message_to(&fake, BOB, &bypass).await;
    // Wait until central recorded the message (it does right after the post returns).
    let posted = mttrly_central::db::chat::Posted { chat_id: channel.clone(), message_id: ts.clone() };
    for _ in 0..200 {
        let lookups = h.central.central.db.chat_lookups();
        if lookups.message(mttrly_core::ChatProvider::Slack, &posted).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let shown = texts(&body).join("\n");
    for fact in [
        "Investigation bypass requested: execute_command on web-1 (staging)",
        "assistant claude-code for admin",
        "Max actions: 1",
        "10 minutes once granted",
        "│ \"echo\" \"<!channel> *bold* :fire: <https://evil.example|docs>\" exactly",
    ] {
        assert!(shown.contains(fact), "{fact} missing from:\n{shown}");
    }
    for block in body["blocks"].as_array().unwrap() {
        if let Some(text) = block.get("text") {
            assert_eq!((text["type"].as_str(), text["emoji"].as_bool()), (Some("plain_text"), Some(false)), "{block}");
        }
    }
    assert!(!body["text"].as_str().unwrap().contains('<'), "the fallback is escaped: {}", body["text"]);
    assert_eq!(buttons(&body), ["mttrly_approve", "mttrly_reject"]);
    assert!(body["blocks"].to_string().contains("\"Grant\"") && body["blocks"].to_string().contains("\"Deny\""));

    // Grant opens the code modal; nothing is granted before the code.
    let (status, _) = tap(&h, BOB, &channel, &ts, "mttrly_approve", "55.66.trigger").await;
    assert_eq!(status, 200);
    let opened = fake.wait_for("views.open", WAIT, |b| b["trigger_id"] == "55.66.trigger").await;
    let view = opened.body["view"].clone();
    assert_eq!(
        (view["callback_id"].as_str(), view["title"]["text"].as_str()),
        (Some("mttrly_approve_code"), Some("Grant with a code"))
    );
    let state =
        || async { tool("mttrly_get_investigation_bypass", json!({ "investigation_id": investigation })).await };
    assert_eq!(state().await["status"], "pending");

    // A wrong code is refused in the modal; the right one grants it.
    let submit =
        |code: &str| fake_slack::interaction_body(&fake_slack::view_submission(TEAM, BOB, &view, &[("code", code)]));
    let wrong = format!("{:06}", (secret.code_at(enrolled_at + 1) + 1) % 1_000_000);
    let (_, answer) = signed(&h, "/hooks/slack/interactions", &submit(&wrong)).await;
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert!(answer["errors"]["code"].as_str().unwrap().starts_with("Not decided:"), "{answer}");
    assert_eq!(state().await["status"], "pending");
    let (status, answer) = signed(&h, "/hooks/slack/interactions", &submit(&code_at(&secret, enrolled_at + 1))).await;
    assert_eq!((status, answer.as_str()), (200, ""));
    let granted = state().await;
    assert_eq!((granted["status"].as_str(), granted["granted_by"]["name"].as_str()), (Some("active"), Some("bob")));

    // The message shows the outcome, without buttons.
    let updated = fake
        .wait_for("chat.update", WAIT, |b| b["ts"] == ts.as_str() && b["blocks"].to_string().contains("Granted by bob"))
        .await;
    assert!(buttons(&updated.body).is_empty(), "{:?}", updated.body);

    // The covered exec runs at once.
    let args = json!({ "server_id": added.server_id, "command": touch.join(" "), "investigation_id": investigation });
    let ran = tool("mttrly_execute_command", args).await;
    assert_eq!((ran["status"].as_str(), ran["requires_approval"].as_bool()), (Some("succeeded"), Some(false)), "{ran}");
    assert!(mark.exists());

    let rows = audit(&h).await;
    let grant = rows
        .iter()
        .find(|e| e["kind"] == "approval_decision" && e["subject"] == bypass.as_str() && e["outcome"]["status"] == "ok")
        .unwrap_or_else(|| panic!("no grant row: {rows:#?}"));
    assert_eq!(
        (grant["source"].as_str(), grant["actor"]["name"].as_str(), grant["parameters"]["decision"].as_str()),
        (Some("slack"), Some("bob"), Some("grant_bypass"))
    );
    h.central.shutdown().await;
}
