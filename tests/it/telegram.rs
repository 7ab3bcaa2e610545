//! Issue 13 item 2, approvals in Telegram: a real central in this process, its bot talking to a
//! fake Bot API on loopback (`mttrly_tests::fake_telegram`, the documented requests and answers),
//! people's messages and taps injected as `getUpdates` results (or POSTed to `/hooks/telegram`
//! in webhook mode), real agents running what is approved.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mttrly_central::chat::telegram::{Mode, TelegramConfig};
use mttrly_central::hooks::AlertmanagerHook;
use mttrly_core::Environment;
use mttrly_proto::central::v1::RemoveUserRequest;
use mttrly_proto::central::v1::audit_service_client::AuditServiceClient;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_tests::fake_telegram::FakeTelegram;
use serde_json::{Value, json};

use crate::approvals::{add_server, add_user, cli, code_at, enroll_totp, request};
use crate::common::{Harness, Mcp, authed, get_action, harness};

/// The variable holding the bot token (and the webhook secret in webhook mode). Tests cannot set
/// variables (`unsafe_code` is forbidden), so they name one Cargo sets when it runs a test binary;
/// its value (`mttrly-tests`) has a bot token's alphabet.
const TOKEN_ENV: &str = "CARGO_PKG_NAME";

const WAIT: Duration = Duration::from_secs(10);

/// Telegram accounts: (user id, username). A private chat's id is its user's id.
const BOB: (i64, &str) = (1001, "bob");
const CAROL: (i64, &str) = (1002, "carol");
const ADMIN: (i64, &str) = (1003, "root");
const STRANGER: (i64, &str) = (6666, "mallory");

fn bot_token() -> String {
    std::env::var(TOKEN_ENV).unwrap()
}

/// A central whose `[telegram]` polls `fake`, adjusted by `tune`.
async fn central_with(fake: &FakeTelegram, tune: impl FnOnce(&mut mttrly_central::config::Config)) -> Harness {
    let url = fake.url.clone();
    harness(move |cfg| {
        cfg.telegram = Some(TelegramConfig::polling(TOKEN_ENV, &url));
        tune(cfg);
    })
    .await
}

/// `mttrly-cli --output json users link telegram` as `token`: the code.
async fn link_code(h: &Harness, token: &str) -> String {
    let out = cli(h, token, &["--output", "json", "users", "link", "telegram"], "").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["provider"], "telegram", "{printed}");
    printed["code"].as_str().unwrap().to_owned()
}

/// Links the Telegram account `who` to `token`'s owner, as a person does.
pub(crate) async fn link(h: &Harness, fake: &FakeTelegram, token: &str, who: (i64, &str)) {
    let code = link_code(h, token).await;
    fake.say(who, &format!("/start {code}"));
    fake.sent_to(who.0, "Linked").await;
}

/// The approval message about `action` sent to `chat`: its message id and parameters.
async fn approval_message(fake: &FakeTelegram, chat: i64, action: &str) -> (i64, Value) {
    let call = fake.sent_to(chat, action).await;
    (call.message_id.unwrap(), call.body)
}

