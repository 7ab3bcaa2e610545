//! The war room: the SQL. A publish checks the channel, the reply and the thread and writes the
//! row in one immediate transaction, so two publishers racing into a new thread cannot put it in
//! two channels.

use mttrly_core::ids::{AccountId, NotificationId, ServerId, UserId};
use mttrly_core::tools::notify::{
    Channel, INCIDENT_THEMES, Notification, NotificationFilter, Priority, Sender, themes,
};
use mttrly_core::{ErrorCode, MttrlyError};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::internal;
use crate::db::timestamp;
use crate::db::warroom::{IncidentQuery, NewNotification, Page, PageQuery, StoredSubscription};

/// A stored value this build cannot read back (a row written by a newer mttrly, or corruption).
fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Text)
}

const COLUMNS: &str = "seq, id, channel, thread_id, in_reply_to, title, body, priority, theme, tags_json, server_id, \
                       sender_json, redactions, published_at";

fn notification(r: &Row<'_>) -> rusqlite::Result<(i64, Notification)> {
    let id: String = r.get(1)?;
    let reply: Option<String> = r.get(4)?;
    let server: Option<String> = r.get(10)?;
    let tags: String = r.get(9)?;
    let sender: String = r.get(11)?;
    Ok((
        r.get(0)?,
        Notification {
            notification_id: NotificationId::parse(&id).map_err(|_| corrupt("id"))?,
            channel: r.get(2)?,
            thread_id: r.get(3)?,
            in_reply_to: reply.map(|s| NotificationId::parse(&s).map_err(|_| corrupt("in_reply_to"))).transpose()?,
            title: r.get(5)?,
            body: r.get(6)?,
            priority: Priority::from_rank(r.get(7)?).ok_or_else(|| corrupt("priority"))?,
            theme: r.get(8)?,
            tags: serde_json::from_str(&tags).map_err(|_| corrupt("tags_json"))?,
            server_id: server.map(|s| ServerId::parse(&s).map_err(|_| corrupt("server_id"))).transpose()?,
            sender: serde_json::from_str(&sender).map_err(|_| corrupt("sender_json"))?,
            redactions: r.get(12)?,
            published_at: timestamp(r.get(13)?),
        },
    ))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, MttrlyError> {
    serde_json::to_string(value).map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot encode: {e}")))
}

fn channel_row(
    conn: &Connection,
    account: &AccountId,
    name: &str,
    cutoff: i64,
) -> Result<Option<Channel>, MttrlyError> {
    conn.query_row(
        "SELECT c.name, c.description, c.created_by_json, c.created_at,
                (SELECT COUNT(*) FROM notifications n WHERE n.account_id = c.account_id AND n.channel = c.name AND n.published_at >= ?3),
                (SELECT MAX(published_at) FROM notifications n WHERE n.account_id = c.account_id AND n.channel = c.name AND n.published_at >= ?3)
         FROM notify_channels c WHERE c.account_id = ?1 AND c.name = ?2",
        params![account.as_str(), name, cutoff],
        channel,
    )
    .optional()
    .map_err(internal)
}

fn channel(r: &Row<'_>) -> rusqlite::Result<Channel> {
    let by: String = r.get(2)?;
    let count: i64 = r.get(4)?;
    Ok(Channel {
        channel: r.get(0)?,
        description: r.get(1)?,
        created_by: serde_json::from_str::<Sender>(&by).map_err(|_| corrupt("created_by_json"))?,
        created_at: timestamp(r.get(3)?),
        notifications: u64::try_from(count).unwrap_or(0),
        last_published_at: r.get::<_, Option<i64>>(5)?.map(timestamp),
    })
}

/// Creates a channel, or returns the existing one (`false`) unchanged.
pub(in crate::db) fn create_channel(
    conn: &mut Connection,
    account: &AccountId,
    name: &str,
    description: &str,
    created_by: &Sender,
    now: i64,
    cutoff: i64,
) -> Result<(Channel, bool), MttrlyError> {
    let by = encode(created_by)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let inserted = tx
        .execute(
            "INSERT INTO notify_channels (account_id, name, description, created_by_json, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![account.as_str(), name, description, by, now],
        )
        .map_err(internal)?;
    let row = channel_row(&tx, account, name, cutoff)?
        .ok_or_else(|| MttrlyError::new(ErrorCode::InternalError, "the channel vanished while it was created"))?;
    tx.commit().map_err(internal)?;
    Ok((row, inserted == 1))
}

/// The account's channels, by name.
pub(in crate::db) fn channels(
    conn: &Connection,
    account: &AccountId,
    cutoff: i64,
) -> Result<Vec<Channel>, MttrlyError> {
    let mut stmt = conn
        .prepare(
            "SELECT c.name, c.description, c.created_by_json, c.created_at,
                    (SELECT COUNT(*) FROM notifications n WHERE n.account_id = c.account_id AND n.channel = c.name AND n.published_at >= ?2),
                    (SELECT MAX(published_at) FROM notifications n WHERE n.account_id = c.account_id AND n.channel = c.name AND n.published_at >= ?2)
             FROM notify_channels c WHERE c.account_id = ?1 ORDER BY c.name",
        )
        .map_err(internal)?;
    let rows = stmt.query_map(params![account.as_str(), cutoff], channel).map_err(internal)?;
    rows.collect::<Result<_, _>>().map_err(internal)
}

fn not_found(message: String) -> MttrlyError {
    MttrlyError::new(ErrorCode::NotFound, message)
}

fn invalid(message: String) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message)
}

