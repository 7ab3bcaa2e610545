//! `mttrly_get_server_timeline` and `mttrly_generate_retrospective`.
//!
//! The retrospective covers one incident window: the investigation's (from an hour before it, or
//! its alert, opened until it closed), else the server's latest alert's (from an hour before it
//! opened until it resolved); an open one runs to now. A closed window gives the same records
//! every time, so regenerating gives the same content hash and the stored postmortem is reused.

use mttrly_core::ids::ServerId;
use mttrly_core::redactor;
use mttrly_core::tools::timeline::{
    GenerateRetrospectiveInput, GetServerTimelineInput, Retrospective, ServerTimeline, VerifierState,
};
use mttrly_core::{ErrorCode, MttrlyError, Source};

use crate::db::accounts::TokenOwner;
use crate::db::{now_ms, timestamp};
use crate::retrospective::{Inputs, TEMPLATE_VERSION};
use crate::state::Central;

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
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let now = now_ms();
    let window = window(central, caller, &server.id, &input, now).await?;
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
