//! Issue 12 item 6, tenants: `mttrly-central accounts create | list` on a real data directory with
//! the real binary, and the new account's admin invite served by a real central.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use mttrly_tests::binary;
use serde_json::Value;

fn central(data: &Path, args: &[&str]) -> Output {
    Command::new(binary("mttrly-central"))
        .args(["--output", "json"])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("MTTRLY_LOG", "warn")
        .env_remove("MTTRLY_DATA_DIR")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn refused(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(1), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    serde_json::from_slice(&out.stderr).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn accounts_are_created_with_an_admin_invite_listed_and_refused_when_taken_or_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // Not initialised: refused, and no database appears (a typo must not make a fresh central).
    let err = refused(&central(&data, &["accounts", "create", "blue", "--plan", "watchdog"]));
    assert_eq!(err["code"], "VALIDATION_ERROR", "{err}");
    assert!(err["message"].as_str().unwrap().contains("not initialised"), "{err}");
    assert!(!data.exists(), "nothing was created");

    let init = ok(&central(&data, &["init"]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("central.db")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the database (password hashes, sealed factors, audit) is the owner's only");
    }
    let first = init["account_id"].as_str().unwrap().to_owned();

    let created = ok(&central(&data, &["accounts", "create", "blue", "--plan", "watchdog", "--admin", "carol"]));
    assert_eq!(created["name"], "blue");
    assert_eq!(created["plan"], "watchdog");
    assert_eq!(created["admin_name"], "carol");
    assert!(created["account_id"].as_str().unwrap().starts_with("acc_"), "{created}");
    assert_ne!(created["account_id"], first.as_str());
    let url = created["invite_url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:8080/invite/"), "{url}");
    assert!(created["expires_at"].as_i64().unwrap() > jiff::Timestamp::now().as_millisecond());
    assert!(created.get("token").is_none() && created.get("admin_token").is_none(), "no working token is printed");

    // Refusals leave the list as it was.
    for (args, why) in [
        (vec!["accounts", "create", "blue", "--plan", "watchdog"], "already exists"),
        (vec!["accounts", "create", "no spaces", "--plan", "watchdog"], "account name"),
        (vec!["accounts", "create", "-x", "--plan", "watchdog"], ""),
        (vec!["accounts", "create", "green", "--plan", "watchdog", "--admin", "bad name"], "user name"),
    ] {
        let out = central(&data, &args);
        assert!(!out.status.success(), "{args:?} must fail");
        if !why.is_empty() {
            let err = refused(&out);
            assert_eq!(err["code"], "VALIDATION_ERROR", "{args:?}: {err}");
            assert!(err["message"].as_str().unwrap().contains(why), "{args:?}: {err}");
        }
    }
    let bad_plan = central(&data, &["accounts", "create", "green", "--plan", "platinum"]);
    assert_eq!(bad_plan.status.code(), Some(2), "clap refuses an unknown plan");

    let list = ok(&central(&data, &["accounts", "list"]));
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!(rows[0]["id"], first.as_str());
    assert_eq!(rows[0]["users"], 1);
    assert_eq!(rows[1]["name"], "blue");
    assert_eq!(rows[1]["plan"], "watchdog");
    assert_eq!(rows[1]["users"], 1);
    assert_eq!(rows[1]["servers"], 0);

    // The table form names both.
    let table = Command::new(binary("mttrly-central"))
        .args(["accounts", "list", "--data-dir"])
        .arg(&data)
        .env("MTTRLY_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("blue") && text.contains("watchdog") && text.lines().count() == 3, "{text}");
}

/// The wall between two accounts, through every door: an account made with `accounts create`,
/// its admin signed up through the printed invite (browser), logged in with `mttrly-cli login`
/// (CLI, gRPC), and an assistant of theirs on `/mcp`; none of them sees or touches the first
/// account's servers, people or tokens, and the first account's admin sees nothing of theirs.
#[test]
fn a_created_account_is_walled_off_on_grpc_mcp_the_browser_and_the_cli() {
    use crate::login::{cli_in, decide, json_of, sign_up, start_cli_login, wait_output};

    let dir = tempfile::tempdir().unwrap();
    let first = mttrly_tests::TestCentral::start(dir.path());
    let theirs = first.cli_json(&["servers", "add", "web-a", "--env", "production"]);
    let web_a = theirs["server_id"].as_str().unwrap().to_owned();
    let first_tokens = first.cli_json(&["tokens", "list"]);
    let first_token_id = first_tokens[0]["id"].as_str().unwrap().to_owned();

    // `accounts create` on the live data directory; the link's path is served by the running
    // central (whose port the offline command cannot know: a deployment sets public_http_url).
    let created =
        ok(&central(&first.data_dir, &["accounts", "create", "blue", "--plan", "deployment_crew", "--admin", "carol"]));
    let url = created["invite_url"].as_str().unwrap();
    let path = &url[url.find("/invite/").unwrap()..];
    let mut browser = sign_up(&first.http_url, &format!("{}{path}", first.http_url));
    let home = browser.get("/");
    assert!(home.body.contains("carol") && home.body.contains("admin"), "{home:?}");

    // Carol logs the CLI in through her browser.
    let carol_home = dir.path().join("carol");
    std::fs::create_dir_all(&carol_home).unwrap();
    let (child, code, _, _lines) = start_cli_login(&first, &carol_home);
    assert_eq!(decide(&mut browser, &code, "allow").status, 200);
    let out = wait_output(child, std::time::Duration::from_secs(30));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let carol = |args: &[&str]| cli_in(&carol_home).args(["--output", "json"]).args(args).output().unwrap();

    let me = json_of(&carol(&["whoami"]));
    assert_eq!(me["account_id"], created["account_id"], "{me}");
    assert_eq!(json_of(&carol(&["servers", "list"]))["servers"].as_array().map(Vec::len), Some(0));
    let users = json_of(&carol(&["users", "list"]));
    let names: Vec<&str> = users.as_array().unwrap().iter().filter_map(|u| u["name"].as_str()).collect();
    assert_eq!(names, ["carol"], "{users}");
    for (args, code) in [
        (vec!["servers", "status", web_a.as_str()], "SERVER_NOT_FOUND"),
        (vec!["tokens", "revoke", first_token_id.as_str()], "NOT_FOUND"),
        (vec!["users", "remove", "admin"], "NOT_FOUND"),
    ] {
        let err = refused(&carol(&args));
        assert_eq!(err["code"], code, "{args:?}: {err}");
    }
    assert!(
        first.cli_json(&["servers", "status", &web_a])["server"]["name"] == "web-a",
        "the refusals changed nothing"
    );

    // Carol's assistant on /mcp sees her (empty) account only.
    let assistant =
        json_of(&carol(&["tokens", "create", "--assistant", "claude-code"]))["token"].as_str().unwrap().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (session, _) = mttrly_tests::mcp::connect(&first.mcp_url, &assistant, None).await;
        let listed = mttrly_tests::mcp::call_ok(&session, "mttrly_list_servers", serde_json::json!({})).await;
        assert_eq!(listed["servers"].as_array().map(Vec::len), Some(0), "{listed}");
        let err = mttrly_tests::mcp::call_err(
            &session,
            "mttrly_get_server_status",
            serde_json::json!({ "server_id": web_a }),
        )
        .await;
        assert_eq!(err["code"], "SERVER_NOT_FOUND", "{err}");
    });

    // And the other way: the first account's admin sees no trace of blue.
    let users = first.cli_json(&["users", "list"]);
    assert!(!users.to_string().contains("carol"), "{users}");
    let tokens = first.cli_json(&["tokens", "list"]);
    assert!(!tokens.to_string().contains("carol") && !tokens.to_string().contains("claude-code"), "{tokens}");
    let err = first.cli(&["--output", "json", "users", "remove", "carol"]);
    assert_eq!(refused(&err)["code"], "NOT_FOUND");
}
