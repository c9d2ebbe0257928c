//! Starting and stopping the simulator.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::auth::BasicAuth;
use super::config::SimulatorConfig;
use super::partner::Partner;
use super::routes::{self, AppState};
use super::rules::FaultRule;
use super::scenario::Scenario;
use super::stats::{RequestStats, Totals};

/// A simulator running in a task of its own; dropping it stops the server.
pub struct SimulatorHandle {
    addr: SocketAddr,
    state: Arc<AppState>,
    task: Option<JoinHandle<io::Result<()>>>,
}

/// A bound socket and the state to serve it with.
struct Bound {
    listener: TcpListener,
    state: Arc<AppState>,
}

/// Binds `config.listen`, then serves in a spawned task.
///
/// Returns once the socket is bound, so the address is known and a bind
/// error comes back here.
pub async fn spawn(config: SimulatorConfig) -> io::Result<SimulatorHandle> {
    let bound = Bound::bind(&config, CancellationToken::new()).await?;
    let addr = bound.listener.local_addr()?;
    let state = bound.state.clone();
    let task = tokio::spawn(bound.run());
    Ok(SimulatorHandle {
        addr,
        state,
        task: Some(task),
    })
}

/// Binds `config.listen` and serves until `shutdown` is cancelled.
///
/// Logs `listening` with the address once bound; prints nothing.
pub async fn serve(config: SimulatorConfig, shutdown: CancellationToken) -> io::Result<()> {
    Bound::bind(&config, shutdown).await?.run().await
}

impl Bound {
    async fn bind(config: &SimulatorConfig, shutdown: CancellationToken) -> io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        info!(addr = %listener.local_addr()?, "listening");
        let state = Arc::new(AppState {
            partner: Partner::new(config),
            auth: BasicAuth::new(&config.username, &config.password),
            latency: config.latency,
            shutdown,
        });
        Ok(Bound { listener, state })
    }

    /// Serves until shutdown, then waits for the answers in flight.
    async fn run(self) -> io::Result<()> {
        let shutdown = self.state.shutdown.clone();
        // Without TCP_NODELAY a kept-alive connection can wait on the
        // client's delayed ACK (about 40 ms) before each reply goes out.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                debug!(%error, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, routes::router(self.state))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }
}

impl SimulatorHandle {
    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDRESS`, the partner base URL to give a client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Scripts one request id, replacing its earlier scenario.
    pub fn script(&self, request_id: &str, scenario: Scenario) {
        self.state.partner.script(request_id, scenario);
    }

    /// Replaces the fault rules.
    pub fn set_rules(&self, rules: Vec<FaultRule>) {
        self.state.partner.set_rules(rules);
    }

    /// What happened to one request id (all zero if never seen).
    pub fn stats(&self, request_id: &str) -> RequestStats {
        self.state.partner.stats(request_id)
    }

    /// Counts over all requests since the start or the last reset.
    pub fn totals(&self) -> Totals {
        self.state.partner.totals()
    }

    /// Forgets applications and counts, as `POST /_reset` does.
    pub fn reset(&self) {
        self.state.partner.reset();
    }

    /// Stops accepting, cuts held-back answers short, and waits for the
    /// server task.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.state.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}

impl fmt::Debug for SimulatorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
