//! The tool surface: which tools a deployment, a token or an MCP server exposes.
//!
//! Teams start read-only and open up later. A surface is switched by two knobs: read-only (only
//! tools whose annotation says they change nothing) and a set of toolsets. Central's configuration,
//! a token's scope and the standalone MCP server's flags each give a surface; the one that applies
//! is their intersection ([`ToolSurface::narrowed`]), so no layer can widen what another closed.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::{ToolSpec, Toolset};
use crate::error::MttrlyError;

/// Which tools are switched on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolSurface {
    /// Only tools that change nothing.
    pub read_only: bool,
    /// Only these toolsets; `None` means all of them.
    pub toolsets: Option<BTreeSet<Toolset>>,
}

/// Why a tool is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurfaceRefusal {
    /// The surface is read-only and the tool can change something.
    ReadOnly,
    /// The tool's toolset is not switched on.
    Toolset(Toolset),
}

impl fmt::Display for SurfaceRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReadOnly => f.write_str("read-only mode: only tools that change nothing are on"),
            Self::Toolset(t) => write!(f, "the `{t}` toolset is not switched on"),
        }
    }
}

impl ToolSurface {
    /// Everything on.
    pub const ALL: Self = Self { read_only: false, toolsets: None };

    /// A surface from the usual flags: `read_only` and a comma-separated toolset list (empty or
    /// absent means all). A list of only separators (`,`, ` , `) is refused: it names nothing,
    /// and "nothing" and "all" must never be one typo apart.
    pub fn from_flags(read_only: bool, toolsets: Option<&str>) -> Result<Self, MttrlyError> {
        let toolsets = match toolsets.map(str::trim) {
            None | Some("") => None,
            Some(list) => {
                let sets = parse_toolsets(list)?;
                if sets.is_empty() {
                    return Err(MttrlyError::new(
                        crate::ErrorCode::ValidationError,
                        format!(
                            "the toolset list `{list}` names no toolset: name at least one of {}, or leave it empty for all",
                            Toolset::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                Some(sets)
            }
        };
        Ok(Self { read_only, toolsets })
    }

    /// A surface as stored with a token or an OAuth grant: `toolsets` is [`Self::toolsets_flag`]'s
    /// value, where absent (NULL) means all and anything present means exactly the toolsets it
    /// names, so an empty string is no toolset at all. (Read back with [`Self::from_flags`], an
    /// empty set would come back as *every* toolset: a scope widened by a round trip.)
    pub fn from_stored(read_only: bool, toolsets: Option<&str>) -> Result<Self, MttrlyError> {
        let toolsets = match toolsets {
            None => None,
            Some(list) => Some(parse_toolsets(list)?),
        };
        Ok(Self { read_only, toolsets })
    }

    /// Whether `spec` is on, or why not.
    pub fn check(&self, spec: &ToolSpec) -> Result<(), SurfaceRefusal> {
        if let Some(sets) = &self.toolsets
            && !sets.contains(&spec.toolset)
        {
            return Err(SurfaceRefusal::Toolset(spec.toolset));
        }
        if self.read_only && !spec.hints.read_only() {
            return Err(SurfaceRefusal::ReadOnly);
        }
        Ok(())
    }

    /// The intersection of two surfaces: on only where both are on.
    #[must_use]
    pub fn narrowed(&self, other: &Self) -> Self {
        let toolsets = match (&self.toolsets, &other.toolsets) {
            (None, None) => None,
            (Some(a), None) | (None, Some(a)) => Some(a.clone()),
            (Some(a), Some(b)) => Some(a.intersection(b).copied().collect()),
        };
        Self { read_only: self.read_only || other.read_only, toolsets }
    }

    /// Whether every tool `other` switches on is also on here: a token may only create tokens
    /// this surface covers, so no holder can mint a wider one than its own.
    pub fn covers(&self, other: &Self) -> bool {
        let read_only_kept = !self.read_only || other.read_only;
        let toolsets_kept = match (&self.toolsets, &other.toolsets) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs.is_subset(mine),
        };
        read_only_kept && toolsets_kept
    }

    /// The toolsets switched on, in catalog order.
    pub fn toolsets_on(&self) -> Vec<Toolset> {
        Toolset::ALL.into_iter().filter(|t| self.toolsets.as_ref().is_none_or(|s| s.contains(t))).collect()
    }

    /// The toolset list as the flags take it (`servers,actions`), or `None` for all.
    pub fn toolsets_flag(&self) -> Option<String> {
        self.toolsets.as_ref().map(|s| s.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","))
    }
}

/// Parses `servers,files,...` (whitespace tolerated, duplicates merged).
pub fn parse_toolsets(list: &str) -> Result<BTreeSet<Toolset>, MttrlyError> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ToolId;

    #[test]
    fn read_only_refuses_every_tool_that_changes_something() {
        let surface = ToolSurface { read_only: true, toolsets: None };
        assert!(surface.check(ToolId::ListServers.spec()).is_ok());
        assert_eq!(surface.check(ToolId::ExecuteCommand.spec()), Err(SurfaceRefusal::ReadOnly));
        assert_eq!(surface.check(ToolId::ApproveAction.spec()), Err(SurfaceRefusal::ReadOnly));
    }

    #[test]
    fn toolsets_filter_and_narrowing_never_widens() {
        let servers = ToolSurface::from_flags(false, Some("servers, actions")).unwrap();
        assert!(servers.check(ToolId::ListServers.spec()).is_ok());
        assert_eq!(servers.check(ToolId::ExecuteCommand.spec()), Err(SurfaceRefusal::Toolset(Toolset::Commands)));
        let commands = ToolSurface::from_flags(true, Some("commands,servers")).unwrap();
        let both = servers.narrowed(&commands);
        assert!(both.read_only);
        assert_eq!(both.toolsets_on(), vec![Toolset::Servers]);
        assert_eq!(ToolSurface::ALL.narrowed(&servers), servers);
    }

    #[test]
    fn a_surface_covers_only_narrower_ones() {
        let ro = ToolSurface { read_only: true, toolsets: None };
        let servers = ToolSurface::from_flags(false, Some("servers")).unwrap();
        let ro_servers = ToolSurface::from_flags(true, Some("servers")).unwrap();
        assert!(ToolSurface::ALL.covers(&ToolSurface::ALL) && ToolSurface::ALL.covers(&ro_servers));
        assert!(!ro.covers(&ToolSurface::ALL) && !ro.covers(&servers) && ro.covers(&ro_servers));
        assert!(!servers.covers(&ToolSurface::ALL) && servers.covers(&servers) && servers.covers(&ro_servers));
        let wider = ToolSurface::from_flags(false, Some("servers,actions")).unwrap();
        assert!(!servers.covers(&wider) && wider.covers(&servers));
        assert!(!ro_servers.covers(&servers) && !ro_servers.covers(&ro));
    }

    #[test]
    fn unknown_toolsets_are_refused_with_the_valid_names() {
        let err = ToolSurface::from_flags(false, Some("servers,shell")).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::ValidationError);
        assert!(err.message().contains("commands"), "{err}");
        assert_eq!(ToolSurface::from_flags(false, Some(" ")).unwrap(), ToolSurface::ALL);
    }

    #[test]
    fn a_list_naming_nothing_is_refused_and_the_stored_form_round_trips() {
        for list in [",", " , ,", ",,"] {
            let err = ToolSurface::from_flags(false, Some(list)).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::ValidationError, "{list:?}");
        }
        // Every scope survives storage exactly, the empty set included (never "all").
        let none = ToolSurface { read_only: false, toolsets: Some(BTreeSet::new()) };
        let servers = ToolSurface::from_flags(true, Some("actions, servers,servers")).unwrap();
        for surface in [ToolSurface::ALL, none, servers] {
            let stored = surface.toolsets_flag();
            let back = ToolSurface::from_stored(surface.read_only, stored.as_deref()).unwrap();
            assert_eq!(back, surface, "{stored:?}");
        }
    }
}
