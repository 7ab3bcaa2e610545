//! Decisions that wait for a person to type their second-factor code, and which one a typed code
//! is for.
//!
//! A person may tap Approve on two requests before typing a code. The bot asks for each code with
//! its own prompt ("Reply to this message with your 6-digit code to approve act_…"), so a code
//! sent *as a reply* decides the request that prompt (or the approval message itself) names, and
//! nothing else: binding it to whichever tap came last would let a code typed under request A's
//! prompt approve request B, which the person never saw asked of them. A code that is not a reply
//! is taken only when exactly one decision waits; with several, the person is asked to reply to
//! the prompt of the one they mean.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::chat::Posted;
use crate::db::chat::Subject;

/// How long a request for a second-factor code waits for the code.
pub const CODE_WAIT: Duration = Duration::from_secs(120);

/// At most this many decisions wait for one person's code; a further tap drops the oldest.
const PER_PERSON: usize = 8;

/// A decision that waits for the person to type their code.
#[derive(Debug, Clone)]
pub(crate) struct AwaitingCode {
    /// The approval message tapped (the decision stays bound to it).
    pub(crate) posted: Posted,
    /// What is decided (an action, a bypass), for the replies.
    pub(crate) subject: Subject,
    /// The bot's prompt asking for this code, once sent (its message id in the private chat).
    prompt: Option<i64>,
    /// When the wait ends.
    until: Instant,
}

/// Why a typed code found no decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    /// Nothing of this person's waits for a code: the text is not treated as one.
    NothingWaits,
    /// A reply to a message that no longer waits for a code (decided, expired, or never asked).
    NotWaiting,
    /// Several decisions wait and the code is not a reply to any of them.
    Ambiguous,
}

/// By Telegram user id: the decisions waiting for that person's code, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Awaiting {
    by_user: HashMap<i64, Vec<AwaitingCode>>,
}

impl Awaiting {
    /// Drops every wait that has ended.
    fn expire(&mut self, now: Instant) {
        self.by_user.retain(|_, waits| {
            waits.retain(|w| w.until > now);
            !waits.is_empty()
        });
    }

    /// Remembers that `user`'s decision on `posted` waits for their code. A second tap on the same
    /// message restarts its wait (and forgets its old prompt: the new prompt is the one to reply to).
    pub(crate) fn insert(&mut self, user: i64, posted: Posted, subject: Subject, now: Instant) {
        self.expire(now);
        let waits = self.by_user.entry(user).or_default();
        waits.retain(|w| w.posted != posted);
        if waits.len() >= PER_PERSON {
            waits.remove(0);
        }
        waits.push(AwaitingCode { posted, subject, prompt: None, until: now + CODE_WAIT });
    }

    /// Records the prompt the bot sent for `user`'s decision on `posted`.
    pub(crate) fn prompted(&mut self, user: i64, posted: &Posted, prompt: i64) {
        if let Some(wait) = self.by_user.get_mut(&user).and_then(|w| w.iter_mut().find(|w| w.posted == *posted)) {
            wait.prompt = Some(prompt);
        }
    }

    /// Takes the decision a code from `user` is for: the one whose prompt or approval message
    /// `reply_to` names, or, for a code that is no reply, the only one waiting.
    pub(crate) fn take(&mut self, user: i64, reply_to: Option<i64>, now: Instant) -> Result<AwaitingCode, Miss> {
        self.expire(now);
        let Some(waits) = self.by_user.get_mut(&user) else { return Err(Miss::NothingWaits) };
        let index = match reply_to {
            Some(id) => waits
                .iter()
                .position(|w| w.prompt == Some(id) || w.posted.message_id == id.to_string())
                .ok_or(Miss::NotWaiting)?,
            None if waits.len() == 1 => 0,
            None => return Err(Miss::Ambiguous),
        };
        let taken = waits.remove(index);
        if waits.is_empty() {
            self.by_user.remove(&user);
        }
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use mttrly_core::ids::ActionId;

    use super::*;

    fn posted(id: i64) -> Posted {
        Posted { chat_id: "42".into(), message_id: id.to_string() }
    }

    fn action() -> Subject {
        Subject::Action(ActionId::generate())
    }

    #[test]
    fn a_reply_decides_the_request_its_prompt_names_and_no_other() {
        let (mut a, now) = (Awaiting::default(), Instant::now());
        let (first, second) = (action(), action());
        a.insert(1, posted(10), first.clone(), now);
        a.prompted(1, &posted(10), 11);
        a.insert(1, posted(20), second.clone(), now);
        a.prompted(1, &posted(20), 21);
        // A code under the first prompt is the first request's, though the second was tapped last.
        assert_eq!(a.take(1, Some(11), now).map(|w| w.subject), Ok(first));
        assert_eq!(a.take(1, Some(11), now).map(|w| w.subject), Err(Miss::NotWaiting), "spent");
        // A reply to the approval message itself names it too; then nothing waits.
        assert_eq!(a.take(1, Some(20), now).map(|w| w.subject), Ok(second));
        assert_eq!(a.take(1, None, now).map(|w| w.subject), Err(Miss::NothingWaits));
    }

    #[test]
    fn a_code_that_is_no_reply_is_taken_only_when_one_decision_waits() {
        let (mut a, now) = (Awaiting::default(), Instant::now());
        let only = action();
        a.insert(1, posted(10), only.clone(), now);
        assert_eq!(a.take(1, None, now).map(|w| w.subject), Ok(only));
        a.insert(1, posted(10), action(), now);
        a.insert(1, posted(20), action(), now);
        assert_eq!(a.take(1, None, now).map(|w| w.subject), Err(Miss::Ambiguous));
        assert_eq!(a.take(1, Some(99), now).map(|w| w.subject), Err(Miss::NotWaiting));
        // Another person's waits are not theirs.
        assert_eq!(a.take(2, Some(10), now).map(|w| w.subject), Err(Miss::NothingWaits));
    }

    #[test]
    fn a_tap_again_restarts_its_wait_with_a_new_prompt_and_waits_end() {
        let (mut a, now) = (Awaiting::default(), Instant::now());
        let subject = action();
        a.insert(1, posted(10), subject.clone(), now);
        a.prompted(1, &posted(10), 11);
        a.insert(1, posted(10), subject.clone(), now);
        a.prompted(1, &posted(10), 12);
        assert_eq!(a.take(1, Some(11), now).map(|w| w.subject), Err(Miss::NotWaiting), "the old prompt");
        assert_eq!(a.take(1, Some(12), now).map(|w| w.subject), Ok(subject));
        a.insert(1, posted(10), action(), now);
        assert_eq!(a.take(1, None, now + CODE_WAIT).map(|w| w.subject), Err(Miss::NothingWaits), "expired");
    }

    #[test]
    fn one_person_holds_a_bounded_number_of_waits() {
        let (mut a, now) = (Awaiting::default(), Instant::now());
        for id in 0..20 {
            a.insert(1, posted(id), action(), now);
        }
        assert_eq!(a.by_user[&1].len(), PER_PERSON);
        assert_eq!(a.take(1, Some(0), now).map(|w| w.subject), Err(Miss::NotWaiting), "the oldest went");
        assert!(a.take(1, Some(19), now).is_ok());
    }
}
