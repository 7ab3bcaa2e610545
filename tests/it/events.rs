//! The event bus: published after durability, in audit order per account, and never held up by
//! a subscriber that stopped reading; approval prompts driven by it deliver exactly once.

#![allow(clippy::unwrap_used, clippy::cast_possible_wrap)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mttrly_central::audit::AuditLog;
use mttrly_central::db::Db;
use mttrly_central::db::actions::ActionRow;
use mttrly_central::events::{Bus, Event, Next, Payload, Recorded};
use mttrly_central::notify::{ApprovalPrompt, DeliveryError, Notifier, Prompts};
use mttrly_core::action::{ActionContent, ActionState};
use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::{AccountId, ActionId, ServerId, UserId};
use mttrly_core::{Environment, Principal, Source};
use tokio::sync::watch;

fn event(account: &AccountId, producer: usize, i: usize) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: account.clone(),
        server_id: None,
        actor: AuditActor::System,
        source: Source::Api,
        kind: AuditKind::ToolCall,
        subject: "mttrly_list_servers".into(),
        parameters: serde_json::json!({ "producer": producer, "i": i }),
        outcome: AuditOutcome::Ok,
        duration_ms: Some(1),
    }
}

struct Log {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    audit: AuditLog,
    _db: Db,
}

fn start(bus: &Bus) -> Log {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("central.db");
    let db = Db::open(&path).unwrap();
    let audit = AuditLog::start(&db, bus.clone());
    Log { _dir: dir, path, audit, _db: db }
}

impl Log {
    /// Everything appended is committed and announced; the log's last handle goes.
    async fn stop(self) {
        self.audit.flush().await;
        drop(self.audit);
    }
}

/// Reads events until `n` arrived; panics on a lag (these readers must keep up).
async fn read(events: &mut mttrly_central::events::Subscription, n: usize) -> Vec<Arc<Event>> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), events.next()).await.expect("events stopped coming") {
            Next::Event(e) => got.push(e),
            Next::Lagged(missed) => panic!("a reader that keeps up lagged by {missed}"),
            Next::Closed => panic!("the bus closed after {} events", got.len()),
        }
    }
    got
}

