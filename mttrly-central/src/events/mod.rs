//! The event bus: every audited event, published once, after its row is durable.
//!
//! Producers hand the audit log a [`Recorded`] (the audit row plus a typed [`Payload`]); the audit
//! writer commits a batch and then publishes one [`Event`] per row on the [`Bus`], in chain order,
//! so publish order is audit order per account and a subscriber can read the row it is told
//! about. Subscribers (the approval prompt notifier, the action log lines, and later the
//! dashboard's live view, MCP resource subscriptions and chat channels) each read at their own
//! pace: publishing never waits for them, and one that falls behind is told how much it missed
//! ([`Next::Lagged`]) and resyncs from the audit log.

mod bus;
mod event;
pub mod log;

pub use bus::{Bus, DEFAULT_CAPACITY, Next, Subscription};
pub use event::{ActionRef, AlertRef, Decision, Event, InvestigationEnd, InvestigationRef, Payload, Recorded};
