//! `mttrly-agent`: the library behind the agent binary that runs on each server.
//!
//! The agent connects *outbound* to central over the `mttrly.agent.v1` stream (it never listens),
//! reports health, and executes only what both central's approval flow and the server owner's
//! local policy allow. The enrollment, channel and capability code arrives here with the issues
//! that build them; this crate has no behaviour yet.
