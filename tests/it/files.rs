//! Files end to end: a real agent with an owner's policy, real files in a temp dir standing in
//! for /var/log and friends, tools called through central's API exactly as MCP calls them.

use std::time::Duration;

use mttrly_tests::{TestAgent, TestCentral};
use serde_json::{Value, json};

struct Setup {
    root: std::path::PathBuf,
    _dir: tempfile::TempDir,
    central: TestCentral,
    assistant: String,
    server_id: String,
    _agent: TestAgent,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical");
    for d in ["log/nginx", "secret", "etc/sudoers.d", "srv/app"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    let mut log = String::new();
    for i in 1..=1000 {
        log.push_str(&format!("line {i} GET /health 200\n"));
    }
    log.push_str("upstream failed: Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345\n");
    std::fs::write(root.join("log/nginx/access.log"), log).expect("log");
    std::fs::write(root.join("log/nginx/error.log"), "boot ok\nERROR connect() failed\n").expect("log");
    std::fs::write(root.join("log/nginx/error.log.1"), "boot ok\nERROR old failure\n").expect("log");
    std::fs::write(root.join("secret/shadow"), "root:$6$secret\n").expect("secret");
    std::fs::write(root.join("etc/sudoers.d/deploy"), "deploy ALL=(ALL) NOPASSWD: /bin/systemctl\n").expect("sudo");
    std::fs::write(root.join("srv/app/.env"), "PORT=8080\nDATABASE_PASSWORD=supersecretvalue\n").expect("env");
    std::fs::write(root.join("srv/app/app.conf"), "workers = 2\n").expect("conf");
    std::os::unix::fs::symlink(root.join("secret/shadow"), root.join("log/shadow.log")).expect("symlink");
    let fifo = root.join("log/pipe.log");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let policy = root.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "file_roots = [\"{r}/log/**\"]\nmanaged_files = [\"{r}/srv/app/*.conf\"]\n\
             privileged_files_enabled = true\nprivileged_files = [\"{r}/etc/sudoers.d/*\"]\n\
             [env_files]\napp = \"{r}/srv/app/.env\"\n",
            r = root.display()
        ),
    )
    .expect("policy");

    let central = TestCentral::start(dir.path());
    let (server_id, agent) = central.online_server("web-1", "staging", &root.join("agent-state"), Some(&policy));
    let assistant = central.assistant_token("claude-code");
    Setup { root, _dir: dir, central, assistant, server_id, _agent: agent }
}

impl Setup {
    #[allow(clippy::needless_pass_by_value)] // call sites read better with json!(..) inline
    fn call(&self, tool: &str, args: Value) -> Value {
        self.central.call_tool(&self.assistant, tool, &args)
    }

    fn path(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }
}

#[test]
fn reads_tail_redact_and_refuse_what_the_policy_does_not_allow() {
    let s = setup();
    let read = s.call(
        "mttrly_read_file",
        json!({ "server_id": s.server_id, "target": { "type": "file", "path": s.path("log/nginx/access.log") }, "lines": 3 }),
    );
    assert_eq!(read["line_count"], 3, "{read}");
    let content = read["content"].as_str().expect("content");
    assert!(content.starts_with("line 999 "), "{content}");
    assert!(!content.contains("abcdefghijklmnopqrstuvwxyz012345"), "bearer token redacted: {content}");
    assert!(read["redactions"].as_array().is_some_and(|r| !r.is_empty()), "{read}");
    assert_eq!(read["truncated"], true);

    // Traversal, a symlink out of the allowlist, a FIFO, /proc: refused by the agent's policy.
    for path in [
        s.path("log/../secret/shadow"),
        s.path("log/shadow.log"),
        s.path("log/pipe.log"),
        "/proc/self/environ".to_owned(),
    ] {
        let started = std::time::Instant::now();
        let err =
            s.call("mttrly_read_file", json!({ "server_id": s.server_id, "target": { "type": "file", "path": path } }));
        assert_eq!(err["code"], "POLICY_DENIED", "{path}: {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path} must not block");
        assert!(!err.to_string().contains("$6$secret"));
    }

    // A managed env file: secrets redacted by key name, the rest readable.
    let env = s
        .call("mttrly_read_file", json!({ "server_id": s.server_id, "target": { "type": "env_file", "name": "app" } }));
    let text = env["content"].as_str().expect("env");
    assert!(text.contains("PORT=8080") && !text.contains("supersecretvalue"), "{env}");
    let unknown =
        s.call("mttrly_read_file", json!({ "server_id": s.server_id, "target": { "type": "env_file", "name": "db" } }));
    assert_eq!(unknown["code"], "POLICY_DENIED", "{unknown}");

    // The privileged allowlist, opted into by the owner.
    let sudo = s.call(
        "mttrly_read_privileged_file",
        json!({ "server_id": s.server_id, "path": s.path("etc/sudoers.d/deploy") }),
    );
    assert!(sudo["content"].as_str().is_some_and(|c| c.contains("NOPASSWD")), "{sudo}");
    let not_priv =
        s.call("mttrly_read_privileged_file", json!({ "server_id": s.server_id, "path": s.path("secret/shadow") }));
    assert_eq!(not_priv["code"], "POLICY_DENIED", "{not_priv}");
}

