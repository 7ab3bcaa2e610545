//! The app layer's boundaries, checked on the source (ARCHITECTURE.md's claims about
//! `mttrly-central`): transports are thin, so the engine, quickstart, the tool handlers and the
//! app modules never reach into a transport module; credentials become callers in one place; and
//! SQLite is reached only through `db/`.

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
    for lookup in ["token_owner(", "access_owner(", "credential_owner("] {
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
    for rule in ["insert_install_token(", "db::servers::decommission("] {
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
fn sqlite_is_reached_only_through_db() {
    // ARCHITECTURE.md: `db/` is the only SQLite code; the audit writer keeps its own connection.
    let db = src().join("db");
    let writer = src().join("audit").join("writer.rs");
    let mut found = Vec::new();
    for file in rust_files(&src()) {
        if file.starts_with(&db) || file == writer {
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
