//! Issue 14, the dashboard's Admin page (`/admin`): an admin sees every person (removed ones
//! marked), open invites, API tokens, OAuth grants, linked chat accounts and the effective
//! approval rules; Revoke and Unlink take effect at once (the auth cache included), are audited
//! with source `dashboard`, and are refused without this session's CSRF token, from another
//! site, to non-admins (also one demoted while their page is open, or removed), and for another
//! account's ids. Hostile names are shown escaped. One real-Chromium test renders the page at
//! desktop and phone width and revokes a token with a click.
//!
//! OAuth grants are made through the storage seam the token endpoint uses (`db.oauth()`: a
//! registered client and an issued token pair), not through the whole browser consent flow,
//! which `oauth.rs` covers; the grant is then exactly what that flow leaves behind.

#![allow(clippy::unwrap_used)]

use mttrly_central::auth::Resource;
use mttrly_central::chat::telegram::TelegramConfig;
use mttrly_central::db::accounts::TokenOwner;
use mttrly_central::db::audit::AuditFilter;
use mttrly_central::db::oauth::{Client, CodeGrant, TokenPair};
use mttrly_central::secrets::SecretKind;
use mttrly_core::audit::AuditOutcome;
use mttrly_core::{ChatProvider, Role, Source, ToolSurface};
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_proto::central::v1::{AddUserRequest, ListTokensRequest, RemoveUserRequest, WhoAmIRequest};
use mttrly_tests::webdriver::Driver;
use serde_json::json;

use crate::approvals::add_user;
use crate::common::{Harness, authed, harness, urlencode};
use crate::dashboard::{Http, LIVE, hidden, person, screenshot, sign_in};

/// A variable Cargo sets for a test binary, standing in for the bot token (see `telegram.rs`).
const TOKEN_ENV: &str = "CARGO_PKG_NAME";

/// A central with Telegram configured (so chat accounts can be linked) at an address where
/// nothing listens: the bot's polling fails quietly, linking needs none of it.
async fn central() -> Harness {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("http://127.0.0.1:{port}");
    harness(move |cfg| cfg.telegram = Some(TelegramConfig::polling(TOKEN_ENV, &dead))).await
}

/// The owner of a signed-in person, by name (as the dashboard builds it from the session).
async fn person_owner(h: &Harness, name: &str) -> TokenOwner {
    let admin = h.owner(&h.admin).await;
    let users = h.central.central.db.account(&admin.account_id).users().list().await.unwrap();
    let user = users.into_iter().find(|u| u.name == name).unwrap();
    TokenOwner {
        principal: mttrly_core::Principal::Human { user_id: user.id, name: name.to_owned() },
        role: user.role,
        user_name: name.to_owned(),
        scope: ToolSurface::ALL,
        credential: format!("test-{name}"),
        ..admin
    }
}

/// Links the Telegram account `external_id` (shown as `label`) to `token`'s owner: a code issued
/// as `users link telegram` issues it, redeemed as the bot redeems `/start CODE`.
async fn link_telegram(h: &Harness, token: &str, external_id: &str, label: &str) {
    let central = &h.central.central;
    let code =
        mttrly_central::chat::links::issue(central, &h.owner(token).await, ChatProvider::Telegram).await.unwrap();
    mttrly_central::chat::links::redeem(central, ChatProvider::Telegram, &code.code, external_id, external_id, label)
        .await
        .unwrap();
}

/// An OAuth grant of `token`'s owner to a client named `client_name`: its public id and its
/// access token.
async fn grant(h: &Harness, token: &str, client_name: &str) -> (String, String) {
    let who = h.owner(token).await;
    let db = &h.central.central.db;
    let now = mttrly_central::db::now_ms();
    let client_id = mttrly_central::secrets::generate(SecretKind::OAuthClient);
    let client = Client {
        client_id: client_id.clone(),
        client_name: client_name.to_owned(),
        redirect_uris: vec!["http://127.0.0.1:53682/callback".to_owned()],
    };
    db.oauth().insert_client(client, now).await.unwrap();
    let access = mttrly_central::secrets::generate(SecretKind::OAuthAccess);
    let refresh = mttrly_central::secrets::generate(SecretKind::OAuthRefresh);
    let family = format!("fam{now}");
    let pair = TokenPair {
        grant: CodeGrant {
            client_id,
            account_id: who.account_id.clone(),
            user_id: who.principal.accountable_user().clone(),
            redirect_uri: "http://127.0.0.1:53682/callback".to_owned(),
            code_challenge: "C9Eh3DAjL3z19MNierO69n6t9wNopjgg6-J2xUBrGN0".to_owned(),
            resource: resource(h),
            scope: "mcp".to_owned(),
            human_token_hash: None,
            surface: ToolSurface::ALL,
            grant_expires_at: now + 86_400_000,
        },
        family: family.clone(),
        access_hash: mttrly_central::secrets::hash(&access),
        access_expires_at: now + 3_600_000,
        refresh_hash: mttrly_central::secrets::hash(&refresh),
        refresh_expires_at: now + 86_400_000,
    };
    assert!(db.oauth().insert_token_pair(pair).await.unwrap());
    (format!("oauth_{family}"), access)
}

