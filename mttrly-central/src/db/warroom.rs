//! A tenant's war room: channels and the notifications in them (issue 17).
//!
//! Everything here is scoped to one account; a channel, a thread or a notification of another
//! account is never found. Text arrives already redacted; the sender is the caller's identity.

use mttrly_core::MttrlyError;
use mttrly_core::ids::{NotificationId, ServerId, UserId};
use mttrly_core::tools::notify::{Channel, Notification, NotificationFilter, Priority, Sender};

use super::{Account, sqlite};

/// A notification to store (text redacted, sender from the caller's credentials).
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// Its id.
    pub id: NotificationId,
    /// The channel (checked to exist in the same transaction).
    pub channel: String,
    /// The thread named by the publisher, if any.
    pub thread_id: Option<String>,
    /// The notification it answers, if any.
    pub in_reply_to: Option<NotificationId>,
    /// Title (redacted).
    pub title: String,
    /// Body (redacted).
    pub body: String,
    /// How urgent.
    pub priority: Priority,
    /// Its theme.
    pub theme: Option<String>,
    /// Its tags (redacted).
    pub tags: Vec<String>,
    /// The server it is about (already checked to be the account's).
    pub server_id: Option<ServerId>,
    /// Who sent it.
    pub sender: Sender,
    /// Secrets replaced.
    pub redactions: u32,
    /// When (ms).
    pub published_at: i64,
}

/// A channel's latest position, and a page of it with each notification's position.
pub type Page = (i64, Vec<(i64, Notification)>);

/// What a page of a channel reads.
#[derive(Debug, Clone)]
pub struct PageQuery {
    /// The channel.
    pub channel: String,
    /// Only after this position; the latest page when absent.
    pub after: Option<i64>,
    /// Only these priorities (all when empty).
    pub priorities: Vec<Priority>,
    /// Only this theme.
    pub theme: Option<String>,
    /// Only with this tag.
    pub tag: Option<String>,
    /// Only published at or after this (ms): the plan's retention.
    pub cutoff: i64,
    /// At most this many (one more is read to tell whether more wait).
    pub limit: u32,
}

/// What the statistics read.
#[derive(Debug, Clone)]
pub struct IncidentQuery {
    /// Opened at or after (ms).
    pub since: i64,
    /// Opened before (ms).
    pub until: i64,
    /// Only this channel.
    pub channel: Option<String>,
    /// Only incidents whose highest priority is one of these (any when empty).
    pub priorities: Vec<Priority>,
    /// Notifications older than this are gone (the plan's retention, ms).
    pub cutoff: i64,
    /// The latest this many (one more is read to tell whether the period holds more).
    pub limit: u32,
}

/// A person's subscription to a channel, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The channel.
    pub channel: String,
    /// The person.
    pub user_id: UserId,
    /// What they want pushed.
    pub filter: NotificationFilter,
    /// When it was set (ms).
    pub subscribed_at: i64,
}

/// A tenant's war room. Built by [`Account::warroom`].
pub struct WarRoom<'a> {
    pub(super) account: Account<'a>,
}

impl WarRoom<'_> {
    /// Creates a channel, or returns the existing one unchanged (`false`).
    pub async fn create_channel(
        &self,
        name: String,
        description: String,
        created_by: Sender,
        now: i64,
        cutoff: i64,
    ) -> Result<(Channel, bool), MttrlyError> {
        let account = self.account.id.clone();
        self.account
            .db
            .sqlite
            .call(move |conn| {
                sqlite::warroom::create_channel(conn, &account, &name, &description, &created_by, now, cutoff)
            })
            .await
    }

    /// The channels, by name, counting notifications published at or after `cutoff`.
    pub async fn channels(&self, cutoff: i64) -> Result<Vec<Channel>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::warroom::channels(conn, &account, cutoff)).await
    }

    /// Whether the channel exists.
    pub async fn has_channel(&self, name: &str) -> Result<bool, MttrlyError> {
        let (account, name) = (self.account.id.clone(), name.to_owned());
        self.account.db.sqlite.read(move |conn| sqlite::warroom::has_channel(conn, &account, &name)).await
    }

    /// Stores a notification; returns it with its position in the account.
    pub async fn publish(&self, new: NewNotification) -> Result<(i64, Notification), MttrlyError> {
        self.account.db.sqlite.publish(self.account.id.clone(), new).await
    }

    /// Subscribes `user` to `channel` (replacing the filter); `true` when new. NOT_FOUND when
    /// there is no such channel.
    pub async fn subscribe(
        &self,
        channel: String,
        user: UserId,
        filter: NotificationFilter,
        now: i64,
    ) -> Result<(StoredSubscription, bool), MttrlyError> {
        let account = self.account.id.clone();
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::warroom::subscribe(conn, &account, &channel, &user, &filter, now))
            .await
    }

    /// Removes `user`'s subscription to `channel`; `true` when there was one.
    pub async fn unsubscribe(&self, channel: String, user: UserId) -> Result<bool, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.call(move |conn| sqlite::warroom::unsubscribe(conn, &account, &channel, &user)).await
    }

    /// The living people subscribed to `channel`, with their filters.
    pub async fn subscribers(&self, channel: String) -> Result<Vec<StoredSubscription>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::warroom::subscribers(conn, &account, &channel)).await
    }

    /// The thread of `server`'s open incident in `channel`, if any (`None` for the incidents
    /// no server was matched for).
    pub async fn open_incident(
        &self,
        channel: String,
        server: Option<ServerId>,
    ) -> Result<Option<String>, MttrlyError> {
        let account = self.account.id.clone();
        self.account
            .db
            .sqlite
            .read(move |conn| sqlite::warroom::open_incident(conn, &account, &channel, server.as_ref()))
            .await
    }

    /// The channel's latest position and a page of it, oldest first, with positions (up to
    /// `limit` + 1 rows), in one read; `None` when the account has no such channel.
    pub async fn page(&self, query: PageQuery) -> Result<Option<Page>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::warroom::page_and_last(conn, &account, &query)).await
    }

    /// A thread, oldest first (up to `limit` + 1 notifications).
    pub async fn thread(&self, thread: &str, cutoff: i64, limit: u32) -> Result<Vec<Notification>, MttrlyError> {
        let (account, thread) = (self.account.id.clone(), thread.to_owned());
        self.account.db.sqlite.read(move |conn| sqlite::warroom::thread(conn, &account, &thread, cutoff, limit)).await
    }

    /// The incident threads of the period, each oldest first, in the order they opened (up to
    /// `limit` + 1, the latest ones).
    pub async fn incidents(&self, query: IncidentQuery) -> Result<Vec<Vec<Notification>>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::warroom::incidents(conn, &account, &query)).await
    }
}

