//! The approver's diff of a pending file write (issue 14: "a unified diff for file writes"): the
//! bytes the action would write (its stored payload, bound by the content's SHA-256) against what
//! the managed file holds now, asked from the server's agent (`file.current`, under the write's
//! own path rules). Both sides are masked by the same redactor, so an unchanged secret line reads
//! the same on both sides (no false change) and no secret is ever shown; what runs is still bound
//! by the hash, never by this picture of it.
//!
//! The page must never wait on an agent: each ask has a short deadline ([`ASK_DEADLINE`]), the
//! writes of one page are asked concurrently, and a server that cannot answer (offline, too old
//! to offer `file.current`, refusing the path) is named with the reason, and the new content is
//! shown alone, masked, as added lines. Every line goes through `display::exact`, so an escape
//! sequence, a CR or a bidi override in a file is shown as a visible escape, never acted on.
//!
//! Who sees it: the current side is the server's file content, which only people who decide on
//! actions may read here ([`may_see_file`]); anyone else gets the new content's size and SHA-256
//! and a line saying why there is no diff, and no agent is asked and no payload read for them.
//! Both pages that show diffs (the pending list and the action's page, which the live refresh
//! fetches again) build them only here, so the rule holds for every way a diff reaches a browser;
//! the live feed carries ids only, and the audit exports never hold a file's content.
//!
//! How often: each page shows at most [`MAX_DIFFS`] diffs, and an agent's answer is kept for
//! [`FRESH`] per (account, server, path, action) ([`Readings`]), one ask in flight per key, so a
//! live refresh shows the same reading instead of asking the agent again; the page says how old
//! the reading is. What runs is still the new content, bound by its hash, whatever the reading.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use maud::{Markup, html};
use mttrly_core::action::{ActionContent, ActionState};
use mttrly_core::capability::{FileCurrent, FileCurrentParams, FileCurrentText};
use mttrly_core::ids::{AccountId, ActionId, ServerId};
use mttrly_core::redactor::{env_values, redact};
use mttrly_core::tools::common::ServerPath;
use mttrly_core::{ErrorCode, MttrlyError, Role, display};
use similar::{ChangeTag, TextDiff};

use crate::db::actions::ActionRow;
use crate::state::Central;

/// How long one page waits for an agent's `file.current`.
pub(super) const ASK_DEADLINE: Duration = Duration::from_secs(3);

/// The most diffs one page shows (and so the most agents it asks about a current file): each may be [`MAX_SHOWN_BYTES`] of text and costs a
/// payload read, and the pending page is fetched again on every live refresh. The others link to
/// their action's own page, which shows its diff whole.
const MAX_DIFFS: usize = 10;

/// The most diff lines shown; a longer diff says how many were left out, never silently.
const MAX_LINES: usize = 20_000;
/// The most text one diff shows (after escaping: a control character shows as several). Lines
/// alone do not bound it: a megabyte of control characters would be a few lines of megabytes,
/// and the pending page holds many diffs.
const MAX_SHOWN_BYTES: usize = 256 * 1024;

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// How long computing one diff may take before `similar` settles for a less minimal (still
/// correct) one.
const DIFF_TIMEOUT: Duration = Duration::from_millis(500);

/// The label every diff carries.
pub(super) const MASKED: &str = "Secrets masked on both sides; what runs is bound by the SHA-256 above.";

/// The write an action carries, as the page shows it.
#[derive(Debug, Clone)]
pub(super) struct Write {
    /// The managed path, as the assistant named it.
    pub path: String,
    /// The new content's SHA-256 (bound by the action's content hash).
    pub sha256: String,
    /// The new content's size.
    pub size_bytes: u64,
}

/// The current side: what the agent answered, or why there is none.
#[derive(Debug, Clone)]
pub(super) enum Current {
    /// The agent's answer, masked on the host and again by central.
    Read(FileCurrentText),
    /// Not asked or not answered, with the reason shown to the human.
    Unknown(String),
}

/// Whether a person with `role` may see a file write's diff: its current side is the server's
/// file content. Those who decide on actions (they approve or reject what is written over it)
/// may; a viewer reads only. Listed role by role, so a new role sees nothing until it is added.
pub(super) const fn may_see_file(role: Role) -> bool {
    match role {
        Role::Admin | Role::Operator => true,
        Role::Viewer => false,
    }
}

