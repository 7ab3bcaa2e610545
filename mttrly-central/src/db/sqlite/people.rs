//! Sign-in data: the SQL. Every tenant query filters on the account; the non-tenant lookups
//! (`session`, `end_presented`, `invite`, `resolve`, `shared`) return the account they found.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::second_factor::{Lockout, LockoutState, RecoveryCodeHash};
use mttrly_core::{ErrorCode, MttrlyError, Role};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::internal;
use crate::db::accounts::{FactorGate, User, UserRefusal};
use crate::db::now_ms;
use crate::db::people::{
    Candidate, Factor, InviteRefusal, InviteRow, OpenInvite, PasswordAttempt, PendingRefusal, RosterEntry, Sealed,
    SessionRow, SignInMethod,
};

fn step_of(v: Option<i64>) -> Option<u64> {
    v.and_then(|s| u64::try_from(s).ok())
}

fn step_to(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

fn lockout_of(failures: i64, locked_until: Option<i64>) -> LockoutState {
    LockoutState { failures: u32::try_from(failures).unwrap_or(u32::MAX), locked_until_ms: locked_until }
}

/// A living user of the account, by id.
fn living(conn: &Connection, account: &AccountId, user: &UserId) -> Result<Option<String>, MttrlyError> {
    conn.query_row(
        "SELECT name FROM users WHERE id = ?1 AND account_id = ?2 AND removed_at IS NULL",
        params![user.as_str(), account.as_str()],
        |r| r.get::<_, String>(0),
    )
    .optional()
    .map_err(internal)
}

/// Creates the user's credentials row if missing (a living user of the account only).
fn ensure_row(conn: &Connection, account: &AccountId, user: &UserId, now: i64) -> Result<bool, MttrlyError> {
    if living(conn, account, user)?.is_none() {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO user_credentials (user_id, account_id, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO NOTHING",
        params![user.as_str(), account.as_str(), now],
    )
    .map_err(internal)?;
    Ok(true)
}

pub(in crate::db) fn enrolled_users(
    conn: &Connection,
    account: &AccountId,
) -> Result<std::collections::HashSet<UserId>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT c.user_id FROM user_credentials c JOIN users u ON u.id = c.user_id AND u.account_id = c.account_id
             WHERE c.account_id = ?1 AND c.totp_sealed IS NOT NULL AND u.removed_at IS NULL",
        )
        .map_err(internal)?;
    let rows = stmt.query_map(params![account.as_str()], |r| r.get::<_, String>(0)).map_err(internal)?;
    let mut out = std::collections::HashSet::new();
    for row in rows {
        let id = row.map_err(internal)?;
        if let Ok(parsed) = UserId::parse(&id) {
            out.insert(parsed);
        } else {
            tracing::error!(%id, "credentials row with a malformed user id; skipped");
        }
    }
    Ok(out)
}

pub(in crate::db) fn roster(conn: &Connection, account: &AccountId) -> Result<Vec<RosterEntry>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT u.id, u.name, u.role, u.email, u.created_at, u.removed_at,
                    c.password_hash IS NOT NULL, c.totp_sealed IS NOT NULL,
                    EXISTS (SELECT 1 FROM oidc_subjects o WHERE o.account_id = u.account_id AND o.user_id = u.id)
             FROM users u LEFT JOIN user_credentials c ON c.user_id = u.id AND c.account_id = u.account_id
             WHERE u.account_id = ?1 ORDER BY u.removed_at IS NOT NULL, u.created_at, u.id",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str()], |r| {
            let (id, role) = (r.get::<_, String>(0)?, r.get::<_, String>(2)?);
            let (Ok(id), Ok(role)) = (UserId::parse(&id), role.parse::<Role>()) else {
                tracing::error!(%id, %role, "user row with a malformed id or an unknown role; skipped");
                return Ok(None);
            };
            Ok(Some(RosterEntry {
                user: User { id, name: r.get(1)?, role, email: r.get(3)?, created_at: r.get(4)? },
                removed_at: r.get(5)?,
                has_password: r.get::<_, Option<bool>>(6)?.unwrap_or(false),
                has_second_factor: r.get::<_, Option<bool>>(7)?.unwrap_or(false),
                has_sso: r.get(8)?,
            }))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for row in rows {
        out.extend(row.map_err(internal)?);
    }
    Ok(out)
}

