//! ARCHITECTURE.md's crate-floor claims, checked against the real dependency graph.
//!
//! The invariants are written as tables (which crate may not reach which), and the graph comes
//! from `cargo tree` on the workspace's lock file, so a new dependency that breaks a claim fails
//! here, whichever file it was added in. `cargo tree` walks features exactly as a build would,
//! which is what makes "central without default features has no agent" checkable at all.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Crates that `mttrly-core` must never reach, even transitively: the typed heart has no network,
/// RPC, MCP, HTTP server or database code (ARCHITECTURE.md, `mttrly-core`).
const CORE_NEVER: &[&str] = &["tonic", "prost", "rmcp", "axum", "rusqlite", "tokio", "hyper"];

/// A crate only one workspace member may depend on directly (tests excluded: they may open the
/// database to tamper with it, or speak MCP as a client).
const ONLY_DIRECT_USER: &[(&str, &str)] = &[("rmcp", "mttrly-mcp"), ("rusqlite", "mttrly-central")];

/// The workspace members that ship (the `mttrly-tests` crate is the e2e harness, not a product).
const SHIPPED: &[&str] = &["mttrly-core", "mttrly-proto", "mttrly-agent", "mttrly-central", "mttrly-mcp", "mttrly-cli"];

/// Package names of `cargo tree` for `package` (normal dependencies only: what ships), with
/// `extra` arguments such as `--depth 1` or `--no-default-features`.
fn tree(package: &str, extra: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args(["tree", "--offline", "--locked", "-e", "normal", "--prefix", "none", "--format", "{p}", "-p", package])
        .args(extra)
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success(), "cargo tree -p {package} failed: {}", String::from_utf8_lossy(&output.stderr));
    let names: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    // Not vacuous: the package itself is always the first line.
    assert!(names.contains(package), "cargo tree -p {package} did not list {package}: {names:?}");
    names
}

#[test]
fn core_reaches_no_network_rpc_mcp_or_database_crate() {
    let reached = tree("mttrly-core", &[]);
    let broken: Vec<&&str> = CORE_NEVER.iter().filter(|c| reached.contains(**c)).collect();
    assert!(broken.is_empty(), "mttrly-core depends on {broken:?} (ARCHITECTURE.md: never)");
    // The check sees real dependencies: core does use serde.
    assert!(reached.contains("serde"), "{reached:?}");
}

#[test]
fn only_one_crate_depends_on_rmcp_and_one_on_rusqlite() {
    for (dependency, owner) in ONLY_DIRECT_USER {
        let users: Vec<&&str> =
            SHIPPED.iter().filter(|member| tree(member, &["--depth", "1"]).contains(*dependency)).collect();
        assert_eq!(users, [owner], "crates depending directly on {dependency}");
    }
}

#[test]
fn central_without_default_features_shares_no_code_with_the_agent() {
    let lean = tree("mttrly-central", &["--no-default-features"]);
    assert!(!lean.contains("mttrly-agent"), "mttrly-central --no-default-features depends on mttrly-agent");
    // The default build runs quickstart's local agent, so the check above is about the feature.
    assert!(tree("mttrly-central", &[]).contains("mttrly-agent"));
    // And the agent never links the server.
    assert!(!tree("mttrly-agent", &[]).contains("mttrly-central"));
}
