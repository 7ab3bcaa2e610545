//! Token resolution on the MCP path: `auth::resolve` of a human API token for `/mcp`, cached (what
//! every request of an open MCP session pays) and with last-use tracking on (at most one write a
//! minute per token, off the request). Issue 12's bar: median under 0.1 ms.
//!
//! cargo bench -p mttrly-tests --bench auth -- [--calls 100000]

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, clippy::cast_possible_truncation)]

use std::time::Instant;

use mttrly_tests::in_process::InProcessCentral;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls: usize = args.windows(2).find(|w| w[0] == "--calls").and_then(|w| w[1].parse().ok()).unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let h = InProcessCentral::start(|_| {}).await;
        let central = &h.central.central;
        let resource = format!("http://{}/mcp", h.central.http_addr);
        let resource = mttrly_central::auth::Resource::Mcp(&resource);
        mttrly_central::auth::resolve(central, Some(&h.admin), resource).await.unwrap();
        let mut took = Vec::with_capacity(calls);
        for _ in 0..calls {
            let start = Instant::now();
            let owner = mttrly_central::auth::resolve(central, Some(&h.admin), resource).await.unwrap();
            took.push(start.elapsed());
            assert_eq!(owner.user_name, "admin");
        }
        took.sort();
        let pct = |p: usize| took[(took.len() * p / 100).min(took.len() - 1)];
        println!(
            "auth::resolve (human token, /mcp, cached, last-use tracking): {calls} calls, median {:?}, p99 {:?}, max {:?}",
            pct(50),
            pct(99),
            took[took.len() - 1]
        );
        h.central.shutdown().await;
    });
}
