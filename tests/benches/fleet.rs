//! Fleet benchmark: one real `mttrly-central` process (release build) and N simulated agents,
//! each a real gRPC `Session` stream over its own TCP connection (HTTP/2 keep-alive as a real
//! agent sets it) that says hello and heartbeats every 10 s. Agents connect in steps; central's
//! RSS after each step gives the per-agent slope. Once everyone is connected it measures central's
//! CPU over a window and its RSS, checks every agent's status is fresh, then measures one real
//! `mttrly-agent` process idling.
//!
//! cargo bench -p mttrly-tests --bench fleet -- [--agents N] [--seconds S] [--agent-seconds S]
//!     [--steps K] [--per-connection K] [--hold S]
//!
//! A fleet needs one descriptor per agent in central and in this load generator: both raise their
//! soft open-files limit to the hard one, and the fleet is capped (and the cap printed) where the
//! hard limit cannot hold it. Connections spread over source addresses 127.0.0.2, .3, …: one
//! (source, destination) pair has only ~28,000 ephemeral ports.

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, clippy::cast_possible_truncation)]

use std::net::{IpAddr, Ipv4Addr};
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
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

struct Args {
    agents: usize,
    seconds: u64,
    per_connection: usize,
    agent_seconds: u64,
    steps: usize,
    hold: u64,
}

fn args() -> Args {
    let mut a = Args { agents: 10_000, seconds: 60, per_connection: 1, agent_seconds: 60, steps: 4, hold: 0 };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = || argv.get(i + 1).and_then(|v| v.parse().ok());
        match argv[i].as_str() {
            "--agents" => a.agents = value().unwrap_or(a.agents),
            "--seconds" => a.seconds = value().map_or(a.seconds, |v: usize| v as u64),
            "--per-connection" => a.per_connection = value().unwrap_or(a.per_connection).max(1),
            "--agent-seconds" => a.agent_seconds = value().map_or(a.agent_seconds, |v: usize| v as u64),
            "--steps" => a.steps = value().unwrap_or(a.steps).max(1),
            "--hold" => a.hold = value().map_or(a.hold, |v: usize| v as u64),
            _ => {}
        }
        i += 1;
    }
    a
}

/// Descriptors central keeps beside its connections (its own reserve, `fd_limit::RESERVED`).
const CENTRAL_RESERVED_FDS: u64 = 256;
/// Connections one source address opens to central's one address (of ~28,000 ephemeral ports).
const CONNECTIONS_PER_SOURCE: usize = 20_000;

/// Raises this process's soft open-files limit to the hard one (central, started by it, inherits
/// the same hard limit and raises its own). Returns the hard limit.
fn raise_fd_limit() -> u64 {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    hard
}

/// Central's soft open-files limit, from `/proc/PID/limits`.
fn open_files_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Registers `n` servers with agent credentials directly in the database (plan limits are a
/// product rule, not what this benchmark measures). Returns (server id, secret) pairs and an
/// install token for one more server, for the real agent.
fn seed(data_dir: &std::path::Path, n: usize) -> (Vec<(String, String)>, String) {
    let db = Db::open(&data_dir.join("central.db")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let (account, _) = db.first_account().await.unwrap().unwrap();
        let (db, account) = (&db, &account);
        let register = |name: String, token: String| {
            let hash = secrets::hash(&token);
            async move {
                match db
                    .account(account)
                    .servers()
                    .register(&name, Environment::Development, &hash, db::now_ms() + 600_000, u32::MAX)
                    .await
                {
                    Ok(db::servers::Registered::Added(id)) => id,
                    other => panic!("cannot seed {name}: {other:?}"),
                }
            }
        };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let token = secrets::generate(secrets::SecretKind::Install);
            let server = register(format!("sim-{i:05}"), token.clone()).await;
            let secret = secrets::generate(secrets::SecretKind::Agent);
            db.fleet().enroll(&secrets::hash(&token), &secrets::hash(&secret), db::now_ms()).await.unwrap();
            out.push((server.to_string(), secret));
        }
        let token = secrets::generate(secrets::SecretKind::Install);
        register("real-agent".to_owned(), token.clone()).await;
        (out, token)
    })
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

/// The channel of the agent with index `i`: its own connection (or shared by `per_connection`
/// agents), from source address 127.0.0.(2 + i / 20,000), with a real agent's connection settings.
fn endpoint(url: &str, i: usize) -> Endpoint {
    let source = u8::try_from(2 + i / CONNECTIONS_PER_SOURCE).unwrap();
    Endpoint::from_shared(url.to_owned())
        .unwrap()
        .local_address(Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, source))))
        .connect_timeout(Duration::from_secs(10))
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
}

/// What the simulated fleet counts: agents connected, and sessions that ended after connecting
/// (a simulated agent does not reconnect, so an ended session shows as an offline server).
#[derive(Default)]
struct Counts {
    connected: AtomicUsize,
    ended: AtomicUsize,
}

