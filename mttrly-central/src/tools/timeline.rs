//! `mttrly_get_server_timeline` and `mttrly_generate_retrospective`.
//!
//! The retrospective covers one incident window: an incident thread's when `thread_id` is given
//! (the thread's first notification until its resolution, `incident-resolved` as the war room's
//! rules read it), else the investigation's (from an hour before it, or its alert, opened until it
//! closed), else the server's latest alert's (from an hour before it opened until it resolved);
//! an open one runs to now. The records read start an hour before the incident in every case, so
//! the alert that opened a thread and a deploy shortly before it are in it. A closed window gives
//! the same records every time, so regenerating gives the same content hash and the stored
//! postmortem is reused.
//!
//! A thread's server is the first server its notifications name. `server_id` was the tool's one
//! required argument; it stays the same field, optional only when `thread_id` is given: named
//! with a thread it must be the thread's server (else refused), and with no thread a call without
//! it is refused as it always was. Another account's thread is not found, like an unknown one.

use mttrly_core::ids::ServerId;
use mttrly_core::redactor;
use mttrly_core::tools::notify::{IncidentSummary, Notification, ThreadId};
use mttrly_core::tools::timeline::{
    GenerateRetrospectiveInput, GetServerTimelineInput, Retrospective, ServerTimeline, VerifierState,
};
use mttrly_core::{ErrorCode, MttrlyError, Source};

use crate::db::accounts::TokenOwner;
use crate::db::servers::ServerRow;
use crate::db::{now_ms, timestamp};
use crate::retrospective::{Inputs, TEMPLATE_VERSION};
use crate::state::Central;
use crate::warroom::{THREAD_LIMIT, incidents};

/// How far before the incident a window starts: a deploy shortly before an alert is its
/// suspected start.
const LEAD_MS: i64 = 60 * 60 * 1000;

pub(crate) async fn timeline(
    central: &Central,
    caller: &TokenOwner,
    input: GetServerTimelineInput,
) -> Result<ServerTimeline, MttrlyError> {
    crate::timeline::page(central, caller, &input).await
}

/// The window, the title central gives it, and the text to find related knowledge with.
struct Window {
    from_ms: i64,
    to_ms: i64,
    /// What the window is of: `inv_…` or `alt_…`. With the server it keys the stored entry, so
    /// regenerating the same window (open or closed) updates one postmortem.
    reference: String,
    /// Whether the incident is still open (the window runs to now).
    open: bool,
    /// Text central wrote (an alert's summary): the search terms for related knowledge.
    symptoms: String,
    /// An assistant's words for it (an investigation's title), kept labelled.
    assistant_words: Option<String>,
    /// The incident thread it is of, when it is one's.
    thread: Option<ThreadPart>,
}

/// What a thread brings to its retrospective.
struct ThreadPart {
    /// The war room's reading of the whole thread (as read).
    summary: IncidentSummary,
    /// Its posts up to the window's end, oldest first.
    posts: Vec<Notification>,
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

/// The server thread `thread` is about: the first server its notifications (`rows`, oldest
/// first) name; `given` when none names one. A `given` server other than the one the thread
/// names is refused, so a retrospective never pairs a thread with another server's records.
fn thread_server(thread: &ThreadId, rows: &[Notification], given: Option<&ServerId>) -> Result<ServerId, MttrlyError> {
    let named = rows.iter().find_map(|n| n.server_id.as_ref());
    match (named, given) {
        (Some(named), Some(given)) if named != given => Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!(
                "server_id: thread `{thread}` is about server {named} (the first server its notifications name), not \
                 {given}; leave server_id out, or pass {named}"
            ),
        )
        .with_detail("field", "server_id")
        .with_detail("thread_id", thread.as_str())
        .with_detail("thread_server_id", named.as_str())),
        (Some(named), _) => Ok(named.clone()),
        (None, Some(given)) => Ok(given.clone()),
        (None, None) => Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!(
                "server_id: thread `{thread}` names no server (none of its notifications carries a server_id); pass \
                 server_id to say which server's records the retrospective covers"
            ),
        )
        .with_detail("field", "server_id")
        .with_detail("thread_id", thread.as_str())),
    }
}

/// The window of an incident thread and its server (see the module's doc).
async fn thread_window(
    central: &Central,
    caller: &TokenOwner,
    input: &GenerateRetrospectiveInput,
    thread: &ThreadId,
    now: i64,
) -> Result<(ServerRow, Window), MttrlyError> {
    if let Some(investigation) = &input.investigation_id {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!(
                "investigation_id: give thread_id or investigation_id, not both (a retrospective covers one incident \
                 window); got {investigation} with thread `{thread}`"
            ),
        )
        .with_detail("field", "investigation_id"));
    }
    let not_found = || {
        MttrlyError::new(ErrorCode::NotFound, format!("no thread `{thread}` in this account"))
            .with_detail("thread_id", thread.as_str())
    };
    let floor = crate::timeline::retention_floor(caller, now);
    let mut rows =
        central.db.account(&caller.account_id).warroom().thread(thread.as_str(), floor, THREAD_LIMIT).await?;
    let truncated = rows.len() > THREAD_LIMIT as usize;
    rows.truncate(THREAD_LIMIT as usize);
    let first = rows.first().map(|n| n.published_at.as_millisecond()).ok_or_else(not_found)?;
    let server_id = thread_server(thread, &rows, input.server_id.as_ref())?;
    let server = crate::servers::find(central, caller, &server_id).await?;
    // The whole thread says where the incident ends (a report after a resolution reopens it);
    // the retrospective reads the thread up to there, so posts after a resolution (a postmortem
    // note, chatter) leave a closed window's bytes as they were.
    let whole = incidents::summary(&rows, truncated, timestamp(now)).ok_or_else(not_found)?;
    let resolved = whole.moments.resolved_at.map(jiff::Timestamp::as_millisecond);
    let end = resolved.unwrap_or(now).min(now).max(first);
    let posts: Vec<Notification> = rows.into_iter().filter(|n| n.published_at.as_millisecond() <= end).collect();
    let summary = incidents::summary(&posts, truncated, timestamp(end)).ok_or_else(not_found)?;
    let window = Window {
        from_ms: first.saturating_sub(LEAD_MS),
        to_ms: end,
        reference: format!("thread:{thread}"),
        open: resolved.is_none(),
        symptoms: summary.title.clone(),
        assistant_words: None,
        thread: Some(ThreadPart { summary, posts }),
    };
    Ok((server, window))
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

