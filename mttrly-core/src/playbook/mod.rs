//! Playbooks as data: TOML definitions with typed, validated parameters, prechecks, argv steps
//! (parameters substituted into argv elements, never through a shell), a verification step and a
//! blast-radius statement. The built-in catalog is compiled in; owners add their own from a
//! directory. Everything here is pure, so what a human approves and what the agent runs come from
//! the same definition and the same rendering.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, MttrlyError};
use crate::tools::playbooks::{
    ParamKind, ParamName, ParamValue, PlaybookCategory, PlaybookId, PlaybookParameter, PlaybookSummary,
};

/// The longest string parameter value.
pub const MAX_STRING_VALUE: usize = 1024;

/// One command: an argv, and the exit codes that count as success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The program and its arguments; `{name}` inside an element is replaced by a parameter.
    pub argv: Vec<String>,
    /// Exit codes that mean success (default: 0).
    #[serde(default = "zero")]
    pub ok_exit_codes: Vec<i32>,
}

fn zero() -> Vec<i32> {
    vec![0]
}

/// A parameter definition as written in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    /// The name used in `{name}` placeholders.
    pub name: ParamName,
    /// What it means.
    pub description: String,
    /// Its type.
    pub kind: ParamKind,
    /// Whether it must be given.
    #[serde(default)]
    pub required: bool,
    /// The value when not given.
    #[serde(default)]
    pub default: Option<ParamValue>,
    /// Accepted values for `enum`.
    #[serde(default)]
    pub allowed_values: Vec<String>,
    /// A regular expression string values must match entirely (required for strings).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Bounds for integers.
    #[serde(default)]
    pub min: Option<i64>,
    /// Bounds for integers.
    #[serde(default)]
    pub max: Option<i64>,
}

/// A playbook definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Its id.
    pub id: PlaybookId,
    /// A short name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// What it is for.
    pub category: PlaybookCategory,
    /// Whether running it needs a human (anything that changes the server does).
    pub requires_approval: bool,
    /// Programs that must exist on the server for it to be available.
    #[serde(default)]
    pub requires: Vec<String>,
    /// What it can affect, in words, shown to the approver.
    pub blast_radius: String,
    /// The deadline for the whole run.
    pub timeout_seconds: u32,
    /// Its parameters.
    #[serde(default)]
    pub parameters: Vec<ParamDef>,
    /// Commands that must succeed before anything changes.
    #[serde(default)]
    pub prechecks: Vec<Step>,
    /// The commands that do the work, in order; the first failure stops the run.
    pub steps: Vec<Step>,
    /// A command that checks the result.
    #[serde(default)]
    pub verify: Option<Step>,
}

/// A run's commands with every parameter substituted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    /// Prechecks.
    pub prechecks: Vec<Step>,
    /// Steps.
    pub steps: Vec<Step>,
    /// Verification.
    pub verify: Option<Step>,
}

/// The `{name}` placeholders of an argv element, in order: each one's byte range and name.
///
/// The grammar is the regular expression `\{([a-z0-9][a-z0-9_.-]*)\}` (leftmost, not overlapping),
/// scanned by hand: checking a playbook runs when an agent starts (the built-ins and the owner's),
/// and a hand scan keeps the regex compiler out of that start, as `files::RuleSet` does for the
/// file rules (issue 16: the idle agent's resident memory). Checking and rendering use this one
/// scanner, so what a check accepted is what a run substitutes; a property test holds it to the
/// expression.
pub(crate) fn placeholders(arg: &str) -> impl Iterator<Item = (std::ops::Range<usize>, &str)> + '_ {
    let bytes = arg.as_bytes();
    let head = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let tail = move |b: u8| head(b) || matches!(b, b'_' | b'.' | b'-');
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() {
            let start = at;
            at += 1;
            if bytes[start] != b'{' || !bytes.get(start + 1).copied().is_some_and(head) {
                continue;
            }
            let mut end = start + 2;
            while bytes.get(end).copied().is_some_and(tail) {
                end += 1;
            }
            if bytes.get(end) == Some(&b'}') {
                at = end + 1;
                // Every byte from `start` to `end` is ASCII, so both ends are char boundaries.
                return Some((start..end + 1, &arg[start + 1..end]));
            }
        }
        None
    })
}

/// `arg` with each placeholder replaced by `value_of` its name.
fn substitute(arg: &str, value_of: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut copied = 0;
    for (range, name) in placeholders(arg) {
        out.push_str(&arg[copied..range.start]);
        out.push_str(&value_of(name));
        copied = range.end;
    }
    out.push_str(&arg[copied..]);
    out
}

