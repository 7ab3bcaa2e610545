//! What the in-process modules of this binary share (`first_user`, `notify`, `scopes`, and the
//! central tests that move here next): the harness of [`mttrly_tests::in_process`], re-exported,
//! and [`Harness`].
//!
//! [`Harness`] is declared here rather than used from `mttrly_tests` because modules add their
//! own helper methods to it (`impl common::Harness { … }`), and an inherent impl needs its type
//! in this crate. It is [`InProcessCentral`] field for field, so a module can take it apart
//! (`h.central.shutdown()` consumes the central).

#![allow(dead_code, unused_imports, reason = "each module uses part of the harness")]

use mttrly_central::config::Config;
use mttrly_central::server::RunningCentral;
pub(crate) use mttrly_tests::in_process::{
    InProcessCentral, Mcp, RunningAgent, authed, call_tool, code, config, fast_heartbeats, get_action, header, http,
    json_of, run_agent,
};
use tonic::transport::Channel;

/// An initialised, running central and its admin token.
pub(crate) struct Harness {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) central: RunningCentral,
    pub(crate) admin: String,
}

/// A central on [`config`], adjusted by `tune` before `init`.
pub(crate) async fn harness(tune: impl FnOnce(&mut Config)) -> Harness {
    let InProcessCentral { dir, central, admin } = InProcessCentral::start(tune).await;
    Harness { dir, central, admin }
}

impl Harness {
    /// Waits until central holds `server_id`'s agent session ([`wait_online`]).
    pub(crate) async fn wait_online(&self, server_id: &str) {
        wait_online(&self.central, server_id).await;
    }

    /// A new gRPC channel to this central.
    pub(crate) async fn channel(&self) -> Channel {
        mttrly_tests::in_process::channel(&self.central).await
    }

    /// Who `token` is, as central's operations take a caller.
    pub(crate) async fn owner(&self, token: &str) -> mttrly_central::db::accounts::TokenOwner {
        mttrly_central::auth::resolve(&self.central.central, Some(token), mttrly_central::auth::Resource::Api)
            .await
            .expect("a token central knows")
    }

    /// A second account `name` on the Deployment Crew plan, with its admin `admin`: the admin's
    /// token.
    pub(crate) async fn other_account(&self, name: &str, admin: &str) -> String {
        let token = mttrly_central::secrets::generate(mttrly_central::secrets::SecretKind::Human);
        self.central
            .central
            .db
            .create_tenant(name, mttrly_core::Plan::DeploymentCrew, admin, &mttrly_central::secrets::hash(&token))
            .await
            .expect("the second account is created");
        token
    }
}

/// Waits until `central` holds `server_id`'s agent session (10 s at most, else the test fails
/// here, saying so, rather than later on a refused call).
pub(crate) async fn wait_online(central: &RunningCentral, server_id: &str) {
    let id = mttrly_core::ids::ServerId::parse(server_id).expect("a server id");
    for _ in 0..200 {
        if central.central.agents.status(&id, mttrly_central::db::now_ms()).status
            == mttrly_core::tools::common::ConnectionStatus::Online
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the agent of {server_id} never came online");
}

/// Percent-encodes a form or query value (RFC 3986 unreserved characters kept).
pub(crate) fn urlencode(s: &str) -> String {
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

impl Harness {
    /// Posts `alerts` (Alertmanager's alert objects) to central's Alertmanager webhook inside the
    /// envelope Alertmanager sends (payload version 4), with `bearer` as the hook's credential,
    /// and checks central took them.
    pub(crate) async fn post_alertmanager(&self, bearer: &str, status: &str, alerts: serde_json::Value) {
        let hook = serde_json::json!({
            "receiver": "mttrly", "status": status, "alerts": alerts, "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "version": "4", "groupKey": "{}",
            "truncatedAlerts": 0,
        });
        let resp = reqwest::Client::new()
            .post(format!("{}/hooks/alertmanager", self.central.http_url()))
            .bearer_auth(bearer)
            .json(&hook)
            .send()
            .await
            .expect("the webhook answers");
        let code = resp.status();
        assert_eq!(code, 200, "{}", resp.text().await.unwrap_or_default());
    }
}
