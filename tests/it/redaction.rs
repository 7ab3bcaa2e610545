//! Redaction end to end: the redactor's own corpora (`mttrly-core/tests/redaction/`) written into
//! logs under a real agent's allowlisted root, then read back through every tool that carries a
//! file's bytes off the server: `mttrly_read_file` (whole files, and tail windows that cut a key
//! block so its `BEGIN` or `END` is outside), `mttrly_search_files` (one line per hit: the lone
//! body line), `mttrly_diff_file` (both directions: `+` and `-` framed lines) and
//! `mttrly_execute_command` with `cat` and `grep` (read-only on a file under the root). Not one
//! secret of the leak corpus may come back, and the keep corpus must come back byte-identical.
//! Then what central stores: the audit log and the action results carry no secret either.
//! A read, the stored results and the audit log go through MCP (the rmcp client over Streamable
//! HTTP); the bulk of the calls through gRPC `CallTool`, as the standalone MCP binary makes them.
//!
//! cargo test -p mttrly-tests --test it redaction::

use std::collections::BTreeSet;
use std::path::PathBuf;

use mttrly_tests::mcp;
use mttrly_tests::{TestAgent, TestCentral};
use serde_json::{Value, json};

const LEAK: &str = include_str!("../../mttrly-core/tests/redaction/leak.tsv");
const KEEP: &str = include_str!("../../mttrly-core/tests/redaction/keep.txt");

/// Lines per corpus file: a whole file fits one tail (the plan allows 500 lines) and one search.
const FILE_LINES: usize = 400;
/// Characters searched for (case-insensitive) until every line of a file was one hit.
const PROBES: &[&str] =
    &["e", "a", "o", "i", "t", "s", "n", "1", "0", "2", "=", ":", "-", "/", "x", "k", "q", "z", "7"];
/// Assistant tokens the calls rotate over: the per-token rate limit (600 a minute) stays far.
const TOKENS: usize = 4;

fn unescape(s: &str) -> String {
    s.replace('⏎', "\n").replace('→', "\t")
}

/// `(rule, input, secret)` rows of the leak corpus.
fn leak_rows() -> Vec<(String, String, String)> {
    LEAK.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            Some((parts.next()?.to_owned(), unescape(parts.next()?), unescape(parts.next()?)))
        })
        .collect()
}

fn keep_rows() -> Vec<String> {
    KEEP.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(unescape).collect()
}

/// Packs texts into files of at most [`FILE_LINES`] lines each (a text is never split), joined
/// by `separator` lines.
fn pack(texts: &[String], separator: Option<&str>) -> Vec<String> {
    let mut files = vec![String::new()];
    let mut lines = 0;
    for text in texts {
        let n = text.lines().count() + usize::from(separator.is_some());
        if lines + n > FILE_LINES && lines > 0 {
            files.push(String::new());
            lines = 0;
        }
        let file = files.last_mut().expect("one file");
        if let Some(sep) = separator.filter(|_| lines > 0) {
            file.push_str(sep);
            file.push('\n');
        }
        file.push_str(text);
        file.push('\n');
        lines += n;
    }
    files
}

struct Setup {
    root: PathBuf,
    _dir: tempfile::TempDir,
    central: TestCentral,
    tokens: Vec<String>,
    server_id: String,
    _agent: TestAgent,
    next: std::cell::Cell<usize>,
}

impl Setup {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        for d in ["logs/leak", "logs/keep", "logs/windows"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(root.join("logs/empty.log"), "").expect("empty");
        let policy = root.join("policy.toml");
        std::fs::write(&policy, format!("file_roots = [\"{}/logs/**\"]\n", root.display())).expect("policy");
        let central = TestCentral::start(&root);
        let (server_id, agent) = central.online_server("web-1", "staging", &root.join("agent"), Some(&policy));
        let tokens = (0..TOKENS).map(|i| central.assistant_token(&format!("claude-code-{i}"))).collect();
        Self { root, _dir: dir, central, tokens, server_id, _agent: agent, next: std::cell::Cell::new(0) }
    }