pub(in crate::db) fn open_invites(
    conn: &Connection,
    account: &AccountId,
    now: i64,
) -> Result<Vec<OpenInvite>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT u.id, u.name, u.role, i.created_at, i.expires_at
             FROM invites i JOIN users u ON u.id = i.user_id AND u.account_id = i.account_id
             WHERE i.account_id = ?1 AND i.used_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > ?2
               AND u.removed_at IS NULL
             ORDER BY i.expires_at, u.name",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), now], |r| {
            let (id, role) = (r.get::<_, String>(0)?, r.get::<_, String>(2)?);
            let (Ok(user_id), Ok(role)) = (UserId::parse(&id), role.parse::<Role>()) else {
                tracing::error!(%id, %role, "invite of a user row this build cannot read; skipped");
                return Ok(None);
            };
            Ok(Some(OpenInvite { user_id, name: r.get(1)?, role, created_at: r.get(3)?, expires_at: r.get(4)? }))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for row in rows {
        out.extend(row.map_err(internal)?);
    }
    Ok(out)
}

pub(in crate::db) fn factor(
    conn: &Connection,
    account: &AccountId,
    user: &UserId,
) -> Result<Option<Factor>, MttrlyError> {
    let Some(name) = living(conn, account, user)? else { return Ok(None) };
    let row = conn
        .query_row(
            "SELECT totp_sealed, totp_pending, totp_last_step, failures, locked_until,
                    (SELECT COUNT(*) FROM recovery_codes r
                     WHERE r.account_id = c.account_id AND r.user_id = c.user_id AND r.used_at IS NULL),
                    password_failures, password_locked_until
             FROM user_credentials c WHERE c.user_id = ?1 AND c.account_id = ?2",
            params![user.as_str(), account.as_str()],
            |r| {
                Ok(Factor {
                    name: name.clone(),
                    sealed: r.get::<_, Option<Vec<u8>>>(0)?.map(Sealed),
                    pending: r.get::<_, Option<Vec<u8>>>(1)?.map(Sealed),
                    last_step: step_of(r.get(2)?),
                    lockout: lockout_of(r.get(3)?, r.get(4)?),
                    recovery_left: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                    password_lockout: lockout_of(r.get(6)?, r.get(7)?),
                })
            },
        )
        .optional()
        .map_err(internal)?;
    Ok(Some(row.unwrap_or(Factor {
        name,
        sealed: None,
        pending: None,
        last_step: None,
        lockout: LockoutState::default(),
        recovery_left: 0,
        password_lockout: LockoutState::default(),
    })))
}

pub(in crate::db) fn accept_step(
    conn: &Connection,
    account: &AccountId,
    user: &UserId,
    step: u64,
    now: i64,
) -> Result<bool, MttrlyError> {
    let changed = conn
        .execute(
            "UPDATE user_credentials SET totp_last_step = ?3, failures = 0, locked_until = NULL, updated_at = ?4
             WHERE user_id = ?1 AND account_id = ?2 AND totp_sealed IS NOT NULL
               AND (totp_last_step IS NULL OR totp_last_step < ?3)
               AND (locked_until IS NULL OR locked_until <= ?4)
               AND EXISTS (SELECT 1 FROM users u WHERE u.id = ?1 AND u.removed_at IS NULL)",
            params![user.as_str(), account.as_str(), step_to(step), now],
        )
        .map_err(internal)?;
    Ok(changed == 1)
}

