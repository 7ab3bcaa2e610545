//! `mttrly_get_server_timeline` and `mttrly_generate_retrospective`.
//!
//! The retrospective covers one incident window: an incident thread's when `thread_id` is given
//! (the thread's first notification until its resolution, `incident-resolved` as the war room's
//! rules read it: `thread_window`), else the investigation's (from an hour before it, or its
//! alert, opened until it closed), else the server's latest alert's (from an hour before it
//! opened until it resolved); an open one runs to now. The records read start an hour before the
//! incident in every case, so the alert that opened a thread and a deploy shortly before it are
//! in it. A closed window gives the same records every time, so regenerating gives the same
//! content hash and the stored postmortem is reused.
//!
//! A thread's retrospective covers every server its notifications name, in the order they are
//! first named, at most `MAX_RETROSPECTIVE_SERVERS`, each a live server of the caller's account
//! (which servers, and which are left out and why: `thread_window`). Each covered server's
//! records within the window (`crate::timeline::window`, per server) merge into one timeline in
//! time order, each item naming its server; each has its own verifier run; related knowledge is
//! searched for each and merged without repeats, at most [`MAX_RELATED`]. A thread naming one
//! server gives the document it always gave, byte for byte. `server_id` was the tool's one
//! required argument; it stays the same field, optional only when `thread_id` is given: named
//! with a thread it narrows the retrospective to that one of the thread's servers (another is
//! refused, listing the thread's servers), and with no thread a call without it is refused as it
//! always was. Another account's thread is not found, like an unknown one.
//!
//! The postmortem is stored under its first server with the window's key
//! (`retrospective:SERVER:thread:THREAD`, what a one-server thread always used), so an open
//! incident regenerated is rewritten in place and a closed one is reused. A document narrowed by
//! `server_id` to one of several servers is another document, kept as its own entry
//! (`…#only`; `#` is in no thread id, so no other thread's key can meet it).

use mttrly_core::ids::ServerId;
use mttrly_core::redactor;
use mttrly_core::tools::notify::{IncidentSummary, Notification};
use mttrly_core::tools::timeline::{
    CoveredServer, GenerateRetrospectiveInput, GetServerTimelineInput, LeftOutServer, OmittedItems, RelatedKnowledge,
    Retrospective, ServerTimeline, TimelineItem, VerifierState,
};
use mttrly_core::{ErrorCode, MttrlyError, Source};

use super::thread_window::thread_window;
use crate::db::accounts::TokenOwner;
use crate::db::servers::ServerRow;
use crate::db::{now_ms, timestamp};
use crate::retrospective::{Inputs, template_version};
use crate::state::Central;

/// How far before the incident a window starts: a deploy shortly before an alert is its
/// suspected start.
pub(super) const LEAD_MS: i64 = 60 * 60 * 1000;

/// The most related knowledge entries a retrospective lists. Each covered server's search gives
/// up to five (its own entries first); they are taken in turns, so every server's best entries
/// come before any server's fifth, and ten keeps a several-server document's list short. One
/// server's five are all kept, as always.
pub(super) const MAX_RELATED: usize = 10;

/// The longest list of server names a title carries; a longer one is the first and a count, so
/// the window's times stay inside the title's 200 characters.
const TITLE_NAMES: usize = 100;

pub(crate) async fn timeline(
    central: &Central,
    caller: &TokenOwner,
    input: GetServerTimelineInput,
) -> Result<ServerTimeline, MttrlyError> {
    crate::timeline::page(central, caller, &input).await
}

/// The window, the title central gives it, and the text to find related knowledge with.
pub(super) struct Window {
    pub(super) from_ms: i64,
    pub(super) to_ms: i64,
    /// What the window is of: `inv_…`, `alt_…` or `thread:…`. With the server it keys the stored
    /// entry, so regenerating the same window (open or closed) updates one postmortem.
    pub(super) reference: String,
    /// Whether the incident is still open (the window runs to now).
    pub(super) open: bool,
    /// Text central wrote (an alert's summary): the search terms for related knowledge.
    pub(super) symptoms: String,
    /// An assistant's words for it (an investigation's title), kept labelled.
    pub(super) assistant_words: Option<String>,
    /// The incident thread it is of, when it is one's.
    pub(super) thread: Option<ThreadPart>,
}

