//! One scripted reply, as written in a scenario, and how it becomes an answer.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use super::answer::{Answer, CardData, Failure, HTML, Success, TEXT};
use super::applications::IssuedCard;
use super::card;
use super::codes;

/// A JSON string or number, sent back with the type it was given.
///
/// Clients must cope with `"code": 1005` as well as `"code": "1005"`, so a
/// scenario can write either.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A JSON string.
    Text(String),
    /// A JSON number.
    Number(serde_json::Number),
}

/// One scripted reply.
///
/// In JSON: `http` (status, default 200); the body as one of `body` (JSON
/// sent as is), `raw` (text, such as an HTML page), `empty: true`, `code`
/// (the partner's error shape; `message` overrides its text) or `ok: true`
/// (the success shape; on a status check with card data, whose `card` and
/// `exp` may be overridden); `status_text` overrides `"success"`/`"error"`;
/// `delay_ms` holds the reply back; `content_type` and `headers` set headers.
/// Without any body field the reply is a success.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "ReplySpec")]
pub struct Reply {
    /// The HTTP status.
    pub http: StatusCode,
    /// The body.
    pub content: ReplyContent,
    /// How long to hold the reply back, on top of the configured latency.
    pub delay: Duration,
    /// A `Content-Type` replacing the one that goes with the body.
    pub content_type: Option<HeaderValue>,
    /// Further headers, such as `Retry-After`.
    pub headers: HeaderMap,
}

/// The body of a scripted reply.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyContent {
    /// The partner's success shape.
    Success {
        /// Replaces `"success"` (the document once writes `"Success"`).
        status_text: Option<String>,
        /// Replaces the card number a status check returns.
        card: Option<Scalar>,
        /// Replaces the expiry a status check returns.
        exp: Option<Scalar>,
    },
    /// The partner's error shape.
    Error {
        /// The code, with the JSON type it was given.
        code: Scalar,
        /// Replaces the partner's text for the code.
        message: Option<String>,
        /// Replaces `"error"`.
        status_text: Option<String>,
    },
    /// A JSON body sent as is.
    Json(serde_json::Value),
    /// A text body sent as is.
    Raw(String),
    /// No body at all.
    Empty,
}

/// Why a scripted reply was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    /// An HTTP status outside 100 to 999.
    #[error("`http` {0} is not an HTTP status")]
    Http(u16),
    /// More than one way to give the body.
    #[error("a reply takes only one of `body`, `raw`, `empty`, `ok` and `code`")]
    SeveralBodies,
    /// `ok: false`, which says nothing about what to send.
    #[error("`ok` can only be true; give `code` for an error")]
    OkFalse,
    /// A field that belongs to another kind of body.
    #[error("`{0}` goes only with {1}")]
    Misplaced(&'static str, &'static str),
    /// A header name or value HTTP does not allow.
    #[error("header `{0}` is not a valid HTTP header")]
    Header(String),
}

/// A reply as written, before it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplySpec {
    #[serde(default = "default_http")]
    http: u16,
    body: Option<serde_json::Value>,
    raw: Option<String>,
    #[serde(default)]
    empty: bool,
    ok: Option<bool>,
    code: Option<Scalar>,
    message: Option<String>,
    card: Option<Scalar>,
    exp: Option<Scalar>,
    status_text: Option<String>,
    #[serde(default)]
    delay_ms: u64,
    content_type: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, Scalar>,
}

impl Reply {
    /// A success reply with HTTP 200.
    pub fn success() -> Self {
        Self::new(ReplyContent::Success {
            status_text: None,
            card: None,
            exp: None,
        })
    }

    /// The partner's error body for `code`, with HTTP 200.
    pub fn code(code: impl Into<Scalar>) -> Self {
        let code = code.into();
        Self::new(ReplyContent::Error {
            code,
            message: None,
            status_text: None,
        })
    }

    /// A reply with this body and HTTP 200.
    pub fn new(content: ReplyContent) -> Self {
        Reply {
            http: StatusCode::OK,
            content,
            delay: Duration::ZERO,
            content_type: None,
            headers: HeaderMap::new(),
        }
    }

    /// The same reply with another HTTP status.
    pub fn with_http(mut self, http: StatusCode) -> Self {
        self.http = http;
        self
    }

    /// The same reply, held back this long.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Whether this is the success shorthand, which tells the partner to
    /// remember the application (open-card) or the issued card (status).
    pub(crate) fn is_success(&self) -> bool {
        matches!(self.content, ReplyContent::Success { .. })
    }

