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
