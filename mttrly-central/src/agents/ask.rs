//! The one typed way central asks an agent something: `agents.ask::<FileRead>(server, &params,
//! deadline)` returns the row's answer type. The capability table in `mttrly_core::capability`
//! says what goes down and what comes back, and whether central redacts the answer again.

use std::time::Duration;

use mttrly_core::capability::{self, Capability};
use mttrly_core::ids::ServerId;
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::agent::v1::TaskStatus;
use serde_json::Value;

use super::registry::{AgentRegistry, TaskSpec};

impl AgentRegistry {
    /// Asks the server's agent for `C` and waits at most `deadline`. The agent's refusal or
    /// failure comes back as its error; an answer that is not `C::Answer` is `INTERNAL_ERROR`
    /// naming the capability. Answers carrying host text are redacted a second time first.
    ///
    /// # Errors
    /// Those of [`AgentRegistry::send`], the agent's own error, or a malformed answer.
    pub async fn ask<C: Capability>(
        &self,
        server: &ServerId,
        params: &C::Params,
        deadline: Duration,
    ) -> Result<C::Answer, MttrlyError> {
        let reply = self.send(server, TaskSpec::request(C::ID, params, deadline)).await?;
        if reply.status != TaskStatus::Succeeded || reply.error.is_some() {
            return Err(reply.error.unwrap_or_else(|| {
                MttrlyError::new(ErrorCode::UnknownError, format!("the agent could not complete {}", C::ID))
            }));
        }
        if !C::REDACT {
            return capability::decode_as::<C>(&reply.answer);
        }
        // Host text can be large (a file tail, a search): parsing and redacting it is CPU work
        // that must not hold up the runtime's worker.
        let answer = reply.answer;
        tokio::task::spawn_blocking(move || {
            let mut value: Value = serde_json::from_slice(&answer).map_err(|e| {
                MttrlyError::new(ErrorCode::InternalError, format!("the agent's {} answer is malformed: {e}", C::ID))
                    .with_detail("capability", C::ID.as_str())
            })?;
            scrub(&mut value);
            capability::decode_value::<C>(value)
        })
        .await
        .map_err(|e| {
            MttrlyError::new(ErrorCode::InternalError, format!("redacting the agent's {} answer failed: {e}", C::ID))
        })?
    }
}

/// Central's second redaction pass over every text an agent returns (defense in depth: a secret
/// an old agent missed still never reaches the assistant). Strings are redacted with their keys as
/// context (a `"password"` field whole); `redactions` counts are kept as sent.
pub(crate) fn scrub(value: &mut Value) {
    let counts = value.as_object_mut().and_then(|m| m.remove("redactions"));
    mttrly_core::redactor::redact_json(value);
    if let (Some(counts), Some(map)) = (counts, value.as_object_mut()) {
        map.insert("redactions".to_owned(), counts);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn central_redacts_what_an_agent_let_through() {
        let mut v = json!({
            "content": "ok\npassword=hunter2hunter2",
            "matches": [{ "line": "AKIAIOSFODNN7EXAMPLE" }],
            "redactions": [{ "rule": "x", "count": 1 }],
        });
        scrub(&mut v);
        let text = v.to_string();
        assert!(!text.contains("hunter2hunter2") && !text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
        assert_eq!(v["redactions"][0]["rule"], "x");
    }
}
