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
    value
}
