//! The owner's `[deploys.SERVICE]` section of the agent policy: positive knowledge of what the
//! agent may watch and probe for each service. The agent never probes a URL that is not written
//! here (an assistant's URL must equal the configured one), so the verifier cannot be turned into
//! a request forger against the server's network.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tools::deploys::ServiceName;

/// The most paths one service watches (each is hashed when it changes).
const MAX_WATCH: usize = 16;
/// The most error patterns per service.
const MAX_PATTERNS: usize = 32;

/// One service: what marks a release, where it logs, which unit runs it, how to probe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceDeploys {
    /// Absolute paths whose change is a deploy: a release symlink (`/srv/web/current`), a
    /// release directory, or a binary. Checked by mtime and size every interval, hashed only
    /// when those move.
    pub watch: Vec<String>,
    /// The systemd unit running it: its state is a verifier check, and a restart with a new
    /// executable is a deploy.
    pub unit: Option<String>,
    /// The service's log file (it must also be readable under `file_roots`, the same rules as
    /// `mttrly_read_file`).
    pub log_file: Option<String>,
    /// Read the unit's journal (priority `err` and worse) instead of a log file.
    pub journal: bool,
    /// Case-insensitive literal texts marking an error line in `log_file`; the default list when
    /// empty (`error`, `fatal`, `panic`, `exception`, `critical`).
    pub error_patterns: Vec<String>,
    /// Error lines since the deploy that still count as healthy (default 0).
    pub allowed_error_lines: u32,
    /// `[deploys.SERVICE.healthcheck]`.
    pub healthcheck: Option<HealthcheckPolicy>,
}

/// `[deploys.SERVICE.healthcheck]`: an HTTP(S) check run from the server, N samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckPolicy {
    /// The URL (http or https). Redirects are not followed.
    pub url: String,
    /// The healthy status; any 2xx when absent.
    #[serde(default)]
    pub expect_status: Option<u16>,
    /// Text the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Samples per run (1 to 20, default 3).
    #[serde(default = "default_samples")]
    pub samples: u32,
    /// Pause between samples, ms (at most 10000, default 500).
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// One request's deadline, ms (100 to 30000, default 2000).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// A slower answer is unhealthy.
    #[serde(default)]
    pub max_latency_ms: Option<u64>,
    /// Unhealthy samples tolerated (less than `samples`, default 0).
    #[serde(default)]
    pub failure_limit: u32,
}

const fn default_samples() -> u32 {
    3
}

const fn default_interval() -> u64 {
    500
}

const fn default_timeout() -> u64 {
    2000
}

impl ServiceDeploys {
    /// The error patterns in effect, lower-cased.
    pub fn patterns(&self) -> Vec<String> {
        if self.error_patterns.is_empty() {
            ["error", "fatal", "panic", "exception", "critical"].map(str::to_owned).to_vec()
        } else {
            self.error_patterns.iter().map(|p| p.to_lowercase()).collect()
        }
    }
}

/// Checks that `url` is an absolute http(s) URL with a host, no whitespace or control characters,
/// at most 2048 bytes. The reason says what is wrong.
pub fn check_http_url(url: &str) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("is longer than 2048 bytes".to_owned());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "must start with http:// or https://".to_owned())?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".to_owned());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err("has no host".to_owned());
    }
    Ok(())
}

