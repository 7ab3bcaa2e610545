//! The app layer's boundaries, checked on the source (ARCHITECTURE.md's claims about
//! `mttrly-central`): transports are thin, so the engine, quickstart, the tool handlers and the
//! app modules never reach into a transport module; credentials become callers in one place;
//! SQLite is reached only through `db/`, and only by named operations; and tool handlers reach
//! tenant data only through an account-bound handle.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `path` (or `path` itself).
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The code lines (comments dropped) of the files under `paths` that contain `needle`.
fn uses(paths: &[&str], needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for path in paths {
        for file in rust_files(&src().join(path)) {
            let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                if code.contains(needle) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn the_engine_quickstart_and_tool_handlers_never_call_a_transport() {
    let inside = ["actions", "quickstart.rs", "tools", "servers.rs", "auth.rs", "agents", "alerts", "notify"];
    for transport in ["grpc::", "http::mcp_gate", "mcp::"] {
        let found: Vec<String> = uses(&inside, transport)
            .into_iter()
            // `mttrly_mcp::` is the MCP library crate, `http::` of the `http` crate is a type.
            .filter(|l| !l.contains(&format!("mttrly_{transport}")))
            .collect();
        assert!(found.is_empty(), "app code calling a transport module (`{transport}`):\n{}", found.join("\n"));
    }
}

#[test]
fn credentials_become_callers_only_in_auth() {
    for lookup in ["token_owner(", "access_owner(", "credential_owner(", ".credentials()"] {
        let found: Vec<String> = uses(&[""], lookup)
            .into_iter()
            .filter(|l| !l.contains("/src/auth.rs:") && !l.contains("/src/db/"))
            .collect();
        assert!(found.is_empty(), "a credential resolved outside `auth::resolve` (`{lookup}`):\n{}", found.join("\n"));
    }
}

#[test]
fn the_registry_rules_live_in_the_app_module() {
    // Registering and removing servers is `servers::{add, remove}`; no transport keeps a copy.
    for rule in ["insert_install_token(", ".decommission(", ".servers().register("] {
        let found: Vec<String> = uses(&[""], rule)
            .into_iter()
            .filter(|l| !l.contains("/src/servers.rs:") && !l.contains("/src/db/"))
            .collect();
        assert!(found.is_empty(), "registry rules outside `servers.rs` (`{rule}`):\n{}", found.join("\n"));
    }
}

#[test]
fn transports_do_not_call_each_other() {
    // What two transports share (who the caller is, which tools it reaches) lives in the app
    // layer (`auth`, `tools`), not in one of them.
    for (transport, others) in [("grpc", ["crate::mcp::", "crate::http::"]), ("mcp.rs", ["grpc::", "crate::http::"])] {
        for other in others {
            let found = uses(&[transport], other);
            assert!(found.is_empty(), "`{transport}` calls another transport (`{other}`):\n{}", found.join("\n"));
        }
    }
}

#[test]
fn the_oauth_handlers_do_not_import_the_router() {
    // `http` builds the state and mounts `oauth`'s routes; `oauth` sees only the state they
    // share (`app_state`), so the two modules do not import each other.
    let found = uses(&["oauth"], "crate::http");
    assert!(found.is_empty(), "`oauth` imports the HTTP router:\n{}", found.join("\n"));
}

#[test]
fn sqlite_is_reached_only_through_db() {
    // ARCHITECTURE.md: `db/` is the only SQLite code, the audit log's appends included (the
    // journal writer in `db/sqlite/group_commit.rs`).
    let db = src().join("db");
    let mut found = Vec::new();
    for file in rust_files(&src()) {
        if file.starts_with(&db) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (n, line) in text.lines().enumerate() {
            if line.contains("rusqlite") || line.contains("TransactionBehavior") {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "SQLite outside `db/` (name a function in `db/` instead):\n{}", found.join("\n"));
}

/// A file's code with comments dropped and all whitespace removed, so a call split over lines
/// (`central\n    .db\n    .call(`) reads as one token string (`central.db.call(`).
fn squeezed(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// What in `code` (squeezed) reaches the database other than through a named operation: a
/// closure over the connection, the tests' escape hatch, or SQLite's connection type (spelled
/// through its crate: a bare `Connection` is also the agents' live connection, and any import of
/// the crate is refused by `sqlite_is_reached_only_through_db`).
fn raw_database_access(code: &str) -> Vec<&'static str> {
    ["db.call(", ".call_blocking(", "with_connection_for_tests(", "rusqlite::Connection"]
        .into_iter()
        .filter(|needle| code.contains(needle))
        .collect()
}

/// Where in `code` (squeezed) the database handle is used for anything but `.db.account(`: a
/// non-tenant handle, an operation on `Db` itself, or the handle passed on (`let db = &central.db;`).
fn db_used_without_account(code: &str) -> Vec<String> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(".db") {
        let start = from + at;
        let tail = &code[start + ".db".len()..];
        if !tail.chars().next().is_some_and(ident) && !tail.starts_with(".account(") {
            found.push(code[start..].chars().take(40).collect());
        }
        from = start + ".db".len();
    }
    found
}

#[test]
fn the_database_is_reached_only_through_named_operations() {
    // `db/` offers named operations; its connection (and the tests' escape hatch) stays inside.
    let db = src().join("db");
    let found: Vec<String> = rust_files(&src())
        .into_iter()
        .filter(|file| !file.starts_with(&db))
        .flat_map(|file| {
            raw_database_access(&squeezed(&file)).into_iter().map(move |what| format!("{}: {what}", file.display()))
        })
        .collect();
    assert!(
        found.is_empty(),
        "the database reached around its operations (add a named one in `db/`):\n{}",
        found.join("\n")
    );
}

#[test]
fn tool_handlers_reach_the_database_only_through_an_account_handle() {
    // A handler serves one caller of one account: every query it makes is `db.account(..)`-bound,
    // so tenant data of another account (or of none) is out of its reach. The same holds for the
    // gRPC API's services, except the agent service: an agent is a server, found by its own
    // credential, and reports through the non-tenant `fleet()` handle.
    let grpc_agent = src().join("grpc").join("agent.rs");
    let found: Vec<String> = rust_files(&src().join("tools"))
        .into_iter()
        .chain(rust_files(&src().join("grpc")).into_iter().filter(|file| *file != grpc_agent))
        .flat_map(|file| {
            db_used_without_account(&squeezed(&file)).into_iter().map(move |what| format!("{}: {what}", file.display()))
        })
        .collect();
    assert!(found.is_empty(), "a request handler using the database without an account handle:\n{}", found.join("\n"));
}

#[test]
fn the_source_checks_catch_what_they_look_for() {
    // The scanners above, on code they must refuse and code they must accept.
    assert_eq!(raw_database_access("central.db.call(move|conn|x(conn))"), ["db.call("]);
    assert_eq!(raw_database_access("db.call_blocking(|c|f(c))"), [".call_blocking("]);
    assert_eq!(raw_database_access("fnf(c:&mutrusqlite::Connection)"), ["rusqlite::Connection"]);
    assert_eq!(raw_database_access("c.with_connection_for_tests(|c|c.execute(q,[]))"), ["with_connection_for_tests("]);
    assert!(raw_database_access("ConnectionStatus::Online;self.sessions.call(x)").is_empty());
    assert_eq!(db_used_without_account("central.db.fleet().seed()").len(), 1);
    assert_eq!(db_used_without_account("letdb=&central.db;").len(), 1);
    assert_eq!(db_used_without_account("central.db.first_account().await").len(), 1);
    assert!(db_used_without_account("central.db.account(&caller.account_id).servers().list()").is_empty());
    assert!(db_used_without_account("crate::db::alerts::AlertFilter;self.dbg()").is_empty());
}