/// What a thread brings to its retrospective.
pub(super) struct ThreadPart {
    /// The war room's reading of the whole thread (as read).
    pub(super) summary: IncidentSummary,
    /// Its posts up to the window's end, oldest first.
    pub(super) posts: Vec<Notification>,
}

/// What a retrospective covers: its servers (the first keys the stored entry) and its window.
pub(super) struct Scope {
    /// The first server covered.
    pub(super) first: ServerRow,
    /// The other servers covered, in the thread's order.
    pub(super) others: Vec<ServerRow>,
    /// Servers the thread names that are not covered, and why.
    pub(super) left_out: Vec<LeftOutServer>,
    /// Whether `server_id` chose one of the thread's several servers.
    pub(super) narrowed: bool,
    /// The window.
    pub(super) window: Window,
}

/// `server_id` absent without a thread: refused as the parser refused it when it was required
/// (same field and reason), saying what else would do.
fn missing_server() -> MttrlyError {
    MttrlyError::new(
        ErrorCode::ValidationError,
        "invalid argument `server_id`: missing field `server_id` (name the server, or give thread_id to write up an \
         incident thread)",
    )
    .with_detail("field", "server_id")
    .with_detail("reason", "missing field `server_id`")
}

async fn window(
    central: &Central,
    caller: &TokenOwner,
    server: &ServerId,
    input: &GenerateRetrospectiveInput,
    now: i64,
) -> Result<Window, MttrlyError> {
    let timeline = central.db.account(&caller.account_id).timeline();
    let wanted = input.investigation_id.as_ref().map(|i| i.as_str().to_owned());
    if let Some(inv) = timeline.investigation(server, wanted.as_deref()).await? {
        let start = inv.alert_opened_at.map_or(inv.opened_at, |a| a.min(inv.opened_at));
        return Ok(Window {
            from_ms: start.saturating_sub(LEAD_MS),
            to_ms: inv.closed_at.unwrap_or(now).min(now),
            reference: inv.id.clone(),
            open: inv.closed_at.is_none(),
            symptoms: inv.title.clone(),
            assistant_words: Some(inv.title),
            thread: None,
        });
    }
    if let Some(id) = &input.investigation_id {
        // Another tenant's investigation, or another server's, is not found either.
        return Err(MttrlyError::new(ErrorCode::NotFound, format!("investigation {id} not found on this server"))
            .with_detail("investigation_id", id.as_str()));
    }
    let Some(alert) = timeline.latest_alert(server).await? else {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            "nothing to write up: this server has no investigation and no alert",
        )
        .with_detail("server_id", server.as_str()));
    };
    Ok(Window {
        from_ms: alert.opened_at.saturating_sub(LEAD_MS),
        to_ms: alert.resolved_at.unwrap_or(now).min(now),
        reference: alert.id,
        open: alert.resolved_at.is_none(),
        symptoms: alert.summary,
        assistant_words: None,
        thread: None,
    })
}

/// What the covered servers are called in a title: every name while they fit in
/// [`TITLE_NAMES`] characters, else the first and how many more.
fn servers_named(servers: &[&ServerRow]) -> String {
    let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    let all = names.join(", ");
    match names.split_first() {
        Some((first, rest)) if all.chars().count() > TITLE_NAMES => format!("{first} and {} more servers", rest.len()),
        _ => all,
    }
}

/// The stored title: central's words only (the servers, what the window is of, its start, and
/// its end or that it is open), never an assistant's.
fn title_of(servers: &[&ServerRow], window: &Window) -> String {
    let end = if window.open { "open".to_owned() } else { crate::db::timestamp(window.to_ms).to_string() };
    let title = format!(
        "Retrospective: {} on {}, {} to {}",
        window.reference,
        mttrly_core::display::text(&servers_named(servers)),
        crate::db::timestamp(window.from_ms),
        end
    );
    let short: String = title.chars().take(200).collect();
    redactor::redact(&short).text.into_owned()
}

/// An assistant's words, bounded to a title's length and redacted.
fn words_of(text: &str) -> String {
    let short: String = text.chars().take(200).collect();
    redactor::redact(&short).text.into_owned()
}

