//! The incident thread a retrospective is written from: its window and the servers it covers.
//!
//! The window runs from the thread's first notification to its resolution (`incident-resolved`
//! as the war room's rules read the whole thread), or to now while it is not resolved.
//!
//! The servers are those the thread's notifications name ([`named_servers`]), in the order they
//! are first named: those of its posts up to the window's end, so a post after the resolution
//! cannot change a closed window's document; only when those name none, the later posts' (a
//! thread's server was once whichever server its notifications named first, wherever). Which of
//! them are covered is [`select`]'s rule, pure:
//! - without `server_id`, every one that is a live server of the caller's account, up to
//!   [`MAX_RETROSPECTIVE_SERVERS`], the first named first;
//! - with `server_id`, that one only, and it must be one the thread names (else
//!   `VALIDATION_ERROR` listing the servers it names); a thread naming none takes any server of
//!   the account, as it always did.
//!
//! Every named server not covered is reported with its reason (`LeftOutReason`). A named id that
//! is not a live server of the account (decommissioned, or another account's id carried by a
//! notification) is never looked up beyond the account: none of its records are read, its name
//! is not known, and it reads the same whichever it is. A thread all of whose servers are such
//! ids is refused as an unknown server is (`SERVER_NOT_FOUND`).

use std::collections::HashMap;

use mttrly_core::ids::ServerId;
use mttrly_core::tools::notify::{Notification, ThreadId};
use mttrly_core::tools::timeline::{
    GenerateRetrospectiveInput, LeftOutReason, LeftOutServer, MAX_RETROSPECTIVE_SERVERS,
};
use mttrly_core::{ErrorCode, MttrlyError};

use super::timeline::{LEAD_MS, Scope, ThreadPart, Window};
use crate::db::accounts::TokenOwner;
use crate::db::servers::ServerRow;
use crate::db::timestamp;
use crate::retrospective::LEFT_OUT_SHOWN;
use crate::state::Central;
use crate::warroom::{THREAD_LIMIT, incidents};

/// The distinct servers `rows` (oldest first) name, in the order they are first named.
fn named_servers<'a>(rows: impl IntoIterator<Item = &'a Notification>) -> Vec<ServerId> {
    let mut named: Vec<ServerId> = Vec::new();
    for id in rows.into_iter().filter_map(|n| n.server_id.as_ref()) {
        if !named.contains(id) {
            named.push(id.clone());
        }
    }
    named
}

/// Which of a thread's servers a retrospective covers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selection {
    /// Covered, in the thread's order; never empty.
    covered: Vec<ServerId>,
    /// Named but not covered, in the thread's order.
    left_out: Vec<(ServerId, LeftOutReason)>,
}

impl Selection {
    /// Whether `server_id` chose one of several: that document is another than the whole
    /// thread's, and is stored as its own entry.
    fn narrowed(&self) -> bool {
        self.left_out.iter().any(|(_, reason)| *reason == LeftOutReason::NotChosen)
    }
}

/// `ids` for a message: the first [`LEFT_OUT_SHOWN`], then how many more.
fn listed(ids: &[ServerId]) -> String {
    let mut text = ids.iter().take(LEFT_OUT_SHOWN).map(ServerId::as_str).collect::<Vec<_>>().join(", ");
    let rest = ids.len().saturating_sub(LEFT_OUT_SHOWN);
    if rest > 0 {
        text.push_str(&format!(" and {rest} more"));
    }
    text
}

