//! The gRPC services central mounts.

pub mod account;
pub mod actions;
pub mod agent;
pub mod alerts;
pub mod audit;
pub mod deploys;
pub mod investigations;
pub mod knowledge;
pub mod login;
pub mod releases;
pub mod servers;
pub mod tools;
pub(crate) mod tuning;
pub mod users;

use mttrly_core::MttrlyError;

/// The services this central serves (and so advertises through reflection).
pub const MOUNTED: [&str; 13] = [
    "mttrly.agent.v1.AgentService",
    "mttrly.central.v1.AccountService",
    "mttrly.central.v1.ToolService",
    "mttrly.central.v1.ServerService",
    "mttrly.central.v1.AlertService",
    "mttrly.central.v1.AuditService",
    "mttrly.central.v1.ActionService",
    "mttrly.central.v1.UserService",
    "mttrly.central.v1.LoginService",
    "mttrly.central.v1.DeployService",
    "mttrly.central.v1.KnowledgeService",
    "mttrly.central.v1.ReleaseService",
    "mttrly.central.v1.InvestigationService",
];

/// Converts a library error into a gRPC status (the one conversion, in `mttrly-proto`).
pub fn status(err: &MttrlyError) -> tonic::Status {
    mttrly_proto::status::to_status(err)
}

/// Shorthand for handler results.
pub type GrpcResult<T> = Result<tonic::Response<T>, tonic::Status>;
