//! Agents connected to central, one module per job:
//!
//! - [`registry`]: the handle the rest of central holds ([`registry::AgentRegistry`]); it ties
//!   the connection table to the pending tasks (a closed connection fails its tasks).
//! - `live`: the connection table (who is connected, through which sender, announcing what).
//! - `liveness`: heartbeats, online / offline, the batch of heartbeats to flush.
//! - `deadlines`: when each server is next judged online or offline (a min-heap), so the offline
//!   sweep judges only servers whose status can have changed.
//! - `tasks`: task specs, replies and the table of tasks waiting for an answer.
//! - `dispatch`: `send`, a task down a stream and its answer back, within a deadline.
//! - [`ask`]: the one typed call, `agents.ask::<C>(server, &params, deadline)`.
//! - [`output`]: what running actions printed so far, for pages that follow them live.

pub mod ask;
mod deadlines;
mod dispatch;
mod live;
mod liveness;
pub mod output;
pub mod registry;
mod tasks;

pub(crate) use dispatch::never_dispatched;