pub(in crate::db) fn use_recovery_code(
    conn: &mut Connection,
    account: &AccountId,
    user: &UserId,
    code: &str,
    now: i64,
) -> Result<bool, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    // No lock check: a recovery code (80 bits) cannot be guessed, so it stays the way out of a
    // TOTP lock that someone else's wrong codes caused.
    if living(&tx, account, user)?.is_none() {
        return Ok(false);
    }
    let used = tx
        .execute(
            "UPDATE recovery_codes SET used_at = ?4
             WHERE account_id = ?1 AND user_id = ?2 AND code_hash = ?3 AND used_at IS NULL",
            params![account.as_str(), user.as_str(), code, now],
        )
        .map_err(internal)?;
    if used != 1 {
        return Ok(false);
    }
    tx.execute(
        "UPDATE user_credentials SET failures = 0, locked_until = NULL, updated_at = ?3
         WHERE user_id = ?1 AND account_id = ?2",
        params![user.as_str(), account.as_str(), now],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(true)
}

pub(in crate::db) fn record_failure(
    conn: &mut Connection,
    account: &AccountId,
    user: &UserId,
    policy: Lockout,
    now: i64,
) -> Result<LockoutState, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    if !ensure_row(&tx, account, user, now)? {
        return Ok(LockoutState::default());
    }
    let before = tx
        .query_row(
            "SELECT failures, locked_until FROM user_credentials WHERE user_id = ?1 AND account_id = ?2",
            params![user.as_str(), account.as_str()],
            |r| Ok(lockout_of(r.get(0)?, r.get(1)?)),
        )
        .map_err(internal)?;
    // A failure while locked (refused unchecked) does not extend the lock.
    let after = if policy.admit(&before, now).is_err() { before } else { policy.on_failure(&before, now) };
    tx.execute(
        "UPDATE user_credentials SET failures = ?3, locked_until = ?4, updated_at = ?5
         WHERE user_id = ?1 AND account_id = ?2",
        params![user.as_str(), account.as_str(), after.failures, after.locked_until_ms, now],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(after)
}

pub(in crate::db) fn password_attempt(
    conn: &mut Connection,
    account: &AccountId,
    user: &UserId,
    policy: Lockout,
    now: i64,
) -> Result<PasswordAttempt, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    if !ensure_row(&tx, account, user, now)? {
        return Ok(PasswordAttempt::Unknown);
    }
    let before = tx
        .query_row(
            "SELECT password_failures, password_locked_until FROM user_credentials WHERE user_id = ?1 AND account_id = ?2",
            params![user.as_str(), account.as_str()],
            |r| Ok(lockout_of(r.get(0)?, r.get(1)?)),
        )
        .map_err(internal)?;
    if let Err(until) = policy.admit(&before, now) {
        return Ok(PasswordAttempt::Locked { until });
    }
    let after = policy.on_failure(&before, now);
    tx.execute(
        "UPDATE user_credentials SET password_failures = ?3, password_locked_until = ?4, updated_at = ?5
         WHERE user_id = ?1 AND account_id = ?2",
        params![user.as_str(), account.as_str(), after.failures, after.locked_until_ms, now],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(PasswordAttempt::Admitted(after))
}

pub(in crate::db) fn password_accepted(
    conn: &Connection,
    account: &AccountId,
    user: &UserId,
    now: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE user_credentials SET password_failures = 0, password_locked_until = NULL, updated_at = ?3
         WHERE user_id = ?1 AND account_id = ?2",
        params![user.as_str(), account.as_str(), now],
    )
    .map_err(internal)?;
    Ok(())
}

