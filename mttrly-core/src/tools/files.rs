//! Allowlisted files: read, search, diff, write, clean up.

use serde::{Deserialize, Serialize};

use super::common::{Reason, ServerPath};
use crate::bounded::{bounded_int, bounded_text};
use crate::ids::ServerId;

mod compare;
pub use compare::*;

bounded_int!(
    /// How many lines to return from the end (1 to 500, default 100); the plan's `Log lines`
    /// limit caps it further.
    TailLines: u32, min 1, max 500, default 100
);

bounded_text!(
    /// A Docker container name or id (1 to 128 characters).
    ContainerName, min 1, max 128
);

bounded_text!(
    /// The name of a managed env file from the server's allowlist (1 to 128 characters).
    EnvFileName, min 1, max 128
);

/// What to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReadTarget {
    /// An allowlisted file (logs under the configured roots).
    File {
        /// Absolute path on the server.
        path: ServerPath,
    },
    /// A Docker container's logs.
    DockerLogs {
        /// The container.
        container: ContainerName,
    },
    /// The list of Docker images.
    DockerImages,
    /// A managed env file (secrets redacted by key name).
    EnvFile {
        /// The env file's name.
        name: EnvFileName,
    },
}

/// Arguments of `mttrly_read_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileInput {
    /// The server.
    pub server_id: ServerId,
    /// A file, container logs, the image list, or a managed env file.
    pub target: ReadTarget,
    /// How many lines to return from the end.
    #[serde(default)]
    pub lines: TailLines,
}

/// Arguments of `mttrly_read_privileged_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadPrivilegedFileInput {
    /// The server.
    pub server_id: ServerId,
    /// Absolute path on the server, checked against the privileged allowlist.
    pub path: ServerPath,
    /// How many lines to return from the end.
    #[serde(default)]
    pub lines: TailLines,
}

/// How many redactions one rule made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RedactionCount {
    /// The rule that fired (`aws_access_key`, `jwt`, `pem_private_key`, ...).
    pub rule: String,
    /// How many times.
    pub count: u32,
}

/// Redacted content read from a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileContent {
    /// The server.
    pub server_id: ServerId,
    /// What was read (the resolved path, `docker logs NAME`, ...).
    pub source: String,
    /// The content, redacted.
    pub content: String,
    /// How many lines `content` holds.
    pub line_count: u32,
    /// Whether earlier lines or bytes were left out by the caps.
    pub truncated: bool,
    /// The file's size in bytes, when it is a file.
    pub size_bytes: Option<u64>,
    /// What the redactor removed.
    pub redactions: Vec<RedactionCount>,
}

bounded_text!(
    /// A literal string to look for (1 to 256 characters; no regular expressions).
    SearchQuery, min 1, max 256
);

bounded_text!(
    /// A glob over file paths, for example `/var/log/nginx/*.log` (1 to 512 characters).
    PathGlob, min 1, max 512
);

bounded_int!(
    /// The most matches to return (1 to 500, default 100).
    MaxMatches: u32, min 1, max 500, default 100
);

/// Arguments of `mttrly_search_files`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchFilesInput {
    /// The server.
    pub server_id: ServerId,
    /// The literal text to find.
    pub query: SearchQuery,
    /// Only files matching this glob (still within the allowlist); all allowlisted logs when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<PathGlob>,
    /// Match case-insensitively.
    #[serde(default)]
    pub ignore_case: bool,
    /// The most matches to return.
    #[serde(default)]
    pub max_matches: MaxMatches,
}

/// One matching line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchMatch {
    /// The file.
    pub path: String,
    /// The 1-based line number.
    pub line_number: u64,
    /// The line, redacted.
    pub line: String,
}

/// Search results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchResults {
    /// The server.
    pub server_id: ServerId,
    /// The matches, by file then line.
    pub matches: Vec<SearchMatch>,
    /// How many files were searched.
    pub files_searched: u32,
    /// Whether the match cap was reached.
    pub truncated: bool,
    /// What the redactor removed.
    pub redactions: Vec<RedactionCount>,
}

bounded_int!(
    /// Lines of context around each change (0 to 20, default 3).
    ContextLines: u32, min 0, max 20, default 3
);

/// Arguments of `mttrly_diff_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffFileInput {
    /// The server.
    pub server_id: ServerId,
    /// The original file.
    pub left_path: ServerPath,
    /// The changed file.
    pub right_path: ServerPath,
    /// Lines of context around each change.
    #[serde(default)]
    pub context_lines: ContextLines,
}

/// A unified diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileDiff {
    /// The server.
    pub server_id: ServerId,
    /// The unified diff, redacted; empty when the files are identical.
    pub diff: String,
    /// Whether the files are identical.
    pub identical: bool,
    /// Whether the diff was cut at the size cap.
    pub truncated: bool,
    /// What the redactor removed.
    pub redactions: Vec<RedactionCount>,
}

/// Base64 content for a managed file, at most 1 MiB once decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Base64Content(String);

impl Base64Content {
    /// The largest decoded size accepted.
    pub const MAX_DECODED_BYTES: usize = 1024 * 1024;

    /// Checks that the text is standard base64 and not too large once decoded.
    pub fn new(text: impl Into<String>) -> Result<Self, String> {
        use base64::Engine as _;
        let text = text.into();
        if text.len() > (Self::MAX_DECODED_BYTES / 3 + 1) * 4 {
            return Err(format!("must decode to at most {} bytes", Self::MAX_DECODED_BYTES));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| format!("is not valid standard base64: {e}"))?;
        if decoded.len() > Self::MAX_DECODED_BYTES {
            return Err(format!("must decode to at most {} bytes", Self::MAX_DECODED_BYTES));
        }
        Ok(Self(text))
    }

    /// The decoded bytes. Cannot fail: the text was checked when it was built.
    pub fn decode(&self) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(self.0.as_bytes()).unwrap_or_default()
    }

    /// The base64 text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Base64Content {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Base64Content {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Base64Content".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "contentEncoding": "base64",
            "maxLength": (Self::MAX_DECODED_BYTES / 3 + 1) * 4,
        })
    }
}

/// Arguments of `mttrly_write_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileInput {
    /// The server.
    pub server_id: ServerId,
    /// The managed file to write (absolute path).
    pub path: ServerPath,
    /// The new content, base64-encoded. The previous content is kept as a backup.
    pub content_base64: Base64Content,
    /// Why, shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Arguments of `mttrly_cleanup_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupFileInput {
    /// The server.
    pub server_id: ServerId,
    /// The allowlisted managed file to delete (absolute path).
    pub path: ServerPath,
    /// Why, shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}
