//! Test setup shared by mttrly-central's integration tests: a central on loopback with its admin
//! token, authenticated gRPC requests, and a minimal HTTP/1.1 MCP client.
//!
//! The `mttrly-tests` harness crate has a similar raw HTTP helper, but it depends on
//! mttrly-central, so these tests cannot use it; this module keeps central's one copy.

// Each test file is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use mttrly_central::config::Config;
use mttrly_central::server::{RunningCentral, start};
use mttrly_core::ErrorCode;
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{Action, CallToolRequest, GetActionRequest};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic::transport::Channel;

/// A config in `dir` listening on ephemeral loopback ports.
pub(crate) fn config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.join("data"),
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

/// Heartbeats every second, offline after two missed: agents' liveness shows within seconds.
pub(crate) fn fast_heartbeats(cfg: &mut Config) {
    cfg.heartbeat_interval_seconds = 1;
    cfg.offline_after_missed_heartbeats = 2;
}

/// An initialised, running central and its admin token.
pub(crate) struct Harness {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) central: RunningCentral,
    pub(crate) admin: String,
}

/// A central on [`config`], adjusted by `tune` before `init`.
pub(crate) async fn harness(tune: impl FnOnce(&mut Config)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    tune(&mut cfg);
    let init = mttrly_central::init::init(&cfg, None).unwrap();
    let central = start(cfg).await.unwrap();
    Harness { dir, central, admin: init.admin_token }
}

impl Harness {
    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(self.central.grpc_url().to_owned()).unwrap().connect().await.unwrap()
    }
}

/// `CallTool` as `claude-code` on `channel`: whether it is an error, and its structured result.
pub(crate) async fn call_tool(channel: Channel, token: &str, tool: &str, args: Value) -> (bool, Value) {
    let r = ToolServiceClient::new(channel)
        .call_tool(authed(
            token,
            CallToolRequest {
                tool_id: tool.into(),
                arguments_json: args.to_string(),
                client_name: "claude-code".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    (r.is_error, serde_json::from_str(&r.structured_json).unwrap())
}

/// `GetAction` of `id` as `token`.
pub(crate) async fn get_action(channel: Channel, token: &str, id: &str) -> Action {
    ActionServiceClient::new(channel)
        .get_action(authed(token, GetActionRequest { action_id: id.into() }))
        .await
        .unwrap()
        .into_inner()
        .action
        .unwrap()
}

pub(crate) fn authed<T>(token: &str, body: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(body);
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

pub(crate) fn code(status: &tonic::Status) -> ErrorCode {
    mttrly_proto::status::from_status(status).code()
}

/// One HTTP/1.1 exchange on `/mcp` with `Connection: close`: (status, lower-cased headers, body).
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", addr.port());
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The JSON error body of a refused request, or the JSON-RPC message inside an SSE body.
pub(crate) fn json_of(body: &str) -> Value {
    let data = body.lines().find_map(|l| l.strip_prefix("data: ")).filter(|d| !d.is_empty());
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |e| e + 1);
    serde_json::from_str(data.unwrap_or(&body[start..end])).unwrap_or(Value::Null)
}

/// An MCP client of one token over raw HTTP; `client` is the `clientInfo` name it initializes with.
pub(crate) struct Mcp {
    pub(crate) addr: SocketAddr,
    pub(crate) token: String,
    pub(crate) client: &'static str,
}

impl Mcp {
    pub(crate) fn headers<'a>(bearer: &'a str, session: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut h = vec![
            ("Authorization", bearer),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Protocol-Version", "2025-06-18"),
        ];
        if let Some(id) = session {
            h.push(("Mcp-Session-Id", id));
        }
        h
    }

    /// `initialize` then `initialized`: the session id, or the refusal (status, headers, body).
    pub(crate) async fn open(&self) -> Result<String, (u16, Vec<(String, String)>, Value)> {
        let bearer = format!("Bearer {}", self.token);
        let init = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": self.client, "version": "1" } }
        });
        let (status, headers, body) = http(self.addr, "POST", &Self::headers(&bearer, None), &init.to_string()).await;
        let Some(id) = header(&headers, "mcp-session-id").map(str::to_owned) else {
            return Err((status, headers, json_of(&body)));
        };
        let done = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string();
        let (status, _, _) = http(self.addr, "POST", &Self::headers(&bearer, Some(&id)), &done).await;
        assert_eq!(status, 202);
        Ok(id)
    }

    /// One JSON-RPC request in `session`; it must answer 200.
    pub(crate) async fn request(&self, session: &str, method: &str, params: Value) -> Value {
        let bearer = format!("Bearer {}", self.token);
        let call = json!({ "jsonrpc": "2.0", "id": 2, "method": method, "params": params });
        let (status, _, body) =
            http(self.addr, "POST", &Self::headers(&bearer, Some(session)), &call.to_string()).await;
        assert_eq!(status, 200, "{body}");
        json_of(&body)
    }

    /// `tools/call` of `tool` with no arguments.
    pub(crate) async fn call(&self, session: &str, tool: &str) -> Value {
        self.request(session, "tools/call", json!({ "name": tool, "arguments": {} })).await
    }

    /// `DELETE` of `session`: the status.
    pub(crate) async fn delete(&self, session: &str) -> u16 {
        let bearer = format!("Bearer {}", self.token);
        http(self.addr, "DELETE", &Self::headers(&bearer, Some(session)), "").await.0
    }
}

/// Enrolls an agent with `install_token` into `state` and runs it: the stop switch and its task.
#[cfg(feature = "quickstart-agent")]
pub(crate) async fn run_agent(
    grpc_url: &str,
    install_token: &str,
    state: std::path::PathBuf,
) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<Result<(), mttrly_agent::AgentError>>) {
    mttrly_agent::enroll::enroll(grpc_url, install_token, None, &state, false).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(mttrly_agent::run(
        mttrly_agent::RunOptions::new(state, mttrly_agent::policy::LocalPolicy::default()),
        stopped,
    ));
    (stop, agent)
}
