//! Resolved tokens are cached (`auth_cache.rs`), and revocation stays immediate: once whatever
//! revoked a token calls the cache's hook, the very next request on an MCP session the token
//! already opened is refused, without waiting for the cache to age.

#![allow(clippy::unwrap_used)]

use crate::common::{Mcp, harness, http, json_of};
use serde_json::json;

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_on_the_mcp_session_it_opened() {
    let h = harness(|_| {}).await;
    let mcp = Mcp { addr: h.central.http_addr, token: h.admin.clone(), client: "claude-code" };
    let session = mcp.open().await.unwrap();
    for _ in 0..3 {
        let answer = mcp.call(&session, "mttrly_list_servers").await;
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }

    // A change made behind the operations' back (the row edited directly) followed by the hook
    // is what every revoking operation does (`tokens revoke` end to end: `tests/it/users.rs`).
    let hash = mttrly_central::secrets::hash(&h.admin);
    h.central
        .central
        .db
        .with_connection_for_tests(move |conn| {
            conn.execute("UPDATE api_tokens SET revoked_at = 1 WHERE token_hash = ?1", [hash.as_slice()])
        })
        .await
        .unwrap();
    h.central.central.auth_cache.invalidate(&hash);

    let bearer = format!("Bearer {}", h.admin);
    let call = json!({
        "jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": { "name": "mttrly_list_servers", "arguments": {} }
    });
    let (status, _, body) =
        http(h.central.http_addr, "POST", &Mcp::headers(&bearer, Some(&session)), &call.to_string()).await;
    assert_eq!(status, 401, "{body}");
    assert!(json_of(&body)["message"].as_str().is_some_and(|m| m.contains("revoked")), "{body}");
}
