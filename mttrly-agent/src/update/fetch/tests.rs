//! A central that stops sending, served by a listener of the test's own: this file is compiled
//! only under `cfg(test)` (see `layers::the_agent_never_listens`).

#![allow(clippy::unwrap_used)]

use std::pin::Pin;

use mttrly_proto::central::v1::release_service_server::{ReleaseService, ReleaseServiceServer};
use mttrly_proto::central::v1::{
    ListReleasesRequest, ListReleasesResponse, PublishReleaseChunk, PublishReleaseResponse, ReleaseChunk,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::*;

/// A central whose release stream sends one chunk, then nothing, and never ends.
struct Stuck;

type Chunks = Pin<Box<dyn Stream<Item = Result<ReleaseChunk, Status>> + Send>>;

#[tonic::async_trait]
impl ReleaseService for Stuck {
    async fn publish_release(
        &self,
        _: Request<Streaming<PublishReleaseChunk>>,
    ) -> Result<Response<PublishReleaseResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn list_releases(&self, _: Request<ListReleasesRequest>) -> Result<Response<ListReleasesResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    type FetchReleaseStream = Chunks;

    async fn fetch_release(
        &self,
        _: Request<mttrly_proto::central::v1::FetchReleaseRequest>,
    ) -> Result<Response<Chunks>, Status> {
        let first = tokio_stream::iter([Ok(ReleaseChunk { data: vec![7; 1024] })]);
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::chain(first, tokio_stream::pending()))))
    }
}

#[test]
fn the_budget_grows_with_the_size_at_the_slowest_allowed_rate() {
    assert_eq!(budget(0, STALL), Duration::from_secs(120));
    assert_eq!(budget(50 * 1024 * 1024, STALL), Duration::from_secs(120 + 800));
}

#[tokio::test]
async fn a_central_that_stops_sending_ends_the_download_and_leaves_no_file() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ReleaseServiceServer::new(Stuck))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let credentials = Credentials {
        server_id: "srv_00000000000000000000000000000000".into(),
        agent_secret: "secret".into(),
        central_url: format!("http://{addr}"),
        ca_certificate_pem: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("mttrly-agent.unverified");
    let release = Release { action_id: "act_1", sha256: &"0".repeat(64), size: 4096 };
    let started = std::time::Instant::now();
    let err = fetch_within(&credentials, release, &dest, Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(err.message().contains("central sent nothing of the release"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "it waited {:?}", started.elapsed());
    assert!(!dest.exists(), "the partial download is removed");
    server.abort();
}
