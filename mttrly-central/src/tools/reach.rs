//! Which tools a caller can see and call, decided once.
//!
//! [`reach`] is the one answer to "can this caller call this tool, and if not why": admission
//! ([`super::admit`]), `mttrly_get_capabilities`, MCP `tools/list` and gRPC `ListTools` all read
//! it, so what an assistant is shown is exactly what it may call. The checks run in admission's
//! order: built on this central, then the surface (read-only mode and toolsets, deployment-wide
//! narrowed by the token's scope), then the plan.

use mttrly_core::catalog::{ToolSpec, specs};
use mttrly_core::surface::SurfaceRefusal;
use mttrly_core::{ErrorCode, MttrlyError, Plan, ToolId, ToolSurface};

use crate::db::accounts::TokenOwner;
use crate::state::Central;

/// Whether a caller can call a tool, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Callable (rate limits aside).
    Callable,
    /// This central has no handler for it.
    NotAvailable,
    /// Switched off by read-only mode or the toolsets, of the deployment or of the token.
    SwitchedOff(SurfaceRefusal),
    /// The account's plan does not include it; `required` does.
    Plan {
        /// The lowest plan that unlocks the tool.
        required: Plan,
    },
}

impl Reach {
    /// Whether the caller may call it.
    pub fn is_callable(self) -> bool {
        self == Self::Callable
    }

    /// Whether MCP lists it to the caller: callable, or held back only by the plan, so that
    /// calling it answers `PLAN_REQUIRED` naming the plan that unlocks it (a tool switched off
    /// or not built here is never shown: there is nothing the caller could do about it).
    pub fn is_listed(self) -> bool {
        matches!(self, Self::Callable | Self::Plan { .. })
    }

    /// Why it is not callable, in words for the caller.
    pub fn reason(self) -> Option<String> {
        match self {
            Self::Callable => None,
            Self::NotAvailable => Some("not available on this central yet".to_owned()),
            Self::SwitchedOff(refusal) => Some(refusal.to_string()),
            Self::Plan { required } => Some(format!("requires the {} plan", required.display_name())),
        }
    }

    /// The plan that would unlock it, when the plan is what holds it back.
    pub fn required_plan(self) -> Option<Plan> {
        match self {
            Self::Plan { required } => Some(required),
            _ => None,
        }
    }

    /// The error a call of `tool` by a caller on `plan` gets, or `None` when it is callable.
    pub fn refusal(self, tool: ToolId, plan: Plan) -> Option<MttrlyError> {
        match self {
            Self::Callable => None,
            Self::NotAvailable => Some(
                MttrlyError::new(ErrorCode::NotFound, format!("{tool} is not available on this central"))
                    .with_detail("tool_id", tool.as_str()),
            ),
            Self::SwitchedOff(refusal) => Some(
                MttrlyError::new(ErrorCode::Forbidden, format!("{tool} is switched off here: {refusal}"))
                    .with_detail("tool_id", tool.as_str()),
            ),
            Self::Plan { .. } => plan.check(tool).err(),
        }
    }
}

/// The tools `caller` may reach: the deployment's surface narrowed by the token's scope.
pub fn surface(central: &Central, caller: &TokenOwner) -> ToolSurface {
    central.config.tools.narrowed(&caller.scope)
}

/// The reach of one tool, from the caller's surface and plan (pure: the whole rule).
fn judge(surface: &ToolSurface, plan: Plan, spec: &ToolSpec) -> Reach {
    if !super::is_available(spec.id) {
        return Reach::NotAvailable;
    }
    if let Err(refusal) = surface.check(spec) {
        return Reach::SwitchedOff(refusal);
    }
    if !plan.allows(spec.id) {
        return Reach::Plan { required: spec.min_plan };
    }
    Reach::Callable
}

/// The reach of one tool for `caller`.
pub fn reach_of(central: &Central, caller: &TokenOwner, tool: ToolId) -> Reach {
    judge(&surface(central, caller), caller.plan, tool.spec())
}

/// Every catalog tool, in catalog order, with its reach for `caller`.
pub fn reach(central: &Central, caller: &TokenOwner) -> impl Iterator<Item = (ToolId, Reach)> + use<> {
    let (surface, plan) = (surface(central, caller), caller.plan);
    specs().iter().map(move |spec| (spec.id, judge(&surface, plan, spec)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mttrly_core::Toolset;

    fn judged(surface: &ToolSurface, plan: Plan, tool: ToolId) -> Reach {
        judge(surface, plan, tool.spec())
    }

    #[test]
    fn a_tool_not_built_here_is_never_callable_whatever_the_caller() {
        // Every catalog tool this central does not build, whichever they are today.
        let unbuilt = specs().iter().filter(|spec| !super::super::is_available(spec.id));
        for spec in unbuilt {
            for plan in Plan::ALL {
                assert_eq!(judge(&ToolSurface::ALL, plan, spec), Reach::NotAvailable, "{}", spec.id);
            }
        }
    }

    #[test]
    fn the_surface_is_checked_before_the_plan() {
        let read_only = ToolSurface { read_only: true, toolsets: None };
        assert_eq!(
            judged(&read_only, Plan::Watchdog, ToolId::RunPlaybook),
            Reach::SwitchedOff(SurfaceRefusal::ReadOnly)
        );
        let servers_only = ToolSurface { read_only: false, toolsets: Some([Toolset::Servers].into()) };
        let off = judged(&servers_only, Plan::DeploymentCrew, ToolId::ExecuteCommand);
        assert!(matches!(off, Reach::SwitchedOff(SurfaceRefusal::Toolset(_))), "{off:?}");
        assert!(!off.is_listed());
        assert!(off.reason().is_some_and(|r| r.contains("toolset")));
    }

    #[test]
    fn a_tool_beyond_the_plan_is_listed_but_not_callable_and_names_its_plan() {
        let reach = judged(&ToolSurface::ALL, Plan::Watchdog, ToolId::RunDiagnostic);
        assert!(reach.is_listed() && !reach.is_callable());
        assert_eq!(reach.required_plan(), Some(ToolId::RunDiagnostic.spec().min_plan));
        let err = reach.refusal(ToolId::RunDiagnostic, Plan::Watchdog).map(|e| e.code());
        assert_eq!(err, Some(ErrorCode::PlanRequired));
    }

    #[test]
    fn every_refusal_matches_its_reach() {
        let surfaces = [
            ToolSurface::ALL,
            ToolSurface { read_only: true, toolsets: None },
            ToolSurface { read_only: false, toolsets: Some([Toolset::Servers, Toolset::Actions].into()) },
        ];
        for surface in &surfaces {
            for plan in Plan::ALL {
                for spec in specs() {
                    let reach = judge(surface, plan, spec);
                    let refusal = reach.refusal(spec.id, plan);
                    assert_eq!(reach.is_callable(), refusal.is_none(), "{:?} {reach:?}", spec.id);
                    assert_eq!(reach.is_callable(), reach.reason().is_none(), "{:?}", spec.id);
                    let code = refusal.map(|e| e.code());
                    let expected = match reach {
                        Reach::Callable => None,
                        Reach::NotAvailable => Some(ErrorCode::NotFound),
                        Reach::SwitchedOff(_) => Some(ErrorCode::Forbidden),
                        Reach::Plan { .. } => Some(ErrorCode::PlanRequired),
                    };
                    assert_eq!(code, expected, "{:?}", spec.id);
                }
            }
        }
    }
}