async fn simulated_agent(channel: Channel, server_id: String, secret: String, counts: Arc<Counts>) {
    // Like a real agent: retry with a growing, jittered delay when the connection is refused
    // (a burst of thousands of connects overflows the listen backlog and the handshake cap).
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
    counts.connected.fetch_add(1, Ordering::Relaxed);
    let reader = Arc::clone(&counts);
    tokio::spawn(async move {
        let ended = loop {
            match inbound.message().await {
                Ok(Some(_)) => {}
                Ok(None) => break "closed by central".to_owned(),
                Err(e) => break e.to_string(),
            }
        };
        if reader.ended.fetch_add(1, Ordering::Relaxed) < 3 {
            eprintln!("a session ended: {ended}");
        }
    });
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

/// The least-squares slope and intercept of `points` (agents, RSS bytes).
fn fit(points: &[(usize, u64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(sx, sy), &(x, y)| (sx + x as f64, sy + y as f64));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|&(x, _)| (x as f64 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|&(x, y)| (x as f64 - mx) * (y as f64 - my)).sum();
    (sxx > 0.0).then(|| (sxy / sxx, my - sxy / sxx * mx))
}

fn main() {
    let mut args = args();
    let hard = raise_fd_limit();
    // One descriptor per connection in central (beside its reserve) and here (beside ours and
    // the real agent's).
    let most = usize::try_from(hard.saturating_sub(CENTRAL_RESERVED_FDS)).unwrap_or(usize::MAX) * args.per_connection;
    if args.agents > most {
        println!(
            "the open-files hard limit is {hard}: one central holds at most {most} agent connections here; \
             measuring {most} instead of {}",
            args.agents
        );
        args.agents = most;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    let mut token = String::new();
    let central = TestCentral::start_with(dir.path(), &[], &[("MTTRLY_HEARTBEAT_INTERVAL_SECONDS", "10")], |data| {
        let started = Instant::now();
        (pairs, token) = seed(data, args.agents);
        println!("seeded {} servers in {:.1}s", args.agents, started.elapsed().as_secs_f64());
    });
    let pid = central.pid();
    println!("central pid {pid}, open-files limit {:?} (hard {hard})", open_files_limit(pid));
    if args.hold > 0 {
        println!("holding {}s before connecting (attach a profiler now)", args.hold);
        std::thread::sleep(Duration::from_secs(args.hold));
    }
    let rss_idle = rss_bytes(pid).unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let mut points = Vec::new();
    runtime.block_on(async {
        let mut channel = None;
        for step in 1..=args.steps {
            let (from, to) = (args.agents * (step - 1) / args.steps, args.agents * step / args.steps);
            for (i, (server, secret)) in pairs.iter().enumerate().take(to).skip(from) {
                if i % args.per_connection == 0 {
                    channel = Some(endpoint(&central.grpc_url, i / args.per_connection).connect_lazy());
                }
                let ch = channel.clone().unwrap();
                tokio::spawn(simulated_agent(ch, server.clone(), secret.clone(), Arc::clone(&counts)));
                if i % 500 == 499 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            while counts.connected.load(Ordering::Relaxed) < to && started.elapsed() < Duration::from_secs(300) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Settle: the last hellos' database writes and the first heartbeats.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let n = counts.connected.load(Ordering::Relaxed);
            let rss = rss_bytes(pid).unwrap();
            println!("step {step}: {n} agents, central RSS {:.0} MB", rss as f64 / 1e6);
            points.push((n, rss));
        }
    });
    let n = counts.connected.load(Ordering::Relaxed);
    println!("connected {n}/{} agents in {:.1}s", args.agents, started.elapsed().as_secs_f64());

    // Let a full round of heartbeats land, then measure a steady window.
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
    if let Some((slope, intercept)) = fit(&points) {
        println!(
            "slope: {:.1} KB per agent over {} steps; at 50,000 agents: {:.0} MB",
            slope / 1e3,
            points.len(),
            (intercept + slope * 50_000.0) / 1e6
        );
    }

    // Every agent's status is fresh.
    let (online, oldest) = runtime.block_on(async {
        let channel = Endpoint::from_shared(central.grpc_url.clone()).unwrap().connect().await.unwrap();
        let mut req = tonic::Request::new(ListServersRequest {});
        req.metadata_mut().insert("authorization", format!("Bearer {}", central.admin_token).parse().unwrap());
        // A fleet's list is several MB: above the client's default 4 MB message limit.
        let mut servers = ServerServiceClient::new(channel)
            .max_decoding_message_size(256 << 20)
            .list_servers(req)
            .await
            .unwrap()
            .into_inner()
            .servers;
        servers.retain(|s| s.name.starts_with("sim-"));
        let now = db::now_ms();
        let online = servers.iter().filter(|s| s.status == "online").count();
        let oldest = servers.iter().map(|s| now - s.last_seen_unix_ms).max().unwrap_or(0);
        (online, oldest)
    });
    println!(
        "status: {online}/{} online, oldest heartbeat {:.1}s ago; {} sessions ended after connecting",
        args.agents,
        oldest as f64 / 1000.0,
        counts.ended.load(Ordering::Relaxed)
    );
    drop(runtime);

    if args.agent_seconds == 0 {
        return;
    }
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
