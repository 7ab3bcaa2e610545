//! The hash chain: how a row's hash is computed, and how a chain is verified.

use sha2::{Digest, Sha256};

/// The fields of one stored row that the hash covers, in their stored form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedRow {
    /// Position in the account's chain, from 1.
    pub seq: u64,
    /// Time (ms).
    pub at: i64,
    /// Server id, if any.
    pub server_id: Option<String>,
    /// Actor, JSON.
    pub actor_json: String,
    /// Source name.
    pub source: String,
    /// Kind name.
    pub kind: String,
    /// Subject (tool, action or alert id).
    pub subject: String,
    /// Redacted parameters, JSON.
    pub parameters_json: String,
    /// Outcome, JSON.
    pub outcome_json: String,
    /// Duration (ms), if any.
    pub duration_ms: Option<i64>,
}

/// The hash of the (empty) chain before an account's first row.
pub const GENESIS: [u8; 32] = [0; 32];

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    // Length-prefixed, so no two different rows can serialise to the same byte string.
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// `SHA-256(prev_hash ‖ account ‖ each field, length-prefixed)`.
pub fn row_hash(prev: &[u8; 32], account_id: &str, row: &ChainedRow) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    field(&mut h, account_id.as_bytes());
    field(&mut h, &row.seq.to_be_bytes());
    field(&mut h, &row.at.to_be_bytes());
    field(&mut h, row.server_id.as_deref().unwrap_or("").as_bytes());
    field(&mut h, &[u8::from(row.server_id.is_some())]);
    field(&mut h, row.actor_json.as_bytes());
    field(&mut h, row.source.as_bytes());
    field(&mut h, row.kind.as_bytes());
    field(&mut h, row.subject.as_bytes());
    field(&mut h, row.parameters_json.as_bytes());
    field(&mut h, row.outcome_json.as_bytes());
    field(&mut h, &row.duration_ms.unwrap_or(-1).to_be_bytes());
    h.finalize().into()
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// How many rows were checked.
    pub rows_checked: u64,
    /// The first row that does not check out, and why; `None` when the chain is intact.
    pub first_bad: Option<(u64, String)>,
}

/// Verifies rows given in `seq` order. The first row may follow a retention purge: its stored
/// `prev_hash` is taken as the anchor when its `seq` is above 1.
pub fn verify(
    account_id: &str,
    rows: impl IntoIterator<Item = (ChainedRow, [u8; 32], [u8; 32])>,
    head: Option<(u64, [u8; 32])>,
) -> Verification {
    let mut checked = 0;
    let mut expected_prev: Option<[u8; 32]> = None;
    let mut expected_seq: Option<u64> = None;
    let mut last: Option<(u64, [u8; 32])> = None;
    for (row, prev, hash) in rows {
        checked += 1;
        let bad = |why: String| Verification { rows_checked: checked, first_bad: Some((row.seq, why)) };
        match expected_seq {
            Some(want) if row.seq != want => {
                return bad(format!(
                    "expected row {want} next, found row {} (a row was deleted or reordered)",
                    row.seq
                ));
            }
            None if row.seq == 1 && prev != GENESIS => return bad("the first row does not start the chain".to_owned()),
            _ => {}
        }
        if let Some(want) = expected_prev
            && prev != want
        {
            return bad("its link to the previous row is broken (a row was deleted, inserted or reordered)".to_owned());
        }
        if row_hash(&prev, account_id, &row) != hash {
            return bad("its content does not match its hash (the row was edited)".to_owned());
        }
        expected_prev = Some(hash);
        expected_seq = Some(row.seq + 1);
        last = Some((row.seq, hash));
    }
    if let Some((head_seq, head_hash)) = head
        && last != Some((head_seq, head_hash))
    {
        let at = last.map_or(0, |(s, _)| s);
        return Verification {
            rows_checked: checked,
            first_bad: Some((
                at,
                format!("the log ends at row {at} but its head says row {head_seq} (rows were removed from the end)"),
            )),
        };
    }
    Verification { rows_checked: checked, first_bad: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<(ChainedRow, [u8; 32], [u8; 32])> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let row = ChainedRow {
                    seq,
                    at: i64::try_from(seq).unwrap() * 1000,
                    server_id: Some("srv_1".into()),
                    actor_json: "{}".into(),
                    source: "cli".into(),
                    kind: "tool_call".into(),
                    subject: "mttrly_list_servers".into(),
                    parameters_json: "{}".into(),
                    outcome_json: "{\"status\":\"ok\"}".into(),
                    duration_ms: Some(3),
                };
                let hash = row_hash(&prev, "acc", &row);
                let out = (row, prev, hash);
                prev = hash;
                out
            })
            .collect()
    }

    fn head(rows: &[(ChainedRow, [u8; 32], [u8; 32])]) -> Option<(u64, [u8; 32])> {
        rows.last().map(|(r, _, h)| (r.seq, *h))
    }

    #[test]
    fn an_intact_chain_verifies() {
        let rows = chain(5);
        let h = head(&rows);
        assert_eq!(verify("acc", rows, h), Verification { rows_checked: 5, first_bad: None });
    }

    #[test]
    fn edits_deletions_reorders_and_truncation_are_caught() {
        let rows = chain(5);
        let h = head(&rows);

        let mut edited = rows.clone();
        edited[2].0.subject = "mttrly_execute_command".into();
        assert_eq!(verify("acc", edited, h).first_bad.map(|b| b.0), Some(3));

        let mut deleted = rows.clone();
        deleted.remove(2);
        assert_eq!(verify("acc", deleted, h).first_bad.map(|b| b.0), Some(4));

        let mut reordered = rows.clone();
        reordered.swap(1, 2);
        assert!(verify("acc", reordered, h).first_bad.is_some());

        let mut truncated = rows.clone();
        truncated.pop();
        assert!(verify("acc", truncated, h).first_bad.is_some());

        // Another account's rows cannot be replayed into this chain.
        assert!(verify("other", rows, h).first_bad.is_some());
    }
}