pub(in crate::db) fn set_pending(
    conn: &mut Connection,
    account: &AccountId,
    user: &UserId,
    pending: &[u8],
) -> Result<bool, MttrlyError> {
    let now = now_ms();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    if !ensure_row(&tx, account, user, now)? {
        return Ok(false);
    }
    tx.execute(
        "UPDATE user_credentials SET totp_pending = ?3, updated_at = ?4 WHERE user_id = ?1 AND account_id = ?2",
        params![user.as_str(), account.as_str(), pending, now],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(true)
}

/// Replaces the user's recovery codes.
fn replace_codes(
    conn: &Connection,
    account: &AccountId,
    user: &UserId,
    codes: &[RecoveryCodeHash],
    now: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        "DELETE FROM recovery_codes WHERE account_id = ?1 AND user_id = ?2",
        params![account.as_str(), user.as_str()],
    )
    .map_err(internal)?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO recovery_codes (user_id, account_id, code_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(internal)?;
    for code in codes {
        stmt.execute(params![user.as_str(), account.as_str(), code.0, now]).map_err(internal)?;
    }
    Ok(())
}

pub(in crate::db) fn confirm_pending(
    conn: &mut Connection,
    account: &AccountId,
    user: &UserId,
    pending: &[u8],
    step: u64,
    codes: &[RecoveryCodeHash],
    gate: FactorGate,
) -> Result<Result<(), PendingRefusal>, MttrlyError> {
    let now = now_ms();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    // Judged here, not only when the enrolment started: an admin enrolling in between switches
    // the account to second factors, and a first factor by token is then refused.
    if matches!(gate, FactorGate::Checked { .. })
        && !super::accounts::has_factor(&tx, account, user)?
        && super::accounts::factors_in_use(&tx, account)?
    {
        return Ok(Err(PendingRefusal::FirstFactorByInvite));
    }
    let changed = tx
        .execute(
            "UPDATE user_credentials
             SET totp_sealed = totp_pending, totp_pending = NULL, totp_last_step = ?4, failures = 0,
                 locked_until = NULL, updated_at = ?5
             WHERE user_id = ?1 AND account_id = ?2 AND totp_pending = ?3
               AND EXISTS (SELECT 1 FROM users u WHERE u.id = ?1 AND u.removed_at IS NULL)",
            params![user.as_str(), account.as_str(), pending, step_to(step), now],
        )
        .map_err(internal)?;
    if changed != 1 {
        return Ok(Err(PendingRefusal::Changed));
    }
    replace_codes(&tx, account, user, codes, now)?;
    // An unused invite link would replace the factor just confirmed, and it may have been issued
    // while there was none to protect (no admin code asked: `users::invite`): it ends here.
    tx.execute(
        "UPDATE invites SET revoked_at = ?3 WHERE account_id = ?1 AND user_id = ?2 AND used_at IS NULL AND revoked_at IS NULL",
        params![account.as_str(), user.as_str(), now],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(Ok(()))
}

/// A living user of the account by name.
fn living_by_name(conn: &Connection, account: &AccountId, name: &str) -> Result<Option<User>, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT id, name, role, email, created_at FROM users WHERE account_id = ?1 AND name = ?2 AND removed_at IS NULL",
            params![account.as_str(), name],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((id, name, role, email, created_at)) = row else { return Ok(None) };
    let (Ok(id), Ok(role)) = (UserId::parse(&id), role.parse::<Role>()) else {
        tracing::error!(%id, "user row with a malformed id or an unknown role");
        return Err(MttrlyError::new(ErrorCode::InternalError, "internal database error"));
    };
    Ok(Some(User { id, name, role, email, created_at }))
}

/// Whether a living user of the account has `email`, compared without case (checked in the
/// transaction that inserts, so two adds at once cannot both take it; no unique index, which a
/// database already holding a duplicate could not get).
pub(in crate::db) fn email_taken(conn: &Connection, account: &AccountId, email: &str) -> Result<bool, MttrlyError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE account_id = ?1 AND removed_at IS NULL AND email IS NOT NULL
                        AND lower(email) = lower(?2))",
        params![account.as_str(), email],
        |r| r.get(0),
    )
    .map_err(internal)
}

pub(in crate::db) fn insert_invite(
    conn: &Connection,
    account: &AccountId,
    user: &UserId,
    hash: &[u8; 32],
    expires_at: i64,
    now: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE invites SET revoked_at = ?3 WHERE account_id = ?1 AND user_id = ?2 AND used_at IS NULL AND revoked_at IS NULL",
        params![account.as_str(), user.as_str(), now],
    )
    .map_err(internal)?;
    conn.execute(
        "INSERT INTO invites (invite_hash, account_id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![hash.as_slice(), account.as_str(), user.as_str(), now, expires_at],
    )
    .map_err(internal)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)] // the new row's fields, its invite and the gate: one transaction
