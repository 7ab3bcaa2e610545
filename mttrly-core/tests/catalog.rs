//! The catalog as clients see it: ids, plans, hints and the JSON Schemas generated from the types.

use mttrly_core::catalog::specs;
use mttrly_core::{ErrorCode, ToolId, ToolKind};
use proptest::prelude::*;
use serde_json::{Value, json};

fn tool_list() -> Value {
    Value::Array(
        specs()
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "title": s.title,
                    "kind": s.kind,
                    "min_plan": s.min_plan,
                    "toolset": s.toolset,
                    "hints": {
                        "readOnlyHint": s.hints.read_only(),
                        "destructiveHint": s.hints.destructive(),
                        "idempotentHint": s.hints.idempotent(),
                        "openWorldHint": s.hints.open_world(),
                    },
                    "description": s.description,
                    "input_schema": s.input_schema(),
                    "output_schema": s.output_schema(),
                })
            })
            .collect(),
    )
}

#[test]
fn full_tool_list_with_schemas() {
    insta::assert_json_snapshot!("tool_list", tool_list());
}

/// Walks a schema and reports every object property without a description.
fn undocumented(schema: &Value, path: &str, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, prop) in props {
                    let here = format!("{path}.{name}");
                    // A tagged enum's discriminator (`"type": {"const": "file"}`) documents itself.
                    let discriminator = prop.get("const").is_some();
                    if !discriminator && prop.get("description").and_then(Value::as_str).is_none_or(str::is_empty) {
                        out.push(here.clone());
                    }
                    undocumented(prop, &here, out);
                }
            }
            for key in ["items", "additionalProperties"] {
                if let Some(sub) = map.get(key) {
                    undocumented(sub, &format!("{path}[]"), out);
                }
            }
            for key in ["oneOf", "anyOf", "allOf"] {
                if let Some(Value::Array(subs)) = map.get(key) {
                    for sub in subs {
                        undocumented(sub, path, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                undocumented(item, path, out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_input_and_output_property_is_documented() {
    let mut missing = Vec::new();
    for spec in specs() {
        undocumented(&spec.input_schema(), &format!("{}:input", spec.id), &mut missing);
        undocumented(&spec.output_schema(), &format!("{}:output", spec.id), &mut missing);
    }
    assert!(missing.is_empty(), "undocumented properties:\n{}", missing.join("\n"));
}

#[test]
fn schemas_are_self_contained_objects_and_inputs_are_closed() {
    for spec in specs() {
        let input = spec.input_schema();
        let output = spec.output_schema();
        assert_eq!(input["type"], "object", "{}", spec.id);
        assert_eq!(output["type"], "object", "{}", spec.id);
        assert_eq!(input["additionalProperties"], false, "{} input must reject unknown fields", spec.id);
        let text = format!("{input}{output}");
        assert!(!text.contains("$ref"), "{} schema must be self-contained", spec.id);
    }
}

#[test]
fn execute_command_schema_is_what_the_issue_promises() {
    let schema = ToolId::ExecuteCommand.spec().input_schema();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["server_id", "command"]));
    assert_eq!(schema["properties"]["timeout_seconds"]["minimum"], 1);
    assert_eq!(schema["properties"]["timeout_seconds"]["maximum"], 300);
    assert_eq!(schema["properties"]["timeout_seconds"]["default"], 30);
    assert!(schema["properties"]["server_id"]["pattern"].is_string());
}

const SERVER: &str = "srv_0123456789abcdef0123456789abcdef";

fn validation_field(tool: ToolId, args: Value) -> String {
    let err = tool.spec().check_arguments(args).expect_err("must be rejected");
    assert_eq!(err.code(), ErrorCode::ValidationError, "{err}");
    err.details()["field"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn validation_errors_name_the_failing_field() {
    let t = ToolId::ExecuteCommand;
    assert!(t.spec().check_arguments(json!({"server_id": SERVER, "command": "uptime"})).is_ok());
    assert_eq!(validation_field(t, json!({"command": "uptime"})), ".");
    assert_eq!(validation_field(t, json!({"server_id": "srv_x", "command": "uptime"})), "server_id");
    assert_eq!(validation_field(t, json!({"server_id": SERVER, "command": ""})), "command");
    assert_eq!(
        validation_field(t, json!({"server_id": SERVER, "command": "ls", "timeout_seconds": 301})),
        "timeout_seconds"
    );
    assert_eq!(validation_field(t, json!({"server_id": SERVER, "command": "ls", "confirm": true})), "confirm");
    assert_eq!(validation_field(t, json!([1, 2])), ".");
    assert_eq!(
        validation_field(
            ToolId::ReadFile,
            json!({"server_id": SERVER, "target": {"type": "file", "path": "/var/log/a\u{0}b"}})
        ),
        "target"
    );
    assert_eq!(
        validation_field(
            ToolId::WriteFile,
            json!({"server_id": SERVER, "path": "/etc/app.env", "content_base64": "not base64!"})
        ),
        "content_base64"
    );
    assert_eq!(
        validation_field(
            ToolId::ExecuteScript,
            json!({"server_id": SERVER, "script": {"type": "managed", "name": "x"}, "args": vec!["a"; 33]})
        ),
        "args"
    );
}

#[test]
fn tools_without_arguments_accept_null_and_empty_objects() {
    for tool in [ToolId::GetCapabilities, ToolId::ListServers, ToolId::GetMorningBrief] {
        assert!(tool.spec().check_arguments(Value::Null).is_ok());
        assert!(tool.spec().check_arguments(json!({})).is_ok());
    }
}

#[test]
fn no_tool_lets_the_model_confirm_on_the_humans_behalf() {
    for spec in specs() {
        let schema = spec.input_schema();
        let props = schema["properties"].as_object().cloned().unwrap_or_default();
        for banned in ["confirm", "confirmed", "yes", "force", "approved_by", "otp", "totp", "two_factor_code"] {
            assert!(!props.contains_key(banned), "{} has a `{banned}` argument", spec.id);
        }
    }
    // Not vacuous: the catalog's own test pins how many execute tools there are.
    assert!(specs().iter().any(|s| s.kind == ToolKind::Execute), "no execute tool was checked");
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String(SERVER.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("server_id".to_owned()),
                    Just("command".to_owned()),
                    Just("target".to_owned()),
                    Just("type".to_owned()),
                    Just("path".to_owned()),
                    Just("lines".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Arbitrary JSON never panics any tool's validation, and a rejection is always VALIDATION_ERROR.
    #[test]
    fn validation_never_panics(args in arbitrary_json(), index in 0..ToolId::ALL.len()) {
        let tool = ToolId::ALL[index];
        if let Err(err) = tool.spec().check_arguments(args) {
            prop_assert_eq!(err.code(), ErrorCode::ValidationError);
            prop_assert!(err.details()["field"].is_string());
        }
    }
}
