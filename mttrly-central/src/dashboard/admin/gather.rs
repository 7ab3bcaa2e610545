//! What the admin page shows, read through the app's own operations where one exists (tokens as
//! `tokens::list` gives an admin, the rules as `approvals::effective` judges them for
//! `ListApprovalRules`) and through small reads of the storage seam where none does (the roster
//! with removed people, open invites, every chat link, grants' ends).

use std::collections::{HashMap, HashSet};

use mttrly_core::MttrlyError;
use mttrly_core::audit::{AuditActor, AuditOutcome};
use mttrly_core::ids::UserId;

use crate::app_state::AppState;
use crate::approvals::EffectiveRule;
use crate::db::accounts::{TokenKind, TokenOwner, TokenRow};
use crate::db::audit::AuditFilter;
use crate::db::chat::Link;
use crate::db::people::{OpenInvite, RosterEntry};

/// The most `AddUser` audit rows read to say who brought each person in.
const MAX_INTRODUCTIONS: u32 = 2000;

/// One person as the page lists them.
pub(super) struct Person {
    /// Who, how they sign in, whether removed.
    pub entry: RosterEntry,
    /// Whether an invite link of theirs is still open (they have not finished it).
    pub invited: bool,
    /// Who added them, when the audit log says.
    pub introduced_by: Option<String>,
}

/// Everything the page shows.
pub(super) struct Facts {
    /// Living people first, then the removed, each oldest first.
    pub people: Vec<Person>,
    /// Open invite links.
    pub invites: Vec<OpenInvite>,
    /// Live API tokens.
    pub tokens: Vec<TokenRow>,
    /// Live OAuth grants.
    pub grants: Vec<TokenRow>,
    /// When each grant ends, by public id.
    pub grant_ends: HashMap<String, i64>,
    /// Every living person's chat links: (their name, the link).
    pub links: Vec<(String, Link)>,
    /// The effective rule of every scope, judged for this account.
    pub rules: Vec<EffectiveRule>,
    /// Whether a living admin has a second factor ("the account uses second factors").
    pub uses_second_factors: bool,
}

/// Reads the page's facts for `owner`, an admin of the account.
pub(super) async fn gather(state: &AppState, owner: &TokenOwner) -> Result<Facts, MttrlyError> {
    let central = &state.central;
    let account = central.db.account(&owner.account_id);
    let invites = account.people().open_invites(crate::db::now_ms()).await?;
    let invited: HashSet<&UserId> = invites.iter().map(|i| &i.user_id).collect();
    let introducers = introducers(state, owner).await?;
    let people = account
        .people()
        .roster()
        .await?
        .into_iter()
        .map(|entry| Person {
            invited: invited.contains(&entry.user.id),
            introduced_by: introducers.get(&entry.user.id).cloned(),
            entry,
        })
        .collect();
    let (grants, tokens) =
        crate::tokens::list(central, owner).await?.into_iter().partition(|t| t.kind == TokenKind::OAuth);
    Ok(Facts {
        people,
        tokens,
        grants,
        grant_ends: account.users().grant_ends().await?,
        links: account.chat().all_links().await?.into_iter().map(|(_, name, link)| (name, link)).collect(),
        rules: crate::approvals::effective(central, owner).await?,
        uses_second_factors: account.users().uses_second_factors().await?,
        invites,
    })
}

/// Who added each person, from the successful `AddUser` rows of the audit log (the newest row
/// naming a person wins; a person added before the log began has none).
async fn introducers(state: &AppState, owner: &TokenOwner) -> Result<HashMap<UserId, String>, MttrlyError> {
    // A person added a moment ago may still be on their way into the log.
    state.central.audit.flush().await;
    let filter =
        AuditFilter { subject: Some("AddUser".to_owned()), limit: MAX_INTRODUCTIONS, ..AuditFilter::default() };
    let rows = state.central.db.account(&owner.account_id).audit().list(&filter).await?;
    let mut by = HashMap::new();
    // Newest first: the first row naming a person is their latest introduction.
    for row in rows.iter().filter(|r| r.outcome == AuditOutcome::Ok) {
        let Some(id) = row.parameters.get("user_id").and_then(|v| v.as_str()).and_then(|v| UserId::parse(v).ok())
        else {
            continue;
        };
        let name = match &row.actor {
            AuditActor::Human { name, .. } => name.clone(),
            AuditActor::Assistant { client_name, .. } => format!("assistant {client_name}"),
            AuditActor::Agent { .. } | AuditActor::System => continue,
        };
        by.entry(id).or_insert(name);
    }
    Ok(by)
}
