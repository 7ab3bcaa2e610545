//! The knowledge base on a real SQLite file: ranking, tenant isolation, removal, and a property
//! test that no text can make the full-text query fail.

#![allow(clippy::unwrap_used)]

use mttrly_core::ids::{AccountId, KnowledgeId, ServerId};
use mttrly_core::tools::knowledge::{KnowledgeKind, KnowledgeSource, fts_match, search_terms};
use mttrly_core::{Environment, Plan, Principal};
use proptest::prelude::*;

use crate::db::Db;
use crate::db::knowledge::{KnowledgeSearch, NewKnowledge};

struct Tenant {
    account: AccountId,
    author: Principal,
    server: ServerId,
}

async fn tenant(db: &Db, name: &str, token: u8) -> Tenant {
    let (account, user) = db.create_tenant(name, Plan::DeploymentCrew, "admin", &[token; 32]).await.unwrap();
    let server = db.server_for_tests(&account, "web-1", Environment::Staging, &[token + 100; 32]).await.unwrap();
    Tenant { account, author: Principal::Human { user_id: user, name: "admin".into() }, server }
}

async fn add(db: &Db, t: &Tenant, title: &str, body: &str, server: Option<&ServerId>) -> KnowledgeId {
    let new = NewKnowledge {
        id: KnowledgeId::generate(),
        kind: KnowledgeKind::Recipe,
        title: title.into(),
        body: body.into(),
        server_id: server.cloned(),
        author: t.author.clone(),
        source: KnowledgeSource::Cli,
        content_sha256: super::content_sha256(body),
        created_at: 1,
    };
    let id = new.id.clone();
    db.account(&t.account).knowledge().add(new, false).await.unwrap();
    id
}

fn search(text: &str, server: Option<&ServerId>) -> KnowledgeSearch {
    KnowledgeSearch {
        fts_match: fts_match(&search_terms(text)).unwrap(),
        server_id: server.cloned(),
        server_only: false,
        kind: None,
        created_until_ms: None,
        limit: 10,
    }
}

/// The index is shared by every tenant: what one tenant writes must not show in another's
/// results. A raw bm25 score did (its IDF counts every tenant's rows); places do not.
#[tokio::test]
async fn another_tenants_entries_change_nothing_in_my_results() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("central.db")).unwrap();
    let a = tenant(&db, "a", 1).await;
    let b = tenant(&db, "b", 2).await;
    add(&db, &a, "nginx 502 after deploy", "check the upstream first", None).await;
    add(&db, &a, "Disk notes", "when nginx returns 502, restart the upstream", None).await;
    let mine = db.account(&a.account).knowledge();
    let before = mine.search(&search("nginx upstream", None)).await.unwrap();
    for i in 0..40 {
        add(&db, &b, &format!("nginx note {i}"), "nginx nginx nginx upstream", None).await;
    }
    let after = mine.search(&search("nginx upstream", None)).await.unwrap();
    assert_eq!(before.len(), 2);
    assert_eq!(before, after, "another tenant's writes leak nothing into my results");
    let json = serde_json::to_value(&after[0]).unwrap();
    assert!(json.get("score").is_none() && json["rank"] == 1, "{json}");
}

#[tokio::test]
async fn titles_outrank_bodies_same_server_first_and_removed_entries_vanish() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("central.db")).unwrap();
    let a = tenant(&db, "a", 1).await;
    let b = tenant(&db, "b", 2).await;
    let in_body = add(&db, &a, "Disk notes", "when nginx returns 502, restart the upstream", None).await;
    let in_title = add(&db, &a, "nginx 502 after deploy", "check the upstream first", None).await;
    let theirs = add(&db, &b, "nginx 502 everywhere", "other tenant", None).await;
    let hits = db.account(&a.account).knowledge().search(&search("nginx 502", None)).await.unwrap();
    let ids: Vec<_> = hits.iter().map(|h| h.knowledge_id.clone()).collect();
    assert_eq!(ids, [in_title.clone(), in_body.clone()], "title weighted over body; the other tenant's never");
    assert!(!ids.contains(&theirs));
    assert_eq!((hits[0].rank, hits[1].rank), (1, 2));
    assert!(hits[1].snippet.contains("«nginx»"), "{}", hits[1].snippet);
    // Stemming: "restarting" finds "restart".
    let hits = db.account(&a.account).knowledge().search(&search("restarting", None)).await.unwrap();
    assert_eq!(hits.len(), 1);
    // Same-server first, even over a better-ranked general entry.
    let on_server = add(&db, &a, "Upstream slow", "nginx 502 seen on this box", Some(&a.server)).await;
    let hits = db.account(&a.account).knowledge().search(&search("nginx 502", Some(&a.server))).await.unwrap();
    assert_eq!(hits[0].knowledge_id, on_server);
    assert!(hits[0].same_server && !hits[1].same_server);
    // Removed: gone from the index at once; removing again finds nothing.
    let removed = db.account(&a.account).knowledge().remove(&in_title, 5).await.unwrap();
    assert!(removed.is_some());
    assert!(db.account(&a.account).knowledge().remove(&in_title, 6).await.unwrap().is_none());
    let hits = db.account(&a.account).knowledge().search(&search("nginx 502", None)).await.unwrap();
    assert!(hits.iter().all(|h| h.knowledge_id != in_title));
    assert!(db.account(&a.account).knowledge().get(&in_title).await.unwrap().is_none());
    // Another tenant cannot read or remove it.
    assert!(db.account(&b.account).knowledge().get(&in_body).await.unwrap().is_none());
    assert!(db.account(&b.account).knowledge().remove(&in_body, 7).await.unwrap().is_none());
    assert!(db.account(&a.account).knowledge().get(&in_body).await.unwrap().is_some());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary Unicode, FTS5 operators, quotes, column filters: never a query error.
    #[test]
    fn no_text_makes_the_query_fail(
        text in prop_oneof![
            any::<String>(),
            "[ \"*^():{}+\\-a-zA-Z0-9]{0,40}",
            Just("nginx AND (".to_owned()),
            Just("title:x NEAR(a b, 3) \"\" ^start OR NOT * -body".to_owned()),
        ]
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        runtime.block_on(async {
            let t = tenant(&db, "a", 1).await;
            add(&db, &t, "nginx title", "a body with words", None).await;
            if let Some(expr) = fts_match(&search_terms(&text)) {
                let s = KnowledgeSearch { fts_match: expr, server_id: None, server_only: false, kind: None, created_until_ms: None, limit: 5 };
                let result = db.account(&t.account).knowledge().search(&s).await;
                assert!(result.is_ok(), "{text:?}: {result:?}");
            }
        });
    }
}
