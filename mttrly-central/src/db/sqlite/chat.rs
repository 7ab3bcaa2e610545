//! Chat links, link codes and approval messages: the SQL.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{ChatProvider, MttrlyError, Plan, Principal, Role, ToolSurface};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::internal;
use crate::db::accounts::{TokenOwner, credential_key};
use crate::db::chat::{Link, MessageRow, Posted, Recipient, Redeemed, Subject};

pub(in crate::db) fn new_link_code(
    conn: &mut Connection,
    account: &AccountId,
    user: &UserId,
    provider: ChatProvider,
    code_hash: &[u8; 32],
    expires_at: i64,
    credential: &str,
) -> Result<bool, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let living: bool = tx
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM users WHERE id = ?1 AND account_id = ?2 AND removed_at IS NULL)",
            params![user.as_str(), account.as_str()],
            |r| r.get(0),
        )
        .map_err(internal)?;
    if !living {
        return Ok(false);
    }
    tx.execute(
        "DELETE FROM chat_link_codes WHERE account_id = ?1 AND user_id = ?2 AND provider = ?3",
        params![account.as_str(), user.as_str(), provider.as_str()],
    )
    .map_err(internal)?;
    tx.execute(
        "INSERT INTO chat_link_codes (code_hash, provider, account_id, user_id, expires_at, credential)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![code_hash.as_slice(), provider.as_str(), account.as_str(), user.as_str(), expires_at, credential],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(true)
}

pub(in crate::db) fn unlink(
    conn: &mut Connection,
    account: &AccountId,
    user: &UserId,
    provider: ChatProvider,
) -> Result<bool, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    tx.execute(
        "DELETE FROM chat_link_codes WHERE account_id = ?1 AND user_id = ?2 AND provider = ?3",
        params![account.as_str(), user.as_str(), provider.as_str()],
    )
    .map_err(internal)?;
    let removed = tx
        .execute(
            "DELETE FROM chat_links WHERE account_id = ?1 AND user_id = ?2 AND provider = ?3",
            params![account.as_str(), user.as_str(), provider.as_str()],
        )
        .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(removed > 0)
}

pub(in crate::db) fn links(conn: &Connection, account: &AccountId, user: &UserId) -> Result<Vec<Link>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT l.provider, l.external_id, l.label, l.linked_at FROM chat_links l
             JOIN users u ON u.id = l.user_id AND u.removed_at IS NULL
             WHERE l.account_id = ?1 AND l.user_id = ?2 ORDER BY l.provider",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), user.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
        })
        .map_err(internal)?;
    let mut links = Vec::new();
    for row in rows {
        let (provider, external_id, label, linked_at) = row.map_err(internal)?;
        // A provider this build does not know (a newer central wrote it) is not shown.
        if let Ok(provider) = provider.parse() {
            links.push(Link { provider, external_id, label, linked_at });
        }
    }
    Ok(links)
}

pub(in crate::db) fn all_links(
    conn: &Connection,
    account: &AccountId,
) -> Result<Vec<(UserId, String, Link)>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT l.user_id, u.name, l.provider, l.external_id, l.label, l.linked_at FROM chat_links l
             JOIN users u ON u.id = l.user_id AND u.account_id = l.account_id AND u.removed_at IS NULL
             WHERE l.account_id = ?1 ORDER BY u.name, l.provider",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(internal)?;
    let mut links = Vec::new();
    for row in rows {
        let (user, name, provider, external_id, label, linked_at) = row.map_err(internal)?;
        // A provider this build does not know (a newer central wrote it) is not shown.
        if let (Ok(user), Ok(provider)) = (UserId::parse(&user), provider.parse()) {
            links.push((user, name, Link { provider, external_id, label, linked_at }));
        }
    }
    Ok(links)
}

pub(in crate::db) fn recipients(
    conn: &Connection,
    account: &AccountId,
    provider: ChatProvider,
    users: &[UserId],
) -> Result<Vec<Recipient>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT u.name, l.chat_id FROM chat_links l
             JOIN users u ON u.id = l.user_id AND u.removed_at IS NULL
             WHERE l.account_id = ?1 AND l.user_id = ?2 AND l.provider = ?3",
        )
        .map_err(internal)?;
    let mut found = Vec::new();
    for user in users {
        let row = stmt
            .query_row(params![account.as_str(), user.as_str(), provider.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()
            .map_err(internal)?;
        if let Some((user_name, chat_id)) = row {
            found.push(Recipient { user_id: user.clone(), user_name, chat_id });
        }
    }
    Ok(found)
}

pub(in crate::db) fn record_message(
    conn: &Connection,
    provider: ChatProvider,
    row: &MessageRow,
    sent_at: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT OR REPLACE INTO chat_messages
         (provider, chat_id, message_id, account_id, action_id, user_id, content_sha256, approvable, sent_at, kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            provider.as_str(),
            row.posted.chat_id,
            row.posted.message_id,
            row.account_id.as_str(),
            row.subject.as_str(),
            row.user_id.as_str(),
            row.content_sha256,
            row.approvable,
            sent_at,
            row.subject.kind()
        ],
    )
    .map_err(internal)?;
    Ok(())
}

fn message_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<MessageRow>> {
    let (account, action, user) = (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?);
    let kind = r.get::<_, String>(7)?;
    let (Ok(account_id), Some(subject), Ok(user_id)) =
        (AccountId::parse(&account), Subject::parse(&kind, &action), UserId::parse(&user))
    else {
        tracing::error!(%account, %action, %kind, "chat message row references malformed ids");
        return Ok(None);
    };
    Ok(Some(MessageRow {
        account_id,
        subject,
        user_id,
        content_sha256: r.get(3)?,
        posted: Posted { chat_id: r.get(4)?, message_id: r.get(5)? },
        approvable: r.get(6)?,
    }))
}

