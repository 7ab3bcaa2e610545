//! `mttrly.central.v1.ReleaseService`: `mttrly-cli releases publish|list` and the agent's fetch of
//! an approved update's binary. The rules are in `crate::releases`; this converts the wire form.

use std::pin::Pin;
use std::sync::Arc;

use mttrly_core::ids::ServerId;
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::release_service_server::ReleaseService;
use mttrly_proto::central::v1::{
    FetchReleaseRequest, ListReleasesRequest, ListReleasesResponse, PublishReleaseChunk, PublishReleaseResponse,
    Release, ReleaseChunk, publish_release_chunk,
};
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use super::{GrpcResult, status};
use crate::auth::authenticate;
use crate::db::releases::ReleaseRow;
use crate::releases::{publish, serve};
use crate::state::Central;

/// The release service.
pub struct ReleaseApi {
    central: Arc<Central>,
}

impl ReleaseApi {
    /// Serves `central`'s releases.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

fn wire(r: ReleaseRow) -> Release {
    Release {
        version: r.version,
        target: r.target,
        sha256: r.sha256,
        size: r.size,
        min_central: r.min_central,
        expires_at_unix_ms: r.expires_at,
        signing_key_id: r.signing_key_id,
        root_key_id: r.root_key_id,
        published_at_unix_ms: r.published_at,
        published_by: r.published_by,
    }
}

fn invalid(message: &str) -> Status {
    status(&MttrlyError::new(ErrorCode::ValidationError, message))
}

/// The binary's chunks as the agent receives them.
type ChunkStream = Pin<Box<dyn Stream<Item = Result<ReleaseChunk, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ReleaseService for ReleaseApi {
    async fn publish_release(
        &self,
        request: Request<Streaming<PublishReleaseChunk>>,
    ) -> GrpcResult<PublishReleaseResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let mut inbound = request.into_inner();
        let Some(PublishReleaseChunk { body: Some(publish_release_chunk::Body::BundleJson(bundle_json)) }) =
            inbound.message().await?
        else {
            return Err(invalid("a publish stream starts with the release bundle"));
        };
        let mut prepared = publish::prepare(&self.central, &owner, &bundle_json).await.map_err(|e| status(&e))?;
        while let Some(chunk) = inbound.message().await? {
            match chunk.body {
                Some(publish_release_chunk::Body::Data(bytes)) => {
                    prepared.incoming.write(&bytes).await.map_err(|e| status(&e))?;
                }
                _ => return Err(invalid("after the bundle, a publish stream carries only the binary's bytes")),
            }
        }
        let (row, already_published) = prepared.commit(&self.central, &owner).await.map_err(|e| status(&e))?;
        Ok(Response::new(PublishReleaseResponse { release: Some(wire(row)), already_published }))
    }

    async fn list_releases(&self, request: Request<ListReleasesRequest>) -> GrpcResult<ListReleasesResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let target = Some(request.into_inner().target).filter(|t| !t.is_empty());
        let rows = publish::list(&self.central, &owner, target).await.map_err(|e| status(&e))?;
        Ok(Response::new(ListReleasesResponse { releases: rows.into_iter().map(wire).collect() }))
    }

    type FetchReleaseStream = ChunkStream;

    async fn fetch_release(&self, request: Request<FetchReleaseRequest>) -> GrpcResult<Self::FetchReleaseStream> {
        let metadata = request.metadata();
        let claimed =
            metadata.get("x-mttrly-server-id").and_then(|v| v.to_str().ok()).and_then(|s| ServerId::parse(s).ok());
        let (server, account) =
            crate::auth::resolve_agent(&self.central, crate::auth::grpc_credential(metadata), claimed)
                .await
                .map_err(|e| status(&e))?;
        let req = request.into_inner();
        let file =
            serve::open(&self.central, &account, &server, &req.action_id, &req.sha256).await.map_err(|e| status(&e))?;
        let chunks = tokio_stream::wrappers::ReceiverStream::new(serve::chunks(file))
            .map(|chunk| chunk.map(|data| ReleaseChunk { data }).map_err(|e| status(&e)));
        Ok(Response::new(Box::pin(chunks)))
    }
}
