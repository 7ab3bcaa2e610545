//! Fleet benchmark: one real `mttrly-central` process (release build) and N simulated agents,
//! each a real gRPC stream (own TCP connection by default) that says hello and heartbeats every
//! 10 s. Measures central's CPU and RSS once everyone is connected, checks every agent's status is
//! fresh, then measures one real `mttrly-agent` process idling.
//!
//! cargo bench -p mttrly-tests --bench fleet -- [--agents N] [--seconds S] [--per-connection K]

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, clippy::cast_possible_truncation)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mttrly_central::db::{self, Db};
use mttrly_central::secrets;
use mttrly_core::Environment;
use mttrly_proto::agent::v1::agent_service_client::AgentServiceClient;
use mttrly_proto::agent::v1::{AgentMessage, Filesystem, Heartbeat, Hello, HostMetrics, agent_message};
use mttrly_proto::central::v1::ListServersRequest;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_tests::{TestAgent, TestCentral, cpu_time, rss_bytes};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

struct Args {
    agents: usize,
    seconds: u64,
    per_connection: usize,
    agent_seconds: u64,
}

fn args() -> Args {
    let mut a = Args { agents: 10_000, seconds: 60, per_connection: 1, agent_seconds: 60 };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = || argv.get(i + 1).and_then(|v| v.parse().ok());
        match argv[i].as_str() {
            "--agents" => a.agents = value().unwrap_or(a.agents),
            "--seconds" => a.seconds = value().map_or(a.seconds, |v: usize| v as u64),
            "--per-connection" => a.per_connection = value().unwrap_or(a.per_connection).max(1),
            "--agent-seconds" => a.agent_seconds = value().map_or(a.agent_seconds, |v: usize| v as u64),
            _ => {}
        }
        i += 1;
    }
    a
}

/// Registers `n` servers with agent credentials directly in the database (plan limits are a
/// product rule, not what this benchmark measures). Returns (server id, secret) pairs and an
/// install token for one more server, for the real agent.
fn seed(data_dir: &std::path::Path, n: usize) -> (Vec<(String, String)>, String) {
    let db = Db::open(&data_dir.join("central.db")).unwrap();
    db.call_blocking(|conn| {
        let (account, _) = db::accounts::first_account(conn)?.unwrap();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let server = db::servers::insert(conn, &account, &format!("sim-{i:05}"), Environment::Development)?;
            let token = secrets::generate(secrets::SecretKind::Install);
            let secret = secrets::generate(secrets::SecretKind::Agent);
            db::servers::insert_install_token(conn, &secrets::hash(&token), &server, db::now_ms() + 600_000)?;
            db::servers::enroll(conn, &secrets::hash(&token), &secrets::hash(&secret), db::now_ms())?;
            out.push((server.to_string(), secret));
        }
        let real = db::servers::insert(conn, &account, "real-agent", Environment::Development)?;
        let token = secrets::generate(secrets::SecretKind::Install);
        db::servers::insert_install_token(conn, &secrets::hash(&token), &real, db::now_ms() + 600_000)?;
        Ok((out, token))
    })
    .unwrap()
}

fn metrics() -> HostMetrics {
    HostMetrics {
        cpu_percent: 12.5,
        memory_total_bytes: 8 << 30,
        memory_used_bytes: 2 << 30,
        swap_total_bytes: 0,
        swap_used_bytes: 0,
        load_1: 0.3,
        load_5: 0.2,
        load_15: 0.1,
        uptime_seconds: 86_400,
        filesystems: vec![Filesystem {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 100 << 30,
            used_bytes: 40 << 30,
        }],
    }
}

