//! The EAS gateway: a mutual-TLS reverse proxy in front of the mail server's ActiveSync
//! endpoint (DESIGN §4 "Gateway behaviour").
//!
//! Per request, from memory only: the client certificate's chain (once per connection),
//! validity and revocation (every request), the user it names against the request's `User`,
//! the directory (disabled users, groups), the certificate's DeviceId binding, per-device
//! overrides and the access rules. Allowed requests stream to the upstream; the rest get the
//! EAS-correct refusal. The live state is a set of snapshots swapped when the store's change
//! feed reports a change ([`Gateway::reload`]).

pub mod certcheck;
pub mod config;
mod handler;
pub mod partnerships;
pub mod provisioning;
pub mod proxy;
mod quarantine;
pub mod refusals;
pub mod tls;
pub mod trust;
pub mod upstream;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use easgate_policy::Policy;
use futures_util::FutureExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

pub use config::GatewayConfig;

use crate::error::ServeError;
use crate::App;
use certcheck::ConnectionCertificate;
use partnerships::Partnerships;
use proxy::OutboundClient;
use tls::Identity;
use trust::{AnchorKind, Anchors, TrustedCrls};
use upstream::UpstreamPool;

/// A directory user as the gateway needs it.
#[derive(Clone, Debug)]
pub struct DirectoryUser {
    pub upn: String,
    pub disabled: bool,
    pub groups: Vec<String>,
}

/// Users by lower-case UPN and by lower-case email. Looked up on every request; hashed with
/// foldhash (a third of SipHash's cost) because only the store puts keys in, never a device.
#[derive(Default)]
pub struct Directory {
    by_upn: foldhash::HashMap<String, Arc<DirectoryUser>>,
    by_email: foldhash::HashMap<String, Arc<DirectoryUser>>,
}

impl Directory {
    pub fn find(&self, identity: &str) -> Option<Arc<DirectoryUser>> {
        // Identities are usually lower case already: no copy then.
        let key: std::borrow::Cow<'_, str> = if identity.bytes().any(|b| b.is_ascii_uppercase()) {
            identity.to_ascii_lowercase().into()
        } else {
            identity.into()
        };
        self.by_upn
            .get(key.as_ref())
            .or_else(|| self.by_email.get(key.as_ref()))
            .cloned()
    }
}

/// The gateway's live state.
pub struct Gateway {
    pub config: GatewayConfig,
    pub identity: Identity,
    tls: RwLock<Arc<ServerConfig>>,
    anchors: RwLock<Arc<Anchors>>,
    pub trusted_crls: TrustedCrls,
    directory: RwLock<Arc<Directory>>,
    policy: RwLock<Arc<Policy>>,
    provisioning: RwLock<Arc<provisioning::Provisioning>>,
    pub partnerships: Arc<Partnerships>,
    /// HTTP(S) client for what the server fetches or sends itself: trusted CAs' CRLs and
    /// renewal webhooks (proxied requests use each thread's [`UpstreamPool`]).
    pub http_client: OutboundClient,
    /// Trusted CAs changed since their CRLs were last fetched.
    trust_changed: Mutex<HashSet<String>>,
    /// (serial, DeviceId) pairs already reported as a stolen-certificate signal.
    pub flagged: Mutex<HashSet<(String, String)>>,
    /// Refusals and possible spoofs waiting for the audit trail.
    pub refusals: refusals::RefusalLog,
}

fn read<T>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    match lock.read() {
        Ok(v) => Arc::clone(&v),
        Err(p) => Arc::clone(&p.into_inner()),
    }
}

fn write<T>(lock: &RwLock<Arc<T>>, value: impl Into<Arc<T>>) {
    match lock.write() {
        Ok(mut v) => *v = value.into(),
        Err(p) => *p.into_inner() = value.into(),
    }
}

/// The gateway's TLS certificate and key files: `--gateway-cert`/`--gateway-key`, or the ones
/// the first start made in the data directory.
pub fn identity_paths(
    easgate: &easgate_ops::Easgate,
    config: &GatewayConfig,
) -> Result<(std::path::PathBuf, std::path::PathBuf), ServeError> {
    match (&config.cert, &config.key) {
        (Some(c), Some(k)) => Ok((c.clone(), k.clone())),
        (None, None) => Ok((
            easgate.data_dir.join(crate::init::GATEWAY_CERT_FILE),
            easgate.data_dir.join(crate::init::GATEWAY_KEY_FILE),
        )),
        _ => Err(ServeError::Config(
            "--gateway-cert and --gateway-key go together".into(),
        )),
    }
}

