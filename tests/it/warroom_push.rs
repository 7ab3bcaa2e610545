//! The war room's pushes (issue 17): people subscribe to a channel with their own filters, and
//! what they asked for reaches them, on both MCP revisions and in their linked Telegram: a
//! 2025-11-25 session told through `notifications/resources/updated` after `resources/subscribe`,
//! a 2026-07-28 stateless client through `subscriptions/listen`, and a chat message to a linked
//! person. Filters are applied before anything is sent; another account hears nothing.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mttrly_central::chat::telegram::TelegramConfig;
use mttrly_tests::fake_telegram::FakeTelegram;
use mttrly_tests::mcp::{Session, call_ok, connect_as, connect_stateless, updated_count, wait_updated};
use rmcp::model::{ServerNotification, SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams};
use serde_json::{Value, json};

use crate::approvals::add_user;
use crate::common::{Harness, harness};

const TOKEN_ENV: &str = "CARGO_PKG_NAME";
const TOM: (i64, &str) = (2001, "tom");
const CHANNEL_URI: &str = "notification://incidents/recent";

async fn central(fake: &FakeTelegram) -> Harness {
    let url = fake.url.clone();
    harness(move |cfg| cfg.telegram = Some(TelegramConfig::polling(TOKEN_ENV, &url))).await
}

async fn post(session: &Session, title: &str, priority: &str, thread: &str) -> Value {
    call_ok(
        session,
        "mttrly_publish_notification",
        json!({ "channel": "incidents", "title": title, "priority": priority, "thread_id": thread, "body": "details" }),
    )
    .await
}

/// The next resource update on a 2026-07-28 listen stream within `within`, if any.
async fn next_update(listen: &mut rmcp::service::Subscription, within: Duration) -> Option<String> {
    match tokio::time::timeout(within, listen.next()).await {
        Ok(Ok(Some(ServerNotification::ResourceUpdatedNotification(n)))) => Some(n.params.uri),
        Ok(other) => panic!("unexpected on the listen stream: {other:?}"),
        Err(_) => None,
    }
}

