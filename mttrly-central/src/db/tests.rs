//! The seam's promise, on a real file: an account handle reaches its own tenant's rows and
//! nothing of another's, whichever operation is used.

#![allow(clippy::unwrap_used)]

use mttrly_core::action::{ActionContent, ActionState};
use mttrly_core::ids::{AccountId, ActionId, ServerId};
use mttrly_core::{Environment, ErrorCode, Plan, Principal, Source};

use super::Db;
use super::actions::{ActionRow, Created};
use super::servers::Registered;

struct Tenant {
    account: AccountId,
    admin: Principal,
    server: ServerId,
}

async fn tenant(db: &Db, name: &str, token: u8) -> Tenant {
    let (account, user) = db.create_tenant(name, Plan::DeploymentCrew, "admin", &[token; 32]).await.unwrap();
    let servers = db.account(&account).servers();
    let registered = servers.register("web-1", Environment::Staging, &[token + 100; 32], i64::MAX, 10).await;
    let Registered::Added(server) = registered.unwrap() else { panic!("under the limit") };
    Tenant { account, admin: Principal::Human { user_id: user, name: "admin".into() }, server }
}

/// A pending action on `t`'s server, created at `now` (ms), expiring ten minutes later.
fn pending_action(t: &Tenant, now: i64) -> ActionRow {
    let content = ActionContent::Command { command: "uptime".into(), timeout_seconds: 10 };
    ActionRow {
        id: ActionId::generate(),
        account_id: t.account.clone(),
        server_id: t.server.clone(),
        server_name: "web-1".into(),
        environment: Environment::Staging,
        content_sha256: content.content_sha256(),
        content,
        description: "uptime".into(),
        reason: None,
        requested_by: t.admin.clone(),
        requested_via: Source::Cli,
        status: ActionState::PendingApproval,
        approvals_required: 1,
        created_at: now,
        updated_at: now,
        expires_at: now + 600_000,
        result: None,
    }
}

#[tokio::test]
async fn an_account_handle_never_reaches_another_accounts_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("central.db")).unwrap();
    let (a, b) = (tenant(&db, "a", 1).await, tenant(&db, "b", 2).await);
    let now = super::now_ms();
    let action = pending_action(&a, now);
    let id = action.id.clone();
    let stored = db.account(&a.account).actions().create(action, Some(b"bytes".to_vec()), 5, super::now_ms()).await;
    assert_eq!(stored.unwrap(), Created::Stored);

    // B's handle, given A's ids: nothing found, nothing moved, nothing decided.
    let theirs = db.account(&b.account);
    assert!(theirs.actions().get(&id).await.unwrap().is_none());
    assert!(theirs.actions().payload(&id).await.unwrap().is_none());
    assert_eq!(theirs.actions().pending_on_server(&a.server, super::now_ms()).await.unwrap().0, 0);
    let moved = theirs.actions().transition(&id, ActionState::PendingApproval, ActionState::Cancelled, None).await;
    assert!(!moved.unwrap());
    let sha = "0".repeat(64);
    assert!(theirs.actions().reject(&id, &b.admin, Source::Cli, &sha, None).await.is_err());
    assert!(theirs.actions().approve(&id, &b.admin, Source::Cli, &sha, true).await.is_err());
    assert!(theirs.actions().list(None, None, 100).await.unwrap().is_empty());
    assert!(theirs.servers().get(&a.server).await.unwrap().is_none());
    assert!(!theirs.servers().rotate_credentials(&a.server, &[9; 32], i64::MAX).await.unwrap());
    assert!(!theirs.servers().decommission(&a.server).await.unwrap());
    // An action row of A can not be stored through B's handle either.
    let err = theirs.actions().create(pending_action(&a, now), None, 5, super::now_ms()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InternalError);

    // A's own handle sees all of it, untouched by B's attempts.
    let ours = db.account(&a.account);
    let row = ours.actions().get(&id).await.unwrap().unwrap();
    assert_eq!(row.status, ActionState::PendingApproval);
    assert!(ours.actions().decisions(&id).await.unwrap().is_empty());
    assert_eq!(ours.actions().payload(&id).await.unwrap().as_deref(), Some(&b"bytes"[..]));
    assert_eq!(ours.actions().pending_on_server(&a.server, super::now_ms()).await.unwrap().0, 1);
    assert!(ours.servers().get(&a.server).await.unwrap().is_some());
    ours.actions().reject(&id, &a.admin, Source::Cli, &row.content_sha256, Some("no")).await.unwrap();
    assert_eq!(ours.actions().decisions(&id).await.unwrap().len(), 1);
    assert!(ours.servers().rotate_credentials(&a.server, &[9; 32], i64::MAX).await.unwrap());
}

