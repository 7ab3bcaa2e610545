//! Central's HTTP surface. Today: `/healthz`. (`/mcp` and OAuth mount here when they land.)

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::state::Central;

/// The HTTP router.
pub fn router(central: Arc<Central>) -> Router {
    Router::new().route("/healthz", get(healthz)).with_state(central)
}

async fn healthz(State(central): State<Arc<Central>>) -> Json<Value> {
    Json(json!({ "status": "ok", "agents_connected": central.agents.connected() }))
}