    /// The card this reply hands out for a status check, if it is a success.
    pub(crate) fn card(&self, request_id: &str) -> Option<IssuedCard> {
        let (number, exp) = self.card_fields(request_id)?;
        Some(IssuedCard {
            number: number.to_string(),
            exp: exp.to_string(),
        })
    }

    /// The answer to an open-card call (success carries `data: null`).
    pub(crate) fn open_card_answer(&self) -> Answer {
        self.answer(None)
    }

    /// The answer to a status check for `request_id`.
    pub(crate) fn status_answer(&self, request_id: &str) -> Answer {
        self.answer(self.card_fields(request_id))
    }

    /// Card number and expiry of a success: as scripted, else the stateful
    /// partner's for this request id.
    fn card_fields(&self, request_id: &str) -> Option<(Scalar, Scalar)> {
        let ReplyContent::Success { card, exp, .. } = &self.content else {
            return None;
        };
        let number = card
            .clone()
            .unwrap_or_else(|| Scalar::Text(card::card_number(request_id)));
        let exp = exp
            .clone()
            .unwrap_or_else(|| Scalar::Text(card::expiry(request_id)));
        Some((number, exp))
    }

    fn answer(&self, card: Option<(Scalar, Scalar)>) -> Answer {
        let mut answer = self.body_answer(card);
        if let Some(content_type) = &self.content_type {
            answer.content_type = Some(content_type.clone());
        }
        answer.headers.extend(self.headers.clone());
        answer.after(self.delay)
    }

    fn body_answer(&self, card: Option<(Scalar, Scalar)>) -> Answer {
        match &self.content {
            ReplyContent::Success { status_text, .. } => {
                let status = status_text.as_deref().unwrap_or("success");
                let data = card.map(|(card_number, exp)| CardData { card_number, exp });
                Answer::json(self.http, &Success { status, data })
            }
            ReplyContent::Error {
                code,
                message,
                status_text,
            } => {
                let status = status_text.as_deref().unwrap_or("error");
                let text = code.to_string();
                let message = message.as_deref().unwrap_or_else(|| codes::message(&text));
                Answer::json(
                    self.http,
                    &Failure {
                        status,
                        code,
                        message,
                        data: (),
                    },
                )
            }
            ReplyContent::Json(value) => Answer::json(self.http, value),
            ReplyContent::Raw(text) => {
                Answer::raw(self.http, Some(text_type(text)), text.clone().into_bytes())
            }
            ReplyContent::Empty => Answer::raw(self.http, None, Vec::new()),
        }
    }
}

/// An HTML type for text that looks like markup, plain text otherwise.
fn text_type(text: &str) -> HeaderValue {
    if text.trim_start().starts_with('<') {
        HTML
    } else {
        TEXT
    }
}

fn default_http() -> u16 {
    200
}

impl TryFrom<ReplySpec> for Reply {
    type Error = ReplyError;

    fn try_from(spec: ReplySpec) -> Result<Self, Self::Error> {
        let http = StatusCode::from_u16(spec.http).map_err(|_| ReplyError::Http(spec.http))?;
        let delay = Duration::from_millis(spec.delay_ms);
        let content_type = spec.content_type.as_deref().map(header_value).transpose()?;
        let headers = header_map(&spec.headers)?;
        let content = content(spec)?;
        Ok(Reply {
            http,
            content,
            delay,
            content_type,
            headers,
        })
    }
}

/// The body a spec asks for, refusing fields that do not fit it.
fn content(spec: ReplySpec) -> Result<ReplyContent, ReplyError> {
    let chosen = [
        spec.body.is_some(),
        spec.raw.is_some(),
        spec.empty,
        spec.ok.is_some(),
        spec.code.is_some(),
    ];
    if chosen.iter().filter(|&&given| given).count() > 1 {
        return Err(ReplyError::SeveralBodies);
    }
    if spec.ok == Some(false) {
        return Err(ReplyError::OkFalse);
    }
    let is_error = spec.code.is_some();
    let is_success = spec.ok == Some(true) || !chosen.contains(&true);
    misplaced(spec.card.is_some() && !is_success, "card", "`ok`")?;
    misplaced(spec.exp.is_some() && !is_success, "exp", "`ok`")?;
    misplaced(spec.message.is_some() && !is_error, "message", "`code`")?;
    let status_text_fits = is_success || is_error;
    misplaced(
        spec.status_text.is_some() && !status_text_fits,
        "status_text",
        "`ok` or `code`",
    )?;

    Ok(if let Some(value) = spec.body {
        ReplyContent::Json(value)
    } else if let Some(text) = spec.raw {
        ReplyContent::Raw(text)
    } else if spec.empty {
        ReplyContent::Empty
    } else if let Some(code) = spec.code {
        let (message, status_text) = (spec.message, spec.status_text);
        ReplyContent::Error {
            code,
            message,
            status_text,
        }
    } else {
        let (card, exp, status_text) = (spec.card, spec.exp, spec.status_text);
        ReplyContent::Success {
            status_text,
            card,
            exp,
        }
    })
}

