//! What the `/mcp` load benches share (`cargo bench -p mttrly-tests`): their arguments, their
//! percentiles, and central started the way they measure it: in the bench's process on its own
//! two-thread runtime, so the load (on another runtime) reaches it over loopback HTTP as a
//! client's would.

use std::time::Duration;

use mttrly_central::config::Config;

/// `--name N` from the command line, else `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == name).and_then(|w| w[1].parse().ok()).unwrap_or(default)
}

/// The `p` percentile (0.0 to 1.0) of `sorted` (not empty).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A central for load: its `/mcp` URL, its admin token, and the directory it lives in (removed
/// when dropped).
pub struct LoadCentral {
    /// `/mcp`'s URL.
    pub url: String,
    /// The admin token `init` printed.
    pub token: String,
    _dir: tempfile::TempDir,
}

/// `init` and start a central on ephemeral loopback ports, on its own two-thread runtime (a
/// thread that lives as long as the process), with the rate limits and the session caps lifted:
/// one token opens every session of the load.
///
/// # Panics
/// When central cannot be set up (a bench has nothing to measure then).
#[must_use]
pub fn central_for_load() -> LoadCentral {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cfg = Config {
        data_dir: dir.path().join("data"),
        grpc_listen: "127.0.0.1:0".parse().expect("an address"),
        http_listen: "127.0.0.1:0".parse().expect("an address"),
        rate_limit_principal_per_minute: 100_000_000,
        rate_limit_account_per_minute: 100_000_000,
        mcp_sessions_per_token: 4096,
        mcp_sessions_per_user: 4096,
        ..Config::default()
    };
    let token = mttrly_central::init::init(&cfg, None).expect("init").admin_token;
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(async move {
            let central = mttrly_central::server::start(cfg).await.expect("central starts");
            url_tx.send(central.mcp_url()).expect("the bench waits");
            std::future::pending::<()>().await;
        });
    });
    let url = url_rx.recv().expect("central's URL");
    LoadCentral { url, token, _dir: dir }
}
