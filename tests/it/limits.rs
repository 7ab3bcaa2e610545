//! Limits under hostile load, bounded and on loopback: MCP session caps, one rate limit per token
//! across sessions, the per-server pending cap under concurrent creation, half-open and idle
//! connections closed in time, the connection caps, and a restart that raises no false alert.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{self, Harness, Mcp, authed, header, http};
use mttrly_central::config::Config;
use mttrly_central::server::{RunningCentral, start};
use mttrly_central::{db, secrets};
use mttrly_core::ids::ServerId;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{AddServerRequest, CallToolRequest};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic::transport::Channel;

async fn harness(tune: impl FnOnce(&mut Config)) -> Harness {
    common::harness(|cfg| {
        common::fast_heartbeats(cfg);
        tune(cfg);
    })
    .await
}

impl common::Harness {
    /// A new assistant token of the admin.
    async fn assistant_token(&self) -> String {
        let token = secrets::generate(secrets::SecretKind::Assistant);
        let hash = secrets::hash(&token);
        let db = &self.central.central.db;
        let (account, _) = db.first_account().await.unwrap().unwrap();
        let users = db.account(&account).users();
        let user = users.first_admin().await.unwrap().unwrap();
        users.insert_token(&hash, &user, Some("loop"), &mttrly_core::ToolSurface::ALL).await.unwrap();
        token
    }

    /// A new server: its id and install token.
    async fn add_server(&self, name: &str) -> (String, String) {
        let r = ServerServiceClient::new(self.channel().await)
            .add_server(authed(&self.admin, AddServerRequest { name: name.into(), environment: 2 }))
            .await
            .unwrap()
            .into_inner();
        (r.server_id, r.install_token)
    }
}

#[tokio::test]
async fn mcp_sessions_are_capped_per_token_and_per_user_and_ended_ones_free_their_slot() {
    let h = harness(|c| {
        c.mcp_sessions_per_token = 3;
        c.mcp_sessions_per_user = 5;
    })
    .await;
    let first = Mcp { addr: h.central.http_addr, token: h.assistant_token().await, client: "load" };
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(first.open().await.unwrap());
    }
    // The fourth, while all three are in use: refused with the seed's code, a limit and a retry.
    let (status, headers, body) = first.open().await.unwrap_err();
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "RATE_LIMITED", "{body}");
    assert_eq!(body["details"]["scope"], "mcp_sessions_per_token");
    assert_eq!(body["details"]["limit"], 3);
    assert!(header(&headers, "retry-after").is_some());

    // DELETE ends a session with 204 (not 202), frees its slot, and a second DELETE is a 404.
    assert_eq!(first.delete(&sessions[0]).await, 204);
    assert_eq!(first.delete(&sessions[0]).await, 404);
    let again = first.open().await.unwrap();
    assert_eq!(first.call(&again, "mttrly_list_servers").await["result"]["isError"], false);
    // The ended session is gone for good.
    let bearer = format!("Bearer {}", first.token);
    let list = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/list" }).to_string();
    assert_eq!(http(first.addr, "POST", &Mcp::headers(&bearer, Some(&sessions[0])), &list).await.0, 404);

    // Another token of the same user has its own three, but the user's five are shared.
    let second = Mcp { addr: h.central.http_addr, token: h.assistant_token().await, client: "load" };
    second.open().await.unwrap();
    second.open().await.unwrap();
    let (status, _, body) = second.open().await.unwrap_err();
    assert_eq!(status, 429);
    assert_eq!(body["details"]["scope"], "mcp_sessions_per_user", "{body}");
    h.central.shutdown().await;
}