fn producer_and_index(event: &Event) -> (u64, u64) {
    let p: serde_json::Value = serde_json::from_str(&event.row.parameters_json).unwrap();
    (p["producer"].as_u64().unwrap(), p["i"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publish_order_is_audit_order_per_account_under_concurrent_producers() {
    let bus = Bus::default();
    let mut events = bus.subscribe();
    let log = start(&bus);
    let accounts: Vec<AccountId> = (0..3).map(|_| AccountId::generate()).collect();
    let (producers, each) = (12, 800);
    let mut tasks = Vec::new();
    for p in 0..producers {
        let (audit, account) = (log.audit.clone(), accounts[p % accounts.len()].clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                if i % 97 == 0 {
                    // Mix in writers that wait for durability, as the action engine does.
                    audit.append_durable(event(&account, p, i)).await.unwrap();
                } else {
                    audit.append(event(&account, p, i));
                }
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    let got = read(&mut events, producers * each).await;
    for t in tasks {
        t.await.unwrap();
    }
    log.audit.flush().await;
    assert!(events.try_next().is_none(), "more events than audited rows");

    let mut last_seq: HashMap<AccountId, u64> = HashMap::new();
    let mut last_i: HashMap<u64, u64> = HashMap::new();
    let mut seen = HashSet::new();
    for e in &got {
        let prev = last_seq.insert(e.account_id.clone(), e.seq).unwrap_or(0);
        assert_eq!(e.seq, prev + 1, "account {} jumped from {prev} to {}", e.account_id, e.seq);
        let (p, i) = producer_and_index(e);
        assert!(seen.insert((p, i)), "event {p}/{i} published twice");
        // One producer's events stay in its own order too.
        if let Some(before) = last_i.insert(p, i) {
            assert!(i > before, "producer {p}: {i} after {before}");
        }
        assert!(matches!(e.payload, Payload::ToolCall));
    }
    assert_eq!(seen.len(), producers * each);

    // Exactly the rows the log holds, with the same hashes.
    let conn = rusqlite::Connection::open(&log.path).unwrap();
    let stored: i64 = conn.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0)).unwrap();
    assert_eq!(usize::try_from(stored).unwrap(), got.len());
    for e in got.iter().step_by(331) {
        let hash: Vec<u8> = conn
            .query_row(
                "SELECT hash FROM audit_log WHERE account_id = ?1 AND seq = ?2",
                rusqlite::params![e.account_id.as_str(), e.seq as i64],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(hash, e.hash);
    }
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_blocks_neither_the_writer_nor_the_others() {
    let capacity = 4096;
    let bus = Bus::new(capacity);
    let mut stuck = bus.subscribe();
    let mut live = bus.subscribe();
    let log = start(&bus);
    let account = AccountId::generate();
    let (chunks, each) = (10, 1000);
    for c in 0..chunks {
        for i in 0..each {
            log.audit.append(event(&account, c, i));
        }
        tokio::time::timeout(Duration::from_secs(30), log.audit.flush())
            .await
            .expect("the writer was held up by a subscriber");
        let got = read(&mut live, each).await;
        assert_eq!(got.last().unwrap().seq, ((c + 1) * each) as u64);
    }
    // The stuck one is told how much it missed, then reads on from the oldest event still held.
    match stuck.next().await {
        Next::Lagged(missed) => assert_eq!(missed, (chunks * each - capacity) as u64),
        other => panic!("expected a lag, got {other:?}"),
    }
    match stuck.next().await {
        Next::Event(e) => assert_eq!(e.seq, (chunks * each - capacity + 1) as u64),
        other => panic!("expected the oldest held event, got {other:?}"),
    }
    log.stop().await;
    drop(bus);
    assert!(matches!(live.next().await, Next::Closed), "the bus closes with its last publisher");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_is_only_published_once_its_row_is_committed() {
    let bus = Bus::default();
    let mut events = bus.subscribe();
    let log = start(&bus);
    let path = log.path.clone();
    let total = 3000;
    // The subscriber reads each event's row from another connection as soon as it hears of it.
    let checker = tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = runtime.block_on(read(&mut events, total));
        for e in got {
            let hash: Option<Vec<u8>> = conn
                .query_row(
                    "SELECT hash FROM audit_log WHERE account_id = ?1 AND seq = ?2",
                    rusqlite::params![e.account_id.as_str(), e.seq as i64],
                    |r| r.get(0),
                )
                .ok();
            assert_eq!(hash.as_deref(), Some(e.hash.as_slice()), "event {} seen before its row was committed", e.seq);
        }
    });
    let accounts: Vec<AccountId> = (0..4).map(|_| AccountId::generate()).collect();
    for i in 0..total {
        log.audit.append(event(&accounts[i % 4], 0, i));
        if i % 200 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    checker.await.unwrap();
    log.stop().await;
}

/// A notifier that counts deliveries and can be told to fail.
struct Counting {
    delivered: Mutex<Vec<String>>,
    fail: bool,
}

impl Notifier for Counting {
    fn name(&self) -> String {
        "counting".into()
    }
    fn deliver(&self, prompt: &ApprovalPrompt) -> Result<(), DeliveryError> {
        self.delivered.lock().unwrap().push(prompt.action_id.clone());
        if self.fail { Err(DeliveryError::Status(503)) } else { Ok(()) }
    }
    fn max_duration(&self) -> Duration {
        Duration::from_secs(1)
    }
}

fn pending_action(account: &AccountId) -> ActionRow {
    ActionRow {
        id: ActionId::generate(),
        account_id: account.clone(),
        server_id: ServerId::generate(),
        server_name: "web-1".into(),
        environment: Environment::Production,
        content_sha256: ActionContent::Decommission.content_sha256(),
        content: ActionContent::Decommission,
        description: "decommission web-1".into(),
        reason: None,
        requested_by: Principal::Human { user_id: UserId::generate(), name: "ana".into() },
        requested_via: Source::Cli,
        status: ActionState::PendingApproval,
        approvals_required: 1,
        created_at: 0,
        updated_at: 0,
        expires_at: 0,
        result: None,
    }
}

fn creation(action: &ActionRow) -> Recorded {
    Recorded::new(
        AuditEvent {
            at: jiff::Timestamp::now(),
            account_id: action.account_id.clone(),
            server_id: Some(action.server_id.clone()),
            actor: AuditActor::System,
            source: Source::Cli,
            kind: AuditKind::ToolCall,
            subject: action.id.to_string(),
            parameters: serde_json::json!({ "created": "decommission" }),
            outcome: AuditOutcome::Ok,
            duration_ms: None,
        },
        Payload::ActionCreated(Arc::new(action.clone())),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_ride_the_bus_and_are_delivered_exactly_once_even_after_a_lag() {
    for fail in [false, true] {
        // A ring of 8 and a burst of 200 events right behind the creation: the prompt task lags.
        let bus = Bus::new(8);
        let log = start(&bus);
        let notifier = Arc::new(Counting { delivered: Mutex::new(Vec::new()), fail });
        let prompts = Prompts::new(vec![Arc::clone(&notifier) as Arc<dyn Notifier>], None);
        let (stop_tx, stop) = watch::channel(false);
        let task = prompts.spawn(&bus, log.audit.clone(), stop);
        let account = AccountId::generate();
        let mut tickets = Vec::new();
        let actions: Vec<ActionRow> = (0..5).map(|_| pending_action(&account)).collect();
        for action in &actions {
            tickets.push(prompts.record_and_wait(&log.audit, creation(action), Arc::new(action.clone())));
            for i in 0..200 {
                log.audit.append(event(&account, 0, i));
            }
        }
        for ticket in tickets {
            let delivery = prompts.outcome(ticket, Duration::from_secs(30)).await;
            assert_eq!(delivery.delivered, !fail);
            assert_eq!(delivery.failures.len(), usize::from(fail));
        }
        log.audit.flush().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut delivered = notifier.delivered.lock().unwrap().clone();
        delivered.sort();
        let mut want: Vec<String> = actions.iter().map(|a| a.id.to_string()).collect();
        want.sort();
        assert_eq!(delivered, want, "each prompt exactly once");
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        log.stop().await;
    }
}

/// A notifier that succeeds only if the prompt's creation row is already committed.
struct Checking {
    path: std::path::PathBuf,
    calls: Arc<AtomicUsize>,
}
impl Notifier for Checking {
    fn name(&self) -> String {
        "checking".into()
    }
    fn deliver(&self, prompt: &ApprovalPrompt) -> Result<(), DeliveryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let conn = rusqlite::Connection::open(&self.path).map_err(|e| DeliveryError::Transport(Box::new(e)))?;
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM audit_log WHERE subject = ?1", [&prompt.action_id], |r| r.get(0))
            .map_err(|e| DeliveryError::Transport(Box::new(e)))?;
        if rows == 1 {
            Ok(())
        } else {
            Err(DeliveryError::Transport(format!("the creation of {} is not committed", prompt.action_id).into()))
        }
    }
    fn max_duration(&self) -> Duration {
        Duration::from_secs(1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_waits_for_its_creation_to_be_durable_and_stopping_answers_undelivered() {
    let bus = Bus::default();
    let log = start(&bus);
    let calls = Arc::new(AtomicUsize::new(0));
    let prompts = Prompts::new(
        vec![Arc::new(Checking { path: log.path.clone(), calls: Arc::clone(&calls) }) as Arc<dyn Notifier>],
        None,
    );
    let (stop_tx, stop) = watch::channel(false);
    let task = prompts.spawn(&bus, log.audit.clone(), stop);
    let account = AccountId::generate();
    for _ in 0..20 {
        let action = pending_action(&account);
        let ticket = prompts.record_and_wait(&log.audit, creation(&action), Arc::new(action));
        let delivery = prompts.outcome(ticket, Duration::from_secs(30)).await;
        assert!(delivery.delivered, "{:?}", delivery.failures);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 20);

    // Once the prompt task stops, a waiting submitter hears "undelivered" (its action fails
    // closed) at once, not at its deadline.
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let action = pending_action(&account);
    let ticket = prompts.record_and_wait(&log.audit, creation(&action), Arc::new(action));
    let started = std::time::Instant::now();
    let delivery = prompts.outcome(ticket, Duration::from_secs(2)).await;
    assert!(!delivery.delivered);
    assert!(started.elapsed() <= Duration::from_secs(3));
    log.stop().await;
}