/// The MCP resource the grants here are bound to.
fn resource(h: &Harness) -> String {
    format!("{}/mcp", h.central.http_url())
}

/// Whether an OAuth access token still opens `/mcp`.
async fn access_works(h: &Harness, access: &str) -> bool {
    let resource = resource(h);
    mttrly_central::auth::resolve(&h.central.central, Some(access), Resource::Mcp(&resource)).await.is_ok()
}

/// A gRPC call with `token`: `Ok` or the status code it was refused with.
async fn whoami(h: &Harness, token: &str) -> Result<(), tonic::Code> {
    AccountServiceClient::new(h.channel().await)
        .who_am_i(authed(token, WhoAmIRequest {}))
        .await
        .map(|_| ())
        .map_err(|s| s.code())
}

/// The public id of API token `token` (its owner has exactly one).
async fn token_id(h: &Harness, token: &str) -> String {
    let who = h.owner(token).await;
    let listed = AccountServiceClient::new(h.channel().await)
        .list_tokens(authed(&h.admin, ListTokensRequest {}))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    let mine: Vec<_> = listed
        .into_iter()
        .filter(|t| t.kind != "oauth" && t.owner_id == who.principal.accountable_user().as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    mine[0].id.clone()
}

/// The `<section id="{id}">` of `page`.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page.find(&format!("<section id=\"{id}\"")).unwrap_or_else(|| panic!("no section {id} in {page}"));
    let end = start + page[start..].find("</section>").unwrap();
    &page[start..end]
}

/// The `<tr>` of `page` that contains `needle`.
fn row<'a>(page: &'a str, needle: &str) -> &'a str {
    let at = page.find(needle).unwrap_or_else(|| panic!("no {needle} in {page}"));
    let start = page[..at].rfind("<tr").unwrap();
    let end = at + page[at..].find("</tr>").unwrap();
    &page[start..end]
}

/// The account's audit rows about `subject`, newest first.
async fn audited(h: &Harness, subject: &str) -> Vec<mttrly_core::tools::actions::AuditEntry> {
    let central = &h.central.central;
    central.audit.flush().await;
    let account = h.owner(&h.admin).await.account_id;
    let filter = AuditFilter { subject: Some(subject.to_owned()), limit: 100, ..AuditFilter::default() };
    central.db.account(&account).audit().list(&filter).await.unwrap()
}