/// How long an agent's `file.current` answer is shown again instead of asking it again: the
/// pending page is fetched again on every live refresh, and each ask is a round trip to the
/// server and a read of up to [`FileCurrentText::MAX_BYTES`] there.
pub(super) const FRESH: Duration = Duration::from_secs(20);

/// The most answers kept at once (each may hold [`FileCurrentText::MAX_BYTES`] of text); past it
/// a page asks without keeping the answer.
const MAX_KEPT: usize = 256;

/// Whose answer: the account, the server, the managed path, and the action that writes it.
type Key = (AccountId, ServerId, String, ActionId);

/// One kept answer: when it was asked for, and the answer (once it came; waited on by every
/// page that wants it meanwhile).
type Kept = (Instant, Arc<tokio::sync::OnceCell<Reading>>);

/// An agent's answer and when it came.
#[derive(Debug, Clone)]
pub(super) struct Reading {
    /// What it said.
    pub current: Current,
    /// When.
    pub at: Instant,
}

/// Recent `file.current` answers ([`FRESH`]), one ask in flight per key: concurrent pages wait
/// for the same answer.
#[derive(Default)]
pub(crate) struct Readings {
    kept: Mutex<HashMap<Key, Kept>>,
}

impl Readings {
    /// The reading for `key`: a kept one younger than [`FRESH`], else a new ask.
    async fn read(&self, central: &Central, key: Key) -> Reading {
        let cell = {
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            // An ask ends within ASK_DEADLINE, well inside FRESH: nothing removed here is awaited
            // by anyone for long, and whoever awaits it still gets its answer.
            kept.retain(|_, (since, _)| now.duration_since(*since) < FRESH);
            if let Some((_, cell)) = kept.get(&key) {
                Arc::clone(cell)
            } else {
                let cell = Arc::new(tokio::sync::OnceCell::new());
                if kept.len() < MAX_KEPT {
                    kept.insert(key.clone(), (now, Arc::clone(&cell)));
                }
                cell
            }
        };
        let (_, server, path, _) = key;
        cell.get_or_init(|| async { Reading { current: ask(central, &server, &path).await, at: Instant::now() } })
            .await
            .clone()
    }
}

/// Fills `diffs[i]` for every file write among `actions` (the rest stay `None`) as `role` may see
/// it ([`may_see_file`]), asking the agents concurrently, each within [`ASK_DEADLINE`], or
/// reusing a recent answer ([`Readings`]). Only pending writes are compared with the file: once
/// decided, the file may already hold the new content, so the new content is shown alone.
pub(super) async fn for_actions(
    central: &Arc<Central>,
    readings: &Arc<Readings>,
    account: &AccountId,
    role: Role,
    actions: &[&ActionRow],
) -> Vec<Option<Markup>> {
    let mut diffs: Vec<Option<Markup>> = actions.iter().map(|_| None).collect();
    let mut jobs = tokio::task::JoinSet::new();
    let mut shown = 0usize;
    for (i, a) in actions.iter().enumerate() {
        let ActionContent::FileWrite { path, sha256, size_bytes } = &a.content else { continue };
        let write = Write { path: path.clone(), sha256: sha256.clone(), size_bytes: *size_bytes };
        if !may_see_file(role) {
            diffs[i] = Some(withheld(&write));
            continue;
        }
        shown += 1;
        if shown > MAX_DIFFS {
            diffs[i] = Some(html! {
                p.cut {
                    "More than " (MAX_DIFFS) " file writes are on this page, so this one's diff is not shown here: "
                    a href=(super::action_path(&a.id)) { "open the action's page" } " to see it whole."
                }
            });
            continue;
        }
        let ask = (a.status != ActionState::PendingApproval).then(|| {
            "This action is no longer pending, so the file was not compared with it: the new content alone, masked, as added lines.".to_owned()
        });
        let key = (account.clone(), a.server_id.clone(), path.clone(), a.id.clone());
        let (central, readings) = (Arc::clone(central), Arc::clone(readings));
        jobs.spawn(async move { (i, one(&central, &readings, key, write, ask).await) });
    }
    while let Some(done) = jobs.join_next().await {
        match done {
            Ok((i, markup)) => diffs[i] = Some(markup),
            Err(e) => tracing::warn!(error = %e, "a file write's diff task failed"),
        }
    }
    diffs
}

