//! What one partner call came to, read from the HTTP exchange.
//!
//! The partner's document leaves much open (see the partner README): error
//! bodies may come with any HTTP status, `code` may be a string or a number,
//! "success" may be capitalised, and a proxy may answer with an HTML page.
//! This module reads all of that into a [`Reply`] and nothing else; what a
//! reply leads to is decided in `issuance::policy`.

use std::time::Duration;

use serde_json::Value;

use super::PartnerCode;
use crate::domain::{CardNumber, Expiry};

/// One partner call's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `status: success` to open-card: the application was accepted.
    Accepted,
    /// `status: success` to a status check: the card exists.
    Issued {
        /// The card number.
        card: CardNumber,
        /// Its expiry.
        exp: Expiry,
    },
    /// `status: error` with a code.
    Refused {
        /// The partner's code.
        code: PartnerCode,
        /// The partner's text, for the event; Russian, possibly multi-line.
        message: String,
    },
    /// No usable answer; the same call may succeed later.
    Unavailable {
        /// What went wrong.
        cause: Unavailable,
        /// The partner's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// 401 or 403: our credentials are wrong.
    CredentialsRejected {
        /// The HTTP status.
        http_status: u16,
    },
}

/// Why a call gave no usable answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// No answer within the partner timeout.
    Timeout,
    /// The connection failed or broke.
    Connection,
    /// A 5xx without an error code in the body.
    ServerError(u16),
    /// 429.
    TooManyRequests,
    /// A body that is not the partner's JSON.
    Unreadable,
}

impl Unavailable {
    /// A metric label for this cause.
    pub fn label(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connection => "connection_error",
            Self::ServerError(_) => "http_5xx",
            Self::TooManyRequests => "http_429",
            Self::Unreadable => "unreadable",
        }
    }
}

impl Reply {
    /// A metric label for the call's result.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Accepted | Self::Issued { .. } => "success",
            Self::Refused { .. } => "error_code",
            Self::Unavailable { cause, .. } => cause.label(),
            Self::CredentialsRejected { .. } => "auth_rejected",
        }
    }

    /// Reads an HTTP answer. `wants_card` is true for the status endpoint,
    /// whose success carries the card.
    pub fn from_http(
        http_status: u16,
        retry_after: Option<Duration>,
        body: &[u8],
        wants_card: bool,
    ) -> Self {
        if http_status == 401 || http_status == 403 {
            return Self::CredentialsRejected { http_status };
        }
        let unavailable = |cause| Self::Unavailable { cause, retry_after };
        let fallback = match http_status {
            429 => unavailable(Unavailable::TooManyRequests),
            500..=599 => unavailable(Unavailable::ServerError(http_status)),
            _ => unavailable(Unavailable::Unreadable),
        };
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
            return fallback;
        };
        let succeeded = object
            .get("status")
            .and_then(Value::as_str)
            .is_some_and(|status| status.trim().eq_ignore_ascii_case("success"));
        // A "success" wrapped in a 5xx or 429 is not trusted: retrying is
        // safe, since a repeated open-card is answered with 1002.
        if succeeded && (200..300).contains(&http_status) {
            if !wants_card {
                return Self::Accepted;
            }
            return read_card(object.get("data")).unwrap_or(fallback);
        }
        let code = object
            .get("code")
            .and_then(code_text)
            .map(|code| PartnerCode::parse(&code));
        match code {
            // A code says more than the HTTP status it came with: a 1007 in a
            // 503 is still a 1007. But a gateway in front of the partner
            // answers 5xx and 429 with codes of its own ("BAD_GATEWAY",
            // "503"), and taking those for the partner's verdict would fail
            // a request over a passing fault.
            Some(PartnerCode::Other(_)) if http_status >= 500 || http_status == 429 => fallback,
            Some(code) => {
                let message = object
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Self::Refused {
                    code,
                    message: redact_digits(message),
                }
            }
            None => fallback,
        }
    }
}

