//! The false-positive budget of one (detector, server, metric): when a detector has cried wolf
//! often enough, it is muted for a while, and each mute lasts twice as long as the one before.
//!
//! Pure: the store loads a [`Budget`], applies a verdict or an event to it, and writes it back in
//! the same transaction as the event's row.
//!
//! The rules (research §5): three false positives in a row, or a false-positive rate above 50 %
//! over five or more recent verdicts, mute the key for 1 day, then 2, 4, … at most 30 days. A mute
//! lifts by itself when its time is up. An accepted event resets the run and lifts a running mute
//! (a detector that just caught something real should be heard). Nothing here drops an event:
//! muted events are stored with their state and counted.
//!
//! The rate is over a sliding window — the last [`RATE_WINDOW`] verdicts of the last
//! [`RATE_WINDOW_MS`] — never lifetime totals, and a mute spends the evidence that imposed it (the
//! run and the window start empty). Otherwise a detector muted once for its old mistakes would be
//! muted again by its first false positive after the mute lifts, however good it had become.
//! Only people's verdicts reach a budget (an assistant's acknowledgement is a suggestion).

/// False positives in a row that mute a key.
pub const RUN_LIMIT: u32 = 3;

/// Acknowledgements needed before the rate rule applies.
pub const RATE_MIN_ACKS: u32 = 5;

/// The first mute.
pub const FIRST_MUTE_MS: i64 = 24 * 3_600_000;

/// The longest mute.
pub const MAX_MUTE_MS: i64 = 30 * FIRST_MUTE_MS;

/// Most recent verdicts the rate rule reads.
pub const RATE_WINDOW: usize = 10;

/// How far back the rate rule reads verdicts.
pub const RATE_WINDOW_MS: i64 = 7 * FIRST_MUTE_MS;

/// One verdict in the rate window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// When it was given (ms).
    pub at: i64,
    /// Whether it said "false positive".
    pub false_positive: bool,
}

/// The budget's state, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    /// False positives since the last accepted event or mute.
    pub fp_run: u32,
    /// False positives ever acknowledged (for readers; the rules use `recent`).
    pub fp_total: u32,
    /// Acknowledgements ever, either verdict (for readers; the rules use `recent`).
    pub acked_total: u32,
    /// The rate rule's window: recent verdicts since the last mute, oldest first.
    pub recent: Vec<Verdict>,
    /// Mutes imposed so far (the next one lasts `FIRST_MUTE_MS << mutes`).
    pub mutes: u32,
    /// Until when the key is muted (ms), if it was ever muted.
    pub muted_until: Option<i64>,
    /// Why it was muted.
    pub mute_reason: Option<String>,
    /// Events stored while muted.
    pub muted_events: u32,
}

/// How long the mute after `mutes_before` earlier ones lasts.
pub fn mute_length(mutes_before: u32) -> i64 {
    FIRST_MUTE_MS.checked_shl(mutes_before).filter(|ms| *ms > 0).map_or(MAX_MUTE_MS, |ms| ms.min(MAX_MUTE_MS))
}

/// `recent` as stored: `at:f` / `at:a` pairs joined with `,`.
pub fn encode_recent(recent: &[Verdict]) -> String {
    recent
        .iter()
        .map(|v| format!("{}:{}", v.at, if v.false_positive { 'f' } else { 'a' }))
        .collect::<Vec<_>>()
        .join(",")
}

/// `recent` read back; a pair that does not parse is skipped (the window only ever forgets).
pub fn decode_recent(stored: &str) -> Vec<Verdict> {
    stored
        .split(',')
        .filter_map(|pair| {
            let (at, kind) = pair.split_once(':')?;
            let false_positive = match kind {
                "f" => true,
                "a" => false,
                _ => return None,
            };
            Some(Verdict { at: at.parse().ok()?, false_positive })
        })
        .collect()
}

impl Budget {
    /// Adds a verdict given at `now` to the window and lets older ones slide out.
    fn remember(&mut self, now: i64, false_positive: bool) {
        self.recent.push(Verdict { at: now, false_positive });
        let horizon = now.saturating_sub(RATE_WINDOW_MS);
        self.recent.retain(|v| v.at > horizon);
        let excess = self.recent.len().saturating_sub(RATE_WINDOW);
        self.recent.drain(..excess);
    }