/// What someone who may not see the file gets instead of the diff: the new content's facts,
/// which the action's content shows anyway, and why there is no more.
fn withheld(w: &Write) -> Markup {
    html! {
        section.filediff {
            h3 { "Changes to " code { (display::exact(&w.path)) } }
            dl.filefacts {
                dt { "After the write" } dd { (w.size_bytes) " bytes, SHA-256 " code.hash { (w.sha256) } }
            }
            p.why {
                "The diff is not shown to you: it shows the file's current content from the server, which only "
                "people who decide on actions (admins and operators) see here, and your role is viewer."
            }
        }
    }
}

/// One write's diff: its payload from the database, the current file from the agent or a recent
/// reading (unless `skip` says why not), the diff computed off the runtime.
async fn one(central: &Central, readings: &Readings, key: Key, write: Write, skip: Option<String>) -> Markup {
    let (account, _, _, id) = &key;
    let payload = central.db.account(account).actions().payload(id).await;
    let new = match payload {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, action = %id, "cannot load a file write's payload");
            None
        }
    };
    let (current, asked) = if let Some(why) = skip {
        (Current::Unknown(why), None)
    } else {
        let reading = readings.read(central, key).await;
        (reading.current, Some(reading.at.elapsed()))
    };
    let shown = write.clone();
    tokio::task::spawn_blocking(move || render(&write, new.as_deref(), &current, asked))
        .await
        .unwrap_or_else(|_| {
            html! { section.filediff { p.why { "The diff of `" (display::exact(&shown.path)) "` could not be computed." } } }
        })
}

/// Asks the server's agent for the current file, within [`ASK_DEADLINE`] whatever happens.
async fn ask(central: &Central, server: &ServerId, path: &str) -> Current {
    let Ok(path) = ServerPath::new(path) else {
        return Current::Unknown("the path is not one an agent reads.".to_owned());
    };
    let params = FileCurrentParams { path };
    let asked = central.agents.ask::<FileCurrent>(server, &params, ASK_DEADLINE);
    match tokio::time::timeout(ASK_DEADLINE, asked).await {
        Ok(Ok(current)) => Current::Read(current),
        Ok(Err(e)) => Current::Unknown(unavailable(&e)),
        Err(_) => Current::Unknown(format!("the server's agent did not answer within {} s.", ASK_DEADLINE.as_secs())),
    }
}

/// Why the current file is not shown, in words for the approver.
fn unavailable(e: &MttrlyError) -> String {
    let said = display::text(e.message());
    match e.code() {
        ErrorCode::ServerOffline => "the server's agent is offline.".to_owned(),
        ErrorCode::ContractVersionUnsupported => {
            format!("the server's agent is too old to show the current file ({said}).")
        }
        ErrorCode::Timeout => format!("the server's agent did not answer within {} s.", ASK_DEADLINE.as_secs()),
        ErrorCode::PolicyDenied | ErrorCode::ValidationError => {
            format!("the server's agent refused to read it ({said}); it will refuse the write the same way.")
        }
        _ => format!("the server's agent could not read it ({said})."),
    }
}

/// The new content masked exactly as the current one was: the agent's pass (the generic rules,
/// then the key-based pass of a managed env file), then central's second pass over every agent
/// answer (`agents::ask`). `env_file` unknown (no answer) masks as an env file: over-masking a
/// `KEY_PATH=` line is safe, showing a short `DB_PASS=x` is not.
fn mask(new: &str, env_file: bool) -> String {
    let host = redact(new).text;
    let host = if env_file { env_values(&host).0 } else { host.into_owned() };
    redact(&host).text.into_owned()
}

/// The whole section for one write.
/// `asked`: how long ago the agent was asked for `current` (`None`: it was not asked).
pub(super) fn render(w: &Write, new: Option<&[u8]>, current: &Current, asked: Option<Duration>) -> Markup {
    let path = display::exact(&w.path);
    html! {
        section.filediff {
            h3 { "Changes to " code { (path) } }
            p.masked { (MASKED) }
            dl.filefacts {
                dt { "After the write" } dd { (w.size_bytes) " bytes, SHA-256 " code.hash { (w.sha256) } }
                @if let Current::Read(c) = current {
                    dt { "Now" } dd { (now(c, w)) }
                }
                @if let Some(age) = asked {
                    dt { "Asked the agent" } dd { (ago(age)) }
                }
            }
            (body(w, new, current))
        }
    }
}

