use mttrly_core::audit::AuditActor;
use mttrly_core::ids::{AssistantSessionId, KnowledgeId, ServerId, UserId};
use mttrly_core::tools::knowledge::KnowledgeKind;
use mttrly_core::tools::timeline::{RelatedKnowledge, TimelineEvent, TimelineItem, VerifierState};

use super::{Inputs, TEMPLATE_VERSION, TO_BE_FILLED, write};

const T0: i64 = 1_780_000_000_000;

fn item(event: TimelineEvent, at: i64, reference: &str, summary: &str) -> TimelineItem {
    TimelineItem {
        at: jiff::Timestamp::from_millisecond(at).unwrap(),
        source: event.source(),
        event,
        reference: reference.to_owned(),
        summary: summary.to_owned(),
        actor: None,
        status: None,
        subject: None,
        finished_at: None,
        investigation_id: None,
        post: None,
        server_id: None,
    }
}

fn ann() -> AuditActor {
    AuditActor::Human { user_id: UserId::parse("usr_0000000000000000000000000000000a").unwrap(), name: "ann".into() }
}

fn assistant() -> AuditActor {
    AuditActor::Assistant {
        session_id: AssistantSessionId::parse("ses_0000000000000000000000000000000b").unwrap(),
        client_name: "claude-code".into(),
        on_behalf_of: UserId::parse("usr_0000000000000000000000000000000a").unwrap(),
    }
}

fn story() -> Inputs {
    let action = "act_00000000000000000000000000000001";
    let mut deploy = item(
        TimelineEvent::DeployStarted,
        T0,
        "dep_00000000000000000000000000000001",
        "deploy of api 1.4.2 started (recorded by webhook)",
    );
    deploy.status = Some("started".into());
    let mut opened = item(
        TimelineEvent::IncidentOpened,
        T0 + 120_000,
        "alt_00000000000000000000000000000001",
        "critical alert opened: 5xx rate 12% (http_errors on api)",
    );
    opened.status = Some("critical, resolved".into());
    let mut call = item(TimelineEvent::Audited, T0 + 180_000, "audit:41", "called mttrly_get_server_status");
    call.actor = Some(assistant());
    call.status = Some("ok".into());
    let mut requested = item(
        TimelineEvent::ActionRequested,
        T0 + 240_000,
        action,
        "Run `systemctl restart api` on web-1 (production) | needs approval",
    );
    requested.actor = Some(assistant());
    requested.status = Some("succeeded".into());
    requested.finished_at = Some(jiff::Timestamp::from_millisecond(T0 + 300_000).unwrap());
    let mut approved = item(TimelineEvent::Audited, T0 + 270_000, "audit:44", &format!("approve on {action}"));
    approved.actor = Some(ann());
    approved.status = Some("approve".into());
    approved.subject = Some(action.into());
    let mut resolved = item(
        TimelineEvent::IncidentResolved,
        T0 + 420_000,
        "alt_00000000000000000000000000000001",
        "alert resolved: 5xx rate 12% (http_errors on api)",
    );
    resolved.status = Some("critical, resolved".into());
    Inputs {
        title: "5xx on api after 1.4.2".into(),
        server_id: ServerId::parse("srv_00000000000000000000000000000001").unwrap(),
        server_name: "web-1".into(),
        window_from_ms: T0 - 3_600_000,
        window_to_ms: T0 + 3_600_000,
        timeline: vec![deploy, opened, call, requested, approved, resolved],
        omitted: None,
        assistant_title: None,
        verifier: Some(VerifierState {
            verification_id: "ver_00000000000000000000000000000001".into(),
            deploy_id: Some("dep_00000000000000000000000000000001".into()),
            verdict: "fail".into(),
            checked_at: jiff::Timestamp::from_millisecond(T0 + 200_000).unwrap(),
        }),
        related: vec![
            RelatedKnowledge {
                knowledge_id: KnowledgeId::parse("kno_00000000000000000000000000000002").unwrap(),
                kind: KnowledgeKind::Recipe,
                title: "Restart api when 5xx spike".into(),
            },
            RelatedKnowledge {
                knowledge_id: KnowledgeId::parse("kno_00000000000000000000000000000001").unwrap(),
                kind: KnowledgeKind::Note,
                title: "api 1.4 needs warm caches".into(),
            },
        ],
        thread: None,
        posts: Vec::new(),
        other_servers: Vec::new(),
        left_out: Vec::new(),
        template_version: TEMPLATE_VERSION,
    }
}

