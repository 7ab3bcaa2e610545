//! Thin transports over one app layer: every entry point shows a caller the same tools
//! (gRPC `ListTools`, MCP `tools/list`, `mttrly_get_capabilities` and admission all read
//! `tools::reach`), and a credential is accepted or refused identically on the gRPC API and on
//! `/mcp` (`auth::resolve`), OAuth access tokens aside: they work on `/mcp` only.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use crate::common::{self, Harness, Mcp, authed, header};
use mttrly_central::config::Config;
use mttrly_central::{db, secrets};
use mttrly_core::{Plan, Principal, ToolId, ToolSurface};
use mttrly_proto::agent::v1::EnrollRequest;
use mttrly_proto::agent::v1::agent_service_client::AgentServiceClient;
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{
    AddServerRequest, CallToolRequest, CreateTokenRequest, ListServersRequest, ListToolsRequest,
};
use serde_json::{Value, json};

async fn harness(tune: impl FnOnce(&mut Config)) -> Harness {
    common::harness(|cfg| {
        cfg.rate_limit_principal_per_minute = 10_000;
        cfg.rate_limit_account_per_minute = 10_000;
        tune(cfg);
    })
    .await
}

impl common::Harness {
    async fn token(&self, assistant: &str, read_only: bool, toolsets: &str) -> String {
        AccountServiceClient::new(self.channel().await)
            .create_token(authed(
                &self.admin,
                CreateTokenRequest {
                    assistant_name: assistant.into(),
                    human: assistant.is_empty(),
                    read_only,
                    toolsets: toolsets.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .token
    }

    /// gRPC `ListTools`: the tools marked available, and those marked listed.
    async fn listed_over_grpc(&self, token: &str) -> (BTreeSet<ToolId>, BTreeSet<ToolId>) {
        let reply =
            ToolServiceClient::new(self.channel().await).list_tools(authed(token, ListToolsRequest {})).await.unwrap();
        let tools = reply.into_inner().tools;
        assert_eq!(tools.len(), ToolId::ALL.len(), "ListTools lists the whole catalog");
        let ids = |keep: fn(&mttrly_proto::central::v1::Tool) -> bool| {
            tools.iter().filter(|t| keep(t)).map(|t| t.id.parse().unwrap()).collect()
        };
        (ids(|t| t.available), ids(|t| t.listed))
    }

    /// gRPC `CallTool`: the structured result, or the error body.
    async fn call_over_grpc(&self, token: &str, tool: ToolId, arguments: &Value) -> (bool, Value) {
        let reply = ToolServiceClient::new(self.channel().await)
            .call_tool(authed(
                token,
                CallToolRequest {
                    tool_id: tool.as_str().into(),
                    arguments_json: arguments.to_string(),
                    client_name: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        (!reply.is_error, serde_json::from_str(&reply.structured_json).unwrap())
    }

    /// The HTTP status of an MCP `initialize` with `token`, and the body.
    async fn mcp_initialize(&self, token: &str) -> (u16, Vec<(String, String)>, Value) {
        let mcp = Mcp { addr: self.central.http_addr, token: token.to_owned(), client: "reach" };
        match mcp.open().await {
            Ok(_) => (200, Vec::new(), Value::Null),
            Err(refused) => refused,
        }
    }
}

fn ids(value: &Value) -> BTreeSet<ToolId> {
    value.as_array().unwrap().iter().map(|t| t.as_str().unwrap().parse().unwrap()).collect()
}

/// A refusal by admission (reach), as opposed to the handler's own answer.
fn refused_by_admission(body: &Value) -> bool {
    let message = body["message"].as_str().unwrap_or_default();
    body["code"] == "PLAN_REQUIRED"
        || message.contains("is switched off here")
        || message.contains("is not available on this central")
}

/// For one caller: gRPC `ListTools`, `mttrly_get_capabilities` over gRPC and over MCP, MCP
/// `tools/list` and admission of every catalog tool all give the same answer. Returns the
/// callable set.
async fn one_answer_for(h: &Harness, who: &str, token: &str) -> BTreeSet<ToolId> {
    let (listed, listed_for_mcp) = h.listed_over_grpc(token).await;
    let (ok, caps) = h.call_over_grpc(token, ToolId::GetCapabilities, &json!({})).await;
    assert!(ok, "{who}: {caps}");
    let available = ids(&caps["available_tools"]);
    assert_eq!(listed, available, "{who}: ListTools and mttrly_get_capabilities agree");
    let plan_gated: BTreeSet<ToolId> = caps["restricted_tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["required_plan"].is_null())
        .map(|r| r["tool_id"].as_str().unwrap().parse().unwrap())
        .collect();
    let restricted: BTreeSet<ToolId> = caps["restricted_tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tool_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(available.len() + restricted.len(), ToolId::ALL.len(), "{who}: every tool is one or the other");

    let mcp = Mcp { addr: h.central.http_addr, token: token.to_owned(), client: "reach" };
    let session = mcp.open().await.unwrap();
    let tools_list = mcp.request(&session, "tools/list", json!({})).await;
    let shown: BTreeSet<ToolId> = tools_list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().parse().unwrap())
        .collect();
    let expected: BTreeSet<ToolId> = available.union(&plan_gated).copied().collect();
    assert_eq!(shown, expected, "{who}: tools/list shows the callable tools and those only the plan holds back");
    assert_eq!(listed_for_mcp, shown, "{who}: ListTools tells the standalone MCP server the same list");
    let over_mcp =
        mcp.request(&session, "tools/call", json!({ "name": "mttrly_get_capabilities", "arguments": {} })).await;
    let over_mcp = &over_mcp["result"]["structuredContent"];
    assert_eq!(ids(&over_mcp["available_tools"]), available, "{who}: the same capabilities over MCP");

    for &tool in ToolId::ALL {
        let (ok, body) = h.call_over_grpc(token, tool, &json!({})).await;
        let refused = !ok && refused_by_admission(&body);
        assert_eq!(refused, !available.contains(&tool), "{who}: admission of {tool} agrees: {body}");
    }
    available
}

fn read_only(tools: &BTreeSet<ToolId>) -> bool {
    tools.iter().all(|t| t.spec().hints.read_only())
}

#[tokio::test]
async fn every_transport_shows_a_caller_the_tools_admission_lets_it_call() {
    let h = harness(|_| {}).await;
    let admin = one_answer_for(&h, "admin", &h.admin).await;
    assert_eq!(admin, mttrly_central::tools::AVAILABLE.iter().copied().collect(), "the admin reaches everything built");

    let assistant = h.token("claude-code", false, "").await;
    assert_eq!(one_answer_for(&h, "assistant", &assistant).await, admin);

    let reader = h.token("viewer-bot", true, "").await;
    let reach = one_answer_for(&h, "read-only token", &reader).await;
    assert!(read_only(&reach) && reach.contains(&ToolId::ListServers), "{reach:?}");
    assert!(!reach.contains(&ToolId::ExecuteCommand));

    let files = h.token("files-bot", false, "servers,files").await;
    let reach = one_answer_for(&h, "toolset token", &files).await;
    assert!(reach.contains(&ToolId::ReadFile) && reach.contains(&ToolId::WriteFile), "{reach:?}");
    assert!(reach.iter().all(|t| ["servers", "files"].contains(&t.spec().toolset.as_str())), "{reach:?}");
    h.central.shutdown().await;
}

#[tokio::test]
async fn a_read_only_deployment_narrows_list_tools_like_every_other_entry_point() {
    let h = harness(|c| {
        c.tools = ToolSurface::from_flags(true, Some("servers,commands")).unwrap();
        c.plan = Plan::Watchdog;
    })
    .await;
    for (who, token) in [
        ("admin", h.admin.clone()),
        ("assistant", h.token("claude-code", false, "").await),
        // The token's toolsets and the deployment's intersect: `servers` only.
        ("toolset token", h.token("files-bot", false, "servers,files").await),
    ] {
        let reach = one_answer_for(&h, who, &token).await;
        assert!(read_only(&reach), "{who}: {reach:?}");
        assert!(!reach.contains(&ToolId::ExecuteScript) && !reach.contains(&ToolId::ReadFile), "{who}: {reach:?}");
        if who == "toolset token" {
            assert!(reach.iter().all(|t| t.spec().toolset.as_str() == "servers"), "{reach:?}");
        }
    }
    h.central.shutdown().await;
}

#[tokio::test]
async fn a_tool_beyond_the_plan_is_listed_on_mcp_and_callable_nowhere() {
    let h = harness(|c| c.plan = Plan::Watchdog).await;
    for (who, token) in [("admin", h.admin.clone()), ("assistant", h.token("claude-code", false, "").await)] {
        // `one_answer_for` checks tools/list = callable + plan-gated; this tool is plan-gated.
        let reach = one_answer_for(&h, who, &token).await;
        assert!(!reach.contains(&ToolId::RunDiagnostic) && reach.contains(&ToolId::ListServers), "{who}: {reach:?}");
        let (ok, body) = h.call_over_grpc(&token, ToolId::RunDiagnostic, &json!({})).await;
        assert!(!ok && body["details"]["required_plan"] == "deployment_bro", "{who}: {body}");
    }
    h.central.shutdown().await;
}

/// An OAuth access token for `resource`, expiring at `expires_at` (ms), granted by `human`.
async fn oauth_access_token(h: &Harness, human: &str, resource: &str, expires_at: i64) -> String {
    let access = secrets::generate(secrets::SecretKind::OAuthAccess);
    let (hash, human_hash, resource) = (secrets::hash(&access), secrets::hash(human), resource.to_owned());
    let db = &h.central.central.db;
    let owner = db.credentials().api_token(&human_hash).await.unwrap().unwrap();
    let Principal::Human { user_id, .. } = owner.principal else { unreachable!("a human token") };
    let client_id = secrets::generate(secrets::SecretKind::OAuthClient);
    let client = db::oauth::Client {
        client_id: client_id.clone(),
        client_name: "test-client".into(),
        redirect_uris: vec!["https://app.example.com/cb".into()],
    };
    db.oauth().insert_client(client, db::now_ms()).await.unwrap();
    let grant = db::oauth::CodeGrant {
        client_id,
        account_id: owner.account_id,
        user_id,
        redirect_uri: "https://app.example.com/cb".into(),
        code_challenge: String::new(),
        resource,
        scope: "mcp".into(),
        human_token_hash: Some(human_hash.to_vec()),
        surface: ToolSurface::ALL,
        grant_expires_at: db::now_ms() + 3_600_000,
    };
    // Its refresh token is never presented: only the access token is under test.
    let family = secrets::generate(secrets::SecretKind::OAuthRefresh);
    let unused_refresh = secrets::hash(&secrets::generate(secrets::SecretKind::OAuthRefresh));
    db.oauth()
        .insert_token_pair(db::oauth::TokenPair {
            grant,
            family,
            access_hash: hash,
            access_expires_at: expires_at,
            refresh_hash: unused_refresh,
            refresh_expires_at: expires_at,
        })
        .await
        .unwrap();
    access
}

#[tokio::test]
async fn a_credential_is_accepted_or_refused_alike_on_grpc_and_on_mcp() {
    let h = harness(|_| {}).await;
    let assistant = h.token("claude-code", false, "").await;
    let revoked = h.token("gone", false, "").await;
    let hash = secrets::hash(&revoked);
    h.central
        .central
        .db
        .with_connection_for_tests(move |conn| {
            conn.execute("UPDATE api_tokens SET revoked_at = 1 WHERE token_hash = ?1", [hash.as_slice()])
        })
        .await
        .unwrap();
    let added = ServerServiceClient::new(h.channel().await)
        .add_server(authed(&h.admin, AddServerRequest { name: "web-1".into(), environment: 2 }))
        .await
        .unwrap()
        .into_inner();
    let install = added.install_token.clone();
    // A second server's install token, enrolled: its agent credential.
    let other = ServerServiceClient::new(h.channel().await)
        .add_server(authed(&h.admin, AddServerRequest { name: "web-2".into(), environment: 2 }))
        .await
        .unwrap()
        .into_inner();
    let agent_secret = AgentServiceClient::new(h.channel().await)
        .enroll(EnrollRequest {
            install_token: other.install_token,
            hostname: "web-2".into(),
            agent_version: "0.1.0".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .agent_secret;
    let refresh = secrets::generate(secrets::SecretKind::OAuthRefresh);

    let cases: [(&str, &str, Option<&str>); 7] = [
        ("human token", &h.admin, None),
        ("assistant token", &assistant, None),
        ("revoked token", &revoked, Some("unknown, revoked or expired")),
        ("made-up token", "mttrly_h_not-a-real-token", Some("unknown, revoked or expired")),
        ("install token", &install, Some("install token")),
        ("agent credential", &agent_secret, Some("agent credential")),
        ("OAuth refresh token", &refresh, Some("refresh token")),
    ];
    for (what, token, refusal) in cases {
        let grpc = ServerServiceClient::new(h.channel().await).list_servers(authed(token, ListServersRequest {})).await;
        let (status, headers, body) = h.mcp_initialize(token).await;
        match refusal {
            None => {
                assert!(grpc.is_ok(), "{what} over gRPC: {grpc:?}");
                assert_eq!(status, 200, "{what} on /mcp: {body}");
            }
            Some(expected) => {
                let err = mttrly_proto::status::from_status(&grpc.unwrap_err());
                assert_eq!(err.code(), mttrly_core::ErrorCode::AuthFailed, "{what}");
                assert!(err.message().contains(expected), "{what} over gRPC: {}", err.message());
                assert_eq!(status, 401, "{what} on /mcp: {body}");
                assert_eq!(body["code"], "AUTH_FAILED", "{what}");
                assert_eq!(body["message"].as_str(), Some(err.message()), "{what}: one message on both transports");
                assert!(header(&headers, "www-authenticate").is_some_and(|c| c.contains("invalid_token")), "{what}");
            }
        }
    }
    // The agent's session takes its own credential for its own server, and nothing else.
    for (what, token, server) in [
        ("human token", h.admin.as_str(), other.server_id.as_str()),
        ("install token", install.as_str(), added.server_id.as_str()),
        ("another server's agent credential", agent_secret.as_str(), added.server_id.as_str()),
    ] {
        let mut req = tonic::Request::new(tokio_stream::iter(Vec::<mttrly_proto::agent::v1::AgentMessage>::new()));
        req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        req.metadata_mut().insert("x-mttrly-server-id", server.parse().unwrap());
        let err = AgentServiceClient::new(h.channel().await).session(req).await.unwrap_err();
        let err = mttrly_proto::status::from_status(&err);
        assert_eq!(err.code(), mttrly_core::ErrorCode::AuthFailed, "{what}");
        assert!(err.message().contains("agent credentials are unknown"), "{what}: {}", err.message());
    }

    // Nothing presented at all: refused on both, each saying how to pass a token there.
    let grpc = ServerServiceClient::new(h.channel().await).list_servers(ListServersRequest {}).await;
    assert_eq!(mttrly_proto::status::from_status(&grpc.unwrap_err()).code(), mttrly_core::ErrorCode::AuthFailed);

    // OAuth access tokens: bound to the MCP resource they were issued for, never the gRPC API.
    let resource = h.central.mcp_url();
    let access = oauth_access_token(&h, &h.admin, &resource, db::now_ms() + 600_000).await;
    assert_eq!(h.mcp_initialize(&access).await.0, 200, "an access token works on its own resource");
    let grpc = ServerServiceClient::new(h.channel().await).list_servers(authed(&access, ListServersRequest {})).await;
    let err = mttrly_proto::status::from_status(&grpc.unwrap_err());
    assert_eq!(err.code(), mttrly_core::ErrorCode::AuthFailed);
    assert!(err.message().contains("only work on the MCP endpoint"), "{}", err.message());
    let elsewhere = oauth_access_token(&h, &h.admin, "https://elsewhere.example.com/mcp", db::now_ms() + 600_000).await;
    let (status, _, body) = h.mcp_initialize(&elsewhere).await;
    assert_eq!(status, 401);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("another resource")), "{body}");
    let expired = oauth_access_token(&h, &h.admin, &resource, db::now_ms() - 1).await;
    let (status, _, body) = h.mcp_initialize(&expired).await;
    assert_eq!(status, 401);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("unknown, revoked or expired")), "{body}");
    h.central.shutdown().await;
}