/// How old a reading is, saying that the diff is against it and when it is read again.
fn ago(age: Duration) -> String {
    let when = match age.as_secs() {
        0 => "just now".to_owned(),
        s => format!("{s} s ago"),
    };
    format!(
        "{when}: the diff is against the file as the agent reported it then (asked again once the answer is {} s old);          the write replaces the whole file with the new content above, whatever it holds by then.",
        FRESH.as_secs()
    )
}

/// The current file's facts, in a line. Its raw SHA-256 is never shown: beside its masked text,
/// the hash of the raw bytes would let anyone reading the page test guesses of a short masked
/// secret offline. Only whether it equals the write's new content is said.
fn now(c: &FileCurrentText, w: &Write) -> Markup {
    html! {
        @if !c.exists {
            "does not exist"
        } @else {
            (c.size_bytes) " bytes"
            @match &c.sha256 {
                Some(sha) if sha.eq_ignore_ascii_case(&w.sha256) => ", the same bytes as after the write",
                Some(_) => ", different bytes from after the write",
                None => "",
            }
        }
    }
}

fn body(w: &Write, new: Option<&[u8]>, current: &Current) -> Markup {
    let path = display::exact(&w.path);
    let Some(new) = new else {
        return html! { p.why { "The new content is not stored with this action: only its size and SHA-256 are known." } };
    };
    let Some(new_text) = FileCurrentText::text_of(new) else {
        return html! { p.why { "The new content is not text (not UTF-8, or it holds NUL bytes): no diff. Compare the sizes and SHA-256s." } };
    };
    let c = match current {
        Current::Unknown(why) => {
            return html! {
                p.why { "The current file is not shown: " (why) " The new content alone, masked, as added lines:" }
                (unified(&format!("{path} (current content unknown)"), "", &format!("{path} (after the write)"), &mask(new_text, true)))
            };
        }
        Current::Read(c) => c,
    };
    if c.sha256.as_deref() == Some(w.sha256.as_str()) {
        return html! { p.same { "No change: the current file's SHA-256 equals the new content's. The write leaves the same bytes." } };
    }
    if c.binary {
        return html! { p.why { "The current file is not text (not UTF-8, or it holds NUL bytes): no diff. Compare the sizes and SHA-256s." } };
    }
    if c.truncated {
        return html! {
            p.why {
                "The current file is " (c.size_bytes) " bytes, more than the " (FileCurrentText::MAX_BYTES)
                " bytes read for a diff: it is not compared, and the write replaces it whole. The new content alone, masked, as added lines:"
            }
            (unified(&format!("{path} (now, not read)"), "", &format!("{path} (after the write)"), &mask(new_text, c.env_file)))
        };
    }
    let masked_new = mask(new_text, c.env_file);
    if !c.exists {
        return html! {
            p.why { "The file does not exist yet: the write creates it. Every line is added:" }
            (unified("/dev/null", "", &format!("{path} (after the write)"), &masked_new))
        };
    }
    let old = c.content.as_deref().unwrap_or_default();
    if old == masked_new {
        return html! {
            p.same {
                "No visible change: the SHA-256s differ, but the two read the same once masked; the difference is inside a masked secret."
            }
        };
    }
    unified(&format!("{path} (now)"), old, &format!("{path} (after the write)"), &masked_new)
}

