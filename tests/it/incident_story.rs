//! Issue 15's incident story in one run, each step through the path its actor uses, against a
//! central in this process and a real `mttrly-agent` process. Alertmanager's webhook opens an alert
//! on web-1; the assistant (a real MCP session) reads it, opens an investigation of it, looks the
//! symptoms up in the knowledge base and asks for a bypass; the human grants it with
//! `mttrly-cli investigations grant` and a fresh TOTP code; three fixes run under it on the host
//! and a fourth waits for approval; CI records the deploy with signed `POST /hooks/deploy`; the
//! verifier probes the service's healthcheck (an HTTP server this test runs) through the agent;
//! the alert resolves and the human closes the investigation. Then the timeline, the
//! retrospective and a knowledge search each show what the steps before them did.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use mttrly_central::hooks::AlertmanagerHook;
use mttrly_central::hooks::deploy::DeployHook;
use mttrly_core::Environment;
use mttrly_core::audit::AuditActor;
use mttrly_core::tools::timeline::{TimelineEvent, TimelineItem};
use mttrly_tests::mcp::call_ok;
use serde_json::{Value, json};

use crate::approvals::{add_server, cli, code_at, enroll_totp, now_step};
use crate::common::harness;
use crate::deploys::{HEALTHY, agent_with_policy, http_server, report};
use crate::hooks::{am_alert, notification};
use crate::investigations::{stdout, token};
use crate::knowledge::kcli;
use crate::timeline::items;

/// The audit item about `subject`: exactly one.
fn audited<'a>(timeline: &'a [TimelineItem], subject: &str) -> &'a TimelineItem {
    let found: Vec<&TimelineItem> = timeline
        .iter()
        .filter(|i| i.event == TimelineEvent::Audited && i.subject.as_deref() == Some(subject))
        .collect();
    assert_eq!(found.len(), 1, "the audit item about {subject} on the timeline: {timeline:#?}");
    found[0]
}

/// The item of `event` about `reference`: exactly one.
fn one<'a>(timeline: &'a [TimelineItem], event: TimelineEvent, reference: &str) -> &'a TimelineItem {
    let found: Vec<&TimelineItem> = timeline.iter().filter(|i| i.event == event && i.reference == reference).collect();
    assert_eq!(found.len(), 1, "{event:?} of {reference} on the timeline: {timeline:#?}");
    found[0]
}

/// The retrospective's measure `name`.
fn measure<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["measures"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap()
}