    /// Whether the key is muted at `now`.
    pub fn is_muted(&self, now: i64) -> bool {
        self.muted_until.is_some_and(|until| until > now)
    }

    /// False positives in a row the key may still take before the run rule mutes it.
    pub fn remaining(&self) -> u32 {
        RUN_LIMIT.saturating_sub(self.fp_run)
    }

    /// Counts an event raised at `now`; returns whether it is muted.
    pub fn on_event(&mut self, now: i64) -> bool {
        let muted = self.is_muted(now);
        if muted {
            self.muted_events = self.muted_events.saturating_add(1);
        }
        muted
    }

    /// Counts an accepted acknowledgement at `now`.
    pub fn on_accepted(&mut self, now: i64) {
        self.acked_total = self.acked_total.saturating_add(1);
        self.remember(now, false);
        self.fp_run = 0;
        if self.is_muted(now) {
            self.muted_until = Some(now);
            self.mute_reason = Some("lifted: an event was accepted as real".to_owned());
        }
    }

    /// Counts a false positive acknowledged at `now`; returns true when this one imposed a mute.
    /// A key already muted is not muted again (its mute lifts on time, not later).
    pub fn on_false_positive(&mut self, now: i64) -> bool {
        self.acked_total = self.acked_total.saturating_add(1);
        self.fp_total = self.fp_total.saturating_add(1);
        self.fp_run = self.fp_run.saturating_add(1);
        self.remember(now, true);
        if self.is_muted(now) {
            return false;
        }
        let window = u32::try_from(self.recent.len()).unwrap_or(u32::MAX);
        let false_positives =
            u32::try_from(self.recent.iter().filter(|v| v.false_positive).count()).unwrap_or(u32::MAX);
        let reason = if self.fp_run >= RUN_LIMIT {
            format!("{} false positives in a row", self.fp_run)
        } else if window >= RATE_MIN_ACKS && false_positives.saturating_mul(2) > window {
            format!("false-positive rate {false_positives}/{window} > 50 % of recent verdicts")
        } else {
            return false;
        };
        let length = mute_length(self.mutes);
        self.mutes = self.mutes.saturating_add(1);
        // The mute spends its evidence: after it lifts, the key is judged on new verdicts only.
        self.fp_run = 0;
        self.recent.clear();
        self.muted_until = Some(now.saturating_add(length));
        self.mute_reason = Some(format!("{reason}; muted for {} day(s)", length / FIRST_MUTE_MS));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = FIRST_MUTE_MS;

    #[test]
    fn three_false_positives_in_a_row_mute_for_a_day() {
        let mut b = Budget::default();
        assert!(!b.on_false_positive(0));
        assert!(!b.on_false_positive(1));
        assert_eq!(b.remaining(), 1);
        assert!(b.on_false_positive(2));
        assert_eq!(b.muted_until, Some(2 + DAY));
        assert_eq!(b.mute_reason.as_deref(), Some("3 false positives in a row; muted for 1 day(s)"));
        assert!(b.on_event(3), "the fourth event is muted");
        assert_eq!(b.muted_events, 1);
        assert!(!b.on_event(2 + DAY), "the mute lifted by itself");
    }

    #[test]
    fn an_accepted_event_resets_the_run() {
        let mut b = Budget::default();
        b.on_false_positive(0);
        b.on_false_positive(0);
        b.on_accepted(0);
        assert_eq!(b.remaining(), RUN_LIMIT);
        // Without the reset this would be the third in a row; with 4 acknowledgements the rate
        // rule does not apply yet.
        assert!(!b.on_false_positive(0));
        assert_eq!(b.remaining(), RUN_LIMIT - 1);
        assert!(!b.is_muted(0));
    }

    #[test]
    fn the_rate_rule_mutes_a_detector_that_is_mostly_wrong() {
        let mut b = Budget::default();
        // fp, ok, fp, ok, fp: 3/5 false, never three in a row.
        assert!(!b.on_false_positive(0));
        b.on_accepted(0);
        assert!(!b.on_false_positive(0));
        b.on_accepted(0);
        assert!(b.on_false_positive(0));
        assert!(b.mute_reason.as_deref().unwrap_or_default().starts_with("false-positive rate 3/5 > 50 %"));
        assert!(b.recent.is_empty(), "the mute spent its evidence");
    }

    /// Lifetime totals re-armed a mute the moment it lifted: after fp, ok, fp, ok, fp (muted at
    /// 3/5), one more false positive made 4/6 and muted again at once, for twice as long.
    #[test]
    fn a_lifted_rate_mute_needs_fresh_evidence_before_it_mutes_again() {
        let mut b = Budget::default();
        for fp in [true, false, true, false] {
            if fp {
                b.on_false_positive(0);
            } else {
                b.on_accepted(0);
            }
        }
        assert!(b.on_false_positive(0), "3/5 mutes");
        let lifted = b.muted_until.unwrap_or_default();
        assert!(!b.on_false_positive(lifted), "one false positive after the mute is no rate");
        assert!(!b.is_muted(lifted));
        // Fresh evidence still counts: fp, ok, fp, ok, fp again (the run rule never fires).
        b.on_accepted(lifted);
        assert!(!b.on_false_positive(lifted));
        b.on_accepted(lifted);
        assert!(b.on_false_positive(lifted), "the window fills again and mutes");
        assert_eq!(b.muted_until, Some(lifted + 2 * DAY), "the second mute lasts twice as long");
    }

    #[test]
    fn verdicts_older_than_the_window_slide_out() {
        let mut b = Budget::default();
        // Two old false positives and two old accepted, a week and more ago.
        for at in [0, 1] {
            b.on_false_positive(at);
            b.on_accepted(at);
        }
        let later = RATE_WINDOW_MS + 10;
        // fp, ok, fp now: 2/3 in the window, too few verdicts; with lifetime totals this was 4/7.
        assert!(!b.on_false_positive(later));
        b.on_accepted(later);
        assert!(!b.on_false_positive(later));
        assert_eq!(b.recent.len(), 3, "the old four slid out");
        assert!(!b.is_muted(later));
        // And the window keeps at most RATE_WINDOW verdicts.
        for i in 0..30 {
            b.on_accepted(later + i);
        }
        assert_eq!(b.recent.len(), RATE_WINDOW);
    }

    #[test]
    fn the_window_survives_storage() {
        let recent = vec![Verdict { at: 5, false_positive: true }, Verdict { at: 7, false_positive: false }];
        assert_eq!(decode_recent(&encode_recent(&recent)), recent);
        assert_eq!(decode_recent(""), []);
        assert_eq!(decode_recent("x:f,3:q,4:a"), [Verdict { at: 4, false_positive: false }]);
    }

    #[test]
    fn mutes_double_up_to_thirty_days_and_lift_by_themselves() {
        let mut b = Budget::default();
        let mut now = 0;
        let mut lengths = Vec::new();
        for _ in 0..7 {
            for _ in 0..RUN_LIMIT {
                b.on_false_positive(now);
            }
            let until = b.muted_until.unwrap_or_default();
            lengths.push((until - now) / DAY);
            now = until; // lifted
            assert!(!b.is_muted(now));
        }
        assert_eq!(lengths, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(mute_length(u32::MAX), MAX_MUTE_MS);
    }

    #[test]
    fn a_false_positive_while_muted_does_not_extend_the_mute() {
        let mut b = Budget::default();
        for _ in 0..3 {
            b.on_false_positive(0);
        }
        let until = b.muted_until;
        assert!(!b.on_false_positive(10));
        assert_eq!(b.muted_until, until);
    }

    #[test]
    fn accepting_lifts_a_running_mute() {
        let mut b = Budget::default();
        for _ in 0..3 {
            b.on_false_positive(0);
        }
        b.on_accepted(5);
        assert!(!b.is_muted(5));
        assert_eq!(b.mutes, 1, "the next mute still lasts longer");
    }
}
