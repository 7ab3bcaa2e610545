//! The seed's error codes and the one error type every mttrly library returns.
//!
//! Clients are configured against these codes, so each code is one row of the table below: its
//! wire name, what it means, what the caller should do next, and how it maps onto gRPC and HTTP.
//! Every boundary (MCP, gRPC, HTTP, CLI) converts through this table and nowhere else.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The gRPC status codes we map onto. Kept here as plain data so `mttrly-core` stays free of
/// network crates; `mttrly-proto` converts them into `tonic::Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrpcCode {
    /// `INVALID_ARGUMENT` (3).
    InvalidArgument,
    /// `DEADLINE_EXCEEDED` (4).
    DeadlineExceeded,
    /// `NOT_FOUND` (5).
    NotFound,
    /// `PERMISSION_DENIED` (7).
    PermissionDenied,
    /// `RESOURCE_EXHAUSTED` (8).
    ResourceExhausted,
    /// `FAILED_PRECONDITION` (9).
    FailedPrecondition,
    /// `ABORTED` (10).
    Aborted,
    /// `INTERNAL` (13).
    Internal,
    /// `UNAVAILABLE` (14).
    Unavailable,
    /// `UNAUTHENTICATED` (16).
    Unauthenticated,
    /// `UNKNOWN` (2).
    Unknown,
}

impl GrpcCode {
    /// The numeric value defined by the gRPC specification.
    pub const fn as_i32(self) -> i32 {
        match self {
            Self::Unknown => 2,
            Self::InvalidArgument => 3,
            Self::DeadlineExceeded => 4,
            Self::NotFound => 5,
            Self::PermissionDenied => 7,
            Self::ResourceExhausted => 8,
            Self::FailedPrecondition => 9,
            Self::Aborted => 10,
            Self::Internal => 13,
            Self::Unavailable => 14,
            Self::Unauthenticated => 16,
        }
    }
}

/// Declares [`ErrorCode`] from one table so a code, its text and its transport mappings can never
/// drift apart.
macro_rules! error_codes {
    ($(
        $(#[$doc:meta])*
        $variant:ident => $name:literal, grpc: $grpc:ident, http: $http:literal, retry: $retry:literal,
            description: $description:literal,
            action: $action:literal;
    )+) => {
        /// One of the seed's error codes. The serialised form is the seed's `SCREAMING_CASE` name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum ErrorCode {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in the seed's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The wire name, exactly as the seed spells it.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)+ }
            }

            /// What the code means, in the seed's words.
            pub const fn description(self) -> &'static str {
                match self { $(Self::$variant => $description,)+ }
            }

            /// What the caller (usually an assistant) should do next, in the seed's words.
            pub const fn suggested_action(self) -> &'static str {
                match self { $(Self::$variant => $action,)+ }
            }

            /// The gRPC status this code travels as.
            pub const fn grpc_code(self) -> GrpcCode {
                match self { $(Self::$variant => GrpcCode::$grpc,)+ }
            }

            /// The HTTP status this code travels as.
            pub const fn http_status(self) -> u16 {
                match self { $(Self::$variant => $http,)+ }
            }

            /// Whether repeating the same request later can succeed without changing it.
            pub const fn retryable(self) -> bool {
                match self { $(Self::$variant => $retry,)+ }
            }
        }
    };
}