/// A POST from another site (its `Origin`), with the session's cookie and a valid token.
async fn cross_site(http: &mut Http, base: &str, path: &str, csrf: &str) -> u16 {
    let request = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}{path}"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(reqwest::header::ORIGIN, "https://evil.example")
        .body(format!("csrf={}", urlencode(csrf)));
    http.send(request).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_sees_people_invites_tokens_grants_links_and_rules_and_revokes_at_once() {
    let h = central().await;
    let base = h.central.http_url();
    let root = h.owner(&h.admin).await.user_name;
    // Token users before anyone enrols a second factor (after, issuing one needs a code).
    let ops = add_user(&h, "opsbot", "operator").await;
    let gone = add_user(&h, "gone", "viewer").await;
    // An invite nobody opened yet, with an e-mail that is markup.
    UserServiceClient::new(h.channel().await)
        .add_user(authed(
            &h.admin,
            AddUserRequest {
                name: "erin".into(),
                role: "viewer".into(),
                email: "<b>erin</b>@example.com".into(),
                issue_token: false,
                second_factor_code: String::new(),
            },
        ))
        .await
        .unwrap();
    let mut alice = person(&h, "alice", "admin").await;
    UserServiceClient::new(h.channel().await)
        .remove_user(authed(&h.admin, RemoveUserRequest { name: "gone".into(), second_factor_code: String::new() }))
        .await
        .unwrap();
    assert_eq!(whoami(&h, &gone).await, Err(tonic::Code::Unauthenticated));
    link_telegram(&h, &ops, "1001", "@ops<img src=x id=pwned>\u{202e}gnp").await;
    link_telegram(&h, &h.admin, "1003", "@root").await;
    let hostile_client = "<script>alert(1)</script> Evil\u{1b}[31m";
    let (grant_id, access) = grant(&h, &ops, hostile_client).await;
    let ops_id = token_id(&h, &ops).await;

    let mut http = Http::new(&base);
    http.sign_in(&mut alice).await;
    let (status, page) = http.get("/admin").await;
    assert_eq!(status, 200, "{page}");

    // People: each living one, how they sign in, who added them; the removed one marked.
    let people = section(&page, "people");
    let alice_row = row(people, ">alice<");
    assert!(
        alice_row.contains("admin") && alice_row.contains("password + TOTP") && alice_row.contains(">yes<"),
        "{alice_row}"
    );
    assert!(alice_row.contains(&format!(">{root}<")), "added by the admin token's owner: {alice_row}");
    let ops_row = row(people, ">opsbot<");
    assert!(
        ops_row.contains("operator") && ops_row.contains("API token only") && ops_row.contains(">no<"),
        "{ops_row}"
    );
    let erin_row = row(people, ">erin<");
    assert!(
        erin_row.contains("invited, not signed in yet") && erin_row.contains("&lt;b&gt;erin&lt;/b&gt;@example.com"),
        "{erin_row}"
    );
    let gone_row = row(people, ">gone<");
    assert!(gone_row.contains("class=\"removed\"") && gone_row.contains("removed "), "{gone_row}");
    assert!(page.contains("This account uses second factors"), "alice's factor switched the gate on");
    // Invites: erin's, never its secret.
    let invites = section(&page, "invites");
    assert!(invites.contains(">erin<") && invites.contains("data-countdown"), "{invites}");
    assert!(!page.contains("/invite/"), "no invite link on the page");
    // Tokens and grants with their owners; hostile names inert and visible.
    let token_row = row(&page, &format!("id=\"token-{ops_id}\""));
    assert!(
        token_row.contains("human")
            && token_row.contains(">opsbot<")
            && token_row.contains("all tools")
            && token_row.contains(">never<"),
        "{token_row}"
    );
    let grant_row = row(&page, &format!("id=\"grant-{grant_id}\""));
    assert!(grant_row.contains("&lt;script&gt;alert(1)&lt;/script&gt; Evil\\x1b[31m"), "{grant_row}");
    assert!(!page.contains("<script>alert") && !page.contains('\u{1b}') && !page.contains('\u{202e}'), "{page}");
    // Chat links, escaped.
    let link_row = row(section(&page, "links"), "@ops");
    assert!(
        link_row.contains("@ops&lt;img src=x id=pwned&gt;\\u{202e}gnp") && link_row.contains("Telegram"),
        "{link_row}"
    );
    assert!(!page.contains("<img"), "nothing injected");
    // The rules, judged for this team.
    let production = row(section(&page, "rules"), "approvals.production");
    assert!(production.contains("four eyes") && production.contains("dashboard"), "{production}");

    // Revoke the token: the gRPC call it made a moment ago (now cached) is refused at once, and
    // the chat link made with it ends with it.
    assert_eq!(whoami(&h, &ops).await, Ok(()));
    // A crafted "revoked" link cannot make the page claim a live token was revoked.
    let (_, crafted) = http.get(&format!("/admin?revoked={ops_id}")).await;
    assert!(crafted.contains(&format!("{ops_id} is NOT revoked")), "{crafted}");
    assert!(!crafted.contains(&format!("Revoked <code>{ops_id}</code>")), "{crafted}");
    let csrf = hidden(&page, "csrf");
    let (status, _) = http.post(&format!("/admin/tokens/{ops_id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(whoami(&h, &ops).await, Err(tonic::Code::Unauthenticated));
    let (_, page) = http.get(&format!("/admin?revoked={ops_id}")).await;
    assert!(page.contains(&format!("Revoked <code>{ops_id}</code>")), "{page}");
    assert!(!page.contains(&format!("id=\"token-{ops_id}\"")) && !page.contains("@ops"), "{page}");
    let row0 = &audited(&h, "RevokeToken").await[0];
    assert_eq!((row0.source, &row0.outcome), (Source::Dashboard, &AuditOutcome::Ok), "{row0:?}");
    assert_eq!(row0.parameters["token_id"], json!(ops_id));

    // The grant: its access token stops opening /mcp.
    assert!(access_works(&h, &access).await);
    let (status, _) = http.post(&format!("/admin/tokens/{grant_id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert!(!access_works(&h, &access).await, "a revoked grant's access token is refused");
    // Revoking it again: the page says so, with the engine's words, and a 404.
    let (status, page) = http.post(&format!("/admin/tokens/{grant_id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 404, "{page}");
    assert!(page.contains("Refused: no live token"), "{page}");

    // Unlink the admin's Telegram account, as `users unlink` does; audited from the dashboard.
    let (status, _) =
        http.post("/admin/links/unlink", &[("csrf", &csrf), ("user", &root), ("provider", "telegram")]).await;
    assert_eq!(status, 303);
    let (_, page) = http.get(&format!("/admin?unlinked=telegram&of={root}")).await;
    assert!(page.contains(&format!("Unlinked {root}'s Telegram account.")), "{page}");
    assert!(!page.contains("@root") && page.contains("Nobody has linked a chat account"), "{page}");
    let row0 = &audited(&h, "UnlinkChat").await[0];
    assert_eq!((row0.source, &row0.outcome), (Source::Dashboard, &AuditOutcome::Ok), "{row0:?}");
    // A bad provider changes nothing and says why.
    let (status, page) =
        http.post("/admin/links/unlink", &[("csrf", &csrf), ("user", &root), ("provider", "fax")]).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("unknown chat provider"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_cross_site_foreign_and_non_admin_requests_change_nothing() {
    let h = central().await;
    let base = h.central.http_url();
    let ops = add_user(&h, "opsbot", "operator").await;
    let ops_id = token_id(&h, &ops).await;
    // Another account, with a token of its own.
    let eve = &mttrly_central::secrets::generate(SecretKind::Human);
    let db = &h.central.central.db;
    let (other, _) = db
        .create_tenant("other", mttrly_core::Plan::DeploymentCrew, "eve", &mttrly_central::secrets::hash(eve))
        .await
        .unwrap();
    let eve_id = db.account(&other).users().tokens(None).await.unwrap()[0].id.clone();
    assert!(mttrly_central::auth::resolve(&h.central.central, Some(eve), Resource::Api).await.is_ok());

    let mut alice = person(&h, "alice", "admin").await;
    let mut bob = person(&h, "bob", "operator").await;
    let mut vic = person(&h, "vic", "viewer").await;
    let mut carl = person(&h, "carl", "operator").await;
    // Alice (a factor holder) makes carl an admin with her fresh code, as `users set-role` does.
    let alice_owner = person_owner(&h, "alice").await;
    let code = alice.fresh_code().await;
    mttrly_central::users::set_role(&h.central.central, &alice_owner, "carl", Role::Admin, Some(&code)).await.unwrap();

    let mut http = Http::new(&base);
    http.sign_in(&mut carl).await;
    let (status, page) = http.get("/admin").await;
    assert_eq!(status, 200, "{page}");
    let csrf = hidden(&page, "csrf");
    assert!(!page.contains(&eve_id) && !page.contains(">eve<"), "another account's people and tokens never show");

    // Without the token, with another, from another site: refused before anything.
    let revoke = format!("/admin/tokens/{ops_id}/revoke");
    assert_eq!(http.post(&revoke, &[]).await.0, 403);
    assert_eq!(http.post(&revoke, &[("csrf", &"A".repeat(43))]).await.0, 403);
    assert_eq!(cross_site(&mut http, &base, &revoke, &csrf).await, 403);
    assert_eq!(whoami(&h, &ops).await, Ok(()), "the token still works");
    // Another account's token id: as missing (404), and it still works.
    let (status, page) = http.post(&format!("/admin/tokens/{eve_id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 404, "{page}");
    assert!(mttrly_central::auth::resolve(&h.central.central, Some(eve), Resource::Api).await.is_ok());
    // Another account's person's chat link is not this account's to remove.
    let (status, _) =
        http.post("/admin/links/unlink", &[("csrf", &csrf), ("user", "eve"), ("provider", "telegram")]).await;
    assert_eq!(status, 400);

    // An operator and a viewer: the page is for admins, and their own forms' POST is refused.
    for who in [&mut bob, &mut vic] {
        let mut theirs = Http::new(&base);
        theirs.sign_in(who).await;
        let (status, page) = theirs.get("/admin").await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("This page is for the account's admins") && !page.contains(&ops_id), "{page}");
        let (_, pending) = theirs.get("/").await;
        let theirs_csrf = hidden(&pending, "csrf");
        assert_eq!(theirs.post(&revoke, &[("csrf", &theirs_csrf)]).await.0, 403);
        let unlink = [("csrf", theirs_csrf.as_str()), ("user", "opsbot"), ("provider", "telegram")];
        assert_eq!(theirs.post("/admin/links/unlink", &unlink).await.0, 403);
    }
    assert_eq!(whoami(&h, &ops).await, Ok(()));

    // Carl demoted while his page is open: the next GET and POST see his role now.
    let code = alice.fresh_code().await;
    mttrly_central::users::set_role(&h.central.central, &alice_owner, "carl", Role::Operator, Some(&code))
        .await
        .unwrap();
    assert_eq!(http.get("/admin").await.0, 403);
    assert_eq!(http.post(&revoke, &[("csrf", &csrf)]).await.0, 403);
    assert_eq!(whoami(&h, &ops).await, Ok(()), "the demoted admin's POST changed nothing");
    // Carl removed: his session is no session (a GET goes to sign-in, a POST is 401).
    UserServiceClient::new(h.channel().await)
        .remove_user(authed(&h.admin, RemoveUserRequest { name: "carl".into(), second_factor_code: String::new() }))
        .await
        .unwrap();
    let (status, _) = http.get("/admin").await;
    assert_eq!(status, 303, "signed out: to the sign-in page");
    assert_eq!(http.post(&revoke, &[("csrf", &csrf)]).await.0, 401);
    assert_eq!(whoami(&h, &ops).await, Ok(()));
    let refused = audited(&h, "RevokeToken").await;
    assert!(refused.iter().all(|r| r.outcome != AuditOutcome::Ok), "nothing was revoked: {refused:?}");
}

/// The elements sticking out past the page's right edge (outside a `div.scroll`, whose content
/// may), as `tag.class` lines; empty when the page does not scroll sideways.
async fn wider_than_the_page(browser: &mttrly_tests::webdriver::Browser) -> String {
    let script = "const width = document.documentElement.clientWidth;
        if (document.documentElement.scrollWidth <= width) { return ''; }
        return [...document.querySelectorAll('body *')]
          .filter(e => !e.closest('div.scroll') && e.getBoundingClientRect().right > width + 0.5)
          .map(e => e.tagName.toLowerCase() + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))
          .join('\\n') || ('scrollWidth ' + document.documentElement.scrollWidth + ' > ' + width);";
    browser.execute(script, json!([])).await.as_str().unwrap().to_owned()
}

// Central and the test share the runtime; chromedriver and Chromium are processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_page_in_chromium_at_desktop_and_phone_width_revokes_with_a_click() {
    let h = central().await;
    let base = h.central.http_url();
    let ops = add_user(&h, "opsbot", "operator").await;
    let ci = add_user(&h, "ci-deploy", "viewer").await;
    UserServiceClient::new(h.channel().await)
        .add_user(authed(
            &h.admin,
            AddUserRequest {
                name: "erin".into(),
                role: "operator".into(),
                email: "erin@example.com".into(),
                issue_token: false,
                second_factor_code: String::new(),
            },
        ))
        .await
        .unwrap();
    let mut alice = person(&h, "alice", "admin").await;
    link_telegram(&h, &ops, "1001", "@opsbot").await;
    grant(&h, &ci, "Claude Code").await;
    let ops_id = token_id(&h, &ops).await;

    let driver = Driver::start().await;
    let browser = driver.browser(1280, 900).await;
    sign_in(&browser, &base, &mut alice).await;
    browser.click(&browser.wait_for("header.top nav a[href='/admin']", LIVE).await).await;
    browser.wait_for("main#main[data-live='admin'] #rules", LIVE).await;
    assert_eq!(wider_than_the_page(&browser).await, "", "desktop: nothing scrolls sideways");
    screenshot(&browser, "dashboard-admin-desktop").await;

    browser.resize(390, 844).await;
    browser.wait_until("return document.documentElement.clientWidth <= 400;", LIVE).await;
    assert_eq!(wider_than_the_page(&browser).await, "", "phone: only the tables' boxes scroll sideways");
    assert!(!browser.find_all("#tokens div.scroll table").await.is_empty(), "tables scroll inside their box");
    screenshot(&browser, "dashboard-admin-phone").await;
    browser.resize(1280, 900).await;

    let button = browser.wait_for(&format!("#token-{ops_id} button.revoke"), LIVE).await;
    browser.click(&button).await;
    let notice = browser.wait_for("p.notice.done", LIVE).await;
    assert!(browser.text(&notice).await.contains(&format!("Revoked {ops_id}")));
    assert!(browser.find_all(&format!("#token-{ops_id}")).await.is_empty(), "gone from the list");
    assert_eq!(whoami(&h, &ops).await, Err(tonic::Code::Unauthenticated));
    assert_eq!(whoami(&h, &ci).await, Ok(()), "only that one");
}
