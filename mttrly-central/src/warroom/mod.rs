//! The war room (issue 17): a team's incident channels across assistants.
//!
//! The rules the tools share: the sender is the caller's identity (the person, their role, and the
//! assistant's client name when one called), never an argument; people with the viewer role read
//! but do not post; text is redacted before it is stored; a reader sees only their account's
//! channels, within the plan's retention. `incidents` reads incidents out of threads.

pub mod autopost;
pub mod feed;
pub mod incidents;

use mttrly_core::ids::{NotificationId, UserId};
use mttrly_core::principal::{ChatProvider, Principal, Source};
use mttrly_core::redactor::redact;
use mttrly_core::tools::notify::{
    ChannelCreated, ChannelList, ChannelSubscription, CreateChannelInput, GetIncidentStatsInput,
    GetIncidentSummaryInput, GetNotificationsInput, GetThreadInput, IncidentStats, IncidentSummary, MAX_TAGS,
    Notification, NotificationFilter, NotificationPage, NotificationResource, Priorities, Priority,
    PublishNotificationInput, Sender, SubscribeChannelInput, Subscribed, Thread, UnsubscribeChannelInput, Unsubscribed,
};
use mttrly_core::{ErrorCode, MttrlyError};

use crate::db::accounts::TokenOwner;
use crate::db::warroom::{IncidentQuery, NewNotification, PageQuery};
use crate::db::{now_ms, timestamp};
use crate::state::Central;

/// The most notifications a thread answer carries (and a summary and a retrospective read).
pub(crate) const THREAD_LIMIT: u32 = 500;
/// The most incidents the statistics read.
const STATS_LIMIT: u32 = 500;
/// The default statistics period.
const DEFAULT_PERIOD_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Who is calling, as a notification names them.
pub fn sender(caller: &TokenOwner, source: Source) -> Sender {
    let ai_tool = match &caller.principal {
        Principal::Human { .. } => None,
        Principal::Assistant { client_name, .. } => Some(client_name.clone()),
    };
    Sender {
        user_id: Some(caller.principal.accountable_user().clone()),
        name: caller.user_name.clone(),
        role: Some(caller.role),
        ai_tool,
        via: source,
    }
}

/// The oldest time a reader of this account sees (its plan's retention).
fn cutoff(caller: &TokenOwner, now: i64) -> i64 {
    now.saturating_sub(i64::from(caller.plan.limits().log_retention_days) * 24 * 60 * 60 * 1000)
}

fn may_post(caller: &TokenOwner, what: &str) -> Result<(), MttrlyError> {
    crate::auth::refuse_viewer(caller, what)
}

fn invalid(message: String) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message)
}

/// Names (channel, thread, theme, tags) are stored and shown as given, and filters match them
/// exactly, so one that holds a secret is refused rather than stored altered.
fn not_a_secret(field: &str, name: &str) -> Result<(), MttrlyError> {
    let r = redact(name);
    match r.hits.first() {
        None => Ok(()),
        Some(hit) => Err(invalid(format!(
            "{field}: the name looks like a secret ({}); names are stored and shown in clear, pick another",
            hit.rule
        ))
        .with_detail("field", field)),
    }
}