error_codes! {
    /// The action outlived its time-to-live before a human decided.
    ActionExpired => "ACTION_EXPIRED", grpc: FailedPrecondition, http: 410, retry: false,
        description: "Pending action exceeded the 30-minute TTL and was automatically cancelled.",
        action: "Re-run the original command or playbook to create a new pending action.";
    /// No such action in the caller's account.
    ActionNotFound => "ACTION_NOT_FOUND", grpc: NotFound, http: 404, retry: false,
        description: "Pending action was not found.",
        action: "List pending actions again and use a fresh action_id.";
    /// Missing, malformed, expired or revoked credentials.
    AuthFailed => "AUTH_FAILED", grpc: Unauthenticated, http: 401, retry: false,
        description: "Authentication failed or the provided credentials are invalid.",
        action: "Refresh authentication and retry with a valid API key or OAuth token.";
    /// The MCP front end could not reach central.
    ConnectionError => "CONNECTION_ERROR", grpc: Unavailable, http: 502, retry: true,
        description: "The MCP server could not reach the backend API.",
        action: "Retry the request after connectivity is restored.";
    /// The client asked for a contract major version we do not speak.
    ContractVersionUnsupported => "CONTRACT_VERSION_UNSUPPORTED", grpc: FailedPrecondition, http: 400, retry: false,
        description: "The client requested an unsupported MCP contract major version.",
        action: "Upgrade the MCP client or use a currently supported contract major.";
    /// A diagnostic ran on this server less than the cooldown ago.
    DiagnosticCooldown => "DIAGNOSTIC_COOLDOWN", grpc: ResourceExhausted, http: 429, retry: true,
        description: "The per-server diagnostic cooldown has not expired yet.",
        action: "Wait for the cooldown period to expire before retrying.";
    /// A Docker playbook was asked of a server without Docker.
    DockerNotAvailable => "DOCKER_NOT_AVAILABLE", grpc: FailedPrecondition, http: 409, retry: false,
        description: "Docker is not installed on the target server, so Docker playbooks are unavailable.",
        action: "Skip Docker playbooks or install Docker on the server first.";
    /// The caller is known but may not do this (another user's resource, an assistant approving).
    Forbidden => "FORBIDDEN", grpc: PermissionDenied, http: 403, retry: false,
        description: "The requested MCP resource belongs to a different user or plan context.",
        action: "Re-fetch the latest server, playbook, or action IDs for the current account.";
    /// A bug or an unexpected failure inside central.
    InternalError => "INTERNAL_ERROR", grpc: Internal, http: 500, retry: true,
        description: "The backend hit an unexpected internal error.",
        action: "Retry once. If it keeps failing, inspect backend logs or contact support.";
    /// A resource other than a server, action or playbook was not found.
    NotFound => "NOT_FOUND", grpc: NotFound, http: 404, retry: false,
        description: "The requested MCP resource was not found.",
        action: "Refresh the relevant list endpoint and retry with a valid identifier.";
    /// The account's plan does not include the tool.
    PlanRequired => "PLAN_REQUIRED", grpc: PermissionDenied, http: 403, retry: false,
        description: "The requested tool requires a higher subscription plan.",
        action: "Inform the user about the plan limitation and show the upgrade URL.";
    /// A safety policy (central's or the agent's local one) refused the request.
    PolicyDenied => "POLICY_DENIED", grpc: PermissionDenied, http: 403, retry: false,
        description: "The request was rejected by a known Central-side safety policy before execution.",
        action: "Choose a permitted target path or operation and retry.";
    /// The playbook exists but cannot run on this server.
    PlaybookNotAvailable => "PLAYBOOK_NOT_AVAILABLE", grpc: FailedPrecondition, http: 409, retry: false,
        description: "The selected playbook is not currently available on the target server.",
        action: "Refresh the playbook list for that server and pick one of the advertised playbooks.";
    /// No playbook has this id.
    PlaybookNotFound => "PLAYBOOK_NOT_FOUND", grpc: NotFound, http: 404, retry: false,
        description: "The specified playbook ID does not exist.",
        action: "Call mttrly_list_playbooks and choose a valid playbook_id.";
    /// Too many requests in the current window for this account or principal.
    RateLimited => "RATE_LIMITED", grpc: ResourceExhausted, http: 429, retry: true,
        description: "The request exceeded the current MCP rate limit window.",
        action: "Wait for the rate limit window to reset and retry.";
    /// No such server in the caller's account (another account's server looks exactly like this).
    ServerNotFound => "SERVER_NOT_FOUND", grpc: NotFound, http: 404, retry: false,
        description: "The specified server ID does not exist or does not belong to the current user.",
        action: "Call mttrly_list_servers to see the available server IDs.";
    /// The server's agent is not connected right now.
    ServerOffline => "SERVER_OFFLINE", grpc: Unavailable, http: 409, retry: true,
        description: "The target server agent is not currently connected.",
        action: "Check whether the mttrly agent is running on the server.";
    /// A registry-only delete was asked of a server whose agent is still connected.
    ServerOnline => "SERVER_ONLINE", grpc: FailedPrecondition, http: 409, retry: false,
        description: "The target server is online, so registry-only delete is blocked.",
        action: "Use Delete to uninstall the agent first, or wait until the server is offline before deleting the registry record.";
    /// A deadline passed before the work finished.
    Timeout => "TIMEOUT", grpc: DeadlineExceeded, http: 504, retry: true,
        description: "The request exceeded the configured timeout.",
        action: "Retry the request, or narrow the scope if the operation is expensive.";
    /// An error we could not classify (typically from an older or newer peer).
    UnknownError => "UNKNOWN_ERROR", grpc: Unknown, http: 500, retry: true,
        description: "An unknown error occurred in the MCP server.",
        action: "Retry the request and inspect the raw error details if it persists.";
    /// The request does not match the tool's schema or a parameter is out of range.
    ValidationError => "VALIDATION_ERROR", grpc: InvalidArgument, http: 400, retry: false,
        description: "The request failed schema or parameter validation.",
        action: "Check the request parameters against the advertised tool schema.";
    /// An action needed a human's approval but the prompt could not be delivered, so it was failed closed.
    ApprovalNotificationFailed => "APPROVAL_NOTIFICATION_FAILED", grpc: FailedPrecondition, http: 502, retry: false,
        description: "A pending action was created but the approval prompt could not be delivered to the user; the action has been failed-closed.",
        action: "Inspect the action_id in the error details to confirm the action is no longer pending, then retry the original request to create a fresh action.";
    /// The investigation is closed.
    InvestigationClosed => "INVESTIGATION_CLOSED", grpc: FailedPrecondition, http: 409, retry: false,
        description: "The investigation is already closed and cannot acquire a bypass.",
        action: "Open a fresh investigation with mttrly_start_investigation before requesting bypass.";
    /// A bypass is already active on the investigation.
    BypassAlreadyActive => "BYPASS_ALREADY_ACTIVE", grpc: FailedPrecondition, http: 409, retry: false,
        description: "This investigation already has an active, non-revoked bypass.",
        action: "Use the current bypass; or call mttrly_revoke_investigation_bypass and re-acquire if you need different limits.";
    /// The investigation changed between the check and the update.
    BypassAcquireFailed => "BYPASS_ACQUIRE_FAILED", grpc: Aborted, http: 409, retry: true,
        description: "Could not acquire investigation bypass — investigation state changed between check and update.",
        action: "Re-read the investigation status and retry; if the investigation closed, start a new one.";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|code| code.as_str() == s).ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

