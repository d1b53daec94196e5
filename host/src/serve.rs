//! `switchboard serve`: binds the listener, opens the data directory and runs the API until
//! SIGTERM or Ctrl-C, then stops accepting, finishes in-flight requests (each already waits
//! for its commit) and returns.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use rand::Rng as _;
use tokio::net::TcpListener;

use crate::api;
use crate::runtime::Compiler;
use crate::service::{Service, ServiceOptions};

/// Settings of `switchboard serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory (the redb file and the artifact cache).
    pub data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://…`) to keep the state in instead of the redb file.
    pub database: Option<String>,
    /// Platform admin token; generated (and printed once) when `None`.
    pub admin_token: Option<String>,
    /// Where webhooks may go besides public addresses (`--webhook-allow`).
    pub webhook_allow: crate::webhooks::UrlPolicy,
    /// The most a tenant admin may raise each limit to (`--limit-caps`).
    pub limit_caps: crate::limits::Limits,
    /// Evaluations one tenant may run at once (`--tenant-evaluations`).
    pub tenant_evaluations: Option<u32>,
}

/// A fresh random platform admin token.
pub fn generate_admin_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "sbadmin_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Serves `service` on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn run(
    service: Arc<Service>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, _) = tokio::sync::watch::channel(false);
    let loops = service.spawn_loops(&stop);
    let served = axum::serve(listener, api::app(service.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop.send(true);
    for task in loops {
        let _ = task.await;
    }
    if service.store.is_shared() {
        match crate::cluster::leave(&service.store, service.deliveries.node()).await {
            Ok(n) => tracing::info!(leases = n, "left the cluster; the other nodes take over"),
            Err(e) => {
                tracing::error!(error = %e, "leaving the cluster failed; the others take over when this node's heartbeat is old")
            }
        }
    }
    served
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// The whole `serve` command: open, bind, serve until a signal.
pub fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let token = match config.admin_token {
        Some(t) if !t.is_empty() => t,
        _ => {
            let t = generate_admin_token();
            println!(
                "platform admin token (shown once; set SWITCHBOARD_ADMIN_TOKEN to keep one): {t}"
            );
            t
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let options = ServiceOptions {
            delivery: crate::webhooks::DeliveryConfig {
                policy: config.webhook_allow.clone(),
                ..Default::default()
            },
            compiler: Compiler::this_binary()?,
            limit_caps: config.limit_caps,
            tenant_evaluations: config.tenant_evaluations,
            database: config.database.clone(),
        };
        let service =
            tokio::task::spawn_blocking(move || Service::open_with(&data_dir, &token, options))
                .await??;
        let listener = TcpListener::bind(config.listen).await?;
        let address = listener.local_addr()?;
        tracing::info!(
            listen = %address,
            data_dir = %config.data_dir.display(),
            store = if config.database.is_some() { "postgres" } else { "redb" },
            console = %format!("http://{address}/"),
            "switchboard serving"
        );
        run(Arc::new(service), listener, shutdown_signal()).await?;
        anyhow::Ok(())
    })
}
