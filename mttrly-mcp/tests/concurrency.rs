//! Requests of one MCP session are served concurrently, each answer on its own request's stream.
//!
//! A backend whose calls only finish once `N` of them are running at the same time: if the
//! session handled its requests one at a time, the first would wait for a second that never
//! starts, and time out. Real Streamable HTTP on loopback, one connection per request, one
//! session (`Mcp-Session-Id`) for all of them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::{ErrorCode, MttrlyError, ToolId};
use mttrly_mcp::http::{HttpOptions, service_with_caller};
use mttrly_mcp::server::Options;
use mttrly_mcp::{Backend, Session};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

/// How many calls must be in flight together before any of them answers.
const TOGETHER: usize = 8;

/// Every call waits at a barrier of [`TOGETHER`], then echoes its arguments.
struct Rendezvous {
    barrier: Barrier,
}

impl Backend for Rendezvous {
    type Caller = String;

    fn caller_key(&self, caller: &String) -> String {
        caller.clone()
    }

    async fn tools(&self, _caller: &String) -> Result<Vec<ToolId>, MttrlyError> {
        Ok(vec![ToolId::ListServers])
    }

    async fn call(
        &self,
        _caller: &String,
        _session: &Session,
        _tool: ToolId,
        arguments: Value,
    ) -> Result<Value, MttrlyError> {
        match tokio::time::timeout(Duration::from_secs(10), self.barrier.wait()).await {
            Ok(_) => Ok(json!({ "echo": arguments })),
            Err(_) => Err(MttrlyError::new(ErrorCode::Timeout, "the other calls of this session never started")),
        }
    }

    /// This backend creates no actions, so none is ever waited for.
    async fn await_action(
        &self,
        _caller: &String,
        _session: &Session,
        action_id: &str,
        _deadline: tokio::time::Instant,
    ) -> Result<Value, MttrlyError> {
        Err(MttrlyError::new(ErrorCode::ActionNotFound, format!("no action {action_id} here")))
    }
}

/// One HTTP/1.1 POST on its own connection; returns the response head and the de-chunked body.
async fn post(addr: std::net::SocketAddr, session: Option<&str>, body: &Value) -> (String, String) {
    let body = body.to_string();
    let session =
        session.map(|s| format!("Mcp-Session-Id: {s}\r\nMCP-Protocol-Version: 2025-06-18\r\n")).unwrap_or_default();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{session}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return (head.to_owned(), rest.to_owned());
    }
    let (mut body, mut rest) = (String::new(), rest);
    loop {
        let (size, tail) = rest.split_once("\r\n").expect("a chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return (head.to_owned(), body);
        }
        body.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
}

/// The JSON-RPC message in an SSE (or plain JSON) answer.
fn message(body: &str) -> Value {
    let data = body.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim).find(|d| !d.is_empty());
    serde_json::from_str(data.unwrap_or(body)).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_one_session_run_concurrently_and_each_answer_keeps_its_id() {
    let backend = Arc::new(Rendezvous { barrier: Barrier::new(TOGETHER) });
    let http = HttpOptions { allowed_hosts: vec!["127.0.0.1".into()], allowed_origins: Vec::new() };
    let service = service_with_caller(backend, Options::default(), http, "alice".to_owned());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().nest_service("/mcp", service)).await });

    let init = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
    });
    let (head, _) = post(addr, None, &init).await;
    let session = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("mcp-session-id:").map(|_| l[15..].trim().to_owned()))
        .expect("a session id");
    post(addr, Some(&session), &json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;

    let calls = (0..TOGETHER).map(|i| {
        let session = session.clone();
        tokio::spawn(async move {
            let id = 100 + i;
            let call = json!({
                "jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": { "name": "mttrly_list_servers", "arguments": { "n": i } }
            });
            (id, message(&post(addr, Some(&session), &call).await.1))
        })
    });
    let answers = tokio::time::timeout(Duration::from_secs(30), futures_join(calls.collect())).await.expect("answers");
    for (id, answer) in answers {
        assert_eq!(answer["id"], id, "each answer goes to its own request: {answer}");
        assert_ne!(answer["result"]["isError"], true, "{answer}");
        assert_eq!(answer["result"]["structuredContent"]["echo"]["n"], id - 100, "{answer}");
    }
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<(usize, Value)>>) -> Vec<(usize, Value)> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
