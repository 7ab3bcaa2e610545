//! `mttrly-proto`: the gRPC contract, generated from `proto/` without a system `protoc`.
//!
//! This is the only crate that exposes prost and tonic types. Two packages:
//! - [`agent::v1`]: the agent's enrollment and its one outbound bidirectional stream.
//! - [`central::v1`]: the API that `mttrly-cli`, the standalone MCP binary and third parties call.
//!
//! Servers built on this contract should also mount [`reflection_service`] and a health service
//! from [`health_reporter`], so `grpcurl`-style tools can discover and probe them.

/// The agent channel.
pub mod agent {
    /// Version 1.
    #[allow(missing_docs, unreachable_pub, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("mttrly.agent.v1");
    }
}

/// The central API.
pub mod central {
    /// Version 1.
    #[allow(missing_docs, unreachable_pub, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("mttrly.central.v1");
    }
}

pub mod client;
pub mod codec;
pub mod convert;
pub mod status;

/// The encoded `FileDescriptorSet` of every mttrly proto file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mttrly_descriptor.bin"));

/// The fully qualified names of every gRPC service in the contract.
pub const SERVICE_NAMES: [&str; 11] = [
    "mttrly.agent.v1.AgentService",
    "mttrly.central.v1.AccountService",
    "mttrly.central.v1.ToolService",
    "mttrly.central.v1.ServerService",
    "mttrly.central.v1.AlertService",
    "mttrly.central.v1.ActionService",
    "mttrly.central.v1.AuditService",
    "mttrly.central.v1.UserService",
    "mttrly.central.v1.LoginService",
    "mttrly.central.v1.KnowledgeService",
    "mttrly.central.v1.InvestigationService",
];

/// The name central's certificate always carries and clients verify, whatever address they dial:
/// central's CA is private and pinned, so the name only has to be stable, not public.
pub const TLS_SERVER_NAME: &str = "mttrly-central";

/// The health service's name, advertised alongside mttrly's.
pub const HEALTH_SERVICE_NAME: &str = "grpc.health.v1.Health";

/// A gRPC reflection service (v1) that advertises exactly `services` (plus health and reflection
/// itself): a server lists what it really mounts, never a service it does not serve.
pub fn reflection_service(
    services: &[&str],
) -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
    tonic_reflection::server::Error,
> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(HEALTH_SERVICE_NAME)
        .with_service_name("grpc.reflection.v1.ServerReflection");
    for service in services {
        builder = builder.with_service_name(*service);
    }
    builder.build_v1()
}

pub use tonic_health::ServingStatus;
pub use tonic_health::server::{HealthReporter, health_reporter};
/// Why [`reflection_service`] could not be built (a typed source for callers' errors).
pub use tonic_reflection::server::Error as ReflectionError;
