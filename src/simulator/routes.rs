//! The partner's three endpoints over HTTP, behind latency and basic auth.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use super::answer::Answer;
use super::auth::BasicAuth;
use super::control;
use super::partner::Partner;
use super::request::OpenCardRequest;
use super::rules::Endpoint;

/// What every handler shares.
pub(crate) struct AppState {
    pub partner: Partner,
    pub auth: BasicAuth,
    pub latency: Duration,
    /// Cancelled on shutdown; cuts every held-back answer short.
    pub shutdown: CancellationToken,
}

/// The partner endpoints, the control endpoints and a JSON 404 for the rest.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let partner = Router::new()
        .route("/api/v1/products", get(products))
        .route("/api/v1/open-card", post(open_card))
        .route("/card/status/{request_id}", get(status))
        .route_layer(middleware::from_fn_with_state(state.clone(), gate));
    partner
        .merge(control::router())
        .fallback(not_found)
        .with_state(state)
}

impl AppState {
    /// Waits `delay`, or less if the simulator is shutting down.
    pub(crate) async fn pause(&self, delay: Duration) {
        // Skipping the timer for no delay keeps the fast path free of it.
        if delay.is_zero() {
            return;
        }
        // A timeout fault may hold an answer for many seconds; shutdown must
        // not wait for it.
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.shutdown.cancelled() => {}
        }
    }

    async fn send(&self, answer: Answer) -> Response {
        self.pause(answer.delay).await;
        answer.into_response()
    }
}

/// The configured latency, then the credentials check, before any partner
/// endpoint.
async fn gate(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    app.pause(app.latency).await;
    if !app.auth.admits(request.headers()) {
        app.partner.count_unauthorized();
        return Answer::unauthorized().into_response();
    }
    next.run(request).await
}

async fn products(State(app): State<Arc<AppState>>) -> Response {
    let answer = app.partner.products();
    app.send(answer).await
}

async fn open_card(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let answer = match OpenCardRequest::parse(&body) {
        Ok(request) => app.partner.open_card(&request),
        Err(error) => app
            .partner
            .bad_request(Endpoint::OpenCard, &error.to_string()),
    };
    app.send(answer).await
}

/// The request id is one path segment, percent-decoded by the extractor
/// (`%2F` included, since routing matches the still-encoded path).
async fn status(
    State(app): State<Arc<AppState>>,
    request_id: Result<Path<String>, PathRejection>,
) -> Response {
    let answer = match request_id {
        Ok(Path(request_id)) => app.partner.status(&request_id),
        Err(_) => {
            let reason = "request id is not UTF-8 once percent-decoded";
            app.partner.bad_request(Endpoint::Status, reason)
        }
    };
    app.send(answer).await
}

async fn not_found() -> Response {
    Answer::complaint(StatusCode::NOT_FOUND, "not found").into_response()
}
