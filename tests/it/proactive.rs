//! Proactive events end to end (issue 15, item 7): a real agent whose CPU series the test drives
//! raises events through its detectors → central stores them → the brief shows them → an
//! assistant's false-positive acknowledgement is only a suggestion → three false-positive verdicts
//! by people mute the detector → the fourth event is stored muted and the brief from the previous
//! brief's `next_since` says so and why → reading a brief moves nothing → another tenant's event
//! id is not found, exactly like an unknown one.
//!
//! The agent runs in this process (the real `mttrly_agent::run`, its real stream to a real
//! central) with a [`mttrly_agent::Sampler`] in place of the host's counters: the only seam, set
//! through `RunOptions`, which the binary never fills.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mttrly_agent::detectors::DetectorConfig;
use mttrly_core::ids::EventId;
use mttrly_core::{Plan, Role, ToolSurface};
use mttrly_proto::agent::v1::HostMetrics;
use mttrly_proto::central::v1::AddServerRequest;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use serde_json::{Value, json};

use crate::common::{self, Harness, authed, call_tool};

/// The CPU value the fake sampler reports, as f64 bits, and a counter for its ±1 noise.
struct Dial {
    cpu: AtomicU64,
    ticks: AtomicU64,
}

impl Dial {
    fn set(&self, cpu: f64) {
        self.cpu.store(cpu.to_bits(), Ordering::SeqCst);
    }

    fn sample(&self) -> HostMetrics {
        let tick = self.ticks.fetch_add(1, Ordering::SeqCst);
        let noise = if tick.is_multiple_of(2) { 1.0 } else { -1.0 };
        HostMetrics {
            cpu_percent: f64::from_bits(self.cpu.load(Ordering::SeqCst)) + noise,
            memory_total_bytes: 8 << 30,
            memory_used_bytes: 2 << 30,
            load_1: 0.2,
            uptime_seconds: 1_000,
            ..HostMetrics::default()
        }
    }
}

/// A human API token of a new user of `account` with `role`.
async fn user_token(h: &Harness, account: &mttrly_core::ids::AccountId, name: &str, role: Role) -> String {
    let users = h.central.central.db.account(account).users();
    let user = users.create(name, role).await.unwrap();
    let token = mttrly_central::secrets::generate(mttrly_central::secrets::SecretKind::Human);
    users.insert_token(&mttrly_central::secrets::hash(&token), &user, None, &ToolSurface::ALL).await.unwrap();
    token
}