impl Gateway {
    /// Load everything the gateway decides with. `our_cas` are the CA certificates of ours.
    pub async fn load(
        easgate: &easgate_ops::Easgate,
        config: GatewayConfig,
        our_cas: Vec<(String, Vec<u8>)>,
    ) -> Result<Self, ServeError> {
        let (cert, key) = identity_paths(easgate, &config)?;
        let identity = Identity::load(&cert, &key)?;
        let anchors = build_anchors(easgate, our_cas, 1).await?;
        let tls = tls::server_config(&identity, anchors.hints.clone())?;
        let directory = load_directory(easgate).await?;
        let policy = load_policy(easgate, &config).await?;
        let trusted_header = config.upstream_auth.trusts_gateway();
        if trusted_header {
            let allowances = policy.unmanaged_allowances();
            if !allowances.is_empty() {
                let list = allowances
                    .iter()
                    .map(|a| format!("\n  - {a}"))
                    .collect::<String>();
                return Err(ServeError::Config(format!(
                    "--upstream-auth trusted-header: the upstream trusts the gateway's user header, so only requests with a valid certificate may ever be forwarded, but the policy lets devices without one through:{list}"
                )));
            }
        }
        easgate
            .record_upstream_auth(if trusted_header {
                easgate_ops::access::TRUSTED_HEADER
            } else {
                "passthrough"
            })
            .await?;
        let upstream = config.upstream.as_ref().map(ToString::to_string);
        easgate
            .record_serve_settings(&easgate_ops::doctor::ServeRecord {
                upstream: upstream.as_deref(),
                upstream_ca: config.upstream_ca.as_deref(),
                gateway_cert: &cert,
                gateway_key: &key,
            })
            .await?;
        let provisioning = load_provisioning(easgate).await?;
        let partnerships = Partnerships::load(easgate.store.as_ref())
            .await
            .map_err(easgate_ops::OpsError::from)?;
        let http_client = proxy::http_client(config.upstream_ca.as_deref())?;
        Ok(Gateway {
            config,
            identity,
            tls: RwLock::new(tls),
            anchors: RwLock::new(Arc::new(anchors)),
            trusted_crls: TrustedCrls::default(),
            directory: RwLock::new(Arc::new(directory)),
            policy: RwLock::new(Arc::new(policy)),
            provisioning: RwLock::new(Arc::new(provisioning)),
            partnerships: Arc::new(partnerships),
            http_client,
            trust_changed: Mutex::new(HashSet::new()),
            flagged: Mutex::new(HashSet::new()),
            refusals: refusals::RefusalLog::default(),
        })
    }

    pub fn anchors(&self) -> Arc<Anchors> {
        read(&self.anchors)
    }

    pub fn directory(&self) -> Arc<Directory> {
        read(&self.directory)
    }

    pub fn policy(&self) -> Arc<Policy> {
        read(&self.policy)
    }

    pub fn provisioning(&self) -> Arc<provisioning::Provisioning> {
        read(&self.provisioning)
    }

    /// Take a wipe's state as this gateway just recorded it.
    pub fn note_wipe(&self, wipe: &easgate_store::EasWipe) {
        let updated = self.provisioning().with_wipe(wipe);
        write(&self.provisioning, updated);
    }

    /// The trusted CAs added, changed or removed since the last call.
    pub fn take_trust_changes(&self) -> HashSet<String> {
        self.trust_changed
            .lock()
            .map(|mut set| std::mem::take(&mut *set))
            .unwrap_or_default()
    }
}

/// The policy from the store, refusing every request without a valid certificate when the
/// upstream trusts the gateway's user header.
async fn load_policy(
    easgate: &easgate_ops::Easgate,
    config: &GatewayConfig,
) -> Result<Policy, ServeError> {
    Ok(easgate
        .load_policy()
        .await?
        .with_certificate_required(config.upstream_auth.trusts_gateway()))
}

/// The policy after a change in the store. In trusted-header mode the CLI refuses changes that
/// would admit devices without a certificate, but a change can come from elsewhere: it is
/// loaded (the gateway refuses such requests all the same) and reported.
async fn reload_policy(app: &App) -> Result<(), ServeError> {
    let gw = &app.gateway;
    let policy = load_policy(&app.easgate, &gw.config).await?;
    if gw.config.upstream_auth.trusts_gateway() {
        for allowance in policy.unmanaged_allowances() {
            warn!(%allowance, "trusted-header mode: this would let devices without a certificate through; the gateway refuses them all the same");
        }
    }
    write(&gw.policy, policy);
    Ok(())
}