/// The Telegram messages sent to `chat` so far.
fn told(fake: &FakeTelegram, chat: i64) -> Vec<String> {
    fake.calls("sendMessage")
        .into_iter()
        .filter(|c| c.body["chat_id"].as_i64() == Some(chat))
        .filter_map(|c| c.body["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // resources/subscribe is the 2025 revisions' method, tested next to listen
async fn each_person_gets_what_they_subscribed_to_on_both_revisions_and_in_telegram() {
    let fake = FakeTelegram::start(&std::env::var(TOKEN_ENV).unwrap()).await;
    let h = central(&fake).await;
    let url = h.central.mcp_url();
    let sarah = add_user(&h, "sarah", "operator").await;
    let tom = add_user(&h, "tom", "admin").await;
    crate::telegram::link(&h, &fake, &tom, TOM).await;
    // Another account, with a channel of the same name.
    let eve = h.other_account("other", "eve").await;

    let monitoring = connect_as(&url, &h.admin, "claude-code").await;
    let sarah = connect_as(&url, &sarah, "chatgpt").await;
    let eve = connect_as(&url, &eve, "gemini-cli").await;
    // Tom's assistant speaks 2026-07-28: no initialize, no session.
    let tom = connect_stateless(&url, &tom, "claude-desktop").await;
    assert_eq!(tom.peer().peer_info().map(|i| i.protocol_version.to_string()).as_deref(), Some("2026-07-28"));

    call_ok(&monitoring, "mttrly_create_channel", json!({ "channel": "incidents" })).await;
    call_ok(&eve, "mttrly_create_channel", json!({ "channel": "incidents" })).await;
    let mine = call_ok(&monitoring, "mttrly_list_channels", json!({})).await;
    assert_eq!(mine["channels"].as_array().map(Vec::len), Some(1), "{mine}");

    // Tom wants only what is urgent; his answer says where it goes.
    let subscribed =
        call_ok(&tom, "mttrly_subscribe_channel", json!({ "channel": "incidents", "priority": ["critical", "high"] }))
            .await;
    assert_eq!(subscribed["created"], true, "{subscribed}");
    assert_eq!(subscribed["filter"]["priorities"], json!(["critical", "high"]), "{subscribed}");
    assert_eq!(subscribed["delivers_to"], json!(["mcp", "telegram"]), "{subscribed}");
    assert_eq!(subscribed["resource"], CHANNEL_URI, "{subscribed}");
    // A channel the account does not have cannot be subscribed to (and nothing is stored).
    let missing = mttrly_tests::mcp::call_err(&tom, "mttrly_subscribe_channel", json!({ "channel": "nope" })).await;
    assert_eq!(missing["code"], "NOT_FOUND", "{missing}");

    // The 2025-11-25 sessions subscribe to the resource (a thread only once it exists).
    for session in [&sarah, &eve] {
        session.subscribe(SubscribeRequestParams::new(CHANNEL_URI)).await.unwrap();
    }
    let early = sarah.subscribe(SubscribeRequestParams::new("notification://thread/db-1")).await.unwrap_err();
    assert!(early.to_string().contains("no thread `db-1`"), "{early}");
    // Only war-room resources push; a server status does not.
    let refused = sarah.subscribe(SubscribeRequestParams::new("mttrly://playbooks")).await.unwrap_err();
    assert!(refused.to_string().contains("notification://{channel}/recent"), "{refused}");
    // Tom's stateless client listens (2026-07-28).
    let mut listen = tom
        .peer()
        .listen(SubscriptionFilter::builder().resource_subscription(CHANNEL_URI).resources_list_changed().build())
        .await
        .unwrap();
    assert_eq!(
        listen.acknowledged().resource_subscriptions.as_deref(),
        Some(&[CHANNEL_URI.to_owned()][..]),
        "only the resource is accepted: {:?}",
        listen.acknowledged()
    );

    // A medium update: Sarah (no filter) is told; Tom is not, anywhere.
    post(&monitoring, "Connection pool at 80%", "medium", "db-1").await;
    wait_updated(&sarah, CHANNEL_URI, 1).await;
    sarah.subscribe(SubscribeRequestParams::new("notification://thread/db-1")).await.unwrap();
    assert_eq!(next_update(&mut listen, Duration::from_millis(700)).await, None, "Tom's filter holds the medium");

    // The P0: everyone subscribed hears it; Tom on his stream and in Telegram.
    post(&monitoring, "P0: database connection pool exhausted", "critical", "db-1").await;
    assert_eq!(next_update(&mut listen, Duration::from_secs(10)).await.as_deref(), Some(CHANNEL_URI));
    let message = fake.sent_to(TOM.0, "P0: database connection pool exhausted").await;
    let text = message.body["text"].as_str().unwrap();
    assert!(text.starts_with("🔴 CRITICAL · #incidents\n"), "{text}");
    assert!(text.contains("Written by admin (admin) through the assistant claude-code, in thread db-1"), "{text}");
    assert!(message.body.get("parse_mode").is_none() && message.body.get("reply_markup").is_none(), "{message:?}");
    wait_updated(&sarah, CHANNEL_URI, 2).await;

    // Tom's own post is not sent back to his Telegram; his stateless call is attributed to his
    // client as named in the request's `_meta`.
    let own = post(&tom, "Rolling back to v2.3.9", "high", "db-1").await;
    assert_eq!(
        (own["sender"]["name"].as_str(), own["sender"]["ai_tool"].as_str()),
        (Some("tom"), Some("claude-desktop"))
    );
    assert_eq!(next_update(&mut listen, Duration::from_secs(10)).await.as_deref(), Some(CHANNEL_URI));
    post(&monitoring, "Marker: errors back to baseline", "high", "db-2").await;
    fake.sent_to(TOM.0, "Marker: errors back to baseline").await;
    let to_tom = told(&fake, TOM.0);
    assert!(!to_tom.iter().any(|t| t.contains("Rolling back")), "his own post came back: {to_tom:?}");
    assert!(!to_tom.iter().any(|t| t.contains("80%")), "the medium reached Telegram: {to_tom:?}");
    // The thread Sarah follows changed twice since (db-2 is another thread).
    wait_updated(&sarah, CHANNEL_URI, 4).await;
    assert_eq!(updated_count(&sarah, "notification://thread/db-1"), 2);

    // The other account heard nothing of this one, though its channel has the same name.
    assert_eq!(updated_count(&eve, CHANNEL_URI), 0, "{:?}", eve.service().updated);

    // Unsubscribed: no more Telegram; the stream now has no filter to apply, so it hears all.
    let gone = call_ok(&tom, "mttrly_unsubscribe_channel", json!({ "channel": "incidents" })).await;
    assert_eq!(gone["removed"], true, "{gone}");
    let again = call_ok(&tom, "mttrly_unsubscribe_channel", json!({ "channel": "incidents" })).await;
    assert_eq!(again["removed"], false, "{again}");
    post(&monitoring, "Resolved: pool back to normal", "critical", "db-1").await;
    assert_eq!(next_update(&mut listen, Duration::from_secs(10)).await.as_deref(), Some(CHANNEL_URI));
    wait_updated(&sarah, "notification://thread/db-1", 3).await;
    sarah.unsubscribe(UnsubscribeRequestParams::new("notification://thread/db-1")).await.unwrap();
    wait_updated(&sarah, CHANNEL_URI, 5).await;
    post(&monitoring, "Postmortem scheduled", "low", "db-1").await;
    wait_updated(&sarah, CHANNEL_URI, 6).await;
    assert_eq!(updated_count(&sarah, "notification://thread/db-1"), 3, "unsubscribed from the thread");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!told(&fake, TOM.0).iter().any(|t| t.contains("Resolved")), "unsubscribed, still told in Telegram");

    // The resources read what the tools read.
    let read = sarah.read_resource(rmcp::model::ReadResourceRequestParams::new(CHANNEL_URI)).await.unwrap();
    let rmcp::model::ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else { panic!() };
    let page: Value = serde_json::from_str(text).unwrap();
    assert_eq!(page["notifications"].as_array().map(Vec::len), Some(6), "{page}");
    let listed = sarah.list_all_resources().await.unwrap();
    assert!(listed.iter().any(|r| r.uri == CHANNEL_URI), "{listed:?}");
    let templates = sarah.list_all_resource_templates().await.unwrap();
    let templates: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(templates, ["notification://{channel}/recent", "notification://thread/{thread_id}"]);

    listen.cancel().await.ok();
    for s in [monitoring, sarah, eve, tom] {
        s.cancel().await.ok();
    }
    h.central.shutdown().await;
}
