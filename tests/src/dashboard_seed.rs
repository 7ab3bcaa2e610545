//! What the dashboard benches share: `benches/dashboard.rs` (central in the bench's process) and
//! `benches/dashboard_outside.rs` (the release binary under `wrk`) measure the same pages, so they
//! seed the same rows and sign the same person in.
//!
//! Issue 14's biggest pages: 200 pending actions and 10,000 servers (150 of them alerting). The
//! rows are written straight into central's SQLite database, since the real paths stop long
//! before: the plan's server limit and the per-server pending cap. The person is Bob, an
//! operator, signed in as a browser would: their invite link, the password and authenticator
//! steps of its form, a TOTP code computed from the key the page shows.

use std::collections::BTreeMap;

use mttrly_core::Principal;
use mttrly_core::action::ActionContent;
use mttrly_core::ids::{ActionId, AlertId, AssistantSessionId, ServerId, UserId};
use mttrly_core::second_factor::TotpSecret;
use mttrly_core::second_factor::totp::STEP_SECONDS;
use rusqlite::{Connection, params};

/// Pending actions on `/`.
pub const PENDING: usize = 200;
/// Servers on `/servers`.
pub const SERVERS: usize = 10_000;
/// Servers with an open alert (one each).
pub const ALERTING: usize = 150;
/// Rows on a page of `/servers`.
pub const PAGE: usize = 100;
/// Bob's password.
pub const PASSWORD: &str = "correct horse battery staple";
/// What starts one pending action in `/` (its count is checked: every action is shown).
pub const ACTION_MARK: &str = "<article class=\"action\"";
/// What starts one server's row in `/servers`.
pub const SERVER_ROW_MARK: &str = "<th scope=\"row\"><a href=\"/servers/";

/// Writes [`SERVERS`] servers ([`ALERTING`] of them with an open alert) and [`PENDING`] pending
/// actions (requested by the admin's assistant, spread over the first 20 servers) into the first
/// account, in one transaction; returns the servers' ids in the order written (`web-0` first).
///
/// The account and its admin are found as central finds them (`first_account`, `first_admin`),
/// so this works on a running central's connection and on the file of a stopped one alike.
pub fn seed(conn: &mut Connection) -> rusqlite::Result<Vec<String>> {
    let account_id: String =
        conn.query_row("SELECT id FROM accounts ORDER BY created_at, id LIMIT 1", [], |r| r.get(0))?;
    let admin: String = conn.query_row(
        "SELECT id FROM users WHERE account_id = ?1 AND role = 'admin' AND removed_at IS NULL ORDER BY created_at, id LIMIT 1",
        params![account_id],
        |r| r.get(0),
    )?;
    let admin = UserId::parse(&admin).expect("the admin's id is a user id");
    let now = mttrly_central::db::now_ms();
    let servers: Vec<String> = (0..SERVERS).map(|_| ServerId::generate().to_string()).collect();
    let requester = serde_json::to_string(&Principal::Assistant {
        session_id: AssistantSessionId::generate(),
        client_name: "claude-code".into(),
        on_behalf_of: admin,
    })
    .expect("a principal serialises");
    let tx = conn.transaction()?;
    for (i, id) in servers.iter().enumerate() {
        let metrics = format!(
            r#"{{"collected_at":"2026-12-01T10:00:00Z","cpu_percent":{}.5,"memory_total_bytes":8000000000,"memory_used_bytes":4000000000,"memory_percent":50.0,"swap_total_bytes":0,"swap_used_bytes":0,"load_average":[0.5,0.4,0.3],"uptime_seconds":1000,"filesystems":[{{"mount_point":"/","fs_type":"ext4","total_bytes":100,"used_bytes":42,"used_percent":42.0}}]}}"#,
            i % 100
        );
        let environment = ["production", "staging", "development"][i % 3];
        tx.execute(
            "INSERT INTO servers (id, account_id, name, environment, created_at, agent_version, last_seen_at, metrics_json)
             VALUES (?1, ?2, ?3, ?4, ?5, '0.1.0', ?5, ?6)",
            params![id, account_id, format!("web-{i}"), environment, now, metrics],
        )?;
    }
    // Alertmanager's alerts (rule `alertmanager:<name>`, subject its fingerprint), not a built-in
    // rule's: central resolves at start the open alerts of a built-in rule its config turns off,
    // and the test configs turn the host-metric rules off, so a seeded `disk_usage` alert would
    // not outlive a restart.
    for (i, id) in servers.iter().step_by(SERVERS / ALERTING).take(ALERTING).enumerate() {
        tx.execute(
            "INSERT INTO alerts (id, account_id, server_id, rule, subject, severity, status, summary, opened_at)
             VALUES (?1, ?2, ?3, 'alertmanager:DiskFilling', ?4, 'warning', 'open', 'disk / at 91%', ?5)",
            params![AlertId::generate().to_string(), account_id, id, format!("{i:016x}"), now],
        )?;
    }
    for i in 0..PENDING {
        let content = ActionContent::Command {
            command: format!("systemctl restart nginx-{i} && journalctl -u nginx-{i} --since '-5 min'"),
            timeout_seconds: 30,
        };
        tx.execute(
            "INSERT INTO actions (id, account_id, server_id, environment, action_type, content_json, content_sha256,
               description, requested_by_json, requested_via, status, approvals_required, created_at, updated_at,
               expires_at, reason)
             VALUES (?1, ?2, ?3, 'production', 'command', ?4, ?5, ?6, ?7, 'mcp', 'pending_approval', 1, ?8, ?8, ?9, ?10)",
            params![
                ActionId::generate().to_string(),
                account_id,
                servers[i % 20],
                serde_json::to_string(&content).expect("an action's content serialises"),
                content.content_sha256(),
                format!("Run nginx-{i} restart"),
                requester,
                now,
                now + 3_600_000,
                "the 5xx rate doubled after the deploy"
            ],
        )?;
    }
    tx.commit()?;
    Ok(servers)
}

