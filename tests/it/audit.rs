//! `mttrly-cli audit list | verify` against a real central, and a tampered SQLite file.

use mttrly_tests::TestCentral;
use serde_json::Value;

#[test]
fn audit_list_and_verify_through_the_cli_catch_an_edited_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let added = central.cli_json(&["servers", "add", "web-1", "--env", "staging"]);
    let server_id = added["server_id"].as_str().expect("server_id").to_owned();
    central.cli_json(&["tokens", "create", "--assistant", "claude-code"]);

    let listed = central.cli_json(&["audit", "list"]);
    let entries = listed["entries"].as_array().expect("entries");
    let subjects: Vec<&str> = entries.iter().filter_map(|e| e["subject"].as_str()).collect();
    assert_eq!(subjects, ["CreateToken", "AddServer"]);
    assert_eq!(entries[1]["server_id"], server_id.as_str());
    // Secrets never reach the audit log.
    let text = serde_json::to_string(&listed).expect("json");
    assert!(!text.contains("mttrly_a_") && !text.contains("mttrly_i_"), "{text}");

    let ok = central.cli_json(&["audit", "verify"]);
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["rows_checked"], 2);

    // Someone edits the database behind mttrly's back.
    let conn = rusqlite::Connection::open(central.data_dir.join("central.db")).expect("open the SQLite file");
    let changed = conn
        .execute("UPDATE audit_log SET parameters_json = '{\"name\":\"innocent\"}' WHERE subject = 'AddServer'", [])
        .expect("tamper");
    assert_eq!(changed, 1);
    drop(conn);

    let out = central.cli(&["--output", "json", "audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let result: Value = serde_json::from_slice(&out.stdout).expect("result on stdout");
    assert_eq!(result["ok"], false);
    assert_eq!(result["first_bad_seq"], 1);
    let body: Value = serde_json::from_slice(&out.stderr).expect("error on stderr");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("edited")), "{body}");
}