/// A measure's end: its label, reference and time, as the JSON says.
fn moment(m: &Value) -> (&str, &str, &str) {
    (m["label"].as_str().unwrap(), m["reference"].as_str().unwrap(), m["at"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_investigated_fixed_under_a_totp_granted_bypass_deployed_verified_and_written_up_for_search() {
    let h = harness(|cfg| {
        cfg.hooks.alertmanager = Some(AlertmanagerHook { token_env: crate::hooks::TOKEN_ENV.into() });
        cfg.hooks.deploy = Some(DeployHook { hmac_secret_env: crate::deploys::SECRET_ENV.into() });
    })
    .await;
    let added = add_server(&h, "web-1", Environment::Staging).await;
    let server = added.server_id.clone();

    // The host: the web service's healthcheck, its log (the incident's error, written before the
    // deploy), four rotated logs filling the disk, and the agent's policy naming the service.
    let hits = Arc::new(AtomicUsize::new(0));
    let health = http_server(Arc::new(AtomicU32::new(HEALTHY)), Arc::clone(&hits));
    let root = h.dir.path().to_path_buf();
    let (logs, rotated_dir, agent_dir) = (root.join("logs"), root.join("rotated"), root.join("agent"));
    for dir in [&logs, &rotated_dir, &agent_dir] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let log = logs.join("web.log");
    let earlier = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600)).to_string();
    std::fs::write(&log, format!("{earlier} ERROR write /var/log/web/access.log: no space left on device\n")).unwrap();
    let rotated = |i: u32| rotated_dir.join(format!("web.log.{i}"));
    for i in 1..=4 {
        std::fs::write(rotated(i), "x".repeat(4096)).unwrap();
    }
    let policy = format!(
        "file_roots = [\"{}/*.log\"]\n\
         [deploys.web]\nlog_file = \"{}\"\n\
         [deploys.web.healthcheck]\nurl = \"{health}\"\nbody_contains = \"status: ok\"\nsamples = 3\ninterval_ms = 20\n",
        logs.display(),
        log.display(),
    );
    let _agent = agent_with_policy(&h, &added.install_token, &server, &agent_dir, &policy).await;

    // The people: the admin with a TOTP factor, their runbook from an earlier incident, and their
    // assistant's MCP session.
    let (secret, enrolled_at, _) = enroll_totp(&h, &h.admin).await;
    let add = ["knowledge", "add", "--kind", "recipe", "--title", "Disk full on a web server"];
    let body = "Remove the rotated web logs, then redeploy web with log compression on.\n";
    let (ok, runbook, err) = kcli(&h, &h.admin, &add, body).await;
    assert!(ok, "{err}");
    let runbook = runbook["knowledge_id"].as_str().unwrap().to_owned();
    let assistant = token(&h, &h.admin, "claude-code").await;
    let claude = mttrly_tests::mcp::connect_as(&h.central.mcp_url(), &assistant, "claude-code").await;

    // 1. The alert: Alertmanager posts a firing DiskFull for web-1; the assistant reads it.
    let fingerprint = "d15cf011d15cf011";
    let firing =
        h.deliver_ok(notification("firing", &[am_alert("firing", "DiskFull", "web-1:9100", fingerprint)])).await;
    assert_eq!(firing["opened"], 1, "{firing}");
    let open = call_ok(&claude, "mttrly_get_alerts", json!({ "server_id": server, "status": "open" })).await;
    let open = open["alerts"].as_array().unwrap();
    assert_eq!(open.len(), 1, "the monitoring's alert, and only it: {open:?}");
    assert_eq!(
        (open[0]["rule"].as_str(), open[0]["severity"].as_str()),
        (Some("alertmanager:DiskFull"), Some("critical"))
    );
    let alert = open[0]["alert_id"].as_str().unwrap().to_owned();

    // 2. The investigation of that alert; the assistant looks at the server and finds the runbook.
    let opened = call_ok(
        &claude,
        "mttrly_start_investigation",
        json!({ "server_id": server, "title": "disk full on web-1", "alert_id": alert }),
    )
    .await;
    let investigation = opened["investigation_id"].as_str().unwrap().to_owned();
    assert_eq!(
        (opened["status"].as_str(), opened["resumed"].as_bool(), opened["alert_id"].as_str()),
        (Some("open"), Some(false), Some(alert.as_str())),
        "{opened}"
    );
    call_ok(&claude, "mttrly_get_server_status", json!({ "server_id": server })).await;
    let found = call_ok(&claude, "mttrly_search_knowledge", json!({ "query": "disk full", "server_id": server })).await;
    assert_eq!(found["results"][0]["knowledge_id"], runbook.as_str(), "{found}");

    // 3. The bypass: asked for by the assistant, granted by the human on the CLI with a fresh
    // TOTP code (never a tool argument).
    let asked = call_ok(
        &claude,
        "mttrly_acquire_investigation_bypass",
        json!({
            "investigation_id": investigation, "tools": ["execute_command"], "max_actions": 3,
            "duration_minutes": 15, "reason": "remove the rotated web logs",
        }),
    )
    .await;
    assert_eq!(asked["status"], "pending", "{asked}");
    let bypass = asked["bypass_id"].as_str().unwrap().to_owned();
    assert_eq!(asked["grant"]["cli_command"], format!("mttrly-cli investigations grant {bypass}"));
    let code = code_at(&secret, now_step().max(enrolled_at + 1));
    let granted = stdout(
        &cli(&h, &h.admin, &["--output", "json", "investigations", "grant", &bypass, "--yes"], &format!("{code}\n"))
            .await,
    );
    assert_eq!(
        (granted["bypass"]["status"].as_str(), granted["bypass"]["granted_by"]["name"].as_str()),
        (Some("active"), Some("admin")),
        "{granted}"
    );

    // 4. Three fixes run at once under it on the host; the fourth waits for a person.
    let exec = |i: u32| {
        let args = json!({
            "server_id": server, "command": format!("rm {}", rotated(i).display()), "investigation_id": investigation,
        });
        call_ok(&claude, "mttrly_execute_command", args)
    };
    let mut fixes = Vec::new();
    for i in 1..=3 {
        let ran = exec(i).await;
        assert_eq!(
            (ran["status"].as_str(), ran["requires_approval"].as_bool()),
            (Some("succeeded"), Some(false)),
            "{ran}"
        );
        assert!(!rotated(i).exists(), "fix {i} ran on the host");
        fixes.push(ran["action_id"].as_str().unwrap().to_owned());
    }
    let fourth = exec(4).await;
    assert_eq!(fourth["status"], "pending_approval", "{fourth}");
    assert!(rotated(4).exists(), "the fourth did not run");
    let fourth = fourth["action_id"].as_str().unwrap().to_owned();
    let state = call_ok(&claude, "mttrly_get_investigation_bypass", json!({ "investigation_id": investigation })).await;
    assert_eq!(
        (state["status"].as_str(), state["actions_used"].as_u64(), state["remaining_actions"].as_u64()),
        (Some("exhausted"), Some(3), Some(0)),
        "{state}"
    );

    // 5. The deploy: CI reports it started, then succeeded, with signed deliveries.
    let mut ci = report("gh-run-7", "web-1", "started");
    ci["environment"] = json!("staging");
    let (status, started) = h.deploy_signed(&ci).await;
    assert_eq!((status, started["outcome"].as_str()), (200, Some("created")), "{started}");
    let deploy = started["deploy_id"].as_str().unwrap().to_owned();
    ci["status"] = json!("succeeded");
    let (status, finished) = h.deploy_signed(&ci).await;
    assert_eq!(
        (status, finished["outcome"].as_str(), finished["deploy_id"].as_str()),
        (200, Some("updated"), Some(deploy.as_str())),
        "{finished}"
    );

    // 6. The verifier: the agent probes the healthcheck and reads the log; the alert and the error
    // line came before the deploy, so neither counts against it.
    let verified = call_ok(&claude, "mttrly_run_deploy_verifier", json!({ "server_id": server })).await;
    assert_eq!(verified["verdict"], "pass", "{verified}");
    assert_eq!(verified["deploy"]["deploy_id"], deploy.as_str());
    let checks = &verified["checks"];
    let samples = checks["healthcheck"]["samples"].as_array().unwrap();
    assert!(samples.len() == 3 && samples.iter().all(|s| s["status_code"] == 200 && s["ok"] == true), "{checks}");
    assert_eq!(hits.load(Ordering::SeqCst), 3, "the agent really probed the service, once per sample");
    assert_eq!((checks["alerts"]["verdict"].as_str(), checks["logs"]["error_lines"].as_u64()), (Some("pass"), Some(0)));
    let verification = verified["verification_id"].as_str().unwrap().to_owned();

    // 7. The alert resolves; the human closes the investigation.
    let resolved =
        h.deliver_ok(notification("resolved", &[am_alert("resolved", "DiskFull", "web-1:9100", fingerprint)])).await;
    assert_eq!(resolved["resolved"], 1, "{resolved}");
    let closed = stdout(&cli(&h, &h.admin, &["--output", "json", "investigations", "close", &investigation], "").await);
    assert_eq!(closed["investigation"]["status"], "closed", "{closed}");

    // 8. The timeline holds every step, in the order they happened.
    let page = call_ok(&claude, "mttrly_get_server_timeline", json!({ "server_id": server, "limit": 500 })).await;
    assert!(page.get("next_cursor").is_none(), "one page holds the story");
    let mut timeline = items(&page);
    timeline.reverse();
    let alert_opened = one(&timeline, TimelineEvent::IncidentOpened, &alert);
    assert!(alert_opened.summary.contains("DiskFull"), "{alert_opened:?}");
    // The assistant reading the server's alerts is the first response to it.
    let read = audited(&timeline, "mttrly_get_alerts");
    assert!(matches!(&read.actor, Some(AuditActor::Assistant { client_name, .. }) if client_name == "claude-code"));
    let investigation_opened = one(&timeline, TimelineEvent::InvestigationOpened, &investigation);
    assert!(investigation_opened.summary.contains("disk full on web-1"));
    let grant = audited(&timeline, &bypass);
    assert_eq!(
        (grant.summary.as_str(), grant.status.as_deref()),
        (format!("grant_bypass on {bypass}").as_str(), Some("grant_bypass"))
    );
    assert!(matches!(&grant.actor, Some(AuditActor::Human { name, .. }) if name == "admin"), "{grant:?}");
    let under_bypass = format!("ran under bypass {bypass} granted by admin (investigation {investigation})");
    let fix_items: Vec<&TimelineItem> =
        fixes.iter().map(|f| one(&timeline, TimelineEvent::ActionRequested, f)).collect();
    for fix in &fix_items {
        assert!(fix.summary.contains(&under_bypass), "{fix:?}");
        assert_eq!(
            (fix.status.as_deref(), fix.investigation_id.as_deref()),
            (Some("succeeded"), Some(investigation.as_str()))
        );
        assert!(fix.finished_at.is_some());
        assert!(
            matches!(&fix.actor, Some(AuditActor::Assistant { client_name, .. }) if client_name == "claude-code"),
            "{fix:?}"
        );
    }
    let waiting = one(&timeline, TimelineEvent::ActionRequested, &fourth);
    assert_eq!(
        (waiting.status.as_deref(), waiting.investigation_id.as_deref(), waiting.finished_at),
        (Some("pending_approval"), Some(investigation.as_str()), None)
    );
    assert!(!waiting.summary.contains("ran under bypass"), "{waiting:?}");
    let deploy_started = one(&timeline, TimelineEvent::DeployStarted, &deploy);
    assert!(deploy_started.summary.contains("recorded by webhook"), "{deploy_started:?}");
    let deploy_finished = one(&timeline, TimelineEvent::DeployFinished, &deploy);
    assert_eq!(deploy_finished.status.as_deref(), Some("succeeded"));
    let verifier = audited(&timeline, "deploy.verified");
    assert_eq!(
        (verifier.summary.as_str(), verifier.status.as_deref()),
        ("deploy verifier: pass", Some("pass")),
        "the verdict is on the timeline, not only that the run happened"
    );
    let alert_resolved = one(&timeline, TimelineEvent::IncidentResolved, &alert);
    let investigation_closed = one(&timeline, TimelineEvent::InvestigationClosed, &investigation);
    let story = [
        alert_opened,
        read,
        investigation_opened,
        grant,
        fix_items[0],
        fix_items[1],
        fix_items[2],
        waiting,
        deploy_started,
        deploy_finished,
        verifier,
        alert_resolved,
        investigation_closed,
    ];
    assert!(story.windows(2).all(|w| w[0].at <= w[1].at), "the story's order is the timeline's: {story:#?}");

    // 9. The retrospective of the investigation: written from those records, its times naming
    // the moments they span.
    let args = json!({ "server_id": server, "investigation_id": investigation });
    let retro = call_ok(&claude, "mttrly_generate_retrospective", args.clone()).await;
    assert_eq!(retro["already_stored"], false);
    let title = retro["title"].as_str().unwrap();
    assert!(title.starts_with(&format!("Retrospective: {investigation} on web-1, ")), "{title}");
    assert!(!title.ends_with(" to open"), "the window closed with the investigation: {title}");
    let report = &retro["report"];
    let md = retro["markdown"].as_str().unwrap();
    let at = |item: &TimelineItem| item.at.to_string();
    let detect = measure(report, "time_to_detect");
    assert_eq!((detect["from"].clone(), detect["duration_ms"].clone()), (Value::Null, Value::Null), "{detect}");
    assert_eq!(moment(&detect["to"]), ("first alert opened", alert.as_str(), at(alert_opened).as_str()));
    let acknowledge = measure(report, "time_to_acknowledge");
    assert_eq!(moment(&acknowledge["to"]), ("first response", read.reference.as_str(), at(read).as_str()));
    let mitigate = measure(report, "time_to_mitigate");
    let (label, reference, mitigated_at) = moment(&mitigate["to"]);
    assert!(label.starts_with("action succeeded: ") && label.contains(&under_bypass), "{mitigate}");
    assert_eq!(
        (reference, mitigated_at),
        (fixes[0].as_str(), fix_items[0].finished_at.unwrap().to_string().as_str()),
        "mitigated when the first fix finished"
    );
    let resolve = measure(report, "time_to_resolve");
    assert_eq!(moment(&resolve["to"]), ("last alert resolved", alert.as_str(), at(alert_resolved).as_str()));
    for m in [acknowledge, mitigate, resolve] {
        assert_eq!(moment(&m["from"]), ("first alert opened", alert.as_str(), at(alert_opened).as_str()), "{m}");
        let span = m["to"]["at"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap().as_millisecond()
            - alert_opened.at.as_millisecond();
        assert_eq!(m["duration_ms"].as_i64(), Some(span), "{m}");
    }
    // The Markdown names the same two moments of each, and `n/a` where one is missing.
    let named = |label: &str, reference: &str, at: &str| format!("{label} — `{reference}` at {at}");
    let detected = named("first alert opened", &alert, &at(alert_opened));
    assert!(md.contains(&format!("| time_to_detect | n/a | {detected} | n/a |")), "{md}");
    let acknowledged = named("first response", &read.reference, &at(read));
    assert!(md.contains(&format!("| time_to_acknowledge | {detected} | {acknowledged} |")), "{md}");
    assert!(md.contains(&format!("| time_to_mitigate | {detected} | action succeeded: ")), "{md}");
    assert!(md.contains(&format!("— `{}` at {mitigated_at} |", fixes[0])), "{md}");
    let last_resolved = named("last alert resolved", &alert, &at(alert_resolved));
    assert!(md.contains(&format!("| time_to_resolve | {detected} | {last_resolved} |")), "{md}");
    // What was done and by whom, the verifier's verdict, and the runbook found by the symptoms.
    let actions = report["actions"].as_array().unwrap();
    let taken: Vec<(&str, &str)> =
        actions.iter().map(|a| (a["action_id"].as_str().unwrap(), a["status"].as_str().unwrap())).collect();
    let expected: Vec<(&str, &str)> =
        fixes.iter().map(|f| (f.as_str(), "succeeded")).chain([(fourth.as_str(), "pending_approval")]).collect();
    assert_eq!(taken, expected);
    assert!(actions.iter().all(|a| a["requested_by"].as_str().unwrap().starts_with("assistant claude-code for ")));
    assert_eq!(
        (report["verifier"]["verdict"].as_str(), report["verifier"]["verification_id"].as_str()),
        (Some("pass"), Some(verification.as_str()))
    );
    assert_eq!(report["verifier"]["deploy_id"], deploy.as_str());
    assert!(report["related"].as_array().unwrap().iter().any(|r| r["knowledge_id"] == runbook.as_str()), "{report}");
    assert_eq!((report["impact"]["incidents"].as_u64(), report["impact"]["still_open"].as_u64()), (Some(1), Some(0)));
    let summary = report["summary"].as_str().unwrap();
    for fact in ["1 alert(s) on web-1", "4 action(s) requested, 3 succeeded", "Latest deploy verifier verdict: pass."] {
        assert!(summary.contains(fact), "{fact:?} missing from {summary:?}");
    }
    for fact in
        [bypass.as_str(), fourth.as_str(), deploy.as_str(), "**pass**", runbook.as_str(), "To be filled by a human."]
    {
        assert!(md.contains(fact), "{fact} missing from:\n{md}");
    }
    // Its timeline is the server's, from the alert to the close.
    let listed: Vec<TimelineItem> = serde_json::from_value(report["timeline"].clone()).unwrap();
    for item in story {
        assert!(listed.contains(item), "{item:?} missing from the retrospective");
    }
    // The window closed: the same records, the same bytes, the same stored entry.
    let again = call_ok(&claude, "mttrly_generate_retrospective", args).await;
    assert_eq!(
        (again["content_sha256"].clone(), again["knowledge_id"].clone(), again["already_stored"].clone()),
        (retro["content_sha256"].clone(), retro["knowledge_id"].clone(), json!(true))
    );

    // 10. A later search for the incident's words finds the retrospective, with its provenance;
    // the human reads the same bytes with the CLI.
    let postmortem = retro["knowledge_id"].as_str().unwrap();
    let found =
        call_ok(&claude, "mttrly_search_knowledge", json!({ "query": "DiskFull bypass", "server_id": server })).await;
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{found}");
    let hit = &results[0];
    assert_eq!(
        (hit["knowledge_id"].as_str(), hit["kind"].as_str(), hit["server_id"].as_str(), hit["same_server"].as_bool()),
        (Some(postmortem), Some("postmortem"), Some(server.as_str()), Some(true)),
        "{hit}"
    );
    assert_eq!(hit["provenance"]["source"], "retrospective", "{hit}");
    assert_eq!(
        (hit["provenance"]["author"]["type"].as_str(), hit["provenance"]["author"]["client_name"].as_str()),
        (Some("assistant"), Some("claude-code")),
        "{hit}"
    );
    let (ok, shown, err) = kcli(&h, &h.admin, &["knowledge", "show", postmortem], "").await;
    assert!(ok, "{err}");
    assert_eq!((shown["content_sha256"].clone(), shown["body"].as_str()), (retro["content_sha256"].clone(), Some(md)));
    // The assistant's session ends first: central's shutdown would wait for its open stream.
    claude.cancel().await.unwrap();
    h.central.shutdown().await;
}