pub(in crate::db) fn add_with_invite(
    conn: &mut Connection,
    account: &AccountId,
    name: &str,
    role: Role,
    email: Option<&str>,
    hash: &[u8; 32],
    expires_at: i64,
    gate: FactorGate,
) -> Result<Result<User, UserRefusal>, MttrlyError> {
    let now = now_ms();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    if living_by_name(&tx, account, name)?.is_some() {
        return Ok(Err(UserRefusal::NameTaken));
    }
    if let Some(email) = email
        && email_taken(&tx, account, email)?
    {
        return Ok(Err(UserRefusal::EmailTaken));
    }
    if super::accounts::addition_refused(&tx, account, name, role, false, gate)? {
        return Ok(Err(UserRefusal::SecondFactorRequired));
    }
    let id = UserId::generate();
    tx.execute(
        "INSERT INTO users (id, account_id, name, role, created_at, email) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id.as_str(), account.as_str(), name, role.as_str(), now, email],
    )
    .map_err(internal)?;
    insert_invite(&tx, account, &id, hash, expires_at, now)?;
    let user = living_by_name(&tx, account, name)?
        .ok_or_else(|| MttrlyError::new(ErrorCode::InternalError, "the new user could not be read back"))?;
    tx.commit().map_err(internal)?;
    Ok(Ok(user))
}

pub(in crate::db) fn reinvite(
    conn: &mut Connection,
    account: &AccountId,
    name: &str,
    hash: &[u8; 32],
    expires_at: i64,
    gate: FactorGate,
) -> Result<Result<(User, bool), UserRefusal>, MttrlyError> {
    let now = now_ms();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let Some(user) = living_by_name(&tx, account, name)? else { return Ok(Err(UserRefusal::NotFound)) };
    // Judged here, not before: a user who enrols between an earlier look and this write would
    // otherwise get an invite that replaces their new factor without anyone's code.
    // In an account that uses second factors every re-invite needs the caller's code, whoever
    // the target: the link makes whoever opens it that person, with a factor of their choosing.
    let enrolled = super::accounts::has_factor(&tx, account, &user.id)?;
    if gate == (FactorGate::Checked { code_verified: false })
        && (enrolled || super::accounts::factors_in_use(&tx, account)?)
    {
        return Ok(Err(UserRefusal::SecondFactorRequired));
    }
    insert_invite(&tx, account, &user.id, hash, expires_at, now)?;
    tx.commit().map_err(internal)?;
    Ok(Ok((user, enrolled)))
}

/// The invite's state for a step at `now`, within the account.
fn usable(
    conn: &Connection,
    account: &AccountId,
    hash: &[u8; 32],
    now: i64,
) -> Result<Result<InviteRow, InviteRefusal>, MttrlyError> {
    let Some(row) = invite(conn, hash)? else { return Ok(Err(InviteRefusal::Unknown)) };
    if row.account_id != *account {
        return Ok(Err(InviteRefusal::Unknown));
    }
    Ok(if row.used_at.is_some() {
        Err(InviteRefusal::Used)
    } else if row.revoked_at.is_some() || row.user_removed {
        Err(InviteRefusal::Revoked)
    } else if now >= row.expires_at {
        Err(InviteRefusal::Expired)
    } else {
        Ok(row)
    })
}

pub(in crate::db) fn invite_choose(
    conn: &mut Connection,
    account: &AccountId,
    hash: &[u8; 32],
    password_hash: &str,
    pending: &[u8],
    now: i64,
) -> Result<Result<(), InviteRefusal>, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    if let Err(refusal) = usable(&tx, account, hash, now)? {
        return Ok(Err(refusal));
    }
    tx.execute(
        "UPDATE invites SET password_hash = ?3, totp_pending = ?4 WHERE invite_hash = ?1 AND account_id = ?2",
        params![hash.as_slice(), account.as_str(), password_hash, pending],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(Ok(()))
}

