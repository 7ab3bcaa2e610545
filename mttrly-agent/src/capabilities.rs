//! What the agent does when central asks: the typed handlers of [`mttrly_core::capability`],
//! one per row of the table, dispatched by [`mttrly_core::capability::dispatch`]. The owner's
//! local policy is checked here, on the host, whatever central decided.

use std::sync::{Arc, Mutex, PoisonError};

use mttrly_core::capability::{
    self, AgentUpdate, AgentUpdateStatus, Capability, CapabilityId, CapabilitySet, ClassifyParams, CommandClassify,
    CommandRun, DeployVerify, DiagnosticRun, FileCleanup, FileCurrent, FileDiffRun, FileRead, FileReadPrivileged,
    FileSearch, FileWrite, FilesCompare, Handler, HostSample, Outcome, PlaybookList, PlaybookPlan, PlaybookRun,
    RealityDiscover, ScriptRun,
};
use mttrly_core::tools::common::HostMetrics;
use mttrly_core::{ErrorCode, MttrlyError};

use mttrly_core::capability::{InstallHealth, InstallRepair};

use crate::metrics::MetricsCollector;
use crate::policy::LocalPolicy;
use crate::task::{Task, denied, require_action};

/// What capabilities share.
pub struct Context {
    /// The metrics sampler.
    pub collector: Arc<Mutex<MetricsCollector>>,
    /// The owner's policy.
    pub policy: Arc<LocalPolicy>,
    /// The self-updater (issue 16).
    pub update: Arc<crate::update::Updater>,
    /// Where this agent's installation lives (`/` unless run with `--install-root`).
    pub layout: crate::install::layout::Layout,
}

/// The capabilities this agent offers, announced in `Hello`: every row of the table (a row the
/// agent cannot answer does not compile, since [`capability::dispatch`] needs its handler).
pub fn offered() -> CapabilitySet {
    CapabilitySet::all()
}

/// Runs the capability central named (a wire string: a name this build does not know, from a
/// newer central, is refused naming it and this agent's version). The answer comes back encoded.
pub async fn invoke(ctx: &Context, capability: &str, params: &[u8], task: &Task<'_>) -> Outcome<Vec<u8>> {
    if let Ok(id) = capability.parse::<CapabilityId>() {
        return capability::dispatch(ctx, task, id, params).await;
    }
    let shown: String = capability.chars().take(64).collect();
    Outcome::failed(
        denied(format!("this agent (version {}) does not offer the capability `{shown}`", crate::VERSION))
            .with_detail("capability", shown)
            .with_detail("agent_version", crate::VERSION),
    )
}

/// Implements [`Handler`] for [`Context`] for each row, binding the context, the task and the
/// typed parameters to the names given.
macro_rules! handlers {
    ($( $cap:ident => |$ctx:pat_param, $task:pat_param, $params:pat_param| $body:expr; )+) => {
        $(
            impl<'a> Handler<$cap, Task<'a>> for Context {
                async fn handle(
                    &self,
                    task: &Task<'a>,
                    params: <$cap as Capability>::Params,
                ) -> Outcome<<$cap as Capability>::Answer> {
                    let ($ctx, $task, $params) = (self, task, params);
                    $body
                }
            }
        )+
    };
}

handlers! {
    HostSample => |ctx, _, _| sample(ctx).await.into();
    CommandRun => |ctx, task, content| crate::commands::run_command(&ctx.policy, task, content).await;
    CommandClassify => |ctx, _, ClassifyParams { command }| {
        Outcome::ok(crate::commands::final_verdict(&ctx.policy, command).await.0)
    };
    ScriptRun => |ctx, task, content| crate::commands::run_script(&ctx.policy, task, content).await;
    FileRead => |ctx, _, p| crate::files::read(ctx.policy.files(), p).await.into();
    FileReadPrivileged => |ctx, _, p| crate::files::read_privileged(ctx.policy.files(), p).await.into();
    FileSearch => |ctx, _, p| crate::files::search(ctx.policy.files(), p).await.into();
    FileDiffRun => |ctx, _, p| crate::files::diff(ctx.policy.files(), p).await.into();
    FileWrite => |ctx, task, content| match require_action(task, FILE_CHANGES_ARE_ACTIONS) {
        Err(refused) => refused,
        Ok(()) => crate::files::write(ctx.policy.files(), content, task.payload).await.into(),
    };
    FileCleanup => |ctx, task, content| match require_action(task, FILE_CHANGES_ARE_ACTIONS) {
        Err(refused) => refused,
        Ok(()) => crate::files::cleanup(ctx.policy.files(), content).await.into(),
    };
    FileCurrent => |ctx, _, p| crate::files::current(ctx.policy.files(), p).await.into();
    PlaybookList => |ctx, _, _| playbook_list(ctx).await.into();
    PlaybookPlan => |ctx, _, p| crate::playbooks::plan(&ctx.policy, &p).into();
    PlaybookRun => |ctx, task, content| {
        match require_action(task, "playbooks run only as actions (with an action id central approved)") {
            Err(refused) => refused,
            Ok(()) => crate::playbooks::run(&ctx.policy, content, task.chunks).await,
        }
    };
    DiagnosticRun => |ctx, _, p| match diagnostics_allowed(ctx) {
        Err(e) => Outcome::failed(e),
        Ok(()) => Outcome::ok(crate::diagnostics::diagnose(&ctx.policy, &ctx.collector, p).await),
    };
    RealityDiscover => |ctx, _, _| match diagnostics_allowed(ctx) {
        Err(e) => Outcome::failed(e),
        Ok(()) => Outcome::ok(crate::diagnostics::discover(&ctx.policy).await),
    };
    DeployVerify => |ctx, _, p| crate::deploys::verify(&ctx.policy, p).await.into();
    AgentUpdate => |ctx, task, content| ctx.update.stage(task, task.action_id, content).await;
    AgentUpdateStatus => |ctx, _, p| ctx.update.status(&p).into();
    FilesCompare => |ctx, _, p| crate::files::compare(&ctx.policy, p).await.into();
    InstallHealth => |ctx, _, p| crate::install::install_health(&ctx.layout, p).await.into();
    InstallRepair => |ctx, task, content| {
        if task.action && task.approved {
            crate::install::repair::request(&ctx.layout, task.action_id, &content).await.into()
        } else {
            Outcome::failed(denied("install repairs run only as actions a human approved"))
        }
    };
}