/// Checks a parameter's pattern as [`full_match`] would compile it, with the regex crate's own
/// parser and without compiling it (see [`placeholders`] for why): every syntax error is refused
/// here; what only compiling refuses is an expression past the engine's size limit, which
/// [`full_match`] reports when a value is validated.
fn check_pattern(pattern: &str) -> Result<(), String> {
    // The parser's error as text: the regex crate's own `Error::Syntax` is that same text.
    regex_syntax::Parser::new().parse(&anchored(pattern)?).map(drop).map_err(|e| e.to_string())
}

/// `pattern` anchored at both ends of the value, `^(?:pattern)$`, once it is known to be a whole
/// expression by itself. Otherwise a `)` of its own would close the wrapping group and leave an
/// anchor on one side only: `[a-z]+)|(?:.*` would make `^(?:[a-z]+)|(?:.*)$`, which matches any
/// value, and `[a-z]+)(?m)(?:` would make the final `$` an end of line (`web\n…` passes). Parsed
/// alone, such a pattern is a group never opened, and refused. A whole expression's flags end
/// with the group, so the outer `^` and `$` keep their meaning: start and end of the value.
fn anchored(pattern: &str) -> Result<String, String> {
    regex_syntax::Parser::new().parse(pattern).map_err(|e| e.to_string())?;
    Ok(format!("^(?:{pattern})$"))
}

fn invalid_def(id: &str, why: impl std::fmt::Display) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, format!("invalid playbook `{id}`: {why}"))
}

fn bad_param(name: &str, why: impl std::fmt::Display) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, format!("parameter `{name}`: {why}"))
        .with_detail("field", format!("parameters.{name}"))
}

fn full_match(pattern: &str) -> Result<Regex, String> {
    Regex::new(&anchored(pattern)?).map_err(|e| e.to_string())
}

impl Playbook {
    /// Parses and checks a TOML definition.
    pub fn parse(text: &str) -> Result<Self, MttrlyError> {
        Self::parse_checking(text, Defaults::Validated)
    }

    fn parse_checking(text: &str, defaults: Defaults) -> Result<Self, MttrlyError> {
        let p: Self = toml::from_str(text)
            .map_err(|e| MttrlyError::new(ErrorCode::ValidationError, format!("invalid playbook definition: {e}")))?;
        p.check(defaults)?;
        Ok(p)
    }

    fn check(&self, defaults: Defaults) -> Result<(), MttrlyError> {
        let id = self.id.as_str();
        if self.steps.is_empty() {
            return Err(invalid_def(id, "it has no steps"));
        }
        if !(1..=3600).contains(&self.timeout_seconds) {
            return Err(invalid_def(id, "timeout_seconds must be between 1 and 3600"));
        }
        let mut names = std::collections::BTreeSet::new();
        for param in &self.parameters {
            if !names.insert(param.name.as_str()) {
                return Err(invalid_def(id, format!("parameter `{}` is defined twice", param.name)));
            }
            match param.kind {
                ParamKind::String => {
                    let Some(pattern) = &param.pattern else {
                        return Err(invalid_def(id, format!("string parameter `{}` needs a pattern", param.name)));
                    };
                    check_pattern(pattern).map_err(|e| invalid_def(id, format!("pattern of `{}`: {e}", param.name)))?;
                }
                ParamKind::Enum if param.allowed_values.is_empty() => {
                    return Err(invalid_def(id, format!("enum parameter `{}` needs allowed_values", param.name)));
                }
                _ => {}
            }
            if let Some(default) = &param.default {
                if defaults == Defaults::Validated {
                    validate_value(param, default).map_err(|e| invalid_def(id, e.message()))?;
                }
            } else if !param.required {
                // An absent value would render as an empty argument (`rm -rf /srv/cache/{sub}`).
                return Err(invalid_def(id, format!("optional parameter `{}` needs a default", param.name)));
            }
        }
        for step in self.prechecks.iter().chain(&self.steps).chain(&self.verify) {
            if step.argv.is_empty() || step.argv[0].is_empty() {
                return Err(invalid_def(id, "a step has an empty argv"));
            }
            if step.argv[0].contains('{') {
                return Err(invalid_def(id, "the program of a step cannot be a parameter"));
            }
            for arg in &step.argv {
                for (_, name) in placeholders(arg) {
                    if !names.contains(name) {
                        return Err(invalid_def(id, format!("`{{{name}}}` is not one of its parameters")));
                    }
                }
            }
        }
        Ok(())
    }

