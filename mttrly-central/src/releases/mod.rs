//! Signed agent releases on central (issue 16): publishing and listing them ([`publish`]), the
//! binaries content-addressed under the data directory ([`store`]), choosing one for an update
//! action ([`pick`]), streaming its binary to the agent running that action ([`serve`]), and
//! following the update through the agent's restart to its verdict ([`follow`]).
//!
//! Central checks everything about a release except the root's signature
//! (`mttrly_core::release::verify_unrooted`): which roots to trust is the server owner's word, in
//! the policy file on the host, and the agent checks the whole chain again before staging.

pub mod follow;
pub mod pick;
pub mod publish;
pub mod serve;
pub mod store;

use mttrly_core::release::ReleaseVersion;

/// This central's version, which a manifest's `min_central` is compared with.
pub const CENTRAL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// This central's version, parsed.
pub fn central_version() -> Option<ReleaseVersion> {
    CENTRAL_VERSION.parse().ok()
}

/// The release target of a host whose agent reported `arch` (agents run on Linux only: they are
/// installed as systemd services), spelled as `mttrly_core::release::this_target` spells it.
pub fn target_of(arch: &str) -> String {
    format!("{arch}-linux")
}