/// A code name that is not in the seed's table (for example from a newer peer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code `{0}`")]
pub struct UnknownErrorCode(pub String);

/// The one error type of mttrly's libraries: a seed code, a human-readable message, and JSON
/// details a program can act on (`action_id`, `retry_after_seconds`, the failing `field`, ...).
///
/// The message is written for the caller; internal detail (file paths on central, SQL) belongs in
/// logs, never here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct MttrlyError {
    code: ErrorCode,
    message: String,
    details: Value,
}

/// The stable wire body of an error, identical on MCP, HTTP, gRPC metadata and CLI `--output json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The seed's error code.
    pub code: ErrorCode,
    /// What went wrong, for a human.
    pub message: String,
    /// What to do next, from the seed's catalogue.
    pub suggested_action: String,
    /// Machine-readable context; an empty object when there is none.
    pub details: Value,
}

impl MttrlyError {
    /// An error with no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: Value::Object(serde_json::Map::new()) }
    }

    /// Adds one machine-readable detail; callers chain these instead of building JSON by hand.
    #[must_use]
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.details {
            map.insert(key.to_owned(), value.into());
        }
        self
    }

    /// The seed code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The machine-readable details (always a JSON object).
    pub fn details(&self) -> &Value {
        &self.details
    }

    /// The wire body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message.clone(),
            suggested_action: self.code.suggested_action().to_owned(),
            details: self.details.clone(),
        }
    }

    /// Rebuilds an error from a wire body (the suggested action is re-derived from the code).
    pub fn from_body(body: ErrorBody) -> Self {
        let details = match body.details {
            Value::Object(map) => Value::Object(map),
            Value::Null => Value::Object(serde_json::Map::new()),
            other => {
                let mut map = serde_json::Map::new();
                map.insert("value".to_owned(), other);
                Value::Object(map)
            }
        };
        Self { code: body.code, message: body.message, details }
    }
}

impl Serialize for MttrlyError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.body().serialize(serializer)
    }
}

/// Shorthand for results of mttrly's libraries.
pub type Result<T, E = MttrlyError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_has_twenty_five_codes_and_names_round_trip() {
        // The one place the seed's count is written down: everything else derives from the table.
        assert_eq!(ErrorCode::ALL.len(), 25);
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(*code));
            let json = serde_json::to_value(code).expect("code serialises");
            assert_eq!(json, Value::String(code.as_str().to_owned()));
        }
        assert!("NOPE".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn body_has_the_stable_shape() {
        let err = MttrlyError::new(ErrorCode::ApprovalNotificationFailed, "no channel could deliver the prompt")
            .with_detail("action_id", "act_0");
        let json = serde_json::to_value(&err).expect("serialises");
        let keys: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["code", "message", "suggested_action", "details"]);
        assert_eq!(json["details"]["action_id"], "act_0");
        assert_eq!(MttrlyError::from_body(err.body()), err);
    }

    #[test]
    fn error_catalogue_snapshot() {
        let rows: Vec<Value> = ErrorCode::ALL
            .iter()
            .map(|c| {
                serde_json::json!({
                    "code": c.as_str(),
                    "description": c.description(),
                    "suggested_action": c.suggested_action(),
                    "grpc": c.grpc_code(),
                    "http": c.http_status(),
                    "retryable": c.retryable(),
                })
            })
            .collect();
        insta::assert_json_snapshot!("error_catalogue", rows);
    }
}
