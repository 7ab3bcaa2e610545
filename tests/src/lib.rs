//! The test harness: real mttrly binaries as child processes ([`TestCentral`], [`TestAgent`]),
//! central in the test's own process ([`in_process`]), a simulated agent ([`sim`]), MCP clients
//! ([`mcp`], [`in_process::mcp_raw`]); real servers on loopback, real SQLite files in temp dirs.

#![allow(clippy::missing_panics_doc)]

pub mod bench;
pub mod dashboard_seed;
pub mod fake_slack;
pub mod fake_telegram;
pub mod in_process;
pub mod mcp;
pub mod sim;
pub mod update_host;
pub mod webdriver;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The path of a workspace binary.
///
/// `cargo test --workspace` builds every binary before any test runs, so the binary beside this
/// test executable is current. When it is missing (this crate's tests run alone), it is built
/// once with `cargo build --workspace --bins`.
pub fn binary(name: &str) -> PathBuf {
    static BUILD: OnceLock<bool> = OnceLock::new();
    let path = target_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let built = BUILD.get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let mut command = Command::new(cargo);
            command.args(["build", "--quiet", "--workspace", "--bins"]);
            if target_dir().ends_with("release") {
                command.arg("--release");
            }
            command.status().is_ok_and(|status| status.success())
        });
        assert!(*built, "building the workspace binaries failed");
    }
    assert!(path.exists(), "{} does not exist", path.display());
    path
}

/// `target/<profile>`, derived from this test executable's location (`target/<profile>/deps/…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no current exe: {e}"));
    match exe.parent().and_then(|deps| deps.parent()) {
        Some(dir) => dir.to_path_buf(),
        None => panic!("unexpected test binary location {}", exe.display()),
    }
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Clock ticks are 100 Hz on Linux (USER_HZ), whatever the kernel's HZ.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Resident set size of a process in bytes, from `/proc/PID/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A free loopback port (bound and released; good enough for tests that must restart on it).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local addr").port()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `within` naming `what`.
pub fn wait_for<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends SIGTERM and waits for the process to exit (SIGKILL after 15 s).
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads the first stdout line of a child as JSON (what `--output json serve|quickstart` print).
fn first_json_line(child: &mut Child) -> Value {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read the ready line");
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line: {line:?}: {e}"))
}

/// A real `mttrly-central` process on loopback.
pub struct TestCentral {
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its gRPC URL.
    pub grpc_url: String,
    /// Its HTTP URL.
    pub http_url: String,
    /// Its MCP endpoint.
    pub mcp_url: String,
    /// The admin token from `init`.
    pub admin_token: String,
    grpc_port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

/// Fast heartbeats so liveness tests take seconds: one a second, offline after two missed.
const FAST: [(&str, &str); 2] = [
    (mttrly_central::env::HEARTBEAT_INTERVAL_SECONDS, "1"),
    (mttrly_central::env::OFFLINE_AFTER_MISSED_HEARTBEATS, "2"),
];

/// The central config every [`TestCentral`] serves with: [`in_process::HOST_METRIC_RULES`] off.
fn host_metric_rules_off() -> String {
    in_process::HOST_METRIC_RULES.iter().flat_map(|rule| ["[alerts.", rule, "]\nenabled = false\n"]).collect()
}

impl TestCentral {
    /// `init` a data dir under `root`, then `serve` it with fast heartbeats.
    pub fn start(root: &Path) -> Self {
        Self::start_with(root, &[], &FAST, |_| {})
    }

    /// `init --tls` (a private CA), then `serve` over TLS with fast heartbeats.
    pub fn start_tls(root: &Path) -> Self {
        Self::start_with(root, &["--tls"], &FAST, |_| {})
    }

    /// `init INIT_ARGS`, run `seed` on the data dir (e.g. to pre-register servers), then `serve`
    /// with `env`.
    pub fn start_with(root: &Path, init_args: &[&str], env: &[(&str, &str)], seed: impl FnOnce(&Path)) -> Self {
        let data_dir = root.join("central");
        let out = Command::new(binary("mttrly-central"))
            .args(["--output", "json", "init", "--data-dir"])
            .arg(&data_dir)
            .args(init_args)
            .output()
            .expect("mttrly-central init runs");
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        let init: Value = serde_json::from_slice(&out.stdout).expect("init prints JSON");
        let admin_token = init["admin_token"].as_str().expect("admin_token").to_owned();
        seed(&data_dir);
        // Test agents report the real host's metrics: the rules that judge them would open alerts
        // whenever the machine running the tests is busy or its disk full, so they are off here.
        // Tests of those rules drive them with chosen metrics (a simulated agent).
        std::fs::write(root.join("central-test.toml"), host_metric_rules_off()).expect("write the test config");
        let mut central = Self {
            data_dir,
            grpc_url: String::new(),
            http_url: String::new(),
            mcp_url: String::new(),
            admin_token,
            grpc_port: free_port(),
            env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            child: None,
        };
        central.serve();
        central
    }

