//! Deploys on this host, from the owner's `[deploys.SERVICE]` policy: the verifier's host-side
//! checks ([`probe`], the `deploy.verify` capability) and detection of releases nobody reported
//! ([`watch`], sent as `AgentMessage.deploy_detected`). A service the policy does not name is
//! never watched or probed.

pub mod probe;
pub mod watch;

pub use probe::verify;
pub use watch::{Watcher, spawn};
