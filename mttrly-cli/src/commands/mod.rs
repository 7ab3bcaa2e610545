//! One module per top-level command.

pub(crate) mod actions;
pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod chat_links;
pub(crate) mod deploys;
pub(crate) mod investigations;
pub(crate) mod knowledge;
pub(crate) mod login;
pub(crate) mod policy;
pub(crate) mod releases;
pub(crate) mod servers;
pub(crate) mod tokens;
pub(crate) mod tools;
pub(crate) mod totp;
pub(crate) mod users;

/// "12s ago" for a Unix-millisecond time; "never" for 0.
pub(crate) fn ago(unix_ms: i64) -> String {
    if unix_ms <= 0 {
        return "never".to_owned();
    }
    let secs = (jiff::Timestamp::now().as_millisecond() - unix_ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// RFC 3339 for a Unix-millisecond time; `None` for 0.
pub(crate) fn rfc3339(unix_ms: i64) -> Option<String> {
    (unix_ms > 0).then(|| jiff::Timestamp::from_millisecond(unix_ms).map(|t| t.to_string()).unwrap_or_default())
}