#[test]
fn the_same_records_in_any_order_give_the_same_hash() {
    let first = write(&story());
    for rotation in 1..6 {
        let mut shuffled = story();
        shuffled.timeline.rotate_left(rotation);
        shuffled.timeline.swap(0, 5 - rotation.min(5));
        shuffled.related.reverse();
        let again = write(&shuffled);
        assert_eq!(again.content_sha256, first.content_sha256, "rotation {rotation}");
        assert_eq!(again.report, first.report);
    }
    // And a different record gives a different hash.
    let mut changed = story();
    changed.timeline[0].summary.push('!');
    assert_ne!(write(&changed).content_sha256, first.content_sha256);
}

#[test]
fn every_measure_names_its_two_moments() {
    let written = write(&story());
    let by_name = |n: &str| written.report.measures.iter().find(|m| m.name == n).cloned().unwrap();
    let ttd = by_name("time_to_detect");
    assert_eq!(ttd.from.as_ref().unwrap().reference, "dep_00000000000000000000000000000001");
    assert_eq!(ttd.to.as_ref().unwrap().reference, "alt_00000000000000000000000000000001");
    assert_eq!(ttd.duration_ms, Some(120_000));
    assert_eq!(by_name("time_to_acknowledge").duration_ms, Some(60_000), "the assistant's first call");
    assert_eq!(by_name("time_to_mitigate").duration_ms, Some(180_000), "the restart finished");
    assert_eq!(by_name("time_to_resolve").duration_ms, Some(300_000));
    assert_eq!(written.report.actions.len(), 1);
    assert_eq!(written.report.actions[0].decided_by, ["ann (approve)"]);
    assert!(written.markdown.contains("| time_to_detect | deploy started (suspected start) — `dep_"));
    assert!(written.markdown.contains("\\| needs approval"), "a pipe in a summary cannot break the table");
}

#[test]
fn a_missing_moment_is_na_never_zero() {
    let mut open = story();
    open.timeline.retain(|i| i.event != TimelineEvent::IncidentResolved && i.event != TimelineEvent::DeployStarted);
    open.verifier = None;
    let written = write(&open);
    for name in ["time_to_detect", "time_to_resolve"] {
        let m = written.report.measures.iter().find(|m| m.name == name).unwrap();
        assert_eq!(m.duration_ms, None, "{name}");
    }
    assert!(written.markdown.contains("| time_to_detect | n/a | first alert opened"));
    assert!(written.markdown.contains("| time_to_resolve | first alert opened"));
    assert!(!written.markdown.contains("| 0 ms |"));
    assert!(written.markdown.contains("n/a: no verifier run"));
    assert_eq!(written.report.impact.still_open, 1);
    let nothing = write(&Inputs { timeline: vec![], related: vec![], verifier: None, ..story() });
    assert!(nothing.report.measures.iter().all(|m| m.duration_ms.is_none()));
}

#[test]
fn what_only_people_know_is_left_to_them_and_secrets_are_redacted() {
    let mut leaky = story();
    leaky.timeline[2].summary = "called with AKIAIOSFODNN7EXAMPLE".into();
    let written = write(&leaky);
    assert_eq!(written.report.went_well, TO_BE_FILLED);
    assert_eq!(written.report.follow_ups, TO_BE_FILLED);
    assert_eq!(written.markdown.matches(TO_BE_FILLED).count(), 5, "{}", written.markdown);
    assert!(!written.markdown.contains("AKIAIOSFODNN7EXAMPLE"));
}

#[test]
fn snapshot_of_one_retrospective() {
    let written = write(&story());
    insta::assert_snapshot!("retrospective_markdown", written.markdown);
    insta::assert_snapshot!("retrospective_hash", written.content_sha256);
}

mod thread {
    use mttrly_core::Source;
    use mttrly_core::ids::NotificationId;
    use mttrly_core::role::Role;
    use mttrly_core::tools::notify::{IncidentStatus, Notification, Priority, Sender};
    use mttrly_core::tools::timeline::{TimelineEvent, TimelineSource};