impl super::Maintenance<'_> {
    /// Removes notifications past each account's retention; returns how many.
    pub async fn purge_notifications(
        &self,
        now: i64,
        retention_ms_for: impl Fn(Option<mttrly_core::Plan>) -> i64 + Send + 'static,
    ) -> Result<usize, MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::warroom::purge(conn, now, retention_ms_for)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mttrly_core::ids::UserId;
    use mttrly_core::role::Role;
    use mttrly_core::{ErrorCode, Plan, Source};

    use super::*;
    use crate::db::Db;

    fn sender(user: &UserId) -> Sender {
        Sender {
            user_id: Some(user.clone()),
            name: "alice".into(),
            role: Some(Role::Operator),
            ai_tool: None,
            via: Source::Cli,
        }
    }

    fn note(
        channel: &str,
        thread: Option<&str>,
        reply: Option<&NotificationId>,
        user: &UserId,
        at: i64,
    ) -> NewNotification {
        NewNotification {
            id: NotificationId::generate(),
            channel: channel.into(),
            thread_id: thread.map(str::to_owned),
            in_reply_to: reply.cloned(),
            title: "t".into(),
            body: String::new(),
            priority: Priority::High,
            theme: Some("incident-alert".into()),
            tags: vec!["db".into()],
            server_id: None,
            sender: sender(user),
            redactions: 0,
            published_at: at,
        }
    }

    fn period(since: i64, until: i64) -> IncidentQuery {
        IncidentQuery { since, until, channel: None, priorities: Vec::new(), cutoff: 0, limit: 10 }
    }

    /// Group commit: one transaction, each publish judged on what the ones before it in the
    /// batch wrote, a refusal rolling back only itself.
    #[tokio::test]
    async fn a_batch_answers_each_publish_in_order_and_a_refusal_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (a, _) = db.create_tenant("a", Plan::DeploymentCrew, "alice", &[1; 32]).await.unwrap();
        let user = UserId::generate();
        let room = db.account(&a).warroom();
        for name in ["incidents", "deploys"] {
            room.create_channel(name.into(), String::new(), sender(&user), 1, 0).await.unwrap();
        }
        let first = note("incidents", Some("t1"), None, &user, 10);
        let elsewhere = note("deploys", Some("t1"), None, &user, 11);
        let unknown = note("nope", None, None, &user, 12);
        let mut reply = note("incidents", None, None, &user, 13);
        reply.in_reply_to = Some(first.id.clone());
        let batch = [first, elsewhere, unknown, reply];
        let account = a.clone();
        let results = db
            .sqlite
            .call(move |conn| {
                let items: Vec<_> = batch.iter().map(|n| (&account, n)).collect();
                let results =
                    sqlite::commit_batch(conn, None, &std::collections::HashMap::new(), Ok(Vec::new()), &items)
                        .map(|(answers, _)| answers);
                let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
                assert_eq!(sync, 1, "the connection is back to NORMAL after a durable batch");
                results
            })
            .await
            .unwrap();
        assert_eq!(results.len(), 4);
        let (seq, stored) = results[0].as_ref().unwrap();
        assert_eq!(stored.thread_id, "t1");
        let err = results[1].as_ref().unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "the thread began in the same batch: {err}");
        assert_eq!(results[2].as_ref().unwrap_err().code(), ErrorCode::NotFound);
        let (reply_seq, reply) = results[3].as_ref().unwrap();
        assert_eq!(reply.thread_id, "t1", "a reply to a notification of the same batch joins its thread");
        assert!(reply_seq > seq);
        let thread = room.thread("t1", 0, 10).await.unwrap();
        assert_eq!(thread.len(), 2, "the refusals stored nothing");
        assert!(thread.iter().all(|n| n.channel == "incidents"));
    }

    /// Many publishers at once: every answered publish is stored exactly once at its own
    /// position, every refused one not at all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_publishes_are_all_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (a, _) = db.create_tenant("a", Plan::DeploymentCrew, "alice", &[1; 32]).await.unwrap();
        let user = UserId::generate();
        db.account(&a).warroom().create_channel("load".into(), String::new(), sender(&user), 1, 0).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..400_i64 {
            let (db, a, user) = (db.clone(), a.clone(), user.clone());
            tasks.push(tokio::spawn(async move {
                let channel = if i % 7 == 0 { "missing" } else { "load" };
                let thread = format!("t{}", i % 10);
                db.account(&a).warroom().publish(note(channel, Some(&thread), None, &user, i)).await
            }));
        }
        let mut seqs = std::collections::BTreeSet::new();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok((seq, _)) => {
                    assert!(seqs.insert(seq), "position {seq} given twice");
                    ok += 1;
                }
                Err(e) => assert_eq!(e.code(), ErrorCode::NotFound, "{e}"),
            }
        }
        assert_eq!(ok, 400 - 58, "every seventh publish names a missing channel");
        let room = db.account(&a).warroom();
        let mut stored = 0;
        for t in 0..10 {
            stored += room.thread(&format!("t{t}"), 0, 1000).await.unwrap().len();
        }
        assert_eq!(stored, ok);
    }

    #[tokio::test]
    async fn threads_stay_in_their_channel_and_accounts_see_only_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (a, _) = db.create_tenant("a", Plan::DeploymentCrew, "alice", &[1; 32]).await.unwrap();
        let (b, _) = db.create_tenant("b", Plan::DeploymentCrew, "eve", &[2; 32]).await.unwrap();
        let user = UserId::generate();
        let room = db.account(&a).warroom();
        for name in ["incidents", "deploys"] {
            let (_, created) = room.create_channel(name.into(), String::new(), sender(&user), 1, 0).await.unwrap();
            assert!(created);
        }
        let (_, again) = room.create_channel("incidents".into(), "other".into(), sender(&user), 2, 0).await.unwrap();
        assert!(!again, "creating twice changes nothing");

        let (_, root) = room.publish(note("incidents", None, None, &user, 10)).await.unwrap();
        assert_eq!(root.thread_id, root.notification_id.as_str(), "a new thread is named by its first notification");
        let (_, reply) = room.publish(note("incidents", None, Some(&root.notification_id), &user, 11)).await.unwrap();
        assert_eq!(reply.thread_id, root.thread_id, "a reply joins its parent's thread");
        let err = room.publish(note("deploys", Some(&root.thread_id), None, &user, 12)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "{err}");
        let err =
            room.publish(note("incidents", Some("other"), Some(&root.notification_id), &user, 12)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "{err}");
        let err = room.publish(note("nope", None, None, &user, 12)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
        assert_eq!(room.thread(&root.thread_id, 0, 10).await.unwrap().len(), 2, "the refusals stored nothing");

        // The other account: no channel, no thread, no reply target, no incident.
        let theirs = db.account(&b).warroom();
        assert!(theirs.channels(0).await.unwrap().is_empty());
        assert!(!theirs.has_channel("incidents").await.unwrap());
        assert!(theirs.thread(&root.thread_id, 0, 10).await.unwrap().is_empty());
        assert!(theirs.incidents(period(0, 100)).await.unwrap().is_empty());
        theirs.create_channel("incidents".into(), String::new(), sender(&user), 1, 0).await.unwrap();
        let err = theirs.publish(note("incidents", None, Some(&root.notification_id), &user, 13)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound, "another account's notification is never found: {err}");
        let (_, same_name) = theirs.publish(note("incidents", Some(&root.thread_id), None, &user, 13)).await.unwrap();
        assert_eq!(theirs.thread(&same_name.thread_id, 0, 10).await.unwrap().len(), 1, "thread names are per account");
        assert_eq!(room.thread(&root.thread_id, 0, 10).await.unwrap().len(), 2);

        let found = room.incidents(period(0, 100)).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0][0].thread_id.as_str(), found[0].len()), (root.thread_id.as_str(), 2));
        assert!(room.incidents(period(11, 100)).await.unwrap().is_empty(), "opened before the period");
        let critical = IncidentQuery { priorities: vec![Priority::Critical], ..period(0, 100) };
        assert!(room.incidents(critical).await.unwrap().is_empty(), "its highest priority is high");
        let removed = db.maintenance().purge_notifications(20, |_| 5).await.unwrap();
        assert_eq!(removed, 3, "both accounts' notifications older than their retention");
    }
}