#[test]
fn search_and_diff_stay_inside_the_allowlist() {
    let s = setup();
    let found =
        s.call("mttrly_search_files", json!({ "server_id": s.server_id, "query": "error", "ignore_case": true }));
    let matches = found["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 2, "{found}");
    assert!(matches.iter().all(|m| !m["path"].as_str().unwrap_or("").contains("secret")), "{found}");
    assert_eq!(matches[0]["line_number"], 2);
    let only = s.call(
        "mttrly_search_files",
        json!({ "server_id": s.server_id, "query": "ERROR", "glob": format!("{}/log/nginx/*.log", s.root.display()) }),
    );
    assert_eq!(only["matches"].as_array().map(Vec::len), Some(1), "{only}");
    let bearer = s.call("mttrly_search_files", json!({ "server_id": s.server_id, "query": "Bearer" }));
    assert!(!bearer.to_string().contains("abcdefghijklmnopqrstuvwxyz012345"), "{bearer}");

    let diff = s.call(
        "mttrly_diff_file",
        json!({ "server_id": s.server_id, "left_path": s.path("log/nginx/error.log.1"), "right_path": s.path("log/nginx/error.log") }),
    );
    let text = diff["diff"].as_str().expect("diff");
    assert!(text.contains("-ERROR old failure") && text.contains("+ERROR connect() failed"), "{diff}");
    assert_eq!(diff["identical"], false);
    let denied = s.call(
        "mttrly_diff_file",
        json!({ "server_id": s.server_id, "left_path": s.path("log/nginx/error.log"), "right_path": s.path("secret/shadow") }),
    );
    assert_eq!(denied["code"], "POLICY_DENIED", "{denied}");

    // Another tenant's server id behaves like a missing one.
    let missing = s.call(
        "mttrly_read_file",
        json!({ "server_id": "srv_00000000000000000000000000000000", "target": { "type": "docker_images" } }),
    );
    assert_eq!(missing["code"], "SERVER_NOT_FOUND", "{missing}");
}

#[test]
fn writes_and_cleanups_wait_for_a_human_and_keep_a_backup() {
    use base64::Engine as _;
    let s = setup();
    let conf = s.path("srv/app/app.conf");
    let new = base64::engine::general_purpose::STANDARD.encode("workers = 8\n");
    let pending = s.call("mttrly_write_file", json!({ "server_id": s.server_id, "path": conf, "content_base64": new }));
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    assert_eq!(std::fs::read_to_string(&conf).expect("conf"), "workers = 2\n", "nothing changes before approval");
    let id = pending["action_id"].as_str().expect("id");
    let shown = s.central.cli_json(&["actions", "show", id]);
    assert_eq!(shown["content"]["type"], "file_write");
    assert_eq!(shown["content"]["size_bytes"], 12);
    let done = s.central.cli_json(&["actions", "approve", id, "--yes"]);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(std::fs::read_to_string(&conf).expect("conf"), "workers = 8\n");
    let backups: Vec<_> = std::fs::read_dir(s.root.join("srv/app"))
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("app.conf.mttrly-backup-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(std::fs::read_to_string(s.root.join("srv/app").join(&backups[0])).expect("backup"), "workers = 2\n");

    // Outside the managed files: even approved, the agent refuses.
    let outside = s.path("log/nginx/access.log");
    let pending =
        s.call("mttrly_write_file", json!({ "server_id": s.server_id, "path": outside, "content_base64": new }));
    let id = pending["action_id"].as_str().expect("id");
    let out = s.central.cli(&["--output", "json", "actions", "approve", id, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "an approved action that failed exits 1");
    let refused: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["result"]["error"]["code"], "POLICY_DENIED", "{refused}");
    assert!(std::fs::read_to_string(&outside).expect("log").starts_with("line 1 "));

    // Cleanup.
    let pending = s.call("mttrly_cleanup_file", json!({ "server_id": s.server_id, "path": conf }));
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    assert!(std::path::Path::new(&conf).exists());
    let id = pending["action_id"].as_str().expect("id");
    let done = s.central.cli_json(&["actions", "approve", id, "--yes"]);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(!std::path::Path::new(&conf).exists());
}

/// Hostile fixtures planted under the allowlisted root, the way an attacker with write access to
/// `/var/log` (a service user, a compromised app) would: each must come back refused, fast, and
/// without a byte of the secret, through the real agent and the real tools.
mod hostile {
    use std::os::unix::fs::symlink;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    use super::{Setup, setup};

    const SECRET: &str = "$6$secret";

    fn read(s: &Setup, path: &str) -> Value {
        s.call("mttrly_read_file", json!({ "server_id": s.server_id, "target": { "type": "file", "path": path } }))
    }

    fn assert_refused(what: &str, answer: &Value, started: Instant) {
        let code = answer["code"].as_str().unwrap_or("");
        assert!(code == "POLICY_DENIED" || code == "VALIDATION_ERROR", "{what}: {answer}");
        assert!(!answer.to_string().contains(SECRET), "{what} leaked: {answer}");
        assert!(started.elapsed() < Duration::from_secs(5), "{what} must not block");
    }

    /// Plants the fixtures; returns the listening socket (kept open) and whether a device node
    /// could be made (only as root).
    fn plant(s: &Setup) -> (std::os::unix::net::UnixListener, bool) {
        let r = &s.root;
        std::fs::hard_link(r.join("secret/shadow"), r.join("log/hard.log")).expect("hard link");
        std::fs::hard_link(r.join("secret/shadow"), r.join("etc/sudoers.d/hard")).expect("hard link");
        std::fs::hard_link(r.join("secret/shadow"), r.join("srv/app/linked.conf")).expect("hard link");
        symlink(r.join("secret"), r.join("log/dirlink")).expect("dir symlink");
        symlink("/dev/zero", r.join("log/zero.log")).expect("dev symlink");
        symlink("/etc/shadow", r.join("log/etc-shadow.log")).expect("abs symlink");
        symlink(r.join("log/loop-b"), r.join("log/loop-a")).expect("loop");
        symlink(r.join("log/loop-a"), r.join("log/loop-b")).expect("loop");
        let sock = std::os::unix::net::UnixListener::bind(r.join("log/app.sock")).expect("socket");
        let made = std::process::Command::new("mknod")
            .arg(r.join("log/null.dev"))
            .args(["c", "1", "3"])
            .status()
            .is_ok_and(|st| st.success());
        if !made {
            eprintln!("skipping the device-node fixture: mknod needs root");
        }
        (sock, made)
    }

    #[test]
    fn planted_files_are_refused_by_read_search_diff_and_write() {
        let s = setup();
        let (_sock, device) = plant(&s);
        let mut paths = vec![
            "log/hard.log",
            "log/dirlink/shadow",
            "log/zero.log",
            "log/etc-shadow.log",
            "log/loop-a",
            "log/app.sock",
            "log/pipe.log",
            "log/shadow.log",
            "log/../secret/shadow",
            "log/nginx/access.log/x",
            "log/dirlink/../shadow",
            "log/nginx",
        ];
        if device {
            paths.push("log/null.dev");
        }
        for rel in &paths {
            let started = Instant::now();
            let answer = read(&s, &s.path(rel));
            assert_refused(rel, &answer, started);
        }
        // The reasons say what the agent found.
        for (rel, why) in [
            ("log/hard.log", "hard links"),
            ("log/app.sock", "socket"),
            ("log/pipe.log", "FIFO"),
            ("log/loop-a", "symlink loop"),
            ("log/nginx/access.log/x", "not a directory"),
            ("log/nginx", "directory"),
        ] {
            let answer = read(&s, &s.path(rel));
            assert!(answer["message"].as_str().is_some_and(|m| m.contains(why)), "{rel}: {answer}");
        }

        // The privileged allowlist: a hard link in an allowed directory is still refused.
        let started = Instant::now();
        let answer = s.call(
            "mttrly_read_privileged_file",
            json!({ "server_id": s.server_id, "path": s.path("etc/sudoers.d/hard") }),
        );
        assert_refused("privileged hard link", &answer, started);

        // Search: every hostile entry is skipped, the legitimate hits still come back.
        let started = Instant::now();
        let found = s.call("mttrly_search_files", json!({ "server_id": s.server_id, "query": "root" }));
        assert!(started.elapsed() < Duration::from_secs(10), "search must not block");
        assert!(found["matches"].is_array(), "{found}");
        assert!(!found.to_string().contains(SECRET) && !found.to_string().contains("secret/"), "{found}");
        let errors = s.call("mttrly_search_files", json!({ "server_id": s.server_id, "query": "ERROR" }));
        assert_eq!(errors["matches"].as_array().map(Vec::len), Some(2), "error.log and error.log.1: {errors}");

        // Diff: either side hostile is refused.
        for (left, right) in [("log/nginx/error.log", "log/hard.log"), ("log/hard.log", "log/nginx/error.log")] {
            let started = Instant::now();
            let answer = s.call(
                "mttrly_diff_file",
                json!({ "server_id": s.server_id, "left_path": s.path(left), "right_path": s.path(right) }),
            );
            assert_refused("diff with a hard link", &answer, started);
        }

        // A managed file with a second name: even approved, nothing is written or backed up.
        let content = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "owned\n");
        let pending = s.call(
            "mttrly_write_file",
            json!({ "server_id": s.server_id, "path": s.path("srv/app/linked.conf"), "content_base64": content }),
        );
        // Central may already refuse it; if it became an action, the agent refuses at execution.
        if let Some(id) = pending["action_id"].as_str() {
            let out = s.central.cli(&["--output", "json", "actions", "approve", id, "--yes"]);
            let done: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
            assert_eq!(done["status"], "failed", "{done}");
            assert_eq!(done["result"]["error"]["code"], "POLICY_DENIED", "{done}");
        }
        assert_eq!(std::fs::read_to_string(s.root.join("secret/shadow")).expect("secret"), "root:$6$secret\n");
        let backups = std::fs::read_dir(s.root.join("srv/app"))
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("mttrly-backup"))
            .count();
        assert_eq!(backups, 0, "no backup copies the other file");
    }

    #[test]
    fn hostile_path_strings_are_refused_before_anything_resolves() {
        let s = setup();
        let good = s.path("log/nginx/error.log");
        let mut hostile: Vec<String> = [
            "\n",
            "\r",
            "\u{1b}[2J",
            "\u{7f}",
            "\u{85}",
            "\u{9b}",
            "\u{202e}",
            "\u{2066}",
            "\u{200b}",
            "\u{feff}",
            "\u{2028}",
            "\u{a0}",
            "\u{3164}",
            "\u{fe0f}",
            "\u{e0041}",
            "\t",
        ]
        .iter()
        .map(|c| format!("{good}{c}"))
        .collect();
        hostile.extend([
            "log/nginx/error.log".to_owned(),
            "./log/nginx/error.log".to_owned(),
            "~/log/nginx/error.log".to_owned(),
            "~root/.ssh/id_rsa".to_owned(),
            s.path("log/nginx/*.log"),
            s.path("log/nginx/error.lo?"),
            s.path("log/nginx/[e]rror.log"),
            s.path("log/{nginx,x}/error.log"),
            s.path("log/%2e%2e/secret/shadow"),
            s.path(&format!("log/{}", "a/".repeat(2040))),
            s.path(&format!("log/{}", "b".repeat(256))),
            format!("{good}\0"),
        ]);
        for path in &hostile {
            let started = Instant::now();
            let answer = read(&s, path);
            let shown = path.escape_debug().to_string();
            let code = answer["code"].as_str().unwrap_or("");
            // `%2e%2e` is only a name: it does not exist under the root.
            assert!(matches!(code, "POLICY_DENIED" | "VALIDATION_ERROR" | "NOT_FOUND"), "{shown}: {answer}");
            assert!(started.elapsed() < Duration::from_secs(5), "{shown}");
            // The error never carries a control or bidi character back raw.
            let text = answer.to_string();
            assert!(!text.contains(['\u{1b}', '\u{202e}', '\u{2066}', '\u{200b}', '\u{85}', '\u{9b}']), "{shown}");
            let answer = s.call("mttrly_read_privileged_file", json!({ "server_id": s.server_id, "path": path }));
            let code = answer["code"].as_str().unwrap_or("");
            assert!(matches!(code, "POLICY_DENIED" | "VALIDATION_ERROR" | "NOT_FOUND"), "privileged {shown}: {answer}");
            let diff =
                s.call("mttrly_diff_file", json!({ "server_id": s.server_id, "left_path": good, "right_path": path }));
            assert!(diff.get("diff").is_none(), "diff {shown}: {diff}");
        }
    }

    #[test]
    fn a_20gb_sparse_file_and_a_growing_file_answer_fast_and_capped() {
        let s = setup();
        let sparse = s.root.join("log/sparse.log");
        let f = std::fs::File::create(&sparse).expect("sparse");
        f.set_len(20 * 1024 * 1024 * 1024).expect("20 GB sparse file");
        drop(f);
        // The first read compiles the redactor's rules (seconds in a debug build): not the file's cost.
        let _ = read(&s, &s.path("log/nginx/error.log"));
        let started = Instant::now();
        let answer = s.call(
            "mttrly_read_file",
            json!({ "server_id": s.server_id, "target": { "type": "file", "path": s.path("log/sparse.log") }, "lines": 500 }),
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(answer["truncated"], true, "{}", answer.to_string().chars().take(300).collect::<String>());
        assert_eq!(answer["size_bytes"], 20u64 * 1024 * 1024 * 1024);
        // One line of zeros, cut: bounded whatever the file's size.
        assert!(answer["content"].as_str().is_some_and(|c| c.len() < 100_000), "capped");
        assert_eq!(answer["line_count"], 1);
        let found = s.call("mttrly_search_files", json!({ "server_id": s.server_id, "query": "never-there" }));
        assert!(found["matches"].as_array().is_some_and(Vec::is_empty), "{found}");

        // A log written to while it is read.
        let growing = s.root.join("log/growing.log");
        std::fs::write(&growing, "").expect("growing");
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (growing, stop) = (growing.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                use std::io::Write as _;
                let mut f = std::fs::OpenOptions::new().append(true).open(&growing).expect("append");
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let _ = f.write_all(format!("entry {n} ok\n").as_bytes());
                    if n.is_multiple_of(1000) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                n
            })
        };
        for _ in 0..30 {
            let answer = s.call(
                "mttrly_read_file",
                json!({ "server_id": s.server_id, "target": { "type": "file", "path": s.path("log/growing.log") }, "lines": 20 }),
            );
            let content = answer["content"].as_str().unwrap_or_else(|| panic!("read while growing: {answer}"));
            let lines: Vec<&str> = content.lines().collect();
            assert!(lines.len() <= 20, "{answer}");
            // Whole lines (the last may be mid-write).
            let whole = lines.len().saturating_sub(1);
            assert!(lines[..whole].iter().all(|l| l.starts_with("entry ") && l.ends_with(" ok")), "{content}");
        }
        stop.store(true, Ordering::Relaxed);
        assert!(writer.join().expect("writer") > 0);
    }

    #[test]
    fn a_check_then_swap_race_never_returns_the_secret() {
        let s = setup();
        let r = s.root.clone();
        std::fs::create_dir_all(r.join("log/swapdir")).expect("dir");
        std::fs::write(r.join("log/swapdir/shadow"), "harmless\n").expect("file");
        std::fs::write(r.join("log/swap.log"), "harmless\n").expect("file");
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (r, stop) = (r.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let target = r.join("log/swap.log");
                let (real, soft, hard) = (r.join("log/.real"), r.join("log/.soft"), r.join("log/.hard"));
                let (dir, dir_link, dir_real) = (r.join("log/swapdir"), r.join("log/.dirlink"), r.join("log/.dirreal"));
                let mut rounds = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::write(&real, "harmless\n");
                    let _ = std::fs::rename(&real, &target);
                    let _ = std::fs::remove_file(&soft);
                    let _ = symlink(r.join("secret/shadow"), &soft);
                    let _ = std::fs::rename(&soft, &target);
                    let _ = std::fs::remove_file(&hard);
                    let _ = std::fs::hard_link(r.join("secret/shadow"), &hard);
                    let _ = std::fs::rename(&hard, &target);
                    // The directory on the path becomes a symlink to the secret's directory, and back.
                    let _ = std::fs::rename(&dir, &dir_real);
                    let _ = std::fs::remove_file(&dir_link);
                    let _ = symlink(r.join("secret"), &dir_link);
                    let _ = std::fs::rename(&dir_link, &dir);
                    let _ = std::fs::remove_file(&dir);
                    let _ = std::fs::rename(&dir_real, &dir);
                    rounds += 1;
                }
                rounds
            })
        };
        let (mut served, mut refused) = (0u32, 0u32);
        for i in 0..150 {
            let path = if i % 2 == 0 { s.path("log/swap.log") } else { s.path("log/swapdir/shadow") };
            let answer = read(&s, &path);
            assert!(!answer.to_string().contains(SECRET), "leaked through a swap: {answer}");
            if answer["content"].is_string() {
                served += 1;
            } else {
                refused += 1;
            }
            if i % 25 == 0 {
                let found = s.call("mttrly_search_files", json!({ "server_id": s.server_id, "query": "root" }));
                assert!(!found.to_string().contains(SECRET), "search leaked through a swap: {found}");
                let diff = s.call(
                    "mttrly_diff_file",
                    json!({ "server_id": s.server_id, "left_path": s.path("log/nginx/error.log"), "right_path": path }),
                );
                assert!(!diff.to_string().contains(SECRET), "diff leaked through a swap: {diff}");
            }
        }
        stop.store(true, Ordering::Relaxed);
        let rounds = swapper.join().expect("swapper");
        assert!(rounds > 10, "the swapper kept swapping ({rounds} rounds)");
        eprintln!("swap race: {served} reads served harmless content, {refused} refused, {rounds} swap rounds");
    }

    #[test]
    fn policy_check_path_gives_the_agents_answer_on_this_host() {
        let s = setup();
        let (_sock, device) = plant(&s);
        let policy = s.root.join("policy.toml");
        let mut paths: Vec<String> = [
            "log/nginx/error.log",
            "log/hard.log",
            "log/dirlink/shadow",
            "log/zero.log",
            "log/loop-a",
            "log/app.sock",
            "log/pipe.log",
            "log/none.log",
            "log/nginx/access.log/x",
            "log/nginx/*.log",
            "log/nginx",
        ]
        .iter()
        .map(|rel| s.path(rel))
        .collect();
        paths.push(format!("{}\u{1b}[2J", s.path("log/nginx/error.log")));
        paths.push("relative.log".to_owned());
        if device {
            paths.push(s.path("log/null.dev"));
        }
        for path in &paths {
            let out = std::process::Command::new(mttrly_tests::binary("mttrly-cli"))
                .args(["--output", "json", "policy", "check-path", path, "--policy"])
                .arg(&policy)
                .output()
                .expect("mttrly-cli runs");
            let verdict: Value = serde_json::from_slice(&out.stdout).expect("a JSON verdict");
            let agent = read(&s, path);
            let agent_allowed = agent["content"].is_string();
            let shown = path.escape_debug().to_string();
            assert_eq!(verdict["allowed"], agent_allowed, "{shown}: cli {verdict} vs agent {agent}");
            assert_eq!(out.status.code(), Some(i32::from(!agent_allowed)), "{shown}");
            if !agent_allowed {
                assert_eq!(verdict["code"], agent["code"], "{shown}: cli {verdict} vs agent {agent}");
                assert_eq!(verdict["reason"], agent["message"], "{shown}: cli {verdict} vs agent {agent}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_mcp_client_gets_the_same_refusals() {
        let s = tokio::task::spawn_blocking(|| {
            let s = setup();
            std::fs::hard_link(s.root.join("secret/shadow"), s.root.join("log/hard.log")).expect("hard link");
            s
        })
        .await
        .expect("setup");
        let (session, _forms) = mttrly_tests::mcp::connect(&s.central.mcp_url, &s.assistant, None).await;
        for path in [s.path("log/hard.log"), format!("{}\u{202e}gol.x", s.path("log/nginx/error.log"))] {
            let err = mttrly_tests::mcp::call_err(
                &session,
                "mttrly_read_file",
                json!({ "server_id": s.server_id, "target": { "type": "file", "path": path } }),
            )
            .await;
            assert_eq!(err["code"], "POLICY_DENIED", "{err}");
            assert!(!err.to_string().contains(SECRET) && !err.to_string().contains('\u{202e}'), "{err}");
        }
        let diff = mttrly_tests::mcp::call_err(
            &session,
            "mttrly_diff_file",
            json!({ "server_id": s.server_id, "left_path": s.path("log/nginx/error.log"), "right_path": s.path("log/hard.log") }),
        )
        .await;
        assert_eq!(diff["code"], "POLICY_DENIED", "{diff}");
        let found = mttrly_tests::mcp::call_ok(
            &session,
            "mttrly_search_files",
            json!({ "server_id": s.server_id, "query": "root" }),
        )
        .await;
        assert!(!found.to_string().contains(SECRET), "{found}");
        let _ = session.cancel().await;
        tokio::task::spawn_blocking(move || drop(s)).await.expect("teardown");
    }
}
