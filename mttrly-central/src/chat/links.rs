//! Linking a chat account to a person: `mttrly-cli users link telegram` prints a single-use code,
//! the person sends it to the bot (`/start CODE`) or the Slack app (`/mttrly link CODE`), and
//! that chat account then maps to exactly that person.
//!
//! The code proves the person wanted this (it came from their own authenticated CLI); sending it
//! from a chat account proves they hold that account. Codes are 60 random bits, live ten
//! minutes, are stored hashed, and die on use or when a newer one is made. Only a token that may
//! decide makes one, and the link remembers that token: revoking it (the answer to a leak) ends
//! the link too, as removing the person does.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{ChatProvider, ErrorCode, MttrlyError, Principal};
use sha2::{Digest, Sha256};

use crate::db::accounts::TokenOwner;
use crate::db::chat::Redeemed;
use crate::state::Central;

/// How long a link code lives.
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;

/// The symbols of a code: Crockford's base32, upper case (no I, L, O, U to misread).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Symbols in a code (5 bits each: 60 bits).
const CODE_LEN: usize = 12;

/// A code to send to the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkCode {
    /// The code (`7KQ2M9XW4RTD`).
    pub code: String,
    /// The provider it links.
    pub provider: ChatProvider,
    /// When it stops working (ms).
    pub expires_at: i64,
}

/// A fresh code.
fn fresh_code() -> String {
    let mut bytes = [0u8; CODE_LEN];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the operating system's random source failed: {e}"));
    bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect()
}

/// A code as typed or pasted, in its stored form: case, spaces and dashes do not matter, and the
/// letters people confuse with digits read as those digits (Crockford's rule).
pub fn normalise(code: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_LEN);
    for c in code.chars().filter(|c| !c.is_whitespace() && *c != '-') {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == CODE_LEN).then_some(out)
}

fn hash(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

/// Makes a link code for the calling human (audited, the code itself never).
pub async fn issue(central: &Central, caller: &TokenOwner, provider: ChatProvider) -> Result<LinkCode, MttrlyError> {
    let result = async {
        let Principal::Human { user_id, .. } = &caller.principal else {
            return Err(MttrlyError::new(
                ErrorCode::Forbidden,
                "a chat account is linked by its person, with their own human token, never by an assistant",
            ));
        };
        // A link decides as its person: only a credential that may itself decide makes one (a
        // read-only or toolset-scoped token looks at actions but decides nothing).
        if caller.scope.check(mttrly_core::ToolId::ApproveAction.spec()).is_err() {
            return Err(MttrlyError::new(
                ErrorCode::Forbidden,
                "a read-only or toolset-scoped token cannot link a chat account (a link decides actions): \
                 use a full human token",
            ));
        }
        if central.chat.as_ref().and_then(|c| c.channel(provider)).is_none() {
            return Err(MttrlyError::new(
                ErrorCode::ValidationError,
                format!(
                    "{} is not configured on this central: an admin adds a [{}] section to central's configuration first",
                    provider.display_name(),
                    provider.as_str()
                ),
            )
            .with_detail("provider", provider.as_str()));
        }
        let code = fresh_code();
        let expires_at = crate::db::now_ms().saturating_add(CODE_TTL_MS);
        let stored = central
            .db
            .account(&caller.account_id)
            .chat()
            .new_link_code(user_id, provider, hash(&code), expires_at, &caller.credential)
            .await?;
        if !stored {
            return Err(MttrlyError::new(ErrorCode::AuthFailed, "your user no longer exists"));
        }
        Ok(LinkCode { code, provider, expires_at })
    }
    .await;
    let params = serde_json::json!({
        "provider": provider.as_str(),
        "expires_at": result.as_ref().ok().map(|c| c.expires_at),
    });
    central.audit(crate::audit::events::api_call(caller, "LinkChat", None, params, &result));
    result
}

/// What to do with a code, in words for the person.
pub fn instructions(provider: ChatProvider, code: &str) -> String {
    match provider {
        ChatProvider::Telegram => format!(
            "Open a private chat with your team's mttrly bot in Telegram and send: /start {code} (valid 10 minutes, once)"
        ),
        ChatProvider::Slack => {
            format!("In Slack, run: /mttrly link {code} (valid 10 minutes, once)")
        }
    }
}

/// The calling human's chat links.
pub async fn list(central: &Central, caller: &TokenOwner) -> Result<Vec<crate::db::chat::Link>, MttrlyError> {
    let Principal::Human { user_id, .. } = &caller.principal else {
        return Err(MttrlyError::new(ErrorCode::Forbidden, "chat links belong to humans"));
    };
    central.db.account(&caller.account_id).chat().links(user_id).await
}

/// Removes a chat link: the caller's own, or (admins) `name`'s. Audited.
pub async fn unlink(
    central: &Central,
    caller: &TokenOwner,
    provider: ChatProvider,
    name: Option<&str>,
) -> Result<bool, MttrlyError> {
    unlink_from(central, caller, provider, name, mttrly_core::Source::Api).await
}

/// [`unlink`] asked through `source` (the dashboard's Unlink button): the same checks and the
/// same audit row, naming the channel it came through.
pub async fn unlink_from(
    central: &Central,
    caller: &TokenOwner,
    provider: ChatProvider,
    name: Option<&str>,
    source: mttrly_core::Source,
) -> Result<bool, MttrlyError> {
    let result = async {
        let Principal::Human { user_id, name: me } = &caller.principal else {
            return Err(MttrlyError::new(ErrorCode::Forbidden, "chat links are managed by humans"));
        };
        let target = match name {
            None => user_id.clone(),
            Some(n) if n == me => user_id.clone(),
            Some(n) => {
                if caller.role != mttrly_core::Role::Admin {
                    return Err(MttrlyError::new(ErrorCode::Forbidden, "only admins remove other people's chat links"));
                }
                crate::users::require_full_scope(caller)?;
                let users = central.db.account(&caller.account_id).users().list().await?;
                let Some(user) = users.into_iter().find(|u| u.name == n) else {
                    return Err(MttrlyError::new(ErrorCode::ValidationError, format!("no user `{n}` in this account"))
                        .with_detail("name", n));
                };
                user.id
            }
        };
        central.db.account(&caller.account_id).chat().unlink(&target, provider).await
    }
    .await;
    let params = serde_json::json!({
        "provider": provider.as_str(),
        "name": name,
        "removed": result.as_ref().ok(),
    });
    let mut event = crate::audit::events::api_call(caller, "UnlinkChat", None, params, &result);
    event.source = source;
    central.audit(event);
    result
}

/// Who a redeemed code linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    /// The tenant.
    pub account_id: AccountId,
    /// The person.
    pub user_id: UserId,
    /// Their name, for the bot's reply.
    pub user_name: String,
}

