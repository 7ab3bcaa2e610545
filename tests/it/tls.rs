//! TLS between agent, CLI and central: a private CA made by `init --tls`, pinned by the agent
//! through the install command, and nothing else trusted.

use std::time::Duration;

use mttrly_tests::{TestAgent, TestCentral, binary, wait_for};
use serde_json::Value;

/// The arguments of the printed agent command after `--state-dir`-less `enroll`.
fn command_args(agent_command: &str) -> Vec<String> {
    let enroll = agent_command.split(" && ").next().expect("enroll part");
    enroll.split_whitespace().map(str::to_owned).collect()
}

fn arg_after(args: &[String], flag: &str) -> String {
    let i = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("{flag} missing from {args:?}"));
    args[i + 1].clone()
}

#[test]
fn agent_and_cli_pin_the_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start_tls(dir.path());
    assert!(central.grpc_url.starts_with("https://"), "{}", central.grpc_url);

    let added = central.cli_json(&["servers", "add", "edge-1", "--env", "production"]);
    let args = command_args(added["agent_command"].as_str().expect("agent_command"));
    let token = arg_after(&args, "--token");
    let ca_b64 = arg_after(&args, "--ca-cert-b64");
    assert_eq!(arg_after(&args, "--central"), central.grpc_url);

    // Another central's CA is not trusted: enrollment fails and the token stays unused.
    let other = tempfile::tempdir().expect("tempdir");
    let stranger = TestCentral::start_tls(other.path());
    let wrong = std::fs::read_to_string(stranger.ca_cert()).expect("other CA");
    let wrong_b64 = {
        use std::io::Write as _;
        let mut child = std::process::Command::new("base64")
            .arg("-w0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("base64 runs");
        child.stdin.take().expect("stdin").write_all(wrong.as_bytes()).expect("write");
        String::from_utf8(child.wait_with_output().expect("base64").stdout).expect("utf-8")
    };
    let out =
        TestAgent::enroll_with(&central.grpc_url, &token, &dir.path().join("bad"), &["--ca-cert-b64", &wrong_b64]);
    assert!(!out.status.success());
    let body: Value = serde_json::from_slice(&out.stderr).expect("JSON error");
    assert_eq!(body["code"], "CONNECTION_ERROR", "{body}");

    // The printed CA works, end to end.
    let state = dir.path().join("agent");
    let _agent = TestAgent::start_with(&central.grpc_url, &token, &state, &["--ca-cert-b64", &ca_b64]);
    let server_id = added["server_id"].as_str().expect("server_id").to_owned();
    wait_for("the TLS agent online", Duration::from_secs(15), || {
        (central.cli_json(&["servers", "status", &server_id])["server"]["status"] == "online").then_some(())
    });

    // The CLI refuses an https central without a CA, and with the wrong CA.
    let bare = std::process::Command::new(binary("mttrly-cli"))
        .args(["--central", &central.grpc_url, "--token", &central.admin_token, "--output", "json", "servers", "list"])
        .env_remove("MTTRLY_CA_CERT")
        .output()
        .expect("cli runs");
    let body: Value = serde_json::from_slice(&bare.stderr).expect("JSON error");
    assert_eq!(body["code"], "VALIDATION_ERROR");
    let wrong_ca = std::process::Command::new(binary("mttrly-cli"))
        .args(["--central", &central.grpc_url, "--token", &central.admin_token, "--output", "json"])
        .arg("--ca-cert")
        .arg(stranger.ca_cert())
        .args(["servers", "list"])
        .output()
        .expect("cli runs");
    let body: Value = serde_json::from_slice(&wrong_ca.stderr).expect("JSON error");
    assert_eq!(body["code"], "CONNECTION_ERROR");
}
