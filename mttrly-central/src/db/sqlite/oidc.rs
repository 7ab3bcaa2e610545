//! OpenID Connect sign-in: pending logins and subject bindings, the SQL.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{MttrlyError, Role};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::internal;
use crate::db::accounts::User;
use crate::db::now_ms;
use crate::db::oidc::{Create, Matched, PendingLogin, SignedIn, SsoRefusal, Vouched};

/// Stores a pending login unless `cap` live ones exist; expired ones go first.
pub(in crate::db) fn insert_pending(
    conn: &mut Connection,
    key_hash: &[u8; 32],
    login: &PendingLogin,
    now: i64,
    expires_at: i64,
    cap: u32,
) -> Result<bool, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    tx.execute("DELETE FROM oidc_pending_logins WHERE expires_at <= ?1", params![now]).map_err(internal)?;
    let live: i64 = tx.query_row("SELECT COUNT(*) FROM oidc_pending_logins", [], |r| r.get(0)).map_err(internal)?;
    if live >= i64::from(cap) {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO oidc_pending_logins (key_hash, state, nonce, code_verifier, next, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![&key_hash[..], login.state, login.nonce, login.code_verifier, login.next, now, expires_at],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(true)
}

/// Deletes the pending login with this key and returns it if it was still live.
pub(in crate::db) fn take_pending(
    conn: &mut Connection,
    key_hash: &[u8; 32],
    now: i64,
) -> Result<Option<PendingLogin>, MttrlyError> {
    conn.query_row(
        "DELETE FROM oidc_pending_logins WHERE key_hash = ?1
         RETURNING state, nonce, code_verifier, next, expires_at",
        params![&key_hash[..]],
        |r| {
            let login = PendingLogin { state: r.get(0)?, nonce: r.get(1)?, code_verifier: r.get(2)?, next: r.get(3)? };
            Ok((login, r.get::<_, i64>(4)?))
        },
    )
    .optional()
    .map(|found| found.and_then(|(login, expires_at)| (expires_at > now).then_some(login)))
    .map_err(internal)
}

/// The oldest account with this name.
pub(in crate::db) fn account_named(conn: &Connection, name: &str) -> Result<Option<AccountId>, MttrlyError> {
    let id: Option<String> = conn
        .query_row("SELECT id FROM accounts WHERE name = ?1 ORDER BY created_at, id LIMIT 1", params![name], |r| {
            r.get(0)
        })
        .optional()
        .map_err(internal)?;
    Ok(id.and_then(|id| AccountId::parse(&id).ok()))
}

/// The user columns [`user_at`] reads, prefixed by the table alias `u`.
const USER_COLUMNS: &str = "u.id, u.name, u.role, u.email, u.created_at, u.removed_at";

/// A user and whether they were removed; `None` (logged) for a row this build cannot read.
fn user_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<(User, bool)>> {
    let (id, name, role) = (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?);
    let (Ok(id), Ok(role)) = (UserId::parse(&id), role.parse::<Role>()) else {
        tracing::error!(%id, %role, "user row with a malformed id or an unknown role; skipped");
        return Ok(None);
    };
    let removed = r.get::<_, Option<i64>>(5)?.is_some();
    Ok(Some((User { id, name, role, email: r.get(3)?, created_at: r.get(4)? }, removed)))
}

/// Matches, binds, lowers or creates, in one IMMEDIATE transaction (see `Sso::sign_in`).
pub(in crate::db) fn sign_in(
    conn: &mut Connection,
    account: &AccountId,
    vouched: &Vouched,
    create: Option<&Create>,
) -> Result<Result<SignedIn, SsoRefusal>, MttrlyError> {
    let now = now_ms();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let bound: Option<(User, bool)> = tx
        .query_row(
            &format!(
                "SELECT {USER_COLUMNS} FROM oidc_subjects s JOIN users u ON u.id = s.user_id
                 WHERE s.account_id = ?1 AND s.issuer = ?2 AND s.subject = ?3 AND u.account_id = ?1"
            ),
            params![account.as_str(), vouched.issuer, vouched.subject],
            user_at,
        )
        .optional()
        .map(Option::flatten)
        .map_err(internal)?;

    let mut skipped_removed_names = Vec::new();
    let matched = match bound {
        Some((user, false)) => Matched::Bound(user),
        bound => {
            let bound_to_removed = bound.is_some();
            let by_email = match &vouched.verified_email {
                Some(email) => living_with_email(&tx, account, email)?,
                None => Vec::new(),
            };
            match by_email.as_slice() {
                [user] => {
                    let other: Option<String> = tx
                        .query_row(
                            "SELECT subject FROM oidc_subjects WHERE account_id = ?1 AND issuer = ?2 AND user_id = ?3",
                            params![account.as_str(), vouched.issuer, user.id.as_str()],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(internal)?;
                    if other.is_some_and(|s| s != vouched.subject) {
                        return Ok(Err(SsoRefusal::BoundToOther));
                    }
                    bind(&tx, account, vouched, &user.id, now)?;
                    Matched::ByEmail(user.clone())
                }
                [_, _, ..] => return Ok(Err(SsoRefusal::Ambiguous)),
                [] if bound_to_removed => return Ok(Err(SsoRefusal::Removed)),
                [] => {
                    let Some(create) = create else { return Ok(Err(SsoRefusal::Unknown)) };
                    let email = vouched.verified_email.as_deref();
                    let Some(user) = create_user(&tx, account, create, email, now, &mut skipped_removed_names)? else {
                        return Ok(Err(SsoRefusal::NameTaken));
                    };
                    bind(&tx, account, vouched, &user.id, now)?;
                    Matched::Created(user)
                }
            }
        }
    };

    let (mut user, rebuild): (User, fn(User) -> Matched) = match matched {
        Matched::Bound(u) => (u, Matched::Bound),
        Matched::ByEmail(u) => (u, Matched::ByEmail),
        Matched::Created(u) => (u, Matched::Created),
    };
    let mut demoted_from = None;
    let mut kept_last_admin = false;
    // Roles order from most to least powerful: a greater role is a weaker one. A created user has
    // the mapped role already.
    if let Some(mapped) = vouched.mapped_role
        && mapped > user.role
    {
        let admins: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM users WHERE account_id = ?1 AND role = 'admin' AND removed_at IS NULL",
                params![account.as_str()],
                |r| r.get(0),
            )
            .map_err(internal)?;
        // Nor the last admin with a second factor: an identity provider's claim (a group
        // missing from a token, too many groups for the claim) must not switch off the
        // account's second-factor gate, which only a factor holder's own code may do.
        let last_factor_admin = user.role == Role::Admin
            && super::accounts::has_factor(&tx, account, &user.id)?
            && tx
                .query_row(
                    "SELECT COUNT(*) FROM users u JOIN user_credentials c
                       ON c.user_id = u.id AND c.account_id = u.account_id AND c.totp_sealed IS NOT NULL
                     WHERE u.account_id = ?1 AND u.role = 'admin' AND u.removed_at IS NULL",
                    params![account.as_str()],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(internal)?
                <= 1;
        if user.role == Role::Admin && (admins <= 1 || last_factor_admin) {
            kept_last_admin = true;
        } else {
            tx.execute(
                "UPDATE users SET role = ?3 WHERE id = ?1 AND account_id = ?2",
                params![user.id.as_str(), account.as_str(), mapped.as_str()],
            )
            .map_err(internal)?;
            demoted_from = Some(user.role);
            user.role = mapped;
        }
    }
    tx.commit().map_err(internal)?;
    Ok(Ok(SignedIn { matched: rebuild(user), demoted_from, kept_last_admin, skipped_removed_names }))
}

/// Living users of the account whose e-mail is `email` (compared case-insensitively).
fn living_with_email(conn: &Connection, account: &AccountId, email: &str) -> Result<Vec<User>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u
             WHERE u.account_id = ?1 AND u.removed_at IS NULL AND lower(u.email) = ?2 ORDER BY u.created_at LIMIT 2"
        ))
        .map_err(internal)?;
    let rows = stmt.query_map(params![account.as_str(), email], user_at).map_err(internal)?;
    let mut users = Vec::new();
    for row in rows {
        users.extend(row.map_err(internal)?.map(|(u, _)| u));
    }
    Ok(users)
}