async fn build_anchors(
    easgate: &easgate_ops::Easgate,
    our_cas: Vec<(String, Vec<u8>)>,
    generation: u64,
) -> Result<Anchors, ServeError> {
    let mut certs: Vec<(AnchorKind, Vec<u8>)> = our_cas
        .into_iter()
        .map(|(name, der)| (AnchorKind::Ours(name), der))
        .collect();
    for t in easgate.list_trusted_cas().await? {
        certs.push((AnchorKind::Trusted(t.name), t.cert_der));
    }
    Ok(Anchors::build(&certs, generation))
}

async fn load_provisioning(
    easgate: &easgate_ops::Easgate,
) -> Result<provisioning::Provisioning, ServeError> {
    Ok(provisioning::Provisioning::new(
        easgate.list_eas_policies().await?,
        &easgate.list_eas_wipes().await?,
    ))
}

async fn load_directory(easgate: &easgate_ops::Easgate) -> Result<Directory, ServeError> {
    let mut directory = Directory::default();
    for u in easgate.list_users().await? {
        let user = Arc::new(DirectoryUser {
            upn: u.upn.clone(),
            disabled: u.disabled,
            groups: u.groups.clone(),
        });
        directory
            .by_email
            .insert(u.email.to_ascii_lowercase(), Arc::clone(&user));
        directory.by_upn.insert(u.upn.to_ascii_lowercase(), user);
    }
    Ok(directory)
}

/// What a store change means for the gateway.
pub async fn apply_change(app: &App, entity: &str, key: &str) -> Result<(), ServeError> {
    let gw = &app.gateway;
    match entity {
        "ca" | "trusted_ca" => {
            let our: Vec<(String, Vec<u8>)> = app
                .pki
                .all()
                .iter()
                .map(|ca| (ca.name.clone(), ca.cert_der.to_vec()))
                .collect();
            let generation = gw.anchors().generation + 1;
            let anchors = build_anchors(&app.easgate, our, generation).await?;
            write(
                &gw.tls,
                tls::server_config(&gw.identity, anchors.hints.clone())?,
            );
            write(&gw.anchors, anchors);
            if entity == "trusted_ca" {
                if let Ok(mut set) = gw.trust_changed.lock() {
                    set.insert(key.to_string());
                }
            }
            info!(
                change = entity,
                name = key,
                "gateway trust anchors reloaded"
            );
        }
        // The directory holds users and their groups only. A device change (enroll, challenge,
        // retire) leaves it as it was: reloading every user for each one cost tens of
        // milliseconds at 100,000 users, more work than the enrollment itself. Retiring a
        // device revokes its certificates, which reach the gateway as certificate changes.
        "user" | "group" => {
            write(&gw.directory, load_directory(&app.easgate).await?);
        }
        "rule" | "setting" => reload_policy(app).await?,
        "eas_policy" | "wipe" => {
            write(&gw.provisioning, load_provisioning(&app.easgate).await?);
        }
        "override" => {
            reload_policy(app).await?;
            // `eas clear` also forgets the DeviceId's wipe.
            write(&gw.provisioning, load_provisioning(&app.easgate).await?);
            let stored = app
                .easgate
                .store
                .get_partnerships(key)
                .await
                .map_err(easgate_ops::OpsError::from)?;
            gw.partnerships.forget_cleared(key, &stored);
        }
        "binding" => {
            let stored = app
                .easgate
                .store
                .get_binding(key)
                .await
                .map_err(easgate_ops::OpsError::from)?;
            if let Some(binding) = stored {
                gw.partnerships.adopt_binding(&binding);
            }
        }
        _ => {}
    }
    Ok(())
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One gateway thread as the acceptor sees it: where to hand it connections and how many it
/// has open.
pub struct Worker {
    inbox: mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr)>,
    open: Arc<AtomicUsize>,
}

/// Start `config.threads` gateway threads, each a single-threaded event loop with its own
/// upstream connection pool, the way nginx runs worker processes: a request, its upstream
/// exchange and its answer stay on one thread, with no wake-ups across threads (a
/// work-stealing runtime spent more time parking and waking threads than proxying; see
/// docs/BENCHMARKS.md). [`run`] accepts and hands each connection to the least busy thread.
/// The handles finish once shutdown is signalled and their connections have ended.
pub fn spawn_workers(
    app: &Arc<App>,
    shutdown: &watch::Receiver<bool>,
) -> Result<(Vec<Worker>, Vec<std::thread::JoinHandle<()>>), ServeError> {
    let mut workers = Vec::new();
    let mut handles = Vec::new();
    let mut tls = proxy::outbound_tls(app.gateway.config.upstream_ca.as_deref())?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = Arc::new(tls);
    for index in 0..app.gateway.config.threads.max(1) {
        let client = UpstreamPool::new(app.gateway.config.upstream.as_ref(), Arc::clone(&tls));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (inbox, arrivals) = mpsc::unbounded_channel();
        let open = Arc::new(AtomicUsize::new(0));
        let (app, shutdown, count) = (Arc::clone(app), shutdown.clone(), Arc::clone(&open));
        let handle = std::thread::Builder::new()
            .name(format!("gateway-{index}"))
            .spawn(move || runtime.block_on(work(app, arrivals, count, client, shutdown)))?;
        workers.push(Worker { inbox, open });
        handles.push(handle);
    }
    Ok((workers, handles))
}