/// The stored events, oldest first: (id, state, metric).
async fn stored(h: &Harness) -> Vec<(String, String, String)> {
    h.central
        .central
        .db
        .with_connection_for_tests(|conn| {
            conn.prepare("SELECT id, state, metric FROM proactive_events ORDER BY detected_at, id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .await
        .unwrap()
}

/// Drives one episode: CPU up until a new event is stored, then back down until the series has
/// calmed (clear_after intervals and a margin). Returns the new event's (id, state).
async fn episode(h: &Harness, dial: &Dial) -> (String, String) {
    let before = stored(h).await.len();
    dial.set(90.0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let event = loop {
        let events = stored(h).await;
        if events.len() > before {
            assert_eq!(events.len(), before + 1, "one event per episode: {events:?}");
            break events[before].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no event within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(event.2, "cpu_percent");
    dial.set(20.0);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(stored(h).await.len(), before + 1, "falling back to the baseline is no event of its own");
    (event.0, event.1)
}

/// A person's own verdict: `CallTool` with their token and no MCP client behind it (the API a
/// CLI uses), so the call is theirs, not an assistant's.
async fn ack(h: &Harness, token: &str, id: &str, verdict: &str) -> (bool, Value) {
    use mttrly_proto::central::v1::CallToolRequest;
    use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
    let request = CallToolRequest {
        tool_id: "mttrly_acknowledge_proactive_event".into(),
        arguments_json: json!({ "event_id": id, "verdict": verdict }).to_string(),
        client_name: String::new(),
    };
    let r = ToolServiceClient::new(h.channel().await).call_tool(authed(token, request)).await.unwrap().into_inner();
    (r.is_error, serde_json::from_str(&r.structured_json).unwrap())
}

/// The same through an MCP client (`claude-code`): the assistant's, on the token's human's behalf.
async fn assistant_ack(h: &Harness, token: &str, id: &str, verdict: &str) -> (bool, Value) {
    call_tool(
        h.channel().await,
        token,
        "mttrly_acknowledge_proactive_event",
        json!({ "event_id": id, "verdict": verdict }),
    )
    .await
}

/// The brief from `since` (the previous brief's `next_since`), or of the last 24 hours.
async fn brief(h: &Harness, token: &str, since: Option<&Value>) -> Value {
    let args = since.map_or_else(|| json!({}), |s| json!({ "since": s }));
    let (error, out) = call_tool(h.channel().await, token, "mttrly_get_morning_brief", args).await;
    assert!(!error, "{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_from_a_real_agent_to_the_brief_and_a_noisy_detector_is_muted() {
    let h = common::harness(common::fast_heartbeats).await;
    let db = &h.central.central.db;
    let (account, _) = db.first_account().await.unwrap().unwrap();
    let alice = h.admin.clone();
    let bob = user_token(&h, &account, "bob", Role::Operator).await;

    let added = ServerServiceClient::new(h.channel().await)
        .add_server(authed(&alice, AddServerRequest { name: "web-1".into(), environment: 2 }))
        .await
        .unwrap()
        .into_inner();
    let state = h.dir.path().join("agent");
    mttrly_agent::enroll::enroll(h.central.grpc_url(), &added.install_token, None, &state, false).await.unwrap();
    let dial = Arc::new(Dial { cpu: AtomicU64::new(20f64.to_bits()), ticks: AtomicU64::new(0) });
    let mut options = mttrly_agent::RunOptions::new(state, mttrly_agent::policy::LocalPolicy::default());
    options.detectors = DetectorConfig { warmup: 6, persist: 2, clear_after: 2, ..DetectorConfig::default() };
    let source = Arc::clone(&dial);
    options.sampler = Some(mttrly_agent::Sampler(Arc::new(move || source.sample())));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(mttrly_agent::run(options, stopped));

    // Baseline: warm the detectors up; steady noise raises nothing.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(stored(&h).await.is_empty(), "noise alone raised an event");

    // 1: raised, stored new, shown in Alice's first brief.
    let (first, state) = episode(&h, &dial).await;
    assert_eq!(state, "new");
    let b = brief(&h, &alice, None).await;
    assert_eq!(b["first_brief"], true);
    assert_eq!((b["more"].clone(), b["more_items"].clone()), (json!(false), json!(0)));
    let anomalies = b["anomalies"].as_array().unwrap();
    assert_eq!(anomalies.len(), 1, "{b}");
    assert_eq!(anomalies[0]["latest"]["event_id"], first.as_str());
    assert_eq!(anomalies[0]["latest"]["detector"], "ewma+mad");
    assert_eq!(anomalies[0]["occurrences"], 1);
    assert!(anomalies[0]["latest"]["summary"].as_str().unwrap().starts_with("cpu_percent rose at"), "{b}");
    assert_eq!(b["muted"], json!([]));
    let since = b["next_since"].clone();

    // An assistant's verdict is a suggestion: shown on the event, counted nowhere.
    let (error, s) = assistant_ack(&h, &alice, &first, "false_positive").await;
    assert!(!error, "{s}");
    assert_eq!(
        (s["recorded_as"].clone(), s["counted"].clone(), s["state"].clone()),
        (json!("suggestion"), json!(false), json!("new"))
    );
    assert_eq!(s["false_positive_budget_remaining"], 3);
    let shown = brief(&h, &alice, None).await;
    let suggestion = &shown["anomalies"][0]["latest"]["suggestion"];
    assert_eq!(
        (suggestion["verdict"].clone(), suggestion["client_name"].clone()),
        (json!("false_positive"), json!("claude-code"))
    );

    // Acknowledging twice counts once.
    let (error, a) = ack(&h, &alice, &first, "false_positive").await;
    assert!(!error, "{a}");
    assert_eq!((a["counted"].clone(), a["false_positive_budget_remaining"].clone()), (json!(true), json!(2)));
    assert_eq!(a["recorded_as"], "verdict");
    let (_, again) = ack(&h, &bob, &first, "false_positive").await;
    assert_eq!((again["counted"].clone(), again["false_positive_budget_remaining"].clone()), (json!(false), json!(2)));
    let (error, flip) = ack(&h, &alice, &first, "accepted").await;
    assert!(error && flip["code"] == "VALIDATION_ERROR", "the first verdict stands: {flip}");

    // 2 and 3: two more false positives mute the detector for this server and metric.
    let (second, _) = episode(&h, &dial).await;
    let (_, a) = ack(&h, &alice, &second, "false_positive").await;
    assert_eq!(a["detector_muted"], false);
    let (third, _) = episode(&h, &dial).await;
    let (_, a) = ack(&h, &alice, &third, "false_positive").await;
    assert_eq!(a["detector_muted"], true, "{a}");
    assert!(a["mute_reason"].as_str().unwrap().starts_with("3 false positives in a row"), "{a}");
    assert_eq!(a["false_positive_budget_remaining"], 3, "the run starts over under the mute");

    // 4: stored, muted, not dropped; the brief says so and why.
    let (fourth, state) = episode(&h, &dial).await;
    assert_eq!(state, "muted");
    let b = brief(&h, &alice, Some(&since)).await;
    assert_eq!(b["first_brief"], false);
    assert_eq!(b["since"], since);
    let anomalies = b["anomalies"].as_array().unwrap();
    assert_eq!(anomalies.len(), 1, "events 2 and 3, one line: {b}");
    assert_eq!(
        (anomalies[0]["occurrences"].clone(), anomalies[0]["latest"]["event_id"].clone()),
        (json!(2), json!(third))
    );
    let muted = b["muted"].as_array().unwrap();
    assert_eq!(muted.len(), 1, "{b}");
    assert_eq!(muted[0]["metric"], "cpu_percent");
    assert_eq!(muted[0]["muted_events"], 1);
    assert_eq!(muted[0]["latest_event_id"], fourth.as_str());
    assert!(muted[0]["reason"].as_str().unwrap().contains("3 false positives in a row"), "{b}");
    let until: jiff::Timestamp = muted[0]["muted_until"].as_str().unwrap().parse().unwrap();
    let day = until.as_millisecond() - jiff::Timestamp::now().as_millisecond();
    assert!((23 * 3_600_000..=24 * 3_600_000).contains(&day), "a first mute lasts a day: {day} ms");

    // Reading moved nothing: the same call answers the same. From its end, nothing new; without
    // a `since`, Bob sees the whole 24 h window.
    let reread = brief(&h, &alice, Some(&since)).await;
    assert_eq!((reread["anomalies"].clone(), reread["since"].clone()), (b["anomalies"].clone(), b["since"].clone()));
    let again = brief(&h, &alice, Some(&b["next_since"])).await;
    assert_eq!(
        (again["anomalies"].clone(), again["muted"].as_array().unwrap().len()),
        (json!([]), 1),
        "the mute still runs"
    );
    let b = brief(&h, &bob, None).await;
    assert_eq!(b["first_brief"], true);
    assert_eq!(b["anomalies"][0]["occurrences"], 3);
    assert_eq!(b["muted"][0]["muted_events"], 1);

    // Another tenant: its human cannot see, acknowledge or tell apart our event from none at all.
    let eve = mttrly_central::secrets::generate(mttrly_central::secrets::SecretKind::Human);
    db.create_tenant("other", Plan::DeploymentCrew, "eve", &mttrly_central::secrets::hash(&eve)).await.unwrap();
    let (error, theirs) = ack(&h, &eve, &fourth, "accepted").await;
    let (_, unknown) = ack(&h, &eve, EventId::generate().as_str(), "accepted").await;
    assert!(error, "{theirs}");
    assert_eq!(theirs["code"], unknown["code"]);
    assert_eq!(theirs["code"], "NOT_FOUND");
    let b = brief(&h, &eve, None).await;
    assert_eq!((b["anomalies"].clone(), b["muted"].clone()), (json!([]), json!([])));
    assert_eq!(stored(&h).await.iter().find(|e| e.0 == fourth).map(|e| e.1.as_str()), Some("muted"), "untouched");

    // Everything was audited: four events stored (one muted) and the mute itself. The audit
    // writer is asynchronous: wait for its rows.
    let count = |subject: &'static str| async move {
        db.with_connection_for_tests(move |conn| {
            conn.query_row("SELECT count(*) FROM audit_log WHERE subject = ?1", [subject], |r| r.get::<_, i64>(0))
        })
        .await
        .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count("proactive_event").await < 4 || count("proactive_budget_muted").await < 1 {
        assert!(tokio::time::Instant::now() < deadline, "audit rows missing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((count("proactive_event").await, count("proactive_budget_muted").await), (4, 1));

    let _ = stop.send(true);
    let _ = agent.await;
    h.central.shutdown().await;
}
