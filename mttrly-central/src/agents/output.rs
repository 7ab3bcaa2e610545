//! What a running action has printed so far, for the dashboard's action page ("execution with
//! streamed output").
//!
//! The agent streams an action's output in chunks (`TaskOutput`), already redacted; central keeps
//! them with the pending task until the result, and stores the whole output only then. While the
//! action runs, this table holds the tail of what arrived (at most [`MAX_TAIL`] bytes) for each
//! action that asked for it ([`LiveOutput::watch`]), and tells listeners which action printed
//! something. Notices are throttled per action ([`NOTICE_EVERY`]): a command printing thousands of
//! lines a second costs a page a few refreshes a second, and a chunk that arrived inside the
//! window is announced when the window closes ([`LiveOutput::flush`], run by a background tick),
//! so nothing printed stays unseen until the result. What a page shows is redacted again with the
//! core redactor on every read (a secret split across two chunks is whole in the tail).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mttrly_core::ids::{AccountId, ActionId};
use tokio::sync::broadcast;

/// The most of an action's output kept while it runs: the tail, as a terminal would show it.
pub const MAX_TAIL: usize = 64 * 1024;

/// At most one notice per action per this long.
pub const NOTICE_EVERY: Duration = Duration::from_millis(200);

/// A running action's output so far.
struct Entry {
    account: AccountId,
    tail: Vec<u8>,
    /// Whether earlier output was dropped to keep [`MAX_TAIL`].
    cut: bool,
    last_notice: Option<Instant>,
    /// Output arrived since the last notice.
    dirty: bool,
}

/// The output of running actions, by action.
pub struct LiveOutput {
    entries: Mutex<HashMap<ActionId, Entry>>,
    notices: broadcast::Sender<(AccountId, ActionId)>,
}

impl Default for LiveOutput {
    fn default() -> Self {
        Self { entries: Mutex::default(), notices: broadcast::channel(1024).0 }
    }
}

/// What a page shows of a running action's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The tail, redacted (lossy UTF-8).
    pub text: String,
    /// Whether earlier output was dropped.
    pub cut: bool,
}

/// Keeps an action's entry while its task runs; removes it when dropped.
pub struct Watching<'a> {
    output: &'a LiveOutput,
    action: ActionId,
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.output.lock().remove(&self.action);
    }
}

impl LiveOutput {
    fn lock(&self) -> MutexGuard<'_, HashMap<ActionId, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts keeping `action`'s output (of `account`) until the returned guard drops.
    pub fn watch(&self, account: &AccountId, action: &ActionId) -> Watching<'_> {
        self.lock().insert(
            action.clone(),
            Entry { account: account.clone(), tail: Vec::new(), cut: false, last_notice: None, dirty: false },
        );
        Watching { output: self, action: action.clone() }
    }

    /// Adds a chunk `action` printed (ignored for an action nobody watches).
    pub fn append(&self, action: &ActionId, chunk: &[u8]) {
        let notice = {
            let mut entries = self.lock();
            let Some(entry) = entries.get_mut(action) else { return };
            entry.tail.extend_from_slice(chunk);
            if entry.tail.len() > MAX_TAIL {
                let drop = entry.tail.len() - MAX_TAIL;
                entry.tail.drain(..drop);
                entry.cut = true;
            }
            let now = Instant::now();
            if entry.last_notice.is_none_or(|at| now.duration_since(at) >= NOTICE_EVERY) {
                entry.last_notice = Some(now);
                entry.dirty = false;
                Some(entry.account.clone())
            } else {
                entry.dirty = true;
                None
            }
        };
        if let Some(account) = notice {
            let _ = self.notices.send((account, action.clone()));
        }
    }

    /// Announces every action whose output arrived inside its last notice's window, once that
    /// window has closed.
    pub fn flush(&self) {
        let now = Instant::now();
        let due: Vec<(AccountId, ActionId)> = self
            .lock()
            .iter_mut()
            .filter(|(_, e)| e.dirty && e.last_notice.is_none_or(|at| now.duration_since(at) >= NOTICE_EVERY))
            .map(|(id, e)| {
                e.dirty = false;
                e.last_notice = Some(now);
                (e.account.clone(), id.clone())
            })
            .collect();
        for notice in due {
            let _ = self.notices.send(notice);
        }
    }

    /// `action`'s output so far, if it runs now and belongs to `account`.
    pub fn shown(&self, account: &AccountId, action: &ActionId) -> Option<Shown> {
        let (raw, cut) = {
            let entries = self.lock();
            let entry = entries.get(action).filter(|e| &e.account == account)?;
            (String::from_utf8_lossy(whole_lines(&entry.tail, entry.cut)).into_owned(), entry.cut)
        };
        Some(Shown { text: mttrly_core::redactor::redact(&raw).text.into_owned(), cut })
    }

    /// Which action (of which account) printed something: for live pages.
    pub fn subscribe(&self) -> broadcast::Receiver<(AccountId, ActionId)> {
        self.notices.subscribe()
    }
}

