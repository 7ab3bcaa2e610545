//! `mttrly_get_server_timeline`'s rules: one server's alerts, deploys, investigations, actions
//! and audit rows as one stream (what one item is: `db::timeline`; the order and the cursor:
//! `mttrly_core::tools::timeline`).
//!
//! The plan's log retention bounds every page: nothing older than the plan keeps is shown, even
//! where a row outlived its purge. Summaries go through the redactor again on the way out, as
//! every text a host, a CI or an assistant wrote does wherever it is shown.

use mttrly_core::ids::ServerId;
use mttrly_core::redactor;
use mttrly_core::tools::timeline::{
    GetServerTimelineInput, ServerTimeline, TimelineEvent, TimelineItem, TimelineKey, TimelineSource,
};
use mttrly_core::{ErrorCode, MttrlyError};

use crate::db::accounts::TokenOwner;
use crate::db::now_ms;
use crate::db::timeline::TimelineQuery;
use crate::state::Central;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The most items a retrospective reads from its window (newest kept when there are more).
pub const MAX_WINDOW_ITEMS: usize = 2000;

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

fn events_of(sources: Option<&[TimelineSource]>) -> Vec<TimelineEvent> {
    TimelineEvent::ALL.into_iter().filter(|e| sources.is_none_or(|s| s.contains(&e.source()))).collect()
}

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
        events: events_of(input.sources.as_ref().map(mttrly_core::bounded::BoundedVec::as_slice)),
        limit: limit.saturating_add(1),
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

/// Every item of `server` (already checked) between `from_ms` and `to_ms`, oldest first, at most
/// [`MAX_WINDOW_ITEMS`] (the newest), within the plan's retention.
pub async fn window(
    central: &Central,
    caller: &TokenOwner,
    server: &ServerId,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<TimelineItem>, MttrlyError> {
    central.audit.flush().await;
    let mut query = TimelineQuery {
        server_id: server.clone(),
        since_ms: from_ms.max(retention_floor(caller, now_ms())),
        until_ms: Some(to_ms),
        before: None,
        events: TimelineEvent::ALL.to_vec(),
        limit: 500,
    };
    let mut all: Vec<TimelineItem> = Vec::new();
    loop {
        let page = central.db.account(&caller.account_id).timeline().page(&query).await?;
        let full = page.len() == 500;
        query.before = page.last().map(TimelineItem::key);
        all.extend(page.into_iter().map(redacted));
        if !full || all.len() >= MAX_WINDOW_ITEMS {
            break;
        }
    }
    all.truncate(MAX_WINDOW_ITEMS);
    all.reverse();
    Ok(all)
}
