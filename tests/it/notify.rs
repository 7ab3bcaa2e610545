//! Approval prompts through a real local webhook receiver: signed deliveries, retries, and
//! fail-closed when no prompt can be delivered.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mttrly_central::notify::webhook::{WebhookConfig, signature};
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{AddServerRequest, CallToolRequest};
use serde_json::Value;
use tonic::transport::Channel;

use crate::common::{InProcessCentral, authed};

const SECRET: &str = "a-webhook-secret-of-some-length";

#[derive(Default)]
struct Received {
    deliveries: Vec<(HeaderMap, Vec<u8>)>,
}

/// A webhook receiver on loopback that answers `status` and records what it got.
async fn receiver(status: StatusCode) -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let store = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let store = Arc::clone(&store);
            async move {
                store.lock().unwrap().deliveries.push((headers, body.to_vec()));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), received)
}

async fn central_with(url: &str, retries: u32) -> (tempfile::TempDir, mttrly_central::server::RunningCentral, String) {
    let InProcessCentral { dir, central, admin } = InProcessCentral::start(|cfg| {
        cfg.webhooks = vec![WebhookConfig {
            url: url.into(),
            secret: Some(SECRET.into()),
            secret_env: None,
            timeout_seconds: 2,
            retries,
        }];
    })
    .await;
    (dir, central, admin)
}

async fn request_decommission(central: &mttrly_central::server::RunningCentral, token: &str) -> (bool, Value) {
    let channel = Channel::from_shared(central.grpc_url().to_owned()).unwrap().connect().await.unwrap();
    let server = ServerServiceClient::new(channel.clone())
        .add_server(authed(token, AddServerRequest { name: "web-1".into(), environment: 2 }))
        .await
        .unwrap()
        .into_inner()
        .server_id;
    let resp = ToolServiceClient::new(channel.clone())
        .call_tool(authed(
            token,
            CallToolRequest {
                tool_id: "mttrly_decommission_server".into(),
                arguments_json: format!("{{\"server_id\":\"{server}\"}}"),
                client_name: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    (resp.is_error, serde_json::from_str(&resp.structured_json).unwrap())
}

async fn pending_count(central: &mttrly_central::server::RunningCentral, token: &str) -> usize {
    let channel = Channel::from_shared(central.grpc_url().to_owned()).unwrap().connect().await.unwrap();
    let resp = ToolServiceClient::new(channel)
        .call_tool(authed(
            token,
            CallToolRequest {
                tool_id: "mttrly_get_pending_actions".into(),
                arguments_json: "{}".into(),
                client_name: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let v: Value = serde_json::from_str(&resp.structured_json).unwrap();
    v["actions"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_delivered_prompt_is_signed_and_names_exactly_what_runs() {
    let (url, received) = receiver(StatusCode::OK).await;
    let (_dir, central, token) = central_with(&url, 1).await;
    let (is_error, submitted) = request_decommission(&central, &token).await;
    assert!(!is_error, "{submitted}");
    assert_eq!(submitted["status"], "pending_approval");

    let deliveries = std::mem::take(&mut received.lock().unwrap().deliveries);
    assert_eq!(deliveries.len(), 1);
    let (headers, body) = &deliveries[0];
    let ts: i64 = headers["x-mttrly-timestamp"].to_str().unwrap().parse().unwrap();
    assert_eq!(headers["x-mttrly-signature"].to_str().unwrap(), signature(SECRET.as_bytes(), ts, body));
    assert_eq!(headers["x-mttrly-event"], "action.pending");
    let prompt: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(prompt["action_id"], submitted["action_id"]);
    assert_eq!(prompt["content"]["type"], "decommission");
    assert_eq!(prompt["content_sha256"].as_str().unwrap().len(), 64);
    assert!(prompt["approve_command"].as_str().unwrap().starts_with("mttrly-cli actions approve act_"));
    assert_eq!(pending_count(&central, &token).await, 1);
    central.shutdown().await;
}

#[tokio::test]
async fn an_undeliverable_prompt_fails_the_action_closed() {
    let (url, received) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let (_dir, central, token) = central_with(&url, 2).await;
    let (is_error, body) = request_decommission(&central, &token).await;
    assert!(is_error);
    assert_eq!(body["code"], "APPROVAL_NOTIFICATION_FAILED");
    let action_id = body["details"]["action_id"].as_str().unwrap().to_owned();
    assert!(body["message"].as_str().unwrap().contains(&action_id));
    assert_eq!(received.lock().unwrap().deliveries.len(), 3, "one attempt and two retries");
    assert_eq!(pending_count(&central, &token).await, 0, "the action is not pending");

    let channel = Channel::from_shared(central.grpc_url().to_owned()).unwrap().connect().await.unwrap();
    let resp = ToolServiceClient::new(channel)
        .call_tool(authed(
            &token,
            CallToolRequest {
                tool_id: "mttrly_get_action_result".into(),
                arguments_json: format!("{{\"action_id\":\"{action_id}\"}}"),
                client_name: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let view: Value = serde_json::from_str(&resp.structured_json).unwrap();
    assert_eq!(view["status"], "failed_closed");
    central.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_webhook_fails_closed_too() {
    let port = { std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port() };
    let (_dir, central, token) = central_with(&format!("http://127.0.0.1:{port}/hook"), 0).await;
    let (is_error, body) = request_decommission(&central, &token).await;
    assert!(is_error);
    assert_eq!(body["code"], "APPROVAL_NOTIFICATION_FAILED");
    central.shutdown().await;
}
