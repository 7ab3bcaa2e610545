//! What every HTML page central serves shares: the page shell with its security headers, escaping
//! and redirects. The OAuth consent page, sign-in, invites and the device page all render through
//! [`page`], so a header policy (no framing, no referrer to other sites, no caching) is set in one place.

pub(crate) mod page;