    fn serve(&mut self) {
        let mut child = Command::new(binary("mttrly-central"))
            .args(["--output", "json", "serve", "--data-dir"])
            .arg(&self.data_dir)
            .arg("--config")
            .arg(self.data_dir.with_file_name("central-test.toml"))
            .args(["--grpc-listen", &format!("127.0.0.1:{}", self.grpc_port), "--http-listen", "127.0.0.1:0"])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(mttrly_central::env::LOG, "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mttrly-central serve starts");
        let ready = first_json_line(&mut child);
        ready["grpc_url"].as_str().expect("grpc_url").clone_into(&mut self.grpc_url);
        ready["http_url"].as_str().expect("http_url").clone_into(&mut self.http_url);
        ready["mcp_url"].as_str().expect("mcp_url").clone_into(&mut self.mcp_url);
        self.child = Some(child);
    }

    /// Replaces the config file `serve` reads (takes effect at the next start).
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.data_dir.with_file_name("central-test.toml"), toml).expect("write the test config");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("central is running")
    }

    /// SIGTERM, then serve again on the same gRPC port.
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(status.success(), "central exited with {status} on SIGTERM");
        self.serve();
    }

    /// SIGTERM; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("central is running");
        terminate(&mut child)
    }

    /// SIGKILL (a crash: nothing is flushed or closed), then serve again on the same gRPC port.
    pub fn crash_and_restart(&mut self) {
        let mut child = self.child.take().expect("central is running");
        let _ = child.kill();
        let _ = child.wait();
        self.serve();
    }

    /// Runs `mttrly-cli --central … --token <admin> ARGS`.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(&self.admin_token, args)
    }

    /// Runs `mttrly-cli` with another token (and central's CA when it serves TLS).
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Output {
        let mut command = Command::new(binary("mttrly-cli"));
        command.args(["--central", &self.grpc_url, "--token", token]);
        if self.grpc_url.starts_with("https://") {
            command.arg("--ca-cert").arg(self.ca_cert());
        }
        command.args(args).output().expect("mttrly-cli runs")
    }

    /// Calls a tool through `ToolService.CallTool` as an MCP front end would (client `claude-code`)
    /// and returns the structured result (or the error body).
    pub fn call_tool(&self, token: &str, tool: &str, args: &Value) -> Value {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let channel = tonic::transport::Channel::from_shared(self.grpc_url.clone())
                .expect("url")
                .connect()
                .await
                .expect("connect");
            let mut req = tonic::Request::new(mttrly_proto::central::v1::CallToolRequest {
                tool_id: tool.into(),
                arguments_json: args.to_string(),
                client_name: "claude-code".into(),
            });
            req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
            let resp = mttrly_proto::central::v1::tool_service_client::ToolServiceClient::new(channel)
                .call_tool(req)
                .await
                .expect("call")
                .into_inner();
            serde_json::from_str(&resp.structured_json).expect("json")
        })
    }

    /// Where `init --tls` put the CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.data_dir.join("tls").join("ca.pem")
    }

    /// Runs a CLI command with `--output json` and parses stdout, panicking on failure.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert!(out.status.success(), "mttrly-cli {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    }

    /// `mttrly-cli --output json actions approve ID --yes`: the action as printed. The exit status
    /// must say how it ended (checked here): 0 when it succeeded or still runs, 1 when it failed.
    pub fn approve(&self, id: &str) -> Value {
        let out = self.cli(&["--output", "json", "actions", "approve", id, "--yes"]);
        let action: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("JSON on stdout ({e}): {}", String::from_utf8_lossy(&out.stderr)));
        let failed = matches!(action["status"].as_str(), Some("failed" | "failed_closed" | "expired"));
        assert_eq!(out.status.code(), Some(i32::from(failed)), "the exit status says how {action} ended");
        action
    }

    /// Registers a server, enrolls and runs a real agent for it (with the owner's policy file, if
    /// given) and waits until central sees it online. Returns the server id and the agent.
    pub fn online_server(&self, name: &str, env: &str, state_dir: &Path, policy: Option<&Path>) -> (String, TestAgent) {
        let added = self.cli_json(&["servers", "add", name, "--env", env]);
        let server_id = added["server_id"].as_str().expect("server_id").to_owned();
        let token = added["install_token"].as_str().expect("install_token");
        let agent = TestAgent::launch(&self.grpc_url, token, state_dir, &[], policy);
        wait_for("the agent online", Duration::from_secs(15), || {
            (self.cli_json(&["servers", "status", &server_id])["server"]["status"] == "online").then_some(())
        });
        (server_id, agent)
    }

    /// A new assistant token named `name`.
    pub fn assistant_token(&self, name: &str) -> String {
        self.cli_json(&["tokens", "create", "--assistant", name])["token"].as_str().expect("token").to_owned()
    }

    /// GETs a path on the HTTP listener and returns the body.
    pub fn http_get(&self, path: &str) -> String {
        http_get(&self.http_url, path)
    }
}