#[tokio::test]
async fn the_pending_cap_counts_only_live_pending_actions_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("central.db")).unwrap();
    let a = tenant(&db, "a", 1).await;
    let actions = db.account(&a.account).actions();
    let now = super::now_ms();
    for _ in 0..2 {
        assert_eq!(actions.create(pending_action(&a, now), None, 2, now).await.unwrap(), Created::Stored);
    }
    let Created::CapReached { pending, first_expiry } =
        actions.create(pending_action(&a, now), None, 2, now).await.unwrap()
    else {
        panic!("the third pending action must hit the cap of two");
    };
    assert_eq!((pending, first_expiry), (2, Some(now + 600_000)));
    // Expired by the sweep: no longer counted.
    let expired = db.maintenance().expire_due_actions(now + 600_000).await.unwrap();
    assert_eq!(expired.len(), 2);
    assert_eq!(actions.create(pending_action(&a, now), None, 2, now).await.unwrap(), Created::Stored);
}

/// A refresh checked before a revocation must not store a live pair after it: the insert itself
/// refuses a family with any revoked token.
#[tokio::test]
async fn a_revoked_grant_cannot_be_brought_back_by_a_refresh_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("central.db")).unwrap();
    let t = tenant(&db, "a", 1).await;
    let Principal::Human { user_id, .. } = &t.admin else { unreachable!() };
    let client = crate::db::oauth::Client {
        client_id: "c1".into(),
        client_name: "client".into(),
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
    };
    db.oauth().insert_client(client, 0).await.unwrap();
    let grant = crate::db::oauth::CodeGrant {
        client_id: "c1".into(),
        account_id: t.account.clone(),
        user_id: user_id.clone(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        code_challenge: "x".into(),
        resource: "http://127.0.0.1/mcp".into(),
        scope: "mcp".into(),
        human_token_hash: Some(vec![1; 32]),
        surface: mttrly_core::ToolSurface::ALL,
        grant_expires_at: i64::MAX,
    };
    let pair = |n: u8| crate::db::oauth::TokenPair {
        grant: grant.clone(),
        family: "fam_1".into(),
        access_hash: [n; 32],
        access_expires_at: i64::MAX,
        refresh_hash: [n + 1; 32],
        refresh_expires_at: i64::MAX,
    };
    assert!(db.oauth().insert_token_pair(pair(10)).await.unwrap(), "a live grant gets its pair");
    let revoked = db.account(&t.account).users().revoke_token("oauth_fam_1", None).await.unwrap();
    assert!(revoked.is_some(), "the grant is revoked");
    assert!(!db.oauth().insert_token_pair(pair(20)).await.unwrap(), "nothing stored after the revocation");
    assert!(
        db.oauth().insert_token_pair(crate::db::oauth::TokenPair { family: "fam_2".into(), ..pair(30) }).await.unwrap()
    );
}