/// The playbook catalog with availability: looking programs up on `PATH` stats files, so it runs
/// on the blocking pool.
async fn playbook_list(ctx: &Context) -> Result<mttrly_core::capability::PlaybookOffers, MttrlyError> {
    let policy = Arc::clone(&ctx.policy);
    tokio::task::spawn_blocking(move || crate::playbooks::list(&policy))
        .await
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("listing playbooks failed: {e}")))
}

/// Why a file change sent as a plain request is refused.
const FILE_CHANGES_ARE_ACTIONS: &str = "file changes run only as actions a human approved";

fn diagnostics_allowed(ctx: &Context) -> Result<(), MttrlyError> {
    if ctx.policy.diagnostics_enabled {
        Ok(())
    } else {
        Err(denied("this server's local policy disables diagnostics and discovery"))
    }
}

/// Fresh metrics, sampled on the blocking pool.
async fn sample(ctx: &Context) -> Result<HostMetrics, MttrlyError> {
    let collector = Arc::clone(&ctx.collector);
    tokio::task::spawn_blocking(move || collector.lock().unwrap_or_else(PoisonError::into_inner).sample())
        .await
        .map(|sample| mttrly_proto::convert::metrics_from_wire(&sample, jiff::Timestamp::now()))
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("metrics sampling failed: {e}")))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use mttrly_core::action::ActionContent;
    use mttrly_core::capability::End;
    use serde_json::Value;
    use tokio::sync::mpsc;

    use super::*;

    fn context(dir: &Path) -> Context {
        let policy_file = dir.join("policy.toml");
        std::fs::write(&policy_file, format!("file_roots = [\"{}/logs/**\"]\n", dir.display())).unwrap();
        Context {
            collector: Arc::new(Mutex::new(MetricsCollector::new().unwrap())),
            policy: Arc::new(LocalPolicy::load(&policy_file).unwrap()),
            update: Arc::new(crate::update::Updater::new(dir, &LocalPolicy::default(), None)),
            layout: crate::install::layout::Layout::under(dir.join("install")),
        }
    }

    const COMMAND_RUN: CapabilityId = CapabilityId::CommandRun;
    const COMMAND_CLASSIFY: CapabilityId = CapabilityId::CommandClassify;

    /// A task's outcome with its answer read back as JSON.
    struct Done {
        end: End,
        error: Option<MttrlyError>,
        result: Value,
    }

    async fn call(ctx: &Context, capability: CapabilityId, params: &Value, approved: bool) -> (Done, String) {
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let drain = tokio::spawn(async move {
            let mut out = String::new();
            while let Some(chunk) = rx.recv().await {
                out.push_str(&chunk);
            }
            out
        });
        let task = Task { action: true, action_id: "act_test", approved, payload: &[], chunks: &tx };
        let outcome = invoke(ctx, capability.as_str(), &serde_json::to_vec(params).unwrap(), &task).await;
        drop(tx);
        let result = outcome.answer.map_or(Value::Null, |bytes| serde_json::from_slice(&bytes).unwrap());
        (Done { end: outcome.end, error: outcome.error, result }, drain.await.unwrap())
    }

    #[tokio::test]
    async fn an_unknown_capability_is_refused_naming_it_and_this_version() {
        let (_dir, root) = setup();
        let ctx = context(&root);
        let (tx, _rx) = mpsc::channel::<String>(1);
        let task = Task { action: false, action_id: "", approved: false, payload: &[], chunks: &tx };
        let outcome = invoke(&ctx, "agent.teleport", b"null", &task).await;
        let error = outcome.error.unwrap();
        assert_eq!(error.code(), ErrorCode::PolicyDenied);
        assert!(error.message().contains("agent.teleport") && error.message().contains(crate::VERSION), "{error}");
        // Malformed parameters for a known one: a validation error naming the capability.
        let outcome = invoke(&ctx, COMMAND_CLASSIFY.as_str(), b"{\"cmd\":1}", &task).await;
        let error = outcome.error.unwrap();
        assert_eq!(error.code(), ErrorCode::ValidationError);
        assert!(error.message().contains(COMMAND_CLASSIFY.as_str()), "{error}");
    }

    fn command(line: String) -> Value {
        serde_json::to_value(ActionContent::Command { command: line, timeout_seconds: 10 }).unwrap()
    }

    fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("logs")).unwrap();
        std::fs::write(root.join("logs/app.log"), "GOOD\n").unwrap();
        std::fs::write(root.join("secret.txt"), "SECRET\n").unwrap();
        (dir, root)
    }

    #[tokio::test]
    async fn an_unapproved_command_that_is_not_read_only_here_never_reaches_a_shell() {
        let (_dir, root) = setup();
        let ctx = context(&root);
        let marker = root.join("marker");
        for line in [
            format!("touch {}", marker.display()),
            format!("ss -D{}", marker.display()),
            format!("cat {}", root.join("secret.txt").display()),
        ] {
            let (done, output) = call(&ctx, COMMAND_RUN, &command(line.clone()), false).await;
            assert_eq!(done.end, End::Failed, "{line}");
            let error = done.error.unwrap();
            assert_eq!(error.code(), ErrorCode::PolicyDenied, "{line}");
            assert!(error.message().contains("approval"), "{line}: {}", error.message());
            assert!(!output.contains("SECRET"), "{line}");
        }
        assert!(!marker.exists());
        // Approved by a human, the same command runs through the shell.
        let (done, _) = call(&ctx, COMMAND_RUN, &command(format!("touch {}", marker.display())), true).await;
        assert_eq!(done.end, End::Succeeded);
        assert!(marker.exists());
    }

    #[tokio::test]
    async fn classify_answers_the_final_verdict_and_read_only_commands_read_the_checked_file() {
        let (_dir, root) = setup();
        let ctx = context(&root);
        let log = root.join("logs/app.log");
        let (done, _) = call(&ctx, COMMAND_CLASSIFY, &json_command(&format!("cat {}", log.display())), false).await;
        assert_eq!(done.result["class"], "read_only", "{}", done.result);
        assert_eq!(done.result["files"], Value::from(vec![log.display().to_string()]));
        let outside = format!("cat {}", root.join("secret.txt").display());
        let (done, _) = call(&ctx, COMMAND_CLASSIFY, &json_command(&outside), false).await;
        assert_eq!(done.result["class"], "needs_approval", "{}", done.result);
        let (done, output) = call(&ctx, COMMAND_RUN, &command(format!("cat {}", log.display())), false).await;
        assert_eq!(done.end, End::Succeeded, "{:?}", done.error);
        assert_eq!(output, "GOOD\n");
    }

    fn json_command(line: &str) -> Value {
        serde_json::to_value(ClassifyParams { command: line.to_owned() }).unwrap()
    }

    /// Check-then-swap: while the log is swapped back and forth between a regular file and a
    /// symlink to a secret, every unapproved `cat` either reads the checked regular file or is
    /// refused; the secret never comes out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_swapped_around_the_check_never_leaks() {
        let (_dir, root) = setup();
        let ctx = context(&root);
        let log = root.join("logs/app.log");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (stop, root, log) = (Arc::clone(&stop), root.clone(), log.clone());
            std::thread::spawn(move || {
                let (tmp_link, tmp_file) = (root.join("logs/.swap-link"), root.join("logs/.swap-file"));
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::os::unix::fs::symlink(root.join("secret.txt"), &tmp_link);
                    let _ = std::fs::rename(&tmp_link, &log);
                    let _ = std::fs::write(&tmp_file, "GOOD\n");
                    let _ = std::fs::rename(&tmp_file, &log);
                }
            })
        };
        let (mut ran, mut refused) = (0, 0);
        for _ in 0..60 {
            let (done, output) = call(&ctx, COMMAND_RUN, &command(format!("cat {}", log.display())), false).await;
            assert!(!output.contains("SECRET"), "the secret leaked: {output}");
            match done.end {
                End::Succeeded => {
                    assert_eq!(output, "GOOD\n");
                    ran += 1;
                }
                _ => refused += 1,
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        swapper.join().unwrap();
        assert_eq!(ran + refused, 60);
    }
}