/// The key of the stored entry of `scope`'s document (see the module's doc).
fn window_key(scope: &Scope) -> String {
    let key = format!("retrospective:{}:{}", scope.first.id, scope.window.reference);
    if scope.narrowed { format!("{key}#only") } else { key }
}

/// Two servers' routine items left out, as one: every count, the widest span, a lower bound if
/// either is.
fn merge_omitted(a: Option<OmittedItems>, b: Option<OmittedItems>) -> Option<OmittedItems> {
    match (a, b) {
        (Some(a), Some(b)) => Some(OmittedItems {
            count: a.count.saturating_add(b.count),
            from: a.from.min(b.from),
            to: a.to.max(b.to),
            at_least: a.at_least || b.at_least,
        }),
        (a, b) => a.or(b),
    }
}

/// Whether `entry` is a retrospective of this very window (central's title names the window's
/// reference first: `Retrospective: thread:…`, under any server, whole or narrowed). It is the
/// document itself, not knowledge related to it; and one stored while the incident was open
/// would be listed under its old title, then under its rewritten one, so the closed window's
/// bytes would change once more after the resolution and the stored entry not be reused.
fn own_retrospective(entry: &RelatedKnowledge, window: &Window) -> bool {
    entry.kind == mttrly_core::tools::knowledge::KnowledgeKind::Postmortem
        && entry.title.starts_with(&format!("Retrospective: {} on ", window.reference))
}

/// Each server's related entries (best first), taken in turns without repeats, at most
/// [`MAX_RELATED`].
fn merge_related(per_server: &[Vec<RelatedKnowledge>]) -> Vec<RelatedKnowledge> {
    let mut merged: Vec<RelatedKnowledge> = Vec::new();
    let deepest = per_server.iter().map(Vec::len).max().unwrap_or(0);
    for rank in 0..deepest {
        for entry in per_server.iter().filter_map(|list| list.get(rank)) {
            if merged.len() < MAX_RELATED && !merged.iter().any(|k| k.knowledge_id == entry.knowledge_id) {
                merged.push(entry.clone());
            }
        }
    }
    merged
}

/// What the covered servers' records bring to a retrospective.
struct Records {
    /// Every covered server's items of the window, each naming its server.
    timeline: Vec<TimelineItem>,
    /// The routine items left out, across the servers.
    omitted: Option<OmittedItems>,
    /// Each covered server with its verifier run, in order.
    servers: Vec<CoveredServer>,
    /// Related knowledge, merged.
    related: Vec<RelatedKnowledge>,
}

/// Reads each of `servers`' records of `window` (all checked as the caller's); with several,
/// each item names its server.
async fn records(
    central: &Central,
    caller: &TokenOwner,
    servers: &[&ServerRow],
    window: &Window,
) -> Result<Records, MttrlyError> {
    let mut out = Records { timeline: Vec::new(), omitted: None, servers: Vec::new(), related: Vec::new() };
    let mut related = Vec::with_capacity(servers.len());
    // With one server the report names it once, as it always did; with several every item does.
    let several = servers.len() > 1;
    for server in servers {
        let listed = crate::timeline::window(central, caller, &server.id, window.from_ms, window.to_ms).await?;
        out.timeline.extend(listed.items.into_iter().map(|mut item| {
            if several {
                item.server_id = Some(server.id.clone());
            }
            item
        }));
        out.omitted = merge_omitted(out.omitted.take(), listed.omitted);
        let verifier =
            central.db.account(&caller.account_id).timeline().latest_verification(&server.id, window.to_ms).await?.map(
                |(verification_id, deploy_id, verdict, checked_at)| VerifierState {
                    verification_id,
                    deploy_id,
                    verdict,
                    checked_at: timestamp(checked_at),
                },
            );
        out.servers.push(CoveredServer { server_id: server.id.clone(), server_name: server.name.clone(), verifier });
        let found = crate::knowledge::related(central, caller, &server.id, &window.symptoms, window.to_ms).await?;
        related.push(found.into_iter().filter(|k| !own_retrospective(k, window)).collect());
    }
    out.related = merge_related(&related);
    Ok(out)
}