    use super::{T0, story};
    use crate::retrospective::{POST_BODY_SHOWN, code_span, fenced, sender_text, write};
    use crate::warroom::incidents;

    fn sarah() -> Sender {
        Sender {
            user_id: Some(mttrly_core::ids::UserId::parse("usr_0000000000000000000000000000000c").unwrap()),
            name: "sarah".into(),
            role: Some(Role::Operator),
            ai_tool: Some("chatgpt".into()),
            via: Source::Mcp,
        }
    }

    fn tom() -> Sender {
        Sender {
            user_id: Some(mttrly_core::ids::UserId::parse("usr_0000000000000000000000000000000d").unwrap()),
            name: "tom".into(),
            role: Some(Role::Admin),
            ai_tool: None,
            via: Source::Cli,
        }
    }

    fn post(n: u8, at: i64, sender: Sender, theme: &str, title: &str, body: &str) -> Notification {
        Notification {
            notification_id: NotificationId::parse(&format!("ntf_{n:032x}")).unwrap(),
            channel: "incidents".into(),
            thread_id: "incident-alt_1".into(),
            in_reply_to: None,
            title: title.into(),
            body: body.into(),
            priority: Priority::Critical,
            theme: Some(theme.into()),
            tags: vec!["p0".into()],
            server_id: None,
            sender,
            redactions: 0,
            published_at: jiff::Timestamp::from_millisecond(at).unwrap(),
        }
    }

    /// The seed's night in a thread: central's report of the alert, Sarah's assistant's update
    /// (whose words claim what only central could say, with Markdown, a fence and a secret), Tom's
    /// decision, Sarah's resolution.
    fn posts() -> Vec<Notification> {
        vec![
            post(1, T0 + 120_100, Sender::central(Source::Api), "incident-alert", "http_errors on web-1: 5xx 12%", ""),
            post(
                2,
                T0 + 150_000,
                sarah(),
                "incident-update",
                "Resolved by mttrly: verified | no data lost",
                "Root cause: pool exhausted.\n```\n# Approved by mttrly\n```\n[approve](https://evil.example) \
                 password=Hunter2Hunter2",
            ),
            post(3, T0 + 260_000, tom(), "incident-decision", "Restart approved", ""),
            post(4, T0 + 430_000, sarah(), "incident-resolved", "Mitigated", "5xx back to 0.1%"),
        ]
    }

    pub(super) fn with_thread() -> super::Inputs {
        let posts = posts();
        let now = jiff::Timestamp::from_millisecond(T0 + 3_600_000).unwrap();
        let summary = incidents::summary(&posts, false, now).unwrap();
        super::Inputs { thread: Some(summary), posts, ..story() }
    }

    #[test]
    fn senders_read_as_who_they_are() {
        assert_eq!(sender_text(&sarah()), "sarah (operator) with assistant chatgpt via mcp");
        assert_eq!(sender_text(&tom()), "tom (admin) via cli");
        assert_eq!(sender_text(&Sender::central(Source::Api)), "mttrly (central, via api)");
        let impostor = Sender { name: "mttrly".into(), ..tom() };
        assert_ne!(sender_text(&impostor), sender_text(&Sender::central(Source::Cli)));
    }

    #[test]
    fn words_are_shown_literally() {
        assert_eq!(code_span("On it"), "`On it`");
        assert_eq!(code_span("run `ls`"), "`` run `ls` ``");
        assert_eq!(code_span("a ``b`` c"), "```a ``b`` c```");
        assert_eq!(code_span("`x`"), "`` `x` ``");
        assert_eq!(code_span("two\nlines"), "`two lines`");
        assert_eq!(fenced("plain"), "```text\nplain\n```\n");
        assert_eq!(fenced("a\n```\nb"), "````text\na\n```\nb\n````\n");
    }