pub(in crate::db) fn complete_invite(
    conn: &mut Connection,
    account: &AccountId,
    hash: &[u8; 32],
    pending: &[u8],
    step: u64,
    codes: &[RecoveryCodeHash],
    now: i64,
) -> Result<Result<UserId, InviteRefusal>, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let row = match usable(&tx, account, hash, now)? {
        Ok(row) => row,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let (Some(password), Some(shown)) = (&row.password_hash, &row.pending) else {
        return Ok(Err(InviteRefusal::NotReady));
    };
    if shown.0 != pending {
        return Ok(Err(InviteRefusal::NotReady));
    }
    let user = row.user_id;
    tx.execute(
        "UPDATE invites SET used_at = ?3 WHERE invite_hash = ?1 AND account_id = ?2",
        params![hash.as_slice(), account.as_str(), now],
    )
    .map_err(internal)?;
    ensure_row(&tx, account, &user, now)?;
    tx.execute(
        "UPDATE user_credentials
         SET password_hash = ?3, totp_sealed = ?4, totp_pending = NULL, totp_last_step = ?5, failures = 0,
             locked_until = NULL, password_failures = 0, password_locked_until = NULL, updated_at = ?6
         WHERE user_id = ?1 AND account_id = ?2",
        params![user.as_str(), account.as_str(), password, pending, step_to(step), now],
    )
    .map_err(internal)?;
    replace_codes(&tx, account, &user, codes, now)?;
    tx.execute(
        "UPDATE web_sessions SET ended_at = ?3 WHERE account_id = ?1 AND user_id = ?2 AND ended_at IS NULL",
        params![account.as_str(), user.as_str(), now],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(Ok(user))
}

pub(in crate::db) fn start_session(
    conn: &Connection,
    account: &AccountId,
    hash: &[u8; 32],
    user: &UserId,
    method: SignInMethod,
    now: i64,
) -> Result<Option<String>, MttrlyError> {
    let Some(name) = living(conn, account, user)? else { return Ok(None) };
    let inserted = conn
        .execute(
            "INSERT INTO web_sessions (session_hash, account_id, user_id, method, created_at, last_seen_at)
             SELECT ?1, account_id, id, ?4, ?5, ?5 FROM users WHERE id = ?3 AND account_id = ?2 AND removed_at IS NULL",
            params![hash.as_slice(), account.as_str(), user.as_str(), method.as_str(), now],
        )
        .map_err(internal)?;
    Ok((inserted == 1).then_some(name))
}

pub(in crate::db) fn touch_session(
    conn: &Connection,
    account: &AccountId,
    hash: &[u8; 32],
    now: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE web_sessions SET last_seen_at = ?3
         WHERE session_hash = ?1 AND account_id = ?2 AND ended_at IS NULL AND last_seen_at < ?3",
        params![hash.as_slice(), account.as_str(), now],
    )
    .map_err(internal)?;
    Ok(())
}

pub(in crate::db) fn end_session(
    conn: &Connection,
    account: &AccountId,
    hash: &[u8; 32],
    now: i64,
) -> Result<bool, MttrlyError> {
    let ended = conn
        .execute(
            "UPDATE web_sessions SET ended_at = ?3 WHERE session_hash = ?1 AND account_id = ?2 AND ended_at IS NULL",
            params![hash.as_slice(), account.as_str(), now],
        )
        .map_err(internal)?;
    Ok(ended == 1)
}

pub(in crate::db) fn end_presented(conn: &Connection, hash: &[u8; 32], now: i64) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE web_sessions SET ended_at = ?2 WHERE session_hash = ?1 AND ended_at IS NULL",
        params![hash.as_slice(), now],
    )
    .map_err(internal)?;
    Ok(())
}

pub(in crate::db) fn session(conn: &Connection, hash: &[u8; 32]) -> Result<Option<SessionRow>, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT s.account_id, s.user_id, u.name, u.role, s.method, s.created_at, s.last_seen_at
             FROM web_sessions s JOIN users u ON u.id = s.user_id AND u.account_id = s.account_id
             WHERE s.session_hash = ?1 AND s.ended_at IS NULL AND u.removed_at IS NULL",
            params![hash.as_slice()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((account, user, name, role, method, created_at, last_seen_at)) = row else { return Ok(None) };
    let (Ok(account_id), Ok(user_id), Ok(role), Some(method)) =
        (AccountId::parse(&account), UserId::parse(&user), role.parse::<Role>(), SignInMethod::parse(&method))
    else {
        tracing::error!(%account, "session row this build cannot read; refusing it");
        return Ok(None);
    };
    Ok(Some(SessionRow { account_id, user_id, name, role, method, created_at, last_seen_at }))
}