/// Whether `c` is a bidirectional override or mark, which makes text read differently from what
/// it holds.
pub(crate) fn reorders(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Control and bidirectional-override characters would make a title (or any text, for the
/// overrides) read differently from what it holds: refused. A body keeps its newlines and tabs.
fn plain(field: &str, text: &str, one_line: bool) -> Result<(), MttrlyError> {
    let bad = text.chars().find(|&c| reorders(c) || (c.is_control() && (one_line || !matches!(c, '\n' | '\t' | '\r'))));
    match bad {
        None => Ok(()),
        Some(c) => Err(invalid(format!(
            "{field}: character U+{:04X} is not allowed{}",
            u32::from(c),
            if one_line { " (one line of plain text)" } else { "" }
        ))
        .with_detail("field", field)),
    }
}

/// Redacts `text`; returns it and how many secrets were replaced.
fn redacted(text: &str) -> (String, u32) {
    let r = redact(text);
    (r.text.into_owned(), r.hits.iter().map(|h| h.count).sum())
}

/// `mttrly_create_channel`.
pub async fn create_channel(
    central: &Central,
    caller: &TokenOwner,
    source: Source,
    input: CreateChannelInput,
) -> Result<ChannelCreated, MttrlyError> {
    may_post(caller, "create channels")?;
    not_a_secret("channel", input.channel.as_str())?;
    if input.channel.as_str() == "thread" {
        // `notification://thread/{id}` names a thread: a channel of that name would be ambiguous.
        return Err(invalid(
            "channel: `thread` is reserved (notification://thread/{id} names a thread); pick another name".to_owned(),
        )
        .with_detail("field", "channel"));
    }
    plain("description", input.description.as_str(), true)?;
    let now = now_ms();
    let (description, _) = redacted(input.description.as_str());
    let (channel, created) = central
        .db
        .account(&caller.account_id)
        .warroom()
        .create_channel(
            input.channel.as_str().to_owned(),
            description,
            sender(caller, source),
            now,
            cutoff(caller, now),
        )
        .await?;
    Ok(ChannelCreated { channel, created })
}

/// `mttrly_list_channels`.
pub async fn list_channels(central: &Central, caller: &TokenOwner) -> Result<ChannelList, MttrlyError> {
    let channels = central.db.account(&caller.account_id).warroom().channels(cutoff(caller, now_ms())).await?;
    Ok(ChannelList { channels })
}

/// `mttrly_publish_notification`.
pub async fn publish(
    central: &Central,
    caller: &TokenOwner,
    source: Source,
    input: PublishNotificationInput,
) -> Result<Notification, MttrlyError> {
    may_post(caller, "publish notifications")?;
    if input.tags.len() > MAX_TAGS {
        return Err(invalid(format!("tags: at most {MAX_TAGS} (got {})", input.tags.len())));
    }
    plain("title", input.title.as_str(), true)?;
    plain("body", input.body.as_str(), false)?;
    not_a_secret("channel", input.channel.as_str())?;
    if let Some(thread) = &input.thread_id {
        not_a_secret("thread_id", thread.as_str())?;
    }
    if let Some(theme) = &input.theme {
        not_a_secret("theme", theme.as_str())?;
    }
    let mut tags: Vec<String> = Vec::with_capacity(input.tags.len());
    for tag in &input.tags {
        not_a_secret("tags", tag.as_str())?;
        if !tags.iter().any(|t| t == tag.as_str()) {
            tags.push(tag.as_str().to_owned());
        }
    }
    if let Some(server) = &input.server_id {
        crate::servers::find(central, caller, server).await?;
    }
    let (title, t) = redacted(input.title.as_str());
    let (body, b) = redacted(input.body.as_str());
    let new = NewNotification {
        id: NotificationId::generate(),
        channel: input.channel.as_str().to_owned(),
        thread_id: input.thread_id.map(|t| t.as_str().to_owned()),
        in_reply_to: input.in_reply_to,
        title,
        body,
        priority: input.priority,
        theme: input.theme.map(|t| t.as_str().to_owned()),
        tags,
        server_id: input.server_id,
        sender: sender(caller, source),
        redactions: t + b,
        published_at: now_ms(),
    };
    let (seq, stored) = central.db.account(&caller.account_id).warroom().publish(new).await?;
    announce(central, &caller.account_id, seq, &stored).await;
    Ok(stored)
}

/// Hands a stored notification to this process's listeners with its channel's subscribers.
/// The notification is durable already; when the subscribers cannot be read nothing is pushed
/// (a filter nobody could read must not be skipped), and the pull path still has it.
async fn announce(central: &Central, account: &mttrly_core::ids::AccountId, seq: i64, stored: &Notification) {
    if central.warroom.listeners() == 0 {
        return;
    }
    let subscribers = match central.warroom.subscribers(&central.db, account, &stored.channel).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(channel = %stored.channel, error = %mttrly_core::ErrorChain(&e), "subscribers not read; notification not pushed");
            return;
        }
    };
    central.warroom.publish(feed::Published {
        account_id: account.clone(),
        seq,
        notification: stored.clone(),
        subscribers,
    });
}

