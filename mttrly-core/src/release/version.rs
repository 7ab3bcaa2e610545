//! Release versions: `MAJOR.MINOR.PATCH` with an optional `-pre` tag, ordered as semver orders
//! them, so "is this a downgrade?" has one answer on central and on the agent.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The longest accepted version string (the update tool's `AgentVersion` bound).
const MAX_LEN: usize = 32;

/// A parsed release version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReleaseVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Option<String>,
}

/// Why a version string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shown}` is not a release version (expected MAJOR.MINOR.PATCH, optionally -PRE, at most 32 characters)")]
pub struct VersionError {
    shown: String,
}

impl ReleaseVersion {
    /// The version's text.
    pub fn as_string(&self) -> String {
        self.to_string()
    }

    /// Whether this is a pre-release (`1.2.0-rc1`).
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some()
    }
}

impl FromStr for ReleaseVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || VersionError { shown: s.chars().take(MAX_LEN + 8).collect() };
        if s.is_empty() || s.len() > MAX_LEN {
            return Err(bad());
        }
        let (core, pre) = match s.split_once('-') {
            Some((core, pre)) => {
                // Pre-release tags: dot-separated identifiers of ASCII letters and digits, as semver
                // allows (no `+build`: two builds of one version would order equal yet differ).
                // Each identifier is non-empty and a numeric one has no leading zero, so every tag
                // has one spelling and `rc.01` cannot sit beside `rc.1` as a different version.
                if !pre.split('.').all(pre_identifier_is_well_formed) {
                    return Err(bad());
                }
                (core, Some(pre.to_owned()))
            }
            None => (s, None),
        };
        let mut parts = core.split('.');
        let mut next = || -> Result<u64, VersionError> {
            let part = parts.next().ok_or_else(bad)?;
            // No leading zeros, no signs: one spelling per number.
            if part.is_empty() || (part.len() > 1 && part.starts_with('0')) || !part.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let (major, minor, patch) = (next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self { major, minor, patch, pre })
    }
}

impl fmt::Display for ReleaseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

impl Ord for ReleaseVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(|| {
            match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                // A pre-release comes before its release.
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => cmp_pre(a, b),
            }
        })
    }
}

/// Whether `id` is one semver pre-release identifier: non-empty ASCII letters and digits, and
/// when all digits, no leading zero.
fn pre_identifier_is_well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
        && !(id.len() > 1 && id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit()))
}

/// Semver's precedence of two pre-release tags (§11.4): identifier by identifier, numeric ones
/// numerically (`rc.9 < rc.10`: a string comparison would call `rc.10 → rc.9` an upgrade and let a
/// downgrade through without its approval flag), numeric before alphanumeric, alphanumeric by
/// ASCII, and a tag that is a prefix of the other first.
fn cmp_pre(a: &str, b: &str) -> Ordering {
    let numeric = |id: &str| id.bytes().all(|b| b.is_ascii_digit());
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        let order = match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            // No leading zeros (checked when parsed), so length then text is numeric order, with
            // no overflow whatever the digits.
            (Some(x), Some(y)) if numeric(x) && numeric(y) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
            (Some(x), Some(_)) if numeric(x) => Ordering::Less,
            (Some(_), Some(y)) if numeric(y) => Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
}

impl PartialOrd for ReleaseVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for ReleaseVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ReleaseVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ReleaseVersion {
        s.parse().unwrap()
    }

    #[test]
    fn orders_as_semver() {
        assert!(v("0.1.0") < v("0.2.0"));
        assert!(v("0.10.0") > v("0.9.9"));
        assert!(v("1.0.0-rc1") < v("1.0.0"));
        assert!(v("99.0.0") > v("0.1.0"));
        assert_eq!(v("1.2.3").to_string(), "1.2.3");
        assert_eq!(v("1.2.3-rc.1").to_string(), "1.2.3-rc.1");
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for bad in ["", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.x", "-1.2.3", "1.2.3-", "1.2.3+b", "1.2.3-a b", "v1.2.3"]
        {
            assert!(bad.parse::<ReleaseVersion>().is_err(), "{bad}");
        }
        assert!("1.2.3-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse::<ReleaseVersion>().is_err());
        // Empty identifiers and numeric ones with a leading zero: a second spelling of a tag.
        for bad in ["1.2.3-rc..1", "1.2.3-.rc", "1.2.3-rc.", "1.2.3-..", "1.2.3-rc.01", "1.2.3-00"] {
            assert!(bad.parse::<ReleaseVersion>().is_err(), "{bad}");
        }
        assert!("1.2.3-0.rc0.0a".parse::<ReleaseVersion>().is_ok());
    }

    /// Red team: a pre-release downgrade disguised by string ordering. Going from `rc.10` to `rc.9`
    /// must count as a downgrade (needing the approval's flag), and the order must be semver's
    /// (§11.4 example chain) so central's "newest" and the agent's "older" agree with operators'.
    #[test]
    fn pre_releases_order_by_identifier_as_semver_does() {
        assert!(v("1.0.0-rc.9") < v("1.0.0-rc.10"));
        assert!(v("1.0.0-2") < v("1.0.0-10"));
        assert!(v("1.0.0-99999999999999999999999") > v("1.0.0-9"));
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for pair in chain.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(v(pair[1]) > v(pair[0]), "{} > {}", pair[1], pair[0]);
        }
        assert_eq!(v("1.0.0-rc.1").cmp(&v("1.0.0-rc.1")), Ordering::Equal);
    }
}
