//! `mttrly-mcp`: the standalone MCP server. Parses arguments, connects to central, serves MCP over
//! stdio (for local clients) or Streamable HTTP on a loopback address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use mttrly_core::ToolSurface;
use mttrly_mcp::remote::RemoteCentral;
use mttrly_mcp::server::{McpServer, Options};
use rmcp::ServiceExt as _;

/// mttrly-mcp: serves mttrly's tools to a local MCP client (stdio) or over HTTP on this machine,
/// in front of a remote mttrly-central. Logs go to stderr; stdout is the protocol.
#[derive(Debug, Parser)]
#[command(name = "mttrly-mcp", version, max_term_width = 100)]
struct Cli {
    /// Central's gRPC URL.
    #[arg(long, env = "MTTRLY_CENTRAL", default_value = "http://127.0.0.1:50051")]
    central: String,
    /// A bearer token: an assistant token (`mttrly-cli tokens create --assistant NAME`), or your
    /// human token if you want approvals you confirm in the client to count.
    #[arg(long, env = "MTTRLY_TOKEN", hide_env_values = true)]
    token: String,
    /// The CA certificate of an https:// central.
    #[arg(long, env = "MTTRLY_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Serve Streamable HTTP on this loopback address (for example 127.0.0.1:8765) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Browser origins allowed to call the HTTP endpoint (repeatable). Others get 403.
    #[arg(long = "allowed-origin", value_name = "ORIGIN", requires = "http")]
    allowed_origins: Vec<String>,
    /// Advertise and allow only tools that change nothing.
    #[arg(long)]
    read_only: bool,
    /// Advertise and allow only these toolsets, comma-separated (servers, diagnostics, playbooks,
    /// commands, files, actions, install, investigations, knowledge).
    #[arg(long, value_name = "LIST")]
    toolsets: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MTTRLY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let surface = ToolSurface::from_flags(cli.read_only, cli.toolsets.as_deref()).map_err(|e| e.to_string())?;
    let channel = mttrly_proto::client::connect(&cli.central, Some(&cli.token), cli.ca_cert.as_deref())
        .await
        .map_err(|e| format!("[{}] {}", e.code(), e.message()))?;
    let backend = Arc::new(RemoteCentral::new(channel));
    let options = Options { surface, human_wait: mttrly_mcp::server::DEFAULT_HUMAN_WAIT, ..Options::default() };
    match cli.http {
        None => {
            let server = McpServer::with_caller(backend, Arc::new(options), ());
            let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| format!("MCP over stdio: {e}"))?;
            running.waiting().await.map_err(|e| format!("MCP session ended: {e}"))?;
            Ok(())
        }
        Some(addr) => {
            if !addr.ip().is_loopback() {
                return Err(format!(
                    "--http {addr}: the standalone server has no client authentication, so it only listens on loopback; \
                     for remote clients use central's /mcp (with OAuth)"
                ));
            }
            let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
            hosts.push(addr.ip().to_string());
            let mut origins = cli.allowed_origins.clone();
            origins.push(format!("http://localhost:{}", addr.port()));
            origins.push(format!("http://127.0.0.1:{}", addr.port()));
            let mcp = mttrly_mcp::http::service_with_caller(
                backend,
                options,
                mttrly_mcp::http::HttpOptions { allowed_hosts: hosts, allowed_origins: origins },
                (),
            );
            let app = axum::Router::new().nest_service("/mcp", mcp);
            let listener =
                tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            eprintln!("mttrly-mcp: serving MCP at http://{bound}/mcp");
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| format!("HTTP server failed: {e}"))
        }
    }
}
