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

pub mod status;

/// The encoded `FileDescriptorSet` of every mttrly proto file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mttrly_descriptor.bin"));

/// The fully qualified names of mttrly's gRPC services.
pub const SERVICE_NAMES: [&str; 2] = ["mttrly.agent.v1.AgentService", "mttrly.central.v1.CentralService"];

/// A gRPC reflection service (v1) describing mttrly's services.
pub fn reflection_service() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
    tonic_reflection::server::Error,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
}

pub use tonic_health::server::{HealthReporter, health_reporter};
