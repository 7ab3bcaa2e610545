//! Chat links and approval messages: which chat account is which person, and which message
//! showed which action (with the content hash it showed).
//!
//! Two handles. [`Chat`] (from [`Account::chat`]) is one tenant's: link codes are made for its
//! users, messages recorded for its actions. [`ChatLookups`] (from [`Db::chat_lookups`]) holds the
//! lookups that *find* the tenant from what a chat service presents (a link code sent to a bot, a
//! tap on a message, a chat user id), like `credentials()` does for API tokens.
//!
//! Link codes are stored by their SHA-256 only. A link survives nothing about its user: every
//! lookup joins the living users, so a removed person's chat account resolves to nobody at once.

use mttrly_core::ids::{AccountId, ActionId, BypassId, UserId};
use mttrly_core::{ChatProvider, MttrlyError};

use super::accounts::TokenOwner;
use super::{Account, Db, sqlite};

/// Where a chat service delivers a message to a person, as linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The person.
    pub user_id: UserId,
    /// Their name (for logs).
    pub user_name: String,
    /// The chat to post in: Telegram's private chat id, Slack's user id (the app's DM).
    pub chat_id: String,
}

/// A posted message's address on its service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Posted {
    /// The chat it is in.
    pub chat_id: String,
    /// Its id in that chat (Telegram `message_id`, Slack `ts`).
    pub message_id: String,
}

/// What a chat message asks a human to decide: an action, or an investigation bypass (issue 15).
/// Typed, so a tap on a bypass request can never reach the action engine, nor the reverse.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// Approve or reject an action.
    Action(ActionId),
    /// Grant or deny a pending investigation bypass.
    Bypass(BypassId),
}

impl Subject {
    /// The subject's id.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Action(id) => id.as_str(),
            Self::Bypass(id) => id.as_str(),
        }
    }

    /// The stored `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Action(_) => "action",
            Self::Bypass(_) => "bypass",
        }
    }

    /// The subject of a stored `(kind, id)`, `None` when either is malformed.
    pub fn parse(kind: &str, id: &str) -> Option<Self> {
        match kind {
            "action" => ActionId::parse(id).ok().map(Self::Action),
            "bypass" => BypassId::parse(id).ok().map(Self::Bypass),
            _ => None,
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One approval message as recorded when it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// The tenant.
    pub account_id: AccountId,
    /// What it asks about.
    pub subject: Subject,
    /// The person it was sent to.
    pub user_id: UserId,
    /// The content hash it showed (an action's content hash; a bypass request's, see
    /// `chat::bypass::request_sha256`): a decision from this message is bound to it.
    pub content_sha256: String,
    /// Whether it showed the content whole (then a tap on it may approve; else only reject).
    pub approvable: bool,
    /// Where it is.
    pub posted: Posted,
}

/// A person's link to a chat account, as `whoami` and `users list` may show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The service.
    pub provider: ChatProvider,
    /// Their id there (Telegram user id, Slack `TEAM:USER`).
    pub external_id: String,
    /// A human-readable name of that account (`@alice`), as the service reported it.
    pub label: String,
    /// When it was made (ms).
    pub linked_at: i64,
}

/// What redeeming a link code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// Linked (or re-linked: the person's earlier link to this provider is replaced).
    Linked {
        /// The tenant.
        account_id: AccountId,
        /// The person.
        user_id: UserId,
        /// Their name.
        user_name: String,
    },
    /// No living code matches (never issued, used, expired, or its person removed).
    UnknownCode,
    /// This chat account is already linked to another person: it maps to exactly one.
    TakenByOther {
        /// The tenant of the other person.
        account_id: AccountId,
    },
}

/// One tenant's chat data. Built by [`Account::chat`].
pub struct Chat<'a> {
    pub(super) account: Account<'a>,
}