    /// The catalog entry.
    pub fn summary(&self) -> PlaybookSummary {
        PlaybookSummary {
            playbook_id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            category: self.category,
            requires_approval: self.requires_approval,
            parameters: self
                .parameters
                .iter()
                .map(|p| PlaybookParameter {
                    name: p.name.clone(),
                    description: p.description.clone(),
                    kind: p.kind,
                    required: p.required,
                    default: p.default.clone(),
                    allowed_values: p.allowed_values.clone(),
                    pattern: p.pattern.clone(),
                })
                .collect(),
        }
    }

    /// Checks `given` against the parameters and fills in defaults. Unknown names, missing
    /// required values, wrong types, out-of-range numbers and values not matching their pattern
    /// are `VALIDATION_ERROR`s naming the parameter.
    pub fn validate(
        &self,
        given: &BTreeMap<ParamName, ParamValue>,
    ) -> Result<BTreeMap<ParamName, ParamValue>, MttrlyError> {
        for name in given.keys() {
            if !self.parameters.iter().any(|p| &p.name == name) {
                let known: Vec<&str> = self.parameters.iter().map(|p| p.name.as_str()).collect();
                return Err(bad_param(
                    name.as_str(),
                    format!(
                        "`{}` does not take it (parameters: {})",
                        self.id,
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    ),
                ));
            }
        }
        let mut out = BTreeMap::new();
        for param in &self.parameters {
            let value = match (given.get(&param.name), &param.default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) if param.required => return Err(bad_param(param.name.as_str(), "is required")),
                (None, None) => continue,
            };
            validate_value(param, &value)?;
            out.insert(param.name.clone(), value);
        }
        Ok(out)
    }

    /// Substitutes validated parameters into every argv element.
    pub fn render(&self, params: &BTreeMap<ParamName, ParamValue>) -> Rendered {
        let sub = |step: &Step| Step {
            argv: step
                .argv
                .iter()
                .map(|arg| {
                    substitute(arg, |name| {
                        params.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| value_text(v)).unwrap_or_default()
                    })
                })
                .collect(),
            ok_exit_codes: step.ok_exit_codes.clone(),
        };
        Rendered {
            prechecks: self.prechecks.iter().map(sub).collect(),
            steps: self.steps.iter().map(sub).collect(),
            verify: self.verify.as_ref().map(sub),
        }
    }
}

/// A value as it appears in an argv.
pub fn value_text(v: &ParamValue) -> String {
    match v {
        ParamValue::Boolean(b) => b.to_string(),
        ParamValue::Integer(i) => i.to_string(),
        ParamValue::String(s) => s.clone(),
    }
}

fn validate_value(param: &ParamDef, value: &ParamValue) -> Result<(), MttrlyError> {
    let name = param.name.as_str();
    match (param.kind, value) {
        (ParamKind::Boolean, ParamValue::Boolean(_)) => Ok(()),
        (ParamKind::Integer, ParamValue::Integer(i)) if *i < 0 && param.min.is_none_or(|m| m >= 0) => {
            Err(bad_param(name, "cannot be negative"))
        }
        (ParamKind::Integer, ParamValue::Integer(i)) => {
            if param.min.is_some_and(|m| *i < m) || param.max.is_some_and(|m| *i > m) {
                return Err(bad_param(
                    name,
                    format!("{i} is outside {}..={}", param.min.unwrap_or(i64::MIN), param.max.unwrap_or(i64::MAX)),
                ));
            }
            Ok(())
        }
        (ParamKind::Enum, ParamValue::String(s)) => {
            if param.allowed_values.iter().any(|a| a == s) {
                Ok(())
            } else {
                Err(bad_param(name, format!("must be one of {}", param.allowed_values.join(", "))))
            }
        }
        (ParamKind::String, ParamValue::String(s)) => {
            if s.chars().count() > MAX_STRING_VALUE {
                return Err(bad_param(name, format!("longer than {MAX_STRING_VALUE} characters")));
            }
            // A value is never an option to the program it is passed to.
            if s.starts_with('-') {
                return Err(bad_param(name, "cannot start with `-`"));
            }
            // A path never climbs out of the directory its pattern names.
            if s.split('/').any(|seg| seg == ".." || seg == ".") {
                return Err(bad_param(name, "cannot contain `.` or `..` path segments"));
            }
            let pattern = param.pattern.as_deref().unwrap_or("");
            let re = full_match(pattern).map_err(|e| bad_param(name, format!("bad pattern: {e}")))?;
            if re.is_match(s) { Ok(()) } else { Err(bad_param(name, format!("must match {pattern}"))) }
        }
        (kind, _) => Err(bad_param(name, format!("must be a {}", kind_name(kind)))),
    }
}

