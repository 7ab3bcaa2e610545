//! The audit page's and the exports' filters, read from the query string of a plain
//! `<form method=get>`: strictly (an unknown server, source, kind or a malformed time is a
//! `VALIDATION_ERROR` naming the field, never an empty page that looks like "nothing happened"),
//! and kept as given, so the form, the paging links and the export links carry them on.

use std::collections::HashMap;

use mttrly_core::audit::AuditKind;
use mttrly_core::ids::{ServerId, UserId};
use mttrly_core::{ErrorCode, MttrlyError, Source, display};

use crate::db::audit::{ActorFilter, AuditFilter};

/// The longest value a filter field takes (a subject is a tool id or an action id).
const MAX_VALUE: usize = 200;

/// A query string's parameters, decoded (`+` and percent escapes); a repeated name keeps its
/// last value, as a form with one field per name never repeats it.
#[derive(Debug, Default)]
pub(in crate::dashboard) struct Params(HashMap<String, String>);

impl Params {
    /// Decodes `raw` (the part after `?`).
    pub(in crate::dashboard) fn parse(raw: Option<&str>) -> Result<Self, MttrlyError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| MttrlyError::new(ErrorCode::ValidationError, "the query string is not valid form encoding"))?;
        Ok(Self(pairs.into_iter().collect()))
    }

    /// The trimmed value of `name`, `""` when absent.
    pub(in crate::dashboard) fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |v| v.trim())
    }
}

/// A refused filter value: `VALIDATION_ERROR` naming the field.
pub(in crate::dashboard) fn invalid(field: &str, message: String) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message).with_detail("field", field)
}

/// The filter fields as the person gave them, for refilling the form and building links.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Given {
    pub server: String,
    pub actor: String,
    pub source: String,
    pub kind: String,
    pub subject: String,
    pub from: String,
    pub to: String,
}

impl Given {
    /// The fields of `params`.
    pub(super) fn of(params: &Params) -> Self {
        let field = |name: &str| params.get(name).to_owned();
        Self {
            server: field("server"),
            actor: field("actor"),
            source: field("source"),
            kind: field("kind"),
            subject: field("subject"),
            from: field("from"),
            to: field("to"),
        }
    }