const MESSAGE_COLUMNS: &str = "account_id, action_id, user_id, content_sha256, chat_id, message_id, approvable, kind";

pub(in crate::db) fn messages(
    conn: &Connection,
    account: &AccountId,
    provider: ChatProvider,
    subject: &Subject,
) -> Result<Vec<MessageRow>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages
             WHERE account_id = ?1 AND action_id = ?2 AND provider = ?3 AND kind = ?4 ORDER BY sent_at, chat_id"
        ))
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), subject.as_str(), provider.as_str(), subject.kind()], message_at)
        .map_err(internal)?;
    let mut found = Vec::new();
    for row in rows {
        found.extend(row.map_err(internal)?);
    }
    Ok(found)
}

pub(in crate::db) fn message(
    conn: &Connection,
    provider: ChatProvider,
    posted: &Posted,
) -> Result<Option<MessageRow>, MttrlyError> {
    conn.query_row(
        &format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE provider = ?1 AND chat_id = ?2 AND message_id = ?3"
        ),
        params![provider.as_str(), posted.chat_id, posted.message_id],
        message_at,
    )
    .optional()
    .map(Option::flatten)
    .map_err(internal)
}

pub(in crate::db) fn redeem(
    conn: &mut Connection,
    provider: ChatProvider,
    code_hash: &[u8; 32],
    external_id: &str,
    chat_id: &str,
    label: &str,
    now: i64,
) -> Result<Redeemed, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let code = tx
        .query_row(
            "SELECT c.account_id, c.user_id, u.name, c.credential FROM chat_link_codes c
             JOIN users u ON u.id = c.user_id AND u.removed_at IS NULL
             WHERE c.code_hash = ?1 AND c.provider = ?2 AND c.expires_at > ?3",
            params![code_hash.as_slice(), provider.as_str(), now],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?)),
        )
        .optional()
        .map_err(internal)?;
    let Some((account, user, user_name, credential)) = code else {
        return Ok(Redeemed::UnknownCode);
    };
    let (Ok(account_id), Ok(user_id)) = (AccountId::parse(&account), UserId::parse(&user)) else {
        tracing::error!(%account, "link code row references malformed ids");
        return Ok(Redeemed::UnknownCode);
    };
    // A chat account already linked to a living person other than this one stays theirs; a link
    // left by a removed person is free to take.
    let other: Option<String> = tx
        .query_row(
            "SELECT l.account_id FROM chat_links l JOIN users u ON u.id = l.user_id AND u.removed_at IS NULL
             WHERE l.provider = ?1 AND l.external_id = ?2 AND l.user_id <> ?3",
            params![provider.as_str(), external_id, user_id.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(internal)?;
    if let Some(other) = other {
        tx.commit().map_err(internal)?;
        let account_id = AccountId::parse(&other).unwrap_or(account_id);
        return Ok(Redeemed::TakenByOther { account_id });
    }
    tx.execute("DELETE FROM chat_link_codes WHERE code_hash = ?1", params![code_hash.as_slice()]).map_err(internal)?;
    tx.execute(
        "DELETE FROM chat_links WHERE (provider = ?1 AND external_id = ?2)
            OR (account_id = ?3 AND user_id = ?4 AND provider = ?1)",
        params![provider.as_str(), external_id, account_id.as_str(), user_id.as_str()],
    )
    .map_err(internal)?;
    tx.execute(
        "INSERT INTO chat_links (provider, external_id, account_id, user_id, chat_id, label, linked_at, credential)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![provider.as_str(), external_id, account_id.as_str(), user_id.as_str(), chat_id, label, now, credential],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(Redeemed::Linked { account_id, user_id, user_name })
}

pub(in crate::db) fn owner(
    conn: &Connection,
    provider: ChatProvider,
    external_id: &str,
) -> Result<Option<TokenOwner>, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT l.account_id, a.plan, l.user_id, u.name, u.role FROM chat_links l
             JOIN users u ON u.id = l.user_id AND u.removed_at IS NULL
             JOIN accounts a ON a.id = l.account_id
             WHERE l.provider = ?1 AND l.external_id = ?2",
            params![provider.as_str(), external_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((account, plan, user, name, role)) = row else { return Ok(None) };
    let (Ok(account_id), Ok(plan), Ok(user_id), Ok(role)) =
        (AccountId::parse(&account), plan.parse::<Plan>(), UserId::parse(&user), role.parse::<Role>())
    else {
        tracing::error!(%account, "chat link row references malformed ids or an unknown role");
        return Ok(None);
    };
    // The key groups this person's chat decisions for rate limits, apart from their tokens.
    let key = <sha2::Sha256 as sha2::Digest>::digest(format!("chat:{}:{external_id}", provider.as_str()).as_bytes());
    let hash: [u8; 32] = key.into();
    Ok(Some(TokenOwner {
        account_id,
        plan,
        principal: Principal::Human { user_id, name: name.clone() },
        role,
        user_name: name,
        scope: ToolSurface::ALL,
        credential: credential_key(&hash),
    }))
}

/// Removes the chat links (and open link codes) made with the API token whose key is
/// `credential`: called when that token is revoked, in the revocation's transaction.
pub(in crate::db) fn forget_credential(conn: &Connection, credential: &str) -> Result<usize, MttrlyError> {
    conn.execute("DELETE FROM chat_link_codes WHERE credential = ?1", params![credential]).map_err(internal)?;
    conn.execute("DELETE FROM chat_links WHERE credential = ?1", params![credential]).map_err(internal)
}
