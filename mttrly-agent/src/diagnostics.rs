//! Diagnostics and service discovery on the host: run the read-only commands `mttrly-core` lists
//! for the requested probes (concurrently, each with a short deadline), sample the metrics, and
//! return the evidence. Interpretation happens in `mttrly_core::diagnose` / `reality`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mttrly_core::capability::DiagnosticParams;
use mttrly_core::diagnose::{self, CommandEvidence, Evidence};
use tokio::sync::mpsc;

use crate::exec::{self, Limits, Program};
use crate::metrics::MetricsCollector;
use crate::policy::LocalPolicy;

/// One probe command's deadline.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines kept per probe command.
const PROBE_LINES: usize = 300;

async fn run_one(argv: Vec<String>, run_as: Option<(u32, u32)>) -> CommandEvidence {
    // Probe output is evidence, not a live stream: nothing goes to the task's output channel.
    let (sink, _) = mpsc::channel(1);
    let limits = Limits { timeout: PROBE_TIMEOUT, max_lines: PROBE_LINES, ..Limits::default() };
    match exec::run(&Program::Argv(argv.clone()), limits, run_as, &sink).await {
        Ok(out) => CommandEvidence {
            argv,
            exit_code: if out.timed_out { None } else { out.exit_code },
            output: out.output,
            missing: false,
        },
        Err(e) => CommandEvidence {
            argv,
            exit_code: None,
            output: if e.kind() == std::io::ErrorKind::NotFound { String::new() } else { e.to_string() },
            missing: e.kind() == std::io::ErrorKind::NotFound,
        },
    }
}

async fn collect(
    commands: Vec<(String, Vec<String>)>,
    policy: &LocalPolicy,
    metrics: Option<&Arc<Mutex<MetricsCollector>>>,
) -> Evidence {
    let mut set = tokio::task::JoinSet::new();
    for (key, argv) in commands {
        let run_as = policy.run_as();
        set.spawn(async move { (key, run_one(argv, run_as).await) });
    }
    let mut ev = Evidence::default();
    if let Some(collector) = metrics {
        let collector = Arc::clone(collector);
        if let Ok(sample) =
            tokio::task::spawn_blocking(move || collector.lock().unwrap_or_else(PoisonError::into_inner).sample()).await
        {
            ev.metrics = Some(mttrly_proto::convert::metrics_from_wire(&sample, jiff::Timestamp::now()));
        }
        ev.cpu_count = std::thread::available_parallelism().ok().and_then(|n| u32::try_from(n.get()).ok());
    }
    while let Some(done) = set.join_next().await {
        if let Ok((key, evidence)) = done {
            ev.commands.insert(key, evidence);
        }
    }
    ev
}

/// Runs the requested probes.
pub async fn diagnose(policy: &LocalPolicy, metrics: &Arc<Mutex<MetricsCollector>>, p: DiagnosticParams) -> Evidence {
    let mut probes = p.probes;
    probes.sort();
    probes.dedup();
    let commands: Vec<(String, Vec<String>)> =
        probes.iter().flat_map(|probe| diagnose::commands(*probe, p.unit.as_deref())).collect();
    collect(commands, policy, Some(metrics)).await
}

/// Runs discovery.
pub async fn discover(policy: &LocalPolicy) -> Evidence {
    collect(mttrly_core::reality::commands(), policy, None).await
}
