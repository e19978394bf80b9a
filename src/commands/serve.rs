//! `iterable-lists serve`: the HTTP service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use delivery::Config;

/// Runs the service: Segment-compatible ingest (`POST /v1/batch`, `/v1/identify`,
/// `/v1/track`, `/v1/import`), the admin API under `/admin` (bearer token; described at
/// `/admin/openapi.json`), Prometheus metrics at `/metrics`, and `/healthz`, `/readyz`.
///
/// Point any Segment client at it by changing its host: the write key (Basic auth user name or
/// `writeKey` in the body) selects the `[[destination]]`. A batch is answered 200 only once it
/// is durable in the store; delivery to Iterable follows. On SIGINT or SIGTERM the service
/// stops accepting, gives delivery up to `--shutdown-timeout` to send what is pending, and
/// exits; what is still pending is sent after the next start.
///
/// Logs go to stderr (`RUST_LOG` sets the level, default `info`); they never contain an API
/// key, a write key or the admin token.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (TOML): store, server, delivery and destinations.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// Address to listen on; overrides `server.listen` (default 127.0.0.1:8088).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Log format: `text` or `json` (one JSON object per line).
    #[arg(
        long,
        value_name = "text|json",
        default_value = "text",
        env = "ITERABLE_LISTS_LOG_FORMAT"
    )]
    pub log_format: String,

    /// Seconds to keep delivering pending changes after a shutdown signal.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub shutdown_timeout: u64,
}

fn init_logs(format: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        "json" => {
            let _ = builder.json().flatten_event(true).try_init();
        }
        "text" => {
            let _ = builder.try_init();
        }
        other => anyhow::bail!("--log-format must be text or json, not {other:?}"),
    }
    Ok(())
}

/// Runs the command.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logs(&args.log_format)?;
    let config = Config::load(&args.config)?;
    let listen = args.listen.unwrap_or(config.server.listen);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = server::Server::start(config).await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        if server.state().admin_token.is_none() {
            tracing::warn!("no admin token configured: the admin API is disabled");
        }
        tracing::info!(%addr, "listening");
        eprintln!("iterable-lists serve: listening on http://{addr}");
        server
            .serve(
                listener,
                shutdown_signal(),
                Duration::from_secs(args.shutdown_timeout),
            )
            .await?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
