//! Correctness a first-time user hit: OAuth redirect URIs with an empty authority are refused at
//! registration (the consent page showed an empty host for `https:///evil.test/cb`, which
//! browsers send to `evil.test`).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mttrly_central::server::start;
use mttrly_tests::RawResponse;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common;

async fn post_json(addr: std::net::SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        addr.port(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await.unwrap().unwrap();
    let response = RawResponse::parse(&raw);
    (response.status, serde_json::from_str(&response.body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn redirect_uris_without_a_real_host_are_refused_at_registration() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(dir.path());
    mttrly_central::init::init(&cfg, None).unwrap();
    let central = start(cfg).await.unwrap();
    for bad in ["https:///evil.test/cb", "https://:8443/cb", "https://evil.test./cb", "http:///localhost/cb"] {
        let (status, body) =
            post_json(central.http_addr, "/oauth/register", &json!({ "redirect_uris": [bad], "client_name": "x" }))
                .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_redirect_uri", "{bad}: {body}");
    }
    let (status, body) = post_json(
        central.http_addr,
        "/oauth/register",
        &json!({ "redirect_uris": ["https://app.example.com/cb"], "client_name": "x" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    central.shutdown().await;
}