fn buttons(body: &Value) -> Vec<String> {
    body["reply_markup"]["inline_keyboard"][0]
        .as_array()
        .map(|row| row.iter().filter_map(|b| b["callback_data"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

async fn audit(h: &Harness) -> Vec<Value> {
    h.central.central.audit.flush().await;
    AuditServiceClient::new(h.channel().await)
        .list_audit(authed(
            &h.admin,
            mttrly_proto::central::v1::ListAuditRequest { server_id: String::new(), before_seq: 0, limit: 500 },
        ))
        .await
        .unwrap()
        .into_inner()
        .entries_json
        .iter()
        .map(|j| serde_json::from_str(j).unwrap())
        .collect()
}

async fn status(h: &Harness, id: &str) -> String {
    get_action(h.channel().await, &h.admin, id).await.status
}

/// Waits until `id` is in `want`.
async fn wait_status(h: &Harness, id: &str, want: &str) {
    for _ in 0..200 {
        if status(h, id).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never became {want}: {}", status(h, id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_by_start_code_and_every_refusal() {
    let fake = FakeTelegram::start(&bot_token()).await;
    let h = central_with(&fake, |_| {}).await;
    let bob = add_user(&h, "bob", "operator").await;
    let carol = add_user(&h, "carol", "operator").await;

    // Someone unlinked says hello: how to link.
    fake.say(STRANGER, "hello");
    fake.sent_to(STRANGER.0, "/start CODE").await;

    // From a group the code is refused, and not spent.
    let code = link_code(&h, &bob).await;
    fake.inject(fake.text_update(BOB, (-5005, "group"), &format!("/start@mttrly_bot {code}")));
    fake.sent_to(-5005, "private chat").await;
    // Malformed.
    fake.say(BOB, "/start not-a-code!");
    fake.sent_to(BOB.0, "not a link code").await;
    // From the private chat it links.
    fake.say(BOB, &format!("/start {code}"));
    let linked = fake.sent_to(BOB.0, "Linked").await;
    assert!(linked.body["text"].as_str().unwrap().contains("bob"), "{:?}", linked.body);
    let links = cli(&h, &bob, &["--output", "json", "users", "links"], "").await;
    let links: Value = serde_json::from_slice(&links.stdout).unwrap();
    assert!(links.to_string().contains("@bob") && links.to_string().contains("1001"), "{links}");
    // Reused by someone else: refused.
    fake.say(STRANGER, &format!("/start {code}"));
    fake.sent_to(STRANGER.0, "unknown, used or expired").await;

    // Expired.
    let late = link_code(&h, &carol).await;
    h.central
        .central
        .db
        .with_connection_for_tests(|conn| conn.execute("UPDATE chat_link_codes SET expires_at = 1", []))
        .await
        .unwrap();
    fake.say(CAROL, &format!("/start {late}"));
    fake.sent_to(CAROL.0, "unknown, used or expired").await;

    // A linked person gets a greeting, not the linking help.
    fake.say(BOB, "hi");
    fake.sent_to(BOB.0, "Hello bob").await;

    // Polling mode: the webhook route does not exist.
    let resp = reqwest::Client::new().post(format!("{}/hooks/telegram", h.central.http_url())).body("{}").send().await;
    assert_eq!(resp.unwrap().status().as_u16(), 404);
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_story_alert_diagnosis_telegram_tap_one_run_edited_message_and_audit() {
    let fake = FakeTelegram::start(&bot_token()).await;
    let h = central_with(&fake, |cfg| {
        cfg.hooks.alertmanager = Some(AlertmanagerHook { token_env: TOKEN_ENV.into() });
        crate::common::fast_heartbeats(cfg);
    })
    .await;
    let web = add_server(&h, "web-1", Environment::Production).await;
    let (stop, agent) =
        crate::common::run_agent(h.central.grpc_url(), &web.install_token, h.dir.path().join("agent")).await;
    let bob = add_user(&h, "bob", "operator").await;
    link(&h, &fake, &bob, BOB).await;

    // 02:00: Alertmanager fires.
    let alert = json!({
        "status": "firing",
        "labels": { "alertname": "DiskFull", "instance": "web-1:9100", "severity": "critical" },
        "annotations": { "summary": "Disk almost full on web-1" },
        "startsAt": jiff::Timestamp::now().to_string(), "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph", "fingerprint": "d15cf011d15cf011"
    });
    h.post_alertmanager(&bot_token(), "firing", json!([alert])).await;

    // The assistant sees the alert over MCP, waits for the agent, and asks for a fix.
    let mcp = Mcp { addr: h.central.http_addr, token: h.admin.clone(), client: "claude-code" };
    let session = mcp.open().await.unwrap();
    let alerts = mcp.call(&session, "mttrly_get_alerts").await;
    let listed = alerts["result"]["structuredContent"]["alerts"].as_array().cloned().unwrap_or_default();
    assert!(listed.iter().any(|a| a["rule"] == "alertmanager:DiskFull"), "{alerts}");
    let marker = h.dir.path().join("fixed");
    let command = format!("echo run >> {}", marker.display());
    let mut asked = Value::Null;
    for _ in 0..100 {
        asked = mcp
            .request(
                &session,
                "tools/call",
                json!({ "name": "mttrly_execute_command", "arguments": {
                    "server_id": web.server_id, "command": command, "reason": "disk full: rotate the logs"
                }}),
            )
            .await;
        if asked["result"]["structuredContent"]["status"] == "pending_approval" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pending = asked["result"]["structuredContent"].clone();
    assert_eq!(pending["status"], "pending_approval", "{asked}");
    let id = pending["action_id"].as_str().unwrap().to_owned();
    let sha = get_action(h.channel().await, &h.admin, &id).await.content_sha256;

    // Bob's Telegram shows what he decides on, with both buttons.
    let (message_id, sent) = approval_message(&fake, BOB.0, &id).await;
    let text = sent["text"].as_str().unwrap();
    for fact in ["web-1 (production)", &command, &sha, "claude-code", "Expires", "disk full: rotate the logs"] {
        assert!(text.contains(fact), "{fact} missing from:\n{text}");
    }
    assert!(sent.get("parse_mode").is_none(), "plain text");
    assert_eq!(buttons(&sent), ["a", "r"]);

    // He taps Approve: the spinner is answered, the agent runs it once.
    let query = fake.tap(BOB, BOB.0, message_id, "a");
    assert_eq!(fake.answer_to(&query).await, "Approved");
    wait_status(&h, &id, "succeeded").await;
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "run\n", "ran exactly once");

    // The message now shows the result and has no buttons.
    let edit = fake
        .wait_call("editMessageText", WAIT, |b| {
            b["message_id"] == message_id && b["text"].as_str().is_some_and(|t| t.contains("Succeeded"))
        })
        .await;
    assert!(edit.body.get("reply_markup").is_none(), "{:?}", edit.body);

    // The audit: the approval came from Telegram, by bob.
    let rows = audit(&h).await;
    let approval = rows
        .iter()
        .find(|e| e["kind"] == "approval_decision" && e["subject"] == id.as_str() && e["outcome"]["status"] == "ok")
        .unwrap_or_else(|| panic!("no approval row: {rows:#?}"));
    assert_eq!(approval["source"], "telegram", "{approval}");
    assert_eq!((approval["actor"]["type"].as_str(), approval["actor"]["name"].as_str()), (Some("human"), Some("bob")));
    let executions = rows.iter().filter(|e| e["kind"] == "execution_result" && e["subject"] == id.as_str()).count();
    assert_eq!(executions, 1);

    stop.send(true).unwrap();
    agent.await.unwrap().unwrap();
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taps_from_strangers_other_chats_the_requester_and_a_second_tap_decide_nothing() {
    let fake = FakeTelegram::start(&bot_token()).await;
    let h = central_with(&fake, |_| {}).await;
    let bob = add_user(&h, "bob", "operator").await;
    link(&h, &fake, &bob, BOB).await;
    link(&h, &fake, &h.admin.clone(), ADMIN).await;
    let db = add_server(&h, "db-1", Environment::Production).await;
    let id = request(&h, &h.admin, "mttrly_decommission_server", json!({ "server_id": db.server_id })).await;
    let (message_id, _) = approval_message(&fake, BOB.0, &id).await;
    // Four eyes: the requester is not an eligible approver, so nothing was sent to them.
    assert!(
        fake.calls("sendMessage")
            .iter()
            .all(|c| !(c.body["chat_id"] == ADMIN.0 && c.body["text"].as_str().unwrap().contains(&id)))
    );

    // A stranger's tap on bob's message (a client can send any tap): refused and audited.
    let q = fake.tap(STRANGER, BOB.0, message_id, "a");
    assert!(fake.answer_to(&q).await.starts_with("Refused: this Telegram account may not decide"));
    // The requester taps Approve on it: refused the same way (it was not sent to them).
    let q = fake.tap(ADMIN, BOB.0, message_id, "a");
    let answer = fake.answer_to(&q).await;
    assert!(answer.starts_with("Refused: this Telegram account may not decide"), "{answer}");
    // Bob taps the same buttons on a copy in another chat (forwarded): not a message mttrly sent.
    let q = fake.tap(BOB, -7007, message_id, "a");
    assert_eq!(fake.answer_to(&q).await, "Refused: this is not an approval request mttrly sent you");
    // Unknown callback data.
    let q = fake.tap(BOB, BOB.0, message_id, "approve-everything");
    assert!(fake.answer_to(&q).await.starts_with("Refused"));
    assert_eq!(status(&h, &id).await, "pending_approval");
    let rows = audit(&h).await;
    let refusals: Vec<&Value> = rows
        .iter()
        .filter(|e| e["kind"] == "approval_decision" && e["subject"] == id.as_str() && e["source"] == "telegram")
        .collect();
    assert!(
        refusals.iter().any(|e| e["parameters"]["external_user"] == "6666" && e["outcome"]["code"] == "FORBIDDEN"),
        "{refusals:#?}"
    );

    // Bob double-taps: one decision, one run, one refusal.
    let (q1, q2) = (fake.tap(BOB, BOB.0, message_id, "a"), fake.tap(BOB, BOB.0, message_id, "a"));
    let answers = [fake.answer_to(&q1).await, fake.answer_to(&q2).await];
    assert_eq!(answers.iter().filter(|a| *a == "Approved").count(), 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|a| a.starts_with("Refused")).count(), 1, "{answers:?}");
    // The second finds it decided, or (the command is quick) already running or done.
    assert!(
        answers.iter().any(|a| a.contains("decided") || a.contains("already")),
        "the second tap says it was decided: {answers:?}"
    );
    wait_status(&h, &id, "succeeded").await;
    let rows = audit(&h).await;
    assert_eq!(rows.iter().filter(|e| e["kind"] == "execution_result" && e["subject"] == id.as_str()).count(), 1);
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_persons_tap_and_a_tap_after_expiry_are_refused_and_reject_says_who() {
    let fake = FakeTelegram::start(&bot_token()).await;
    let h = central_with(&fake, |_| {}).await;
    let bob = add_user(&h, "bob", "operator").await;
    let carol = add_user(&h, "carol", "operator").await;
    link(&h, &fake, &bob, BOB).await;
    link(&h, &fake, &carol, CAROL).await;
    let first = add_server(&h, "db-1", Environment::Production).await;
    let second = add_server(&h, "db-2", Environment::Production).await;
    let id = request(&h, &h.admin, "mttrly_decommission_server", json!({ "server_id": first.server_id })).await;
    let (to_bob, _) = approval_message(&fake, BOB.0, &id).await;
    let (to_carol, _) = approval_message(&fake, CAROL.0, &id).await;

    // Bob is removed: his tap is refused at once.
    UserServiceClient::new(h.channel().await)
        .remove_user(authed(&h.admin, RemoveUserRequest { name: "bob".into(), second_factor_code: String::new() }))
        .await
        .unwrap();
    let q = fake.tap(BOB, BOB.0, to_bob, "a");
    let answer = fake.answer_to(&q).await;
    assert!(answer.starts_with("Refused: this Telegram account may not decide"), "{answer}");
    assert_eq!(status(&h, &id).await, "pending_approval");

    // The action expires; carol's tap comes too late.
    let expired = id.clone();
    h.central
        .central
        .db
        .with_connection_for_tests(move |conn| {
            conn.execute("UPDATE actions SET expires_at = 1 WHERE id = ?1", [&expired])
        })
        .await
        .unwrap();
    let q = fake.tap(CAROL, CAROL.0, to_carol, "a");
    let answer = fake.answer_to(&q).await;
    assert!(answer.starts_with("Refused") && answer.to_lowercase().contains("expire"), "{answer}");
    assert_ne!(status(&h, &id).await, "succeeded");

    // Reject: at once, and the reason names the Telegram account.
    let other = request(&h, &h.admin, "mttrly_decommission_server", json!({ "server_id": second.server_id })).await;
    let (message_id, _) = approval_message(&fake, CAROL.0, &other).await;
    let q = fake.tap(CAROL, CAROL.0, message_id, "r");
    assert_eq!(fake.answer_to(&q).await, "Rejected");
    assert_eq!(status(&h, &other).await, "rejected");
    let shown = get_action(h.channel().await, &h.admin, &other).await;
    assert!(format!("{shown:?}").contains("rejected in Telegram by @carol"), "{shown:?}");
    fake.wait_call("editMessageText", WAIT, |b| {
        b["message_id"] == message_id && b["text"].as_str().is_some_and(|t| t.contains("Rejected by carol"))
    })
    .await;
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_rule_asks_for_the_code_refuses_a_wrong_one_and_deletes_what_was_typed() {
    let fake = FakeTelegram::start(&bot_token()).await;
    let h = central_with(&fake, |cfg| {
        cfg.approvals = serde_json::from_value(json!({ "production": { "second_factor": "totp" } })).unwrap();
    })
    .await;
    let bob = add_user(&h, "bob", "operator").await;
    let (secret, enrolled_at, _) = enroll_totp(&h, &bob).await;
    link(&h, &fake, &bob, BOB).await;
    let db = add_server(&h, "db-1", Environment::Production).await;
    let id = request(&h, &h.admin, "mttrly_decommission_server", json!({ "server_id": db.server_id })).await;
    let (message_id, sent) = approval_message(&fake, BOB.0, &id).await;
    assert!(sent["text"].as_str().unwrap().contains("TOTP"), "the message says a code will be asked");

    // Approve asks for the code, as a reply.
    let q = fake.tap(BOB, BOB.0, message_id, "a");
    assert_eq!(fake.answer_to(&q).await, "Send your 6-digit code to approve");
    let ask = fake.sent_to(BOB.0, "Reply to this message with your 6-digit code").await;
    assert_eq!(ask.body["reply_markup"]["force_reply"], true);
    assert!(ask.body["text"].as_str().unwrap().contains(&id));

    // A wrong code: refused, deleted from the chat, nothing decided.
    let right = code_at(&secret, enrolled_at + 1);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    let typed = fake.say(BOB, wrong);
    fake.wait_call("deleteMessage", WAIT, |b| b["message_id"] == typed).await;
    fake.sent_to(BOB.0, "(tap Approve again to retry)").await;
    assert_eq!(status(&h, &id).await, "pending_approval");

    // Tap again, the right code: approved, and that message is deleted too.
    let q = fake.tap(BOB, BOB.0, message_id, "a");
    assert_eq!(fake.answer_to(&q).await, "Send your 6-digit code to approve");
    let typed = fake.say(BOB, &right);
    fake.wait_call("deleteMessage", WAIT, |b| b["message_id"] == typed).await;
    fake.sent_to(BOB.0, &format!("Approved {id}")).await;
    wait_status(&h, &id, "succeeded").await;
    assert!(fake.message(BOB.0, typed).is_none(), "the code no longer lingers in the chat");
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_decides_the_request_whose_prompt_it_replies_to_never_the_latest_tap() {
    let fake = FakeTelegram::start(&bot_token()).await;
    let h = central_with(&fake, |cfg| {
        cfg.approvals = serde_json::from_value(json!({ "production": { "second_factor": "totp" } })).unwrap();
    })
    .await;
    let bob = add_user(&h, "bob", "operator").await;
    let (secret, enrolled_at, recovery) = enroll_totp(&h, &bob).await;
    link(&h, &fake, &bob, BOB).await;
    let mut requests = Vec::new();
    for name in ["db-1", "db-2"] {
        let server = add_server(&h, name, Environment::Production).await;
        let id = request(&h, &h.admin, "mttrly_decommission_server", json!({ "server_id": server.server_id })).await;
        let (message_id, _) = approval_message(&fake, BOB.0, &id).await;
        requests.push((id, message_id));
    }
    let [(first, first_message), (second, second_message)] = <[_; 2]>::try_from(requests).unwrap();

    // Approve on the first, then on the second: each gets its own prompt.
    let mut prompts = Vec::new();
    for (id, message_id) in [(&first, first_message), (&second, second_message)] {
        let q = fake.tap(BOB, BOB.0, message_id, "a");
        assert_eq!(fake.answer_to(&q).await, "Send your 6-digit code to approve");
        let ask = fake.sent_to(BOB.0, &format!("with your 6-digit code to approve {id}")).await;
        prompts.push(ask.message_id.unwrap());
    }

    // A code that replies to nothing, with two waiting: nothing decided, the code deleted.
    let code = code_at(&secret, enrolled_at + 1);
    let typed = fake.say(BOB, &code);
    fake.wait_call("deleteMessage", WAIT, |b| b["message_id"] == typed).await;
    fake.sent_to(BOB.0, "Several requests wait for your code").await;
    assert_eq!(
        (status(&h, &first).await, status(&h, &second).await),
        ("pending_approval".into(), "pending_approval".into())
    );

    // The code under the first prompt approves the first, though the second was tapped last.
    let typed = fake.say_replying(BOB, &code, prompts[0]);
    fake.wait_call("deleteMessage", WAIT, |b| b["message_id"] == typed).await;
    fake.sent_to(BOB.0, &format!("Approved {first}")).await;
    wait_status(&h, &first, "succeeded").await;
    assert_eq!(status(&h, &second).await, "pending_approval");

    // That prompt waits no more: a code under it decides nothing, not even the other request.
    let typed = fake.say_replying(BOB, &recovery[0], prompts[0]);
    fake.wait_call("deleteMessage", WAIT, |b| b["message_id"] == typed).await;
    fake.sent_to(BOB.0, "That message no longer waits for a code").await;
    assert_eq!(status(&h, &second).await, "pending_approval");

    // One request waits now: a code that replies to nothing is its.
    let typed = fake.say(BOB, &recovery[0]);
    fake.wait_call("deleteMessage", WAIT, |b| b["message_id"] == typed).await;
    fake.sent_to(BOB.0, &format!("Approved {second}")).await;
    wait_status(&h, &second, "succeeded").await;
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode_needs_the_secret_token_header() {
    let fake = FakeTelegram::start(&bot_token()).await;
    let url = fake.url.clone();
    let h = harness(move |cfg| {
        let mut section = TelegramConfig::polling(TOKEN_ENV, &url);
        section.mode = Mode::Webhook;
        section.webhook_secret_env = Some(TOKEN_ENV.into());
        cfg.telegram = Some(section);
    })
    .await;
    let update = json!({ "update_id": 1, "message": {
        "message_id": 1, "date": 1, "chat": { "id": STRANGER.0, "type": "private" },
        "from": { "id": STRANGER.0, "is_bot": false, "first_name": "m" }, "text": "hello" } });
    let post = |secret: Option<String>| {
        let mut req = reqwest::Client::new().post(format!("{}/hooks/telegram", h.central.http_url())).json(&update);
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None).await, 401);
    assert_eq!(post(Some(format!("{}x", bot_token()))).await, 401);
    assert_eq!(post(Some(String::new())).await, 401);
    assert!(fake.calls("sendMessage").is_empty(), "nothing handled");
    assert_eq!(post(Some(bot_token())).await, 200);
    fake.sent_to(STRANGER.0, "/start CODE").await;
    assert!(fake.calls("getUpdates").is_empty(), "webhook mode does not poll");
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_telegram_fails_closed_only_when_nothing_else_reached_anyone() {
    // Telegram answers 500 while a webhook delivered: the action waits for a decision.
    let fake = FakeTelegram::start(&bot_token()).await;
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", receiver.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
        axum::serve(receiver, app).await
    });
    let h = central_with(&fake, move |cfg| {
        cfg.webhooks = vec![mttrly_central::notify::webhook::WebhookConfig {
            url: hook,
            secret: Some("a-webhook-secret-of-some-length".into()),
            secret_env: None,
            timeout_seconds: 2,
            retries: 0,
        }];
    })
    .await;
    let bob = add_user(&h, "bob", "operator").await;
    link(&h, &fake, &bob, BOB).await;
    fake.fail_with(Some(500));
    let db = add_server(&h, "db-1", Environment::Production).await;
    let id = request(&h, &h.admin, "mttrly_decommission_server", json!({ "server_id": db.server_id })).await;
    assert_eq!(status(&h, &id).await, "pending_approval");
    assert!(fake.calls("sendMessage").len() > 2, "retried within the time budget");
    h.central.shutdown().await;

    // Only Telegram, and nothing listens: fails closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("http://127.0.0.1:{port}");
    let h = harness(move |cfg| cfg.telegram = Some(TelegramConfig::polling(TOKEN_ENV, &dead))).await;
    let bob = add_user(&h, "bob", "operator").await;
    // Bob linked while Telegram was up (the code redeemed as the bot would).
    let code = link_code(&h, &bob).await;
    mttrly_central::chat::links::redeem(
        &h.central.central,
        mttrly_core::ChatProvider::Telegram,
        &code,
        "1001",
        "1001",
        "@bob",
    )
    .await
    .unwrap();
    let db = add_server(&h, "db-1", Environment::Production).await;
    let (is_error, body) = crate::common::call_tool(
        h.channel().await,
        &h.admin,
        "mttrly_decommission_server",
        json!({ "server_id": db.server_id }),
    )
    .await;
    assert!(is_error, "{body}");
    assert_eq!(body["code"], "APPROVAL_NOTIFICATION_FAILED", "{body}");
    assert!(!body.to_string().contains(&bot_token()), "the token never shows: {body}");
    h.central.shutdown().await;
}
