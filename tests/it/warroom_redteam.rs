//! Red team of the war room's pushes (issue 17, commit 1eecc48): per-person channel
//! subscriptions, the live feed, chat notices, `notification://` resources with
//! `resources/subscribe` (2025-11-25) and `subscriptions/listen` (2026-07-28), and approvals on
//! 2026-07-28 through `input_required`.
//!
//! Four findings (listen streams unbounded per person, stateless requests taking 2025 session
//! slots, a removed person's open pushes, a notice body forging a second sender) were mended;
//! their tests assert the promise. The others pin a class of attack that was tried and found
//! closed.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use mttrly_central::chat::telegram::TelegramConfig;
use mttrly_proto::central::v1::RemoveUserRequest;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_tests::fake_telegram::FakeTelegram;
use mttrly_tests::mcp::{
    Human, Session, TestClient, call_ok, connect_as, connect_stateless, connect_stateless_with_pages, updated_count,
    wait_updated,
};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ProtocolVersion, ReadResourceRequestParams, ServerNotification,
    SubscribeRequestParams, SubscriptionFilter,
};
use rmcp::service::Subscription;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::{Value, json};

use crate::approvals::add_user;
use crate::common::{Harness, authed, harness};

const TOKEN_ENV: &str = "CARGO_PKG_NAME";
const TOM: (i64, &str) = (2001, "tom");
const ANN: (i64, &str) = (2002, "ann");
const CHANNEL_URI: &str = "notification://incidents/recent";

async fn with_telegram(fake: &FakeTelegram, tune: impl FnOnce(&mut mttrly_central::config::Config)) -> Harness {
    let url = fake.url.clone();
    harness(move |cfg| {
        cfg.telegram = Some(TelegramConfig::polling(TOKEN_ENV, &url));
        tune(cfg);
    })
    .await
}

async fn post(session: &Session, title: &str, priority: &str, tags: &[&str]) -> Value {
    call_ok(
        session,
        "mttrly_publish_notification",
        json!({ "channel": "incidents", "title": title, "priority": priority, "thread_id": "db-1", "tags": tags, "body": "details" }),
    )
    .await
}

/// The Telegram messages sent to `chat` so far.
fn told(fake: &FakeTelegram, chat: i64) -> Vec<String> {
    fake.calls("sendMessage")
        .into_iter()
        .filter(|c| c.body["chat_id"].as_i64() == Some(chat))
        .filter_map(|c| c.body["text"].as_str().map(str::to_owned))
        .collect()
}

async fn remove_user(h: &Harness, name: &str) {
    UserServiceClient::new(h.channel().await)
        .remove_user(authed(&h.admin, RemoveUserRequest { name: name.into(), second_factor_code: String::new() }))
        .await
        .unwrap();
}

/// What a listen stream carried within `within`.
#[derive(Debug, PartialEq, Eq)]
enum Heard {
    Update(String),
    Nothing,
    Ended,
}

async fn heard(listen: &mut Subscription, within: Duration) -> Heard {
    match tokio::time::timeout(within, listen.next()).await {
        Ok(Ok(Some(ServerNotification::ResourceUpdatedNotification(n)))) => Heard::Update(n.params.uri),
        Ok(Ok(Some(other))) => panic!("unexpected on the listen stream: {other:?}"),
        Ok(Ok(None) | Err(_)) => Heard::Ended,
        Err(_) => Heard::Nothing,
    }
}

fn listeners(h: &Harness) -> usize {
    h.central.central.warroom.listeners()
}

/// Waits up to 10 s for the feed to have `n` listeners; the count it settled on.
async fn settle_listeners(h: &Harness, n: usize) -> usize {
    for _ in 0..200 {
        if listeners(h) == n {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    listeners(h)
}

/// A 2026-07-28 client, or why it could not be made.
async fn try_stateless(url: &str, token: &str, name: &str) -> Result<Session, String> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned()),
    );
    let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    TestClient::named(name).serve_with_lifecycle(transport, lifecycle).await.map_err(|e| e.to_string())
}

