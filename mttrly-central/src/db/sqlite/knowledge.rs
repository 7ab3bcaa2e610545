//! The knowledge base: the SQL. The FTS5 index follows the table through the triggers of the
//! migration that created both, inside whichever transaction writes the row.

use mttrly_core::ids::{AccountId, KnowledgeId, ServerId};
use mttrly_core::tools::knowledge::{KnowledgeEntry, KnowledgeHit, KnowledgeKind, KnowledgeSource, Provenance};
use mttrly_core::{ErrorCode, MttrlyError};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::internal;
use crate::db::knowledge::{KnowledgeFilter, KnowledgeSearch, NewKnowledge, Upserted};
use crate::db::timestamp;

const COLUMNS: &str = "id, kind, title, body, server_id, author_json, source, content_sha256, created_at";

/// A stored value this build cannot read back (a row written by a newer mttrly, or corruption).
fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Text)
}

fn provenance(author: &str, source: &str) -> rusqlite::Result<Provenance> {
    Ok(Provenance {
        author: serde_json::from_str(author).map_err(|_| corrupt("author_json"))?,
        source: KnowledgeSource::parse(source).ok_or_else(|| corrupt("source"))?,
    })
}

fn kind(s: &str) -> rusqlite::Result<KnowledgeKind> {
    KnowledgeKind::parse(s).ok_or_else(|| corrupt("kind"))
}

fn server(s: Option<String>) -> rusqlite::Result<Option<ServerId>> {
    s.map(|s| ServerId::parse(&s).map_err(|_| corrupt("server_id"))).transpose()
}

fn entry(r: &Row<'_>) -> rusqlite::Result<KnowledgeEntry> {
    let id: String = r.get(0)?;
    Ok(KnowledgeEntry {
        knowledge_id: KnowledgeId::parse(&id).map_err(|_| corrupt("id"))?,
        kind: kind(&r.get::<_, String>(1)?)?,
        title: r.get(2)?,
        body: r.get(3)?,
        server_id: server(r.get(4)?)?,
        provenance: provenance(&r.get::<_, String>(5)?, &r.get::<_, String>(6)?)?,
        content_sha256: r.get(7)?,
        created_at: timestamp(r.get(8)?),
    })
}

pub(in crate::db) fn add(
    conn: &mut Connection,
    account: &AccountId,
    new: &NewKnowledge,
    reuse_identical: bool,
) -> Result<(KnowledgeEntry, bool), MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    if reuse_identical {
        let existing = tx
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM knowledge
                     WHERE account_id = ?1 AND content_sha256 = ?2 AND kind = ?3 AND server_id IS ?4
                       AND removed_at IS NULL
                     ORDER BY seq LIMIT 1"
                ),
                params![
                    account.as_str(),
                    new.content_sha256,
                    new.kind.as_str(),
                    new.server_id.as_ref().map(ServerId::as_str)
                ],
                entry,
            )
            .optional()
            .map_err(internal)?;
        if let Some(existing) = existing {
            return Ok((existing, true));
        }
    }
    let author = serde_json::to_string(&new.author)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot encode the author: {e}")))?;
    tx.execute(
        "INSERT INTO knowledge (id, account_id, kind, title, body, server_id, author_json, source, content_sha256, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            new.id.as_str(),
            account.as_str(),
            new.kind.as_str(),
            new.title,
            new.body,
            new.server_id.as_ref().map(ServerId::as_str),
            author,
            new.source.as_str(),
            new.content_sha256,
            new.created_at,
        ],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    let stored = KnowledgeEntry {
        knowledge_id: new.id.clone(),
        kind: new.kind,
        title: new.title.clone(),
        body: new.body.clone(),
        server_id: new.server_id.clone(),
        provenance: Provenance { author: new.author.clone(), source: new.source },
        content_sha256: new.content_sha256.clone(),
        created_at: timestamp(new.created_at),
    };
    Ok((stored, false))
}

