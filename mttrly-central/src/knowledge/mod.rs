//! The knowledge base's rules, shared by `mttrly_search_knowledge`, the retrospective and
//! `mttrly-cli knowledge` (the gRPC `KnowledgeService`).
//!
//! - Text is redacted before it is stored (and the hash is over the stored text), so a secret
//!   pasted into a note never reaches the index, a search snippet or an assistant.
//! - Writing and removing are human acts of an operator or admin: an assistant's words stored as
//!   "knowledge" would be read back by the next assistant as if a person vouched for them. The
//!   one exception is the retrospective, whose text central writes itself from the records.
//! - A search's text becomes quoted terms (`mttrly_core::tools::knowledge::fts_match`): no input
//!   is query syntax, so none can fail as one.
//! - Every change is audited; another tenant's entry is `NOT_FOUND`, exactly like an unknown id.

use mttrly_core::audit::{AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::{KnowledgeId, ServerId};
use mttrly_core::redactor;
use mttrly_core::role::Role;
use mttrly_core::tools::investigations::Title;
use mttrly_core::tools::knowledge::{
    KnowledgeBody, KnowledgeEntry, KnowledgeKind, KnowledgeResults, KnowledgeSource, SearchKnowledgeInput, fts_match,
    search_terms,
};
use mttrly_core::{ErrorCode, MttrlyError, Source};
use sha2::{Digest, Sha256};

use crate::db::accounts::TokenOwner;
use crate::db::knowledge::{KnowledgeFilter, KnowledgeSearch, NewKnowledge, Upserted};
use crate::db::now_ms;
use crate::state::Central;

/// The most entries one list returns.
pub const MAX_LIST: u32 = 500;

/// A person's new entry, checked by its types.
#[derive(Debug, Clone)]
pub struct AddKnowledge {
    /// What it is.
    pub kind: KnowledgeKind,
    /// Its title.
    pub title: Title,
    /// Its text.
    pub body: KnowledgeBody,
    /// The server it concerns, if any.
    pub server_id: Option<ServerId>,
}

/// SHA-256 (hex) of `text`: an entry's content hash.
pub fn content_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn not_found(id: &KnowledgeId) -> MttrlyError {
    MttrlyError::new(ErrorCode::NotFound, format!("knowledge entry {id} not found"))
        .with_detail("knowledge_id", id.as_str())
}

/// Writing and removing knowledge is for people who may change things.
fn require_editor(caller: &TokenOwner, what: &str) -> Result<(), MttrlyError> {
    if !caller.principal.is_human() {
        return Err(MttrlyError::new(
            ErrorCode::Forbidden,
            format!("only a person can {what} knowledge (an assistant's text is not knowledge a human vouched for)"),
        ));
    }
    if caller.role == Role::Viewer {
        return Err(MttrlyError::new(ErrorCode::Forbidden, format!("a viewer cannot {what} knowledge"))
            .with_detail("role", caller.role.as_str()));
    }
    Ok(())
}

fn change_event(caller: &TokenOwner, via: Source, subject: &str, entry: &KnowledgeEntry) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: caller.account_id.clone(),
        server_id: entry.server_id.clone(),
        actor: caller.principal.clone().into(),
        source: via,
        kind: AuditKind::ApiCall,
        subject: subject.to_owned(),
        parameters: serde_json::json!({
            "knowledge_id": entry.knowledge_id,
            "kind": entry.kind,
            "title": entry.title,
            "source": entry.provenance.source,
            "content_sha256": entry.content_sha256,
        }),
        outcome: AuditOutcome::Ok,
        duration_ms: None,
    }
}

/// Stores a person's entry (redacted) and audits it.
pub async fn add(central: &Central, caller: &TokenOwner, input: AddKnowledge) -> Result<KnowledgeEntry, MttrlyError> {
    require_editor(caller, "add")?;
    if let Some(server) = &input.server_id {
        crate::servers::find(central, caller, server).await?;
    }
    let title = redactor::redact(input.title.as_str()).text.into_owned();
    let body = redactor::redact(input.body.as_str()).text.into_owned();
    let new = NewKnowledge {
        id: KnowledgeId::generate(),
        kind: input.kind,
        content_sha256: content_sha256(&body),
        title,
        body,
        server_id: input.server_id,
        author: caller.principal.clone(),
        source: KnowledgeSource::Cli,
        created_at: now_ms(),
    };
    let (entry, _) = central.db.account(&caller.account_id).knowledge().add(new, false).await?;
    central.audit(change_event(caller, Source::Api, "knowledge.add", &entry));
    Ok(entry)
}