/// One publish's answer: the notification's position and the notification as stored.
pub(in crate::db) type Published = Result<(i64, Notification), MttrlyError>;

/// What one batch has learnt of the war room so far. The batch is one transaction holding the
/// database's write lock, so nothing but the batch itself changes channels or threads meanwhile:
/// an answer read once stays true until the batch writes, and the batch records its own writes.
#[derive(Default)]
struct BatchMemo<'a> {
    /// Channels known to exist, by account.
    channels: std::collections::HashSet<(&'a str, &'a str)>,
    /// The channel a thread is in (`None`: no notification in it yet), by account and thread.
    threads: std::collections::HashMap<(&'a str, String), Option<String>>,
}

/// Stores a batch of notifications inside the caller's transaction (the journal writer's, see
/// `group_commit.rs`). Each publish gets its own answer, in order: a refused one (an unknown
/// channel, say) leaves nothing behind and does not affect the others. `Err` when an error ended
/// the transaction itself, and then nothing of the batch is stored.
///
/// No savepoint per publish (the first profile of the writer thread showed savepoints and their
/// sub-journal at about an eighth of its time): every check of a publish is a read made before its
/// one write, a single `INSERT`, and SQLite undoes a failed statement by itself
/// (`ON CONFLICT ABORT`) and leaves the transaction open. An error that instead ends the whole
/// transaction (a full disk, an I/O error) fails the whole batch, before anything further could
/// be written outside it.
pub(in crate::db) fn publish_in<'a>(
    tx: &Connection,
    items: &[(&'a AccountId, &'a NewNotification)],
) -> Result<Vec<Published>, MttrlyError> {
    let mut memo = BatchMemo::default();
    let mut results = Vec::with_capacity(items.len());
    for &(account, new) in items {
        let result = publish_one(tx, &mut memo, account, new);
        if result.is_err() && tx.is_autocommit() {
            return Err(MttrlyError::new(ErrorCode::InternalError, "the publish transaction was rolled back"));
        }
        results.push(result);
    }
    Ok(results)
}

