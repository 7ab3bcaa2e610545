//! Waiting for the operator (or the service manager) to ask central to stop.
//!
//! Central's own copy, not the agent's: the server and the agent share no code (a central built
//! without the `quickstart-agent` feature does not link the agent crate at all).

/// A registered interest in SIGINT and SIGTERM. Register it *before* announcing readiness: a
/// signal that arrives earlier would otherwise kill the process without a graceful shutdown.
pub struct ShutdownSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Installs the handlers now. Must be called inside a tokio runtime.
    pub fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Resolves on SIGINT (Ctrl-C) or SIGTERM (what systemd and `kill` send).
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