pub(crate) async fn retrospective(
    central: &Central,
    caller: &TokenOwner,
    source: Source,
    input: GenerateRetrospectiveInput,
) -> Result<Retrospective, MttrlyError> {
    let now = now_ms();
    let mut scope = if let Some(thread) = &input.thread_id {
        thread_window(central, caller, &input, thread, now).await?
    } else {
        let first = crate::servers::find(central, caller, input.server_id.as_ref().ok_or_else(missing_server)?).await?;
        let window = window(central, caller, &first.id, &input, now).await?;
        Scope { first, others: Vec::new(), left_out: Vec::new(), narrowed: false, window }
    };
    let (thread, posts) = match scope.window.thread.take() {
        Some(ThreadPart { summary, posts }) => (Some(summary), posts),
        None => (None, Vec::new()),
    };
    let servers: Vec<&ServerRow> = std::iter::once(&scope.first).chain(&scope.others).collect();
    let Records { timeline, omitted, servers: covered, related } =
        records(central, caller, &servers, &scope.window).await?;
    let title = title_of(&servers, &scope.window);
    let template_version = template_version(servers.len(), scope.left_out.len());
    // The first is the report's `server_id` and `verifier`; the others ride beside it.
    let mut covered = covered.into_iter();
    let verifier = covered.next().and_then(|first| first.verifier);
    let assistant_words = input
        .title
        .as_ref()
        .map(mttrly_core::tools::investigations::Title::as_str)
        .or(scope.window.assistant_words.as_deref());
    let written = crate::retrospective::write(&Inputs {
        title: title.clone(),
        server_id: scope.first.id.clone(),
        server_name: scope.first.name.clone(),
        window_from_ms: scope.window.from_ms,
        window_to_ms: scope.window.to_ms,
        timeline,
        omitted,
        assistant_title: assistant_words.map(words_of),
        verifier,
        related,
        thread,
        posts,
        other_servers: covered.collect(),
        left_out: scope.left_out.clone(),
        template_version,
    });
    let (entry, already_stored) = crate::knowledge::store_postmortem(
        central,
        caller,
        source,
        title,
        written.markdown.clone(),
        scope.first.id.clone(),
        window_key(&scope),
    )
    .await?;
    Ok(Retrospective {
        knowledge_id: entry.knowledge_id,
        title: entry.title,
        content_sha256: entry.content_sha256,
        already_stored,
        markdown: written.markdown,
        report: written.report,
        created_at: entry.created_at,
    })
}

#[cfg(test)]
mod tests {
    use mttrly_core::Environment;
    use mttrly_core::ids::{AccountId, KnowledgeId};
    use mttrly_core::tools::knowledge::KnowledgeKind;

    use super::*;

    fn server(name: &str) -> ServerRow {
        ServerRow {
            id: ServerId::generate(),
            account_id: AccountId::generate(),
            name: name.into(),
            environment: Environment::Production,
            created_at: 0,
            host: None,
            last_seen_at: None,
            metrics_json: None,
        }
    }

    fn window(reference: &str) -> Window {
        Window {
            from_ms: 1_780_000_000_000,
            to_ms: 1_780_000_600_000,
            reference: reference.into(),
            open: false,
            symptoms: String::new(),
            assistant_words: None,
            thread: None,
        }
    }

    fn entry(n: u8) -> RelatedKnowledge {
        RelatedKnowledge {
            knowledge_id: KnowledgeId::parse(&format!("kno_{n:032x}")).unwrap_or_else(|e| panic!("{e}")),
            kind: KnowledgeKind::Note,
            title: format!("entry {n}"),
        }
    }