/// Stores one notification inside the caller's transaction: its channel must exist, the
/// notification it answers must be the account's, and a thread stays in the channel it started
/// in. Returns it with its position. Every check reads before the one write (see
/// [`publish_all`]): a refusal has written nothing.
fn publish_one<'a>(
    tx: &Connection,
    memo: &mut BatchMemo<'a>,
    account: &'a AccountId,
    new: &'a NewNotification,
) -> Result<(i64, Notification), MttrlyError> {
    let tags = encode(&new.tags)?;
    let sender = encode(&new.sender)?;
    let key = (account.as_str(), new.channel.as_str());
    if !memo.channels.contains(&key) {
        let exists: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM notify_channels WHERE account_id = ?1 AND name = ?2)")
            .and_then(|mut s| s.query_row(params![account.as_str(), new.channel], |r| r.get(0)))
            .map_err(internal)?;
        if !exists {
            return Err(not_found(format!(
                "no channel `{}` in this account: create it with mttrly_create_channel (mttrly_list_channels lists them)",
                new.channel
            ))
            .with_detail("channel", new.channel.as_str()));
        }
        memo.channels.insert(key);
    }
    let mut thread = new.thread_id.clone();
    if let Some(reply) = &new.in_reply_to {
        let parent: Option<String> = tx
            .prepare_cached("SELECT thread_id FROM notifications WHERE account_id = ?1 AND id = ?2")
            .and_then(|mut s| s.query_row(params![account.as_str(), reply.as_str()], |r| r.get(0)).optional())
            .map_err(internal)?;
        let Some(parent) = parent else {
            return Err(not_found(format!("in_reply_to: no notification {reply} in this account"))
                .with_detail("in_reply_to", reply.as_str()));
        };
        match &thread {
            Some(t) if *t != parent => {
                return Err(invalid(format!(
                    "in_reply_to {reply} is in thread `{parent}`, not `{t}`: leave thread_id out, or answer a notification of `{t}`"
                )));
            }
            _ => thread = Some(parent),
        }
    }
    let thread = thread.unwrap_or_else(|| new.id.as_str().to_owned());
    let thread_key = (account.as_str(), thread.clone());
    let thread_channel = if let Some(known) = memo.threads.get(&thread_key) {
        known.clone()
    } else {
        let found: Option<String> = tx
            .prepare_cached(
                "SELECT channel FROM notifications WHERE account_id = ?1 AND thread_id = ?2 ORDER BY seq LIMIT 1",
            )
            .and_then(|mut s| s.query_row(params![account.as_str(), thread], |r| r.get(0)).optional())
            .map_err(internal)?;
        memo.threads.insert(thread_key.clone(), found.clone());
        found
    };
    if let Some(other) = thread_channel.filter(|c| *c != new.channel) {
        return Err(invalid(format!(
            "thread `{thread}` belongs to channel `{other}`: post to `{other}`, or start another thread"
        ))
        .with_detail("thread_id", thread.as_str()));
    }
    tx.prepare_cached(
        "INSERT INTO notifications (id, account_id, channel, thread_id, in_reply_to, title, body, priority, theme,
                                    tags_json, server_id, sender_json, redactions, published_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut s| {
        s.execute(params![
            new.id.as_str(),
            account.as_str(),
            new.channel,
            thread,
            new.in_reply_to.as_ref().map(NotificationId::as_str),
            new.title,
            new.body,
            new.priority.rank(),
            new.theme,
            tags,
            new.server_id.as_ref().map(ServerId::as_str),
            sender,
            new.redactions,
            new.published_at,
        ])
    })
    .map_err(internal)?;
    let seq = tx.last_insert_rowid();
    // The thread is now in this channel for the rest of the batch.
    memo.threads.insert(thread_key, Some(new.channel.clone()));
    Ok((
        seq,
        Notification {
            notification_id: new.id.clone(),
            channel: new.channel.clone(),
            thread_id: thread,
            in_reply_to: new.in_reply_to.clone(),
            title: new.title.clone(),
            body: new.body.clone(),
            priority: new.priority,
            theme: new.theme.clone(),
            tags: new.tags.clone(),
            server_id: new.server_id.clone(),
            sender: new.sender.clone(),
            redactions: new.redactions,
            published_at: timestamp(new.published_at),
        },
    ))
}