    fn token(&self) -> &str {
        let i = self.next.get();
        self.next.set(i + 1);
        &self.tokens[i % self.tokens.len()]
    }

    /// A tool call through gRPC `CallTool`; an error body fails the test.
    #[allow(clippy::needless_pass_by_value)] // call sites read better with json!(..) inline
    fn call(&self, tool: &str, args: Value) -> Value {
        let out = self.central.call_tool(self.token(), tool, &args);
        assert!(out.get("code").is_none(), "{tool} {args} failed: {out}");
        out
    }

    fn write(&self, rel: &str, text: &str) -> String {
        let path = self.root.join(rel);
        std::fs::write(&path, text).expect("write corpus file");
        path.display().to_string()
    }

    fn read(&self, path: &str, lines: usize) -> Value {
        self.call(
            "mttrly_read_file",
            json!({ "server_id": self.server_id, "target": { "type": "file", "path": path }, "lines": lines }),
        )
    }

    /// Every line of the file at `path` (holding `text`) as a search hit of its own: the probes
    /// are searched one by one until each non-empty line was hit.
    fn search_every_line(&self, path: &str, text: &str) -> Vec<Value> {
        let lines: Vec<&str> = text.lines().collect();
        let mut uncovered: BTreeSet<usize> = (0..lines.len()).filter(|&i| !lines[i].trim().is_empty()).collect();
        let mut hits = Vec::new();
        for probe in PROBES {
            if uncovered.is_empty() {
                break;
            }
            if !uncovered.iter().any(|&i| lines[i].to_ascii_lowercase().contains(probe)) {
                continue;
            }
            let found = self.call(
                "mttrly_search_files",
                json!({ "server_id": self.server_id, "query": probe, "glob": path, "ignore_case": true, "max_matches": 500 }),
            );
            assert_eq!(found["truncated"], false, "{path}: {probe}");
            for m in found["matches"].as_array().expect("matches") {
                let n = usize::try_from(m["line_number"].as_u64().expect("line_number")).expect("fits");
                uncovered.remove(&(n - 1));
                hits.push(m.clone());
            }
        }
        hits
    }

    fn diff(&self, left: &str, right: &str) -> String {
        let d = self.call(
            "mttrly_diff_file",
            json!({ "server_id": self.server_id, "left_path": left, "right_path": right, "context_lines": 0 }),
        );
        assert_eq!(d["truncated"], false, "{d}");
        d["diff"].as_str().expect("diff").to_owned()
    }

    /// Runs a read-only command at once; returns its (redacted) output and the action id.
    fn run(&self, command: &str) -> (String, String) {
        let ran = self.call("mttrly_execute_command", json!({ "server_id": self.server_id, "command": command }));
        assert_eq!(ran["requires_approval"], false, "{command} reads a file under the root: {ran}");
        assert_eq!(ran["status"], "succeeded", "{command}: {ran}");
        let output = ran["result"]["output"].as_str().expect("output").to_owned();
        (output, ran["action_id"].as_str().expect("action id").to_owned())
    }
}

/// The secrets of the leak corpus found in `text`, with the rule that should have removed each.
fn leaked<'a>(text: &str, secrets: &'a [(String, String)]) -> Vec<&'a (String, String)> {
    secrets.iter().filter(|(_, secret)| text.contains(secret.as_str())).collect()
}