    /// The non-empty fields, encoded as a query string (no leading `?`), for links that keep
    /// the filters.
    pub(super) fn query(&self) -> String {
        [
            ("server", &self.server),
            ("actor", &self.actor),
            ("source", &self.source),
            ("kind", &self.kind),
            ("subject", &self.subject),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", crate::web::page::urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }

    /// The filter these fields ask for (`limit` and `before_seq` left to the caller), checked
    /// against the account's servers.
    pub(super) fn filter(&self, servers: &HashMap<ServerId, String>) -> Result<AuditFilter, MttrlyError> {
        for (field, value) in [("subject", &self.subject), ("from", &self.from), ("to", &self.to)] {
            if value.chars().count() > MAX_VALUE {
                return Err(invalid(field, format!("`{field}` is longer than {MAX_VALUE} characters")));
            }
        }
        let since_ms = time(&self.from, "from", Bound::Start)?;
        let until_ms = time(&self.to, "to", Bound::End)?;
        if let (Some(since), Some(until)) = (since_ms, until_ms)
            && since >= until
        {
            return Err(invalid("to", "`to` must be later than `from`".to_owned()));
        }
        Ok(AuditFilter {
            server_id: server(&self.server, servers)?,
            subject: Some(self.subject.clone()).filter(|s| !s.is_empty()),
            actor: actor(&self.actor)?,
            source: named("source", &self.source, &Source::ALL, Source::as_str)?,
            kind: named("kind", &self.kind, &AuditKind::ALL, AuditKind::as_str)?,
            since_ms,
            until_ms,
            before_seq: None,
            limit: 0,
        })
    }
}

/// `before_seq`: a positive sequence number, or none.
pub(super) fn before_seq(params: &Params) -> Result<Option<u64>, MttrlyError> {
    match params.get("before_seq") {
        "" => Ok(None),
        v => v.parse::<u64>().ok().filter(|s| *s > 0).map(Some).ok_or_else(|| {
            invalid("before_seq", format!("`before_seq` must be a positive whole number, not `{}`", display::exact(v)))
        }),
    }
}

/// One of the account's servers, by id.
fn server(value: &str, servers: &HashMap<ServerId, String>) -> Result<Option<ServerId>, MttrlyError> {
    if value.is_empty() {
        return Ok(None);
    }
    let unknown = || invalid("server", format!("no server `{}` in this account", display::exact(value)));
    let id = ServerId::parse(value).map_err(|_| unknown())?;
    if servers.contains_key(&id) { Ok(Some(id)) } else { Err(unknown()) }
}

/// `human`, `assistant`, `agent`, `system`, `human:USER_ID` or `assistant:USER_ID`.
fn actor(value: &str) -> Result<Option<ActorFilter>, MttrlyError> {
    let person = |id: &str| {
        UserId::parse(id).map_err(|_| invalid("actor", format!("`{}` is not a person's id", display::exact(id))))
    };
    Ok(Some(match value {
        "" => return Ok(None),
        "human" => ActorFilter::AnyHuman,
        "assistant" => ActorFilter::AnyAssistant,
        "agent" => ActorFilter::Agent,
        "system" => ActorFilter::System,
        v => match v.split_once(':') {
            Some(("human", id)) => ActorFilter::Human(person(id)?),
            Some(("assistant", id)) => ActorFilter::AssistantFor(person(id)?),
            _ => {
                return Err(invalid(
                    "actor",
                    format!(
                        "unknown actor `{}`: expected human, assistant, agent, system, human:USER_ID or \
                         assistant:USER_ID",
                        display::exact(v)
                    ),
                ));
            }
        },
    }))
}

/// One of `all` by its wire name.
fn named<T: Copy>(
    field: &str,
    value: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<Option<T>, MttrlyError> {
    if value.is_empty() {
        return Ok(None);
    }
    all.iter().copied().find(|t| name(*t) == value).map(Some).ok_or_else(|| {
        let expected = all.iter().map(|t| name(*t)).collect::<Vec<_>>().join(", ");
        invalid(field, format!("unknown {field} `{}`: expected one of {expected}", display::exact(value)))
    })
}

/// Which end of a range a time is: a date alone means the start of that day for `from` and the
/// end of it for `to`, so `from=to=2026-12-01` is that whole day.
#[derive(Clone, Copy)]
enum Bound {
    Start,
    End,
}

/// A time as a form gives it, in UTC (the dashboard shows UTC everywhere): RFC 3339
/// (`2026-12-01T10:00:00Z`, with any offset), a date and time (`2026-12-01T10:00`, what a
/// `datetime-local` input sends, or with a space) or a date (`2026-12-01`). Milliseconds.
fn time(value: &str, field: &str, bound: Bound) -> Result<Option<i64>, MttrlyError> {
    if value.is_empty() {
        return Ok(None);
    }
    let bad = || {
        invalid(
            field,
            format!(
                "`{field}` is not a time: `{}` (expected 2026-12-01, 2026-12-01T10:00 or 2026-12-01T10:00:00Z, in UTC)",
                display::exact(value)
            ),
        )
    };
    if let Ok(ts) = value.parse::<jiff::Timestamp>() {
        return Ok(Some(ts.as_millisecond()));
    }
    let utc = |dt: jiff::civil::DateTime| dt.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp().as_millisecond());
    if value.len() > 10
        && let Ok(dt) = value.parse::<jiff::civil::DateTime>()
    {
        return utc(dt).map(Some).map_err(|_| bad());
    }
    let date = value.parse::<jiff::civil::Date>().map_err(|_| bad())?;
    let day = match bound {
        Bound::Start => date,
        Bound::End => date.tomorrow().map_err(|_| bad())?,
    };
    utc(day.to_datetime(jiff::civil::Time::midnight())).map(Some).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &str) -> Given {
        Given::of(&Params::parse(Some(pairs)).unwrap_or_default())
    }

    #[test]
    fn times_read_as_utc_and_a_bare_date_covers_its_day() {
        let day = 1_764_547_200_000; // 2025-12-01T00:00:00Z
        assert_eq!(time("2025-12-01", "from", Bound::Start).ok(), Some(Some(day)));
        assert_eq!(time("2025-12-01", "to", Bound::End).ok(), Some(Some(day + 86_400_000)));
        assert_eq!(time("2025-12-01T10:00", "from", Bound::Start).ok(), Some(Some(day + 36_000_000)));
        assert_eq!(time("2025-12-01 10:00:30", "from", Bound::Start).ok(), Some(Some(day + 36_030_000)));
        assert_eq!(time("2025-12-01T11:00:00+01:00", "from", Bound::Start).ok(), Some(Some(day + 36_000_000)));
        for bad in ["yesterday", "2025-13-01", "2025-12-01T25:00", "1764547200000"] {
            let e = time(bad, "from", Bound::Start).err().map(|e| e.code());
            assert_eq!(e, Some(ErrorCode::ValidationError), "{bad}");
        }
    }

    #[test]
    fn every_field_is_checked_and_named_in_the_error() {
        let servers = HashMap::new();
        for (query, field) in [
            ("source=fax", "source"),
            ("kind=gossip", "kind"),
            ("actor=robot", "actor"),
            ("actor=human:not-an-id", "actor"),
            ("server=srv_nope", "server"),
            ("from=soon", "from"),
            ("from=2025-12-02&to=2025-12-01", "to"),
        ] {
            let e = given(query).filter(&servers).err();
            assert_eq!(e.as_ref().map(MttrlyError::code), Some(ErrorCode::ValidationError), "{query}");
            let detail = e.and_then(|e| e.details().get("field").cloned());
            assert_eq!(detail, Some(serde_json::json!(field)), "{query}");
        }
        let ok = given("source=cli&kind=tool_call&actor=agent&subject=mttrly_list_servers").filter(&servers);
        let ok = ok.ok();
        assert_eq!(ok.as_ref().and_then(|f| f.source), Some(Source::Cli));
        assert_eq!(ok.as_ref().and_then(|f| f.kind), Some(AuditKind::ToolCall));
        assert_eq!(ok.as_ref().and_then(|f| f.actor.clone()), Some(ActorFilter::Agent));
    }

    #[test]
    fn links_keep_the_filters_encoded() {
        let g = given("source=cli&subject=a%26b+c&from=&before_seq=9");
        assert_eq!(g.query(), "source=cli&subject=a%26b%20c");
        assert!(before_seq(&Params::parse(Some("before_seq=0")).unwrap_or_default()).is_err());
        assert!(before_seq(&Params::parse(Some("before_seq=x")).unwrap_or_default()).is_err());
    }
}