/// The filter a subscription input asks for (names checked like a publish's).
fn filter_of(input: &SubscribeChannelInput) -> Result<NotificationFilter, MttrlyError> {
    if let Some(theme) = &input.theme {
        not_a_secret("theme", theme.as_str())?;
    }
    if let Some(tag) = &input.tag {
        not_a_secret("tag", tag.as_str())?;
    }
    let mut priorities = input.priority.as_ref().map(Priorities::to_vec).unwrap_or_default();
    priorities.sort_by_key(|p| std::cmp::Reverse(p.rank()));
    priorities.dedup();
    if priorities.len() == Priority::ALL.len() {
        priorities.clear();
    }
    Ok(NotificationFilter {
        priorities,
        theme: input.theme.as_ref().map(|t| t.as_str().to_owned()),
        tag: input.tag.as_ref().map(|t| t.as_str().to_owned()),
    })
}

/// Where a person's subscription is pushed now: MCP always (to clients subscribed to the
/// channel's resource), and each configured chat service they linked.
async fn delivers_to(central: &Central, caller: &TokenOwner, user: &UserId) -> Result<Vec<String>, MttrlyError> {
    let mut out = vec!["mcp".to_owned()];
    let Some(chat) = &central.chat else {
        return Ok(out);
    };
    for provider in ChatProvider::ALL {
        if chat.channel(provider).is_none() {
            continue;
        }
        let linked = central.db.account(&caller.account_id).chat().recipients(provider, vec![user.clone()]).await?;
        if !linked.is_empty() {
            out.push(provider.as_str().to_owned());
        }
    }
    Ok(out)
}

/// `mttrly_subscribe_channel`: for the human behind the caller (every role: whoever reads a
/// channel may have it pushed to them).
pub async fn subscribe(
    central: &Central,
    caller: &TokenOwner,
    input: SubscribeChannelInput,
) -> Result<Subscribed, MttrlyError> {
    let filter = filter_of(&input)?;
    let user = caller.principal.accountable_user().clone();
    let channel = input.channel.as_str().to_owned();
    let (stored, created) = central
        .db
        .account(&caller.account_id)
        .warroom()
        .subscribe(channel.clone(), user.clone(), filter, now_ms())
        .await?;
    central.warroom.changed(&caller.account_id, &channel);
    Ok(Subscribed {
        subscription: ChannelSubscription {
            resource: NotificationResource::channel_uri(&channel),
            channel,
            user_id: stored.user_id,
            filter: stored.filter,
            subscribed_at: timestamp(stored.subscribed_at),
            delivers_to: delivers_to(central, caller, &user).await?,
        },
        created,
    })
}

/// `mttrly_unsubscribe_channel`.
pub async fn unsubscribe(
    central: &Central,
    caller: &TokenOwner,
    input: UnsubscribeChannelInput,
) -> Result<Unsubscribed, MttrlyError> {
    let user = caller.principal.accountable_user().clone();
    let channel = input.channel.as_str().to_owned();
    let removed = central.db.account(&caller.account_id).warroom().unsubscribe(channel.clone(), user).await?;
    central.warroom.changed(&caller.account_id, &channel);
    Ok(Unsubscribed { channel, removed })
}

fn cursor(seq: i64) -> String {
    format!("n{seq}")
}

fn parse_cursor(s: &str) -> Result<i64, MttrlyError> {
    let digits =
        s.strip_prefix('n').filter(|n| !n.is_empty() && n.len() <= 18 && n.bytes().all(|b| b.is_ascii_digit()));
    digits.and_then(|n| n.parse::<i64>().ok()).ok_or_else(|| {
        MttrlyError::new(
            ErrorCode::ValidationError,
            format!("since: `{s}` is not a cursor this central gave (pass a previous answer's next_cursor)"),
        )
        .with_detail("since", s)
    })
}