#[tokio::test]
async fn unmatched_alerts_stay_in_their_account_open_once_and_go_with_retention_once_resolved() {
    use std::collections::BTreeMap;

    use mttrly_core::ids::AlertId;
    use mttrly_core::tools::common::Severity;
    use mttrly_core::tools::servers::AlertStatus;

    use super::alerts::{AlertFilter, InboundApplied, InboundChange, NewUnmatchedAlert};

    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("central.db")).unwrap();
    let (a, b) = (tenant(&db, "a", 1).await, tenant(&db, "b", 2).await);
    let now = super::now_ms();
    let new = |at: i64| NewUnmatchedAlert {
        id: AlertId::generate(),
        source: "alertmanager".into(),
        fingerprint: "f1".into(),
        name: "DiskFull".into(),
        host: Some("ghost".into()),
        severity: Severity::Critical,
        summary: "DiskFull on ghost".into(),
        labels: BTreeMap::from([("instance".to_owned(), "ghost:9100".to_owned())]),
        opened_at: at,
    };
    let resolve = || InboundChange::Resolve {
        source: "alertmanager".into(),
        rule: "alertmanager:DiskFull".into(),
        subject: "f1".into(),
        at: now,
    };
    let applied = db
        .account(&a.account)
        .alerts()
        .apply_inbound(vec![InboundChange::OpenUnmatched(new(now - 10 * DAY)), InboundChange::OpenUnmatched(new(now))])
        .await
        .unwrap();
    assert_eq!(applied, vec![InboundApplied::Opened(true), InboundApplied::Opened(false)]);
    let all = AlertFilter { limit: 100, ..AlertFilter::default() };
    // Another account neither sees nor resolves it.
    assert!(db.account(&b.account).alerts().list_unmatched(&all).await.unwrap().is_empty());
    assert_eq!(
        db.account(&b.account).alerts().apply_inbound(vec![resolve()]).await.unwrap(),
        vec![InboundApplied::Resolved(Vec::new())]
    );
    let listed = db.account(&a.account).alerts().list_unmatched(&all).await.unwrap();
    assert_eq!((listed.len(), listed[0].status, listed[0].host.as_deref()), (1, AlertStatus::Open, Some("ghost")));
    assert_eq!(listed[0].labels.get("instance").map(String::as_str), Some("ghost:9100"));

    let resolved = db.account(&a.account).alerts().apply_inbound(vec![resolve()]).await.unwrap();
    let [InboundApplied::Resolved(ids)] = resolved.as_slice() else { panic!("{resolved:?}") };
    assert_eq!((ids.len(), ids[0].0.clone(), ids[0].1.clone()), (1, listed[0].alert_id.clone(), None));
    assert_eq!(db.account(&a.account).alerts().list_unmatched(&all).await.unwrap()[0].status, AlertStatus::Resolved);
    // Opened ten days ago and resolved: a one-day retention removes it.
    assert!(db.maintenance().purge(now, |_| DAY).await.unwrap() >= 1);
    assert!(db.account(&a.account).alerts().list_unmatched(&all).await.unwrap().is_empty());
}

/// A push stream's check of its credential: live while the token stands and its owner is a
/// member of this account; not once revoked, not for another account or person, and never for
/// a key that is not the first half of a token's hash.
#[tokio::test]
async fn a_credential_stands_until_revoked_and_only_for_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("central.db")).unwrap();
    let a = tenant(&db, "a", 1).await;
    let b = tenant(&db, "b", 2).await;
    let Principal::Human { user_id: admin, .. } = &a.admin else { unreachable!() };
    let Principal::Human { user_id: other, .. } = &b.admin else { unreachable!() };
    let users = db.account(&a.account).users();
    let hash = [9; 32];
    let id = users.insert_token(&hash, admin, Some("claude-code"), &mttrly_core::ToolSurface::ALL).await.unwrap();
    let key = super::accounts::credential_key(&hash);
    let now = super::now_ms();
    assert!(users.credential_live(admin.clone(), key.clone(), now).await.unwrap());
    assert!(!users.credential_live(other.clone(), key.clone(), now).await.unwrap(), "another person");
    let theirs = db.account(&b.account).users();
    assert!(!theirs.credential_live(admin.clone(), key.clone(), now).await.unwrap(), "another account");
    for forged in ["tok_", "tok_09", "tok_zz", "oauth_", "oauth_nope", "anything", ""] {
        assert!(!users.credential_live(admin.clone(), forged.into(), now).await.unwrap(), "{forged:?}");
    }
    users.revoke_token(&id, None).await.unwrap().expect("revoked");
    assert!(!users.credential_live(admin.clone(), key, now).await.unwrap(), "revoked");
}