/// Whether the account has the channel.
pub(in crate::db) fn has_channel(conn: &Connection, account: &AccountId, name: &str) -> Result<bool, MttrlyError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM notify_channels WHERE account_id = ?1 AND name = ?2)",
        params![account.as_str(), name],
        |r| r.get(0),
    )
    .map_err(internal)
}

fn priority_bits(priorities: &[Priority]) -> i64 {
    priorities.iter().fold(0, |bits, p| bits | (1 << p.rank()))
}

fn priorities_of(bits: i64) -> Vec<Priority> {
    // Highest first, as a person reads them.
    Priority::ALL.iter().rev().copied().filter(|p| bits & (1 << p.rank()) != 0).collect()
}

fn subscription_row(r: &Row<'_>) -> rusqlite::Result<StoredSubscription> {
    let user: String = r.get(1)?;
    Ok(StoredSubscription {
        channel: r.get(0)?,
        user_id: UserId::parse(&user).map_err(|_| corrupt("user_id"))?,
        filter: NotificationFilter { priorities: priorities_of(r.get(2)?), theme: r.get(3)?, tag: r.get(4)? },
        subscribed_at: r.get(5)?,
    })
}

const SUBSCRIPTION_COLUMNS: &str = "channel, user_id, priorities, theme, tag, subscribed_at";

/// Subscribes `user` to `channel` with `filter`, replacing an earlier filter; `true` when the
/// subscription is new. NOT_FOUND when the account has no such channel.
pub(in crate::db) fn subscribe(
    conn: &mut Connection,
    account: &AccountId,
    channel: &str,
    user: &UserId,
    filter: &NotificationFilter,
    now: i64,
) -> Result<(StoredSubscription, bool), MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    if !has_channel(&tx, account, channel)? {
        return Err(not_found(format!("no channel `{channel}` in this account")).with_detail("channel", channel));
    }
    let existed: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM notify_subscriptions WHERE account_id = ?1 AND channel = ?2 AND user_id = ?3)",
            params![account.as_str(), channel, user.as_str()],
            |r| r.get(0),
        )
        .map_err(internal)?;
    tx.execute(
        "INSERT INTO notify_subscriptions (account_id, channel, user_id, priorities, theme, tag, subscribed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (account_id, channel, user_id) DO UPDATE SET
           priorities = excluded.priorities, theme = excluded.theme, tag = excluded.tag,
           subscribed_at = excluded.subscribed_at",
        params![
            account.as_str(),
            channel,
            user.as_str(),
            priority_bits(&filter.priorities),
            filter.theme,
            filter.tag,
            now
        ],
    )
    .map_err(internal)?;
    let row = tx
        .query_row(
            &format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM notify_subscriptions
                 WHERE account_id = ?1 AND channel = ?2 AND user_id = ?3"
            ),
            params![account.as_str(), channel, user.as_str()],
            subscription_row,
        )
        .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok((row, !existed))
}

/// Removes `user`'s subscription to `channel`; `true` when there was one.
pub(in crate::db) fn unsubscribe(
    conn: &Connection,
    account: &AccountId,
    channel: &str,
    user: &UserId,
) -> Result<bool, MttrlyError> {
    let n = conn
        .execute(
            "DELETE FROM notify_subscriptions WHERE account_id = ?1 AND channel = ?2 AND user_id = ?3",
            params![account.as_str(), channel, user.as_str()],
        )
        .map_err(internal)?;
    Ok(n > 0)
}