/// Stores `new` as the one living entry of `window_key` in the account: created when there is
/// none, left as it is when its content is the same, else rewritten in place (same id and
/// creation time; the index follows: the old text out, the new in, in this transaction).
pub(in crate::db) fn upsert_window(
    conn: &mut Connection,
    account: &AccountId,
    new: &NewKnowledge,
    window_key: &str,
) -> Result<(KnowledgeEntry, Upserted), MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let existing = tx
        .query_row(
            &format!(
                "SELECT seq, {COLUMNS} FROM knowledge WHERE account_id = ?1 AND window_key = ?2 AND removed_at IS NULL"
            ),
            params![account.as_str(), window_key],
            |r| {
                let seq: i64 = r.get(0)?;
                let id: String = r.get(1)?;
                Ok((
                    seq,
                    KnowledgeEntry {
                        knowledge_id: KnowledgeId::parse(&id).map_err(|_| corrupt("id"))?,
                        kind: kind(&r.get::<_, String>(2)?)?,
                        title: r.get(3)?,
                        body: r.get(4)?,
                        server_id: server(r.get(5)?)?,
                        provenance: provenance(&r.get::<_, String>(6)?, &r.get::<_, String>(7)?)?,
                        content_sha256: r.get(8)?,
                        created_at: timestamp(r.get(9)?),
                    },
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let author = serde_json::to_string(&new.author)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot encode the author: {e}")))?;
    let outcome = match existing {
        Some((_, entry)) if entry.content_sha256 == new.content_sha256 && entry.title == new.title => {
            return Ok((entry, Upserted::Unchanged));
        }
        Some((seq, entry)) => {
            tx.execute(
                "INSERT INTO knowledge_fts (knowledge_fts, rowid, title, body) VALUES ('delete', ?1, ?2, ?3)",
                params![seq, entry.title, entry.body],
            )
            .map_err(internal)?;
            tx.execute(
                "UPDATE knowledge SET title = ?2, body = ?3, content_sha256 = ?4, author_json = ?5 WHERE seq = ?1",
                params![seq, new.title, new.body, new.content_sha256, author],
            )
            .map_err(internal)?;
            tx.execute(
                "INSERT INTO knowledge_fts (rowid, title, body) VALUES (?1, ?2, ?3)",
                params![seq, new.title, new.body],
            )
            .map_err(internal)?;
            let updated = KnowledgeEntry {
                title: new.title.clone(),
                body: new.body.clone(),
                provenance: Provenance { author: new.author.clone(), source: new.source },
                content_sha256: new.content_sha256.clone(),
                ..entry
            };
            (updated, Upserted::Updated)
        }
        None => {
            tx.execute(
                "INSERT INTO knowledge (id, account_id, kind, title, body, server_id, author_json, source, content_sha256,
                     created_at, window_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    new.id.as_str(),
                    account.as_str(),
                    new.kind.as_str(),
                    new.title,
                    new.body,
                    new.server_id.as_ref().map(ServerId::as_str),
                    author,
                    new.source.as_str(),
                    new.content_sha256,
                    new.created_at,
                    window_key,
                ],
            )
            .map_err(internal)?;
            let created = KnowledgeEntry {
                knowledge_id: new.id.clone(),
                kind: new.kind,
                title: new.title.clone(),
                body: new.body.clone(),
                server_id: new.server_id.clone(),
                provenance: Provenance { author: new.author.clone(), source: new.source },
                content_sha256: new.content_sha256.clone(),
                created_at: timestamp(new.created_at),
            };
            (created, Upserted::Created)
        }
    };
    tx.commit().map_err(internal)?;
    Ok(outcome)
}

pub(in crate::db) fn get(
    conn: &Connection,
    account: &AccountId,
    id: &KnowledgeId,
) -> Result<Option<KnowledgeEntry>, MttrlyError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM knowledge WHERE account_id = ?1 AND id = ?2 AND removed_at IS NULL"
    ))
    .map_err(internal)?
    .query_row(params![account.as_str(), id.as_str()], entry)
    .optional()
    .map_err(internal)
}

