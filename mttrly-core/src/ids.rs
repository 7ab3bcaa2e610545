//! Typed identifiers.
//!
//! Every id crosses the wire as a prefixed string (`srv_…`, `act_…`) so that a server id pasted
//! where an action id belongs is rejected by validation instead of silently matching nothing, and
//! so that a human reading an audit row knows what each id names. Inside the code each id is its
//! own type, so the compiler keeps them apart too.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id: expected `{prefix}_` followed by 32 lowercase hex digits")]
pub struct InvalidId {
    /// What kind of id was expected (`server`, `action`, ...).
    pub kind: &'static str,
    /// The expected prefix.
    pub prefix: &'static str,
    /// The rejected text (truncated to keep error messages short).
    pub value: String,
}

/// The length of the random/time part of every id.
const BODY_LEN: usize = 32;

fn check_id(kind: &'static str, prefix: &'static str, s: &str) -> Result<(), InvalidId> {
    let ok = s.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('_')).is_some_and(|body| {
        body.len() == BODY_LEN && body.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        let value: String = s.chars().take(80).collect();
        Err(InvalidId { kind, prefix, value })
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// What this id names, for error messages.
            pub const KIND: &'static str = $kind;
            /// The wire prefix.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id. Time-ordered (UUIDv7), so ids sort roughly by creation.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// Parses and checks the wire form.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                check_id($kind, $prefix, s)?;
                Ok(Self(s.to_owned()))
            }

            /// The wire form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = Cow::<'de, str>::deserialize(deserializer)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": concat!("^", $prefix, "_[0-9a-f]{32}$"),
                })
            }
        }
    };
}

typed_id!(
    /// A server registered with central (one agent, one host).
    ServerId, "server", "srv"
);
typed_id!(
    /// An action: a request to change something on a server, approved or not.
    ActionId, "action", "act"
);
typed_id!(
    /// A tenant: servers, actions, alerts and audit all belong to exactly one account.
    AccountId, "account", "acc"
);
typed_id!(
    /// A human user of an account.
    UserId, "user", "usr"
);
typed_id!(
    /// One assistant session (an MCP client acting for a user).
    AssistantSessionId, "assistant session", "ses"
);
typed_id!(
    /// An alert opened by a threshold rule.
    AlertId, "alert", "alr"
);
typed_id!(
    /// A task sent over the agent channel.
    TaskId, "task", "tsk"
);
typed_id!(
    /// An investigation bound to an assistant session.
    InvestigationId, "investigation", "inv"
);
typed_id!(
    /// A proactive event raised by a detector.
    EventId, "event", "evt"
);
typed_id!(
    /// A knowledge artifact (postmortem, recipe, note).
    KnowledgeId, "knowledge", "kno"
);
typed_id!(
    /// A second-factor grant that lets an investigation's exec calls skip per-command approval.
    BypassId, "bypass", "byp"
);
typed_id!(
    /// A deploy recorded from CI, the CLI, or detected by an agent.
    DeployId, "deploy", "dep"
);
typed_id!(
    /// One run of the deploy verifier, kept for the retrospective and the timeline.
    VerificationId, "verification", "ver"
);
typed_id!(
    /// A notification in a war-room channel (`in_reply_to` names one).
    NotificationId, "notification", "ntf"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_keep_their_kind() {
        let id = ServerId::generate();
        assert!(id.as_str().starts_with("srv_"));
        assert_eq!(ServerId::parse(id.as_str()), Ok(id.clone()));
        assert!(ActionId::parse(id.as_str()).is_err(), "a server id is not an action id");
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "srv_",
            "srv_0123",
            "SRV_0123456789abcdef0123456789abcdef",
            "srv_0123456789ABCDEF0123456789abcdef",
            "srv-0123456789abcdef0123456789abcdef",
            "srv_0123456789abcdef0123456789abcdef0",
            "srv_../../etc/passwd",
            "srv_0123456789abcdef0123456789abcdeé",
        ] {
            assert!(ServerId::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(ServerId::parse("srv_0123456789abcdef0123456789abcdef").is_ok());
    }

    #[test]
    fn ids_deserialise_with_validation() {
        let ok: ServerId = serde_json::from_str("\"srv_0123456789abcdef0123456789abcdef\"").expect("valid");
        assert_eq!(ok.as_str(), "srv_0123456789abcdef0123456789abcdef");
        let err = serde_json::from_str::<ServerId>("\"act_0123456789abcdef0123456789abcdef\"").unwrap_err();
        assert!(err.to_string().contains("not a valid server id"), "{err}");
    }
}