/// The living people subscribed to `channel`, with their filters.
pub(in crate::db) fn subscribers(
    conn: &Connection,
    account: &AccountId,
    channel: &str,
) -> Result<Vec<StoredSubscription>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT s.channel, s.user_id, s.priorities, s.theme, s.tag, s.subscribed_at
             FROM notify_subscriptions s JOIN users u ON u.id = s.user_id AND u.removed_at IS NULL
             WHERE s.account_id = ?1 AND s.channel = ?2 ORDER BY s.user_id",
        )
        .map_err(internal)?;
    let rows = stmt.query_map(params![account.as_str(), channel], subscription_row).map_err(internal)?;
    rows.collect::<Result<_, _>>().map_err(internal)
}

/// The thread of `server`'s open incident in `channel` (`None`: the incidents no server was
/// matched for): the latest incident report about it whose thread has no resolution after it.
pub(in crate::db) fn open_incident(
    conn: &Connection,
    account: &AccountId,
    channel: &str,
    server: Option<&ServerId>,
) -> Result<Option<String>, MttrlyError> {
    conn.query_row(
        "SELECT n.thread_id FROM notifications n
         WHERE n.account_id = ?1 AND n.server_id IS ?2 AND n.channel = ?3 AND n.theme IN (?4, ?5)
           AND NOT EXISTS (SELECT 1 FROM notifications r
                           WHERE r.account_id = n.account_id AND r.thread_id = n.thread_id
                             AND r.theme = ?6 AND r.seq > n.seq)
         ORDER BY n.seq DESC LIMIT 1",
        params![
            account.as_str(),
            server.map(ServerId::as_str),
            channel,
            themes::ALERT,
            themes::SECURITY,
            themes::RESOLVED
        ],
        |r| r.get(0),
    )
    .optional()
    .map_err(internal)
}

/// A page of a channel with the channel's latest position, read first (so a notification
/// published meanwhile is in the page or after that position, never skipped); `None` when the
/// account has no such channel.
pub(in crate::db) fn page_and_last(
    conn: &Connection,
    account: &AccountId,
    q: &PageQuery,
) -> Result<Option<Page>, MttrlyError> {
    if !has_channel(conn, account, &q.channel)? {
        return Ok(None);
    }
    let last = last_seq(conn, account, &q.channel)?;
    Ok(Some((last, page(conn, account, q)?)))
}

/// A page of a channel, oldest first: after `after` (or the latest `limit` when absent), within
/// the filters; one more than `limit` is read to tell whether more wait.
fn page(conn: &Connection, account: &AccountId, q: &PageQuery) -> Result<Vec<(i64, Notification)>, MttrlyError> {
    // `+published_at`: walk the channel's positions, with the retention floor as a filter.
    let mut sql =
        format!("SELECT {COLUMNS} FROM notifications WHERE account_id = ?1 AND channel = ?2 AND +published_at >= ?3");
    let mut args: Vec<Box<dyn rusqlite::ToSql>> =
        vec![Box::new(account.as_str().to_owned()), Box::new(q.channel.clone()), Box::new(q.cutoff)];
    if !q.priorities.is_empty() {
        let list: Vec<String> = q.priorities.iter().map(|p| p.rank().to_string()).collect();
        sql.push_str(&format!(" AND priority IN ({})", list.join(",")));
    }
    if let Some(theme) = &q.theme {
        args.push(Box::new(theme.clone()));
        sql.push_str(&format!(" AND theme = ?{}", args.len()));
    }
    if let Some(tag) = &q.tag {
        args.push(Box::new(tag.clone()));
        sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM json_each(tags_json) WHERE value = ?{})", args.len()));
    }
    let fetch = i64::from(q.limit) + 1;
    let rows: Vec<(i64, Notification)> = if let Some(after) = q.after {
        args.push(Box::new(after));
        sql.push_str(&format!(" AND seq > ?{} ORDER BY seq LIMIT {fetch}", args.len()));
        let mut stmt = conn.prepare(&sql).map_err(internal)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter().map(AsRef::as_ref)), notification)
            .map_err(internal)?;
        rows.collect::<Result<_, _>>().map_err(internal)?
    } else {
        // The latest page: newest first in SQL, then turned around.
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", q.limit));
        let mut stmt = conn.prepare(&sql).map_err(internal)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter().map(AsRef::as_ref)), notification)
            .map_err(internal)?;
        let mut rows: Vec<(i64, Notification)> = rows.collect::<Result<_, _>>().map_err(internal)?;
        rows.reverse();
        rows
    };
    Ok(rows)
}