pub(in crate::db) fn list(
    conn: &Connection,
    account: &AccountId,
    filter: &KnowledgeFilter,
) -> Result<Vec<KnowledgeEntry>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM knowledge
             WHERE account_id = ?1 AND removed_at IS NULL AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR server_id = ?3)
             ORDER BY created_at DESC, seq DESC LIMIT ?4"
        ))
        .map_err(internal)?;
    let rows = stmt
        .query_map(
            params![
                account.as_str(),
                filter.kind.map(KnowledgeKind::as_str),
                filter.server_id.as_ref().map(ServerId::as_str),
                filter.limit
            ],
            entry,
        )
        .map_err(internal)?;
    rows.collect::<Result<_, _>>().map_err(internal)
}

pub(in crate::db) fn remove(
    conn: &mut Connection,
    account: &AccountId,
    id: &KnowledgeId,
    now: i64,
) -> Result<Option<KnowledgeEntry>, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let Some(found) = get(&tx, account, id)? else {
        return Ok(None);
    };
    // The trigger on `removed_at` deletes the entry from the index in this same statement.
    tx.execute(
        "UPDATE knowledge SET removed_at = ?3 WHERE account_id = ?1 AND id = ?2 AND removed_at IS NULL",
        params![account.as_str(), id.as_str(), now],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(Some(found))
}

/// The ranked step's statement, over the caller's living entries matching the expression, with
/// one extra condition on the server (`$server`): its placeholders are ?1 the expression, ?2 the
/// account, ?3 the kind or NULL, ?4 the latest creation time, ?5 the limit, ?6 the server.
///
/// Its shape is what keeps it fast whatever the statistics say (issue 15; figures in BENCHMARKS):
/// - `CROSS JOIN` with the index on the left: SQLite keeps that order. Left free, the planner
///   followed the statistics: with none (a central never ANALYZEd) or stale ones (ANALYZE run
///   while the table was empty) it walked the account's entries and ran the MATCH — and bm25's
///   pass over every term's doclist — once per entry: 13 s a query over 10,000 entries.
/// - `INDEXED BY knowledge_search`: each match is checked in that narrow covering index keyed by
///   `seq`, not in the entry's row (reading 7,500 wide rows a query missed the page cache), nor
///   by walking `knowledge_account_time` once per match, which stale statistics also chose.
/// - bm25 (negative, smaller is better; title weighted 10:1 over body) is computed only for the
///   rows that pass the checks, and only the best `limit` are kept.
macro_rules! ranked {
    ($server:literal) => {
        concat!(
            "SELECT k.seq
             FROM knowledge_fts CROSS JOIN knowledge AS k INDEXED BY knowledge_search ON k.seq = knowledge_fts.rowid
             WHERE knowledge_fts MATCH ?1 AND k.account_id = ?2 AND k.removed_at IS NULL
               AND (?3 IS NULL OR k.kind = ?3) AND k.created_at <= ?4 AND ",
            $server,
            "
             ORDER BY bm25(knowledge_fts, 10.0, 1.0), k.seq LIMIT ?5"
        )
    };
}

/// No server named: every entry, one ranking.
const RANKED_ANY: &str = ranked!("?6 IS NULL");
/// The named server's entries (they come first).
const RANKED_ON_SERVER: &str = ranked!("k.server_id = ?6");
/// Every other entry (general ones and other servers'), after the server's.
const RANKED_OFF_SERVER: &str = ranked!("k.server_id IS NOT ?6");

/// The best `limit` seqs of one ranked statement, best first.
fn ranked(
    tx: &Connection,
    sql: &str,
    account: &AccountId,
    search: &KnowledgeSearch,
    server: Option<&ServerId>,
    limit: usize,
) -> Result<Vec<i64>, MttrlyError> {
    let mut stmt = tx.prepare_cached(sql).map_err(internal)?;
    let rows = stmt
        .query_map(
            params![
                search.fts_match,
                account.as_str(),
                search.kind.map(KnowledgeKind::as_str),
                search.created_until_ms.unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX),
                server.map(ServerId::as_str)
            ],
            |r| r.get(0),
        )
        .map_err(internal)?;
    rows.collect::<Result<_, _>>().map_err(internal)
}

