//! Knowledge: postmortems, recipes and notes, and their full-text search.

use serde::{Deserialize, Serialize};

use crate::bounded::{bounded_int, bounded_text};
use crate::ids::{KnowledgeId, ServerId};

bounded_text!(
    /// Full-text search terms (1 to 256 characters).
    KnowledgeQuery, min 1, max 256
);

bounded_int!(
    /// How many results to return (1 to 50, default 10).
    KnowledgeLimit: u32, min 1, max 50, default 10
);

/// What a knowledge entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KnowledgeKind {
    /// A retrospective.
    Postmortem,
    /// A known fix.
    Recipe,
    /// A free-form note.
    Note,
}

/// Arguments of `mttrly_search_knowledge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchKnowledgeInput {
    /// What to look for.
    pub query: KnowledgeQuery,
    /// Only entries about this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
    /// Only entries of this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<KnowledgeKind>,
    /// How many results to return, best first.
    #[serde(default)]
    pub limit: KnowledgeLimit,
}

/// One knowledge search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KnowledgeHit {
    /// The entry.
    pub knowledge_id: KnowledgeId,
    /// What it is.
    pub kind: KnowledgeKind,
    /// Its title.
    pub title: String,
    /// The matching passage.
    pub snippet: String,
    /// The server it concerns, if any.
    pub server_id: Option<ServerId>,
    /// When it was written.
    pub created_at: jiff::Timestamp,
}

/// Knowledge search results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KnowledgeResults {
    /// Hits, best first.
    pub results: Vec<KnowledgeHit>,
}
