//! Resources: the playbook catalog, each server's latest status, and the war room's channels and
//! threads, readable by URI.
//!
//! `mttrly://playbooks` is what `mttrly_list_playbooks` returns (the built-in catalog);
//! `mttrly://servers/{server_id}/status` is what `mttrly_get_server_status` returns;
//! `notification://{channel}/recent` is `mttrly_get_notifications` on that channel (the latest
//! 50) and `notification://thread/{thread_id}` is `mttrly_get_thread`. All are fetched through
//! the backend as the caller, so tenancy and the tool surface apply. The war room's resources are
//! the ones a client subscribes to ([`crate::server`]).

use mttrly_core::tools::notify::{ChannelList, NotificationResource};
use mttrly_core::tools::servers::ServerList;
use mttrly_core::{ErrorCode, MttrlyError, ToolId};
use rmcp::model::{Resource, ResourceContents, ResourceTemplate};
use serde_json::json;

use crate::backend::{Backend, Session};

const PLAYBOOKS: &str = "mttrly://playbooks";
const PREFIX: &str = "mttrly://servers/";
const SUFFIX: &str = "/status";

fn uri(server_id: &str) -> String {
    format!("{PREFIX}{server_id}{SUFFIX}")
}

/// One resource per server, when the caller can read server status.
pub(crate) async fn list<B: Backend>(
    backend: &B,
    caller: &B::Caller,
    session: &Session,
) -> Result<Vec<Resource>, MttrlyError> {
    let tools = backend.tools(caller).await?;
    let mut out = Vec::new();
    if tools.contains(&ToolId::ListPlaybooks) {
        out.push(
            Resource::new(PLAYBOOKS, "playbooks")
                .with_title("Playbook catalog")
                .with_description(
                    "Every built-in remediation playbook: id, category, whether it needs approval, parameters.",
                )
                .with_mime_type("application/json"),
        );
    }
    if tools.contains(&ToolId::ListChannels) && tools.contains(&ToolId::GetNotifications) {
        let list: ChannelList =
            serde_json::from_value(backend.call(caller, session, ToolId::ListChannels, json!({})).await?)
                .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("unexpected channel list: {e}")))?;
        out.extend(list.channels.iter().map(|c| {
            Resource::new(NotificationResource::channel_uri(&c.channel), format!("{}-recent", c.channel))
                .with_title(format!("#{} notifications", c.channel))
                .with_description(format!(
                    "The latest notifications of #{} ({} in all). Subscribe to be told when one arrives.",
                    c.channel, c.notifications
                ))
                .with_mime_type("application/json")
        }));
    }
    if !tools.contains(&ToolId::ListServers) || !tools.contains(&ToolId::GetServerStatus) {
        return Ok(out);
    }
    let list: ServerList = serde_json::from_value(backend.call(caller, session, ToolId::ListServers, json!({})).await?)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("unexpected server list: {e}")))?;
    out.extend(list.servers.iter().map(|s| {
        Resource::new(uri(s.server_id.as_str()), format!("{}-status", s.name))
            .with_title(format!("{} status", s.name))
            .with_description(format!(
                "Latest status of {} ({}): host, metrics and open alerts.",
                s.name, s.environment
            ))
            .with_mime_type("application/json")
    }));
    Ok(out)
}

/// The war room's resource templates, when the caller can read channels.
pub(crate) async fn templates<B: Backend>(
    backend: &B,
    caller: &B::Caller,
) -> Result<Vec<ResourceTemplate>, MttrlyError> {
    let tools = backend.tools(caller).await?;
    let mut out = Vec::new();
    if tools.contains(&ToolId::GetNotifications) {
        out.push(
            ResourceTemplate::new(NotificationResource::CHANNEL_TEMPLATE, "channel-recent")
                .with_title("A channel's latest notifications")
                .with_description("The latest 50 notifications of a channel, oldest first; subscribe for updates.")
                .with_mime_type("application/json"),
        );
    }
    if tools.contains(&ToolId::GetThread) {
        out.push(
            ResourceTemplate::new(NotificationResource::THREAD_TEMPLATE, "thread")
                .with_title("A thread")
                .with_description("Every notification of a thread, root first; subscribe for updates.")
                .with_mime_type("application/json"),
        );
    }
    Ok(out)
}

/// Reads one resource.
pub(crate) async fn read<B: Backend>(
    backend: &B,
    caller: &B::Caller,
    session: &Session,
    uri_: &str,
) -> Result<ResourceContents, MttrlyError> {
    if uri_ == PLAYBOOKS {
        let catalog = backend.call(caller, session, ToolId::ListPlaybooks, json!({})).await?;
        let text = serde_json::to_string_pretty(&catalog).unwrap_or_default();
        return Ok(ResourceContents::text(text, uri_).with_mime_type("application/json"));
    }
    if let Some(resource) = NotificationResource::parse(uri_) {
        let answer = match &resource {
            NotificationResource::Channel(c) => {
                backend.call(caller, session, ToolId::GetNotifications, json!({ "channel": c.as_str() })).await?
            }
            NotificationResource::Thread(t) => {
                backend.call(caller, session, ToolId::GetThread, json!({ "thread_id": t.as_str() })).await?
            }
        };
        let text = serde_json::to_string_pretty(&answer).unwrap_or_default();
        return Ok(ResourceContents::text(text, uri_).with_mime_type("application/json"));
    }
    let Some(server_id) = uri_.strip_prefix(PREFIX).and_then(|rest| rest.strip_suffix(SUFFIX)) else {
        return Err(MttrlyError::new(
            ErrorCode::NotFound,
            format!(
                "unknown resource `{uri_}`: resources are {PLAYBOOKS}, mttrly://servers/{{server_id}}/status, {} and {}",
                NotificationResource::CHANNEL_TEMPLATE,
                NotificationResource::THREAD_TEMPLATE
            ),
        ));
    };
    let status = backend.call(caller, session, ToolId::GetServerStatus, json!({ "server_id": server_id })).await?;
    let text = serde_json::to_string_pretty(&status).unwrap_or_default();
    Ok(ResourceContents::text(text, uri_).with_mime_type("application/json"))
}