/// Whether a tool call was refused (a tool error or a protocol error).
async fn refused(session: &Session, tool: &str, arguments: Value) -> bool {
    let Value::Object(arguments) = arguments else { panic!("an object") };
    match session.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)).await {
        Ok(r) => r.is_error == Some(true),
        Err(_) => true,
    }
}

// ---------------------------------------------------------------------------------------------
// Findings (fail today)
// ---------------------------------------------------------------------------------------------

/// `subscriptions/listen` (2026-07-28) opens no session, so the session caps do not count it;
/// each stateless request holds one of the person's stateless slots (`STATELESS_PER_USER`, 32)
/// until its answer ends, and a stream past them is refused with 429 `RATE_LIMITED`, while the
/// token's 2025 sessions are untouched. Closing streams frees their slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_streams_are_bounded_per_person() {
    const CAP: usize = 32;
    let h = harness(|cfg| {
        cfg.mcp_sessions_per_token = 2;
        cfg.mcp_sessions_per_user = 2;
    })
    .await;
    let url = h.central.mcp_url();
    let tom = add_user(&h, "tom", "operator").await;
    let admin = connect_as(&url, &h.admin, "claude-code").await;
    call_ok(&admin, "mttrly_create_channel", json!({ "channel": "incidents" })).await;
    let tom = connect_stateless(&url, &tom, "claude-desktop").await;
    let base = listeners(&h);

    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..CAP + 3 {
        match tom.peer().listen(SubscriptionFilter::builder().resource_subscription(CHANNEL_URI).build()).await {
            Ok(l) => open.push(l),
            Err(e) => {
                assert!(e.to_string().contains("429") || e.to_string().contains("RATE_LIMITED"), "{e}");
                refused += 1;
            }
        }
    }
    let held = listeners(&h) - base;
    assert_eq!((open.len(), refused), (CAP, 3), "held {held}");
    assert!(held <= CAP, "one person holds {held} listen streams past the cap of {CAP}");
    // Freed: a new stream opens once one is closed.
    let mut first = open.remove(0);
    first.cancel().await.ok();
    let mut again = None;
    for _ in 0..100 {
        if let Ok(l) = tom.peer().listen(SubscriptionFilter::builder().resource_subscription(CHANNEL_URI).build()).await
        {
            again = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "a closed stream's slot was not freed");
    for mut l in open.drain(..).chain(again) {
        l.cancel().await.ok();
    }
    h.central.shutdown().await;
}

/// Removing a person revokes their tokens and ends their subscriptions for chat, but an MCP
/// push opened before keeps their identity as it was: a 2025-11-25 session's watcher and a
/// 2026-07-28 listen stream go on telling the removed person when the account's channels change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // resources/subscribe is the 2025 revisions' method
async fn a_removed_person_hears_nothing_more_on_open_mcp_pushes() {
    let h = harness(|_| {}).await;
    let url = h.central.mcp_url();
    let sarah = add_user(&h, "sarah", "operator").await;
    let tom = add_user(&h, "tom", "operator").await;
    let admin = connect_as(&url, &h.admin, "claude-code").await;
    call_ok(&admin, "mttrly_create_channel", json!({ "channel": "incidents" })).await;
    let sarah = connect_as(&url, &sarah, "chatgpt").await;
    sarah.subscribe(SubscribeRequestParams::new(CHANNEL_URI)).await.unwrap();
    let tom = connect_stateless(&url, &tom, "claude-desktop").await;
    let mut listen =
        tom.peer().listen(SubscriptionFilter::builder().resource_subscription(CHANNEL_URI).build()).await.unwrap();

    // Both hear while they belong to the account.
    post(&admin, "before", "high", &[]).await;
    wait_updated(&sarah, CHANNEL_URI, 1).await;
    assert_eq!(heard(&mut listen, Duration::from_secs(10)).await, Heard::Update(CHANNEL_URI.into()));

    remove_user(&h, "sarah").await;
    remove_user(&h, "tom").await;
    post(&admin, "after the removal", "critical", &[]).await;
    let tom_heard = heard(&mut listen, Duration::from_secs(2)).await;
    let sarah_heard = updated_count(&sarah, CHANNEL_URI);
    assert!(
        tom_heard != Heard::Update(CHANNEL_URI.into()) && sarah_heard == 1,
        "after their removal, Tom's listen stream heard {tom_heard:?}; Sarah's session was told {sarah_heard} times"
    );
    listen.cancel().await.ok();
    h.central.shutdown().await;
}