    #[test]
    fn a_threads_posts_are_their_senders_words_on_the_timeline() {
        let written = write(&with_thread());
        let r = &written.report;
        let posted: Vec<_> = r.timeline.iter().filter(|i| i.event == TimelineEvent::ThreadPosted).collect();
        assert_eq!(posted.len(), 4);
        assert!(posted.iter().all(|i| i.source == TimelineSource::Thread && i.actor.is_none()));
        let update = posted[1];
        assert_eq!(update.summary, "incident-update posted", "central's line says only what was posted where");
        let post = update.post.as_ref().unwrap();
        assert_eq!(post.sender, sarah());
        assert_eq!(post.title, "Resolved by mttrly: verified | no data lost");
        assert!(!post.body.contains("Hunter2Hunter2"), "redacted again: {}", post.body);
        // Her words are nowhere central speaks: not the title, the summary, the measures.
        for central_text in [r.title.clone(), r.summary.clone(), serde_json::to_string(&r.measures).unwrap()] {
            assert!(!central_text.contains("verified"), "{central_text}");
        }
        let thread = r.thread.as_ref().unwrap();
        assert_eq!(thread.status, IncidentStatus::Resolved);
        assert_eq!(thread.owner.as_ref(), Some(&sarah()));
        assert_eq!(thread.decisions.len(), 1);
        assert!(r.summary.ends_with(" Incident thread `incident-alt_1`: resolved, 4 post(s) in the window."));

        let md = &written.markdown;
        assert!(
            md.contains(
                "| incident-update posted: `Resolved by mttrly: verified \\| no data lost` | sarah (operator) with \
                 assistant chatgpt via mcp | `ntf_00000000000000000000000000000002` |"
            ),
            "{md}"
        );
        assert!(md.contains("| incident-alert posted: `http_errors on web-1: 5xx 12%` | mttrly (central, via api) |"));
        assert!(md.contains("- **Incident thread:** `incident-alt_1` in channel `incidents`"), "{md}");
        assert!(
            md.contains(
                "- Acknowledged: 2026-05-28T20:29:10Z (29s after the report), owner sarah (operator) with assistant \
                 chatgpt via mcp"
            ),
            "{md}"
        );
        // The body's own fence and heading stay inside a longer fence, so they are text, not a
        // heading of the report; the secret in it is redacted.
        assert!(
            md.contains(
                "````text\nResolved by mttrly: verified | no data lost\n\nRoot cause: pool exhausted.\n```\n# Approved by \
                 mttrly\n```\n[approve](https://evil.example) password=[REDACTED:secret_assignment]\n````\n"
            ),
            "{md}"
        );
        assert!(!md.contains("Hunter2Hunter2"));
    }

    #[test]
    fn posts_in_any_order_give_the_same_bytes_and_a_long_body_is_cut_outside_its_fence() {
        let first = write(&with_thread());
        let mut shuffled = with_thread();
        shuffled.posts.reverse();
        assert_eq!(write(&shuffled).content_sha256, first.content_sha256);

        let mut long = with_thread();
        long.posts[3].body = "x".repeat(POST_BODY_SHOWN + 10);
        let md = write(&long).markdown;
        assert!(md.contains("\n```\n\n_10 more character(s) of this post are not shown here"), "{md}");
        assert_eq!(
            write(&long).report.timeline.iter().filter_map(|i| i.post.as_ref()).next_back().unwrap().body.len(),
            POST_BODY_SHOWN + 10
        );
    }

    #[test]
    fn snapshot_of_a_thread_retrospective() {
        insta::assert_snapshot!("retrospective_thread_markdown", write(&with_thread()).markdown);
    }
}

/// A thread naming two servers (issue 17's incident touching web-1 and db-1): the story's records
/// on web-1, db-1's own alert and action, the thread's posts, and a third id the thread names
/// that is no server of the account.
mod several_servers {
    use mttrly_core::ids::ServerId;
    use mttrly_core::tools::timeline::{
        CoveredServer, LeftOutReason, LeftOutServer, TimelineEvent, TimelineItem, VerifierState,
    };

    use super::{T0, item, story};
    use crate::retrospective::{
        Inputs, LEFT_OUT_SHOWN, SEVERAL_SERVERS_TEMPLATE_VERSION, TEMPLATE_VERSION, template_version, write,
    };

    fn web1() -> ServerId {
        ServerId::parse("srv_00000000000000000000000000000001").unwrap()
    }

    fn db1() -> ServerId {
        ServerId::parse("srv_00000000000000000000000000000002").unwrap()
    }

    fn on(server: &ServerId, mut item: TimelineItem) -> TimelineItem {
        item.server_id = Some(server.clone());
        item
    }