pub(in crate::db) fn search(
    conn: &Connection,
    account: &AccountId,
    search: &KnowledgeSearch,
) -> Result<Vec<KnowledgeHit>, MttrlyError> {
    // The order is (the named server's entries first, then bm25, then seq). Two steps, in one
    // read transaction so both see the same snapshot:
    // 1. Rank and limit. With a server, its entries are ranked on their own first and the others
    //    only when the server's did not fill `limit`: the same order as one ranking keyed by
    //    (same server, bm25, seq), since an entry's bm25 does not depend on which rows a
    //    statement keeps (its statistics span the whole index), but bm25 then runs over the
    //    server's matches instead of all of them. The raw bm25 figure never leaves here.
    // 2. The snippets of those rows alone: snippet() costs a pass over a row's text.
    let limit = usize::try_from(search.limit).unwrap_or(usize::MAX);
    let tx = conn.unchecked_transaction().map_err(internal)?;
    let top: Vec<(i64, bool)> = match &search.server_id {
        // `server_only` without a server matches nothing (the tool refuses it before here).
        None if search.server_only => Vec::new(),
        None => ranked(&tx, RANKED_ANY, account, search, None, limit)?.into_iter().map(|seq| (seq, false)).collect(),
        Some(server) => {
            let mut top: Vec<(i64, bool)> = ranked(&tx, RANKED_ON_SERVER, account, search, Some(server), limit)?
                .into_iter()
                .map(|seq| (seq, true))
                .collect();
            if !search.server_only && top.len() < limit {
                let others = ranked(&tx, RANKED_OFF_SERVER, account, search, Some(server), limit - top.len())?;
                top.extend(others.into_iter().map(|seq| (seq, false)));
            }
            top
        }
    };
    let mut detail = tx
        .prepare_cached(
            "SELECT k.id, k.kind, k.title, snippet(knowledge_fts, -1, '«', '»', '…', 32), k.server_id,
                    k.author_json, k.source, k.created_at
             FROM knowledge_fts JOIN knowledge k ON k.seq = knowledge_fts.rowid
             WHERE knowledge_fts MATCH ?1 AND knowledge_fts.rowid = ?2 AND k.seq = ?2 AND k.account_id = ?3",
        )
        .map_err(internal)?;
    let mut hits = Vec::with_capacity(top.len());
    for (place, (seq, same_server)) in top.into_iter().enumerate() {
        let rank = u32::try_from(place).unwrap_or(u32::MAX).saturating_add(1);
        let hit = detail
            .query_row(params![search.fts_match, seq, account.as_str()], |r| {
                let id: String = r.get(0)?;
                Ok(KnowledgeHit {
                    knowledge_id: KnowledgeId::parse(&id).map_err(|_| corrupt("id"))?,
                    kind: kind(&r.get::<_, String>(1)?)?,
                    title: r.get(2)?,
                    snippet: r.get(3)?,
                    server_id: server(r.get(4)?)?,
                    provenance: provenance(&r.get::<_, String>(5)?, &r.get::<_, String>(6)?)?,
                    created_at: timestamp(r.get(7)?),
                    rank,
                    same_server,
                })
            })
            .optional()
            .map_err(internal)?;
        // Same snapshot: the row ranked is there; `optional` is belt and braces.
        hits.extend(hit);
    }
    drop(detail);
    drop(tx);
    Ok(hits)
}

#[cfg(test)]
mod tests {
    //! The ranked statements' plan, whatever the statistics, and the two-step ranking against
    //! the one-statement ranking it replaced.

    #![allow(clippy::unwrap_used)]

    use mttrly_core::tools::knowledge::{fts_match, fts_match_any, search_terms};
    use mttrly_core::{Environment, Plan, Principal};