/// Binds the subject to `user`, replacing a binding it had to a removed user.
fn bind(conn: &Connection, account: &AccountId, vouched: &Vouched, user: &UserId, now: i64) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO oidc_subjects (account_id, issuer, subject, user_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (account_id, issuer, subject) DO UPDATE SET user_id = excluded.user_id, created_at = excluded.created_at",
        params![account.as_str(), vouched.issuer, vouched.subject, user.as_str(), now],
    )
    .map_err(internal)?;
    Ok(())
}

/// Creates a user under the first name of `create.names` that nobody of the account ever had;
/// `None` if every name is taken. A name a removed user had is never handed to someone new
/// (approval rules name people, `approvers = ["user:NAME"]`; `users add` of such a name needs a
/// factor holder's fresh code, which no sign-in has): it is passed over and pushed to `skipped`,
/// for the audit.
fn create_user(
    conn: &Connection,
    account: &AccountId,
    create: &Create,
    email: Option<&str>,
    now: i64,
    skipped: &mut Vec<String>,
) -> Result<Option<User>, MttrlyError> {
    for name in &create.names {
        // (living, removed): whether a living user has the name, whether a removed one had it.
        let (living, removed): (bool, bool) = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE account_id = ?1 AND name = ?2 AND removed_at IS NULL),
                        EXISTS (SELECT 1 FROM users WHERE account_id = ?1 AND name = ?2 AND removed_at IS NOT NULL)",
                params![account.as_str(), name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(internal)?;
        if living {
            continue;
        }
        if removed {
            skipped.push(name.clone());
            continue;
        }
        let id = UserId::generate();
        conn.execute(
            "INSERT INTO users (id, account_id, name, role, email, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id.as_str(), account.as_str(), name, create.role.as_str(), email, now],
        )
        .map_err(internal)?;
        return Ok(Some(User {
            id,
            name: name.clone(),
            role: create.role,
            email: email.map(str::to_owned),
            created_at: now,
        }));
    }
    Ok(None)
}
