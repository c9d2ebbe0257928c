//! An answer the simulator has decided on: status, headers, body, and how
//! long to hold it back before sending.

use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::codes;

/// `Content-Type` of JSON bodies.
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// `Content-Type` of error pages.
pub(crate) const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");

/// `Content-Type` of other text bodies.
pub(crate) const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// A reply decided on but not yet sent.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// `Content-Type`, if the answer has one.
    pub content_type: Option<HeaderValue>,
    /// Further headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: Vec<u8>,
    /// How long to wait before sending.
    pub delay: Duration,
}

/// The partner's success shape: `{"status": "success", "data": ...}`.
#[derive(Serialize)]
pub(crate) struct Success<'a, D> {
    pub status: &'a str,
    pub data: D,
}

/// The partner's error shape: `{"status": "error", "code", "message", "data": null}`.
#[derive(Serialize)]
pub(crate) struct Failure<'a, C> {
    pub status: &'a str,
    pub code: C,
    pub message: &'a str,
    pub data: (),
}

/// The `data` of a successful status check.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CardData<N, E> {
    pub card_number: N,
    pub exp: E,
}

/// A refusal that is not one of the partner's codes (bad body, no credentials).
#[derive(Serialize)]
struct Complaint<'a> {
    status: &'static str,
    message: &'a str,
    data: (),
}

impl Answer {
    /// A JSON body with this status.
    pub(crate) fn json(status: StatusCode, body: &impl Serialize) -> Self {
        // Our bodies are structs and JSON values with string keys, which
        // always serialise; an empty body would show any mistake plainly.
        let body = serde_json::to_vec(body).unwrap_or_default();
        Self::raw(status, Some(JSON), body)
    }

    /// A body sent as given.
    pub(crate) fn raw(
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Vec<u8>,
    ) -> Self {
        Answer {
            status,
            content_type,
            headers: HeaderMap::new(),
            body,
            delay: Duration::ZERO,
        }
    }

    /// `{"status": "success", "data": data}` with HTTP 200.
    pub(crate) fn success(data: impl Serialize) -> Self {
        Self::json(
            StatusCode::OK,
            &Success {
                status: "success",
                data,
            },
        )
    }

    /// The partner's error body for `code`, with its text, and HTTP 200 (the
    /// document shows no other status with it).
    pub(crate) fn error(code: &str) -> Self {
        let message = codes::message(code);
        Self::json(
            StatusCode::OK,
            &Failure {
                status: "error",
                code,
                message,
                data: (),
            },
        )
    }

    /// An error without a partner code, for requests the partner cannot read.
    pub(crate) fn complaint(status: StatusCode, message: &str) -> Self {
        Self::json(
            status,
            &Complaint {
                status: "error",
                message,
                data: (),
            },
        )
    }

    /// 401, asking for basic credentials.
    pub(crate) fn unauthorized() -> Self {
        let mut answer = Self::complaint(StatusCode::UNAUTHORIZED, "unauthorized");
        let challenge = HeaderValue::from_static("Basic realm=\"partner\"");
        answer.headers.insert(WWW_AUTHENTICATE, challenge);
        answer
    }

    /// The kind of HTML page a proxy in front of the partner sends.
    pub(crate) fn error_page(status: StatusCode) -> Self {
        let reason = status.canonical_reason().unwrap_or("Error");
        let title = format!("{} {reason}", status.as_u16());
        let page = format!(
            "<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n\
             <body><h1>{title}</h1><p>The server could not complete the request.</p>\
             <hr><address>partner-gateway</address></body></html>\n"
        );
        Self::raw(status, Some(HTML), page.into_bytes())
    }

    /// The same answer, held back `delay` longer.
    pub(crate) fn after(mut self, delay: Duration) -> Self {
        self.delay += delay;
        self
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if let Some(content_type) = self.content_type {
            headers.insert(CONTENT_TYPE, content_type);
        }
        headers.extend(self.headers);
        response
    }
}
