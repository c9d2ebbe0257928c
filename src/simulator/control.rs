//! Control endpoints for tests and demos: no auth, no latency, and never
//! counted as partner calls.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::answer::Answer;
use super::routes::AppState;
use super::rules::FaultRule;
use super::scenario::Scenarios;

/// `/_health`, `/_stats`, `/_scenarios`, `/_rules` and `/_reset`.
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/_health", get(health))
        .route("/_stats", get(stats))
        .route("/_scenarios", post(merge_scenarios))
        .route("/_rules", post(replace_rules))
        .route("/_reset", post(reset))
}

async fn health() -> Response {
    done()
}

/// Totals and every request's stats.
async fn stats(State(app): State<Arc<AppState>>) -> Response {
    Answer::json(StatusCode::OK, &app.partner.snapshot()).into_response()
}

/// Merges `{requestId: scenario, ...}` into the scenarios.
async fn merge_scenarios(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    apply(&body, |scenarios: Scenarios| {
        app.partner.merge_scenarios(scenarios)
    })
}

/// Replaces the fault rules with `["open-card:0.1:1007", ...]`.
async fn replace_rules(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    apply(&body, |rules: Vec<FaultRule>| app.partner.set_rules(rules))
}

/// Forgets applications and counts; scenarios and rules stay.
async fn reset(State(app): State<Arc<AppState>>) -> Response {
    app.partner.reset();
    done()
}

/// Reads a JSON body and acts on it, or answers 400 saying why not (the
/// input is the tester's own, so serde's message, with line and column, is
/// the useful answer).
fn apply<T: DeserializeOwned>(body: &[u8], action: impl FnOnce(T)) -> Response {
    match serde_json::from_slice(body) {
        Ok(value) => {
            action(value);
            done()
        }
        Err(error) => {
            Answer::complaint(StatusCode::BAD_REQUEST, &error.to_string()).into_response()
        }
    }
}

fn done() -> Response {
    Answer::json(StatusCode::OK, &json!({"status": "ok"})).into_response()
}
