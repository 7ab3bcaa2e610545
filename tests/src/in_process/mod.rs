//! The in-process harness: central started with [`mttrly_central::server::start`] inside the
//! test's own runtime, on ephemeral loopback ports, with its admin token. Use it when a test
//! needs what a process hides: a config field no flag sets, central's live registry or database,
//! a real agent in the same process. Scenarios a user would run from a shell use
//! [`crate::TestCentral`], the same central as a child process.
//!
//! One module per job: [`grpc`] (authenticated requests, typed replies), [`mcp_raw`] (MCP over
//! raw HTTP/1.1, where a test controls every header), and [`run_agent`] below.

pub mod grpc;
pub mod mcp_raw;

use std::path::{Path, PathBuf};

pub use grpc::{authed, call_tool, code, get_action};
pub use mcp_raw::{Mcp, header, http, json_of};
use mttrly_central::alerts::config::RuleOverride;
use mttrly_central::config::Config;
use mttrly_central::server::{RunningCentral, start};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The built-in rules that judge the test machine's own disk, memory and CPU.
pub const HOST_METRIC_RULES: [&str; 4] = ["disk_usage", "disk_usage_critical", "memory", "cpu_sustained"];

/// A config in `dir` listening on ephemeral loopback ports (`data/` holds the database), with the
/// [`HOST_METRIC_RULES`] off.
///
/// Why off: a real agent reports the real machine, and a CI machine whose shared disk is 85 % full
/// would open a `disk_usage` alert in every test with an agent, and with it an incident, a thread
/// and timeline entries no test asked for. A test of those rules turns them on itself.
pub fn config(dir: &Path) -> Config {
    let mut config = Config {
        data_dir: dir.join("data"),
        grpc_listen: "127.0.0.1:0".parse().expect("a loopback address"),
        http_listen: "127.0.0.1:0".parse().expect("a loopback address"),
        ..Config::default()
    };
    for rule in HOST_METRIC_RULES {
        config.alerts.insert(rule.into(), RuleOverride { enabled: Some(false), ..RuleOverride::default() });
    }
    config
}

/// Heartbeats every second, offline after two missed: agents' liveness shows within seconds.
pub fn fast_heartbeats(cfg: &mut Config) {
    cfg.heartbeat_interval_seconds = 1;
    cfg.offline_after_missed_heartbeats = 2;
}

/// An initialised central running in this process, its temporary directory and admin token.
///
/// The fields are public so a test can take the central apart (`central.shutdown()` consumes it,
/// and a restart reuses `dir`).
pub struct InProcessCentral {
    /// Holds the data directory ([`config`]); removed when dropped.
    pub dir: tempfile::TempDir,
    /// The running central: its addresses, `shutdown`, and its state for white-box checks.
    pub central: RunningCentral,
    /// The admin token `init` printed.
    pub admin: String,
}

impl InProcessCentral {
    /// `init` then `start` a central on [`config`], adjusted by `tune` before `init` (so the plan
    /// and anything `init` records follow it).
    pub async fn start(tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut cfg = config(dir.path());
        tune(&mut cfg);
        let init = mttrly_central::init::init(&cfg, None).expect("init");
        let central = start(cfg).await.expect("central starts");
        Self { dir, central, admin: init.admin_token }
    }

    /// A new gRPC channel to this central.
    pub async fn channel(&self) -> Channel {
        channel(&self.central).await
    }
}

/// A new gRPC channel to `central`.
pub async fn channel(central: &RunningCentral) -> Channel {
    Channel::from_shared(central.grpc_url().to_owned())
        .expect("central's gRPC URL")
        .connect()
        .await
        .expect("connect to central")
}

/// A real agent in this process: the stop switch and the task running it.
pub type RunningAgent = (watch::Sender<bool>, JoinHandle<Result<(), mttrly_agent::AgentError>>);

/// Enrolls an agent with `install_token` into `state` and runs it with the default policy, as
/// quickstart's local agent does. Send `true` on the switch to stop it.
pub async fn run_agent(grpc_url: &str, install_token: &str, state: PathBuf) -> RunningAgent {
    mttrly_agent::enroll::enroll(grpc_url, install_token, None, &state, false).await.expect("the agent enrolls");
    let (stop, stopped) = watch::channel(false);
    let agent = tokio::spawn(mttrly_agent::run(
        mttrly_agent::RunOptions::new(state, mttrly_agent::policy::LocalPolicy::default()),
        stopped,
    ));
    (stop, agent)
}
