//! The admin page's markup: one section per kind of fact, each a table inside `div.scroll` (the
//! only part of a phone-width page that may scroll sideways). Every name, e-mail, client name and
//! chat label was chosen by someone else and goes through `display::text` before maud escapes it.

use axum::http::StatusCode;
use maud::{Markup, html};
use mttrly_core::approval::SecondFactor;
use mttrly_core::{ChatProvider, MttrlyError, display};

use super::Done;
use super::gather::{Facts, Person};
use crate::approvals::{self, EffectiveRule};
use crate::dashboard::show;
use crate::db::accounts::TokenRow;
use crate::web::page::urlencode;

/// What the page says above its facts.
#[derive(Default)]
pub(super) enum Notice {
    /// Nothing.
    #[default]
    None,
    /// A credential was revoked (its public id).
    Revoked(String),
    /// A chat link was removed: the provider, whose it was.
    Unlinked(ChatProvider, String),
    /// A button was refused: the status and the app's words.
    Refused(StatusCode, MttrlyError),
}

impl Notice {
    /// The page's status: a refusal's, else 200.
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Self::Refused(status, _) => *status,
            _ => StatusCode::OK,
        }
    }
}

/// The notice a redirect's query asks for. Only well-formed values are echoed (a public id's
/// alphabet, a user name, a known provider): a crafted link cannot make the page say anything
/// else.
pub(super) fn notice(done: &Done) -> Notice {
    if let Some(id) = done.revoked.as_deref().filter(|id| public_id(id)) {
        return Notice::Revoked(id.to_owned());
    }
    if let (Some(provider), Some(of)) = (done.unlinked.as_deref(), done.of.as_deref())
        && let (Ok(provider), Ok(())) = (provider.parse::<ChatProvider>(), crate::users::check_name(of))
    {
        return Notice::Unlinked(provider, of.to_owned());
    }
    Notice::None
}

