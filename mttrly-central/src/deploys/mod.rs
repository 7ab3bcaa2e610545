//! Deploys (issue 15 item 3): recording them from a CI's signed webhook (`hooks::deploy`) and
//! `mttrly-cli deploys record` (`grpc::deploys`), recording the ones an agent detects, and the
//! deploy verifier behind `mttrly_run_deploy_verifier`.
//!
//! One path stores every deploy whoever sent it ([`record::record`]): validated (lengths, http(s)
//! links only, sane times), redacted, idempotent on the sender's id, audited. The verifier's
//! verdict is the pure [`mttrly_core::deploys::evaluate`] over what central knows (the deploy, the
//! alerts since it started) and what the agent saw (`deploy.verify`).

pub mod detect;
pub mod record;
pub mod verify;

pub use detect::detected;
pub use record::{Actor, DeployReport, WireTime, record};