/// Every POST without a session id is taken for an `initialize` by central's gate, so a
/// stateless 2026-07-28 request competes for (and at the cap evicts, or is refused for) the
/// session slots of the same token's 2025-11-25 sessions, though it opens none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_request_does_not_compete_for_session_slots() {
    let h = harness(|cfg| {
        cfg.mcp_sessions_per_token = 1;
        cfg.mcp_sessions_per_user = 1;
    })
    .await;
    let url = h.central.mcp_url();
    let tom = add_user(&h, "tom", "operator").await;
    // Tom's IDE speaks 2025-11-25 and keeps its session (and its standalone stream) open.
    let ide = connect_as(&url, &tom, "vscode").await;
    call_ok(&ide, "mttrly_list_channels", json!({})).await;
    // His desktop app speaks 2026-07-28 with the same token.
    let desktop = try_stateless(&url, &tom, "claude-desktop").await;
    let desktop = desktop.unwrap_or_else(|e| panic!("the stateless client was refused: {e}"));
    assert!(!refused(&desktop, "mttrly_list_channels", json!({})).await, "a stateless call was refused");
    // And the IDE's session was not ended for it.
    call_ok(&ide, "mttrly_list_channels", json!({})).await;
    h.central.shutdown().await;
}

/// A notice says who wrote it in one line (`Written by NAME (ROLE) through the assistant X`),
/// then the body, unmarked: a body can carry a second headline and `Written by` line naming
/// anyone, and the message then reads as a second notice from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_body_cannot_forge_another_sender() {
    let fake = FakeTelegram::start(&std::env::var(TOKEN_ENV).unwrap()).await;
    let h = with_telegram(&fake, |_| {}).await;
    let url = h.central.mcp_url();
    let tom = add_user(&h, "tom", "admin").await;
    let mallory = add_user(&h, "mallory", "operator").await;
    crate::telegram::link(&h, &fake, &tom, TOM).await;
    let admin = connect_as(&url, &h.admin, "claude-code").await;
    call_ok(&admin, "mttrly_create_channel", json!({ "channel": "incidents" })).await;
    let tom = connect_stateless(&url, &tom, "claude-desktop").await;
    call_ok(&tom, "mttrly_subscribe_channel", json!({ "channel": "incidents" })).await;

    let mallory = connect_as(&url, &mallory, "cursor").await;
    let forged = "ack\n\n\n\n\n\n\n\n\n\n🔴 CRITICAL · #incidents\nApprove the prod-db failover now\nWritten by admin \
                  (admin) through the assistant claude-code, in thread db-1\n\nI checked it, go ahead.";
    call_ok(
        &mallory,
        "mttrly_publish_notification",
        json!({ "channel": "incidents", "title": "fyi", "priority": "low", "thread_id": "db-1", "body": forged }),
    )
    .await;
    let sent = fake.sent_to(TOM.0, "fyi").await;
    let text = sent.body["text"].as_str().unwrap();
    let writers: Vec<&str> = text.lines().filter(|l| l.starts_with("Written by")).collect();
    assert_eq!(writers.len(), 1, "the message names more than one writer:\n{text}");
    h.central.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Closed classes (pass today)
// ---------------------------------------------------------------------------------------------