fn misplaced(wrong: bool, field: &'static str, owner: &'static str) -> Result<(), ReplyError> {
    if wrong {
        Err(ReplyError::Misplaced(field, owner))
    } else {
        Ok(())
    }
}

fn header_map(headers: &BTreeMap<String, Scalar>) -> Result<HeaderMap, ReplyError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let bad = || ReplyError::Header(name.clone());
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let value = header_value(&value.to_string()).map_err(|_| bad())?;
        map.append(header, value);
    }
    Ok(map)
}

fn header_value(text: &str) -> Result<HeaderValue, ReplyError> {
    HeaderValue::from_str(text).map_err(|_| ReplyError::Header(text.to_owned()))
}

/// A string as is, a number as JSON writes it.
impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Text(text) => f.write_str(text),
            Scalar::Number(number) => write!(f, "{number}"),
        }
    }
}

impl From<&str> for Scalar {
    fn from(text: &str) -> Self {
        Scalar::Text(text.to_owned())
    }
}

impl From<u64> for Scalar {
    fn from(number: u64) -> Self {
        Scalar::Number(number.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Reply, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_reply_without_a_body_field_is_a_success() {
        let reply = parse("{}").unwrap();

        assert!(reply.is_success());
        assert_eq!(reply.http, StatusCode::OK);
    }

    #[test]
    fn codes_keep_their_json_type() {
        let text = parse(r#"{"code": "1005"}"#).unwrap();
        let number = parse(r#"{"code": 1005}"#).unwrap();

        assert_eq!(body(&text.open_card_answer())["code"], "1005");
        assert_eq!(body(&number.open_card_answer())["code"], 1005);
    }

    #[test]
    fn a_scripted_card_keeps_its_json_type() {
        let reply = parse(r#"{"ok": true, "card": 8600123412341234, "status_text": "Success"}"#);

        let answer = body(&reply.unwrap().status_answer("r-1"));

        assert_eq!(answer["status"], "Success");
        assert_eq!(answer["data"]["cardNumber"], 8600123412341234u64);
        assert_eq!(answer["data"]["exp"], card::expiry("r-1"));
    }

    #[test]
    fn contradictory_replies_are_refused() {
        let cases = [
            (r#"{"ok": true, "code": "1007"}"#, "only one of"),
            (r#"{"raw": "x", "empty": true}"#, "only one of"),
            (r#"{"ok": false}"#, "`ok` can only be true"),
            (
                r#"{"code": "1007", "card": "1"}"#,
                "`card` goes only with `ok`",
            ),
            (
                r#"{"ok": true, "message": "hi"}"#,
                "`message` goes only with `code`",
            ),
            (
                r#"{"raw": "x", "status_text": "ok"}"#,
                "`status_text` goes only with",
            ),
            (r#"{"http": 1000}"#, "not an HTTP status"),
            (
                r#"{"headers": {"bad header": "1"}}"#,
                "not a valid HTTP header",
            ),
            (r#"{"drop": true}"#, "unknown field `drop`"),
        ];

        for (json, reason) in cases {
            let error = parse(json).unwrap_err();
            assert!(error.contains(reason), "{json}: {error}");
        }
    }

    #[test]
    fn raw_pages_keep_status_headers_and_delay() {
        let json = r#"{"http": 502, "raw": "<html>bad gateway</html>",
                       "headers": {"Retry-After": 1}, "delay_ms": 5}"#;

        let answer = parse(json).unwrap().open_card_answer();

        assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
        assert_eq!(answer.content_type, Some(HTML));
        assert_eq!(answer.headers["retry-after"], "1");
        assert_eq!(answer.delay, Duration::from_millis(5));
    }

    fn body(answer: &Answer) -> serde_json::Value {
        serde_json::from_slice(&answer.body).unwrap()
    }
}
