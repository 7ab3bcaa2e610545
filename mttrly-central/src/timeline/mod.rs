//! `mttrly_get_server_timeline`'s rules: one server's alerts, deploys, investigations, actions
//! and audit rows as one stream (what one item is: `db::timeline`; the order and the cursor:
//! `mttrly_core::tools::timeline`).
//!
//! The plan's log retention bounds every page: nothing older than the plan keeps is shown, even
//! where a row outlived its purge. Summaries go through the redactor again on the way out, as
//! every text a host, a CI or an assistant wrote does wherever it is shown.

use std::collections::BTreeSet;

use mttrly_core::audit::AuditActor;
use mttrly_core::ids::ServerId;
use mttrly_core::redactor;
use mttrly_core::tools::timeline::{
    GetServerTimelineInput, OmittedItems, ServerTimeline, TimelineEvent, TimelineItem, TimelineKey, TimelineSource,
};
use mttrly_core::{ErrorCode, MttrlyError};

use crate::db::accounts::TokenOwner;
use crate::db::now_ms;
use crate::db::timeline::TimelineQuery;
use crate::state::Central;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Routine items a retrospective keeps from each end of its window.
pub const ENDS_KEPT: usize = 250;

/// Most alerts, deploys, investigations and actions a retrospective reads from its window.
pub const MAX_DECISIVE: usize = 5_000;

/// Most audit rows a retrospective scans for the decisive ones among them (newest first).
pub const MAX_SCANNED: usize = 20_000;

/// A page of the window scans.
const SCAN_PAGE: u32 = 500;

fn bad_cursor() -> MttrlyError {
    MttrlyError::new(
        ErrorCode::ValidationError,
        "cursor is not a timeline cursor: pass `next_cursor` from the previous page unchanged",
    )
    .with_detail("field", "cursor")
}

/// Parses a cursor; an audit position must name a sequence number.
pub fn parse_cursor(text: &str) -> Result<TimelineKey, MttrlyError> {
    let key = TimelineKey::from_cursor(text).map_err(|_| bad_cursor())?;
    if key.rank == TimelineEvent::Audited.rank() && key.id.parse::<i64>().is_err() {
        return Err(bad_cursor());
    }
    Ok(key)
}

/// The earliest time the caller's plan keeps, at `now` (ms).
pub fn retention_floor(caller: &TokenOwner, now: i64) -> i64 {
    now.saturating_sub(i64::from(caller.plan.limits().log_retention_days).saturating_mul(DAY_MS))
}

/// The events of the server's records a page reads: those of `sources` (all when absent). A
/// thread post is no server record: asking for them is refused, not answered with nothing, so a
/// client does not conclude a thread is empty.
fn events_of(sources: Option<&[TimelineSource]>) -> Result<Vec<TimelineEvent>, MttrlyError> {
    if sources.is_some_and(|s| s.contains(&TimelineSource::Thread)) {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            "sources: `thread` is not on a server's timeline; read a thread with mttrly_get_thread, or write it up \
             with mttrly_generate_retrospective and its thread_id",
        )
        .with_detail("field", "sources"));
    }
    Ok(SERVER_EVENTS.into_iter().filter(|e| sources.is_none_or(|s| s.contains(&e.source()))).collect())
}

/// The events read from a server's own records, in rank order (every event but a thread post).
const SERVER_EVENTS: [TimelineEvent; 8] = [
    TimelineEvent::IncidentOpened,
    TimelineEvent::IncidentResolved,
    TimelineEvent::DeployStarted,
    TimelineEvent::DeployFinished,
    TimelineEvent::InvestigationOpened,
    TimelineEvent::InvestigationClosed,
    TimelineEvent::ActionRequested,
    TimelineEvent::Audited,
];

fn redacted(mut item: TimelineItem) -> TimelineItem {
    if let std::borrow::Cow::Owned(text) = redactor::redact(&item.summary).text {
        item.summary = text;
    }
    item
}

/// One page, newest first.
pub async fn page(
    central: &Central,
    caller: &TokenOwner,
    input: &GetServerTimelineInput,
) -> Result<ServerTimeline, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let before = input.cursor.as_ref().map(|c| parse_cursor(c.as_str())).transpose()?;
    // Rows written moments ago (this very call's predecessors) are visible.
    central.audit.flush().await;
    let floor = retention_floor(caller, now_ms());
    let since_ms = input.since.map_or(floor, |s| s.as_millisecond().max(floor));
    let limit = input.limit.get();
    let query = TimelineQuery {
        server_id: server.id.clone(),
        since_ms,
        until_ms: None,
        before,
        events: events_of(input.sources.as_ref().map(mttrly_core::bounded::BoundedVec::as_slice))?,
        limit: limit.saturating_add(1),
        oldest_first: false,
    };
    let mut items = central.db.account(&caller.account_id).timeline().page(&query).await?;
    let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more { items.last().map(|i| i.key().to_cursor()) } else { None };
    Ok(ServerTimeline {
        server_id: server.id,
        items: items.into_iter().map(redacted).collect(),
        next_cursor,
        retention_days: caller.plan.limits().log_retention_days,
    })
}

/// A retrospective's window: what it lists, and what it summarised.
#[derive(Debug, Clone, Default)]
pub struct WindowItems {
    /// The items listed, oldest first.
    pub items: Vec<TimelineItem>,
    /// The routine items left out, if any.
    pub omitted: Option<OmittedItems>,
}