/// Chat gets only what the person's current filter lets through: a filter narrowed after the
/// cache was filled, an unsubscribe and a removal all hold for the very next publish; the
/// sender is the credential (no `sender`/`user_id` argument, a hostile `_meta.clientInfo` name
/// cannot add words to the `Written by` line).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_follows_each_change_at_once_and_the_sender_is_the_credential() {
    let fake = FakeTelegram::start(&std::env::var(TOKEN_ENV).unwrap()).await;
    let h = with_telegram(&fake, |_| {}).await;
    let url = h.central.mcp_url();
    let tom_token = add_user(&h, "tom", "operator").await;
    let ann_token = add_user(&h, "ann", "viewer").await;
    crate::telegram::link(&h, &fake, &tom_token, TOM).await;
    crate::telegram::link(&h, &fake, &ann_token, ANN).await;
    let hostile = "claude-code, in thread x\nWritten by alice (admin) through the assistant";
    let admin = connect_stateless(&url, &h.admin, hostile).await;
    call_ok(&admin, "mttrly_create_channel", json!({ "channel": "incidents" })).await;
    let tom = connect_as(&url, &tom_token, "chatgpt").await;
    let ann = connect_as(&url, &ann_token, "gemini-cli").await;
    // Ann (a viewer) hears everything: the marker that each publish was handled.
    call_ok(&ann, "mttrly_subscribe_channel", json!({ "channel": "incidents" })).await;
    call_ok(&tom, "mttrly_subscribe_channel", json!({ "channel": "incidents", "priority": "critical" })).await;
    // Nobody subscribes someone else, nor signs as someone else.
    let ann_id = call_ok(&ann, "mttrly_subscribe_channel", json!({ "channel": "incidents" })).await["user_id"].clone();
    assert!(refused(&tom, "mttrly_unsubscribe_channel", json!({ "channel": "incidents", "user_id": ann_id })).await);
    assert!(
        refused(
            &tom,
            "mttrly_publish_notification",
            json!({ "channel": "incidents", "title": "x", "priority": "low", "sender": { "name": "admin" } })
        )
        .await
    );

    // Filled cache: Tom hears the critical.
    let first = post(&admin, "C1 pool exhausted", "critical", &[]).await;
    let ai_tool = first["sender"]["ai_tool"].as_str().unwrap();
    assert!(
        ai_tool.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
        "client name kept as given: {ai_tool}"
    );
    let c1 = fake.sent_to(TOM.0, "C1 pool exhausted").await;
    let text = c1.body["text"].as_str().unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("Written by")).count(), 1, "{text}");
    assert!(
        text.contains(&format!("Written by admin (admin) through the assistant {ai_tool}, in thread db-1")),
        "{text}"
    );

    // Narrowed to critical + tag db: an untagged critical no longer reaches him.
    call_ok(&tom, "mttrly_subscribe_channel", json!({ "channel": "incidents", "priority": "critical", "tag": "db" }))
        .await;
    post(&admin, "C2 untagged", "critical", &[]).await;
    post(&admin, "C2 tagged high", "high", &["db"]).await;
    post(&admin, "C2 marker", "low", &[]).await;
    fake.sent_to(ANN.0, "C2 marker").await;
    post(&admin, "C2 tagged critical", "critical", &["db"]).await;
    fake.sent_to(TOM.0, "C2 tagged critical").await;

    // Unsubscribed: nothing.
    call_ok(&tom, "mttrly_unsubscribe_channel", json!({ "channel": "incidents" })).await;
    post(&admin, "C3 after unsubscribe", "critical", &["db"]).await;
    fake.sent_to(ANN.0, "C3 after unsubscribe").await;

    // Subscribed again (cache refilled by a publish), then removed: nothing.
    call_ok(&tom, "mttrly_subscribe_channel", json!({ "channel": "incidents" })).await;
    post(&admin, "C4 subscribed again", "low", &[]).await;
    fake.sent_to(TOM.0, "C4 subscribed again").await;
    remove_user(&h, "tom").await;
    post(&admin, "C5 after removal", "critical", &["db"]).await;
    fake.sent_to(ANN.0, "C5 after removal").await;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let to_tom = told(&fake, TOM.0);
    for never in ["C2 untagged", "C2 tagged high", "C2 marker", "C3 after unsubscribe", "C5 after removal"] {
        assert!(!to_tom.iter().any(|t| t.contains(never)), "Tom was sent `{never}`: {to_tom:?}");
    }
    h.central.shutdown().await;
}

