//! Deploys as data and pure functions: the owner's `[deploys.SERVICE]` policy section (what the
//! agent watches and probes), the verifier's verdict from its facts, change correlation, the log
//! scan and the stable id of an agent-detected deploy.
//!
//! Everything here is deterministic: the same facts give byte-identical output, which is what lets
//! a stored verification be compared with a re-run and a retrospective cite it.

mod policy;
mod scan;
mod verdict;

pub use policy::{HealthcheckPolicy, ServiceDeploys, check_http_url, validate};
pub use scan::{LogScan, scan_log};
pub use verdict::{CORRELATION_WINDOW_MS, VerifierFacts, correlation, evaluate, format_gap};

use sha2::{Digest, Sha256};

use crate::ids::ServerId;

/// The idempotency key of a deploy the agent detected: the same server, service and release
/// fingerprint always give the same key, so a change reported twice (a reconnect, a restart of
/// the agent) is one deploy. Central derives it from the session's server, never from the message.
pub fn detected_external_id(server: &ServerId, service: &str, fingerprint: &str) -> String {
    let mut hash = Sha256::new();
    for part in [server.as_str(), service, fingerprint] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("agent:{}", &hex::encode(hash.finalize())[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detected_ids_are_stable_and_separate_servers_services_and_releases() {
        let a = ServerId::generate();
        let b = ServerId::generate();
        let id = detected_external_id(&a, "web", "f1");
        assert_eq!(id, detected_external_id(&a, "web", "f1"));
        assert!(id.starts_with("agent:") && id.len() == 38, "{id}");
        assert_ne!(id, detected_external_id(&b, "web", "f1"));
        assert_ne!(id, detected_external_id(&a, "api", "f1"));
        assert_ne!(id, detected_external_id(&a, "web", "f2"));
        // The separator keeps `("ab", "c")` and `("a", "bc")` apart.
        assert_ne!(detected_external_id(&a, "ab", "c"), detected_external_id(&a, "a", "bc"));
    }
}