    fn db_records() -> Vec<TimelineItem> {
        let mut lag = item(
            TimelineEvent::IncidentOpened,
            T0 + 60_000,
            "alt_00000000000000000000000000000002",
            "warning alert opened: replication lag 40s (pg_lag on postgres)",
        );
        lag.status = Some("warning, open".into());
        let mut restart = item(
            TimelineEvent::ActionRequested,
            T0 + 250_000,
            "act_00000000000000000000000000000002",
            "Run `systemctl restart pgbouncer` on db-1 (production) | needs approval",
        );
        restart.actor = Some(super::ann());
        restart.status = Some("pending_approval".into());
        vec![on(&db1(), lag), on(&db1(), restart)]
    }

    fn two_servers() -> Inputs {
        let mut inputs = super::thread::with_thread();
        inputs.timeline = inputs.timeline.into_iter().map(|i| on(&web1(), i)).collect();
        inputs.timeline.extend(db_records());
        inputs.other_servers = vec![CoveredServer {
            server_id: db1(),
            server_name: "db-1".into(),
            verifier: Some(VerifierState {
                verification_id: "ver_00000000000000000000000000000002".into(),
                deploy_id: None,
                verdict: "pass".into(),
                checked_at: jiff::Timestamp::from_millisecond(T0 - 600_000).unwrap(),
            }),
        }];
        inputs.left_out = vec![LeftOutServer {
            server_id: ServerId::parse("srv_0000000000000000000000000000000f").unwrap(),
            server_name: None,
            reason: LeftOutReason::NotFound,
        }];
        inputs.template_version = template_version(2, 1);
        inputs.title = "Retrospective: thread:incident-alt_1 on web-1, db-1".into();
        inputs
    }

    #[test]
    fn the_version_is_3_only_for_what_2_cannot_lay_out() {
        assert_eq!(template_version(1, 0), TEMPLATE_VERSION);
        assert_eq!(template_version(2, 0), SEVERAL_SERVERS_TEMPLATE_VERSION);
        assert_eq!(template_version(1, 1), SEVERAL_SERVERS_TEMPLATE_VERSION);
        assert_ne!(TEMPLATE_VERSION, SEVERAL_SERVERS_TEMPLATE_VERSION);
    }

    #[test]
    fn one_server_keeps_its_bytes_whatever_its_items_carry() {
        // The tools layer now names each item's server; a one-server document must not change.
        let before = write(&super::thread::with_thread());
        let mut tagged = super::thread::with_thread();
        tagged.timeline = tagged.timeline.into_iter().map(|i| on(&web1(), i)).collect();
        let after = write(&tagged);
        assert_eq!(after.markdown, before.markdown);
        assert_eq!(after.content_sha256, before.content_sha256);
        assert_eq!(after.report.servers.len(), 1);
        assert_eq!(after.report.servers[0].server_id, web1());
        assert_eq!(after.report.servers[0].verifier, after.report.verifier);
        assert!(after.report.servers_left_out.is_empty());
        let plain = write(&story());
        assert!(!plain.markdown.contains("Server |") && !plain.markdown.contains("Servers"), "{}", plain.markdown);
    }

