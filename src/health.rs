//! The HTTP endpoints for Prometheus and for orchestrators: `/metrics`,
//! `/healthz` (the process lives) and `/readyz` (it can take work).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// Whether the worker can take work: connected to the broker with the
/// topology declared and consuming (which it does only once the product list
/// is known).
#[derive(Clone, Default)]
pub struct Readiness {
    consuming: Arc<AtomicBool>,
}

impl Readiness {
    /// Reports whether the worker consumes.
    pub fn set_consuming(&self, consuming: bool) {
        self.consuming.store(consuming, Ordering::Relaxed);
        metrics::broker_ready(consuming);
    }

    /// Whether the worker consumes.
    pub fn is_ready(&self) -> bool {
        self.consuming.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct Shared {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

/// Binds `addr` and serves until `stop` fires. Binding happens before this
/// returns, so a port already in use is reported at start.
pub async fn serve(
    addr: SocketAddr,
    readiness: Readiness,
    stop: CancellationToken,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let metrics = metrics::install();
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let upkeep = metrics.clone();
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Shared { metrics, readiness });
    let task = tokio::spawn(async move {
        // Drains histogram samples into their buckets between scrapes.
        let upkeep = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                upkeep.run_upkeep();
            }
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
        upkeep.abort();
    });
    Ok((bound, task))
}

async fn render_metrics(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
}

async fn ready(State(shared): State<Shared>) -> impl IntoResponse {
    if shared.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not consuming from the broker\n",
        )
    }
}