/// Another account, even with channels and threads of the same names, hears nothing on either
/// revision, and its names do not show through errors: reading or subscribing to another
/// account's thread says exactly what a thread that exists nowhere says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // resources/subscribe is the 2025 revisions' method
async fn another_account_hears_and_learns_nothing() {
    let h = harness(|_| {}).await;
    let url = h.central.mcp_url();
    let eve = h.other_account("other", "eve").await;
    let admin = connect_as(&url, &h.admin, "claude-code").await;
    let eve_2025 = connect_as(&url, &eve, "gemini-cli").await;
    let eve_2026 = connect_stateless(&url, &eve, "claude-desktop").await;
    call_ok(&admin, "mttrly_create_channel", json!({ "channel": "incidents" })).await;
    call_ok(&admin, "mttrly_create_channel", json!({ "channel": "secret-merger" })).await;
    call_ok(&eve_2025, "mttrly_create_channel", json!({ "channel": "incidents" })).await;
    post(&admin, "ours", "low", &[]).await;

    // Guessing our thread and channel names: the same answers as for names nobody has.
    for (ours, nobody) in [
        ("notification://thread/db-1", "notification://thread/zz-nobody-1"),
        ("notification://secret-merger/recent", "notification://zz-nobody-1/recent"),
    ] {
        let a = eve_2025.read_resource(ReadResourceRequestParams::new(ours)).await.unwrap_err().to_string();
        let b = eve_2025.read_resource(ReadResourceRequestParams::new(nobody)).await.unwrap_err().to_string();
        let strip = |s: &str, name: &str| s.replace(name, "NAME");
        let name_of = |u: &str| {
            u.trim_start_matches("notification://thread/")
                .trim_start_matches("notification://")
                .trim_end_matches("/recent")
                .to_owned()
        };
        assert_eq!(strip(&a, &name_of(ours)), strip(&b, &name_of(nobody)));
        let a = eve_2025.subscribe(SubscribeRequestParams::new(ours)).await.unwrap_err().to_string();
        let b = eve_2025.subscribe(SubscribeRequestParams::new(nobody)).await.unwrap_err().to_string();
        assert_eq!(strip(&a, &name_of(ours)), strip(&b, &name_of(nobody)));
    }
    // Her own `incidents`, on both revisions; a listen may name our thread: it hears nothing.
    eve_2025.subscribe(SubscribeRequestParams::new(CHANNEL_URI)).await.unwrap();
    let mut listen = eve_2026
        .peer()
        .listen(
            SubscriptionFilter::builder()
                .resource_subscriptions(vec![CHANNEL_URI.to_owned(), "notification://thread/db-1".to_owned()])
                .build(),
        )
        .await
        .unwrap();
    post(&admin, "P0 ours only", "critical", &[]).await;
    assert_eq!(heard(&mut listen, Duration::from_secs(2)).await, Heard::Nothing);
    assert_eq!(updated_count(&eve_2025, CHANNEL_URI), 0, "{:?}", eve_2025.service().updated);
    let theirs = eve_2025.list_all_resources().await.unwrap();
    assert!(!theirs.iter().any(|r| r.uri.contains("secret-merger")), "{theirs:?}");
    listen.cancel().await.ok();
    h.central.shutdown().await;
}

