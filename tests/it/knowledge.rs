//! Issue 15, item 6: the knowledge base end to end. `mttrly-cli knowledge add|list|show|remove`
//! (the real binary, over gRPC) and `mttrly_search_knowledge` (through `ToolService.CallTool`
//! and `/mcp`) against a central in this process: redaction before storing, provenance, same-server
//! ranking, removal, query text that is never syntax, only people write, and another tenant's
//! entries never appear.

#![allow(clippy::unwrap_used)]

use mttrly_core::{Environment, Plan};
use mttrly_proto::central::v1::CreateTokenRequest;
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use serde_json::{Value, json};

use crate::approvals::{add_server, cli};
use crate::common::{Harness, Mcp, authed, call_tool, harness};

const SECRET: &str = "AKIAIOSFODNN7EXAMPLE";

async fn assistant(h: &Harness, owner: &str) -> String {
    AccountServiceClient::new(h.channel().await)
        .create_token(authed(owner, CreateTokenRequest { assistant_name: "claude-code".into(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .token
}

/// `mttrly-cli --output json ARGS` as `token` with `stdin`: (success, JSON or stderr).
pub(crate) async fn kcli(h: &Harness, token: &str, args: &[&str], stdin: &str) -> (bool, Value, String) {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = cli(h, token, &all, stdin).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null), stderr)
}

async fn search(h: &Harness, token: &str, args: Value) -> (bool, Value) {
    call_tool(h.channel().await, token, "mttrly_search_knowledge", args).await
}

fn ids(results: &Value) -> Vec<String> {
    results["results"].as_array().unwrap().iter().map(|r| r["knowledge_id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_write_knowledge_with_the_cli_and_assistants_find_it_as_data() {
    let h = harness(|_| {}).await;
    let server = add_server(&h, "web-1", Environment::Production).await.server_id;
    let bot = assistant(&h, &h.admin).await;

    // add: --body (with a secret: redacted before storing), stdin, --file.
    let (ok, recipe, err) = kcli(
        &h,
        &h.admin,
        &[
            "knowledge",
            "add",
            "--kind",
            "recipe",
            "--title",
            "nginx 502 after a deploy",
            "--body",
            &format!("Restart the upstream; the key {SECRET} was rotated."),
            "--server",
            &server,
        ],
        "",
    )
    .await;
    assert!(ok, "{err}");
    let recipe_id = recipe["knowledge_id"].as_str().unwrap().to_owned();
    assert!(!recipe["body"].as_str().unwrap().contains(SECRET), "{recipe}");
    assert!(recipe["body"].as_str().unwrap().contains("[REDACTED:"), "{recipe}");
    assert_eq!(recipe["source"], "cli");
    assert_eq!(recipe["author"]["type"], "human");
    assert_eq!(recipe["server_id"], server.as_str());
    let (ok, note, err) = kcli(
        &h,
        &h.admin,
        &["knowledge", "add", "--kind", "note", "--title", "General nginx tips"],
        "nginx returns 502 when the upstream restarts\n",
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(note["body"], "nginx returns 502 when the upstream restarts\n");
    let file = h.dir.path().join("pm.md");
    std::fs::write(&file, "# Disk full\nlogs filled /var").unwrap();
    let (ok, pm, err) = kcli(
        &h,
        &h.admin,
        &[
            "knowledge",
            "add",
            "--kind",
            "postmortem",
            "--title",
            "Disk full on web-1",
            "--file",
            file.to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert!(ok, "{err}");

    // search: the assistant finds both nginx entries, the server's first, with provenance and a
    // bounded snippet; the secret appears nowhere.
    let (is_error, found) = search(&h, &bot, json!({ "query": "nginx 502", "server_id": server })).await;
    assert!(!is_error, "{found}");
    assert_eq!(ids(&found), [recipe_id.clone(), note["knowledge_id"].as_str().unwrap().to_owned()]);
    let first = &found["results"][0];
    assert_eq!(first["same_server"], true);
    assert_eq!(first["provenance"]["source"], "cli");
    assert_eq!(first["provenance"]["author"]["type"], "human");
    assert_eq!((first["rank"].clone(), found["results"][1]["rank"].clone()), (json!(1), json!(2)));
    assert!(first.get("score").is_none(), "no raw bm25 figure leaves central: {first}");
    assert!(!found.to_string().contains(SECRET));
    assert!(found["results"][1]["snippet"].as_str().unwrap().contains("«nginx»"), "{found}");
    // Stemming, kind and server filters.
    let (_, stem) = search(&h, &bot, json!({ "query": "restarting" })).await;
    assert_eq!(ids(&stem).len(), 2, "{stem}");
    let (_, only) = search(&h, &bot, json!({ "query": "nginx", "kind": "note" })).await;
    assert_eq!(ids(&only), [note["knowledge_id"].as_str().unwrap()]);
    let (_, only) = search(&h, &bot, json!({ "query": "nginx", "server_id": server, "server_only": true })).await;
    assert_eq!(ids(&only), [recipe_id.as_str()]);
    // Query text is never syntax: operators, quotes, column filters, stars find or miss, never fail.
    for q in ["nginx AND (", "\"", "*", "title:nginx", "NEAR(nginx 502)", "^nginx", "nginx\"502", "-- ; DROP"] {
        let (is_error, answer) = search(&h, &bot, json!({ "query": q })).await;
        assert!(!is_error, "{q}: {answer}");
    }
    let (_, answer) = search(&h, &bot, json!({ "query": "title:nginx" })).await;
    assert!(ids(&answer).is_empty(), "a column filter is a literal word here: {answer}");
    // Bad input: a clear error.
    let (is_error, answer) = search(&h, &bot, json!({ "query": "" })).await;
    assert!(is_error && answer["code"] == "VALIDATION_ERROR", "{answer}");
    let (is_error, answer) = search(&h, &bot, json!({ "query": "x", "server_only": true })).await;
    assert!(is_error && answer["code"] == "VALIDATION_ERROR", "{answer}");

    // The same through the real MCP endpoint.
    let mcp = Mcp { addr: h.central.http_addr, token: bot.clone(), client: "claude-code" };
    let session = mcp.open().await.unwrap();
    let answer = mcp
        .request(
            &session,
            "tools/call",
            json!({ "name": "mttrly_search_knowledge", "arguments": { "query": "disk full" } }),
        )
        .await;
    assert_eq!(answer["result"]["structuredContent"]["results"][0]["knowledge_id"], pm["knowledge_id"], "{answer}");

    // Only people who may change things write: an assistant's token is refused, nothing stored.
    let (ok, _, err) =
        kcli(&h, &bot, &["knowledge", "add", "--kind", "note", "--title", "x", "--body", "nginx"], "").await;
    assert!(!ok && err.contains("FORBIDDEN"), "{err}");
    // Bad input leaves nothing behind.
    let long = "t".repeat(201);
    let (ok, _, err) =
        kcli(&h, &h.admin, &["knowledge", "add", "--kind", "note", "--title", &long, "--body", "b"], "").await;
    assert!(!ok && err.contains("VALIDATION_ERROR"), "{err}");
    let (ok, _, err) = kcli(
        &h,
        &h.admin,
        &["knowledge", "add", "--kind", "note", "--title", "t", "--body", "b", "--server", "srv_x"],
        "",
    )
    .await;
    assert!(!ok && err.contains("VALIDATION_ERROR"), "{err}");
    let (_, list, _) = kcli(&h, &h.admin, &["knowledge", "list"], "").await;
    assert_eq!(list["entries"].as_array().unwrap().len(), 3, "{list}");

    // Another tenant sees none of it, and cannot tell it exists.
    let eve = mttrly_central::secrets::generate(mttrly_central::secrets::SecretKind::Human);
    h.central
        .central
        .db
        .create_tenant("other", Plan::DeploymentCrew, "eve", &mttrly_central::secrets::hash(&eve))
        .await
        .unwrap();
    let eve_bot = assistant(&h, &eve).await;
    let (is_error, theirs) = search(&h, &eve_bot, json!({ "query": "nginx" })).await;
    assert!(!is_error && ids(&theirs).is_empty(), "{theirs}");
    let (is_error, theirs) = search(&h, &eve_bot, json!({ "query": "nginx", "server_id": server })).await;
    assert!(is_error && theirs["code"] == "SERVER_NOT_FOUND", "{theirs}");
    for verb in ["show", "remove"] {
        let (ok, _, err) = kcli(&h, &eve, &["knowledge", verb, &recipe_id], "").await;
        assert!(!ok && err.contains("NOT_FOUND"), "{verb}: {err}");
    }
    let (_, list, _) = kcli(&h, &eve, &["knowledge", "list"], "").await;
    assert_eq!(list["entries"].as_array().unwrap().len(), 0, "{list}");

    // show, then remove: gone from every search at once, and show says NOT_FOUND.
    let (ok, shown, _) = kcli(&h, &h.admin, &["knowledge", "show", &recipe_id], "").await;
    assert!(ok);
    assert_eq!(shown["content_sha256"], recipe["content_sha256"]);
    let (ok, _, err) = kcli(&h, &h.admin, &["knowledge", "remove", &recipe_id], "").await;
    assert!(ok, "{err}");
    let (_, found) = search(&h, &bot, json!({ "query": "nginx 502", "server_id": server })).await;
    assert!(!ids(&found).contains(&recipe_id), "{found}");
    let (ok, _, err) = kcli(&h, &h.admin, &["knowledge", "show", &recipe_id], "").await;
    assert!(!ok && err.contains("NOT_FOUND"), "{err}");
    let (ok, _, err) = kcli(&h, &h.admin, &["knowledge", "remove", &recipe_id], "").await;
    assert!(!ok && err.contains("NOT_FOUND"), "removing twice: {err}");

    // Every change is in the audit log.
    h.central.central.audit.flush().await;
    let account = h.central.central.db.first_account().await.unwrap().unwrap().0;
    let filter = mttrly_central::db::audit::AuditFilter { limit: 500, ..Default::default() };
    let rows = h.central.central.db.account(&account).audit().list(&filter).await.unwrap();
    let subjects: Vec<&str> = rows.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(subjects.iter().filter(|s| **s == "knowledge.add").count(), 3);
    assert_eq!(subjects.iter().filter(|s| **s == "knowledge.remove").count(), 1);
}