/// The latest position in a channel (what a reader with nothing new resumes from).
fn last_seq(conn: &Connection, account: &AccountId, channel: &str) -> Result<i64, MttrlyError> {
    conn.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM notifications WHERE account_id = ?1 AND channel = ?2",
        params![account.as_str(), channel],
        |r| r.get(0),
    )
    .map_err(internal)
}

/// A thread, oldest first: at most `limit` + 1 notifications.
pub(in crate::db) fn thread(
    conn: &Connection,
    account: &AccountId,
    thread: &str,
    cutoff: i64,
    limit: u32,
) -> Result<Vec<Notification>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            // `+published_at`: the retention floor is a filter, never the index to walk (the
            // time index would scan the whole account instead of the thread).
            "SELECT {COLUMNS} FROM notifications WHERE account_id = ?1 AND thread_id = ?2 AND +published_at >= ?3
             ORDER BY seq LIMIT ?4"
        ))
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), thread, cutoff, i64::from(limit) + 1], notification)
        .map_err(internal)?;
    rows.map(|r| r.map(|(_, n)| n)).collect::<Result<_, _>>().map_err(internal)
}

/// The incident threads (a notification with one of `INCIDENT_THEMES`) that opened in
/// `[since, until)` (at their first report, else at their first incident notification) and
/// whose highest priority is one of `priorities` (any when empty): the latest `limit` + 1, each
/// with its notifications since `cutoff`, oldest first, threads in the order they opened.
pub(in crate::db) fn incidents(
    conn: &Connection,
    account: &AccountId,
    q: &IncidentQuery,
) -> Result<Vec<Vec<Notification>>, MttrlyError> {
    let marks = INCIDENT_THEMES.map(|t| format!("'{t}'")).join(",");
    let opens = [themes::ALERT, themes::SECURITY].map(|t| format!("'{t}'")).join(",");
    let ranks: Vec<String> = q.priorities.iter().map(|p| p.rank().to_string()).collect();
    let by_priority =
        if ranks.is_empty() { String::new() } else { format!(" AND MAX(priority) IN ({})", ranks.join(",")) };
    // Every interpolated piece is a constant of this build (themes, priority ranks): the values a
    // caller gives are bound.
    let sql = format!(
        "WITH opened AS (
             SELECT thread_id, COALESCE(MIN(CASE WHEN theme IN ({opens}) THEN published_at END),
                                        MIN(CASE WHEN theme IN ({marks}) THEN published_at END)) AS at
             FROM notifications
             WHERE account_id = ?1 AND +published_at >= ?5 AND (?4 IS NULL OR channel = ?4)
               AND thread_id IN (SELECT thread_id FROM notifications WHERE account_id = ?1
                                   AND published_at >= ?2 AND published_at < ?3 AND theme IN ({marks}))
             GROUP BY thread_id
             HAVING at >= ?2 AND at < ?3{by_priority}
             ORDER BY at DESC LIMIT ?6)
         SELECT {COLUMNS}, opened.at FROM notifications JOIN opened USING (thread_id)
         WHERE account_id = ?1 AND +published_at >= ?5
         ORDER BY opened.at, thread_id, seq"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), q.since, q.until, q.channel, q.cutoff, i64::from(q.limit) + 1], |r| {
            Ok((r.get::<_, String>(3)?, notification(r)?.1))
        })
        .map_err(internal)?;
    let mut threads: Vec<Vec<Notification>> = Vec::new();
    let mut current: Option<String> = None;
    for row in rows {
        let (thread, n) = row.map_err(internal)?;
        match threads.last_mut() {
            Some(last) if current.as_deref() == Some(thread.as_str()) => last.push(n),
            _ => {
                threads.push(vec![n]);
                current = Some(thread);
            }
        }
    }
    Ok(threads)
}