/// Whether an item must be in a retrospective however long the window: anything but an audit
/// row (alerts, deploys, investigations, actions), and audit rows of a person's act, of a
/// failure or refusal (status other than `ok`: a decision's status is the decision), or about an
/// action, deploy, investigation, verdict or knowledge.
pub fn is_decisive(item: &TimelineItem) -> bool {
    item.event != TimelineEvent::Audited
        || matches!(item.actor, Some(AuditActor::Human { .. }))
        || item.status.as_deref() != Some("ok")
        || item.subject.as_deref().is_some_and(|s| {
            ["act_", "dep_", "inv_", "deploy.", "proactive_", "knowledge."].iter().any(|p| s.starts_with(p))
        })
}

/// Routine items left out, as they are counted.
#[derive(Default)]
struct Omitted {
    count: u64,
    from: Option<jiff::Timestamp>,
    to: Option<jiff::Timestamp>,
}

impl Omitted {
    fn add(&mut self, at: jiff::Timestamp) {
        self.count = self.count.saturating_add(1);
        self.from = Some(self.from.map_or(at, |f| f.min(at)));
        self.to = Some(self.to.map_or(at, |t| t.max(at)));
    }
}

/// The items of `server` (already checked) between `from_ms` and `to_ms`, within the plan's
/// retention, for a retrospective: every decisive item ([`is_decisive`]; at most
/// [`MAX_DECISIVE`] that are not audit rows, and those among the newest [`MAX_SCANNED`] audit
/// rows), the first and the last [`ENDS_KEPT`] routine items, and a count of the routine ones
/// between. So a long incident keeps its first alert and its first response, whatever came after.
pub async fn window(
    central: &Central,
    caller: &TokenOwner,
    server: &ServerId,
    from_ms: i64,
    to_ms: i64,
) -> Result<WindowItems, MttrlyError> {
    central.audit.flush().await;
    let timeline = central.db.account(&caller.account_id).timeline();
    let base = TimelineQuery {
        server_id: server.clone(),
        since_ms: from_ms.max(retention_floor(caller, now_ms())),
        until_ms: Some(to_ms),
        before: None,
        events: SERVER_EVENTS.into_iter().filter(|e| *e != TimelineEvent::Audited).collect(),
        limit: SCAN_PAGE,
        oldest_first: false,
    };
    let mut kept: Vec<TimelineItem> = Vec::new();
    let mut omitted = Omitted::default();
    let mut at_least = false;

    // Alerts, deploys, investigations and actions: every one, newest first.
    let mut query = base.clone();
    loop {
        let page = timeline.page(&query).await?;
        let full = page.len() == SCAN_PAGE as usize;
        query.before = page.last().map(TimelineItem::key);
        kept.extend(page);
        if !full {
            break;
        }
        if kept.len() >= MAX_DECISIVE {
            at_least = true;
            break;
        }
    }

    // Audit rows: the oldest few (always listed), then newest first, keeping the decisive ones
    // and the newest few routine ones, counting the rest.
    let audited = TimelineQuery { events: vec![TimelineEvent::Audited], ..base };
    let head = timeline
        .page(&TimelineQuery {
            oldest_first: true,
            limit: u32::try_from(ENDS_KEPT).unwrap_or(u32::MAX),
            ..audited.clone()
        })
        .await?;
    let head_keys: BTreeSet<TimelineKey> = head.iter().map(TimelineItem::key).collect();
    let mut query = audited;
    let (mut scanned, mut newest_routine, mut reached_head) = (0usize, 0usize, head.len() < ENDS_KEPT);
    loop {
        let page = timeline.page(&query).await?;
        let full = page.len() == SCAN_PAGE as usize;
        scanned = scanned.saturating_add(page.len());
        query.before = page.last().map(TimelineItem::key);
        for item in page {
            if head_keys.contains(&item.key()) {
                reached_head = true;
                continue;
            }
            if is_decisive(&item) {
                kept.push(item);
            } else if newest_routine < ENDS_KEPT {
                newest_routine += 1;
                kept.push(item);
            } else {
                omitted.add(item.at);
            }
        }
        if !full {
            break;
        }
        if scanned >= MAX_SCANNED {
            // Rows between here and the head were not read: the count is a lower bound, and
            // they span up to the head's end.
            if !reached_head {
                at_least = true;
                if let Some(last) = head.last() {
                    omitted.from = Some(omitted.from.map_or(last.at, |f| f.min(last.at)));
                }
            }
            break;
        }
    }
    kept.extend(head);
    let mut items: Vec<TimelineItem> = kept.into_iter().map(redacted).collect();
    items.sort_by_key(TimelineItem::key);
    items.dedup_by(|a, b| a.key() == b.key());
    let omitted = match (omitted.from, omitted.to) {
        (Some(from), Some(to)) => Some(OmittedItems { count: omitted.count, from, to, at_least }),
        _ => None,
    };
    Ok(WindowItems { items, omitted })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event but a thread post is read from a server's records: an event appended to the
    /// core's list is either added here or shown to be no server record.
    #[test]
    fn a_server_timeline_reads_every_event_but_thread_posts() {
        let all: Vec<TimelineEvent> =
            TimelineEvent::ALL.into_iter().filter(|e| e.source() != TimelineSource::Thread).collect();
        assert_eq!(SERVER_EVENTS.to_vec(), all);
        assert_eq!(events_of(None).ok(), Some(all));
        let audit = events_of(Some(&[TimelineSource::Audit])).ok();
        assert_eq!(audit, Some(vec![TimelineEvent::Audited]));
        let refused = events_of(Some(&[TimelineSource::Audit, TimelineSource::Thread])).err();
        assert_eq!(refused.map(|e| e.code()), Some(ErrorCode::ValidationError));
    }
}