#[tokio::test]
async fn one_token_over_several_mcp_sessions_shares_one_rate_limit() {
    let h = harness(|c| {
        c.rate_limit_principal_per_minute = 6;
        c.rate_limit_account_per_minute = 1000;
    })
    .await;
    let mcp = Mcp { addr: h.central.http_addr, token: h.assistant_token().await, client: "load" };
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(mcp.open().await.unwrap());
    }
    let (mut ok, mut limited) = (0, 0);
    for round in 0..4 {
        for session in &sessions {
            let reply = mcp.call(session, "mttrly_list_servers").await;
            if reply["result"]["isError"] == true {
                let text = reply["result"]["content"][0]["text"].as_str().unwrap_or_default().to_owned();
                assert!(text.contains("RATE_LIMITED"), "round {round}: {reply}");
                limited += 1;
            } else {
                ok += 1;
            }
        }
    }
    // Six a minute for the token, however many sessions it opens (one may refill meanwhile).
    assert!((6..=7).contains(&ok), "ok {ok}, limited {limited}");
    assert_eq!(ok + limited, 12);
    // Another token is not affected.
    let other = Mcp { addr: h.central.http_addr, token: h.assistant_token().await, client: "load" };
    let session = other.open().await.unwrap();
    assert_eq!(other.call(&session, "mttrly_list_servers").await["result"]["isError"], false);
    h.central.shutdown().await;
}

