//! Conversions between wire types and `mttrly-core` domain types, in one place.

use mttrly_core::capability::End;
use mttrly_core::tools::common::{FilesystemUsage, HostMetrics};
use mttrly_core::tools::servers::ServerStatus;
use mttrly_core::{Environment, ErrorBody, ErrorCode, MttrlyError, Role};
use serde_json::Value;

use crate::agent::v1 as agent;
use crate::central::v1 as central;

/// Wire environment → domain; `UNSPECIFIED` is `None`.
pub fn environment_from_wire(value: i32) -> Option<Environment> {
    match central::Environment::try_from(value).ok()? {
        central::Environment::Production => Some(Environment::Production),
        central::Environment::Staging => Some(Environment::Staging),
        central::Environment::Development => Some(Environment::Development),
        central::Environment::Unspecified => None,
    }
}

/// Domain environment → wire.
pub fn environment_to_wire(env: Environment) -> i32 {
    match env {
        Environment::Production => central::Environment::Production,
        Environment::Staging => central::Environment::Staging,
        Environment::Development => central::Environment::Development,
    }
    .into()
}

/// Wire role name (`admin`, `operator`, `viewer`) → domain, or `VALIDATION_ERROR` naming `field`.
pub fn role_from_wire(value: &str, field: &str) -> Result<Role, MttrlyError> {
    value
        .parse::<Role>()
        .map_err(|e| MttrlyError::new(ErrorCode::ValidationError, e.to_string()).with_detail("field", field))
}

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        // Precision loss is irrelevant at percent resolution.
        #[allow(clippy::cast_precision_loss)]
        let p = used as f64 * 100.0 / total as f64;
        (p * 10.0).round() / 10.0
    }
}

/// Wire metrics → domain, stamped with the time central received them.
pub fn metrics_from_wire(m: &agent::HostMetrics, collected_at: jiff::Timestamp) -> HostMetrics {
    let memory_used = m.memory_used_bytes.min(m.memory_total_bytes);
    HostMetrics {
        collected_at,
        cpu_percent: if m.cpu_percent.is_finite() { m.cpu_percent.clamp(0.0, 100.0) } else { 0.0 },
        memory_total_bytes: m.memory_total_bytes,
        memory_used_bytes: memory_used,
        memory_percent: percent(memory_used, m.memory_total_bytes),
        swap_total_bytes: m.swap_total_bytes,
        swap_used_bytes: m.swap_used_bytes.min(m.swap_total_bytes),
        load_average: [m.load_1, m.load_5, m.load_15].map(|l| if l.is_finite() { l.max(0.0) } else { 0.0 }),
        uptime_seconds: m.uptime_seconds,
        filesystems: m
            .filesystems
            .iter()
            .map(|f| {
                let used = f.used_bytes.min(f.total_bytes);
                FilesystemUsage {
                    mount_point: f.mount_point.clone(),
                    fs_type: f.fs_type.clone(),
                    total_bytes: f.total_bytes,
                    used_bytes: used,
                    used_percent: percent(used, f.total_bytes),
                }
            })
            .collect(),
    }
}

/// A `CallTool` reply → the tool's structured result, or the seed error central answered with
/// (its body travels in `structured_json` when `is_error`, decoded by [`MttrlyError::from_body`]).
pub fn tool_result_from_wire(reply: &central::CallToolResponse) -> Result<Value, MttrlyError> {
    let value: Value = serde_json::from_str(&reply.structured_json)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("central's answer is not JSON: {e}")))?;
    if !reply.is_error {
        return Ok(value);
    }
    let body: ErrorBody = serde_json::from_value(value)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("central's error body is malformed: {e}")))?;
    Err(MttrlyError::from_body(body))
}

/// How a task ended on the agent → the wire status of its `TaskResult`.
pub fn task_status_to_wire(end: End) -> agent::TaskStatus {
    match end {
        End::Succeeded => agent::TaskStatus::Succeeded,
        End::Failed => agent::TaskStatus::Failed,
        End::TimedOut => agent::TaskStatus::TimedOut,
    }
}

/// A task's error → the `TaskResult.error` the agent sends (code, message, details as JSON).
pub fn task_error_to_wire(err: &MttrlyError) -> agent::Error {
    agent::Error {
        code: err.code().as_str().to_owned(),
        message: err.message().to_owned(),
        details_json: serde_json::to_vec(err.details()).unwrap_or_default(),
    }
}