/// Validates the whole section; the reason names the service and the key.
pub fn validate(deploys: &BTreeMap<String, ServiceDeploys>) -> Result<(), String> {
    for (name, service) in deploys {
        let at = |key: &str, why: &str| format!("[deploys.{name}] {key} {why}");
        if !ServiceName::is_valid(name) {
            return Err(format!(
                "[deploys.{name}]: a service name is 1 to 128 letters, digits, `.`, `_`, `-`, `@`, `:`"
            ));
        }
        if service.watch.len() > MAX_WATCH {
            return Err(at("watch", &format!("lists more than {MAX_WATCH} paths")));
        }
        if let Some(path) = service.watch.iter().find(|p| !p.starts_with('/')) {
            return Err(at("watch", &format!("must list absolute paths, not `{path}`")));
        }
        if let Some(unit) = &service.unit
            && !crate::diagnose::valid_unit(unit)
        {
            return Err(at("unit", &format!("`{unit}` is not a systemd unit name")));
        }
        if let Some(path) = &service.log_file
            && !path.starts_with('/')
        {
            return Err(at("log_file", &format!("must be an absolute path, not `{path}`")));
        }
        if service.journal && service.unit.is_none() {
            return Err(at("journal", "needs `unit` (the journal is read for that unit)"));
        }
        if service.journal && service.log_file.is_some() {
            return Err(at("journal", "and `log_file` exclude each other: name one log"));
        }
        if service.error_patterns.len() > MAX_PATTERNS
            || service.error_patterns.iter().any(|p| p.trim().is_empty() || p.len() > 200)
        {
            return Err(at(
                "error_patterns",
                &format!("holds 1 to {MAX_PATTERNS} non-empty texts of at most 200 bytes"),
            ));
        }
        if let Some(check) = &service.healthcheck {
            check_http_url(&check.url).map_err(|why| at("healthcheck.url", &why))?;
            if !(1..=20).contains(&check.samples) {
                return Err(at("healthcheck.samples", "must be between 1 and 20"));
            }
            if check.interval_ms > 10_000 {
                return Err(at("healthcheck.interval_ms", "must be at most 10000"));
            }
            if !(100..=30_000).contains(&check.timeout_ms) {
                return Err(at("healthcheck.timeout_ms", "must be between 100 and 30000"));
            }
            if check.failure_limit >= check.samples {
                return Err(at("healthcheck.failure_limit", "must be less than `samples`"));
            }
            if let Some(status) = check.expect_status
                && !(100..=599).contains(&status)
            {
                return Err(at("healthcheck.expect_status", "must be an HTTP status (100 to 599)"));
            }
            if check.body_contains.as_ref().is_some_and(|b| b.is_empty() || b.len() > 1024) {
                return Err(at("healthcheck.body_contains", "must be 1 to 1024 bytes"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BTreeMap<String, ServiceDeploys>, String> {
        #[derive(Deserialize)]
        struct Doc {
            deploys: BTreeMap<String, ServiceDeploys>,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        validate(&doc.deploys).map(|()| doc.deploys)
    }

    #[test]
    fn a_full_section_reads_with_defaults() {
        let deploys = parse(
            "[deploys.web]\nwatch = [\"/srv/web/current\"]\nunit = \"web.service\"\nlog_file = \"/var/log/web.log\"\n\
             [deploys.web.healthcheck]\nurl = \"http://127.0.0.1:8080/healthz\"\nbody_contains = \"ok\"\n",
        )
        .unwrap();
        let web = &deploys["web"];
        let check = web.healthcheck.as_ref().unwrap();
        assert_eq!((check.samples, check.interval_ms, check.timeout_ms, check.failure_limit), (3, 500, 2000, 0));
        assert_eq!(web.patterns()[0], "error");
    }

    #[test]
    fn bad_sections_are_refused_naming_the_key() {
        for (text, key) in [
            ("[deploys.web]\nwatch = [\"relative\"]\n", "watch"),
            ("[deploys.web]\nunit = \"-x\"\n", "unit"),
            ("[deploys.web]\njournal = true\n", "journal"),
            ("[deploys.web]\nlog_file = \"x.log\"\n", "log_file"),
            ("[deploys.\"a/b\"]\n", "service name"),
            ("[deploys.web.healthcheck]\nurl = \"file:///etc/passwd\"\n", "healthcheck.url"),
            ("[deploys.web.healthcheck]\nurl = \"gopher://x\"\n", "healthcheck.url"),
            ("[deploys.web.healthcheck]\nurl = \"http:///x\"\n", "healthcheck.url"),
            ("[deploys.web.healthcheck]\nurl = \"http://x\"\nsamples = 0\n", "samples"),
            ("[deploys.web.healthcheck]\nurl = \"http://x\"\nsamples = 2\nfailure_limit = 2\n", "failure_limit"),
            ("[deploys.web.healthcheck]\nurl = \"http://x\"\ntimeout_ms = 5\n", "timeout_ms"),
            ("[deploys.web.healthcheck]\nurl = \"http://x\"\nexpect_status = 42\n", "expect_status"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
        assert!(parse("[deploys.web]\nwach = []\n").unwrap_err().contains("wach"));
    }

    #[test]
    fn urls_are_http_or_https_with_a_host() {
        assert!(check_http_url("https://ci.example.com/run/1?x=y").is_ok());
        assert!(check_http_url("http://127.0.0.1:8080/healthz").is_ok());
        assert!(check_http_url("javascript:alert(1)").is_err());
        assert!(check_http_url("https://").is_err());
        assert!(check_http_url("https://a b").is_err());
        assert!(check_http_url("https://user@/x").is_err());
        assert!(check_http_url(&format!("https://x/{}", "a".repeat(2048))).is_err());
    }
}
