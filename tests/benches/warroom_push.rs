//! The war room's push (issue 17): publish to delivery with 1,000 subscribers, from outside, as
//! the load arrives in production. Central runs in this process on its own two-thread runtime
//! (release build, loopback HTTP); 1,000 MCP 2025-11-25 sessions (real Streamable HTTP clients,
//! each with its SSE stream) `resources/subscribe` to `notification://push/recent`; another
//! session publishes into that channel, one notification at a time. For each publish, every
//! subscriber's delay is from the moment the publish call was sent to the moment its
//! `notifications/resources/updated` arrived: the publish (a committed row), the feed, 1,000
//! session watchers and 1,000 SSE writes and reads, on this machine's two cores.
//!
//! cargo bench -p mttrly-tests --bench warroom_push -- [--subscribers 1000] [--publishes 50]

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use mttrly_tests::bench::{arg, percentile};
use mttrly_tests::mcp;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ResourceUpdatedNotificationParam};
use rmcp::service::NotificationContext;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::json;
use tokio::sync::mpsc;

const URI: &str = "notification://push/recent";

/// A subscriber: says when it was told.
#[derive(Clone)]
struct Subscriber {
    told: mpsc::UnboundedSender<Instant>,
}

impl ClientHandler for Subscriber {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("push-bench", "1.0.0"))
    }

    async fn on_resource_updated(
        &self,
        _params: ResourceUpdatedNotificationParam,
        _c: NotificationContext<RoleClient>,
    ) {
        let _ = self.told.send(Instant::now());
    }
}

fn main() {
    let subscribers = arg("--subscribers", 1000) as usize;
    let publishes = arg("--publishes", 50) as usize;
    let load = mttrly_tests::bench::central_for_load();
    let (url, token) = (load.url.clone(), load.token.clone());

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let publisher = mcp::connect_as(&url, &token, "publisher").await;
        mcp::call_ok(&publisher, "mttrly_create_channel", json!({ "channel": "push" })).await;
        let (told_tx, mut told) = mpsc::unbounded_channel();
        let started = Instant::now();
        let mut sessions = Vec::with_capacity(subscribers);
        for _ in 0..subscribers {
            let transport = StreamableHttpClientTransport::from_config(
                StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(token.clone()),
            );
            let session = Subscriber { told: told_tx.clone() }.serve(transport).await.unwrap();
            #[allow(deprecated)] // the 2025 revisions' subscribe
            session.subscribe(rmcp::model::SubscribeRequestParams::new(URI)).await.unwrap();
            sessions.push(session);
        }
        println!("{subscribers} sessions subscribed in {:.1?}", started.elapsed());

        let mut delays = Vec::with_capacity(subscribers * publishes);
        let mut last = Vec::with_capacity(publishes);
        for n in 0..publishes {
            let sent = Instant::now();
            mcp::call_ok(
                &publisher,
                "mttrly_publish_notification",
                json!({ "channel": "push", "title": format!("update {n}"), "priority": "high" }),
            )
            .await;
            let mut got = 0;
            let mut slowest = Duration::ZERO;
            while got < subscribers {
                let at = tokio::time::timeout(Duration::from_secs(30), told.recv()).await.unwrap().unwrap();
                let d = at.saturating_duration_since(sent);
                slowest = slowest.max(d);
                delays.push(d);
                got += 1;
            }
            last.push(slowest);
        }
        delays.sort();
        last.sort();
        println!(
            "publish to delivery, {subscribers} subscribers x {publishes} publishes: p50={:.2?} p99={:.2?} max={:.2?}",
            percentile(&delays, 0.5),
            percentile(&delays, 0.99),
            delays[delays.len() - 1]
        );
        println!(
            "publish to the last subscriber told: p50={:.2?} p99={:.2?}",
            percentile(&last, 0.5),
            percentile(&last, 0.99)
        );
        drop(sessions);
    });
}