pub(in crate::db) fn invite(conn: &Connection, hash: &[u8; 32]) -> Result<Option<InviteRow>, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT i.account_id, i.user_id, u.name, i.expires_at, i.used_at, i.revoked_at, u.removed_at IS NOT NULL,
                    i.password_hash, i.totp_pending
             FROM invites i JOIN users u ON u.id = i.user_id AND u.account_id = i.account_id
             WHERE i.invite_hash = ?1",
            params![hash.as_slice()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, bool>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<Vec<u8>>>(8)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((account, user, name, expires_at, used_at, revoked_at, user_removed, password_hash, pending)) = row else {
        return Ok(None);
    };
    let (Ok(account_id), Ok(user_id)) = (AccountId::parse(&account), UserId::parse(&user)) else {
        tracing::error!(%account, "invite row with malformed ids; refusing it");
        return Ok(None);
    };
    Ok(Some(InviteRow {
        account_id,
        user_id,
        name,
        expires_at,
        used_at,
        revoked_at,
        user_removed,
        password_hash,
        pending: pending.map(Sealed),
    }))
}

/// The columns [`candidate_at`] reads: the user, and whether they can sign in by password.
const CANDIDATE_COLUMNS: &str = "u.account_id, u.id, u.name, c.password_hash, c.totp_sealed IS NOT NULL";

type CandidateRow = (String, String, String, Option<String>, Option<bool>);

fn candidate_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<CandidateRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

/// The one living user `login` names, across the central: `ACCOUNT/NAME` (an account's name, a
/// slash, a user name), or a bare name or e-mail that only one living user has. Two or more
/// (another tenant has a `bob` too), or none: `None`, the same as a user who has no password or
/// no confirmed second factor yet. At most two rows are read.
pub(in crate::db) fn resolve(conn: &Connection, login: &str) -> Result<Option<Candidate>, MttrlyError> {
    let scoped = login
        .rsplit_once('/')
        .filter(|(account, name)| !account.is_empty() && mttrly_core::approval::config::valid_user_name(name));
    let rows: Vec<CandidateRow> = if let Some((account, name)) = scoped {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {CANDIDATE_COLUMNS}
                 FROM users u JOIN accounts a ON a.id = u.account_id
                 LEFT JOIN user_credentials c ON c.user_id = u.id AND c.account_id = u.account_id
                 WHERE u.removed_at IS NULL AND a.name = ?1 AND u.name = ?2 LIMIT 2"
            ))
            .map_err(internal)?;
        stmt.query_map(params![account, name], candidate_at).map_err(internal)?.collect::<Result<_, _>>()
    } else {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {CANDIDATE_COLUMNS}
                 FROM users u LEFT JOIN user_credentials c ON c.user_id = u.id AND c.account_id = u.account_id
                 WHERE u.removed_at IS NULL
                   AND (u.name = ?1 OR (u.email IS NOT NULL AND lower(u.email) = lower(?1)))
                 LIMIT 2"
            ))
            .map_err(internal)?;
        stmt.query_map(params![login], candidate_at).map_err(internal)?.collect::<Result<_, _>>()
    }
    .map_err(internal)?;
    let mut rows = rows.into_iter();
    let (Some(one), None) = (rows.next(), rows.next()) else { return Ok(None) };
    let (account, user, name, Some(password_hash), Some(true)) = one else { return Ok(None) };
    let (Ok(account_id), Ok(user_id)) = (AccountId::parse(&account), UserId::parse(&user)) else {
        tracing::error!(%account, "user row with malformed ids; refusing it");
        return Ok(None);
    };
    Ok(Some(Candidate { account_id, user_id, name, password_hash }))
}

/// Whether the central holds more than one account (the sign-in page then explains `account/name`).
pub(in crate::db) fn shared(conn: &Connection) -> Result<bool, MttrlyError> {
    conn.query_row("SELECT COUNT(*) > 1 FROM (SELECT 1 FROM accounts LIMIT 2)", [], |r| r.get(0)).map_err(internal)
}