#[tokio::test]
async fn the_pending_cap_holds_under_concurrent_creation() {
    const CAP: u32 = 5;
    let h = harness(|c| c.max_pending_actions_per_server = CAP).await;
    let (server, _) = h.add_server("web-1").await;
    let (other, _) = h.add_server("web-2").await;
    let token = h.assistant_token().await;
    let channel = h.channel().await;
    let submit = |server: String, i: usize| {
        let mut client = ToolServiceClient::new(channel.clone());
        let token = token.clone();
        async move {
            let args =
                json!({ "server_id": server, "command": format!("touch /tmp/mttrly-cap-{i}"), "reason": "load" });
            let r = client
                .call_tool(authed(
                    &token,
                    CallToolRequest {
                        tool_id: "mttrly_execute_command".into(),
                        arguments_json: args.to_string(),
                        client_name: "load".into(),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            (r.is_error, serde_json::from_str::<Value>(&r.structured_json).unwrap_or(Value::Null))
        }
    };
    let results =
        futures_join_all((0..2 * CAP as usize).map(|i| tokio::spawn(submit(server.clone(), i))).collect()).await;
    let created = results.iter().filter(|(is_error, _)| !is_error).count();
    let refused: Vec<&Value> = results.iter().filter(|(is_error, _)| *is_error).map(|(_, b)| b).collect();
    assert_eq!(created, CAP as usize, "{results:?}");
    for body in &refused {
        assert_eq!(body["code"], "RATE_LIMITED", "{body}");
        assert_eq!(body["details"]["scope"], "pending_actions_per_server");
        assert_eq!(body["details"]["limit"], CAP);
        assert!(body["details"]["retry_after_seconds"].as_u64().unwrap() >= 1);
    }
    let pending: u32 = {
        let id = ServerId::parse(&server).unwrap();
        let db = &h.central.central.db;
        let (account, _) = db.first_account().await.unwrap().unwrap();
        db.account(&account).actions().pending_on_server(&id, db::now_ms()).await.unwrap().0
    };
    assert_eq!(pending, CAP);
    // The cap is per server: another server takes requests.
    let (is_error, body) = submit(other, 99).await;
    assert!(!is_error, "{body}");
    // A decided action frees its slot.
    let id = results.iter().find(|(e, _)| !e).unwrap().1["action_id"].as_str().unwrap().to_owned();
    let admin = h.admin.clone();
    let mut actions = mttrly_proto::central::v1::action_service_client::ActionServiceClient::new(channel.clone());
    actions
        .reject_action(authed(
            &admin,
            mttrly_proto::central::v1::RejectActionRequest {
                action_id: id,
                reason: "load test".into(),
                via_mcp: false,
            },
        ))
        .await
        .unwrap();
    let (is_error, body) = submit(server, 100).await;
    assert!(!is_error, "{body}");
    h.central.shutdown().await;
}

async fn futures_join_all<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Opens `n` connections, sends `bytes` on each, and returns how long until each was closed by
/// the server (or `None` if it was still open after `within`).
async fn close_times(addr: SocketAddr, n: usize, bytes: &'static [u8], within: Duration) -> Vec<Option<Duration>> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let started = Instant::now();
            stream.write_all(bytes).await.unwrap();
            let mut buf = [0u8; 1024];
            let closed = tokio::time::timeout(within, async {
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            closed.is_ok().then(|| started.elapsed())
        }));
    }
    futures_join_all(tasks).await
}

#[tokio::test]
async fn half_open_http_and_grpc_connections_are_closed_at_the_handshake_deadline() {
    let h = harness(|c| c.handshake_timeout_seconds = 1).await;
    let (http_addr, grpc_addr) = (h.central.http_addr, h.central.grpc_addr);
    let (drip, preface, silent) = tokio::join!(
        // A partial request line, a slow drip that never finishes its headers.
        close_times(http_addr, 50, b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: a", Duration::from_secs(5)),
        // Half an HTTP/2 preface.
        close_times(grpc_addr, 50, b"PRI * HTTP/2.0\r\n", Duration::from_secs(5)),
        close_times(http_addr, 50, b"", Duration::from_secs(5)),
    );
    for (what, times) in [("http", &drip), ("grpc", &preface), ("silent", &silent)] {
        let worst = times.iter().map(|t| t.expect("closed by the server")).max().unwrap();
        assert!(worst >= Duration::from_millis(800) && worst < Duration::from_secs(3), "{what}: {worst:?}");
    }
    // Central answered real requests throughout, and the slots came back.
    let (status, _, _) = http(http_addr, "GET", &[], "").await;
    assert_eq!(status, 401);
    h.central.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_handshake_cap_are_closed_at_once_and_slots_return() {
    let h = harness(|c| {
        c.max_handshaking_connections = 5;
        c.handshake_timeout_seconds = 30;
    })
    .await;
    let addr = h.central.http_addr;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = close_times(addr, 3, b"", Duration::from_secs(5)).await;
    for t in &refused {
        assert!(t.expect("closed") < Duration::from_secs(2), "{refused:?}");
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _, _) = http(addr, "GET", &[], "").await;
    assert_eq!(status, 401, "a slot is free again");
    h.central.shutdown().await;
}

#[tokio::test]
async fn idle_connections_close_but_an_agent_stream_in_flight_does_not() {
    let h = harness(|c| {
        c.http_idle_timeout_seconds = 1;
        c.grpc_idle_timeout_seconds = 1;
    })
    .await;
    // A keep-alive HTTP connection after its one request: closed about a second later.
    let mut stream = TcpStream::connect(h.central.http_addr).await.unwrap();
    stream
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", h.central.http_addr.port()).as_bytes(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"));
    let idle = started.elapsed();
    assert!(idle >= Duration::from_millis(800) && idle < Duration::from_secs(3), "{idle:?}");

    // An agent's session stream outlives several idle timeouts.
    let (server, token) = h.add_server("web-1").await;
    let state = h.dir.path().join("agent");
    let (stop, agent) = common::run_agent(h.central.grpc_url(), &token, state).await;
    let id = ServerId::parse(&server).unwrap();
    let registry = &h.central.central.agents;
    let connected = |ms: u64| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        registry.connected()
    };
    assert_eq!(connected(1500).await, 1);
    let first_seen = registry.status(&id, db::now_ms()).last_seen_ms;
    assert_eq!(connected(3000).await, 1, "the stream is a call in flight");
    assert_eq!(registry.status(&id, db::now_ms()).status, mttrly_core::tools::common::ConnectionStatus::Online);
    assert!(registry.status(&id, db::now_ms()).last_seen_ms > first_seen);
    let _ = stop.send(true);
    let _ = agent.await;
    h.central.shutdown().await;
}

