//! Catalog rows as MCP tool definitions.

use std::sync::{Arc, OnceLock};

use mttrly_core::{ToolId, ToolSpec};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::Value;

fn object(schema: Value) -> Arc<JsonObject> {
    match schema {
        Value::Object(map) => Arc::new(map),
        // Every catalog schema is an object (a core test checks it); anything else would be a bug
        // in schema generation, so advertise an empty object schema rather than a wrong one.
        _ => Arc::new(JsonObject::new()),
    }
}

/// The MCP definition of one catalog tool: name, title, description, input and output schema,
/// and annotations.
pub fn definition(spec: &ToolSpec) -> Tool {
    let annotations = ToolAnnotations::with_title(spec.title)
        .read_only(spec.hints.read_only())
        .destructive(spec.hints.destructive())
        .idempotent(spec.hints.idempotent())
        .open_world(spec.hints.open_world());
    Tool::new(spec.id.as_str(), spec.description, object(spec.input_schema()))
        .with_title(spec.title)
        .with_raw_output_schema(object(spec.output_schema()))
        .with_annotations(annotations)
}

/// The definition of `tool`, built once per process: the schemas are generated from types, which
/// costs about 2 ms for the whole catalog, too much to pay on every `tools/list` (measured in
/// BENCHMARKS.md, "MCP over Streamable HTTP"). A clone shares the schemas.
pub fn cached(tool: ToolId) -> Tool {
    static DEFINITIONS: OnceLock<Vec<Tool>> = OnceLock::new();
    let all = DEFINITIONS.get_or_init(|| ToolId::ALL.iter().map(|t| definition(t.spec())).collect());
    let index = ToolId::ALL.iter().position(|t| *t == tool);
    index.and_then(|i| all.get(i)).cloned().unwrap_or_else(|| definition(tool.spec()))
}

#[cfg(test)]
mod tests {
    use mttrly_core::ToolId;

    use super::*;

    #[test]
    fn execute_command_definition_on_the_wire() {
        let tool = definition(ToolId::ExecuteCommand.spec());
        insta::assert_json_snapshot!("execute_command_tool", tool);
    }

    #[test]
    fn the_cached_definition_is_the_definition() {
        for tool in ToolId::ALL {
            assert_eq!(cached(*tool), definition(tool.spec()), "{tool:?}");
        }
    }

    #[test]
    fn every_catalog_tool_converts_with_its_annotations() {
        for spec in mttrly_core::catalog::specs() {
            let tool = definition(spec);
            let json = serde_json::to_value(&tool).expect("serialises");
            assert_eq!(json["name"], spec.id.as_str());
            assert_eq!(json["title"], spec.title);
            assert_eq!(json["inputSchema"]["type"], "object");
            assert_eq!(json["outputSchema"]["type"], "object");
            assert_eq!(json["annotations"]["readOnlyHint"], spec.hints.read_only());
            assert_eq!(json["annotations"]["destructiveHint"], spec.hints.destructive());
        }
    }
}
