//! Where the line around a byte starts and ends, in O(log n) on long texts.
//!
//! The key-aware readers look at the line around every credential word they meet (what precedes
//! the key, where the value may end). Found by scanning for `\n` each time, that is quadratic in
//! a long line full of credential words: a minified JSON answer of 8,000 records with a
//! `password`, a `token` and an `api_key` each (930 KB on one line) took 3.4 s, nearly all of it
//! in `memchr`/`memrchr`. So [`start`] and [`end`] look at most [`NEAR`] bytes around the
//! position, which answers for ordinary lines, and beyond that ask an index of the text's
//! newlines, built the first time a text inside [`indexed`] needs it and searched by bisection.
//!
//! The index lives in a thread-local stack for the duration of [`indexed`]'s closure and is
//! found by the text's address and length. That is sound: the text is borrowed for the whole
//! closure, so no other string can occupy those bytes meanwhile, and a slice of it (a different
//! length or address) is simply scanned as before. Short texts are not indexed: a scan of a few
//! kilobytes is cheaper than the index.

use std::cell::{OnceCell, RefCell};

/// Texts shorter than this are scanned, not indexed.
const INDEXED_FROM: usize = 16 * 1024;
/// How far around a position a line's end is looked for before the index is asked.
const NEAR: usize = 256;

struct Index {
    ptr: usize,
    len: usize,
    /// Byte offsets of every `\n`, ascending; built when first needed.
    breaks: OnceCell<Vec<usize>>,
}

thread_local! {
    static STACK: RefCell<Vec<Index>> = const { RefCell::new(Vec::new()) };
}

/// Pops the index pushed by [`indexed`], also when the closure unwinds.
struct Pop;

impl Drop for Pop {
    fn drop(&mut self) {
        STACK.with(|s| s.borrow_mut().pop());
    }
}

/// Runs `f` with the newlines of `text` indexed, so [`start`] and [`end`] on `text` are cheap.
pub(super) fn indexed<R>(text: &str, f: impl FnOnce() -> R) -> R {
    if text.len() < INDEXED_FROM {
        return f();
    }
    STACK.with(|s| {
        s.borrow_mut().push(Index { ptr: text.as_ptr() as usize, len: text.len(), breaks: OnceCell::new() });
    });
    let _pop = Pop;
    f()
}

/// The answer of `read` from the index of `text`, if it has one.
fn lookup<R>(text: &str, read: impl FnOnce(&[usize]) -> R) -> Option<R> {
    if text.len() < INDEXED_FROM {
        return None;
    }
    let (ptr, len) = (text.as_ptr() as usize, text.len());
    STACK.with(|s| {
        s.borrow()
            .iter()
            .rev()
            .find(|i| i.ptr == ptr && i.len == len)
            .map(|i| read(i.breaks.get_or_init(|| memchr::memchr_iter(b'\n', text.as_bytes()).collect())))
    })
}

/// The first byte of the line holding `at` (the byte after the last `\n` before `at`).
pub(super) fn start(text: &str, at: usize) -> usize {
    let b = text.as_bytes();
    let near = at.saturating_sub(NEAR);
    if let Some(i) = memchr::memrchr(b'\n', &b[near..at]) {
        return near + i + 1;
    }
    if near == 0 {
        return 0;
    }
    lookup(text, |breaks| {
        let before = breaks.partition_point(|&b| b < at);
        before.checked_sub(1).map_or(0, |i| breaks[i] + 1)
    })
    .unwrap_or_else(|| memchr::memrchr(b'\n', &b[..near]).map_or(0, |i| i + 1))
}

/// Where the line holding `at` ends: its `\n` at or after `at`, or the end of the text.
pub(super) fn end(text: &str, at: usize) -> usize {
    let b = text.as_bytes();
    let near = (at + NEAR).min(b.len());
    if let Some(i) = memchr::memchr(b'\n', &b[at..near]) {
        return at + i;
    }
    if near == b.len() {
        return b.len();
    }
    lookup(text, |breaks| breaks.get(breaks.partition_point(|&b| b < at)).copied().unwrap_or(text.len()))
        .unwrap_or_else(|| memchr::memchr(b'\n', &b[near..]).map_or(b.len(), |i| near + i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned_start(text: &str, at: usize) -> usize {
        text[..at].rfind('\n').map_or(0, |i| i + 1)
    }

    fn scanned_end(text: &str, at: usize) -> usize {
        text[at..].find('\n').map_or(text.len(), |i| at + i)
    }

    /// The index answers exactly what a scan answers, at every position of texts with newlines
    /// at the start, the end, in runs, far apart, and none at all.
    #[test]
    fn the_index_agrees_with_a_scan_everywhere() {
        let unit = "ab\n\ncd\nefgh";
        let texts = [
            format!("\n{}\n", unit.repeat(3000)),
            "x".repeat(INDEXED_FROM + 5),
            format!("{}\n", "y".repeat(INDEXED_FROM)),
            "\n".repeat(INDEXED_FROM + 1),
            // Lines longer than `NEAR`: answered from the index.
            format!("{}\n", "a".repeat(3 * NEAR)).repeat(INDEXED_FROM / NEAR),
        ];
        for text in &texts {
            let indexed_answers =
                indexed(text, || (0..=text.len()).map(|at| (start(text, at), end(text, at))).collect::<Vec<_>>());
            let scanned: Vec<_> = (0..=text.len()).map(|at| (scanned_start(text, at), scanned_end(text, at))).collect();
            assert_eq!(indexed_answers, scanned);
        }
    }

    /// A slice of an indexed text is not mistaken for it, and the index is gone after the scope,
    /// also when the closure panics.
    #[test]
    fn only_the_indexed_text_itself_uses_the_index() {
        let text = format!("{}\n{}", "a".repeat(INDEXED_FROM), "b".repeat(INDEXED_FROM));
        indexed(&text, || {
            let tail = &text[1..];
            assert!(lookup(tail, |_| ()).is_none());
            assert!(lookup(&text, |_| ()).is_some());
            assert_eq!(end(tail, 0), INDEXED_FROM - 1);
        });
        assert!(lookup(&text, |_| ()).is_none());
        let unwound = std::panic::catch_unwind(|| indexed(&text, || panic!("inside")));
        assert!(unwound.is_err());
        assert!(STACK.with(|s| s.borrow().is_empty()));
    }
}
