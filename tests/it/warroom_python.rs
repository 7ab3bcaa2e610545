//! The war room (issue 17) through a third MCP client: the official MCP Python SDK (`mcp` on
//! PyPI) over Streamable HTTP with a bearer token, as ChatGPT's side of the night. A Rust client
//! (the monitoring bot) posts the P0; the Python client (`tests/python/warroom_client.py`)
//! acknowledges it in the thread, subscribes to the channel's resource, is told of the bot's next
//! post through `notifications/resources/updated`, and reads the thread back. Everything it saw
//! comes back as one JSON line and is checked here: each message is attributed to the person and
//! assistant whose credentials sent it, and a `sender` in the arguments is refused.
//!
//! The SDK lives in a venv in the target directory (`python-mcp-venv`), installed with pip only
//! when the pinned version is missing, under a file lock so test processes started side by side
//! do not install over each other. Only `python3` (with its `venv` module) is needed beforehand.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mttrly_tests::TestCentral;
use mttrly_tests::mcp::{call_ok, connect};
use serde_json::{Value, json};

/// The MCP Python SDK the test runs (the newest on PyPI when the test was written).
const MCP_SDK_VERSION: &str = "2.3.0";
const THREAD: &str = "incident-2024-01-12-001";
const CHANNEL_URI: &str = "notification://incidents/recent";

/// The cargo target directory (`target`, or `CARGO_TARGET_DIR`), from this test executable's
/// location (`<target>/<profile>/deps/…`).
fn target_root() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors().nth(3).unwrap_or_else(|| panic!("unexpected test binary location {}", exe.display())).to_path_buf()
}

/// The version of `mcp` installed in the venv whose interpreter is `python`, if any.
fn installed_sdk(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", "import importlib.metadata as m; print(m.version('mcp'))"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs a setup command, panicking with its output (and `hint`) when it fails.
fn run_setup(command: &mut Command, hint: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?} could not run ({e}): {hint}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}): {hint}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The venv's Python with the pinned MCP SDK: created and installed only when missing (once per
/// test process, under a lock file shared by test processes).
fn python_with_sdk() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let root = target_root();
        let venv = root.join("python-mcp-venv");
        let python = venv.join("bin").join("python");
        let lock = std::fs::File::create(root.join("python-mcp-venv.lock")).expect("create the venv lock file");
        lock.lock().expect("lock the venv");
        if installed_sdk(&python).as_deref() != Some(MCP_SDK_VERSION) {
            // A venv without a working pip (an interrupted or broken creation) is made anew.
            let pip_works =
                Command::new(&python).args(["-m", "pip", "--version"]).output().is_ok_and(|o| o.status.success());
            if !pip_works {
                let _ = std::fs::remove_dir_all(&venv);
                let created = Command::new("python3").arg("-m").arg("venv").arg(&venv).output();
                let ok = created.as_ref().is_ok_and(|o| o.status.success());
                if !ok {
                    let _ = std::fs::remove_dir_all(&venv);
                }
                assert!(
                    ok,
                    "`python3 -m venv {}` failed: the MCP Python SDK test needs python3 with its venv module and \
                     pip (on Debian or Ubuntu: apt-get install python3 python3-venv python3-pip)\n{}",
                    venv.display(),
                    match &created {
                        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                        Err(e) => e.to_string(),
                    }
                );
            }
            run_setup(
                Command::new(&python).args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    &format!("mcp=={MCP_SDK_VERSION}"),
                ]),
                "installing the MCP Python SDK from PyPI",
            );
            assert_eq!(installed_sdk(&python).as_deref(), Some(MCP_SDK_VERSION), "pip did not install mcp");
        }
        lock.unlock().expect("unlock the venv");
        python
    })
}

/// `tests/python/warroom_client.py` running; killed when dropped. Its stdout is read line by line
/// (one JSON object each), its stderr kept to be shown when anything fails.
struct Script {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    seen: Vec<String>,
}