    #[test]
    fn related_knowledge_is_taken_in_turns_without_repeats_and_bounded() {
        // One server: its five, in its order, as always.
        let one: Vec<RelatedKnowledge> = (1..=5).map(entry).collect();
        assert_eq!(merge_related(std::slice::from_ref(&one)), one);
        // Two servers sharing an entry: each server's best first, the shared one once.
        let web = vec![entry(1), entry(2), entry(3)];
        let db = vec![entry(2), entry(7), entry(8)];
        let ids: Vec<KnowledgeId> = merge_related(&[web, db]).into_iter().map(|k| k.knowledge_id).collect();
        let expected: Vec<KnowledgeId> = [1, 2, 7, 3, 8].into_iter().map(|n| entry(n).knowledge_id).collect();
        assert_eq!(ids, expected);
        // Eight servers of five each: at most MAX_RELATED, every server's best among them.
        let many: Vec<Vec<RelatedKnowledge>> =
            (0..8u8).map(|s| (0..5u8).map(|r| entry(s * 10 + r + 1)).collect()).collect();
        let merged = merge_related(&many);
        assert_eq!(merged.len(), MAX_RELATED);
        assert!(many.iter().all(|list| merged.contains(&list[0])), "every server's best entry is kept");
    }

    #[test]
    fn the_windows_own_retrospectives_are_not_related_knowledge() {
        let thread = window("thread:incident-1");
        let postmortem =
            |title: &str| RelatedKnowledge { kind: KnowledgeKind::Postmortem, title: title.into(), ..entry(1) };
        assert!(own_retrospective(
            &postmortem("Retrospective: thread:incident-1 on web-1, db-1, 2026 to open"),
            &thread
        ));
        assert!(own_retrospective(&postmortem("Retrospective: thread:incident-1 on db-1, 2026 to 2026"), &thread));
        // Another window's, a longer thread id, or a note that quotes the words: related.
        assert!(!own_retrospective(&postmortem("Retrospective: thread:incident-10 on web-1, x"), &thread));
        assert!(!own_retrospective(&postmortem("Retrospective: alt_1 on web-1, x"), &thread));
        let note = RelatedKnowledge { title: "Retrospective: thread:incident-1 on web-1".into(), ..entry(2) };
        assert!(!own_retrospective(&note, &thread));
    }

    #[test]
    fn routine_items_left_out_add_up_across_servers() {
        let at = |s: i64| jiff::Timestamp::from_second(1_780_000_000 + s).unwrap_or_else(|e| panic!("{e}"));
        let a = OmittedItems { count: 3, from: at(10), to: at(20), at_least: false };
        let b = OmittedItems { count: 4, from: at(5), to: at(15), at_least: true };
        assert_eq!(merge_omitted(Some(a.clone()), None), Some(a.clone()), "one server's, unchanged");
        assert_eq!(merge_omitted(None, Some(b.clone())), Some(b.clone()));
        assert_eq!(merge_omitted(None, None), None);
        assert_eq!(
            merge_omitted(Some(a), Some(b)),
            Some(OmittedItems { count: 7, from: at(5), to: at(20), at_least: true })
        );
    }

    #[test]
    fn titles_and_keys_name_the_servers_and_a_one_server_thread_keeps_its_key() {
        let (web, db) = (server("web-1"), server("db-1"));
        let thread = window("thread:incident-1");
        assert!(title_of(&[&web], &thread).starts_with("Retrospective: thread:incident-1 on web-1, "));
        assert!(title_of(&[&web, &db], &thread).starts_with("Retrospective: thread:incident-1 on web-1, db-1, "));
        let crowd: Vec<ServerRow> = (0..8).map(|n| server(&format!("a-rather-long-server-name-{n}"))).collect();
        let crowd: Vec<&ServerRow> = crowd.iter().collect();
        let title = title_of(&crowd, &thread);
        assert!(title.contains(" on a-rather-long-server-name-0 and 7 more servers, "), "{title}");
        assert!(title.ends_with("2026-05-28T20:36:40Z"), "the window's end stays in the title: {title}");

        let scope = |others: Vec<ServerRow>, narrowed: bool| Scope {
            first: web.clone(),
            others,
            left_out: Vec::new(),
            narrowed,
            window: window("thread:incident-1"),
        };
        let one = format!("retrospective:{}:thread:incident-1", web.id);
        assert_eq!(window_key(&scope(Vec::new(), false)), one, "the key a one-server thread always used");
        assert_eq!(window_key(&scope(vec![db.clone()], false)), one, "the whole thread, under its first server");
        assert_eq!(window_key(&scope(Vec::new(), true)), format!("{one}#only"), "narrowed: its own entry");
    }
}