impl Drop for TestCentral {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A minimal HTTP/1.1 GET over a raw socket (no client crate needed for a health check).
pub fn http_get(base: &str, path: &str) -> String {
    let authority = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).expect("connect HTTP");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

/// A real `mttrly-agent` process.
pub struct TestAgent {
    /// Its state directory.
    pub state_dir: PathBuf,
    child: Option<Child>,
}

impl TestAgent {
    /// `mttrly-agent enroll` into `state_dir` with extra arguments; returns the command's output.
    pub fn enroll_with(central: &str, token: &str, state_dir: &Path, extra: &[&str]) -> Output {
        Command::new(binary("mttrly-agent"))
            .args(["--output", "json", "enroll", "--central", central, "--token", token, "--state-dir"])
            .arg(state_dir)
            .args(extra)
            .output()
            .expect("mttrly-agent enroll runs")
    }

    /// `mttrly-agent enroll` into `state_dir`; returns the command's output.
    pub fn enroll(central: &str, token: &str, state_dir: &Path) -> Output {
        Self::enroll_with(central, token, state_dir, &[])
    }

    /// Enrolls (asserting success) and starts `mttrly-agent run`.
    pub fn start(central: &str, token: &str, state_dir: &Path) -> Self {
        Self::start_with(central, token, state_dir, &[])
    }

    /// Enrolls with extra arguments (asserting success) and starts `mttrly-agent run`.
    pub fn start_with(central: &str, token: &str, state_dir: &Path, extra: &[&str]) -> Self {
        Self::launch(central, token, state_dir, extra, None)
    }

    /// Enrolls and starts `mttrly-agent run --policy POLICY`.
    pub fn start_with_policy(central: &str, token: &str, state_dir: &Path, policy: &Path) -> Self {
        Self::launch(central, token, state_dir, &[], Some(policy))
    }

    fn launch(central: &str, token: &str, state_dir: &Path, extra: &[&str], policy: Option<&Path>) -> Self {
        let out = Self::enroll_with(central, token, state_dir, extra);
        assert!(out.status.success(), "enroll failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut run = Command::new(binary("mttrly-agent"));
        if let Some(policy) = policy {
            run.arg("run").arg("--policy").arg(policy).arg("--state-dir");
        } else {
            run.args(["run", "--state-dir"]);
        }
        let child = run
            .arg(state_dir)
            .env(mttrly_agent::env::LOG, "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mttrly-agent run starts");
        Self { state_dir: state_dir.to_path_buf(), child: Some(child) }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("agent is running")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL, as a crash or a pulled plug would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent is running");
        terminate(&mut child)
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A raw HTTP/1.1 response: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (chunked bodies are returned as sent).
    pub body: String,
}

impl RawResponse {
    /// Parses what a server sent on a `Connection: close` exchange (a status line it cannot read
    /// is status 0, so the test's assertion names what came back).
    pub fn parse(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Self { status, headers, body: body.to_owned() }
    }

    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Any HTTP/1.1 request over a raw socket, with exactly the headers given (plus `Host` unless one
/// is given, `Content-Length` and `Connection: close`), so tests control `Host` and `Origin`.
pub fn http_request(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> RawResponse {
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority).expect("connect HTTP");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {authority}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    // An SSE response stays open; what arrived before the timeout is enough for these checks.
    let _ = stream.read_to_end(&mut raw);
    RawResponse::parse(&raw)
}
