//! The catalog is the same through every surface: the core table, the CLI binary and the MCP
//! tool definitions.

use std::process::Command;

use mttrly_core::catalog::specs;
use serde_json::Value;

#[test]
fn cli_and_mcp_agree_with_the_core_catalog() {
    let out = Command::new(mttrly_tests::binary("mttrly-cli"))
        .args(["tools", "list", "--output", "json"])
        .output()
        .expect("mttrly-cli runs");
    assert!(out.status.success());
    let cli: Value = serde_json::from_slice(&out.stdout).expect("json");
    let cli_tools = cli["tools"].as_array().expect("tools");
    assert_eq!(cli_tools.len(), specs().len());

    for (spec, cli_tool) in specs().iter().zip(cli_tools) {
        let mcp = serde_json::to_value(mttrly_mcp::tools::definition(spec)).expect("serialises");
        assert_eq!(cli_tool["id"], mcp["name"]);
        assert_eq!(cli_tool["title"], mcp["title"]);
        assert_eq!(cli_tool["description"], mcp["description"]);
        assert_eq!(cli_tool["annotations"]["read_only"], mcp["annotations"]["readOnlyHint"]);
        assert_eq!(cli_tool["annotations"]["destructive"], mcp["annotations"]["destructiveHint"]);

        let schema = Command::new(mttrly_tests::binary("mttrly-cli"))
            .args(["--output", "json", "tools", "schema", spec.id.as_str()])
            .output()
            .expect("mttrly-cli runs");
        let schema: Value = serde_json::from_slice(&schema.stdout).expect("schema json");
        assert_eq!(schema, mcp["inputSchema"], "{}", spec.id);
    }
}