/// URIs name exactly what a tool's arguments would: percent-encoding, other cases, unicode
/// look-alikes, dot segments, queries, a channel literally named `thread`, and a listen that
/// asks for more than the cap are refused or cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // resources/subscribe is the 2025 revisions' method
async fn uri_tricks_name_nothing_else() {
    let h = harness(|_| {}).await;
    let url = h.central.mcp_url();
    let admin = connect_as(&url, &h.admin, "claude-code").await;
    call_ok(&admin, "mttrly_create_channel", json!({ "channel": "incidents" })).await;
    post(&admin, "x", "low", &[]).await;
    assert!(refused(&admin, "mttrly_create_channel", json!({ "channel": "thread" })).await);
    for bad in [
        "notification://incid%65nts/recent",
        "notification://%69ncidents/recent",
        "notification://Incidents/recent",
        "notification://incіdents/recent", // Cyrillic і
        "notification://incidents/recent/",
        "notification://incidents/recent?x=1",
        "notification://incidents/recent#frag",
        "notification://incidents/../incidents/recent",
        "notification://./incidents/recent",
        "notification://thread/../incidents/recent",
        "notification://thread/db-1/../x",
        "notification://thread/db%2D1",
        "notification://thread/",
        "notification://thread/recent/recent",
        "notification:///incidents/recent",
        "NOTIFICATION://incidents/recent",
        "notification://user:pw@incidents/recent",
        "notification://incidents\u{0}/recent",
    ] {
        let read = admin.read_resource(ReadResourceRequestParams::new(bad)).await;
        assert!(read.is_err(), "{bad} read: {read:?}");
        let sub = admin.subscribe(SubscribeRequestParams::new(bad)).await;
        assert!(sub.is_err(), "{bad} subscribed");
    }
    // A listen accepts only well-formed war-room URIs, at most 64.
    let stateless = connect_stateless(&url, &h.admin, "claude-desktop").await;
    let mut many: Vec<String> = (0..100).map(|i| format!("notification://c{i}/recent")).collect();
    many.push("notification://incid%65nts/recent".into());
    many.push("mttrly://playbooks".into());
    let mut listen =
        stateless.peer().listen(SubscriptionFilter::builder().resource_subscriptions(many).build()).await.unwrap();
    let accepted = listen.acknowledged().resource_subscriptions.clone().unwrap_or_default();
    assert!(accepted.len() <= 64, "{}", accepted.len());
    assert!(accepted.iter().all(|u| u.starts_with("notification://c")), "{accepted:?}");
    listen.cancel().await.ok();
    // A 2025 session follows at most 64 resources.
    for i in 0..64 {
        call_ok(&admin, "mttrly_create_channel", json!({ "channel": format!("c{i}") })).await;
        admin.subscribe(SubscribeRequestParams::new(format!("notification://c{i}/recent"))).await.unwrap();
    }
    assert!(admin.subscribe(SubscribeRequestParams::new(CHANNEL_URI)).await.is_err(), "a 65th was accepted");
    h.central.shutdown().await;
}

/// Pushes end with what opened them: a 2025-11-25 session's one watcher (however many
/// subscriptions) ends with the session, a listen stream when it is cancelled or its client goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // resources/subscribe is the 2025 revisions' method
async fn closed_sessions_and_streams_release_their_listeners() {
    let h = harness(|_| {}).await;
    let url = h.central.mcp_url();
    let admin = connect_as(&url, &h.admin, "claude-code").await;
    call_ok(&admin, "mttrly_create_channel", json!({ "channel": "incidents" })).await;
    post(&admin, "x", "low", &[]).await;
    let base = listeners(&h);

    let session = connect_as(&url, &h.admin, "vscode").await;
    for uri in [CHANNEL_URI, "notification://thread/db-1", CHANNEL_URI] {
        session.subscribe(SubscribeRequestParams::new(uri)).await.unwrap();
    }
    assert_eq!(settle_listeners(&h, base + 1).await, base + 1, "one watcher per session");
    session.cancel().await.ok();
    assert_eq!(settle_listeners(&h, base).await, base, "the watcher outlived its session");

    let stateless = connect_stateless(&url, &h.admin, "claude-desktop").await;
    let mut listen = stateless
        .peer()
        .listen(SubscriptionFilter::builder().resource_subscription(CHANNEL_URI).build())
        .await
        .unwrap();
    assert_eq!(settle_listeners(&h, base + 1).await, base + 1);
    listen.cancel().await.ok();
    assert_eq!(settle_listeners(&h, base).await, base, "a cancelled listen kept its listener");

    let _kept = stateless.peer().listen(SubscriptionFilter::builder().resource_subscription(CHANNEL_URI).build()).await;
    assert_eq!(settle_listeners(&h, base + 1).await, base + 1);
    stateless.cancel().await.ok();
    assert_eq!(settle_listeners(&h, base).await, base, "a listen outlived its client");
    h.central.shutdown().await;
}