fn assert_clean(what: &str, text: &str, secrets: &[(String, String)]) {
    let mut failures = Vec::new();
    check(&mut failures, what, text, secrets);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Records what `text` leaked under `what` (so one run reports every leaking path at once).
fn check(failures: &mut Vec<String>, what: &str, text: &str, secrets: &[(String, String)]) {
    let found: BTreeSet<_> = leaked(text, secrets).into_iter().collect();
    if !found.is_empty() {
        failures.push(format!("{what} leaked {} secrets: {found:?}", found.len()));
    }
}

/// Words one of which names a credential key on the secret's own line.
const CREDENTIAL_WORDS: &[&str] = &["pass", "pwd", "secret", "token", "key", "auth", "cred"];

/// Whether a row's secret can only be recognised with lines around it, so a path that shows one
/// line alone (a search hit, `grep`, a short tail) cannot be held to it: a Kubernetes Secret's
/// `data:` values (without `kind: Secret` and `data:` they read like any ConfigMap), the lines
/// of a YAML block scalar or an HCL block under a secret key and a password printed on the line
/// after its announcement (no credential word on them), a value found once and printed again on
/// a line of its own (`echoes`: the later line alone says nothing), and a key's last body line when it
/// is shorter than a full line (a fragment of under 36 bytes). Whole-file paths are held to all.
fn needs_context(rule: &str, input: &str, secret: &str) -> bool {
    let multi_line = input.contains('\n');
    rule == "k8s_secret_data"
        || (matches!(rule, "secret_assignment" | "announced_password")
            && multi_line
            && input
                .lines()
                .any(|l| l.contains(secret) && !CREDENTIAL_WORDS.iter().any(|w| l.to_ascii_lowercase().contains(w))))
        || (matches!(rule, "private_key" | "private_key_body" | "putty_private_key") && multi_line && secret.len() < 48)
}

/// Leak corpus rows of the classes shaped by lines (key containers, Secret data): each gets its
/// own file, and tails cut it at every depth that leaves its first line out.
fn block_rows(rows: &[(String, String, String)]) -> Vec<&(String, String, String)> {
    rows.iter().filter(|(_, input, _)| input.lines().count() >= 3).collect()
}

#[test]
fn the_leak_corpus_never_leaves_the_server_through_any_tool() {
    let s = Setup::start();
    let rows = leak_rows();
    assert!(rows.len() >= 800, "the corpus is the test set: {}", rows.len());
    let secrets: Vec<(String, String)> = rows.iter().map(|(rule, _, secret)| (rule.clone(), secret.clone())).collect();
    // What a path showing lines alone must still never show.
    let contextual: BTreeSet<&str> = rows
        .iter()
        .filter(|(rule, input, secret)| needs_context(rule, input, secret))
        .map(|(_, _, secret)| secret.as_str())
        .collect();
    let lone: Vec<(String, String)> =
        secrets.iter().filter(|(_, secret)| !contextual.contains(secret.as_str())).cloned().collect();
    assert!(lone.len() * 10 >= secrets.len() * 9, "{} of {} rows hold outside context", lone.len(), secrets.len());
    let files = pack(&rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(), None);
    let empty = s.root.join("logs/empty.log").display().to_string();
    let mut failures = Vec::new();

    for (i, text) in files.iter().enumerate() {
        // The library on this text first: a failure here is the redactor's, not the transport's.
        check(&mut failures, &format!("redact(leak-{i})"), &mttrly_core::redactor::redact(text).text, &secrets);
        let path = s.write(&format!("logs/leak/leak-{i}.log"), text);

        let read = s.read(&path, 500);
        assert_eq!(read["truncated"], false, "{path} fits one read");
        assert!(read["redactions"].as_array().is_some_and(|r| !r.is_empty()), "{path}: {read}");
        check(&mut failures, &format!("read_file {path}"), &read.to_string(), &secrets);

        let hits = s.search_every_line(&path, text);
        assert!(!hits.is_empty(), "{path}");
        check(&mut failures, &format!("search_files {path}"), &Value::Array(hits).to_string(), &lone);

        // Added (`+`) and removed (`-`) lines.
        check(&mut failures, &format!("diff_file {path} (added)"), &s.diff(&empty, &path), &secrets);
        check(&mut failures, &format!("diff_file {path} (removed)"), &s.diff(&path, &empty), &secrets);

        // Commands: output streamed in chunks through the agent's StreamRedactor, then stored.
        let (cat, cat_id) = s.run(&format!("cat {path}"));
        check(&mut failures, &format!("cat {path}"), &cat, &secrets);
        let (grep, _) = s.run(&format!("grep -i e {path}"));
        check(&mut failures, &format!("grep {path}"), &grep, &lone);
        let stored = s.call("mttrly_get_action_result", json!({ "action_id": cat_id }));
        check(&mut failures, &format!("stored result of cat {path}"), &stored.to_string(), &secrets);
    }

    // Windows: a tail that starts inside a key block (its BEGIN above the window), at every depth.
    let mut windows = 0;
    for (i, (rule, input, _)) in block_rows(&rows).into_iter().enumerate() {
        let path = s.write(&format!("logs/windows/row-{i}.log"), &format!("{input}\n"));
        let n = input.lines().count();
        for lines in [1, 2, 3, n / 2, n - 1].into_iter().filter(|&l| l >= 1 && l < n).collect::<BTreeSet<_>>() {
            let read = s.read(&path, lines);
            check(&mut failures, &format!("{rule}: read_file {path} lines={lines}"), &read.to_string(), &lone);
            windows += 1;
        }
    }
    assert!(windows >= 300, "{windows} windows");
    assert!(failures.is_empty(), "{} leaking paths:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_keep_corpus_comes_back_byte_identical_through_every_tool() {
    let s = Setup::start();
    let rows = keep_rows();
    assert!(rows.len() >= 300, "{}", rows.len());
    // One `~` line between rows, so no row is read as the continuation of the one above it (a
    // YAML block scalar, a key block): each row is kept on its own, as in the corpus test.
    let files = pack(&rows, Some("~"));
    // The rows that are one line: each stands on its own, so a search hit on it comes back
    // unchanged. A line of a multi-line row may not (a certificate's body line alone reads as a
    // key's).
    let single: BTreeSet<&str> = rows.iter().map(String::as_str).filter(|r| !r.contains('\n')).collect();
    let empty = s.root.join("logs/empty.log").display().to_string();
    for (i, text) in files.iter().enumerate() {
        let r = mttrly_core::redactor::redact(text);
        assert_eq!(r.text, text.as_str(), "redact(keep-{i}) changed the text: {:?}", r.hits);
        let path = s.write(&format!("logs/keep/keep-{i}.log"), text);
        let lines: Vec<&str> = text.lines().collect();

        let read = s.read(&path, 500);
        assert_eq!(read["content"].as_str().expect("content"), text.trim_end_matches('\n'), "{path}");
        assert_eq!(read["redactions"], json!([]), "{path}");

        // A hit is one line on its own: a line of a certificate's body alone cannot be told from a
        // key's and is redacted (the corpus keeps such rows whole). Every hit is the library's
        // verdict on its line alone, and a line that stands on its own comes back unchanged.
        // Every line of a one-line row that a probe can find is hit and comes back unchanged
        // (counted once per line: a line holding several probes is hit several times).
        let mut unchanged = BTreeSet::new();
        for hit in s.search_every_line(&path, text) {
            let n = usize::try_from(hit["line_number"].as_u64().expect("n")).expect("fits");
            let alone = mttrly_core::redactor::redact(lines[n - 1]);
            assert_eq!(hit["line"].as_str().expect("line"), alone.text, "{path}:{n}");
            if alone.text == lines[n - 1] {
                unchanged.insert(n);
            }
        }
        let standing: Vec<usize> = (1..=lines.len())
            .filter(|&n| {
                single.contains(lines[n - 1]) && PROBES.iter().any(|p| lines[n - 1].to_ascii_lowercase().contains(p))
            })
            .collect();
        assert!(!standing.is_empty(), "{path}");
        let missing: Vec<&str> = standing.iter().filter(|n| !unchanged.contains(*n)).map(|&n| lines[n - 1]).collect();
        assert!(missing.is_empty(), "{path}: one-line rows not found unchanged alone: {missing:?}");

        let added: Vec<String> = s
            .diff(&empty, &path)
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
            .map(|l| l[1..].to_owned())
            .collect();
        let differ: Vec<_> = added.iter().zip(&lines).filter(|(a, l)| a != l).take(3).collect();
        assert!(differ.is_empty() && added.len() == lines.len(), "{path}: diff changed lines: {differ:?}");

        let (cat, _) = s.run(&format!("cat {path}"));
        assert_eq!(cat, *text, "{path}: cat");
    }
}

/// A path under the root written with the leak corpus' first rows, for the stored-data checks.
fn small_leak_file(s: &Setup, rows: &[(String, String, String)]) -> String {
    let text = rows.iter().take(60).fold(String::new(), |mut text, r| {
        text.push_str(&r.1);
        text.push('\n');
        text
    });
    s.write("logs/leak/small.log", &text)
}

#[test]
fn the_audit_log_and_stored_results_keep_no_secret() {
    let s = Setup::start();
    let rows = leak_rows();
    let mut secrets: Vec<(String, String)> = rows.iter().map(|(r, _, secret)| (r.clone(), secret.clone())).collect();
    let path = small_leak_file(&s, &rows);

    // A command needing approval carries credentials in its argv and in the assistant's reason
    // (probe F7: `-pX`, `DB_PASS=`, `password X` reached the hash-chained log in clear).
    let audit_secrets = ["FakeAuditS61x", "FakeAuditS63y", "FakeAuditS65z", "FakeAuditS67w"];
    secrets.extend(audit_secrets.iter().map(|s| ("audit".to_owned(), (*s).to_owned())));
    let pending = s.call(
        "mttrly_execute_command",
        json!({
            "server_id": s.server_id,
            "command": "mysql -uroot -pFakeAuditS61x -h 127.0.0.1 app --password FakeAuditS67w",
            "reason": "DB_PASS=FakeAuditS63y is stale; the password FakeAuditS65z must be rotated",
        }),
    );
    // The action itself keeps the exact command: it is what a human approves and what runs.
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    let pending_id = pending["action_id"].as_str().expect("id").to_owned();

    // A command run after a human approved it, whose output is the leak corpus.
    let approved = s.call(
        "mttrly_execute_command",
        json!({ "server_id": s.server_id, "command": format!("cat {path} && echo done"), "reason": "read it" }),
    );
    let approved_id = approved["action_id"].as_str().expect("id").to_owned();
    let done = s.central.approve(&approved_id);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_clean("actions approve (CLI)", &done.to_string(), &secrets);

    // And one that ran at once.
    let (_, ro_id) = s.run(&format!("tail -n 50 {path}"));

    // Through MCP, as the assistant reads them.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (session, _) = mcp::connect(&s.central.mcp_url, &s.tokens[0], None).await;
        for id in [&approved_id, &ro_id] {
            let action = mcp::call_ok(&session, "mttrly_get_action_result", json!({ "action_id": id })).await;
            assert!(action["result"]["output"].as_str().is_some_and(|o| o.contains("[REDACTED:")), "{action}");
            assert_clean(&format!("mttrly_get_action_result {id}"), &action["result"].to_string(), &secrets);
        }
        let read = mcp::call_ok(
            &session,
            "mttrly_read_file",
            json!({ "server_id": s.server_id, "target": { "type": "file", "path": path }, "lines": 500 }),
        )
        .await;
        assert!(read["content"].as_str().is_some_and(|c| c.contains("[REDACTED:")), "{read}");
        assert_clean("mttrly_read_file over MCP", &read.to_string(), &secrets);
        let audit =
            mcp::call_ok(&session, "mttrly_get_audit_log", json!({ "server_id": s.server_id, "limit": 200 })).await;
        let entries = audit["entries"].as_array().expect("entries");
        assert!(entries.len() >= 4, "{audit}");
        // The rows do record the command and the reason, with the credentials cut out of them.
        let rows = audit.to_string();
        assert!(rows.contains("mysql -uroot") && rows.contains("DB_PASS="), "{audit}");
        assert!(rows.contains("[REDACTED:mysql_password]"), "{audit}");
        assert_clean("mttrly_get_audit_log", &rows, &secrets);
        session.cancel().await.expect("close");
    });

    // The CLI's audit view reads the same rows, every account entry included.
    let cli_audit = s.central.cli_json(&["audit", "list", "--limit", "500"]);
    assert_clean("audit list (CLI)", &cli_audit.to_string(), &secrets);
    s.central.cli_json(&["actions", "reject", &pending_id, "--reason", "test"]);
}