impl Chat<'_> {
    /// Stores a single-use link code (its hash) for `user` on `provider`, valid until
    /// `expires_at` (ms), made with the API token whose key is `credential` (the link dies with
    /// that token); the person's earlier unused codes for that provider die. `false`: the user
    /// is not a living user of this account.
    pub async fn new_link_code(
        &self,
        user: &UserId,
        provider: ChatProvider,
        code_hash: [u8; 32],
        expires_at: i64,
        credential: &str,
    ) -> Result<bool, MttrlyError> {
        let (account, user, credential) = (self.account.id.clone(), user.clone(), credential.to_owned());
        self.account
            .db
            .sqlite
            .call(move |conn| {
                sqlite::chat::new_link_code(conn, &account, &user, provider, &code_hash, expires_at, &credential)
            })
            .await
    }

    /// Removes `user`'s link to `provider` (and their open codes for it). `true`: there was one.
    pub async fn unlink(&self, user: &UserId, provider: ChatProvider) -> Result<bool, MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account.db.sqlite.call(move |conn| sqlite::chat::unlink(conn, &account, &user, provider)).await
    }

    /// A living user's links.
    pub async fn links(&self, user: &UserId) -> Result<Vec<Link>, MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account.db.sqlite.read(move |conn| sqlite::chat::links(conn, &account, &user)).await
    }

    /// Every living user's links, with whose each is (the admin page lists them all in one read).
    pub async fn all_links(&self) -> Result<Vec<(UserId, String, Link)>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::chat::all_links(conn, &account)).await
    }

    /// Where to reach each of `users` (living users of this account) on `provider`; people
    /// without a link are left out.
    pub async fn recipients(&self, provider: ChatProvider, users: Vec<UserId>) -> Result<Vec<Recipient>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::chat::recipients(conn, &account, provider, &users)).await
    }

    /// Records an approval message sent about `subject` to `user`, showing `content_sha256`
    /// (whole when `approvable`).
    #[allow(clippy::too_many_arguments)] // one row's columns
    pub async fn record_message(
        &self,
        provider: ChatProvider,
        posted: Posted,
        subject: &Subject,
        user: &UserId,
        content_sha256: &str,
        approvable: bool,
        sent_at: i64,
    ) -> Result<(), MttrlyError> {
        let row = MessageRow {
            account_id: self.account.id.clone(),
            subject: subject.clone(),
            user_id: user.clone(),
            content_sha256: content_sha256.to_owned(),
            approvable,
            posted,
        };
        self.account.db.sqlite.call(move |conn| sqlite::chat::record_message(conn, provider, &row, sent_at)).await
    }

    /// Every message sent about `subject` on `provider`, oldest first (follow-ups edit them).
    pub async fn messages(&self, provider: ChatProvider, subject: &Subject) -> Result<Vec<MessageRow>, MttrlyError> {
        let (account, subject) = (self.account.id.clone(), subject.clone());
        self.account.db.sqlite.read(move |conn| sqlite::chat::messages(conn, &account, provider, &subject)).await
    }
}

/// Non-tenant: what a chat service presents, turned into the tenant and person it belongs to.
/// Built by [`Db::chat_lookups`].
pub struct ChatLookups<'a> {
    pub(super) db: &'a Db,
}