async fn simulated_agent(channel: Channel, server_id: String, secret: String, connected: Arc<AtomicUsize>) {
    // Like a real agent: retry with a growing, jittered delay when the connection is refused
    // (a burst of thousands of connects overflows the listen backlog).
    let mut attempt = 0u64;
    let (tx, mut inbound) = loop {
        let (tx, rx) = mpsc::channel(8);
        let hello = Hello {
            agent_version: "sim".into(),
            protocol_revision: 1,
            hostname: server_id.clone(),
            ..Default::default()
        };
        tx.send(AgentMessage { body: Some(agent_message::Body::Hello(hello)) }).await.unwrap();
        let mut req = tonic::Request::new(ReceiverStream::new(rx));
        req.metadata_mut().insert("authorization", format!("Bearer {secret}").parse().unwrap());
        req.metadata_mut().insert("x-mttrly-server-id", server_id.parse().unwrap());
        match AgentServiceClient::new(channel.clone()).session(req).await {
            Ok(r) => {
                let mut inbound = r.into_inner();
                if inbound.message().await.ok().flatten().is_some() {
                    break (tx, inbound);
                }
            }
            Err(e) if attempt >= 20 => {
                eprintln!("session failed after {attempt} retries: {e}");
                return;
            }
            Err(_) => {}
        }
        attempt += 1;
        let jitter = u64::from(server_id.as_bytes()[server_id.len() - 2]) * 7;
        tokio::time::sleep(Duration::from_millis(200 * attempt.min(10) + jitter)).await;
    };
    connected.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move { while let Ok(Some(_)) = inbound.message().await {} });
    // Spread heartbeats over the interval, as a real fleet's would be.
    let offset = Duration::from_millis(u64::from(server_id.as_bytes()[server_id.len() - 1]) * 39);
    tokio::time::sleep(offset).await;
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        let beat = Heartbeat { sent_at_unix_ms: db::now_ms(), metrics: Some(metrics()) };
        if tx.send(AgentMessage { body: Some(agent_message::Body::Heartbeat(beat)) }).await.is_err() {
            return;
        }
    }
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    let mut token = String::new();
    let central = TestCentral::start_with(dir.path(), &[], &[("MTTRLY_HEARTBEAT_INTERVAL_SECONDS", "10")], |data| {
        let started = Instant::now();
        (pairs, token) = seed(data, args.agents);
        println!("seeded {} servers in {:.1}s", args.agents, started.elapsed().as_secs_f64());
    });
    let pid = central.pid();
    let rss_idle = rss_bytes(pid).unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let connected = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    runtime.block_on(async {
        let mut channel = None;
        for (i, (server, secret)) in pairs.iter().enumerate() {
            if i % args.per_connection == 0 {
                let endpoint =
                    Endpoint::from_shared(central.grpc_url.clone()).unwrap().connect_timeout(Duration::from_secs(30));
                channel = Some(endpoint.connect_lazy());
            }
            let ch = channel.clone().unwrap();
            tokio::spawn(simulated_agent(ch, server.clone(), secret.clone(), Arc::clone(&connected)));
            if i % 500 == 499 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        while connected.load(Ordering::Relaxed) < args.agents && started.elapsed() < Duration::from_secs(300) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let n = connected.load(Ordering::Relaxed);
    println!("connected {n}/{} agents in {:.1}s", args.agents, started.elapsed().as_secs_f64());

    // Let the first round of heartbeats land, then measure a steady window.
    std::thread::sleep(Duration::from_secs(12));
    let cpu0 = cpu_time(pid).unwrap();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(args.seconds));
    let cpu = cpu_time(pid).unwrap().saturating_sub(cpu0);
    let wall = t0.elapsed();
    let rss = rss_bytes(pid).unwrap();
    println!(
        "central: {:.1}% of one core over {}s, RSS {:.0} MB (idle before agents: {:.0} MB)",
        cpu.as_secs_f64() * 100.0 / wall.as_secs_f64(),
        wall.as_secs(),
        rss as f64 / 1e6,
        rss_idle as f64 / 1e6
    );

    // Every agent's status is fresh.
    let (online, oldest) = runtime.block_on(async {
        let channel = Endpoint::from_shared(central.grpc_url.clone()).unwrap().connect().await.unwrap();
        let mut req = tonic::Request::new(ListServersRequest {});
        req.metadata_mut().insert("authorization", format!("Bearer {}", central.admin_token).parse().unwrap());
        let mut servers = ServerServiceClient::new(channel).list_servers(req).await.unwrap().into_inner().servers;
        servers.retain(|s| s.name.starts_with("sim-"));
        let now = db::now_ms();
        let online = servers.iter().filter(|s| s.status == "online").count();
        let oldest = servers.iter().map(|s| now - s.last_seen_unix_ms).max().unwrap_or(0);
        (online, oldest)
    });
    println!("status: {online}/{} online, oldest heartbeat {:.1}s ago", args.agents, oldest as f64 / 1000.0);
    drop(runtime);

    // One real agent, idle, at a 10 s heartbeat.
    let agent = TestAgent::start(&central.grpc_url, &token, &dir.path().join("agent"));
    std::thread::sleep(Duration::from_secs(5));
    let apid = agent.pid();
    let a0 = cpu_time(apid).unwrap();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(args.agent_seconds));
    let acpu = cpu_time(apid).unwrap().saturating_sub(a0);
    let arss = rss_bytes(apid).unwrap();
    println!(
        "agent: {:.2}% CPU over {}s, RSS {:.1} MB",
        acpu.as_secs_f64() * 100.0 / t0.elapsed().as_secs_f64(),
        t0.elapsed().as_secs(),
        arss as f64 / 1e6
    );
}