/// A cookie-keeping HTTP client on one central (no redirects followed, so a sign-in page sent
/// in place of the dashboard shows as a 303, not as a page).
pub struct Http {
    /// The client.
    pub http: reqwest::Client,
    /// Central's HTTP URL, no trailing slash.
    pub base: String,
    /// The cookies central set, by name.
    pub jar: BTreeMap<String, String>,
}

impl Http {
    /// A client for `base` with no cookies yet.
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client");
        Self { http, base: base.trim_end_matches('/').to_owned(), jar: BTreeMap::new() }
    }

    /// The `Cookie` header that carries every cookie held.
    pub fn cookie_header(&self) -> String {
        self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// Sends `request` with the cookies held, keeps the ones set; the status and the body.
    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> (u16, String) {
        let cookies = self.cookie_header();
        let request = if cookies.is_empty() { request } else { request.header(reqwest::header::COOKIE, cookies) };
        let response = request.send().await.expect("central answers");
        for set in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let pair = set.to_str().expect("an ASCII cookie").split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("a name=value cookie");
            self.jar.insert(name.to_owned(), value.to_owned());
        }
        (response.status().as_u16(), response.text().await.expect("a text body"))
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// `POST path` with a urlencoded form, from central's own origin (as its forms are sent).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let body = form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ORIGIN, &self.base)
            .body(body);
        self.send(request).await
    }
}

/// Percent-encodes a form field.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of the hidden input `name` in a page.
fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = body.find(&marker).unwrap_or_else(|| panic!("no hidden {name} in the page:\n{body}")) + marker.len();
    body[at..].split('"').next().unwrap_or_default().to_owned()
}

/// Signs the invited person in through `invite_url` (a link central printed, on `base`): a
/// password ([`PASSWORD`]), then an authenticator enrolled with the key the page shows and
/// confirmed with its current code. Returns the client holding the session cookie.
pub async fn sign_in(base: &str, invite_url: &str) -> Http {
    // The link's path: whatever host central names in it, the page is asked of `base`.
    let path = invite_url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).expect("an absolute invite URL");
    let mut http = Http::new(base);
    let (_, page) = http.get(&path).await;
    let csrf = hidden(&page, "csrf");
    let (_, page) = http
        .post(&path, &[("csrf", &csrf), ("step", "password"), ("password", PASSWORD), ("password_again", PASSWORD)])
        .await;
    let at =
        page.find("Key: <code>").unwrap_or_else(|| panic!("no authenticator key in:\n{page}")) + "Key: <code>".len();
    let key: String = page[at..].split('<').next().unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
    let secret = TotpSecret::from_base32(&key).expect("a base32 key");
    let step = u64::try_from(jiff::Timestamp::now().as_second()).expect("after 1970") / STEP_SECONDS;
    let code = format!("{:06}", secret.code_at(step));
    let (status, page) = http.post(&path, &[("csrf", &csrf), ("step", "code"), ("code", &code)]).await;
    assert_eq!(status, 200, "the authenticator step: {page}");
    http
}
