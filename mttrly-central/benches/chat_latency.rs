//! Telegram approval latency on loopback, release build: central (2-worker runtime) with a real
//! agent in the same process over real gRPC, its bot polling a fake Bot API (the tests' own,
//! `tests/src/fake_telegram.rs`, included as is) on loopback.
//!
//! (a) An action becomes pending (its `created_at`) → the fake receives `sendMessage`
//!     (the Bot API's wall clock, 1 ms resolution). Goal: < 50 ms median.
//! (b) A tap is injected into `getUpdates` → the agent starts the command (its `started_at`,
//!     agent clock, 1 ms resolution). Goal: < 20 ms median.
//! Also: the tap → `answerCallbackQuery` (the spinner stops), and the tap → `editMessageText`
//! showing the result.
//!
//! cargo bench -p mttrly-central --bench chat_latency
//! (`CHAT_BENCH_RUNS`, default 200.)

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::print_stdout,
    missing_docs,
    unreachable_pub
)]

#[path = "../../tests/src/fake_telegram.rs"]
mod fake_telegram;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_telegram::FakeTelegram;
use mttrly_central::chat::telegram::TelegramConfig;
use mttrly_central::config::Config;
use mttrly_central::server::start;
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_proto::central::v1::{AddServerRequest, AddUserRequest, CallToolRequest, GetActionRequest, LinkChatRequest};
use serde_json::Value;

/// The variable holding the bot token: one Cargo sets when it runs a bench (a bench cannot set
/// variables: `unsafe_code` is forbidden).
const TOKEN_ENV: &str = "CARGO_PKG_NAME";

const BOB: (i64, &str) = (1001, "bob");

fn authed<T>(token: &str, body: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(body);
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!("{name}: median {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} runs)", p(0.5), p(0.95), p(1.0), samples.len());
}

fn ms_between(earlier_ms: i64, later: SystemTime) -> Duration {
    let later_ms = i64::try_from(later.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
    Duration::from_millis(u64::try_from((later_ms - earlier_ms).max(0)).unwrap())
}

fn timestamp_ms(view: &Value, field: &str) -> i64 {
    view[field].as_str().unwrap().parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::var("CHAT_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let token = std::env::var(TOKEN_ENV).unwrap();
    let fake = FakeTelegram::start(&token).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data_dir: dir.path().join("data"),
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        rate_limit_principal_per_minute: 1_000_000,
        rate_limit_account_per_minute: 1_000_000,
        max_pending_actions_per_server: 1000,
        telegram: Some(TelegramConfig::polling(TOKEN_ENV, &fake.url)),
        ..Config::default()
    };
    let admin = mttrly_central::init::init(&cfg, None).unwrap().admin_token;
    let central = start(cfg).await.unwrap();
    let channel =
        tonic::transport::Channel::from_shared(central.grpc_url().to_owned()).unwrap().connect().await.unwrap();
    let production = mttrly_proto::convert::environment_to_wire(mttrly_core::Environment::Production);
    let added = ServerServiceClient::new(channel.clone())
        .add_server(authed(&admin, AddServerRequest { name: "web-1".into(), environment: production }))
        .await
        .unwrap()
        .into_inner();
    let state = dir.path().join("agent");
    mttrly_agent::enroll::enroll(central.grpc_url(), &added.install_token, None, &state, false).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(mttrly_agent::run(
        mttrly_agent::RunOptions::new(state, mttrly_agent::policy::LocalPolicy::default()),
        stopped,
    ));

    // Bob, an operator, links his Telegram account; in production the requester may not approve.
    let bob = UserServiceClient::new(channel.clone())
        .add_user(authed(
            &admin,
            AddUserRequest {
                name: "bob".into(),
                role: "operator".into(),
                email: String::new(),
                issue_token: true,
                second_factor_code: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    let code = UserServiceClient::new(channel.clone())
        .link_chat(authed(&bob, LinkChatRequest { provider: "telegram".into() }))
        .await
        .unwrap()
        .into_inner()
        .code;
    fake.say(BOB, &format!("/start {code}"));
    fake.sent_to(BOB.0, "Linked").await;

    let mut tools = ToolServiceClient::new(channel.clone());
    let actions = ActionServiceClient::new(channel.clone());
    let (mut to_message, mut to_start, mut to_answer, mut to_edit) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut done = 0;
    while done < runs {
        let call = CallToolRequest {
            tool_id: "mttrly_execute_command".into(),
            arguments_json: serde_json::json!({ "server_id": added.server_id, "command": "touch /dev/null" })
                .to_string(),
            client_name: "bench".into(),
        };
        let r = tools.call_tool(authed(&admin, call)).await.unwrap().into_inner();
        let v: Value = serde_json::from_str(&r.structured_json).unwrap();
        if v["status"] != "pending_approval" {
            // The agent is not connected yet: the command was refused; try again shortly.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let id = v["action_id"].as_str().unwrap().to_owned();
        let sent = fake.sent_to(BOB.0, &id).await;
        let view = |id: String| {
            let mut actions = actions.clone();
            let admin = admin.clone();
            async move {
                let a = actions
                    .get_action(authed(&admin, GetActionRequest { action_id: id }))
                    .await
                    .unwrap()
                    .into_inner()
                    .action
                    .unwrap();
                serde_json::from_str::<Value>(&a.view_json).unwrap()
            }
        };
        let pending = view(id.clone()).await;
        to_message.push(ms_between(timestamp_ms(&pending, "created_at"), sent.wall));

        let message_id = sent.message_id.unwrap();
        let tapped_wall = SystemTime::now();
        let tapped = std::time::Instant::now();
        let query = fake.tap(BOB, BOB.0, message_id, "a");
        let answered = fake
            .wait_call("answerCallbackQuery", Duration::from_secs(10), |b| b["callback_query_id"] == query.as_str())
            .await;
        assert_eq!(answered.body["text"], "Approved", "{:?}", answered.body);
        to_answer.push(answered.at.duration_since(tapped));
        let edited = fake
            .wait_call("editMessageText", Duration::from_secs(10), |b| {
                b["message_id"] == message_id && b["text"].as_str().is_some_and(|t| t.contains("Succeeded"))
            })
            .await;
        to_edit.push(edited.at.duration_since(tapped));
        let ran = view(id).await;
        assert_eq!(ran["status"], "succeeded", "{ran}");
        let tapped_ms = i64::try_from(tapped_wall.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
        let started = timestamp_ms(&ran["result"], "started_at");
        to_start.push(Duration::from_millis(u64::try_from((started - tapped_ms).max(0)).unwrap()));
        done += 1;
    }
    report("(a) action pending -> Bot API receives sendMessage (wall clock, 1 ms resolution)", to_message);
    report("(b) tap injected -> agent starts the command (agent clock, 1 ms resolution)", to_start);
    report("tap injected -> answerCallbackQuery received", to_answer);
    report("tap injected -> editMessageText with the result received", to_edit);
    stop.send(true).unwrap();
    let _ = agent.await;
    central.shutdown().await;
}
