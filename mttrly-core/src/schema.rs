//! JSON Schema generation for tool inputs and outputs.
//!
//! One generator configuration for the whole project, so the schemas that MCP advertises, the CLI
//! prints and the docs show are byte-for-byte the same. Sub-schemas are inlined: MCP clients and
//! models handle self-contained schemas better than `$ref` chains.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// The JSON Schema (draft 2020-12, self-contained) of `T`.
pub fn schema_for<T: JsonSchema>() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Value::Object(map) = &mut value {
        // The dialect is MCP's default and the Rust type name means nothing to a client.
        map.remove("$schema");
        map.remove("title");
    }
    unwrap_descriptions(&mut value);
    value
}

/// Doc comments wrap at 100 columns; a description is one paragraph to a model, so single line
/// breaks become spaces (blank lines, i.e. paragraph breaks, stay).
fn unwrap_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "description"
                    && let Value::String(text) = child
                {
                    *text = text.split("\n\n").map(|p| p.replace('\n', " ")).collect::<Vec<_>>().join("\n\n");
                } else {
                    unwrap_descriptions(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}