const fn kind_name(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::String | ParamKind::Enum => "string",
        ParamKind::Integer => "whole number",
        ParamKind::Boolean => "boolean",
    }
}

const BUILT_IN: &[&str] = &[
    include_str!("../../playbooks/restart-systemd-unit.toml"),
    include_str!("../../playbooks/status-systemd-unit.toml"),
    include_str!("../../playbooks/reload-nginx.toml"),
    include_str!("../../playbooks/test-nginx-config.toml"),
    include_str!("../../playbooks/vacuum-journal.toml"),
    include_str!("../../playbooks/journal-disk-usage.toml"),
    include_str!("../../playbooks/clean-apt-cache.toml"),
    include_str!("../../playbooks/clean-dnf-cache.toml"),
    include_str!("../../playbooks/restart-docker-container.toml"),
    include_str!("../../playbooks/restart-docker.toml"),
    include_str!("../../playbooks/prune-docker-images.toml"),
    include_str!("../../playbooks/compress-rotated-logs.toml"),
    include_str!("../../playbooks/clear-old-tmp-files.toml"),
    include_str!("../../playbooks/disk-usage.toml"),
    include_str!("../../playbooks/rollback-release-symlink.toml"),
];

/// Whether a definition's default values are checked against their parameters when it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Defaults {
    /// Checked: an owner's playbook, or any text [`Playbook::parse`] is given.
    Validated,
    /// Not checked when read, because a test checks them: the built-ins are text compiled into
    /// the binary, and `every_built_in_parses_and_there_are_at_least_twelve` runs the full
    /// [`Playbook::parse`] on each. Checking a string default means compiling its pattern, and
    /// the built-ins are read when an agent starts: skipping it keeps the regex compiler out of
    /// that start (issue 16: the idle agent's resident memory). Every other check still runs,
    /// and a value a run is given is validated in full ([`Playbook::validate`]).
    ProvenByTests,
}

/// The built-in playbooks, by id. A test parses every one in full ([`Defaults::ProvenByTests`]).
pub fn built_in() -> &'static [Playbook] {
    static ALL: OnceLock<Vec<Playbook>> = OnceLock::new();
    ALL.get_or_init(|| {
        BUILT_IN.iter().filter_map(|t| Playbook::parse_checking(t, Defaults::ProvenByTests).ok()).collect()
    })
}

/// A catalog: the built-ins plus an owner's directory of `*.toml` definitions (a user playbook
/// may not reuse a built-in id).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    playbooks: Vec<Playbook>,
}

impl Catalog {
    /// The built-ins only.
    pub fn built_in() -> Self {
        Self { playbooks: built_in().to_vec() }
    }

    /// The built-ins plus every `*.toml` in `dir`; a bad file is an error naming it.
    pub fn with_dir(dir: &Path) -> Result<Self, MttrlyError> {
        let mut catalog = Self::built_in();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            MttrlyError::new(
                ErrorCode::ValidationError,
                format!("cannot read playbook directory {}: {e}", dir.display()),
            )
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                MttrlyError::new(ErrorCode::ValidationError, format!("cannot read {}: {e}", path.display()))
            })?;
            let p = Playbook::parse(&text).map_err(|e| {
                MttrlyError::new(ErrorCode::ValidationError, format!("{}: {}", path.display(), e.message()))
            })?;
            if catalog.get(&p.id).is_some() {
                return Err(MttrlyError::new(
                    ErrorCode::ValidationError,
                    format!("{}: playbook id `{}` is already defined", path.display(), p.id),
                ));
            }
            catalog.playbooks.push(p);
        }
        Ok(catalog)
    }

    /// Every playbook, by category then id.
    pub fn all(&self) -> Vec<&Playbook> {
        let mut all: Vec<&Playbook> = self.playbooks.iter().collect();
        all.sort_by(|a, b| (a.category, a.id.as_str()).cmp(&(b.category, b.id.as_str())));
        all
    }

    /// One playbook.
    pub fn get(&self, id: &PlaybookId) -> Option<&Playbook> {
        self.playbooks.iter().find(|p| &p.id == id)
    }

    /// One playbook, or `PLAYBOOK_NOT_FOUND`.
    pub fn find(&self, id: &PlaybookId) -> Result<&Playbook, MttrlyError> {
        self.get(id).ok_or_else(|| {
            MttrlyError::new(ErrorCode::PlaybookNotFound, format!("no playbook `{id}`"))
                .with_detail("playbook_id", id.as_str())
        })
    }
}

#[cfg(test)]
mod tests;
