//! Error codes across the gRPC boundary.
//!
//! A failed call is a `tonic::Status` whose code follows the seed code's mapping and whose binary
//! metadata `x-mttrly-error-bin` carries the JSON error body, so a client gets back exactly the
//! [`MttrlyError`] the server raised. Conversions happen here and nowhere else.

use mttrly_core::error::{ErrorBody, GrpcCode};
use mttrly_core::{ErrorCode, MttrlyError};
use tonic::metadata::MetadataValue;

/// The metadata key that carries the JSON error body.
pub const ERROR_METADATA_KEY: &str = "x-mttrly-error-bin";

fn tonic_code(code: GrpcCode) -> tonic::Code {
    match code {
        GrpcCode::InvalidArgument => tonic::Code::InvalidArgument,
        GrpcCode::DeadlineExceeded => tonic::Code::DeadlineExceeded,
        GrpcCode::NotFound => tonic::Code::NotFound,
        GrpcCode::PermissionDenied => tonic::Code::PermissionDenied,
        GrpcCode::ResourceExhausted => tonic::Code::ResourceExhausted,
        GrpcCode::FailedPrecondition => tonic::Code::FailedPrecondition,
        GrpcCode::Aborted => tonic::Code::Aborted,
        GrpcCode::Internal => tonic::Code::Internal,
        GrpcCode::Unavailable => tonic::Code::Unavailable,
        GrpcCode::Unauthenticated => tonic::Code::Unauthenticated,
        GrpcCode::Unknown => tonic::Code::Unknown,
    }
}

/// Encodes an error as a gRPC status.
pub fn to_status(err: &MttrlyError) -> tonic::Status {
    let mut status = tonic::Status::new(tonic_code(err.code().grpc_code()), err.message());
    if let Ok(body) = serde_json::to_vec(&err.body()) {
        status.metadata_mut().insert_bin(ERROR_METADATA_KEY, MetadataValue::from_bytes(&body));
    }
    status
}

/// Decodes a gRPC status back into the error the server raised. A status without our metadata
/// (a proxy, a transport failure) is mapped from its gRPC code.
pub fn from_status(status: &tonic::Status) -> MttrlyError {
    if let Some(value) = status.metadata().get_bin(ERROR_METADATA_KEY)
        && let Ok(bytes) = value.to_bytes()
        && let Ok(body) = serde_json::from_slice::<ErrorBody>(&bytes)
    {
        return MttrlyError::from_body(body);
    }
    let code = match status.code() {
        tonic::Code::Unavailable => ErrorCode::ConnectionError,
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => ErrorCode::Timeout,
        tonic::Code::Unauthenticated => ErrorCode::AuthFailed,
        tonic::Code::PermissionDenied => ErrorCode::Forbidden,
        tonic::Code::NotFound => ErrorCode::NotFound,
        tonic::Code::InvalidArgument => ErrorCode::ValidationError,
        tonic::Code::ResourceExhausted => ErrorCode::RateLimited,
        tonic::Code::Internal => ErrorCode::InternalError,
        _ => ErrorCode::UnknownError,
    };
    MttrlyError::new(code, status.message()).with_detail("grpc_code", format!("{:?}", status.code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_a_status() {
        for code in ErrorCode::ALL {
            let err = MttrlyError::new(*code, "naïve — message").with_detail("action_id", "act_1");
            let status = to_status(&err);
            assert_eq!(status.code() as i32, code.grpc_code().as_i32(), "{code}");
            assert_eq!(from_status(&status), err);
        }
    }

    #[test]
    fn foreign_statuses_map_by_grpc_code() {
        let err = from_status(&tonic::Status::unavailable("connection refused"));
        assert_eq!(err.code(), ErrorCode::ConnectionError);
        let err = from_status(&tonic::Status::unauthenticated("no"));
        assert_eq!(err.code(), ErrorCode::AuthFailed);
    }
}