/// The covered servers of thread `thread`, which names `named` (in order), of which `visible`
/// says which are live servers of the caller's account; `given` is the call's `server_id`. See
/// the module's doc.
fn select(
    thread: &ThreadId,
    named: &[ServerId],
    visible: impl Fn(&ServerId) -> bool,
    given: Option<&ServerId>,
) -> Result<Selection, MttrlyError> {
    let reason_of = |id: &ServerId, otherwise: LeftOutReason| {
        if visible(id) { otherwise } else { LeftOutReason::NotFound }
    };
    match (named.first(), given) {
        (None, None) => Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!(
                "server_id: thread `{thread}` names no server (none of its notifications carries a server_id); pass \
                 server_id to say which server's records the retrospective covers"
            ),
        )
        .with_detail("field", "server_id")
        .with_detail("thread_id", thread.as_str())),
        (None, Some(given)) if visible(given) => Ok(Selection { covered: vec![given.clone()], left_out: Vec::new() }),
        (None, Some(given)) => Err(crate::servers::not_found(given)),
        (Some(first), Some(given)) if !named.contains(given) => {
            let several = named.len() > 1;
            let s = if several { "s" } else { "" };
            Err(MttrlyError::new(
                ErrorCode::ValidationError,
                format!(
                    "server_id: thread `{thread}` is about server{s} {} (the server{s} its notifications name), not \
                     {given}; leave server_id out{}, or pass {}",
                    listed(named),
                    if several { " to cover them all" } else { "" },
                    if several { "one of them".to_owned() } else { first.to_string() }
                ),
            )
            .with_detail("field", "server_id")
            .with_detail("thread_id", thread.as_str())
            .with_detail("thread_server_id", first.as_str())
            .with_detail(
                "thread_server_ids",
                named.iter().take(LEFT_OUT_SHOWN).map(|id| id.as_str().to_owned()).collect::<Vec<_>>(),
            ))
        }
        (Some(_), Some(given)) if !visible(given) => Err(crate::servers::not_found(given)),
        (Some(_), Some(given)) => Ok(Selection {
            covered: vec![given.clone()],
            left_out: named
                .iter()
                .filter(|id| *id != given)
                .map(|id| (id.clone(), reason_of(id, LeftOutReason::NotChosen)))
                .collect(),
        }),
        (Some(first), None) => {
            let mut selection = Selection { covered: Vec::new(), left_out: Vec::new() };
            for id in named {
                if !visible(id) {
                    selection.left_out.push((id.clone(), LeftOutReason::NotFound));
                } else if selection.covered.len() < MAX_RETROSPECTIVE_SERVERS {
                    selection.covered.push(id.clone());
                } else {
                    selection.left_out.push((id.clone(), LeftOutReason::OverLimit));
                }
            }
            if selection.covered.is_empty() {
                // As when a thread's one server was looked up and not found.
                return Err(crate::servers::not_found(first));
            }
            Ok(selection)
        }
    }
}

/// The window of an incident thread and the servers it covers (see the module's doc).
pub(super) async fn thread_window(
    central: &Central,
    caller: &TokenOwner,
    input: &GenerateRetrospectiveInput,
    thread: &ThreadId,
    now: i64,
) -> Result<Scope, MttrlyError> {
    if let Some(investigation) = &input.investigation_id {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!(
                "investigation_id: give thread_id or investigation_id, not both (a retrospective covers one incident \
                 window); got {investigation} with thread `{thread}`"
            ),
        )
        .with_detail("field", "investigation_id"));
    }
    let not_found = || {
        MttrlyError::new(ErrorCode::NotFound, format!("no thread `{thread}` in this account"))
            .with_detail("thread_id", thread.as_str())
    };
    let floor = crate::timeline::retention_floor(caller, now);
    let mut rows =
        central.db.account(&caller.account_id).warroom().thread(thread.as_str(), floor, THREAD_LIMIT).await?;
    let truncated = rows.len() > THREAD_LIMIT as usize;
    rows.truncate(THREAD_LIMIT as usize);
    let first = rows.first().map(|n| n.published_at.as_millisecond()).ok_or_else(not_found)?;
    // The whole thread says where the incident ends (a report after a resolution reopens it);
    // the retrospective reads the thread up to there, so posts after a resolution (a postmortem
    // note, chatter) leave a closed window's bytes as they were.
    let whole = incidents::summary(&rows, truncated, timestamp(now)).ok_or_else(not_found)?;
    let resolved = whole.moments.resolved_at.map(jiff::Timestamp::as_millisecond);
    let end = resolved.unwrap_or(now).min(now).max(first);
    let within = |n: &&Notification| n.published_at.as_millisecond() <= end;
    let mut named = named_servers(rows.iter().filter(within));
    if named.is_empty() {
        named = named_servers(&rows);
    }

    // One read for every id the thread names (and the one asked for): the account's live ones.
    let mut wanted = named.clone();
    if let Some(given) = input.server_id.as_ref().filter(|given| !named.contains(given)) {
        wanted.push(given.clone());
    }
    let found = central.db.account(&caller.account_id).servers().get_many(wanted).await?;
    let mut found: HashMap<ServerId, ServerRow> = found.into_iter().map(|s| (s.id.clone(), s)).collect();
    let selection = select(thread, &named, |id| found.contains_key(id), input.server_id.as_ref())?;
    let narrowed = selection.narrowed();
    let left_out = selection
        .left_out
        .into_iter()
        .map(|(server_id, reason)| LeftOutServer {
            server_name: found.get(&server_id).map(|s| s.name.clone()),
            server_id,
            reason,
        })
        .collect();
    let mut covered = selection.covered.iter().filter_map(|id| found.remove(id));
    let (Some(first_server), others) = (covered.next(), covered.collect::<Vec<_>>()) else {
        // `select` covers only servers it was told are found: one went missing in between.
        tracing::warn!(thread = %thread, "a covered server of a thread retrospective was not found");
        return Err(selection.covered.first().map_or_else(not_found, crate::servers::not_found));
    };

    let posts: Vec<Notification> = rows.into_iter().filter(|n| n.published_at.as_millisecond() <= end).collect();
    let summary = incidents::summary(&posts, truncated, timestamp(end)).ok_or_else(not_found)?;
    let window = Window {
        from_ms: first.saturating_sub(LEAD_MS),
        to_ms: end,
        reference: format!("thread:{thread}"),
        open: resolved.is_none(),
        symptoms: summary.title.clone(),
        assistant_words: None,
        thread: Some(ThreadPart { summary, posts }),
    };
    Ok(Scope { first: first_server, others, left_out, narrowed, window })
}