/// A unified diff, line by line, each line through `display::exact`, in a box that scrolls
/// sideways and down on its own (the page never does). Cut at [`MAX_LINES`], saying so.
fn unified(old_name: &str, old: &str, new_name: &str, new: &str) -> Markup {
    let diff = TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(old, new);
    let mut lines: Vec<(&'static str, String)> =
        vec![("file", format!("--- {old_name}")), ("file", format!("+++ {new_name}"))];
    let mut total = lines.len();
    let mut bytes = 0usize;
    let mut push = |lines: &mut Vec<(&'static str, String)>, total: usize, class: &'static str, line: String| {
        if total <= MAX_LINES && bytes <= MAX_SHOWN_BYTES {
            bytes += line.len();
            lines.push((class, line));
        }
    };
    for hunk in diff.unified_diff().context_radius(CONTEXT).iter_hunks() {
        total += 1;
        push(&mut lines, total, "hunk", hunk.header().to_string());
        for change in hunk.iter_changes() {
            let (class, sign) = match change.tag() {
                ChangeTag::Delete => ("del", '-'),
                ChangeTag::Insert => ("ins", '+'),
                ChangeTag::Equal => ("ctx", ' '),
            };
            let value = change.value();
            let line = value.strip_suffix('\n').unwrap_or(value);
            total += 1;
            push(&mut lines, total, class, format!("{sign}{}", display::exact(line)));
            if change.missing_newline() {
                total += 1;
                push(&mut lines, total, "note", "\\ No newline at end of file".to_owned());
            }
        }
    }
    html! {
        @if total > lines.len() {
            p.cut {
                "This diff has " (total) " lines; the first " (lines.len()) " are shown (at most " (MAX_LINES)
                " lines or " (MAX_SHOWN_BYTES / 1024) " KiB), the other " (total - lines.len()) " are not."
            }
        }
        div.scroll.diffbox {
            pre.diff {
                @for (class, line) in &lines {
                    span class=(class) { (line) } "\n"
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS: &str = "AKIAIOSFODNN7EXAMPLE";
    const GHP: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";

    fn write(new: &[u8]) -> Write {
        use sha2::Digest as _;
        Write {
            path: "/srv/app/app.conf".to_owned(),
            sha256: hex::encode(sha2::Sha256::digest(new)),
            size_bytes: new.len() as u64,
        }
    }

    /// The answer a real agent gives for `old` (masked on the host and by central's second pass).
    fn read(old: &str) -> Current {
        use sha2::Digest as _;
        Current::Read(FileCurrentText {
            path: "/srv/app/app.conf".to_owned(),
            exists: true,
            size_bytes: old.len() as u64,
            sha256: Some(hex::encode(sha2::Sha256::digest(old.as_bytes()))),
            content: Some(mask(old, false)),
            binary: false,
            truncated: false,
            env_file: false,
            redactions: Vec::new(),
        })
    }

    fn html(new: &[u8], current: &Current) -> String {
        render(&write(new), Some(new), current, None).into_string()
    }

    #[test]
    fn a_change_is_a_unified_diff_with_headers_hunks_and_marked_lines() {
        let old = "a\nb\nworkers = 2\nc\n";
        let new = "a\nb\nworkers = 4\nc\n";
        let page = html(new.as_bytes(), &read(old));
        assert!(
            page.contains("--- /srv/app/app.conf (now)") && page.contains("+++ /srv/app/app.conf (after the write)"),
            "{page}"
        );
        assert!(page.contains("@@ -1,4 +1,4 @@"), "{page}");
        assert!(page.contains("<span class=\"del\">-workers = 2</span>"), "{page}");
        assert!(page.contains("<span class=\"ins\">+workers = 4</span>"), "{page}");
        assert!(page.contains("<span class=\"ctx\"> b</span>"), "{page}");
        assert!(page.contains(MASKED), "{page}");
        assert!(page.contains("div class=\"scroll diffbox\""), "{page}");
    }

    #[test]
    fn hostile_lines_are_visible_escapes_and_inert() {
        let new = "ok\n\u{1b}[2Jclear\r\nname \u{202e}gnp.exe\n<script>alert(1)</script>\n";
        let page = html(new.as_bytes(), &read("ok\n"));
        assert!(page.contains("+\\x1b[2Jclear\\r"), "{page}");
        assert!(page.contains("+name \\u{202e}gnp.exe"), "{page}");
        assert!(page.contains("+&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
        assert!(!page.contains('\u{1b}') && !page.contains('\r') && !page.contains('\u{202e}'), "{page}");
        assert!(!page.contains("<script"), "{page}");
    }

    #[test]
    fn secrets_are_masked_on_both_sides_and_an_unchanged_secret_is_no_change() {
        let old = format!("aws_access_key_id = {AWS}\nworkers = 2\ntoken: {GHP}\n");
        let new = format!("aws_access_key_id = {AWS}\nworkers = 4\ntoken: {GHP}\n");
        let page = html(new.as_bytes(), &read(&old));
        assert!(!page.contains(AWS) && !page.contains(GHP), "{page}");
        assert!(page.contains("[REDACTED:"), "{page}");
        // The secret lines are context, never a change.
        assert_eq!(page.matches("class=\"del\"").count(), 1, "{page}");
        assert_eq!(page.matches("class=\"ins\"").count(), 1, "{page}");
        assert!(page.contains("-workers = 2") && page.contains("+workers = 4"), "{page}");
        // A rotated secret alone: the hashes differ, the masked texts do not; said so.
        let rotated = format!("aws_access_key_id = AKIAI44QH8DHBEXAMPLE\nworkers = 2\ntoken: {GHP}\n");
        let page = html(rotated.as_bytes(), &read(&old));
        assert!(page.contains("No visible change") && !page.contains("AKIAI44QH8DHBEXAMPLE"), "{page}");
    }

    #[test]
    fn a_new_file_is_all_added_and_identical_bytes_say_no_change() {
        let missing = Current::Read(FileCurrentText {
            path: "/srv/app/app.conf".to_owned(),
            exists: false,
            size_bytes: 0,
            sha256: None,
            content: None,
            binary: false,
            truncated: false,
            env_file: false,
            redactions: Vec::new(),
        });
        let page = html(b"one\ntwo\n", &missing);
        assert!(page.contains("does not exist yet") && page.contains("--- /dev/null"), "{page}");
        assert!(page.contains("+one") && page.contains("+two") && !page.contains("class=\"del\""), "{page}");
        let page = html(b"same\n", &read("same\n"));
        assert!(page.contains("No change") && !page.contains("class=\"ins\""), "{page}");
    }

    #[test]
    fn binary_content_has_no_diff_only_sizes_and_hashes() {
        let page = html(b"\x00\xff\xfebinary", &read("text\n"));
        assert!(page.contains("not text") && !page.contains("pre class=\"diff\""), "{page}");
        let Current::Read(mut c) = read("x") else { unreachable!() };
        c.binary = true;
        c.content = None;
        let page = html(b"text\n", &Current::Read(c));
        assert!(page.contains("current file is not text") && !page.contains("pre class=\"diff\""), "{page}");
    }

    #[test]
    fn an_unknown_current_file_says_why_and_shows_the_new_content_masked() {
        let new = format!("workers = 4\nDB_PASS=x\nkey = {AWS}\n");
        let page = html(new.as_bytes(), &Current::Unknown("the server's agent is offline.".to_owned()));
        assert!(
            page.contains("the server&#39;s agent is offline.") || page.contains("the server's agent is offline."),
            "{page}"
        );
        assert!(page.contains("+workers = 4") && !page.contains(AWS), "{page}");
        // Not knowing whether it is an env file, a short secret value is masked anyway.
        assert!(page.contains("+DB_PASS=[REDACTED:env_secret]") && !page.contains("DB_PASS=x"), "{page}");
        assert!(!page.contains("class=\"del\""), "{page}");
    }

    #[test]
    fn an_env_file_is_masked_by_key_on_the_new_side_as_on_the_old() {
        let Current::Read(mut c) = read("") else { unreachable!() };
        let old = "PORT=8080\nDB_PASS=x\n";
        c.content = Some(env_values(&redact(old).text).0);
        c.env_file = true;
        c.size_bytes = old.len() as u64;
        let page = html(b"PORT=9090\nDB_PASS=x\n", &Current::Read(c));
        assert!(page.contains("-PORT=8080") && page.contains("+PORT=9090"), "{page}");
        assert!(page.contains(" DB_PASS=[REDACTED:env_secret]") && !page.contains("DB_PASS=x"), "{page}");
    }

    #[test]
    fn an_errors_reason_names_what_happened() {
        let old = MttrlyError::new(ErrorCode::ContractVersionUnsupported, "does not offer `file.current`");
        assert!(unavailable(&old).contains("too old"));
        let denied = MttrlyError::new(ErrorCode::PolicyDenied, "`/etc/shadow` is not in the managed files");
        assert!(unavailable(&denied).contains("refused"));
        assert_eq!(unavailable(&MttrlyError::new(ErrorCode::ServerOffline, "x")), "the server's agent is offline.");
    }

    #[test]
    fn a_huge_diff_says_how_much_is_not_shown() {
        let new = (0..MAX_LINES + 50).fold(String::new(), |mut text, i| {
            text.push_str(&format!("line {i}\n"));
            text
        });
        let page = html(new.as_bytes(), &read(""));
        assert!(page.contains("the other"), "cut without saying so");
        assert_eq!(page.matches("class=\"ins\"").count(), MAX_LINES - 3);
    }

    #[test]
    fn a_diff_of_control_characters_is_bounded_in_bytes_not_only_lines() {
        // Two thousand lines of a thousand control characters: eight megabytes once escaped.
        let new = format!("{}\n", "\u{1}".repeat(1000)).repeat(2000);
        let page = html(new.as_bytes(), &read(""));
        assert!(page.len() < 2 * MAX_SHOWN_BYTES, "{} bytes rendered", page.len());
        assert!(page.contains("the other") && page.contains("KiB"), "cut without saying so");
    }
}