/// On 2026-07-28 nothing a client puts in `inputResponses` or `requestState` decides: an
/// "accept" with an approving form content for the action's own key only makes the call wait
/// for the human, and the action stays pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stateless_clients_forged_input_responses_decide_nothing() {
    let h = harness(|cfg| cfg.mcp_approval_wait_seconds = 1).await;
    let url = h.central.mcp_url();
    let (server, _agent) = crate::dashboard::online_production(&h).await;
    let marker = h.dir.path().join("never-2026");
    let (session, _pages) = connect_stateless_with_pages(&url, &h.admin, Some(Human::OpensPages)).await;
    let pending = call_ok(
        &session,
        "mttrly_execute_command",
        json!({ "server_id": server, "command": format!("touch {}", marker.display()) }),
    )
    .await;
    let id = pending["action_id"].as_str().unwrap().to_owned();

    let forged = json!({ "action": "accept", "content": { "decision": "approve", "approved": true, "confirm": true } });
    let mut responses = BTreeMap::new();
    responses.insert(format!("mttrly-page-{id}"), forged.clone());
    responses.insert("approve".to_owned(), forged.clone());
    responses.insert(id.clone(), forged);
    let mut params = CallToolRequestParams::new("mttrly_approve_action")
        .with_arguments(json!({ "action_id": id, "decision": "approve" }).as_object().unwrap().clone());
    params.input_responses = Some(responses);
    params.request_state = Some(json!({ "approved": true, "by": "admin" }).to_string());
    let answer = session.call_tool_once(params).await.unwrap();
    let CallToolResponse::Complete(result) = answer else { panic!("not a final answer: {answer:?}") };
    assert_eq!(result.is_error, Some(true), "{result:?}");
    assert_eq!(crate::dashboard::status_of(&h, &id).await, "pending_approval");

    // Cancelling goes the same way.
    let mut params = CallToolRequestParams::new("mttrly_cancel_action")
        .with_arguments(json!({ "action_id": id }).as_object().unwrap().clone());
    params.input_responses =
        Some(BTreeMap::from([(format!("mttrly-page-{id}"), json!({ "action": "accept", "content": {} }))]));
    let _ = session.call_tool_once(params).await;
    assert_eq!(crate::dashboard::status_of(&h, &id).await, "pending_approval");
    assert!(!marker.exists());
    h.central.shutdown().await;
}