#[tokio::test]
async fn a_restart_with_a_connected_agent_raises_no_offline_alert() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    common::fast_heartbeats(&mut cfg);
    let init = mttrly_central::init::init(&cfg, None).unwrap();
    let central = start(cfg.clone()).await.unwrap();
    // Come back on the same port, as a real deployment does.
    cfg.grpc_listen = central.grpc_addr;
    let channel = Channel::from_shared(central.grpc_url().to_owned()).unwrap().connect().await.unwrap();
    let added = ServerServiceClient::new(channel)
        .add_server(authed(&init.admin_token, AddServerRequest { name: "web-1".into(), environment: 2 }))
        .await
        .unwrap()
        .into_inner();
    let state = dir.path().join("agent");
    let (stop, agent) = common::run_agent(central.grpc_url(), &added.install_token, state).await;
    let id = ServerId::parse(&added.server_id).unwrap();
    let online = |c: &RunningCentral| {
        c.central.agents.status(&id, db::now_ms()).metrics.is_some() && c.central.agents.connected() == 1
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !online(&central) {
        assert!(Instant::now() < deadline, "the agent never came online");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past the grace period and a few heartbeats, online throughout: nothing to alert.
    tokio::time::sleep(Duration::from_secs(4)).await;
    central.shutdown().await;

    let central = start(cfg).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while central.central.agents.connected() == 0 {
        assert!(Instant::now() < deadline, "the agent never reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Well past the grace period (offline window 2 s + one heartbeat).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let count: i64 = central
        .central
        .db
        .with_connection_for_tests(|conn| {
            conn.query_row("SELECT COUNT(*) FROM alerts WHERE rule = 'agent_offline'", [], |r| r.get(0))
        })
        .await
        .unwrap();
    assert_eq!(count, 0, "a restart must not open (and resolve) an agent_offline alert");
    let _ = stop.send(true);
    let _ = agent.await;
    central.shutdown().await;
}

/// Headers complete, then a body that never arrives (or drips): an unauthenticated client must
/// not hold a connection past the handshake deadline by starting a request it never finishes.
/// Over HTTP/1 (`/oauth/token` reads a form body before anyone is authenticated) and over HTTP/2
/// (a gRPC unary call is decoded before its token is checked).
#[tokio::test]
async fn a_request_whose_body_never_arrives_is_closed_at_the_handshake_deadline() {
    let h = harness(|c| {
        c.handshake_timeout_seconds = 1;
        c.http_idle_timeout_seconds = 1;
        c.grpc_idle_timeout_seconds = 1;
    })
    .await;
    let (http_addr, grpc_addr) = (h.central.http_addr, h.central.grpc_addr);
    let form = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=",
        http_addr.port()
    );
    let form: &'static [u8] = Box::leak(form.into_bytes().into_boxed_slice());
    // An HTTP/2 client preface, empty SETTINGS, then HEADERS (END_HEADERS, no END_STREAM) for a
    // unary call on stream 1, and never a DATA frame.
    let mut h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec();
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    for (index, value) in [(4u8, "/mttrly.central.v1.AccountService/WhoAmI"), (1, "127.0.0.1")] {
        block.push(index); // literal without indexing, indexed name (:path, :authority)
        block.push(u8::try_from(value.len()).unwrap());
        block.extend_from_slice(value.as_bytes());
    }
    block.extend_from_slice(&[0x0f, 0x10, 16]); // content-type (static 31)
    block.extend_from_slice(b"application/grpc");
    block.extend_from_slice(&[0x00, 2]);
    block.extend_from_slice(b"te");
    block.push(8);
    block.extend_from_slice(b"trailers");
    let len = u32::try_from(block.len()).unwrap().to_be_bytes();
    h2.extend_from_slice(&[len[1], len[2], len[3], 0x01, 0x04, 0, 0, 0, 1]);
    h2.extend_from_slice(&block);
    let h2: &'static [u8] = Box::leak(h2.into_boxed_slice());
    let (http_body, grpc_body) = tokio::join!(
        close_times(http_addr, 5, form, Duration::from_secs(8)),
        close_times(grpc_addr, 5, h2, Duration::from_secs(8)),
    );
    let held: Vec<_> = [("http body", &http_body), ("grpc body", &grpc_body)]
        .into_iter()
        .filter(|(_, times)| times.iter().any(|t| t.is_none_or(|t| t >= Duration::from_secs(4))))
        .collect();
    assert!(held.is_empty(), "connections held past the deadline: {held:?}");
    h.central.shutdown().await;
}