/// Why a code sent to the bot linked nothing (the bot tells the sender in these words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefused {
    /// Not a code's shape.
    #[error("that is not a link code: run `mttrly-cli users link {0}` and send the code it prints")]
    Malformed(ChatProvider),
    /// No living code matches.
    #[error("that code is unknown, used or expired: run `mttrly-cli users link {0}` for a new one")]
    Unknown(ChatProvider),
    /// This chat account belongs to someone else.
    #[error(
        "this {0} account is already linked to another mttrly user; they unlink it first (`mttrly-cli users unlink {1}`)"
    )]
    Taken(&'static str, ChatProvider),
}

impl LinkRefused {
    /// The seed's code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(_) => ErrorCode::ValidationError,
            Self::Unknown(_) | Self::Taken(..) => ErrorCode::Forbidden,
        }
    }
}

/// Redeems `code`, sent by the chat account `external_id` from its private chat `chat_id`
/// (`label` names that account for people: `@alice`). Audited in the linked person's account,
/// with the chat service as the source.
pub async fn redeem(
    central: &Central,
    provider: ChatProvider,
    code: &str,
    external_id: &str,
    chat_id: &str,
    label: &str,
) -> Result<Linked, LinkRefused> {
    let Some(code) = normalise(code) else { return Err(LinkRefused::Malformed(provider)) };
    let now = crate::db::now_ms();
    let redeemed =
        central.db.chat_lookups().redeem(provider, hash(&code), external_id, chat_id, label, now).await.map_err(
            |e| {
                tracing::error!(error = %mttrly_core::ErrorChain(&e), "a chat link code could not be redeemed");
                LinkRefused::Unknown(provider)
            },
        )?;
    match redeemed {
        Redeemed::Linked { account_id, user_id, user_name } => {
            central.audit(link_event(&account_id, &user_id, &user_name, provider, external_id, label));
            Ok(Linked { account_id, user_id, user_name })
        }
        Redeemed::UnknownCode => {
            tracing::info!(%provider, external_id, "a chat link code was refused: unknown, used or expired");
            Err(LinkRefused::Unknown(provider))
        }
        Redeemed::TakenByOther { account_id } => {
            tracing::warn!(%provider, external_id, account = %account_id, "a chat account already linked to someone else sent a link code");
            Err(LinkRefused::Taken(provider.display_name(), provider))
        }
    }
}

fn link_event(
    account: &AccountId,
    user: &UserId,
    name: &str,
    provider: ChatProvider,
    external_id: &str,
    label: &str,
) -> mttrly_core::audit::AuditEvent {
    mttrly_core::audit::AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: account.clone(),
        server_id: None,
        actor: mttrly_core::audit::AuditActor::Human { user_id: user.clone(), name: name.to_owned() },
        source: provider.source(),
        kind: mttrly_core::audit::AuditKind::ApiCall,
        subject: "ChatLinked".to_owned(),
        parameters: serde_json::json!({
            "provider": provider.as_str(),
            "external_id": external_id,
            "label": label,
        }),
        outcome: mttrly_core::audit::AuditOutcome::Ok,
        duration_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_twelve_crockford_symbols_and_read_back_however_typed() {
        let code = fresh_code();
        assert_eq!(code.len(), CODE_LEN);
        assert_eq!(normalise(&code).as_deref(), Some(code.as_str()));
        assert_eq!(normalise(&code.to_lowercase()).as_deref(), Some(code.as_str()));
        let dashed = format!("{}-{} {}", &code[..4], &code[4..8], &code[8..]);
        assert_eq!(normalise(&dashed).as_deref(), Some(code.as_str()));
        assert_eq!(normalise("O1IL00000000").as_deref(), Some("011100000000"));
    }

    #[test]
    fn anything_else_is_not_a_code() {
        for bad in ["", "short", "7KQ2M9XW4RTDX", "7KQ2M9XW4RT!", "7KQ2M9XW4RTÜ", "/start 7KQ2M9XW4RTD"] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }

    #[test]
    fn codes_differ() {
        let codes: std::collections::HashSet<String> = (0..1000).map(|_| fresh_code()).collect();
        assert_eq!(codes.len(), 1000);
    }
}