    use super::*;
    use crate::db::Db;

    /// The previous form: one statement keyed by (same server, bm25, seq), as the order to keep.
    const ONE_RANKING: &str = "SELECT k.id, CASE WHEN k.server_id = ?3 THEN 1 ELSE 0 END AS same
         FROM knowledge_fts JOIN knowledge k ON k.seq = knowledge_fts.rowid
         WHERE knowledge_fts MATCH ?1 AND k.account_id = ?2 AND k.removed_at IS NULL
           AND (?4 IS NULL OR k.kind = ?4) AND (?5 = 0 OR k.server_id = ?3) AND k.created_at <= ?7
         ORDER BY same DESC, bm25(knowledge_fts, 10.0, 1.0), k.seq LIMIT ?6";

    const KINDS: [KnowledgeKind; 3] = [KnowledgeKind::Postmortem, KnowledgeKind::Recipe, KnowledgeKind::Note];

    /// xorshift: the same corpus every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }

        fn words(&mut self, vocabulary: &[&str], n: usize) -> String {
            (0..n).map(|_| vocabulary[self.below(vocabulary.len())]).collect::<Vec<_>>().join(" ")
        }
    }

    async fn tenant(db: &Db, name: &str, token: u8) -> (AccountId, Principal) {
        let (account, user) = db.create_tenant(name, Plan::DeploymentCrew, "admin", &[token; 32]).await.unwrap();
        (account, Principal::Human { user_id: user, name: "admin".into() })
    }

    fn entry(i: usize, title: String, body: String, server: Option<ServerId>, author: &Principal) -> NewKnowledge {
        NewKnowledge {
            id: KnowledgeId::generate(),
            kind: KINDS[i % 3],
            title,
            content_sha256: format!("{i:064x}"),
            body,
            server_id: server,
            author: author.clone(),
            source: KnowledgeSource::Cli,
            created_at: i64::try_from(i % 7).unwrap(),
        }
    }

    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(params!["\"disk\"", "acc", None::<&str>, i64::MAX, 10, "srv"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The pathology this guards against: left to the statistics, the planner walked the
    /// account's entries and re-ran the MATCH once per entry (13 s over 10,000 entries). It did so
    /// with no statistics and with stale ones; with fresh ones it chose the index. Every case must
    /// give the pinned plan: the index outermost, each match checked in `knowledge_search`.
    #[tokio::test]
    async fn the_ranked_plan_starts_from_the_index_whatever_the_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (account, author) = tenant(&db, "a", 1).await;
        // Statistics taken while the table is empty, then entries: the stale case.
        db.with_connection_for_tests(|c| c.execute_batch("ANALYZE")).await.unwrap();
        let mut rng = Rng(7);
        for i in 0..60 {
            let new = entry(
                i,
                rng.words(&["disk", "full", "nginx"], 3),
                rng.words(&["disk", "full", "log"], 20),
                None,
                &author,
            );
            db.account(&account).knowledge().add(new, false).await.unwrap();
        }
        let plans = db
            .with_connection_for_tests(|c| {
                let mut plans = Vec::new();
                for setup in ["", "DROP TABLE sqlite_stat1", "ANALYZE"] {
                    c.execute_batch(setup)?;
                    for sql in [RANKED_ANY, RANKED_ON_SERVER, RANKED_OFF_SERVER] {
                        plans.push((setup, plan(c, sql)));
                    }
                }
                Ok(plans)
            })
            .await
            .unwrap();
        for (setup, plan) in plans {
            assert!(plan[0].starts_with("SCAN knowledge_fts VIRTUAL TABLE"), "{setup:?}: {plan:?}");
            assert!(plan[1].contains("USING COVERING INDEX knowledge_search (seq=?"), "{setup:?}: {plan:?}");
        }
    }

    /// Ranking the server's entries first and the others after, each on its own, gives exactly
    /// the order of the one ranking keyed by (same server, bm25, seq), with every filter: a small
    /// vocabulary makes most entries match and many tie.
    #[tokio::test]
    async fn two_rankings_give_the_order_of_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (account, author) = tenant(&db, "a", 1).await;
        let (other, other_author) = tenant(&db, "b", 2).await;
        let web = db.server_for_tests(&account, "web-1", Environment::Staging, &[101; 32]).await.unwrap();
        let db_server = db.server_for_tests(&account, "db-1", Environment::Staging, &[102; 32]).await.unwrap();
        let theirs = db.server_for_tests(&other, "web-1", Environment::Staging, &[103; 32]).await.unwrap();
        let vocabulary = ["nginx", "502", "disk", "full", "restart", "upstream", "log"];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut mine = Vec::new();
        for i in 0..160 {
            let server = [None, Some(web.clone()), Some(db_server.clone())][rng.below(3)].clone();
            let title_words = 1 + rng.below(4);
            let (title, words) = (rng.words(&vocabulary, title_words), 1 + rng.below(12));
            // Some entries repeat an earlier text exactly: equal bm25, seq decides.
            let body = if i % 10 == 9 { "nginx 502 upstream".to_owned() } else { rng.words(&vocabulary, words) };
            let (stored, _) =
                db.account(&account).knowledge().add(entry(i, title, body, server, &author), false).await.unwrap();
            mine.push(stored.knowledge_id);
            let body = rng.words(&vocabulary, 6);
            let new = entry(i, rng.words(&vocabulary, 2), body, Some(theirs.clone()), &other_author);
            db.account(&other).knowledge().add(new, false).await.unwrap();
        }
        for id in mine.iter().step_by(9) {
            db.account(&account).knowledge().remove(id, 10).await.unwrap();
        }
        let mut searches = Vec::new();
        for text in ["nginx", "nginx 502", "disk full log", "upstream restart", "502"] {
            let terms = search_terms(text);
            for expression in [fts_match(&terms).unwrap(), fts_match_any(&terms).unwrap()] {
                for server in [None, Some(web.clone()), Some(db_server.clone())] {
                    for (server_only, kind, until, limit) in [
                        (false, None, None, 10),
                        (false, None, None, 1),
                        (false, None, None, 200),
                        (false, Some(KnowledgeKind::Recipe), None, 10),
                        (false, None, Some(3), 25),
                        (true, None, None, 10),
                        (true, Some(KnowledgeKind::Note), Some(4), 200),
                    ] {
                        searches.push(KnowledgeSearch {
                            fts_match: expression.clone(),
                            server_id: server.clone(),
                            server_only,
                            kind,
                            created_until_ms: until,
                            limit,
                        });
                    }
                }
            }
        }
        let account_id = account.clone();
        let compared = db
            .with_connection_for_tests(move |c| {
                let mut compared = 0;
                for s in &searches {
                    let expected: Vec<(String, bool)> = c
                        .prepare_cached(ONE_RANKING)?
                        .query_map(
                            params![
                                s.fts_match,
                                account_id.as_str(),
                                s.server_id.as_ref().map(ServerId::as_str),
                                s.kind.map(KnowledgeKind::as_str),
                                s.server_only,
                                s.limit,
                                s.created_until_ms.unwrap_or(i64::MAX)
                            ],
                            |r| Ok((r.get(0)?, r.get::<_, i64>(1)? == 1)),
                        )?
                        .collect::<Result<_, _>>()?;
                    let hits = search(c, &account_id, s).unwrap();
                    let got: Vec<(String, bool)> =
                        hits.iter().map(|h| (h.knowledge_id.as_str().to_owned(), h.same_server)).collect();
                    assert_eq!(got, expected, "{s:?}");
                    assert!(hits.iter().enumerate().all(|(i, h)| h.rank as usize == i + 1));
                    compared += usize::from(!expected.is_empty());
                }
                Ok(compared)
            })
            .await
            .unwrap();
        assert!(compared > 150, "most searches find something: {compared}");
    }
}
