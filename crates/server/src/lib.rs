//! easgate's servers. `serve` initialises an empty data directory, loads every CA into memory,
//! and runs the public PKI listener (CA certificates, CRLs, OCSP) and the admin listener
//! (`/healthz`, `/metrics`), with background jobs that apply the store's change feed and keep
//! CRLs and OCSP responders fresh, and the EAS gateway listener (mutual TLS, access rules,
//! streaming proxy; see [`gateway`]).

pub mod admin;
pub mod api;
pub mod config;
pub mod console;
mod error;
pub mod freshness;
pub mod gateway;
pub mod http_listener;
pub mod init;
pub mod jobs;
pub mod metrics;
pub mod ndes;
pub mod public;
pub mod readiness;
pub mod renewal;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use easgate_ops::context::acting_as;
use easgate_ops::Easgate;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

pub use config::{FileConfig, ServeConfig};
pub use error::ServeError;

use crate::metrics::Metrics;
use crate::state::{CaState, PkiState};

/// Everything the handlers and jobs share.
pub struct App {
    pub easgate: Easgate,
    pub config: ServeConfig,
    pub pki: PkiState,
    pub metrics: Metrics,
    pub gateway: gateway::Gateway,
    /// API calls counted for the audit trail.
    pub api_calls: api::call_log::CallLog,
    /// The web console's signed-in sessions.
    pub console: console::session::Sessions,
    /// The change-feed revision the in-memory state was loaded at.
    pub start_revision: i64,
    /// How current the in-memory state is with the store.
    pub freshness: freshness::StoreFreshness,
}

/// Log to stderr, one line per event; `EASGATE_LOG` (or `RUST_LOG`) filters, default `info`.
pub fn init_logging() {
    let filter = std::env::var("EASGATE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Run until SIGINT or SIGTERM.
pub async fn serve(
    easgate: Easgate,
    config: ServeConfig,
    public_url_given: bool,
) -> Result<(), ServeError> {
    for note in init::initialise(&easgate, public_url_given, Some(config.gateway.listen)).await? {
        eprintln!("easgate: {note}");
    }
    let start_revision = easgate
        .store
        .revision()
        .await
        .map_err(easgate_ops::OpsError::from)?;
    let pki = PkiState::default();
    for ca in easgate.list_cas().await? {
        pki.insert(CaState::load(&easgate, &ca.ca.name, jobs::RESPONDER_VALIDITY).await?);
    }
    let our_cas: Vec<(String, Vec<u8>)> = pki
        .all()
        .iter()
        .map(|ca| (ca.name.clone(), ca.cert_der.to_vec()))
        .collect();
    let gateway = gateway::Gateway::load(&easgate, config.gateway.clone(), our_cas.clone()).await?;
    if let Some(note) = init::record_gateway_tls_ca(&easgate, &gateway.identity, &our_cas).await? {
        eprintln!("easgate: {note}");
    }
    let app = Arc::new(App {
        easgate,
        config: config.clone(),
        pki,
        metrics: Metrics::new(),
        gateway,
        api_calls: api::call_log::CallLog::default(),
        console: console::session::Sessions::default(),
        start_revision,
        freshness: freshness::StoreFreshness::new(config.max_staleness),
    });

    let public = bind("public PKI", config.public_listen).await?;
    let admin = bind("admin", config.admin_listen).await?;
    let gateway_listener = bind("gateway", config.gateway.listen).await?;
    eprintln!(
        "easgate: public PKI listening on http://{}",
        public.local_addr()?
    );
    let admin_tls = match &config.admin_tls {
        Some(paths) => {
            let (cert, key) = match (&paths.cert, &paths.key) {
                (Some(c), Some(k)) => (c.clone(), k.clone()),
                _ => gateway::identity_paths(&app.easgate, &config.gateway)?,
            };
            let identity = gateway::tls::Identity::load(&cert, &key)?;
            Some(tokio_rustls::TlsAcceptor::from(
                gateway::tls::plain_server_config(&identity)?,
            ))
        }
        None => None,
    };
    eprintln!(
        "easgate: admin listening on {}://{}",
        if admin_tls.is_some() { "https" } else { "http" },
        admin.local_addr()?
    );
    eprintln!(
        "easgate: gateway listening on https://{}{}",
        gateway_listener.local_addr()?,
        match &config.gateway.upstream {
            Some(upstream) => format!(" (upstream {upstream})"),
            None => " (no --upstream: devices are checked and recorded, allowed requests get 502)"
                .into(),
        }
    );
    let public_url = app.easgate.public_url().await?;
    eprintln!("easgate: public URL {public_url}");
    if let Some(warning) = easgate_ops::context::public_url_warning(&public_url) {
        eprintln!("easgate: warning: {warning}");
    }

    let (stop, stopped) = watch::channel(false);
    let follower = tokio::spawn(jobs::follow_changes(Arc::clone(&app), stopped.clone()));
    let maintainer = tokio::spawn(acting_as(
        "job:crl",
        jobs::maintain(Arc::clone(&app), stopped.clone()),
    ));
    let renewals = tokio::spawn(acting_as(
        "job:renewal",
        renewal::run(Arc::clone(&app), stopped.clone()),
    ));
    let trusted_crls = tokio::spawn(gateway::trust::refresh_trusted_crls(
        Arc::clone(&app),
        stopped.clone(),
    ));
    let flusher = tokio::spawn(gateway::partnerships::flush_loop(
        Arc::clone(&app),
        stopped.clone(),
    ));
    let stopped_gateway = stopped.clone();
    let (gateway_workers, gateway_threads) = gateway::spawn_workers(&app, &stopped)?;
    let gateway_server = tokio::spawn(async move {
        // The acceptor ends at shutdown, closing the threads' inboxes; then they drain.
        gateway::run(gateway_listener, gateway_workers, stopped_gateway).await;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in gateway_threads {
                let _ = thread.join();
            }
        })
        .await;
    });

    let limits = config.http_limits;
    let public_server = http_listener::serve(
        "public",
        public,
        public::router(Arc::clone(&app)),
        limits,
        None,
        stopped.clone(),
    );
    let admin_server = http_listener::serve(
        "admin",
        admin,
        admin::router(Arc::clone(&app)),
        limits,
        admin_tls,
        stopped.clone(),
    );

    let signal = async {
        shutdown_signal().await;
        info!("shutting down: finishing requests in flight");
        let _ = stop.send(true);
    };
    tokio::join!(public_server, admin_server, signal);
    let _ = tokio::join!(
        follower,
        maintainer,
        renewals,
        trusted_crls,
        gateway_server,
        flusher
    );
    info!("stopped");
    Ok(())
}

async fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            listener,
            addr,
            source,
        })
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