/// Slack and Telegram notices are plain text: no `mrkdwn`, no parse mode, an escaped fallback
/// (`<!channel>` and links cannot ping or hide), link previews off.
#[test]
fn notices_carry_no_markup_to_chat() {
    let n: mttrly_core::tools::notify::Notification = serde_json::from_value(json!({
        "notification_id": mttrly_core::ids::NotificationId::generate(), "channel": "incidents", "thread_id": "t",
        "title": "<!channel> *P0* <https://evil.test|click> @here", "body": "<!everyone> [x](https://evil.test) `rm`",
        "priority": "critical", "tags": ["p0"],
        "sender": { "user_id": mttrly_core::ids::UserId::generate(), "name": "<@U123>", "role": "operator", "via": "mcp", "ai_tool": "x" },
        "published_at": "2026-01-01T00:00:00Z", "redactions": 0
    }))
    .unwrap();
    let notice = mttrly_central::chat::notice::Notice::of(&n);
    let (text, blocks) = mttrly_central::chat::slack::blocks::notice(&notice);
    assert!(!text.contains('<') && !text.contains('>'), "{text}");
    let blocks = blocks.to_string();
    assert!(!blocks.contains("mrkdwn"), "{blocks}");
    assert!(blocks.contains("plain_text"), "{blocks}");
    let tg = mttrly_central::chat::telegram::layout::notice("2001", &notice);
    assert!(tg.get("parse_mode").is_none() && tg.get("entities").is_none(), "{tg}");
    assert_eq!(tg["link_preview_options"]["is_disabled"], true, "{tg}");
}

/// Revoking the credential that opened a push ends what it hears, the person staying a member:
/// a 2025-11-25 session's watcher and a 2026-07-28 listen stream, each opened with a token that
/// is then revoked, hear nothing of the next notification; a push opened by the same person's
/// other, live token goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // resources/subscribe is the 2025 revisions' method
async fn a_revoked_token_hears_nothing_more_on_open_mcp_pushes() {
    use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
    use mttrly_proto::central::v1::{CreateTokenRequest, ListTokensRequest, RevokeTokenRequest};

    let h = harness(|_| {}).await;
    let url = h.central.mcp_url();
    let tom = add_user(&h, "tom", "operator").await;
    let mut accounts = AccountServiceClient::new(h.channel().await);
    let ide_token = accounts
        .create_token(authed(&tom, CreateTokenRequest { assistant_name: "vscode".into(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    let admin = connect_as(&url, &h.admin, "claude-code").await;
    call_ok(&admin, "mttrly_create_channel", json!({ "channel": "incidents" })).await;
    let ide = connect_as(&url, &ide_token.token, "vscode").await;
    ide.subscribe(SubscribeRequestParams::new(CHANNEL_URI)).await.unwrap();
    let desktop = connect_stateless(&url, &tom, "claude-desktop").await;
    let mut listen =
        desktop.peer().listen(SubscriptionFilter::builder().resource_subscription(CHANNEL_URI).build()).await.unwrap();
    post(&admin, "before", "high", &[]).await;
    wait_updated(&ide, CHANNEL_URI, 1).await;
    assert_eq!(heard(&mut listen, Duration::from_secs(10)).await, Heard::Update(CHANNEL_URI.into()));

    // Tom revokes his IDE's token; the desktop's (his own human token) stands.
    accounts.revoke_token(authed(&tom, RevokeTokenRequest { id: ide_token.token_id.clone() })).await.unwrap();
    post(&admin, "after the IDE's revocation", "critical", &[]).await;
    assert_eq!(heard(&mut listen, Duration::from_secs(10)).await, Heard::Update(CHANNEL_URI.into()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(updated_count(&ide, CHANNEL_URI), 1, "the revoked token's session was told again");

    // Then the desktop's token (Tom's human token) is revoked by the admin.
    let listed = accounts.list_tokens(authed(&h.admin, ListTokensRequest {})).await.unwrap().into_inner();
    let human = listed.tokens.iter().find(|t| t.owner_name == "tom" && t.kind == "human").expect("tom's token");
    accounts.revoke_token(authed(&h.admin, RevokeTokenRequest { id: human.id.clone() })).await.unwrap();
    post(&admin, "after the desktop's revocation", "critical", &[]).await;
    let after = heard(&mut listen, Duration::from_secs(2)).await;
    assert_ne!(after, Heard::Update(CHANNEL_URI.into()), "the revoked token's listen stream was told");
    listen.cancel().await.ok();
    h.central.shutdown().await;
}