/// The stored title: central's words only (the server, what the window is of, its start, and
/// its end or that it is open), never an assistant's.
fn title_of(server_name: &str, window: &Window) -> String {
    let end = if window.open { "open".to_owned() } else { crate::db::timestamp(window.to_ms).to_string() };
    let title = format!(
        "Retrospective: {} on {}, {} to {}",
        window.reference,
        mttrly_core::display::text(server_name),
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

pub(crate) async fn retrospective(
    central: &Central,
    caller: &TokenOwner,
    source: Source,
    input: GenerateRetrospectiveInput,
) -> Result<Retrospective, MttrlyError> {
    let now = now_ms();
    let (server, mut window) = if let Some(thread) = &input.thread_id {
        thread_window(central, caller, &input, thread, now).await?
    } else {
        let server =
            crate::servers::find(central, caller, input.server_id.as_ref().ok_or_else(missing_server)?).await?;
        let window = window(central, caller, &server.id, &input, now).await?;
        (server, window)
    };
    let (thread, posts) = match window.thread.take() {
        Some(ThreadPart { summary, posts }) => (Some(summary), posts),
        None => (None, Vec::new()),
    };
    let listed = crate::timeline::window(central, caller, &server.id, window.from_ms, window.to_ms).await?;
    let verifier =
        central.db.account(&caller.account_id).timeline().latest_verification(&server.id, window.to_ms).await?.map(
            |(verification_id, deploy_id, verdict, checked_at)| VerifierState {
                verification_id,
                deploy_id,
                verdict,
                checked_at: timestamp(checked_at),
            },
        );
    let related = crate::knowledge::related(central, caller, &server.id, &window.symptoms, window.to_ms).await?;
    let title = title_of(&server.name, &window);
    let assistant_words = input
        .title
        .as_ref()
        .map(mttrly_core::tools::investigations::Title::as_str)
        .or(window.assistant_words.as_deref());
    let written = crate::retrospective::write(&Inputs {
        title: title.clone(),
        server_id: server.id.clone(),
        server_name: server.name.clone(),
        window_from_ms: window.from_ms,
        window_to_ms: window.to_ms,
        timeline: listed.items,
        omitted: listed.omitted,
        assistant_title: assistant_words.map(words_of),
        verifier,
        related,
        thread,
        posts,
        template_version: TEMPLATE_VERSION,
    });
    let window_key = format!("retrospective:{}:{}", server.id, window.reference);
    let (entry, already_stored) = crate::knowledge::store_postmortem(
        central,
        caller,
        source,
        title,
        written.markdown.clone(),
        server.id,
        window_key,
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
    use mttrly_core::ids::NotificationId;
    use mttrly_core::tools::notify::{Priority, Sender};

    use super::*;

    fn note(server: Option<&ServerId>) -> Notification {
        Notification {
            notification_id: NotificationId::generate(),
            channel: "incidents".into(),
            thread_id: "t".into(),
            in_reply_to: None,
            title: "t".into(),
            body: String::new(),
            priority: Priority::High,
            theme: None,
            tags: Vec::new(),
            server_id: server.cloned(),
            sender: Sender::central(Source::Api),
            redactions: 0,
            published_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_threads_server_is_the_first_it_names_and_another_is_refused() {
        let thread = ThreadId::new("incident-1").unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (ServerId::generate(), ServerId::generate());
        let rows = vec![note(None), note(Some(&a)), note(Some(&b))];
        assert_eq!(thread_server(&thread, &rows, None).ok(), Some(a.clone()));
        assert_eq!(thread_server(&thread, &rows, Some(&a)).ok(), Some(a.clone()));
        let refused = thread_server(&thread, &rows, Some(&b)).err().map(|e| (e.code(), e.to_string()));
        let (code, message) = refused.unwrap_or_else(|| panic!("another server is refused"));
        assert_eq!(code, ErrorCode::ValidationError);
        assert!(message.contains(&format!("is about server {a}")) && message.contains(b.as_str()), "{message}");

        let unnamed = vec![note(None)];
        assert_eq!(thread_server(&thread, &unnamed, Some(&b)).ok(), Some(b));
        let none = thread_server(&thread, &unnamed, None).err().map(|e| e.code());
        assert_eq!(none, Some(ErrorCode::ValidationError));
        assert_eq!(missing_server().code(), ErrorCode::ValidationError);
    }
}