impl Script {
    fn start(url: &str, token: &str, personal_token: &str) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join("warroom_client.py");
        let mut child = Command::new(python_with_sdk())
            .arg(script)
            .env("MTTRLY_MCP_URL", url)
            .env("MTTRLY_TOKEN", token)
            .env("MTTRLY_PERSONAL_TOKEN", personal_token)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the venv's python runs");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self { child, stdin, lines, stderr: Some(stderr), seen: Vec::new() }
    }

    /// What the script wrote to stderr (it is ended first, so all of it is there), with its
    /// stdout so far.
    fn diagnostics(&mut self) -> String {
        let status = if let Ok(Some(status)) = self.child.try_wait() {
            status.to_string()
        } else {
            let _ = self.child.kill();
            format!("killed by the test ({})", self.child.wait().map(|s| s.to_string()).unwrap_or_default())
        };
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        format!("\n--- the Python client {status}; stdout so far:\n{}\n--- its stderr:\n{stderr}", self.seen.join("\n"))
    }

    /// The next stdout line, which must be a JSON object with `event` = `event`, within `within`.
    fn expect_event(&mut self, event: &str, within: Duration) -> Value {
        let line = match self.lines.recv_timeout(within) {
            Ok(line) => line,
            Err(e) => panic!("no `{event}` line from the Python client ({e}){}", self.diagnostics()),
        };
        self.seen.push(line.clone());
        match serde_json::from_str::<Value>(&line) {
            Ok(value) if value["event"] == event => value,
            _ => panic!("expected a `{event}` line, got {line}{}", self.diagnostics()),
        }
    }

    /// Writes one line to the script's stdin.
    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            panic!("writing to the Python client: {e}{}", self.diagnostics());
        }
    }

    /// Waits for the script to exit, which must be with success.
    fn finish(&mut self, within: Duration) {
        self.stdin = None;
        let deadline = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return,
                Ok(Some(_)) => panic!("the Python client failed{}", self.diagnostics()),
                _ if Instant::now() > deadline => panic!("the Python client did not exit{}", self.diagnostics()),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A person: their user id and own token.
fn person(central: &TestCentral, name: &str, role: &str) -> (String, String) {
    let human = central.cli_json(&["users", "add", name, "--role", role, "--print-token"]);
    (human["user_id"].as_str().expect("user_id").to_owned(), human["token"].as_str().expect("token").to_owned())
}

/// A token for the person's assistant `client` (`tokens create --assistant CLIENT`).
fn assistant(central: &TestCentral, human_token: &str, client: &str) -> String {
    let out = central.cli_as(human_token, &["--output", "json", "tokens", "create", "--assistant", client]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    created["token"].as_str().expect("assistant token").to_owned()
}

/// `(name, ai_tool, via)` of a notification's sender.
fn sender(n: &Value) -> (&str, &str, &str) {
    let s = &n["sender"];
    (s["name"].as_str().unwrap_or("?"), s["ai_tool"].as_str().unwrap_or("?"), s["via"].as_str().unwrap_or("?"))
}

#[test]
fn the_war_room_through_the_mcp_python_sdk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let (monitoring_id, monitoring) = person(&central, "monitoring", "operator");
    let monitoring = assistant(&central, &monitoring, "claude-code");
    let (sarah_id, sarah) = person(&central, "sarah", "operator");
    let sarah_chatgpt = assistant(&central, &sarah, "chatgpt");
    // Set up before anything is posted, so the install's time does not sit inside the scenario.
    python_with_sdk();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // 2:47 the monitoring bot (a Rust client) opens the channel and posts the P0.
    let (bot, alert) = runtime.block_on(async {
        let (bot, _) = connect(&central.mcp_url, &monitoring, None).await;
        call_ok(
            &bot,
            "mttrly_create_channel",
            json!({ "channel": "incidents", "description": "Production incidents" }),
        )
        .await;
        let alert = call_ok(
            &bot,
            "mttrly_publish_notification",
            json!({
                "channel": "incidents", "title": "P0 INCIDENT: Database Connection Pool Exhausted",
                "body": "**Impact:** 100% of API requests failing", "priority": "critical",
                "theme": "incident-alert", "tags": ["p0", "database"], "thread_id": THREAD,
            }),
        )
        .await;
        (bot, alert)
    });
    assert_eq!(sender(&alert), ("monitoring", "claude-code", "mcp"), "{alert}");

    // 2:48 Sarah acknowledges through ChatGPT (the Python SDK), then listens to the channel.
    let mut script = Script::start(&central.mcp_url, &sarah_chatgpt, &sarah);
    let subscribed = script.expect_event("subscribed", Duration::from_secs(60));
    assert_eq!(subscribed["protocol_version"], "2025-11-25", "{subscribed}");
    // 2:50 the bot posts again while she listens; she is told the channel changed.
    let spreading = runtime.block_on(call_ok(
        &bot,
        "mttrly_publish_notification",
        json!({
            "channel": "incidents", "title": "Error rate still 100%, pool at 500/500",
            "priority": "critical", "theme": "incident-update", "tags": ["p0"], "thread_id": THREAD,
        }),
    ));
    script.send("go");
    let seen = script.expect_event("result", Duration::from_secs(60));
    script.finish(Duration::from_secs(30));
    let context = format!("{seen:#}{}", script.diagnostics());

    // The SDK negotiated the 2025-11-25 handshake and saw subscriptions offered.
    assert_eq!(seen["resources_subscribe"], true, "{context}");
    let tools: Vec<&str> = seen["tools"].as_array().expect("tools").iter().filter_map(Value::as_str).collect();
    for tool in ["mttrly_publish_notification", "mttrly_get_thread", "mttrly_create_channel"] {
        assert!(tools.contains(&tool), "{tool} listed: {context}");
    }
    assert_eq!(seen["transport_errors"], json!([]), "{context}");
    // The channel the bot made is used, not made again.
    assert_eq!(
        (seen["channel"]["created"].as_bool(), seen["channel"]["description"].as_str()),
        (Some(false), Some("Production incidents")),
        "{context}"
    );
    assert_eq!(seen["channel"]["created_by"]["user_id"], monitoring_id.as_str(), "{context}");

    // A `sender` argument from Python is refused.
    let spoof = &seen["spoof"];
    assert_eq!(spoof["code"], "VALIDATION_ERROR", "{context}");
    assert_eq!(spoof["details"]["field"], "sender", "{context}");

    // The ack is Sarah's through ChatGPT (the assistant the token was made for, and the name
    // the client announced), over MCP.
    let ack = &seen["ack"];
    assert_eq!(sender(ack), ("sarah", "chatgpt", "mcp"), "{context}");
    assert_eq!(
        (ack["sender"]["user_id"].as_str(), ack["sender"]["role"].as_str()),
        (Some(sarah_id.as_str()), Some("operator")),
        "{context}"
    );
    assert_eq!(ack["thread_id"], THREAD, "{context}");

    // Told once, of the channel's resource, for the bot's post.
    assert_eq!(seen["updated"], json!([CHANNEL_URI]), "{context}");

    // The thread as the Python client read it after the push: the P0, her ack, the bot's update,
    // in order, each with its real sender; the refused spoof stored nothing.
    let thread = seen["thread"]["notifications"].as_array().expect("notifications");
    let story: Vec<(&Value, (&str, &str, &str))> = thread.iter().map(|n| (&n["notification_id"], sender(n))).collect();
    assert_eq!(
        story,
        [
            (&alert["notification_id"], ("monitoring", "claude-code", "mcp")),
            (&ack["notification_id"], ("sarah", "chatgpt", "mcp")),
            (&spreading["notification_id"], ("monitoring", "claude-code", "mcp")),
        ],
        "{context}"
    );

    // With her own token (which names no assistant), the client's announced name is the one.
    let own = &seen["own_token_post"];
    assert_eq!(sender(own), ("sarah", "chatgpt", "mcp"), "{context}");
    assert_eq!(own["sender"]["user_id"], sarah_id.as_str(), "{context}");

    // The Rust side reads the same story, four messages now.
    let read = runtime.block_on(call_ok(&bot, "mttrly_get_thread", json!({ "thread_id": THREAD })));
    let ids: Vec<&Value> =
        read["notifications"].as_array().expect("notifications").iter().map(|n| &n["notification_id"]).collect();
    assert_eq!(
        ids,
        [&alert["notification_id"], &ack["notification_id"], &spreading["notification_id"], &own["notification_id"]],
        "{read}"
    );
    runtime.block_on(async { bot.cancel().await.ok() });
}
