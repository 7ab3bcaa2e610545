//! `grpcurl`-style discovery works: reflection lists mttrly's services and describes them, and the
//! standard health service answers. Real tonic server on loopback TCP, real client.

use std::time::Duration;

use mttrly_proto::{HEALTH_SERVICE_NAME, SERVICE_NAMES, health_reporter, reflection_service};
use tokio_stream::StreamExt as _;
use tonic::transport::{Channel, Server};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn serve() -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let (reporter, health) = health_reporter();
    reporter.set_service_status("mttrly.central.v1.ServerService", tonic_health::ServingStatus::Serving).await;
    let reflection = reflection_service(&SERVICE_NAMES).expect("reflection builds from the descriptor set");
    tokio::spawn(async move {
        Server::builder()
            .add_service(reflection)
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect")
}

async fn reflect(channel: Channel, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut stream = client.server_reflection_info(tokio_stream::iter([req])).await.expect("call").into_inner();
    let response = stream.next().await.expect("one response").expect("ok response");
    response.message_response.expect("a body")
}

#[tokio::test]
async fn reflection_lists_and_describes_mttrly_services() {
    let channel = serve().await;
    let MessageResponse::ListServicesResponse(list) =
        reflect(channel.clone(), MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in SERVICE_NAMES.iter().chain(&[HEALTH_SERVICE_NAME]) {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }

    let MessageResponse::FileDescriptorResponse(files) =
        reflect(channel, MessageRequest::FileContainingSymbol("mttrly.agent.v1.AgentService".into())).await
    else {
        panic!("expected file descriptors");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[tokio::test]
async fn reflection_advertises_only_mounted_services() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let reflection = reflection_service(&["mttrly.central.v1.ServerService"]).expect("builds");
    tokio::spawn(
        Server::builder()
            .add_service(reflection)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect");
    let MessageResponse::ListServicesResponse(list) =
        reflect(channel, MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"mttrly.central.v1.ServerService".to_owned()));
    assert!(!names.iter().any(|n| n == "mttrly.central.v1.ActionService"), "{names:?}");
}

#[tokio::test]
async fn health_reports_serving() {
    let channel = serve().await;
    let mut client = HealthClient::new(channel);
    let response = client
        .check(HealthCheckRequest { service: "mttrly.central.v1.ServerService".into() })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(response.status(), ServingStatus::Serving);
}
