//! Redaction of output that arrives in chunks (command output, streamed logs).
//!
//! A secret can straddle two chunks: a key's BEGIN line in one, its body in the next. Each chunk
//! is therefore redacted with the raw lines just before it as context, and only the chunk's own
//! part of the result is returned. Replacements never span a newline, so the chunk's lines are
//! exactly the last lines of the result.

use std::borrow::Cow;

use super::echoes::{self, Known};
use super::{Redacted, RuleHits, analyse_with, replace};

/// Lines of context kept from earlier chunks (a private key is well under this).
const CONTEXT_LINES: usize = 128;
/// Bytes of context kept, at most.
const CONTEXT_BYTES: usize = 32 * 1024;
/// Secret values remembered from earlier chunks, at most (the most recent ones).
const KNOWN_VALUES: usize = 64;

/// Redacts a stream chunk by chunk, each with the lines before it as context.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    context: String,
    /// Distinctive values found so far, redacted wherever a later chunk prints them again (a
    /// command that echoes a token long after the line that set it has left the context).
    known: Vec<Known>,
}

impl StreamRedactor {
    /// A redactor with no context yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Redacts the next chunk (best made of complete lines) and remembers it as context.
    pub fn redact_chunk(&mut self, chunk: &str) -> Redacted<'static> {
        let ctx_len = self.context.len();
        let mut joined = std::mem::take(&mut self.context);
        joined.push_str(chunk);
        let found = analyse_with(&joined, &self.known);
        for k in echoes::values(&joined, &found) {
            self.known.retain(|e| e.value != k.value);
            self.known.push(k);
        }
        if self.known.len() > KNOWN_VALUES {
            self.known.drain(..self.known.len() - KNOWN_VALUES);
        }
        let mut out = String::with_capacity(chunk.len());
        let mut last = ctx_len;
        let mut hits: Vec<(u16, RuleHits)> = Vec::new();
        for f in found.iter().filter(|f| f.end > ctx_len) {
            let start = f.start.max(ctx_len);
            out.push_str(&joined[last..start]);
            replace(&joined[start..f.end], f.rule, &mut out);
            last = f.end;
            match hits.iter_mut().find(|h| h.1.rule == f.rule) {
                Some(h) => h.1.count += 1,
                None => hits.push((f.rank, RuleHits { rule: f.rule, count: 1 })),
            }
        }
        out.push_str(&joined[last..]);
        hits.sort_by_key(|h| h.0);
        self.context = tail_lines(&joined);
        Redacted { text: Cow::Owned(out), hits: hits.into_iter().map(|h| h.1).collect() }
    }
}

/// The last complete lines of `text`, within the context limits.
fn tail_lines(text: &str) -> String {
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    let text = &text[..complete];
    let mut start = text.len();
    for _ in 0..CONTEXT_LINES {
        match text[..start.saturating_sub(1)].rfind('\n') {
            Some(i) if text.len() - (i + 1) <= CONTEXT_BYTES => start = i + 1,
            Some(_) => break,
            None => {
                if text.len() <= CONTEXT_BYTES {
                    start = 0;
                }
                break;
            }
        }
    }
    text[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_split_across_chunks_is_redacted_in_both() {
        let body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\nLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo\n";
        let mut s = StreamRedactor::new();
        let first = s.redact_chunk("starting\n-----BEGIN RSA PRIVATE KEY-----\n");
        assert_eq!(first.text, "starting\n-----BEGIN RSA PRIVATE KEY-----\n");
        let second = s.redact_chunk(&format!("{body}9xRkDy7bqg==\n-----END RSA PRIVATE KEY-----\ndone\n"));
        assert!(!second.text.contains("MIIEow") && !second.text.contains("9xRkDy7bqg"), "{}", second.text);
        assert!(second.text.ends_with("-----END RSA PRIVATE KEY-----\ndone\n"), "{}", second.text);
        assert_eq!(second.text.lines().count(), 6);
        assert_eq!(second.hits[0].rule, "private_key");
        let third = s.redact_chunk("plain line\n");
        assert_eq!(third.text, "plain line\n");
        assert!(third.hits.is_empty());
    }

    #[test]
    fn a_value_found_once_is_redacted_in_every_later_chunk() {
        let mut s = StreamRedactor::new();
        let first = s.redact_chunk("export API_TOKEN=Zq8vN3xR7kP2mW9tY4bL\n");
        assert_eq!(first.text, "export API_TOKEN=[REDACTED:secret_assignment]\n");
        for i in 0..300 {
            s.redact_chunk(&format!("line {i}\n"));
        }
        let later = s.redact_chunk("+ curl -s https://api.example.com/v1?x=Zq8vN3xR7kP2mW9tY4bL\n");
        assert_eq!(later.text, "+ curl -s https://api.example.com/v1?x=[REDACTED:secret_assignment]\n");
        assert_eq!(later.hits, vec![RuleHits { rule: "secret_assignment", count: 1 }]);
    }

    #[test]
    fn context_stays_bounded() {
        let mut s = StreamRedactor::new();
        for i in 0..1000 {
            s.redact_chunk(&format!("line {i} {} token=Fq7{i}zK9wLm2\n", "x".repeat(100)));
        }
        assert!(s.context.len() <= CONTEXT_BYTES && s.context.lines().count() <= CONTEXT_LINES);
        assert_eq!(s.known.len(), KNOWN_VALUES);
        assert_eq!(s.known.last().map(|k| k.value.as_str()), Some("Fq7999zK9wLm2"));
    }
}
