//! MCP over raw HTTP/1.1: one request per connection, exactly the headers a test gives, so tests
//! control `Authorization`, `Origin`, `Mcp-Session-Id` and the protocol version (an rmcp client,
//! [`crate::mcp`], would fill them in for them).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::RawResponse;

/// How long one exchange may take before the test fails.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP/1.1 exchange on `/mcp` with `Connection: close`: (status, lower-cased headers, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let mut request = format!("{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", addr.port());
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.expect("send the request");
    let mut raw = Vec::new();
    tokio::time::timeout(EXCHANGE_TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| panic!("{method} /mcp: no complete answer within {EXCHANGE_TIMEOUT:?}"))
        .expect("read the answer");
    let RawResponse { status, headers, body } = RawResponse::parse(&raw);
    (status, headers, body)
}

/// The first header named `name` (lower case).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The JSON error body of a refused request, or the JSON-RPC message inside an SSE body.
pub fn json_of(body: &str) -> Value {
    let data = body.lines().find_map(|l| l.strip_prefix("data: ")).filter(|d| !d.is_empty());
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |e| e + 1);
    serde_json::from_str(data.unwrap_or(&body[start..end])).unwrap_or(Value::Null)
}

/// An MCP client of one token over raw HTTP; `client` is the `clientInfo` name it initializes with.
pub struct Mcp {
    /// Central's HTTP listener.
    pub addr: SocketAddr,
    /// The bearer token.
    pub token: String,
    /// The client name sent in `initialize`.
    pub client: &'static str,
}

impl Mcp {
    /// The headers of an MCP POST with `bearer` (`Bearer …`), in `session` when given.
    pub fn headers<'a>(bearer: &'a str, session: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
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
    pub async fn open(&self) -> Result<String, (u16, Vec<(String, String)>, Value)> {
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
    pub async fn request(&self, session: &str, method: &str, params: Value) -> Value {
        let bearer = format!("Bearer {}", self.token);
        let call = json!({ "jsonrpc": "2.0", "id": 2, "method": method, "params": params });
        let (status, _, body) =
            http(self.addr, "POST", &Self::headers(&bearer, Some(session)), &call.to_string()).await;
        assert_eq!(status, 200, "{body}");
        json_of(&body)
    }

    /// `tools/call` of `tool` with no arguments.
    pub async fn call(&self, session: &str, tool: &str) -> Value {
        self.request(session, "tools/call", json!({ "name": tool, "arguments": {} })).await
    }

    /// `DELETE` of `session`: the status.
    pub async fn delete(&self, session: &str) -> u16 {
        let bearer = format!("Bearer {}", self.token);
        http(self.addr, "DELETE", &Self::headers(&bearer, Some(session)), "").await.0
    }
}
