//! The last lines of a file, read from the end: the cost depends on the lines asked for, not on
//! the file's size. A log keeps changing while it is read: growth after the size was taken is
//! simply not part of this tail, and a file truncated under the reader (`copytruncate` rotation)
//! is read again from its new end.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};

use crate::error::{ErrorCode, MttrlyError};

/// The most bytes read from the end of a file, whatever the line count (a file of one huge line,
/// or a sparse file of zeros, cannot make a read expensive).
pub const MAX_TAIL_BYTES: u64 = 4 * 1024 * 1024;
/// The longest line returned; longer lines are cut and marked.
pub const MAX_LINE_CHARS: usize = 4096;
const CHUNK: u64 = 64 * 1024;

/// The tail of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// The lines, oldest first, without their newline (invalid UTF-8 replaced).
    pub lines: Vec<String>,
    /// Whether there was more before them, or a line was cut, or the byte cap was hit.
    pub truncated: bool,
    /// The file's size in bytes.
    pub size_bytes: u64,
}

/// How many times a file that shrinks while it is read is read again from its new end.
const SHRINK_RETRIES: usize = 3;

fn io(e: &std::io::Error) -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, format!("cannot read the file: {e}"))
}

/// Reads the last `n` lines of `file` (of size `size`).
pub fn tail(file: &mut File, size: u64, n: usize) -> Result<Tail, MttrlyError> {
    let mut size = size;
    for _ in 0..SHRINK_RETRIES {
        match tail_once(file, size, n) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                size = file.metadata().map_err(|e| io(&e))?.len();
            }
            other => return other.map_err(|e| io(&e)),
        }
    }
    Err(MttrlyError::new(ErrorCode::InternalError, "the file kept shrinking while it was read; try again"))
}

fn tail_once(file: &mut File, size: u64, n: usize) -> std::io::Result<Tail> {
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = size;
    let mut newlines = 0usize;
    let budget = size.min(MAX_TAIL_BYTES);
    // Read backwards until n+1 newlines are in the buffer (the extra one bounds the first line).
    while pos > 0 && newlines <= n && (size - pos) < budget {
        let step = CHUNK.min(pos).min(budget - (size - pos));
        pos -= step;
        file.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0u8; usize::try_from(step).unwrap_or(0)];
        file.read_exact(&mut chunk)?;
        // The file's final newline does not start a new line.
        let skip_final = usize::from(pos + step == size && chunk.last() == Some(&b'\n'));
        #[allow(clippy::naive_bytecount)] // 64 KiB chunks; the compiler vectorises this
        let found = chunk[..chunk.len() - skip_final].iter().filter(|b| **b == b'\n').count();
        newlines += found;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    let mut truncated = pos > 0;
    let mut all: Vec<&[u8]> = if buf.is_empty() { Vec::new() } else { buf.split(|b| *b == b'\n').collect() };
    // Not at the start of the file: the first piece may be the end of a longer line. Drop it,
    // unless it is all there is (one line longer than the byte budget).
    if pos > 0 && all.len() > 1 {
        all.remove(0);
    }
    if all.len() > n {
        truncated = true;
        all.drain(..all.len() - n);
    }
    let lines = all
        .into_iter()
        .map(|l| {
            let text = String::from_utf8_lossy(l);
            if text.chars().count() > MAX_LINE_CHARS {
                truncated = true;
                let mut cut: String = text.chars().take(MAX_LINE_CHARS).collect();
                cut.push_str(" …[line cut]");
                cut
            } else {
                text.into_owned()
            }
        })
        .collect();
    Ok(Tail { lines, truncated, size_bytes: size })
}
