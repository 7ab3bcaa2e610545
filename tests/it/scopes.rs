//! Token scopes cap what a token can do with decisions and with new tokens (probe F9): a token
//! creates only tokens as narrow as itself, and a read-only or actions-less token decides nothing,
//! on every decision call. Also: a decision relayed from MCP is refused whoever holds the token.

#![allow(clippy::unwrap_used)]

use mttrly_core::ErrorCode;
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{
    AddServerRequest, ApproveActionRequest, CallToolRequest, CancelActionRequest, CreateTokenRequest, GetActionRequest,
    RejectActionRequest,
};

use crate::common::{self, Harness, authed, code};

async fn harness() -> Harness {
    common::harness(|_| {}).await
}

impl common::Harness {
    async fn create(&self, token: &str, human: bool, read_only: bool, toolsets: &str) -> Result<String, tonic::Status> {
        AccountServiceClient::new(self.channel().await)
            .create_token(authed(
                token,
                CreateTokenRequest {
                    assistant_name: if human { String::new() } else { "bot".into() },
                    human,
                    read_only,
                    toolsets: toolsets.into(),
                },
            ))
            .await
            .map(|r| r.into_inner().token)
    }

    /// A pending action (decommissioning a server that never came online) and its content hash.
    async fn pending(&self, name: &str) -> (String, String) {
        let server = ServerServiceClient::new(self.channel().await)
            .add_server(authed(&self.admin, AddServerRequest { name: name.into(), environment: 2 }))
            .await
            .unwrap()
            .into_inner()
            .server_id;
        let reply = ToolServiceClient::new(self.channel().await)
            .call_tool(authed(
                &self.admin,
                CallToolRequest {
                    tool_id: "mttrly_decommission_server".into(),
                    arguments_json: serde_json::json!({ "server_id": server }).to_string(),
                    client_name: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!reply.is_error, "{}", reply.structured_json);
        let value: serde_json::Value = serde_json::from_str(&reply.structured_json).unwrap();
        let id = value["action_id"].as_str().unwrap().to_owned();
        let action = ActionServiceClient::new(self.channel().await)
            .get_action(authed(&self.admin, GetActionRequest { action_id: id.clone() }))
            .await
            .unwrap()
            .into_inner()
            .action
            .unwrap();
        (id, action.content_sha256)
    }

    async fn approve(&self, token: &str, id: &str, sha: &str, via_mcp: bool) -> Result<String, tonic::Status> {
        ActionServiceClient::new(self.channel().await)
            .approve_action(authed(
                token,
                ApproveActionRequest {
                    action_id: id.into(),
                    content_sha256: sha.into(),
                    wait_seconds: 5,
                    via_mcp,
                    second_factor_code: String::new(),
                },
            ))
            .await
            .map(|r| r.into_inner().action.unwrap().status)
    }

    async fn reject(&self, token: &str, id: &str) -> Result<String, tonic::Status> {
        ActionServiceClient::new(self.channel().await)
            .reject_action(authed(
                token,
                RejectActionRequest { action_id: id.into(), reason: "no".into(), via_mcp: false },
            ))
            .await
            .map(|r| r.into_inner().action.unwrap().status)
    }

    async fn cancel(&self, token: &str, id: &str) -> Result<String, tonic::Status> {
        ActionServiceClient::new(self.channel().await)
            .cancel_action(authed(token, CancelActionRequest { action_id: id.into(), via_mcp: false }))
            .await
            .map(|r| r.into_inner().action.unwrap().status)
    }

    async fn status(&self, id: &str) -> String {
        common::get_action(self.channel().await, &self.admin, id).await.status
    }
}

#[tokio::test]
async fn a_scoped_token_can_only_create_tokens_as_narrow_as_itself() {
    let h = harness().await;
    // Probe F9: `tokens create --human --read-only`, then that token asks for an unscoped one.
    let read_only = h.create(&h.admin, true, true, "").await.unwrap();
    for (human, ro, sets) in
        [(true, false, ""), (false, false, ""), (true, false, "servers"), (false, false, "actions")]
    {
        let err = h.create(&read_only, human, ro, sets).await.unwrap_err();
        assert_eq!(code(&err), ErrorCode::Forbidden, "{human} {ro} {sets:?}: {err:?}");
        assert!(err.message().contains("as narrow as itself"), "{err:?}");
    }
    // As narrow, or narrower, is fine.
    h.create(&read_only, true, true, "").await.unwrap();
    let narrower = h.create(&read_only, false, true, "servers").await.unwrap();
    // ... and the narrower one is capped by its own scope in turn.
    assert_eq!(code(&h.create(&narrower, false, true, "servers,actions").await.unwrap_err()), ErrorCode::Forbidden);
    assert_eq!(code(&h.create(&narrower, true, true, "").await.unwrap_err()), ErrorCode::Forbidden);

    let scoped = h.create(&h.admin, true, false, "servers,actions").await.unwrap();
    h.create(&scoped, true, false, "actions").await.unwrap();
    h.create(&scoped, false, true, "servers,actions").await.unwrap();
    for sets in ["", "servers,commands", "commands"] {
        assert_eq!(code(&h.create(&scoped, true, false, sets).await.unwrap_err()), ErrorCode::Forbidden, "{sets}");
    }
    h.central.shutdown().await;
}

#[tokio::test]
async fn a_read_only_or_actions_less_token_decides_nothing() {
    let h = harness().await;
    let read_only = h.create(&h.admin, true, true, "").await.unwrap();
    let no_actions = h.create(&h.admin, true, false, "servers,commands").await.unwrap();
    let (id, sha) = h.pending("web-1").await;
    for token in [&read_only, &no_actions] {
        let err = h.approve(token, &id, &sha, false).await.unwrap_err();
        assert_eq!(code(&err), ErrorCode::Forbidden, "{err:?}");
        assert!(err.message().contains("decides nothing"), "{err:?}");
        assert_eq!(code(&h.reject(token, &id).await.unwrap_err()), ErrorCode::Forbidden);
        assert_eq!(code(&h.cancel(token, &id).await.unwrap_err()), ErrorCode::Forbidden);
    }
    assert_eq!(h.status(&id).await, "pending_approval");

    // `actions show` tells such a holder why, before they try.
    let shown = ActionServiceClient::new(h.channel().await)
        .get_action(authed(&read_only, GetActionRequest { action_id: id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .action
        .unwrap();
    assert!(shown.approval_check.contains("decides nothing"), "{}", shown.approval_check);

    // Relayed from MCP, even the admin's own token is refused: MCP is not a decision channel.
    let err = h.approve(&h.admin, &id, &sha, true).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::Forbidden);
    assert!(err.message().contains("accepted through: cli"), "{err:?}");
    assert_eq!(h.status(&id).await, "pending_approval");

    // A token scoped to the actions toolset (not read-only) may decide.
    let decider = h.create(&h.admin, true, false, "servers,actions").await.unwrap();
    let shown = ActionServiceClient::new(h.channel().await)
        .get_action(authed(&decider, GetActionRequest { action_id: id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .action
        .unwrap();
    assert_eq!(shown.approval_check, "ok");
    assert_eq!(h.reject(&decider, &id).await.unwrap(), "rejected");
    h.central.shutdown().await;
}

/// A toolset list that names nothing (`,`, ` , `) is not "all toolsets", neither when asked for
/// nor after the token is stored and loaded again: a scoped token cannot mint a wider one through
/// it, and a token created with it can do nothing it was not given.
#[tokio::test]
async fn a_toolset_list_that_names_nothing_never_becomes_every_toolset() {
    let h = harness().await;
    let servers_only = h.create(&h.admin, true, false, "servers").await.unwrap();
    let (id, sha) = h.pending("web-2").await;
    for sets in [",", " , ,", ", "] {
        match h.create(&servers_only, true, false, sets).await {
            // Refused outright...
            Err(err) => assert_eq!(code(&err), ErrorCode::ValidationError, "{sets:?}: {err:?}"),
            // ... or, if accepted, the new token is no wider than the one that made it.
            Ok(minted) => {
                let err = h.approve(&minted, &id, &sha, false).await.unwrap_err();
                assert_eq!(code(&err), ErrorCode::Forbidden, "{sets:?} widened to deciding: {err:?}");
                let err = h.create(&minted, true, false, "").await.unwrap_err();
                assert_eq!(code(&err), ErrorCode::Forbidden, "{sets:?} widened to minting unscoped tokens");
            }
        }
    }
    assert_eq!(h.status(&id).await, "pending_approval");
    h.central.shutdown().await;
}

/// Only the principal that requested an action may withdraw it. Relayed through the standalone
/// MCP server, an assistant is named by its client, so two assistant tokens of one human with the
/// same name (or a human token naming the same client) must still be different principals.
#[tokio::test]
async fn another_token_cannot_withdraw_an_action_by_claiming_the_same_client_name() {
    let h = harness().await;
    let server = ServerServiceClient::new(h.channel().await)
        .add_server(authed(&h.admin, AddServerRequest { name: "web-3".into(), environment: 2 }))
        .await
        .unwrap()
        .into_inner()
        .server_id;
    let call = |token: String, tool: &'static str, args: serde_json::Value| {
        let h = &h;
        async move { common::call_tool(h.channel().await, &token, tool, args).await }
    };
    // Two assistant tokens of the same human, both named "bot" (names are not unique).
    let first = h.create(&h.admin, false, false, "").await.unwrap();
    let second = h.create(&h.admin, false, false, "").await.unwrap();
    let (failed, value) =
        call(first.clone(), "mttrly_decommission_server", serde_json::json!({ "server_id": server })).await;
    assert!(!failed, "{value}");
    let id = value["action_id"].as_str().unwrap().to_owned();
    for other in [second, h.admin.clone()] {
        let (failed, value) = call(other, "mttrly_cancel_action", serde_json::json!({ "action_id": id })).await;
        assert!(failed, "another token withdrew the action: {value}");
        assert_eq!(value["code"], "FORBIDDEN", "{value}");
    }
    assert_eq!(h.status(&id).await, "pending_approval");
    // The requester itself may.
    let (failed, value) = call(first, "mttrly_cancel_action", serde_json::json!({ "action_id": id })).await;
    assert!(!failed, "{value}");
    assert_eq!(h.status(&id).await, "cancelled");
    h.central.shutdown().await;
}
