//! Tool results on the wire: structured content plus readable text, and errors as tool results.

use mttrly_core::MttrlyError;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

/// A successful call: the structured result (it conforms to the tool's `outputSchema`) and the
/// same JSON, indented, as text for clients that only show text.
pub(crate) fn success(value: Value) -> CallToolResult {
    let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

/// A successful call whose outcome someone else decided: `summary` first, in words, then the
/// structured result as in [`success`].
pub(crate) fn success_with_summary(summary: String, value: Value) -> CallToolResult {
    let mut result = success(value);
    result.content.insert(0, ContentBlock::text(summary));
    result
}

/// A failed call: `isError: true` with the core error body `{code, message, suggested_action,
/// details}` as structured content, and a readable line for the assistant.
pub(crate) fn failure(err: &MttrlyError) -> CallToolResult {
    let body = err.body();
    let mut text = format!("{}: {}", err.code(), err.message());
    if !body.suggested_action.is_empty() {
        text.push_str("\nSuggested action: ");
        text.push_str(&body.suggested_action);
    }
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(body).ok();
    result
}