/// `mttrly_get_notifications`.
pub async fn notifications(
    central: &Central,
    caller: &TokenOwner,
    input: GetNotificationsInput,
) -> Result<NotificationPage, MttrlyError> {
    let after = input.since.as_ref().map(|c| parse_cursor(c.as_str())).transpose()?;
    let channel = input.channel.as_str().to_owned();
    let limit = input.limit.get();
    let page = central
        .db
        .account(&caller.account_id)
        .warroom()
        .page(PageQuery {
            channel: channel.clone(),
            after,
            priorities: input.priority.as_ref().map(Priorities::to_vec).unwrap_or_default(),
            theme: input.theme.map(|t| t.as_str().to_owned()),
            tag: input.tag.map(|t| t.as_str().to_owned()),
            cutoff: cutoff(caller, now_ms()),
            limit,
        })
        .await?;
    let Some((last, mut rows)) = page else {
        return Err(MttrlyError::new(ErrorCode::NotFound, format!("no channel `{channel}` in this account"))
            .with_detail("channel", channel.as_str()));
    };
    let more = after.is_some() && rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = match (more, rows.last()) {
        (true, Some((seq, _))) => *seq,
        _ => last.max(rows.last().map_or(0, |(seq, _)| *seq)).max(after.unwrap_or(0)),
    };
    Ok(NotificationPage {
        channel,
        notifications: rows.into_iter().map(|(_, n)| n).collect(),
        next_cursor: cursor(next),
        more,
    })
}

async fn load_thread(central: &Central, caller: &TokenOwner, thread: &str) -> Result<Vec<Notification>, MttrlyError> {
    let rows =
        central.db.account(&caller.account_id).warroom().thread(thread, cutoff(caller, now_ms()), THREAD_LIMIT).await?;
    if rows.is_empty() {
        return Err(MttrlyError::new(ErrorCode::NotFound, format!("no thread `{thread}` in this account"))
            .with_detail("thread_id", thread));
    }
    Ok(rows)
}

/// `mttrly_get_thread`.
pub async fn thread(central: &Central, caller: &TokenOwner, input: GetThreadInput) -> Result<Thread, MttrlyError> {
    let mut rows = load_thread(central, caller, input.thread_id.as_str()).await?;
    let more = rows.len() > THREAD_LIMIT as usize;
    rows.truncate(THREAD_LIMIT as usize);
    let channel = rows.first().map(|n| n.channel.clone()).unwrap_or_default();
    Ok(Thread { thread_id: input.thread_id.as_str().to_owned(), channel, notifications: rows, more })
}

/// `mttrly_get_incident_summary`.
pub async fn incident_summary(
    central: &Central,
    caller: &TokenOwner,
    input: GetIncidentSummaryInput,
) -> Result<IncidentSummary, MttrlyError> {
    let mut rows = load_thread(central, caller, input.thread_id.as_str()).await?;
    let truncated = rows.len() > THREAD_LIMIT as usize;
    rows.truncate(THREAD_LIMIT as usize);
    incidents::summary(&rows, truncated, timestamp(now_ms())).ok_or_else(|| {
        MttrlyError::new(ErrorCode::NotFound, format!("no thread `{}` in this account", input.thread_id))
    })
}

/// `mttrly_get_incident_stats`.
pub async fn incident_stats(
    central: &Central,
    caller: &TokenOwner,
    input: GetIncidentStatsInput,
) -> Result<IncidentStats, MttrlyError> {
    let now = now_ms();
    let until = input.until.map_or(now, jiff::Timestamp::as_millisecond).min(now);
    let since = input.since.map_or(until - DEFAULT_PERIOD_MS, jiff::Timestamp::as_millisecond);
    if since >= until {
        return Err(invalid(format!("since ({}) must be before until ({})", timestamp(since), timestamp(until))));
    }
    let floor = cutoff(caller, now);
    if until <= floor {
        return Err(invalid(format!(
            "until ({}) is older than this account keeps notifications ({} days on its plan)",
            timestamp(until),
            caller.plan.limits().log_retention_days
        )));
    }
    let since = since.max(floor);
    let priorities = input.priority.as_ref().map(Priorities::to_vec).unwrap_or_default();
    let mut threads = central
        .db
        .account(&caller.account_id)
        .warroom()
        .incidents(IncidentQuery {
            since,
            until,
            channel: input.channel.map(|c| c.as_str().to_owned()),
            priorities: priorities.clone(),
            cutoff: floor,
            limit: STATS_LIMIT,
        })
        .await?;
    // The latest STATS_LIMIT were read, plus one to tell; they come oldest first.
    let truncated = threads.len() > STATS_LIMIT as usize;
    if truncated {
        threads.remove(0);
    }
    Ok(incidents::stats(&threads, timestamp(since), timestamp(until), &priorities, truncated))
}
