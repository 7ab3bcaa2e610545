//! Issue 15 item 2, the chat path of a bypass grant: an assistant asks for an investigation
//! bypass, the people who may grant it get a Telegram message (a real central in this process,
//! its bot talking to the fake Bot API on loopback) showing exactly what a grant allows, with
//! Grant / Deny buttons; Grant takes a fresh TOTP code typed in the chat; then an exec under the
//! bypass runs without approval on a real agent. Wrong and replayed codes, strangers, viewers,
//! a stale button after the request changed, and a second decision are refused with nothing
//! changed; Deny is idempotent; everything is audited with `telegram` as the source.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mttrly_central::chat::telegram::TelegramConfig;
use mttrly_central::db::chat::Posted;
use mttrly_core::ChatProvider;
use mttrly_core::Environment;
use mttrly_proto::central::v1::CreateTokenRequest;
use mttrly_proto::central::v1::SetUserRoleRequest;
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use mttrly_proto::central::v1::audit_service_client::AuditServiceClient;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_tests::fake_telegram::FakeTelegram;
use serde_json::{Value, json};

use crate::approvals::{add_server, add_user, code_at, enroll_totp};
use crate::common::{Harness, RunningAgent, authed, call_tool, harness, run_agent};
use crate::telegram::link;

/// A variable Cargo sets for a test binary, whose value has a bot token's alphabet.
const TOKEN_ENV: &str = "CARGO_PKG_NAME";
const WAIT: Duration = Duration::from_secs(10);

const BOB: (i64, &str) = (2001, "bob");
const CAROL: (i64, &str) = (2002, "carol");
const VIV: (i64, &str) = (2003, "viv");
const STRANGER: (i64, &str) = (2666, "mallory");

/// A pattern an assistant wrote to look like something else: markup, a right-to-left override,
/// a zero-width space, quotes, and words that read as a status line.
const HOSTILE: [&str; 5] = ["<b>rm</b>", "\u{202e}fr-\u{200b}", "\"quoted\"", "Granted", "by admin"];

struct Setup {
    fake: FakeTelegram,
    h: Harness,
    server: String,
    assistant: String,
    bob: String,
    _agent: RunningAgent,
}

