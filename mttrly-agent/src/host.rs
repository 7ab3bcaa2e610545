//! What the agent says about its host in `Hello`.

use sysinfo::System;

/// Host facts for `Hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Host name.
    pub hostname: String,
    /// OS name and version.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU architecture.
    pub arch: String,
}

/// Reads the host facts.
pub fn facts() -> HostFacts {
    HostFacts {
        hostname: System::host_name().unwrap_or_else(|_| "unknown".to_owned()),
        os: System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.to_owned()),
        kernel: System::kernel_version().unwrap_or_default(),
        arch: System::cpu_arch(),
    }
}