/// The shape of a credential's public id: `tkn_…` or `oauth_…`, then letters, digits, `-`, `_`.
fn public_id(id: &str) -> bool {
    let rest = id.strip_prefix("tkn_").or_else(|| id.strip_prefix("oauth_"));
    rest.is_some_and(|r| {
        !r.is_empty() && r.len() <= 100 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The whole page.
pub(super) fn page(facts: &Facts, csrf: &str, notice: &Notice) -> Markup {
    html! {
        h1 { "Admin" }
        @match notice {
            Notice::None => {},
            // The notice comes from a link anyone could craft: it is said only when the
            // credential is indeed no longer live, and the opposite is said when it is.
            Notice::Revoked(id) if facts.tokens.iter().chain(&facts.grants).any(|t| &t.id == id) => {
                p.err role="alert" data-keep { (id) " is NOT revoked: it still works. Revoke it below." }
            },
            Notice::Revoked(id) => p.notice.done role="status" data-keep {
                "Revoked " code { (id) } ": it stops working at once, open sessions included."
            },
            Notice::Unlinked(provider, of) => p.notice.done role="status" data-keep {
                "Unlinked " (display::text(of)) "'s " (provider.display_name()) " account."
            },
            Notice::Refused(_, e) => p.err role="alert" data-keep { "Refused: " (e.message()) },
        }
        nav.admin-toc aria-label="Sections" {
            a href="#people" { "People" } a href="#invites" { "Invites" } a href="#tokens" { "Tokens" }
            a href="#grants" { "OAuth grants" } a href="#links" { "Chat links" } a href="#rules" { "Approval rules" }
        }
        (people(&facts.people, facts.uses_second_factors))
        (invites(facts))
        (tokens(&facts.tokens, csrf))
        (grants(facts, csrf))
        (links(facts, csrf))
        (rules(&facts.rules))
    }
}

/// How a person signs in, in words.
fn sign_in(p: &Person) -> &'static str {
    let e = &p.entry;
    match (e.has_sso, e.has_password && e.has_second_factor, e.has_password) {
        (true, true, _) => "SSO, or password + TOTP",
        (true, false, _) => "SSO",
        (false, true, _) => "password + TOTP",
        (false, false, true) => "password (no second factor yet)",
        (false, false, false) if p.invited => "invited, not signed in yet",
        (false, false, false) => "API token only",
    }
}

fn people(people: &[Person], uses_second_factors: bool) -> Markup {
    html! {
        section #people {
            h2 { "People" }
            p.hint {
                @if uses_second_factors {
                    "This account uses second factors: adding admins or token users, raising to admin, re-inviting, \
                     and lowering or removing an admin who has one need your fresh code (" code { "mttrly-cli users" } ")."
                } @else {
                    "No admin has a second factor yet, so people changes need no code (" code { "mttrly-cli users" } ")."
                }
                " Removed people stay listed, marked removed: the audit log still names them."
            }
            div.scroll {
                table.admin.people {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "E-mail" } th scope="col" { "Role" }
                        th scope="col" { "Signs in with" } th scope="col" { "Second factor" }
                        th scope="col" { "Added" } th scope="col" { "Added by" } th scope="col" { "State" }
                    } }
                    tbody {
                        @for p in people {
                            @let u = &p.entry.user;
                            tr.removed[p.entry.removed_at.is_some()] {
                                th scope="row" { (display::text(&u.name)) }
                                td { @if let Some(email) = &u.email { (display::text(email)) } @else { span.empty { "—" } } }
                                td { (u.role.as_str()) }
                                td { (sign_in(p)) }
                                td { @if p.entry.has_second_factor { "yes" } @else { span.warn { "no" } } }
                                td { (show::time(u.created_at)) }
                                td { @if let Some(by) = &p.introduced_by { (display::text(by)) } @else { span.empty { "—" } } }
                                td {
                                    @if let Some(at) = p.entry.removed_at { span.err { "removed " } (show::time(at)) }
                                    @else { "active" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn invites(facts: &Facts) -> Markup {
    html! {
        section #invites {
            h2 { "Open invites" }
            @if facts.invites.is_empty() {
                p.empty { "No invite link is open. " code { "mttrly-cli users add NAME" } " makes one." }
            } @else {
                p.hint { "Each link was shown once, to the admin who made it; only its hash is kept." }
                div.scroll {
                    table.admin.invites {
                        thead { tr { th scope="col" { "For" } th scope="col" { "Role" } th scope="col" { "Made" } th scope="col" { "Expires" } } }
                        tbody {
                            @for i in &facts.invites {
                                tr {
                                    th scope="row" { (display::text(&i.name)) }
                                    td { (i.role.as_str()) }
                                    td { (show::time(i.created_at)) }
                                    td { (show::expiry(i.expires_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A token's reach: `all tools`, or how it was narrowed.
fn scope(t: &TokenRow) -> String {
    let mut parts = Vec::new();
    if t.scope.read_only {
        parts.push("read-only".to_owned());
    }
    if let Some(toolsets) = t.scope.toolsets_flag() {
        parts.push(format!("toolsets {toolsets}"));
    }
    if parts.is_empty() { "all tools".to_owned() } else { parts.join(", ") }
}

/// When, or a dash.
fn maybe_time(ms: Option<i64>, none: &'static str) -> Markup {
    html! { @if let Some(ms) = ms { (show::time(ms)) } @else { span.empty { (none) } } }
}

/// The Revoke button of credential `id`, labelled for a screen reader with what it revokes.
fn revoke_button(id: &str, what: &str, csrf: &str) -> Markup {
    html! {
        form.inline.revoke method="post" action=(format!("/admin/tokens/{}/revoke", urlencode(id))) {
            input type="hidden" name="csrf" value=(csrf);
            button.revoke type="submit" aria-label=(format!("Revoke {what}")) { "Revoke" }
        }
    }
}

fn tokens(tokens: &[TokenRow], csrf: &str) -> Markup {
    html! {
        section #tokens {
            h2 { "API tokens" }
            @if tokens.is_empty() {
                p.empty { "No live API token." }
            } @else {
                p.hint { "Revoking needs no code: it only takes power away, and it is the fast answer to a leak. It works at once, open sessions included." }
                div.scroll {
                    table.admin.tokens {
                        thead { tr {
                            th scope="col" { "Id" } th scope="col" { "Kind" } th scope="col" { "Owner" }
                            th scope="col" { "Name" } th scope="col" { "Scope" } th scope="col" { "Created" }
                            th scope="col" { "Last used" } th scope="col" { "Expires" } th scope="col" { span.visually-hidden { "Revoke" } }
                        } }
                        tbody {
                            @for t in tokens {
                                tr #(format!("token-{}", t.id)) {
                                    th scope="row" { code { (t.id) } }
                                    td { (t.kind.as_str()) }
                                    td { (display::text(&t.owner_name)) }
                                    td { @if let Some(name) = &t.name { (display::text(name)) } @else { span.empty { "—" } } }
                                    td { (scope(t)) }
                                    td { (maybe_time(t.created_at, "unknown")) }
                                    td { (maybe_time(t.last_used_at, "never")) }
                                    td { "never" }
                                    td { (revoke_button(&t.id, &format!("token {} of {}", t.id, display::text(&t.owner_name)), csrf)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn grants(facts: &Facts, csrf: &str) -> Markup {
    html! {
        section #grants {
            h2 { "OAuth grants" }
            @if facts.grants.is_empty() {
                p.empty { "No live OAuth grant." }
            } @else {
                div.scroll {
                    table.admin.grants {
                        thead { tr {
                            th scope="col" { "Client" } th scope="col" { "User" } th scope="col" { "Scope" }
                            th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Ends" }
                            th scope="col" { span.visually-hidden { "Revoke" } }
                        } }
                        tbody {
                            @for g in &facts.grants {
                                @let client = g.name.as_deref().map_or_else(|| "unnamed client".into(), display::text);
                                tr #(format!("grant-{}", g.id)) {
                                    th scope="row" { (client) br; code.id { (g.id) } }
                                    td { (display::text(&g.owner_name)) }
                                    td { (scope(g)) }
                                    td { (maybe_time(g.created_at, "unknown")) }
                                    td { (maybe_time(g.last_used_at, "never")) }
                                    td { (maybe_time(facts.grant_ends.get(&g.id).copied(), "—")) }
                                    td { (revoke_button(&g.id, &format!("grant {} to {client} for {}", g.id, display::text(&g.owner_name)), csrf)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn links(facts: &Facts, csrf: &str) -> Markup {
    html! {
        section #links {
            h2 { "Linked chat accounts" }
            @if facts.links.is_empty() {
                p.empty { "Nobody has linked a chat account (" code { "mttrly-cli users link telegram" } ")." }
            } @else {
                p.hint { "A linked account decides as its person. Unlinking needs no code, as revoking a token does." }
                div.scroll {
                    table.admin.links {
                        thead { tr {
                            th scope="col" { "User" } th scope="col" { "Service" } th scope="col" { "Chat account" }
                            th scope="col" { "Linked" } th scope="col" { span.visually-hidden { "Unlink" } }
                        } }
                        tbody {
                            @for (name, link) in &facts.links {
                                tr {
                                    th scope="row" { (display::text(name)) }
                                    td { (link.provider.display_name()) }
                                    td { (display::text(&link.label)) " " span.empty { "(" (display::text(&link.external_id)) ")" } }
                                    td { (show::time(link.linked_at)) }
                                    td {
                                        form.inline.unlink method="post" action="/admin/links/unlink" {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="user" value=(name);
                                            input type="hidden" name="provider" value=(link.provider.as_str());
                                            button.revoke type="submit"
                                                aria-label=(format!("Unlink {}'s {} account", display::text(name), link.provider.display_name())) { "Unlink" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a rule asks, in words: approvals, from whom, four eyes, second factor, how long.
fn asks(rule: &mttrly_core::approval::ApprovalRule) -> String {
    let approvals = if rule.quorum == 1 { "1 approval".to_owned() } else { format!("{} approvals", rule.quorum) };
    let eyes = if approvals::solo_mode(rule) {
        "the requester may approve their own, with a fresh code (solo mode)"
    } else if rule.requester_may_approve {
        "the requester may approve their own (no four eyes)"
    } else {
        "from someone other than the requester (four eyes)"
    };
    let factor = match rule.second_factor {
        SecondFactor::Totp => "each with a fresh TOTP code",
        SecondFactor::None => "no second factor",
    };
    format!("{approvals} by {} {eyes}; {factor}; waits {} min", rule.approvers.describe(), rule.ttl.as_secs() / 60)
}

fn channels(list: &[mttrly_core::Source]) -> String {
    if list.is_empty() { "none".to_owned() } else { list.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ") }
}

fn rules(rules: &[EffectiveRule]) -> Markup {
    html! {
        section #rules {
            h2 { "Approval rules" }
            p.hint { "The effective rule of each scope, and whether this team can meet it now (the same judgement as " code { "mttrly-cli policy approvals" } ")." }
            div.scroll {
                table.admin.rules {
                    thead { tr {
                        th scope="col" { "Environment" } th scope="col" { "Scope" } th scope="col" { "Asks" }
                        th scope="col" { "Channels" } th scope="col" { "Can be met now" }
                    } }
                    tbody {
                        @for r in rules {
                            tr.infeasible[r.infeasible.is_some()] {
                                th scope="row" { (approvals::scope_environment(&r.scope).as_str()) }
                                td { code { (display::text(&r.scope.to_string())) } }
                                td { (asks(&r.rule)) }
                                td {
                                    (channels(&r.rule.channels))
                                    @if r.usable_channels.len() != r.rule.channels.len() {
                                        br; span.warn { "here: " (channels(&r.usable_channels)) }
                                    }
                                }
                                td {
                                    @if let Some(why) = &r.infeasible { span.err { "no: " } (display::text(&why.to_string())) }
                                    @else { span.ok { "yes" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_notices_are_echoed() {
        let done = |revoked: Option<&str>, unlinked: Option<&str>, of: Option<&str>| Done {
            revoked: revoked.map(str::to_owned),
            unlinked: unlinked.map(str::to_owned),
            of: of.map(str::to_owned),
        };
        assert!(matches!(notice(&done(Some("tkn_0a1b"), None, None)), Notice::Revoked(id) if id == "tkn_0a1b"));
        assert!(matches!(notice(&done(Some("oauth_a-b_c"), None, None)), Notice::Revoked(_)));
        for bad in ["tkn_", "call 555 now", "tkn_<b>", "x_tkn_1", &format!("tkn_{}", "a".repeat(101))] {
            assert!(matches!(notice(&done(Some(bad), None, None)), Notice::None), "{bad}");
        }
        assert!(
            matches!(notice(&done(None, Some("telegram"), Some("bob"))), Notice::Unlinked(ChatProvider::Telegram, n) if n == "bob")
        );
        assert!(matches!(notice(&done(None, Some("fax"), Some("bob"))), Notice::None));
        assert!(matches!(notice(&done(None, Some("slack"), Some("bob smith"))), Notice::None));
    }
}
