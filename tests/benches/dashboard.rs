//! The dashboard's two biggest pages, rendered server-side for a signed-in person over loopback
//! HTTP (issue 14's bar: median under 30 ms): the pending actions with 200 actions waiting (each
//! judged for this person: rule, four eyes, approvals so far), and the servers with 10,000
//! servers. The rows are written straight into central's database (the plan's server limit and
//! the per-server pending cap would otherwise stop at a few); the person signs in through their
//! invite and the sign-in form, as in the browser tests.
//!
//! cargo bench -p mttrly-tests --bench dashboard -- [--requests 200]

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mttrly_core::Principal;
use mttrly_core::action::ActionContent;
use mttrly_core::ids::{ActionId, ServerId};
use mttrly_core::second_factor::TotpSecret;
use mttrly_core::second_factor::totp::STEP_SECONDS;
use mttrly_proto::central::v1::AddUserRequest;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_tests::in_process::{InProcessCentral, authed};

const PENDING: usize = 200;
const SERVERS: usize = 10_000;
const PASSWORD: &str = "correct horse battery staple";

fn now_step() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_second()).unwrap() / STEP_SECONDS
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A cookie-keeping client.
struct Http {
    http: reqwest::Client,
    base: String,
    jar: BTreeMap<String, String>,
}

impl Http {
    async fn send(&mut self, request: reqwest::RequestBuilder) -> (u16, String) {
        let cookies = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let request = if cookies.is_empty() { request } else { request.header(reqwest::header::COOKIE, cookies) };
        let response = request.send().await.unwrap();
        for set in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let (name, value) = set.to_str().unwrap().split(';').next().unwrap().split_once('=').unwrap();
            self.jar.insert(name.to_owned(), value.to_owned());
        }
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
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

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = body.find(&marker).unwrap() + marker.len();
    body[at..].split('"').next().unwrap().to_owned()
}

/// Bob, an operator: invited, enrolled, signed in.
async fn signed_in(h: &InProcessCentral) -> Http {
    let base = h.central.http_url();
    let added = UserServiceClient::new(h.channel().await)
        .add_user(authed(
            &h.admin,
            AddUserRequest {
                name: "bob".into(),
                role: "operator".into(),
                email: String::new(),
                issue_token: false,
                second_factor_code: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let path = added.invite_url[base.len()..].to_owned();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut http = Http { http: client, base, jar: BTreeMap::new() };
    let (_, page) = http.get(&path).await;
    let csrf = hidden(&page, "csrf");
    let (_, page) = http
        .post(&path, &[("csrf", &csrf), ("step", "password"), ("password", PASSWORD), ("password_again", PASSWORD)])
        .await;
    let at = page.find("Key: <code>").unwrap() + "Key: <code>".len();
    let key: String = page[at..].split('<').next().unwrap().chars().filter(|c| !c.is_whitespace()).collect();
    let secret = TotpSecret::from_base32(&key).unwrap();
    let step = now_step();
    let (status, _) =
        http.post(&path, &[("csrf", &csrf), ("step", "code"), ("code", &format!("{:06}", secret.code_at(step)))]).await;
    assert_eq!(status, 200);
    http
}

/// Writes `SERVERS` servers and `PENDING` pending actions (requested by the admin's assistant,
/// spread over the first servers) into the account.
async fn seed(h: &InProcessCentral) {
    let (account, _) = h.central.central.db.first_account().await.unwrap().unwrap();
    let admin = h.central.central.db.account(&account).users().list().await.unwrap().remove(0);
    let now = mttrly_central::db::now_ms();
    let servers: Vec<String> = (0..SERVERS).map(|_| ServerId::generate().to_string()).collect();
    let actions: Vec<(String, String, String)> = (0..PENDING)
        .map(|i| {
            let content = ActionContent::Command {
                command: format!("systemctl restart nginx-{i} && journalctl -u nginx-{i} --since '-5 min'"),
                timeout_seconds: 30,
            };
            (ActionId::generate().to_string(), serde_json::to_string(&content).unwrap(), content.content_sha256())
        })
        .collect();
    let requester = serde_json::to_string(&Principal::Assistant {
        session_id: mttrly_core::ids::AssistantSessionId::generate(),
        client_name: "claude-code".into(),
        on_behalf_of: admin.id.clone(),
    })
    .unwrap();
    let account_id = account.to_string();
    h.central
        .central
        .db
        .with_connection_for_tests(move |c| {
            let tx = c.transaction()?;
            for (i, id) in servers.iter().enumerate() {
                let metrics = format!(
                    r#"{{"collected_at":"2026-12-01T10:00:00Z","cpu_percent":{}.5,"memory_total_bytes":8000000000,"memory_used_bytes":4000000000,"memory_percent":50.0,"swap_total_bytes":0,"swap_used_bytes":0,"load_average":[0.5,0.4,0.3],"uptime_seconds":1000,"filesystems":[{{"mount_point":"/","fs_type":"ext4","total_bytes":100,"used_bytes":42,"used_percent":42.0}}]}}"#,
                    i % 100
                );
                tx.execute(
                    "INSERT INTO servers (id, account_id, name, environment, created_at, agent_version, last_seen_at, metrics_json)
                     VALUES (?1, ?2, ?3, 'production', ?4, '0.1.0', ?4, ?5)",
                    rusqlite::params![id, account_id, format!("web-{i}"), now, metrics],
                )?;
            }
            for (i, (id, content, sha)) in actions.iter().enumerate() {
                tx.execute(
                    "INSERT INTO actions (id, account_id, server_id, environment, action_type, content_json, content_sha256,
                       description, requested_by_json, requested_via, status, approvals_required, created_at, updated_at,
                       expires_at, reason)
                     VALUES (?1, ?2, ?3, 'production', 'command', ?4, ?5, ?6, ?7, 'mcp', 'pending_approval', 1, ?8, ?8, ?9, ?10)",
                    rusqlite::params![
                        id,
                        account_id,
                        servers[i % 20],
                        content,
                        sha,
                        format!("Run nginx-{i} restart"),
                        requester,
                        now,
                        now + 3_600_000,
                        "the 5xx rate doubled after the deploy"
                    ],
                )?;
            }
            tx.commit()
        })
        .await
        .unwrap();
}

async fn measure(http: &mut Http, path: &str, requests: usize, expect: &str, count: usize) -> (Duration, Duration) {
    let (status, body) = http.get(path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.matches(expect).count(), count, "{path} shows every row");
    let mut took = Vec::with_capacity(requests);
    for _ in 0..requests {
        let start = Instant::now();
        let (status, body) = http.get(path).await;
        took.push(start.elapsed());
        assert_eq!(status, 200);
        assert!(!body.is_empty());
    }
    took.sort();
    (took[took.len() / 2], took[(took.len() * 99 / 100).min(took.len() - 1)])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let requests: usize = args.windows(2).find(|w| w[0] == "--requests").and_then(|w| w[1].parse().ok()).unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let h = InProcessCentral::start(|_| {}).await;
        seed(&h).await;
        let mut http = signed_in(&h).await;
        let (median, p99) = measure(&mut http, "/", requests, "<article class=\"action\"", PENDING).await;
        println!("dashboard GET / ({PENDING} pending actions): {requests} requests, median {median:?}, p99 {p99:?}");
        let (median, p99) = measure(&mut http, "/servers", requests, "<th scope=\"row\">", SERVERS).await;
        println!("dashboard GET /servers ({SERVERS} servers): {requests} requests, median {median:?}, p99 {p99:?}");
        h.central.shutdown().await;
    });
}
