//! Proactive events on central: what the agents' detectors raise, stored with the false-positive
//! budget applied, judged by people (an assistant only suggests), and digested into the brief.
//!
//! One job per module: [`ingest`] turns a sender's event into a stored, audited row; [`budget`]
//! holds the muting rules; [`brief`] orders a brief; [`near_miss`] watches heartbeats for values
//! held just under an alert rule's threshold; [`flood`] bounds what one agent may report. The
//! tools are in `crate::tools::proactive`.

pub mod brief;
pub mod budget;
pub mod flood;
pub mod ingest;
pub mod near_miss;

/// How far back a brief without a `since` looks.
pub const FIRST_BRIEF_WINDOW_MS: i64 = 24 * 3_600_000;