impl ChatLookups<'_> {
    /// Redeems a link code presented by the chat account `external_id` (in the private chat
    /// `chat_id`, labelled `label`): single use, one IMMEDIATE transaction.
    pub async fn redeem(
        &self,
        provider: ChatProvider,
        code_hash: [u8; 32],
        external_id: &str,
        chat_id: &str,
        label: &str,
        now: i64,
    ) -> Result<Redeemed, MttrlyError> {
        let (external_id, chat_id, label) = (external_id.to_owned(), chat_id.to_owned(), label.to_owned());
        self.db
            .sqlite
            .call(move |conn| sqlite::chat::redeem(conn, provider, &code_hash, &external_id, &chat_id, &label, now))
            .await
    }

    /// The living person a chat account is linked to, as the owner of a human credential with
    /// their role now (`None`: not linked, or the person was removed).
    pub async fn owner(&self, provider: ChatProvider, external_id: &str) -> Result<Option<TokenOwner>, MttrlyError> {
        let external_id = external_id.to_owned();
        self.db.sqlite.read(move |conn| sqlite::chat::owner(conn, provider, &external_id)).await
    }

    /// The approval message at `posted` on `provider`, if mttrly sent one there.
    pub async fn message(&self, provider: ChatProvider, posted: &Posted) -> Result<Option<MessageRow>, MttrlyError> {
        let posted = posted.clone();
        self.db.sqlite.read(move |conn| sqlite::chat::message(conn, provider, &posted)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mttrly_core::{Plan, Role};

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        db: Db,
        account: AccountId,
        bob: UserId,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (account, _admin) = db.create_tenant("a", Plan::DeploymentCrew, "admin", &[1; 32]).await.unwrap();
        let (bob, _) =
            db.account(&account).users().add_with_token("bob", Role::Operator, None, &[2; 32]).await.unwrap().unwrap();
        Fixture { _dir: dir, db, account, bob: bob.id }
    }

    const NOW: i64 = 1_000_000;

    async fn code(f: &Fixture, user: &UserId, hash: u8, expires_at: i64) {
        let chat = f.db.account(&f.account).chat();
        assert!(chat.new_link_code(user, ChatProvider::Telegram, [hash; 32], expires_at, "tok_x").await.unwrap());
    }

    async fn redeem(f: &Fixture, hash: u8, external: &str) -> Redeemed {
        f.db.chat_lookups().redeem(ChatProvider::Telegram, [hash; 32], external, external, "@x", NOW).await.unwrap()
    }

    #[tokio::test]
    async fn a_code_links_once_and_then_the_chat_account_is_that_person() {
        let f = fixture().await;
        code(&f, &f.bob, 7, NOW + 1).await;
        assert!(matches!(redeem(&f, 7, "42").await, Redeemed::Linked { ref user_name, .. } if user_name == "bob"));
        assert_eq!(redeem(&f, 7, "42").await, Redeemed::UnknownCode, "single use");
        let owner = f.db.chat_lookups().owner(ChatProvider::Telegram, "42").await.unwrap().unwrap();
        assert_eq!(owner.principal.accountable_user(), &f.bob);
        assert_eq!(owner.role, Role::Operator);
        assert!(f.db.chat_lookups().owner(ChatProvider::Slack, "42").await.unwrap().is_none(), "per provider");
    }

    #[tokio::test]
    async fn expired_superseded_and_other_providers_codes_link_nothing() {
        let f = fixture().await;
        code(&f, &f.bob, 7, NOW).await;
        assert_eq!(redeem(&f, 7, "42").await, Redeemed::UnknownCode, "expired at NOW");
        code(&f, &f.bob, 8, NOW + 1).await;
        code(&f, &f.bob, 9, NOW + 1).await;
        assert_eq!(redeem(&f, 8, "42").await, Redeemed::UnknownCode, "a newer code kills the older");
        let slack = f.db.chat_lookups().redeem(ChatProvider::Slack, [9; 32], "T:U", "U", "u", NOW).await.unwrap();
        assert_eq!(slack, Redeemed::UnknownCode, "a Telegram code is not a Slack code");
        assert!(matches!(redeem(&f, 9, "42").await, Redeemed::Linked { .. }));
    }

    #[tokio::test]
    async fn a_chat_account_maps_to_exactly_one_living_person() {
        let f = fixture().await;
        let users = f.db.account(&f.account).users();
        let (carol, _) = users.add_with_token("carol", Role::Operator, None, &[3; 32]).await.unwrap().unwrap();
        code(&f, &f.bob, 7, NOW + 1).await;
        assert!(matches!(redeem(&f, 7, "42").await, Redeemed::Linked { .. }));
        code(&f, &carol.id, 8, NOW + 1).await;
        assert!(matches!(redeem(&f, 8, "42").await, Redeemed::TakenByOther { .. }), "bob's stays bob's");
        assert!(matches!(redeem(&f, 8, "43").await, Redeemed::Linked { .. }), "the code was not spent");
        // Removed: bob's chat account resolves to nobody at once, and is free to link again.
        users.remove("bob").await.unwrap().unwrap();
        assert!(f.db.chat_lookups().owner(ChatProvider::Telegram, "42").await.unwrap().is_none());
        code(&f, &carol.id, 9, NOW + 1).await;
        assert!(matches!(redeem(&f, 9, "42").await, Redeemed::Linked { ref user_name, .. } if user_name == "carol"));
        assert!(f.db.chat_lookups().owner(ChatProvider::Telegram, "43").await.unwrap().is_none(), "one link each");
        // A removed person gets no code.
        let chat = f.db.account(&f.account).chat();
        assert!(!chat.new_link_code(&f.bob, ChatProvider::Telegram, [10; 32], NOW + 1, "tok_x").await.unwrap());
    }

    #[tokio::test]
    async fn messages_are_found_by_where_they_are_and_only_within_their_account() {
        let f = fixture().await;
        let (other, _) = f.db.create_tenant("b", Plan::DeploymentCrew, "admin", &[4; 32]).await.unwrap();
        let action = ActionId::generate();
        let posted = Posted { chat_id: "42".into(), message_id: "7".into() };
        let chat = f.db.account(&f.account).chat();
        let action = Subject::Action(action);
        chat.record_message(ChatProvider::Telegram, posted.clone(), &action, &f.bob, "hash", false, NOW).await.unwrap();
        let row = f.db.chat_lookups().message(ChatProvider::Telegram, &posted).await.unwrap().unwrap();
        assert_eq!(
            (row.subject.clone(), row.user_id.clone(), row.content_sha256.as_str()),
            (action.clone(), f.bob.clone(), "hash")
        );
        // A bypass request's message is found as one, never as an action's.
        let bypass = Subject::Bypass(BypassId::generate());
        let other_posted = Posted { chat_id: "42".into(), message_id: "8".into() };
        chat.record_message(ChatProvider::Telegram, other_posted.clone(), &bypass, &f.bob, "h2", true, NOW)
            .await
            .unwrap();
        let found = f.db.chat_lookups().message(ChatProvider::Telegram, &other_posted).await.unwrap().unwrap();
        assert_eq!(found.subject, bypass);
        assert_eq!(chat.messages(ChatProvider::Telegram, &bypass).await.unwrap(), vec![found]);
        assert!(f.db.chat_lookups().message(ChatProvider::Slack, &posted).await.unwrap().is_none());
        assert_eq!(chat.messages(ChatProvider::Telegram, &action).await.unwrap(), vec![row]);
        assert!(f.db.account(&other).chat().messages(ChatProvider::Telegram, &action).await.unwrap().is_empty());
        // Recipients: only linked people of this account.
        code(&f, &f.bob, 7, NOW + 1).await;
        assert!(matches!(redeem(&f, 7, "42").await, Redeemed::Linked { .. }));
        let found = chat.recipients(ChatProvider::Telegram, vec![f.bob.clone()]).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].chat_id, "42");
        assert!(
            f.db.account(&other)
                .chat()
                .recipients(ChatProvider::Telegram, vec![f.bob.clone()])
                .await
                .unwrap()
                .is_empty()
        );
        assert!(chat.unlink(&f.bob, ChatProvider::Telegram).await.unwrap());
        assert!(chat.recipients(ChatProvider::Telegram, vec![f.bob.clone()]).await.unwrap().is_empty());
    }
}