/// `TaskResult.error` → the seed error, through [`MttrlyError::from_body`]: an unknown code (a
/// newer agent's) is `UNKNOWN_ERROR`, and details that are not a JSON object are dropped.
pub fn task_error_from_wire(wire: agent::Error) -> MttrlyError {
    let details =
        serde_json::from_slice::<Value>(&wire.details_json).ok().filter(Value::is_object).unwrap_or(Value::Null);
    let code = wire.code.parse().unwrap_or(ErrorCode::UnknownError);
    MttrlyError::from_body(ErrorBody {
        code,
        message: wire.message,
        suggested_action: code.suggested_action().to_owned(),
        details,
    })
}

/// A `GetServer` reply's status (the shape of `mttrly_get_server_status`'s output).
pub fn server_status_from_wire(reply: &central::GetServerResponse) -> Result<ServerStatus, MttrlyError> {
    serde_json::from_str(&reply.status_json)
        .map_err(|e| MttrlyError::new(ErrorCode::UnknownError, format!("central sent an unreadable status: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_their_wire_names_or_a_validation_error() {
        for role in Role::ALL {
            assert_eq!(role_from_wire(role.as_str(), "role").unwrap(), role);
        }
        let err = role_from_wire("root", "role").unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError);
        assert_eq!(err.details().get("field").and_then(|f| f.as_str()), Some("role"));
    }

    #[test]
    fn a_tool_error_body_comes_back_as_the_same_error() {
        let err = MttrlyError::new(ErrorCode::PlanRequired, "needs deployment_bro")
            .with_detail("required_plan", "deployment_bro");
        let reply = central::CallToolResponse {
            structured_json: serde_json::to_string(&err.body()).expect("body"),
            text: String::new(),
            is_error: true,
        };
        assert_eq!(tool_result_from_wire(&reply), Err(err));
    }

    #[test]
    fn a_tool_result_is_its_json_and_garbage_is_an_error() {
        let ok =
            central::CallToolResponse { structured_json: r#"{"a":1}"#.into(), text: String::new(), is_error: false };
        assert_eq!(tool_result_from_wire(&ok), Ok(serde_json::json!({ "a": 1 })));
        let garbage = central::CallToolResponse { structured_json: "{".into(), text: String::new(), is_error: false };
        assert_eq!(tool_result_from_wire(&garbage).map_err(|e| e.code()), Err(ErrorCode::InternalError));
        let not_a_body =
            central::CallToolResponse { structured_json: "{}".into(), text: String::new(), is_error: true };
        assert_eq!(tool_result_from_wire(&not_a_body).map_err(|e| e.code()), Err(ErrorCode::InternalError));
    }

    #[test]
    fn a_task_error_round_trips_and_a_newer_agents_error_stays_readable() {
        let err = MttrlyError::new(ErrorCode::PolicyDenied, "no").with_detail("capability", "file.read");
        assert_eq!(task_error_from_wire(task_error_to_wire(&err)), err);
        let newer = agent::Error { code: "QUANTUM_FLUX".into(), message: "m".into(), details_json: b"[1]".to_vec() };
        let read = task_error_from_wire(newer);
        assert_eq!((read.code(), read.message()), (ErrorCode::UnknownError, "m"));
        assert_eq!(read.details(), &serde_json::json!({}));
        assert_eq!(task_status_to_wire(End::TimedOut), agent::TaskStatus::TimedOut);
    }

    #[test]
    fn environments_round_trip_and_unspecified_is_none() {
        for env in Environment::ALL {
            assert_eq!(environment_from_wire(environment_to_wire(env)), Some(env));
        }
        assert_eq!(environment_from_wire(0), None);
        assert_eq!(environment_from_wire(99), None);
    }

    #[test]
    fn hostile_metrics_are_clamped() {
        let m = agent::HostMetrics {
            cpu_percent: f64::NAN,
            memory_total_bytes: 100,
            memory_used_bytes: 250,
            load_1: -3.0,
            filesystems: vec![agent::Filesystem {
                mount_point: "/".into(),
                fs_type: "ext4".into(),
                total_bytes: 0,
                used_bytes: 5,
            }],
            ..Default::default()
        };
        let d = metrics_from_wire(&m, jiff::Timestamp::UNIX_EPOCH);
        assert!(d.cpu_percent.abs() < f64::EPSILON);
        assert_eq!(d.memory_used_bytes, 100);
        assert!((d.memory_percent - 100.0).abs() < f64::EPSILON);
        assert!(d.load_average[0].abs() < f64::EPSILON);
        assert!(d.filesystems[0].used_percent.abs() < f64::EPSILON);
    }
}
