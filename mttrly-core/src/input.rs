//! Turning a tool call's JSON arguments into the tool's typed input.
//!
//! Every surface (MCP, gRPC, CLI) goes through [`parse_input`], so a bad argument gets the same
//! `VALIDATION_ERROR`, naming the same field, wherever it came from.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ErrorCode, MttrlyError};

/// Parses `arguments` into `T`. Missing arguments (`null`) mean an empty object.
///
/// On failure the error is `VALIDATION_ERROR` with `details.field` (a JSON path such as
/// `target.path`, or `.` for the whole object) and `details.reason`.
pub fn parse_input<T: DeserializeOwned>(arguments: Value) -> Result<T, MttrlyError> {
    let arguments = match arguments {
        Value::Null => Value::Object(serde_json::Map::new()),
        Value::Object(_) => arguments,
        other => {
            return Err(MttrlyError::new(
                ErrorCode::ValidationError,
                format!("tool arguments must be a JSON object, got {}", json_type(&other)),
            )
            .with_detail("field", ".")
            .with_detail("reason", "expected an object"));
        }
    };
    serde_path_to_error::deserialize(arguments).map_err(|err| {
        let field = err.path().to_string();
        let reason = err.into_inner().to_string();
        MttrlyError::new(ErrorCode::ValidationError, format!("invalid argument `{field}`: {reason}"))
            .with_detail("field", field)
            .with_detail("reason", reason)
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
