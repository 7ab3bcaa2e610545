//! Connecting to central with the user's token (shared with the standalone MCP server).

pub(crate) use mttrly_proto::client::{Authed, connect};

/// Converts a failed call into the error central raised.
pub(crate) fn error(status: &tonic::Status) -> mttrly_core::MttrlyError {
    mttrly_proto::status::from_status(status)
}