    #[test]
    fn every_item_names_its_server_and_each_server_has_its_verifier() {
        let written = write(&two_servers());
        let r = &written.report;
        assert_eq!(r.template_version, SEVERAL_SERVERS_TEMPLATE_VERSION);
        assert_eq!(r.server_id, web1(), "the first server stays the report's server");
        let covered: Vec<(&str, Option<&str>)> = r
            .servers
            .iter()
            .map(|s| (s.server_name.as_str(), s.verifier.as_ref().map(|v| v.verdict.as_str())))
            .collect();
        assert_eq!(covered, [("web-1", Some("fail")), ("db-1", Some("pass"))]);
        assert_eq!(r.servers_left_out.len(), 1);
        assert_eq!(r.impact.incidents, 2, "both servers' alerts");
        assert_eq!(r.impact.still_open, 1, "db-1's lag is still open");
        let db_action = r.actions.iter().find(|a| a.action_id == "act_00000000000000000000000000000002").unwrap();
        assert_eq!(db_action.server_id, Some(db1()));
        let web_action = r.actions.iter().find(|a| a.action_id == "act_00000000000000000000000000000001").unwrap();
        assert_eq!(web_action.server_id, Some(web1()));
        // The first alert was db-1's: its moment says so.
        let ttd = r.measures.iter().find(|m| m.name == "time_to_acknowledge").unwrap();
        assert_eq!(ttd.from.as_ref().map(|m| m.label.as_str()), Some("first alert opened on db-1"));
        assert!(r.summary.starts_with("2 alert(s) on web-1, db-1 between "), "{}", r.summary);
        assert!(r.summary.contains("(pg_lag on postgres) (on db-1)"), "{}", r.summary);
        assert!(r.summary.contains("verdict per server: web-1 fail, db-1 pass."), "{}", r.summary);

        let md = &written.markdown;
        assert!(md.contains("_Retrospective template v3, written by mttrly from the records of its 2 servers"), "{md}");
        assert!(
            md.contains(
                "- **Servers:** web-1 (`srv_00000000000000000000000000000001`), db-1 \
                 (`srv_00000000000000000000000000000002`)"
            ),
            "{md}"
        );
        assert!(md.contains("  - `srv_0000000000000000000000000000000f`: not a server of this account"), "{md}");
        // Every timeline row names its server: db-1's action is never web-1's.
        assert!(
            md.contains(
                "| db-1 | action | Run `systemctl restart pgbouncer` on db-1 (production) \\| needs approval | ann | \
                 `act_00000000000000000000000000000002` |"
            ),
            "{md}"
        );
        assert!(md.contains("| web-1 | action | Run `systemctl restart api`"), "{md}");
        assert!(md.contains("| — | thread | incident-alert posted:"), "a post is no server's record: {md}");
        let rows: Vec<&str> = md
            .split("## Timeline\n")
            .nth(1)
            .and_then(|t| t.trim_start().split("\n\n").next())
            .map(|table| table.lines().skip(2).collect())
            .unwrap_or_default();
        assert_eq!(rows.len(), r.timeline.len(), "{md}");
        for row in rows {
            let server = row.split(" | ").nth(1).unwrap_or_default();
            assert!(["web-1", "db-1", "—"].contains(&server), "{row}");
        }
        assert!(md.contains("| `act_00000000000000000000000000000002` | db-1 | Run `systemctl restart pgbouncer`"));
        assert!(md.contains("- db-1 (`srv_00000000000000000000000000000002`): Latest verifier run `ver_"), "{md}");
        // Posts are still their senders' words, redacted, for every server.
        assert!(!md.contains("Hunter2Hunter2"));
    }

    #[test]
    fn several_servers_in_any_order_give_the_same_bytes() {
        let first = write(&two_servers());
        let mut shuffled = two_servers();
        shuffled.timeline.reverse();
        shuffled.posts.reverse();
        assert_eq!(write(&shuffled).content_sha256, first.content_sha256);
        // A repeated server is covered once.
        let mut repeated = two_servers();
        repeated.other_servers.push(repeated.other_servers[0].clone());
        assert_eq!(write(&repeated).content_sha256, first.content_sha256);
    }

    #[test]
    fn a_long_list_of_left_out_servers_is_cut_and_counted() {
        let mut crowded = two_servers();
        crowded.left_out = (0..LEFT_OUT_SHOWN + 4)
            .map(|n| LeftOutServer {
                server_id: ServerId::parse(&format!("srv_{:032x}", n + 100)).unwrap(),
                server_name: Some(format!("app-{n}")),
                reason: LeftOutReason::OverLimit,
            })
            .collect();
        let written = write(&crowded);
        assert_eq!(written.report.servers_left_out.len(), LEFT_OUT_SHOWN + 4, "the report has them all");
        let md = &written.markdown;
        assert!(md.contains("  - app-0 (`srv_"), "{md}");
        assert!(md.contains(&format!("app-{}", LEFT_OUT_SHOWN - 1)), "{md}");
        assert!(!md.contains(&format!("app-{LEFT_OUT_SHOWN} ")), "{md}");
        assert!(md.contains("  - and 4 more (the report's `servers_left_out` lists them all)"), "{md}");
        assert!(md.contains("more servers than one retrospective covers (8, the first named)"), "{md}");
    }

    #[test]
    fn snapshot_of_a_two_server_thread_retrospective() {
        insta::assert_snapshot!("retrospective_two_server_thread_markdown", write(&two_servers()).markdown);
    }
}
