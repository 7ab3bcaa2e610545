//! `GET /events`: the live feed of an open dashboard page (server-sent events).
//!
//! Only the signed-in person's account: each event on the bus is checked against it before
//! anything leaves. What is sent is only *which* thing changed (`action` with the action id,
//! `server` with the server id, `investigation` with the investigation id, `output` with the id of
//! a running action that printed something, `resync` after events were missed); the page fetches the facts
//! itself, through the same signed-in pages, so nothing here needs its own rendering or
//! permission rules. The session is looked up again at least once a minute while the feed is
//! open: a signed-out or removed person's feed ends. Comments keep idle connections open through
//! proxies; the feed ends when central stops.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::layout;
use crate::app_state::AppState;
use crate::events::{Event, Next, Payload};
use crate::signin::web::SignedIn;

/// How often the session behind an open feed is checked again.
const RECHECK: Duration = Duration::from_secs(60);
/// How often an idle feed sends a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What a page hears about `event`, if anything: the event name and the id it is about.
fn message(event: &Event) -> Option<(&'static str, String)> {
    match &event.payload {
        Payload::ActionCreated(action) => Some(("action", action.id.to_string())),
        Payload::ActionDecided { action, .. }
        | Payload::ActionExecuted { action, .. }
        | Payload::ActionExpired { action } => Some(("action", action.id.to_string())),
        Payload::AgentOnline | Payload::AgentOffline | Payload::AlertOpened { .. } | Payload::AlertResolved { .. } => {
            event.server_id.as_ref().map(|s| ("server", s.to_string()))
        }
        // The investigations list shows open ones, an investigation's page its state.
        Payload::InvestigationStarted { investigation, .. } | Payload::InvestigationClosed { investigation, .. } => {
            Some(("investigation", investigation.id.to_string()))
        }
        _ => None,
    }
}

/// `GET /events`.
pub(super) async fn events(State(state): State<AppState>, signed: SignedIn, headers: HeaderMap) -> Response {
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(64);
    let mut subscription = state.central.events.subscribe();
    let mut printed = state.central.agents.live_output().subscribe();
    let mut stop = state.central.stopping.get().cloned();
    tokio::spawn(async move {
        let mut checked = Instant::now();
        loop {
            if stop.as_ref().is_some_and(|s| *s.borrow()) {
                return;
            }
            let sse = tokio::select! {
                // The page went away: stop holding a place on the bus.
                () = tx.closed() => return,
                next = async {
                    match stop.as_mut() {
                        Some(stop) => subscription.next_or_stop(stop).await,
                        None => subscription.next().await,
                    }
                } => match next {
                    Next::Closed => return,
                    Next::Lagged(_) => Some(SseEvent::default().event("resync").data("")),
                    Next::Event(event) if event.account_id == signed.account_id => {
                        message(&event).map(|(name, id)| SseEvent::default().event(name).data(id))
                    }
                    Next::Event(_) => None,
                },
                // A running action printed something (not an audited event: it has its own feed).
                heard = printed.recv() => match heard {
                    Ok((account, action)) if account == signed.account_id => {
                        Some(SseEvent::default().event("output").data(action.to_string()))
                    }
                    Ok(_) => None,
                    // Missed some: the page reads everything again.
                    Err(broadcast::error::RecvError::Lagged(_)) => Some(SseEvent::default().event("resync").data("")),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            let Some(sse) = sse else { continue };
            if checked.elapsed() >= RECHECK {
                match crate::signin::web::current(&state, &headers).await {
                    Ok(Some(now)) if now.user_id == signed.user_id => checked = Instant::now(),
                    _ => return,
                }
            }
            if tx.send(Ok(sse)).await.is_err() {
                // The page went away.
                return;
            }
        }
    });
    let mut response =
        Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response();
    layout::secure(response.headers_mut());
    response
}