/// The partner's text with every run of seven or more digits starred: its
/// messages may quote the customer's phone or PINFL back, and they travel
/// on in headers, events and logs.
fn redact_digits(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.chars().count() >= 7 {
            out.push_str("***");
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in message.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

fn read_card(data: Option<&Value>) -> Option<Reply> {
    let data = data?.as_object()?;
    let card = scalar_text(data.get("cardNumber")?)?.trim().to_owned();
    let exp = scalar_text(data.get("exp")?)?;
    // A card number is digits, 7 (the partner document's example) to 19;
    // anything else is no card, and the status is asked again.
    let is_card = (7..=19).contains(&card.len()) && card.bytes().all(|b| b.is_ascii_digit());
    if !is_card {
        return None;
    }
    Some(Reply::Issued {
        card: CardNumber::new(card),
        exp: Expiry(exp),
    })
}

/// A code written as a string or a number; an empty one is no code.
fn code_text(value: &Value) -> Option<String> {
    scalar_text(value).filter(|code| !code.trim().is_empty())
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(http_status: u16, body: &str, wants_card: bool) -> Reply {
        Reply::from_http(http_status, None, body.as_bytes(), wants_card)
    }

    fn unavailable(cause: Unavailable) -> Reply {
        Reply::Unavailable {
            cause,
            retry_after: None,
        }
    }

    #[test]
    fn success_in_any_case_is_accepted() {
        for status in ["success", "Success", "SUCCESS"] {
            let body = format!(r#"{{"status":"{status}","data":null}}"#);
            assert_eq!(read(200, &body, false), Reply::Accepted, "{status}");
        }
    }

    #[test]
    fn a_status_success_carries_the_card_even_as_numbers() {
        let body =
            r#"{"status":"success","data":{"cardNumber":8600123412341234,"exp":2408},"x":1}"#;

        let reply = read(200, body, true);

        let Reply::Issued { card, exp } = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(card.expose(), "8600123412341234");
        assert_eq!(exp, Expiry("2408".into()));
    }

    #[test]
    fn codes_are_read_as_strings_or_numbers_under_any_http_status() {
        let cases = [
            (
                200,
                r#"{"status":"error","code":"1007","message":"a\nb","data":null}"#,
            ),
            (200, r#"{"status":"error","code":1007,"message":"a\nb"}"#),
            (503, r#"{"status":"error","code":"1007","message":"a\nb"}"#),
            (400, r#"{"status":"error","code":"1007","message":"a\nb"}"#),
        ];
        for (http_status, body) in cases {
            let expected = Reply::Refused {
                code: PartnerCode::HumoUnavailable,
                message: "a\nb".into(),
            };
            assert_eq!(
                read(http_status, body, false),
                expected,
                "{http_status} {body}"
            );
        }
    }

    #[test]
    fn answers_without_a_usable_body_are_unavailable() {
        let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
        let cases = [
            (502, html, unavailable(Unavailable::ServerError(502))),
            (500, "", unavailable(Unavailable::ServerError(500))),
            (429, "", unavailable(Unavailable::TooManyRequests)),
            (200, html, unavailable(Unavailable::Unreadable)),
            (200, "", unavailable(Unavailable::Unreadable)),
            (
                200,
                r#"{"status":"success","data":null}"#,
                unavailable(Unavailable::Unreadable),
            ),
            (
                200,
                r#"{"status":"error","message":"no code"}"#,
                unavailable(Unavailable::Unreadable),
            ),
            (
                503,
                r#"{"status":"success","data":null}"#,
                unavailable(Unavailable::ServerError(503)),
            ),
            (404, "Not Found", unavailable(Unavailable::Unreadable)),
        ];
        for (http_status, body, expected) in cases {
            assert_eq!(
                read(http_status, body, true),
                expected,
                "{http_status} {body:?}"
            );
        }
    }

    #[test]
    fn a_gateway_s_own_codes_on_5xx_and_429_are_not_the_partner_s_verdict() {
        let cases = [
            (
                503,
                r#"{"code":"503"}"#,
                unavailable(Unavailable::ServerError(503)),
            ),
            (
                502,
                r#"{"code":"BAD_GATEWAY"}"#,
                unavailable(Unavailable::ServerError(502)),
            ),
            (
                429,
                r#"{"code":429}"#,
                unavailable(Unavailable::TooManyRequests),
            ),
        ];
        for (http_status, body, expected) in cases {
            assert_eq!(
                read(http_status, body, true),
                expected,
                "{http_status} {body}"
            );
        }
        let refused = read(503, r#"{"code":"1009"}"#, true);
        assert!(matches!(
            refused,
            Reply::Refused {
                code: PartnerCode::ServiceUnavailable,
                ..
            }
        ));
    }

    #[test]
    fn what_is_not_a_card_number_is_no_card() {
        for card in [
            r#""abc-not-a-card""#,
            r#""8600000000000000.0""#,
            r#""   ""#,
            r#""12""#,
        ] {
            let body =
                format!(r#"{{"status":"success","data":{{"cardNumber":{card},"exp":"2912"}}}}"#);
            assert_eq!(
                read(200, &body, true),
                unavailable(Unavailable::Unreadable),
                "{card}"
            );
        }
    }

    #[test]
    fn long_digit_runs_in_partner_messages_are_starred() {
        let body = r#"{"status":"error","code":"1007","message":"ПИНФЛ 31234567890123, тел +998931234567: 1007"}"#;

        let Reply::Refused { message, .. } = read(200, body, false) else {
            panic!()
        };

        assert_eq!(message, "ПИНФЛ ***, тел +***: 1007");
    }

    #[test]
    fn rejected_credentials_win_over_any_body() {
        for http_status in [401, 403] {
            let reply = read(http_status, r#"{"status":"error","code":"1006"}"#, false);
            assert_eq!(reply, Reply::CredentialsRejected { http_status });
        }
    }

    #[test]
    fn retry_after_is_kept() {
        let wait = Some(Duration::from_secs(7));

        let reply = Reply::from_http(503, wait, b"busy", false);

        assert_eq!(
            reply,
            Reply::Unavailable {
                cause: Unavailable::ServerError(503),
                retry_after: wait
            }
        );
    }
}
