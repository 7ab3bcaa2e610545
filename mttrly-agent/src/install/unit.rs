//! The systemd units the installer writes, rendered from the receipt's facts alone: install,
//! health ("unit file vs the expected one") and repair all call [`render`], so "expected" has
//! exactly one definition.
//!
//! Paths inside the units are the installed system's (`/var/lib/...`), never a staging root's.

use super::layout::{Layout, REPAIR_SERVICE_UNIT, SERVICE_UNIT};

/// What the units depend on (all of it recorded in the receipt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    /// The service user the agent runs as.
    pub user: String,
    /// The Linux capabilities the owner's policy keeps (`CAP_...`); empty: none.
    pub capabilities: Vec<String>,
}

/// The three units, as file contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Units {
    /// `mttrly-agent.service`.
    pub service: String,
    /// `mttrly-agent-repair.path`.
    pub repair_path: String,
    /// `mttrly-agent-repair.service`.
    pub repair_service: String,
}

/// Renders the units. Deterministic: the same spec gives the same bytes.
pub fn render(spec: &UnitSpec) -> Units {
    let sys = Layout::system();
    let state = sys.state_dir();
    let caps = spec.capabilities.join(" ");
    let service = format!(
        "# Written by `mttrly-agent install`; `mttrly_get_install_health` reports any change to it.\n\
         [Unit]\n\
         Description=mttrly agent (outbound connection to mttrly central)\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         User={user}\n\
         Group={user}\n\
         ExecStart={binary} run --state-dir {state} --policy {policy}\n\
         Restart=always\n\
         RestartSec=2\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ReadWritePaths={state}\n\
         ProtectHome=yes\n\
         PrivateTmp=yes\n\
         PrivateDevices=yes\n\
         ProtectKernelTunables=yes\n\
         ProtectKernelModules=yes\n\
         ProtectKernelLogs=yes\n\
         ProtectControlGroups=yes\n\
         ProtectClock=yes\n\
         ProtectHostname=yes\n\
         RestrictSUIDSGID=yes\n\
         RestrictRealtime=yes\n\
         RestrictNamespaces=yes\n\
         LockPersonality=yes\n\
         SystemCallArchitectures=native\n\
         CapabilityBoundingSet={caps}\n\
         AmbientCapabilities={caps}\n\
         UMask=0077\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        user = spec.user,
        binary = sys.current_binary().display(),
        state = state.display(),
        policy = sys.policy_file().display(),
    );
    let repair_path = format!(
        "# Written by `mttrly-agent install`: starts the root repair oneshot when the agent asks.\n\
         [Unit]\n\
         Description=mttrly agent repair requests\n\
         \n\
         [Path]\n\
         PathExists={request}\n\
         Unit={REPAIR_SERVICE_UNIT}\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        request = sys.repair_request().display(),
    );
    let repair_service = format!(
        "# Written by `mttrly-agent install`: performs an approved repair, recomputed from the\n\
         # root-owned receipt, only when its plan hash matches the approved one.\n\
         [Unit]\n\
         Description=mttrly agent repair (approved plans only)\n\
         After={SERVICE_UNIT}\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={binary} repair --pending\n\
         NoNewPrivileges=yes\n\
         PrivateTmp=yes\n\
         ProtectHome=yes\n",
        binary = sys.repair_binary().display(),
    );
    Units { service, repair_path, repair_service }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(caps: &[&str]) -> UnitSpec {
        UnitSpec { user: "mttrly-agent".into(), capabilities: caps.iter().map(|c| (*c).to_owned()).collect() }
    }

    #[test]
    fn the_service_is_hardened_and_starts_through_current() {
        let units = render(&spec(&[]));
        for line in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=/var/lib/mttrly-agent\n",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "RestrictSUIDSGID=yes",
            "LockPersonality=yes",
            "SystemCallArchitectures=native",
            "CapabilityBoundingSet=\n",
            "AmbientCapabilities=\n",
            "User=mttrly-agent\n",
            "Restart=always",
            "ExecStart=/var/lib/mttrly-agent/versions/current/mttrly-agent run --state-dir /var/lib/mttrly-agent --policy /etc/mttrly-agent/policy.toml\n",
        ] {
            assert!(units.service.contains(line), "missing {line:?} in\n{}", units.service);
        }
        assert!(units.repair_path.contains("PathExists=/var/lib/mttrly-agent/repair-request.json\n"));
        assert!(units.repair_path.contains("Unit=mttrly-agent-repair.service\n"));
        // Root runs its own copy, never the one the service user can write.
        assert!(
            units.repair_service.contains("ExecStart=/usr/local/libexec/mttrly-agent/mttrly-agent repair --pending\n")
        );
        assert!(!units.repair_service.contains("/var/lib/mttrly-agent/versions"));
    }

    #[test]
    fn capabilities_come_from_the_spec_and_rendering_is_deterministic() {
        let with = render(&spec(&["CAP_NET_BIND_SERVICE", "CAP_DAC_READ_SEARCH"]));
        assert!(with.service.contains("CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_DAC_READ_SEARCH\n"));
        assert!(with.service.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_DAC_READ_SEARCH\n"));
        assert_eq!(with, render(&spec(&["CAP_NET_BIND_SERVICE", "CAP_DAC_READ_SEARCH"])));
        assert_ne!(with.service, render(&spec(&[])).service);
    }
}