/// Accept connections until shutdown and hand each to the thread with the fewest open.
pub async fn run(listener: TcpListener, workers: Vec<Worker>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                warn!(error = %e, "gateway accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(worker) = workers
            .iter()
            .min_by_key(|w| w.open.load(Ordering::Relaxed))
        else {
            return;
        };
        match tcp.into_std() {
            Ok(tcp) => {
                worker.open.fetch_add(1, Ordering::Relaxed);
                if worker.inbox.send((tcp, peer)).is_err() {
                    worker.open.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) => warn!(peer = %peer, error = %e, "gateway cannot hand over a connection"),
        }
    }
}

/// Counts a connection out of its thread's open connections when it ends.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a gateway thread waits, after shutdown, for its connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(6);

/// One gateway thread: serve the connections the acceptor hands over, each on its own task;
/// after shutdown, let those in flight finish (they close gracefully) before returning.
async fn work(
    app: Arc<App>,
    mut arrivals: mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    open: Arc<AtomicUsize>,
    upstream: UpstreamPool,
    shutdown: watch::Receiver<bool>,
) {
    while let Some((tcp, peer)) = arrivals.recv().await {
        let guard = OpenConnection(Arc::clone(&open));
        let tcp = match tokio::net::TcpStream::from_std(tcp) {
            Ok(tcp) => tcp,
            Err(e) => {
                warn!(peer = %peer, error = %e, "gateway thread cannot take a connection");
                continue;
            }
        };
        let (app, upstream, shutdown) = (Arc::clone(&app), upstream.clone(), shutdown.clone());
        tokio::spawn(
            serve_connection(app, tcp, peer, upstream, shutdown).map(move |()| drop(guard)),
        );
    }
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    while open.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn serve_connection(
    app: Arc<App>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    upstream: UpstreamPool,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(read(&app.gateway.tls));
    // The handshake state and the connection are boxed: on the heap each exists once and only
    // while needed, where this future would keep room for both (and a moved-out copy of the
    // TLS stream) for as long as the connection lives.
    let handshake = Box::pin(acceptor.accept(tcp));
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            debug!(peer = %peer, error = %e, "gateway TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!(peer = %peer, "gateway TLS handshake timed out");
            return;
        }
    };
    let alpn_is_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect());
    let conn = Arc::new(handler::Connection {
        peer,
        certificate: ConnectionCertificate::new(certs),
        forwarded_for: http::HeaderValue::from_str(&peer.ip().to_string())
            .unwrap_or_else(|_| http::HeaderValue::from_static("unknown")),
        upstream,
        classified: handler::ClassifyCache::default(),
        decisions: handler::DecisionCounterCache::default(),
    });
    let service = service_fn(move |req| {
        // `map`, not an async block: a block awaiting the handler's future would hold it twice
        // (as captured and as awaited), and hyper keeps that for every request in flight.
        let response = handler::handle(Arc::clone(&app), Arc::clone(&conn), req);
        response.map(Ok::<_, std::convert::Infallible>)
    });
    // ALPN decides the protocol (over TLS, HTTP/2 needs it: RFC 9113 §3.2), so each
    // connection holds only its own protocol's state, not an auto-detecting wrapper sized for
    // both.
    let io = TokioIo::new(tls);
    if alpn_is_h2 {
        let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(io, service);
        drive(Box::pin(connection), peer, &mut shutdown).await;
    } else {
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .serve_connection(io, service);
        drive(Box::pin(connection), peer, &mut shutdown).await;
    }
}

/// Run a connection to its end, or at shutdown let it finish what is in flight (5 s at most).
async fn drive<C>(
    mut connection: Pin<Box<C>>,
    peer: SocketAddr,
    shutdown: &mut watch::Receiver<bool>,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                debug!(peer = %peer, error = %e, "gateway connection ended with an error");
            }
        }
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), connection.as_mut()).await;
        }
    }
}