/// Stores a retrospective's Markdown as the postmortem of its incident window (`window_key`):
/// one entry per window, rewritten in place when the window's records changed (an open incident
/// regenerated), returned with `true` when it already said the same. Searchable as soon as this
/// returns. `title` and `markdown` are central's text, already redacted; the server is the
/// caller's (checked by the handler).
pub(crate) async fn store_postmortem(
    central: &Central,
    caller: &TokenOwner,
    via: Source,
    title: String,
    markdown: String,
    server_id: ServerId,
    window_key: String,
) -> Result<(KnowledgeEntry, bool), MttrlyError> {
    let new = NewKnowledge {
        id: KnowledgeId::generate(),
        kind: KnowledgeKind::Postmortem,
        content_sha256: content_sha256(&markdown),
        title,
        body: markdown,
        server_id: Some(server_id),
        author: caller.principal.clone(),
        source: KnowledgeSource::Retrospective,
        created_at: now_ms(),
    };
    let (entry, outcome) = central.db.account(&caller.account_id).knowledge().upsert_window(new, window_key).await?;
    match outcome {
        Upserted::Created => central.audit(change_event(caller, via, "knowledge.add", &entry)),
        Upserted::Updated => central.audit(change_event(caller, via, "knowledge.update", &entry)),
        Upserted::Unchanged => {}
    }
    Ok((entry, outcome == Upserted::Unchanged))
}

/// One living entry.
pub async fn show(central: &Central, caller: &TokenOwner, id: &KnowledgeId) -> Result<KnowledgeEntry, MttrlyError> {
    central.db.account(&caller.account_id).knowledge().get(id).await?.ok_or_else(|| not_found(id))
}

/// Living entries, newest first.
pub async fn list(
    central: &Central,
    caller: &TokenOwner,
    kind: Option<KnowledgeKind>,
    server_id: Option<ServerId>,
    limit: u32,
) -> Result<Vec<KnowledgeEntry>, MttrlyError> {
    if let Some(server) = &server_id {
        crate::servers::find(central, caller, server).await?;
    }
    let filter = KnowledgeFilter { kind, server_id, limit: limit.clamp(1, MAX_LIST) };
    central.db.account(&caller.account_id).knowledge().list(&filter).await
}

/// Soft-deletes an entry (it leaves the index at once) and audits it.
pub async fn remove(central: &Central, caller: &TokenOwner, id: &KnowledgeId) -> Result<KnowledgeEntry, MttrlyError> {
    require_editor(caller, "remove")?;
    let removed = central.db.account(&caller.account_id).knowledge().remove(id, now_ms()).await?;
    let removed = removed.ok_or_else(|| not_found(id))?;
    central.audit(change_event(caller, Source::Api, "knowledge.remove", &removed));
    Ok(removed)
}

/// `mttrly_search_knowledge`.
pub async fn search(
    central: &Central,
    caller: &TokenOwner,
    input: &SearchKnowledgeInput,
) -> Result<KnowledgeResults, MttrlyError> {
    if input.server_only && input.server_id.is_none() {
        return Err(MttrlyError::new(ErrorCode::ValidationError, "server_only needs a server_id")
            .with_detail("field", "server_only"));
    }
    if let Some(server) = &input.server_id {
        // Another tenant's server is SERVER_NOT_FOUND, never an empty result that confirms it.
        crate::servers::find(central, caller, server).await?;
    }
    let terms = search_terms(input.query.as_str());
    let Some(expression) = fts_match(&terms) else {
        return Ok(KnowledgeResults { terms, results: Vec::new() });
    };
    let search = KnowledgeSearch {
        fts_match: expression,
        server_id: input.server_id.clone(),
        server_only: input.server_only,
        kind: input.kind,
        created_until_ms: None,
        limit: input.limit.get(),
    };
    let results = central.db.account(&caller.account_id).knowledge().search(&search).await?;
    Ok(KnowledgeResults { terms, results })
}

/// Entries related to `text` (any of its words), the server's first, written at or before
/// `until_ms`: what existed when the incident ended, so regenerating a retrospective later does
/// not find the retrospective itself and change its content.
pub(crate) async fn related(
    central: &Central,
    caller: &TokenOwner,
    server_id: &ServerId,
    text: &str,
    until_ms: i64,
) -> Result<Vec<mttrly_core::tools::timeline::RelatedKnowledge>, MttrlyError> {
    let terms = search_terms(text);
    let Some(expression) = mttrly_core::tools::knowledge::fts_match_any(&terms) else {
        return Ok(Vec::new());
    };
    let search = KnowledgeSearch {
        fts_match: expression,
        server_id: Some(server_id.clone()),
        server_only: false,
        kind: None,
        created_until_ms: Some(until_ms),
        limit: 5,
    };
    let hits = central.db.account(&caller.account_id).knowledge().search(&search).await?;
    Ok(hits
        .into_iter()
        .map(|h| mttrly_core::tools::timeline::RelatedKnowledge {
            knowledge_id: h.knowledge_id,
            kind: h.kind,
            title: h.title,
        })
        .collect())
}

#[cfg(test)]
mod tests;