/// The tail from its first whole line on, once earlier output was dropped: the cut fell at an
/// arbitrary byte, and the piece of line before the first newline may be the end of a secret whose
/// start (`password=`, the key's name, the `-----BEGIN` line) is gone, which no redactor can then
/// recognise. A tail that is one single cut line shows nothing.
fn whole_lines(tail: &[u8], cut: bool) -> &[u8] {
    if !cut {
        return tail;
    }
    tail.iter().position(|&b| b == b'\n').map_or(&[], |i| &tail[i + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_watched_actions_keep_output_and_only_for_their_account() {
        let out = LiveOutput::default();
        let (account, other) = (AccountId::generate(), AccountId::generate());
        let action = ActionId::generate();
        out.append(&action, b"before anyone watched\n");
        let guard = out.watch(&account, &action);
        out.append(&action, b"one\n");
        out.append(&action, b"two\n");
        assert_eq!(out.shown(&account, &action), Some(Shown { text: "one\ntwo\n".into(), cut: false }));
        assert_eq!(out.shown(&other, &action), None, "another account sees nothing");
        drop(guard);
        assert_eq!(out.shown(&account, &action), None, "gone once the task ended");
    }

    #[test]
    fn the_tail_is_capped_and_a_secret_split_across_chunks_is_redacted() {
        let out = LiveOutput::default();
        let (account, action) = (AccountId::generate(), ActionId::generate());
        let _guard = out.watch(&account, &action);
        out.append(&action, b"token=ghp_0123456789abcdef");
        out.append(&action, b"ABCDEFGHIJ0123456789\n");
        let shown = out.shown(&account, &action).unwrap_or_else(|| panic!("watched"));
        assert!(!shown.text.contains("ghp_0123456789abcdefABCDEFGHIJ"), "{}", shown.text);
        out.append(&action, &vec![b'x'; MAX_TAIL + 10]);
        let shown = out.shown(&account, &action).unwrap_or_else(|| panic!("watched"));
        assert!(shown.cut && shown.text.len() <= MAX_TAIL, "{}", shown.text.len());
    }

    #[test]
    fn a_cut_tail_starts_at_a_whole_line() {
        let out = LiveOutput::default();
        let (account, action) = (AccountId::generate(), ActionId::generate());
        let _watching = out.watch(&account, &action);
        // The secret's name scrolls out; only the value's last bytes would remain mid-line.
        out.append(&action, b"export API_TOKEN=0123456789abcdef0123456789abcdef\n");
        out.append(&action, &vec![b'y'; MAX_TAIL - 20]);
        out.append(&action, b"\nlast line\n");
        let shown = out.shown(&account, &action).unwrap_or_else(|| panic!("watched"));
        assert!(shown.cut);
        assert!(shown.text.starts_with('y') && shown.text.ends_with("\nlast line\n"), "{:?}", &shown.text[..20]);
        assert!(!shown.text.contains("abcdef"), "a piece of the cut line is shown");
        let long = ActionId::generate();
        let _w = out.watch(&account, &long);
        out.append(&long, &vec![b'z'; MAX_TAIL + 5]);
        assert_eq!(out.shown(&account, &long).unwrap_or_else(|| panic!("watched")).text, "");
    }

    #[test]
    fn notices_are_throttled_and_a_chunk_inside_the_window_is_announced_when_it_closes() {
        let out = LiveOutput::default();
        let (account, action) = (AccountId::generate(), ActionId::generate());
        let mut heard = out.subscribe();
        let _guard = out.watch(&account, &action);
        out.append(&action, b"a");
        out.append(&action, b"b");
        out.append(&action, b"c");
        assert_eq!(heard.try_recv().ok(), Some((account.clone(), action.clone())));
        assert!(heard.try_recv().is_err(), "one notice inside the window");
        out.flush();
        assert!(heard.try_recv().is_err(), "the window has not closed yet");
        std::thread::sleep(NOTICE_EVERY);
        out.flush();
        assert_eq!(heard.try_recv().ok(), Some((account, action)), "announced once the window closed");
        out.flush();
        assert!(heard.try_recv().is_err(), "nothing new, nothing said");
    }
}