/// Removes notifications past each account's retention (`retention_ms_for` its plan).
pub(in crate::db) fn purge(
    conn: &mut Connection,
    now: i64,
    retention_ms_for: impl Fn(Option<mttrly_core::Plan>) -> i64,
) -> Result<usize, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let mut removed = 0;
    for (account, cutoff) in super::retention_cutoffs(&tx, now, retention_ms_for)? {
        removed += tx
            .execute("DELETE FROM notifications WHERE account_id = ?1 AND published_at < ?2", params![account, cutoff])
            .map_err(internal)?;
    }
    tx.commit().map_err(internal)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mttrly_core::ids::{NotificationId, UserId};
    use mttrly_core::tools::notify::{Priority, Sender};
    use mttrly_core::{ErrorCode, Plan, Role, Source};

    use crate::db::Db;
    use crate::db::warroom::NewNotification;

    fn note(thread: &str, at: i64) -> NewNotification {
        NewNotification {
            id: NotificationId::generate(),
            channel: "incidents".into(),
            thread_id: Some(thread.into()),
            in_reply_to: None,
            title: format!("t{at}"),
            body: String::new(),
            priority: Priority::High,
            theme: None,
            tags: Vec::new(),
            server_id: None,
            sender: Sender {
                user_id: Some(UserId::generate()),
                name: "alice".into(),
                role: Some(Role::Operator),
                ai_tool: None,
                via: Source::Cli,
            },
            redactions: 0,
            published_at: at,
        }
    }

    /// Without a savepoint per publish, an `INSERT` that fails after every check passed (here the
    /// same notification id twice) must undo itself alone: the batch's transaction stays open,
    /// the publishes before and after it are stored, and the refused one's thread is not taken.
    #[tokio::test]
    async fn an_insert_refused_by_the_database_mid_batch_undoes_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (a, _) = db.create_tenant("a", Plan::DeploymentCrew, "alice", &[1; 32]).await.unwrap();
        let room = db.account(&a).warroom();
        room.create_channel("incidents".into(), String::new(), note("x", 0).sender, 1, 0).await.unwrap();
        room.create_channel("deploys".into(), String::new(), note("x", 0).sender, 1, 0).await.unwrap();
        let before = note("t1", 10);
        let mut duplicate = note("t2", 11);
        duplicate.id = before.id.clone();
        // t2 was never stored, so another channel may start it within the same batch.
        let mut elsewhere = note("t2", 12);
        elsewhere.channel = "deploys".into();
        let after = note("t1", 13);
        let batch = [before, duplicate, elsewhere, after];
        let account = a.clone();
        let results = db
            .sqlite
            .call(move |conn| {
                let items: Vec<_> = batch.iter().map(|n| (&account, n)).collect();
                let results =
                    super::super::commit_batch(conn, None, &std::collections::HashMap::new(), Ok(Vec::new()), &items)
                        .map(|(answers, _)| answers);
                assert!(conn.is_autocommit(), "the batch's transaction is committed");
                results
            })
            .await
            .unwrap();
        assert_eq!(results.len(), 4);
        assert_eq!(results[1].as_ref().unwrap_err().code(), ErrorCode::InternalError);
        for i in [0, 2, 3] {
            assert!(results[i].is_ok(), "publish {i}: {:?}", results[i]);
        }
        let t1 = room.thread("t1", 0, 10).await.unwrap();
        assert_eq!(t1.iter().map(|n| n.title.as_str()).collect::<Vec<_>>(), ["t10", "t13"]);
        let t2 = room.thread("t2", 0, 10).await.unwrap();
        assert_eq!(t2.len(), 1, "the duplicate left nothing behind");
        assert_eq!((t2[0].channel.as_str(), t2[0].title.as_str()), ("deploys", "t12"));
    }
}