async fn setup() -> Setup {
    let fake = FakeTelegram::start(&std::env::var(TOKEN_ENV).unwrap()).await;
    let url = fake.url.clone();
    let h = harness(move |cfg| cfg.telegram = Some(TelegramConfig::polling(TOKEN_ENV, &url))).await;
    let added = add_server(&h, "web-1", Environment::Staging).await;
    let agent = run_agent(h.central.grpc_url(), &added.install_token, h.dir.path().join("agent")).await;
    h.wait_online(&added.server_id).await;
    let assistant = AccountServiceClient::new(h.channel().await)
        .create_token(authed(
            &h.admin,
            CreateTokenRequest { assistant_name: "claude-code".into(), ..CreateTokenRequest::default() },
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    let bob = add_user(&h, "bob", "operator").await;
    let carol = add_user(&h, "carol", "operator").await;
    let viv = add_user(&h, "viv", "viewer").await;
    link(&h, &fake, &bob, BOB).await;
    link(&h, &fake, &carol, CAROL).await;
    link(&h, &fake, &viv, VIV).await;
    Setup { fake, h, server: added.server_id, assistant, bob, _agent: agent }
}

impl Setup {
    async fn tool(&self, tool: &str, args: Value) -> Value {
        let (is_error, answer) = call_tool(self.h.channel().await, &self.assistant, tool, args).await;
        assert!(!is_error, "{tool}: {answer}");
        answer
    }

    async fn start(&self, title: &str) -> String {
        let args = json!({ "server_id": self.server, "title": title });
        self.tool("mttrly_start_investigation", args).await["investigation_id"].as_str().unwrap().to_owned()
    }

    async fn acquire(&self, investigation: &str, max: u32, patterns: Value) -> String {
        let args = json!({
            "investigation_id": investigation, "tools": ["execute_command"], "max_actions": max,
            "duration_minutes": 15, "patterns": patterns, "reason": "clean up\n\nthe disk <!channel>",
        });
        let state = self.tool("mttrly_acquire_investigation_bypass", args).await;
        assert_eq!(state["status"], "pending", "{state}");
        state["bypass_id"].as_str().unwrap().to_owned()
    }

    async fn bypass(&self, investigation: &str) -> Value {
        self.tool("mttrly_get_investigation_bypass", json!({ "investigation_id": investigation })).await
    }

    /// The bypass request `bypass` sent to `chat`: its message id and parameters, once central
    /// recorded it (it records after the send returns; a person cannot tap faster, a test can).
    async fn request_message(&self, chat: i64, bypass: &str) -> (i64, Value) {
        let call = self.fake.sent_to(chat, bypass).await;
        let message_id = call.message_id.unwrap();
        let posted = Posted { chat_id: chat.to_string(), message_id: message_id.to_string() };
        for _ in 0..200 {
            let lookups = self.h.central.central.db.chat_lookups();
            if lookups.message(ChatProvider::Telegram, &posted).await.unwrap().is_some() {
                return (message_id, call.body);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the message to {chat} about {bypass} was never recorded");
    }

    /// Taps `data` on `message_id` in `who`'s chat; the spinner's answer.
    async fn tap(&self, who: (i64, &str), chat: i64, message_id: i64, data: &str) -> String {
        let q = self.fake.tap(who, chat, message_id, data);
        self.fake.answer_to(&q).await
    }

    /// How many messages to bob's chat so far contain `text`.
    fn replies(&self, text: &str) -> usize {
        self.fake
            .calls("sendMessage")
            .iter()
            .filter(|c| c.body["chat_id"] == BOB.0 && c.body["text"].as_str().is_some_and(|t| t.contains(text)))
            .count()
    }

    /// Bob taps Grant and types `code`; waits for a new reply containing `expect`.
    async fn grant_with(&self, message_id: i64, code: &str, expect: &str) {
        let before = self.replies(expect);
        assert_eq!(self.tap(BOB, BOB.0, message_id, "a").await, "Send your 6-digit code to grant");
        let typed = self.fake.say(BOB, code);
        self.fake.wait_call("deleteMessage", WAIT, |b| b["message_id"] == typed).await;
        for _ in 0..200 {
            if self.replies(expect) > before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no reply containing {expect:?} after the code; sent: {:#?}", self.fake.calls("sendMessage"));
    }

    async fn audit(&self) -> Vec<Value> {
        self.h.central.central.audit.flush().await;
        AuditServiceClient::new(self.h.channel().await)
            .list_audit(authed(
                &self.h.admin,
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
}

fn buttons(body: &Value) -> Vec<(String, String)> {
    body["reply_markup"]["inline_keyboard"][0]
        .as_array()
        .map(|row| {
            row.iter()
                .map(|b| (b["text"].as_str().unwrap().to_owned(), b["callback_data"].as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether anything was sent to `chat` mentioning `text`.
fn sent_anything(fake: &FakeTelegram, chat: i64, text: &str) -> bool {
    fake.calls("sendMessage")
        .iter()
        .any(|c| c.body["chat_id"] == chat && c.body["text"].as_str().is_some_and(|t| t.contains(text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bypass_is_shown_exactly_granted_in_telegram_with_a_fresh_code_and_then_runs_without_approval() {
    let s = setup().await;
    let (secret, enrolled_at, _) = enroll_totp(&s.h, &s.bob).await;
    let investigation = s.start("disk full on web-1 <a href=\"x\">\u{202e}now</a>").await;
    let dir = s.h.dir.path().join("marks");
    std::fs::create_dir_all(&dir).unwrap();
    let mark = dir.join("fixed");
    let touch = ["touch", mark.to_str().unwrap()];
    let bypass = s.acquire(&investigation, 2, json!([touch, HOSTILE])).await;

    // Bob (an operator who may grant) sees exactly what a grant allows, as plain text.
    let (message_id, sent) = s.request_message(BOB.0, &bypass).await;
    let text = sent["text"].as_str().unwrap();
    for fact in [
        "Investigation bypass requested: execute_command on web-1 (staging)",
        investigation.as_str(),
        "disk full on web-1",
        "assistant claude-code for admin",
        "Max actions: 2",
        "15 minutes once granted",
        "Request expires",
        "TOTP",
        "Argument patterns (written by the assistant, shown as data)",
        &format!("│ \"touch\" \"{}\" exactly", mark.display()),
        "clean up the disk",
        "⏳ Waiting for a grant",
    ] {
        assert!(text.contains(fact), "{fact} missing from:\n{text}");
    }
    assert!(sent.get("parse_mode").is_none(), "plain text");
    // The hostile pattern and title are shown inert: escapes instead of the override and the
    // zero-width space, markup as typed, the whole pattern one marked line.
    assert!(!text.contains('\u{202e}') && !text.contains('\u{200b}'), "{text}");
    assert!(
        text.contains("│ \"<b>rm</b>\" \"\\u{202e}fr-\\u{200b}\" \"\\\"quoted\\\"\" \"Granted\" \"by admin\" exactly"),
        "{text}"
    );
    assert!(text.contains("<a href=\"x\">"), "{text}");
    assert_eq!(text.matches("Granted by").count(), 0, "nothing reads as a decision: {text}");
    assert_eq!(buttons(&sent), [("✅ Grant".to_owned(), "a".to_owned()), ("🚫 Deny".to_owned(), "r".to_owned())]);
    // Carol (operator) is asked too; viv (a viewer) may not grant, so she is not asked.
    s.request_message(CAROL.0, &bypass).await;
    assert!(!sent_anything(&s.fake, VIV.0, &bypass));

    // A stranger's tap and the viewer's tap on bob's message: refused, nothing changes.
    let answer = s.tap(STRANGER, BOB.0, message_id, "a").await;
    assert!(answer.starts_with("Refused: this Telegram account may not decide"), "{answer}");
    let answer = s.tap(VIV, BOB.0, message_id, "a").await;
    assert!(answer.starts_with("Refused: this Telegram account may not decide"), "{answer}");
    let answer = s.tap(VIV, BOB.0, message_id, "r").await;
    assert!(answer.starts_with("Refused"), "{answer}");
    assert_eq!(s.bypass(&investigation).await["status"], "pending");

    // A wrong code, then the code the enrolment spent (a replay): refused, still pending.
    let right = code_at(&secret, enrolled_at + 1);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    s.grant_with(message_id, wrong, "(tap Grant again to retry)").await;
    assert_eq!(s.bypass(&investigation).await["status"], "pending");
    s.grant_with(message_id, &code_at(&secret, enrolled_at), "(tap Grant again to retry)").await;
    assert_eq!(s.bypass(&investigation).await["status"], "pending");

    // The right, fresh code: granted, exactly as shown, by bob.
    s.grant_with(message_id, &right, "Granted: active until").await;
    let state = s.bypass(&investigation).await;
    assert_eq!(
        (state["status"].as_str(), state["granted_by"]["name"].as_str(), state["max_actions"].as_u64()),
        (Some("active"), Some("bob"), Some(2)),
        "{state}"
    );
    assert_eq!(state["patterns"].as_array().unwrap().len(), 2);

    // Every message about it now shows the outcome, without buttons.
    for chat in [BOB.0, CAROL.0] {
        let edit = s
            .fake
            .wait_call("editMessageText", WAIT, |b| {
                b["chat_id"] == chat && b["text"].as_str().is_some_and(|t| t.contains("✅ Granted by bob"))
            })
            .await;
        assert!(edit.body.get("reply_markup").is_none(), "{:?}", edit.body);
    }

    // A second decision on a decided request says so and changes nothing.
    let answer = s.tap(CAROL, CAROL.0, s.request_message(CAROL.0, &bypass).await.0, "r").await;
    assert!(answer.starts_with("Refused") && answer.contains("active"), "{answer}");
    let answer = s.tap(BOB, BOB.0, message_id, "a").await;
    assert!(answer.starts_with("Refused") && answer.contains("active"), "{answer}");
    assert_eq!(s.bypass(&investigation).await["status"], "active");

    // An exec the bypass covers runs at once, without approval.
    let args = json!({ "server_id": s.server, "command": touch.join(" "), "investigation_id": investigation });
    let ran = s.tool("mttrly_execute_command", args).await;
    assert_eq!((ran["status"].as_str(), ran["requires_approval"].as_bool()), (Some("succeeded"), Some(false)), "{ran}");
    assert!(mark.exists());
    // One it does not cover waits.
    let other = format!("touch {}", dir.join("other").display());
    let other = json!({ "server_id": s.server, "command": other, "investigation_id": investigation });
    assert_eq!(s.tool("mttrly_execute_command", other).await["status"], "pending_approval");

    // The audit: the grant is bob's, from Telegram; the refusals are there too.
    let rows = s.audit().await;
    let decisions: Vec<&Value> =
        rows.iter().filter(|e| e["kind"] == "approval_decision" && e["subject"] == bypass.as_str()).collect();
    let granted = decisions
        .iter()
        .find(|e| e["outcome"]["status"] == "ok")
        .unwrap_or_else(|| panic!("no grant row: {decisions:#?}"));
    assert_eq!(
        (granted["source"].as_str(), granted["actor"]["name"].as_str(), granted["parameters"]["decision"].as_str()),
        (Some("telegram"), Some("bob"), Some("grant_bypass")),
        "{granted}"
    );
    assert_eq!(granted["parameters"]["narrowed"], false);
    assert!(decisions.iter().filter(|e| e["outcome"]["status"] != "ok").count() >= 4, "{decisions:#?}");
    assert!(decisions.iter().all(|e| e["source"] == "telegram"), "{decisions:#?}");
    s.h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_button_a_demoted_granter_and_deny_twice_change_nothing_they_should_not() {
    let s = setup().await;
    enroll_totp(&s.h, &s.bob).await;
    let investigation = s.start("load spike").await;

    // The request changes after the message was sent: the assistant withdraws it and asks for
    // more. The old message's Grant is refused, and no code is asked for.
    let first = s.acquire(&investigation, 1, json!([])).await;
    let (old_message, _) = s.request_message(BOB.0, &first).await;
    s.tool("mttrly_revoke_investigation_bypass", json!({ "investigation_id": investigation })).await;
    // The withdrawn request's message says so and loses its buttons.
    let edit = s
        .fake
        .wait_call("editMessageText", WAIT, |b| {
            b["message_id"] == old_message && b["text"].as_str().is_some_and(|t| t.contains("withdrawn"))
        })
        .await;
    assert!(edit.body.get("reply_markup").is_none(), "{:?}", edit.body);
    let second = s.acquire(&investigation, 5, json!([])).await;
    // A client can still send the old button's tap: refused, no code asked for.
    let answer = s.tap(BOB, BOB.0, old_message, "a").await;
    assert!(answer.starts_with("Refused") && answer.contains(&first), "{answer}");
    assert!(answer.contains("revoked"), "{answer}");
    // Nor does its Deny touch the new request.
    assert_eq!(s.tap(BOB, BOB.0, old_message, "r").await, "Already denied or withdrawn; nothing changed");
    let state = s.bypass(&investigation).await;
    assert_eq!((state["bypass_id"].as_str(), state["status"].as_str()), (Some(second.as_str()), Some("pending")));

    // Carol was asked, then lost the right to grant (now a viewer): refused at the tap.
    let (carol_message, _) = s.request_message(CAROL.0, &second).await;
    UserServiceClient::new(s.h.channel().await)
        .set_user_role(authed(
            &s.h.admin,
            SetUserRoleRequest { name: "carol".into(), role: "viewer".into(), second_factor_code: String::new() },
        ))
        .await
        .unwrap();
    let answer = s.tap(CAROL, CAROL.0, carol_message, "a").await;
    assert!(answer.starts_with("Refused"), "{answer}");
    let answer = s.tap(CAROL, CAROL.0, carol_message, "r").await;
    assert!(answer.starts_with("Refused"), "{answer}");
    assert_eq!(s.bypass(&investigation).await["status"], "pending");

    // Bob denies it; denying again says it was already done; a grant after it is refused.
    let (message_id, _) = s.request_message(BOB.0, &second).await;
    assert_eq!(s.tap(BOB, BOB.0, message_id, "r").await, "Denied");
    assert_eq!(s.bypass(&investigation).await["status"], "revoked");
    assert_eq!(s.tap(BOB, BOB.0, message_id, "r").await, "Already denied or withdrawn; nothing changed");
    let answer = s.tap(BOB, BOB.0, message_id, "a").await;
    assert!(answer.starts_with("Refused") && answer.contains("revoked"), "{answer}");
    s.fake
        .wait_call("editMessageText", WAIT, |b| {
            b["message_id"] == message_id && b["text"].as_str().is_some_and(|t| t.contains("🚫 Denied"))
        })
        .await;
    assert_eq!(s.bypass(&investigation).await["status"], "revoked");

    // A request changed in storage after its message was sent (here: widened to 50 actions
    // behind central's back): the message's hash no longer matches, so its buttons decide
    // nothing, and no code is asked for.
    let third = s.acquire(&investigation, 2, json!([])).await;
    let (third_message, _) = s.request_message(BOB.0, &third).await;
    let conn = rusqlite::Connection::open(s.h.dir.path().join("data").join("central.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let changed =
        conn.execute("UPDATE investigation_bypasses SET max_actions = 50 WHERE id = ?1", [third.as_str()]).unwrap();
    assert_eq!(changed, 1);
    for button in ["a", "r"] {
        let answer = s.tap(BOB, BOB.0, third_message, button).await;
        assert!(answer.starts_with("Refused") && answer.contains("no longer the request"), "{answer}");
    }
    assert_eq!(s.bypass(&investigation).await["status"], "pending");

    let rows = s.audit().await;
    let stale = rows.iter().any(|e| {
        e["subject"] == third.as_str()
            && e["source"] == "telegram"
            && e["parameters"]["refused"] == "the request changed since the message was sent"
    });
    assert!(stale, "{rows:#?}");
    let denial = rows
        .iter()
        .find(|e| {
            e["kind"] == "approval_decision"
                && e["subject"] == second.as_str()
                && e["outcome"]["status"] == "ok"
                && e["parameters"]["already_revoked"] == false
        })
        .unwrap_or_else(|| panic!("no denial row: {rows:#?}"));
    assert_eq!((denial["source"].as_str(), denial["actor"]["name"].as_str()), (Some("telegram"), Some("bob")));
    assert_eq!(denial["parameters"]["decision"], "deny_bypass");
    let carol_refused = rows.iter().any(|e| {
        e["kind"] == "approval_decision"
            && e["subject"] == second.as_str()
            && e["actor"]["name"] == "carol"
            && e["outcome"]["code"] == "FORBIDDEN"
    });
    assert!(carol_refused, "{rows:#?}");
    s.h.central.shutdown().await;
}
