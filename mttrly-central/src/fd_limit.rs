//! The open-files limit. Every agent holds one TCP connection, so a fleet of fifty thousand needs
//! fifty thousand descriptors, while most systems start a process with a soft limit of 1,024
//! (systemd's default, kept low for `select(2)` users) and a hard limit far above it. Like Go's
//! runtime and most servers, central raises its soft limit to the hard limit at start, and says
//! so when even the hard limit is below what its connection caps allow: the connections beyond
//! it would fail at `accept` with `EMFILE` instead of being refused cleanly by the caps.

/// Descriptors central holds beside its connections: the database, its WAL and shared memory,
/// the checkpointer's and the readers' connections, the listeners, the runtime's epoll and wakers, the blocking
/// pool's files (a backup, an export), stdio.
pub(crate) const RESERVED: u64 = 256;

/// The open-files limit after [`raise`]: the soft limit central now runs with, and the hard one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdLimit {
    /// The limit in force.
    pub(crate) soft: u64,
    /// The ceiling only an administrator can raise (`LimitNOFILE=`, `ulimit -Hn`).
    pub(crate) hard: u64,
}

impl FdLimit {
    /// How many connections fit beside [`RESERVED`].
    pub(crate) fn connections(self) -> u64 {
        self.soft.saturating_sub(RESERVED)
    }
}

/// Raises the soft open-files limit to the hard limit, and warns when the connection caps
/// (`connections`, both listeners together) need more than that. Returns the limit now in force,
/// or `None` where it cannot be read (not Unix); a failure to raise it is logged and leaves the
/// old limit, since central still serves a smaller fleet.
pub(crate) fn raise(connections: u64) -> Option<FdLimit> {
    let limit = imp::raise()?;
    if limit.connections() < connections {
        tracing::warn!(
            soft = limit.soft,
            hard = limit.hard,
            connection_caps = connections,
            most_connections = limit.connections(),
            "the open-files limit is below what the connection caps allow: connections beyond it fail \
             at accept; raise the hard limit (systemd LimitNOFILE=, ulimit -Hn) or lower \
             grpc_max_connections"
        );
    } else {
        tracing::debug!(soft = limit.soft, hard = limit.hard, "open-files limit");
    }
    Some(limit)
}

#[cfg(unix)]
mod imp {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};

    use super::FdLimit;

    /// A soft limit to ask for when the hard limit is unlimited (the kernel refuses infinity for
    /// open files; Linux's own ceiling, `fs.nr_open`, defaults to this).
    const UNLIMITED_TARGET: u64 = 1 << 20;

    pub(super) fn raise() -> Option<FdLimit> {
        let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok(limits) => limits,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the open-files limit");
                return None;
            }
        };
        let target = if hard == RLIM_INFINITY { UNLIMITED_TARGET } else { hard };
        if soft >= target {
            return Some(FdLimit { soft, hard });
        }
        match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
            Ok(()) => Some(FdLimit { soft: target, hard }),
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "cannot raise the open-files limit");
                Some(FdLimit { soft, hard })
            }
        }
    }
}

#[cfg(not(unix))]
mod imp {
    pub(super) fn raise() -> Option<super::FdLimit> {
        None
    }
}

#[cfg(all(test, unix))]
mod tests {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};

    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        // Start below the hard limit, as under systemd's default, whatever this shell gave us.
        let lowered = (hard / 2).min(soft).max(RESERVED + 64);
        setrlimit(Resource::RLIMIT_NOFILE, lowered, hard).expect("lower the soft limit");
        let raised = raise(0).expect("readable on Unix");
        let (now_soft, now_hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        assert_eq!((raised.soft, raised.hard), (now_soft, now_hard));
        assert_eq!(now_hard, hard, "the hard limit is left alone");
        assert!(now_soft > lowered || lowered == hard, "soft {now_soft} stayed at {lowered} (hard {hard})");
        assert_eq!(raised.connections(), now_soft - RESERVED);
    }
}
