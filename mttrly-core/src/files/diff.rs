//! Unified diffs of two texts.

use similar::TextDiff;

/// The most lines of diff returned.
pub const MAX_DIFF_LINES: usize = 2000;

/// A unified diff (`---`/`+++` headers named after the files), cut at [`MAX_DIFF_LINES`].
/// Returns the diff, whether the texts are identical, and whether the diff was cut.
pub fn unified(left_name: &str, left: &str, right_name: &str, right: &str, context: usize) -> (String, bool, bool) {
    if left == right {
        return (String::new(), true, false);
    }
    // Two unrelated 2 MiB files would otherwise cost unbounded CPU; past the budget the diff is
    // coarser, never wrong.
    let diff = TextDiff::configure().timeout(std::time::Duration::from_secs(1)).diff_lines(left, right);
    let text = diff.unified_diff().context_radius(context).header(left_name, right_name).to_string();
    let mut lines = text.lines();
    let kept: Vec<&str> = lines.by_ref().take(MAX_DIFF_LINES).collect();
    let truncated = lines.next().is_some();
    let mut out = kept.join("\n");
    out.push('\n');
    (out, false, truncated)
}