#[cfg(test)]
mod tests {
    use mttrly_core::Source;
    use mttrly_core::ids::NotificationId;
    use mttrly_core::tools::notify::{Priority, Sender};

    use super::*;

    fn note(server: Option<&ServerId>) -> Notification {
        Notification {
            notification_id: NotificationId::generate(),
            channel: "incidents".into(),
            thread_id: "t".into(),
            in_reply_to: None,
            title: "t".into(),
            body: String::new(),
            priority: Priority::High,
            theme: None,
            tags: Vec::new(),
            server_id: server.cloned(),
            sender: Sender::central(Source::Api),
            redactions: 0,
            published_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn thread() -> ThreadId {
        ThreadId::new("incident-1").unwrap_or_else(|e| panic!("{e}"))
    }

    fn ids(n: usize) -> Vec<ServerId> {
        (0..n).map(|_| ServerId::generate()).collect()
    }

    #[test]
    fn a_threads_servers_are_those_it_names_in_the_order_first_named() {
        let [a, b, c] = <[ServerId; 3]>::try_from(ids(3)).unwrap_or_else(|_| panic!("three ids"));
        let rows = vec![note(None), note(Some(&b)), note(Some(&a)), note(Some(&b)), note(None), note(Some(&c))];
        assert_eq!(named_servers(&rows), vec![b, a, c]);
        assert_eq!(named_servers(&[note(None)]), Vec::<ServerId>::new());
    }

    #[test]
    fn without_server_id_every_visible_server_is_covered_and_the_others_are_listed() {
        let named = ids(4);
        let foreign = named[1].clone();
        let all = select(&thread(), &named, |id| *id != foreign, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all.covered, vec![named[0].clone(), named[2].clone(), named[3].clone()]);
        assert_eq!(all.left_out, vec![(foreign.clone(), LeftOutReason::NotFound)]);
        assert!(!all.narrowed());

        // One server named: exactly it, nothing left out (the one-server document of before).
        let one = select(&thread(), &named[..1], |_| true, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one, Selection { covered: vec![named[0].clone()], left_out: Vec::new() });

        // The first named is not the account's: the next one is covered, the first listed.
        let second = select(&thread(), &named[1..3], |id| *id != foreign, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(second.covered, vec![named[2].clone()]);
        assert_eq!(second.left_out, vec![(foreign.clone(), LeftOutReason::NotFound)]);

        // None of them is: refused as an unknown server, naming the first.
        let none = select(&thread(), &named[1..2], |_| false, None).err().map(|e| (e.code(), e.to_string()));
        let (code, message) = none.unwrap_or_else(|| panic!("no server to cover is refused"));
        assert_eq!(code, ErrorCode::ServerNotFound);
        assert!(message.contains(foreign.as_str()), "{message}");
    }

    #[test]
    fn the_servers_covered_are_bounded_and_the_rest_are_listed_as_over_the_limit() {
        let named = ids(MAX_RETROSPECTIVE_SERVERS + 3);
        let gone = named[2].clone();
        let selection = select(&thread(), &named, |id| *id != gone, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(selection.covered.len(), MAX_RETROSPECTIVE_SERVERS);
        let expected: Vec<ServerId> =
            named.iter().filter(|id| **id != gone).take(MAX_RETROSPECTIVE_SERVERS).cloned().collect();
        assert_eq!(selection.covered, expected, "the first named, in order");
        let over: Vec<&ServerId> = named.iter().filter(|id| **id != gone).skip(MAX_RETROSPECTIVE_SERVERS).collect();
        assert_eq!(over.len(), 2);
        let mut expected_left: Vec<(ServerId, LeftOutReason)> = vec![(gone.clone(), LeftOutReason::NotFound)];
        expected_left.extend(over.into_iter().map(|id| (id.clone(), LeftOutReason::OverLimit)));
        assert_eq!(selection.left_out, expected_left);
        // Every named server is either covered or listed: nothing dropped.
        assert_eq!(selection.covered.len() + selection.left_out.len(), named.len());
    }

    #[test]
    fn server_id_narrows_to_one_of_the_threads_servers_or_is_refused() {
        let named = ids(3);
        let foreign = named[2].clone();
        let visible = |id: &ServerId| *id != foreign;
        let narrowed = select(&thread(), &named, visible, Some(&named[1])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(narrowed.covered, vec![named[1].clone()]);
        assert_eq!(
            narrowed.left_out,
            vec![(named[0].clone(), LeftOutReason::NotChosen), (foreign.clone(), LeftOutReason::NotFound)]
        );
        assert!(narrowed.narrowed());

        // A server the thread does not name: refused, listing the servers it names.
        let other = ServerId::generate();
        let refused = select(&thread(), &named, visible, Some(&other)).err();
        let refused = refused.unwrap_or_else(|| panic!("a server the thread does not name is refused"));
        assert_eq!(refused.code(), ErrorCode::ValidationError);
        let message = refused.to_string();
        assert!(message.contains("is about servers") && message.contains(other.as_str()), "{message}");
        assert!(named.iter().all(|id| message.contains(id.as_str())), "{message}");
        assert!(message.contains("leave server_id out to cover them all"), "{message}");
        let details = refused.details();
        assert_eq!(details["field"], "server_id", "{details}");
        assert_eq!(details["thread_server_id"], named[0].as_str());
        assert_eq!(details["thread_server_ids"].as_array().map(Vec::len), Some(3));

        // One server named: the message of before.
        let one = select(&thread(), &named[..1], visible, Some(&other)).err().map(|e| e.to_string());
        let one = one.unwrap_or_else(|| panic!("refused"));
        assert!(one.contains(&format!("is about server {} (the server its", named[0])), "{one}");
        assert!(one.contains(&format!("or pass {}", named[0])), "{one}");

        // The one asked for is named but not the account's: unknown, like any other server id.
        let hidden = select(&thread(), &named, visible, Some(&foreign)).err().map(|e| e.code());
        assert_eq!(hidden, Some(ErrorCode::ServerNotFound));

        // Named alone, asked for: the one-server document, nothing left out, not narrowed.
        let alone = select(&thread(), &named[..1], visible, Some(&named[0])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(alone, Selection { covered: vec![named[0].clone()], left_out: Vec::new() });
        assert!(!alone.narrowed());
    }

    #[test]
    fn a_thread_naming_no_server_needs_server_id() {
        let given = ServerId::generate();
        let chosen = select(&thread(), &[], |_| true, Some(&given)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(chosen, Selection { covered: vec![given.clone()], left_out: Vec::new() });
        let unknown = select(&thread(), &[], |_| false, Some(&given)).err().map(|e| e.code());
        assert_eq!(unknown, Some(ErrorCode::ServerNotFound));
        let none = select(&thread(), &[], |_| true, None).err().map(|e| (e.code(), e.to_string()));
        let (code, message) = none.unwrap_or_else(|| panic!("refused"));
        assert_eq!(code, ErrorCode::ValidationError);
        assert!(message.contains("names no server"), "{message}");
    }

    #[test]
    fn a_long_list_of_servers_is_cut_in_a_message() {
        let named = ids(LEFT_OUT_SHOWN + 5);
        let text = listed(&named);
        assert!(text.ends_with(" and 5 more"), "{text}");
        assert!(!text.contains(named[LEFT_OUT_SHOWN].as_str()));
    }
}
