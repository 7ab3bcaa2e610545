//! Latency on loopback, release build, central and a real agent in one process over real gRPC:
//! `mttrly_execute_command` with `uptime` from the tool call to the result, and human approval to
//! execution start (and to the finished result) for an approved command.
//!
//! cargo bench -p mttrly-central --bench actions

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::time::{Duration, Instant};

use mttrly_central::config::Config;
use mttrly_central::server::start;
use mttrly_core::capability::{HostSample, NoParams};
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{AddServerRequest, ApproveActionRequest, CallToolRequest, GetActionRequest};
use serde_json::Value;

fn authed<T>(token: &str, body: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(body);
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!("{name}: median {:.2} ms, p99 {:.2} ms ({} runs)", p(0.5), p(0.99), samples.len());
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data_dir: dir.path().join("data"),
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        rate_limit_principal_per_minute: 1_000_000,
        rate_limit_account_per_minute: 1_000_000,
        ..Config::default()
    };
    let token = mttrly_central::init::init(&cfg, None).unwrap().admin_token;
    let central = start(cfg).await.unwrap();
    let channel =
        tonic::transport::Channel::from_shared(central.grpc_url().to_owned()).unwrap().connect().await.unwrap();
    let added = ServerServiceClient::new(channel.clone())
        .add_server(authed(&token, AddServerRequest { name: "bench".into(), environment: 3 }))
        .await
        .unwrap()
        .into_inner();
    let state = dir.path().join("agent");
    mttrly_agent::enroll::enroll(central.grpc_url(), &added.install_token, None, &state, false).await.unwrap();
    // A real 1 GB log (10.7 million lines) for the file tail figure.
    let logs = dir.path().canonicalize().unwrap().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let big_log = logs.join("big.log");
    {
        use std::io::Write as _;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&big_log).unwrap());
        let mut n = 0u64;
        let mut written = 0u64;
        while written < 1 << 30 {
            let line =
                format!("2026-11-21T12:00:00Z host nginx[123]: 10.0.0.{} GET /api/v1/items/{n} 200 0.012\n", n % 255);
            w.write_all(line.as_bytes()).unwrap();
            written += line.len() as u64;
            n += 1;
        }
    }
    let policy_file = dir.path().join("policy.toml");
    std::fs::write(&policy_file, format!("file_roots = [\"{}/**\"]\n", logs.display())).unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(mttrly_agent::run(
        mttrly_agent::RunOptions::new(state, mttrly_agent::policy::LocalPolicy::load(&policy_file).unwrap()),
        stopped,
    ));
    let mut tools = ToolServiceClient::new(channel.clone());
    let mut actions = ActionServiceClient::new(channel.clone());
    let call = |command: &str| CallToolRequest {
        tool_id: "mttrly_execute_command".into(),
        arguments_json: serde_json::json!({ "server_id": added.server_id, "command": command }).to_string(),
        client_name: "bench".into(),
    };
    // Wait for the agent.
    loop {
        let r = tools.call_tool(authed(&token, call("uptime"))).await.unwrap().into_inner();
        if !r.is_error {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let server = mttrly_core::ids::ServerId::parse(&added.server_id).unwrap();
    let mut round_trip = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let metrics =
            central.central.agents.ask::<HostSample>(&server, &NoParams, Duration::from_secs(5)).await.unwrap();
        round_trip.push(t.elapsed());
        assert!(metrics.memory_total_bytes > 0);
    }
    report("agent task round trip (host.metrics, no process)", round_trip);

    let mut list = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let r = tools
            .call_tool(authed(
                &token,
                CallToolRequest {
                    tool_id: "mttrly_list_servers".into(),
                    arguments_json: "{}".into(),
                    client_name: "bench".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        list.push(t.elapsed());
        assert!(!r.is_error);
    }
    report("list_servers through CallTool", list);

    let mut uptime = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let r = tools.call_tool(authed(&token, call("uptime"))).await.unwrap().into_inner();
        uptime.push(t.elapsed());
        assert!(!r.is_error, "{}", r.structured_json);
    }
    report("execute_command uptime, tool call to result", uptime);

    let mut tail = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let r = tools
            .call_tool(authed(
                &token,
                CallToolRequest {
                    tool_id: "mttrly_read_file".into(),
                    arguments_json: serde_json::json!({
                        "server_id": added.server_id,
                        "target": { "type": "file", "path": big_log },
                        "lines": 500,
                    })
                    .to_string(),
                    client_name: "bench".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        tail.push(t.elapsed());
        assert!(!r.is_error, "{}", r.structured_json);
        let v: Value = serde_json::from_str(&r.structured_json).unwrap();
        assert_eq!(v["line_count"], 500);
    }
    report("read_file last 500 lines of a 1 GB log, tool call to result", tail);

    let mut to_start = Vec::new();
    let mut to_result = Vec::new();
    for _ in 0..300 {
        let r = tools.call_tool(authed(&token, call("true"))).await.unwrap().into_inner();
        let v: Value = serde_json::from_str(&r.structured_json).unwrap();
        let id = v["action_id"].as_str().unwrap().to_owned();
        let sha = actions
            .get_action(authed(&token, GetActionRequest { action_id: id.clone() }))
            .await
            .unwrap()
            .into_inner()
            .action
            .unwrap()
            .content_sha256;
        let wall = jiff::Timestamp::now();
        let t = Instant::now();
        let done = actions
            .approve_action(authed(
                &token,
                ApproveActionRequest {
                    action_id: id,
                    content_sha256: sha,
                    wait_seconds: 10,
                    via_mcp: false,
                    second_factor_code: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .action
            .unwrap();
        to_result.push(t.elapsed());
        let view: Value = serde_json::from_str(&done.view_json).unwrap();
        assert_eq!(view["status"], "succeeded", "{view}");
        let started: jiff::Timestamp = view["result"]["started_at"].as_str().unwrap().parse().unwrap();
        let ms = (started.as_millisecond() - wall.as_millisecond()).max(0);
        to_start.push(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    }
    report("approval to execution start (agent clock, 1 ms resolution)", to_start);
    report("approval to finished result (approve call round trip)", to_result);
    central.shutdown().await;
}
