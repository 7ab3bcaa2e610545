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

pub(in crate::db) fn search(
    conn: &Connection,
    account: &AccountId,
    search: &KnowledgeSearch,
) -> Result<Vec<KnowledgeHit>, MttrlyError> {
    // Two steps. First rank and limit: bm25 (negative, smaller is better; title weighted 10:1 over
    // body) and the same-server flag, over the caller's living rows only, LIMIT n. Then the
    // snippets of those n rows alone: snippet() costs a pass over a row's text, and in one query
    // it ran for every match before the sort kept ten. The raw bm25 figure never leaves here.
    // One read transaction: both steps see the same snapshot.
    let tx = conn.unchecked_transaction().map_err(internal)?;
    let mut ranked = tx
        .prepare_cached(
            "SELECT k.seq, CASE WHEN k.server_id = ?3 THEN 1 ELSE 0 END AS same
             FROM knowledge_fts JOIN knowledge k ON k.seq = knowledge_fts.rowid
             WHERE knowledge_fts MATCH ?1 AND k.account_id = ?2 AND k.removed_at IS NULL
               AND (?4 IS NULL OR k.kind = ?4) AND (?5 = 0 OR k.server_id = ?3) AND k.created_at <= ?7
             ORDER BY same DESC, bm25(knowledge_fts, 10.0, 1.0), k.seq LIMIT ?6",
        )
        .map_err(internal)?;
    let top: Vec<(i64, bool)> = ranked
        .query_map(
            params![
                search.fts_match,
                account.as_str(),
                search.server_id.as_ref().map(ServerId::as_str),
                search.kind.map(KnowledgeKind::as_str),
                search.server_only,
                search.limit,
                search.created_until_ms.unwrap_or(i64::MAX)
            ],
            |r| Ok((r.get(0)?, r.get::<_, i64>(1)? == 1)),
        )
        .map_err(internal)?
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    let mut detail = tx
        .prepare_cached(
            "SELECT k.id, k.kind, k.title, snippet(knowledge_fts, -1, '«', '»', '…', 32), k.server_id,
                    k.author_json, k.source, k.created_at
             FROM knowledge_fts JOIN knowledge k ON k.seq = knowledge_fts.rowid
             WHERE knowledge_fts MATCH ?1 AND knowledge_fts.rowid = ?2 AND k.account_id = ?3",
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
    drop((ranked, detail));
    drop(tx);
    Ok(hits)
}
