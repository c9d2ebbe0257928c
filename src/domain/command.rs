//! The open-card command as upstream services publish it, and why one may be
//! turned away.
//!
//! Parsing is strict about meaning and lenient about spelling: `productId`
//! may be a number or a numeric string and `requestId` a string or an
//! integer, as upstream services write them both ways; the phone number and
//! PINFL must be strings, because a number would lose the `+` or leading
//! zeros.

use serde_json::{Map, Value};

use super::request_id::{MAX_REQUEST_ID_BYTES, RequestId};
use super::{PhoneNumber, Pinfl, ProductId};

/// A command that passed validation and may be sent to the partner.
#[derive(Clone, Debug)]
pub struct OpenCardCommand {
    /// The caller's id for this request.
    pub request_id: RequestId,
    /// The customer's phone.
    pub phone: PhoneNumber,
    /// The customer's PINFL.
    pub pin: Pinfl,
    /// The product asked for; checked against the partner's list separately.
    pub product_id: ProductId,
}

/// A command turned away before any partner call: it is parked in the
/// dead-letter queue, and answered with `card.failed` when its request id
/// can be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// A short machine word for the dead-letter header.
    pub reason: RejectionReason,
    /// A sentence for operators; never holds personal data.
    pub detail: String,
    /// The request id as the caller wrote it, when one could be read, so the
    /// caller can be told. It may be unusable for a partner call (a line
    /// break, `..`), which is why it is plain text here.
    pub request_id: Option<String>,
}

/// Why a command was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionReason {
    /// The message body is empty.
    EmptyBody,
    /// The body is over the configured size limit.
    TooLarge,
    /// The body is not UTF-8 text.
    NotUtf8,
    /// The body is not JSON.
    NotJson,
    /// The body is JSON but not an object.
    NotAnObject,
    /// There is no `requestId`, so no event can answer the command.
    MissingRequestId,
    /// The `requestId` is present but unusable.
    InvalidRequestId,
    /// The phone is missing or not `+998` and nine digits.
    InvalidPhone,
    /// The PINFL is missing or not fourteen digits.
    InvalidPin,
    /// The product id is missing or not a whole number.
    InvalidProductId,
    /// The partner does not offer the product.
    UnknownProduct,
}

impl RejectionReason {
    /// Every reason, for tools that check a reason given by hand.
    pub const ALL: [Self; 11] = [
        Self::EmptyBody,
        Self::TooLarge,
        Self::NotUtf8,
        Self::NotJson,
        Self::NotAnObject,
        Self::MissingRequestId,
        Self::InvalidRequestId,
        Self::InvalidPhone,
        Self::InvalidPin,
        Self::InvalidProductId,
        Self::UnknownProduct,
    ];

    /// The machine word written to the `card-issuer-reason` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyBody => "empty_body",
            Self::TooLarge => "too_large",
            Self::NotUtf8 => "not_utf8",
            Self::NotJson => "not_json",
            Self::NotAnObject => "not_an_object",
            Self::MissingRequestId => "missing_request_id",
            Self::InvalidRequestId => "invalid_request_id",
            Self::InvalidPhone => "invalid_phone",
            Self::InvalidPin => "invalid_pin",
            Self::InvalidProductId => "invalid_product_id",
            Self::UnknownProduct => "unknown_product",
        }
    }

    /// The `reason` the `card.failed` event gives the caller.
    pub fn event_reason(self) -> &'static str {
        match self {
            Self::UnknownProduct => "unknown_product",
            _ => "invalid_command",
        }
    }
}

impl OpenCardCommand {
    /// Reads and validates a command body. `max_bytes` bounds the body.
    pub fn parse(body: &[u8], max_bytes: usize) -> Result<Self, Rejection> {
        let object = parse_object(body, max_bytes)?;
        let request_id = read_request_id(&object)?;
        let reject = |reason, detail: &str| Rejection {
            reason,
            detail: detail.to_owned(),
            request_id: Some(request_id.to_string()),
        };

        let phone = match object.get("phoneNumber") {
            Some(Value::String(raw)) => PhoneNumber::parse(raw),
            _ => None,
        };
        let Some(phone) = phone else {
            let detail = "phoneNumber must be a string of +998 and nine digits";
            return Err(reject(RejectionReason::InvalidPhone, detail));
        };

        let pin = match object.get("pin") {
            Some(Value::String(raw)) => Pinfl::parse(raw),
            _ => None,
        };
        let Some(pin) = pin else {
            let detail = "pin (PINFL) must be a string of fourteen digits";
            return Err(reject(RejectionReason::InvalidPin, detail));
        };

        let Some(product_id) = read_product_id(&object) else {
            let detail = "productId must be a whole number, or a string of digits";
            return Err(reject(RejectionReason::InvalidProductId, detail));
        };

        Ok(Self {
            request_id,
            phone,
            pin,
            product_id,
        })
    }
}

/// Reads only the request id and product id of a body that was valid once,
/// as a status check needs no personal data.
pub fn read_ids(body: &[u8], max_bytes: usize) -> Result<(RequestId, ProductId), Rejection> {
    let object = parse_object(body, max_bytes)?;
    let request_id = read_request_id(&object)?;
    let product_id = read_product_id(&object).ok_or_else(|| Rejection {
        reason: RejectionReason::InvalidProductId,
        detail: "productId must be a whole number, or a string of digits".to_owned(),
        request_id: Some(request_id.to_string()),
    })?;
    Ok((request_id, product_id))
}

/// The request id as written in a body, when the body is a JSON object that
/// has one; for operators' tools, which show ids of bodies they cannot judge.
pub fn request_id_of(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(body)
        .ok()?
        .get("requestId")?
    {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

fn parse_object(body: &[u8], max_bytes: usize) -> Result<Map<String, Value>, Rejection> {
    let anonymous = |reason, detail: String| Rejection {
        reason,
        detail,
        request_id: None,
    };
    if body.is_empty() {
        return Err(anonymous(
            RejectionReason::EmptyBody,
            "the message body is empty".into(),
        ));
    }
    if body.len() > max_bytes {
        let detail = format!(
            "the body is {} bytes, over the limit of {max_bytes}",
            body.len()
        );
        return Err(anonymous(RejectionReason::TooLarge, detail));
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(anonymous(
            RejectionReason::NotUtf8,
            "the body is not UTF-8 text".into(),
        ));
    };
    // The parser's own message names a line and column, never the content.
    let value: Value = serde_json::from_str(text).map_err(|error| {
        anonymous(
            RejectionReason::NotJson,
            format!("the body is not JSON: {error}"),
        )
    })?;
    match value {
        Value::Object(object) => Ok(object),
        other => {
            let detail = format!("the body is a JSON {}, not an object", json_kind(&other));
            Err(anonymous(RejectionReason::NotAnObject, detail))
        }
    }
}

fn read_request_id(object: &Map<String, Value>) -> Result<RequestId, Rejection> {
    let raw = match object.get("requestId") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) if number.is_u64() || number.is_i64() => number.to_string(),
        Some(Value::Null) | None => {
            return Err(Rejection {
                reason: RejectionReason::MissingRequestId,
                detail: "requestId is missing, so no event can answer this command".into(),
                request_id: None,
            });
        }
        Some(other) => {
            return Err(Rejection {
                reason: RejectionReason::InvalidRequestId,
                detail: format!("requestId is a JSON {}, not a string", json_kind(other)),
                request_id: None,
            });
        }
    };
    RequestId::parse(&raw).map_err(|error| Rejection {
        reason: RejectionReason::InvalidRequestId,
        detail: error.to_string(),
        // An id too long to keep is not echoed back: the event could not be
        // matched with confidence, and it would swell every header it enters.
        request_id: (raw.len() <= MAX_REQUEST_ID_BYTES && !raw.is_empty()).then_some(raw),
    })
}

fn read_product_id(object: &Map<String, Value>) -> Option<ProductId> {
    match object
        .get("productId")
        .or_else(|| object.get("productid"))?
    {
        Value::Number(number) => number.as_u64().map(ProductId),
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().ok().map(ProductId)
        }
        _ => None,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 64 * 1024;

    fn parse(body: &str) -> Result<OpenCardCommand, Rejection> {
        OpenCardCommand::parse(body.as_bytes(), LIMIT)
    }

    fn reason_of(body: &[u8]) -> RejectionReason {
        OpenCardCommand::parse(body, LIMIT)
            .expect_err("should be rejected")
            .reason
    }

    #[test]
    fn reads_a_well_formed_command() {
        let body = r#"{"requestId":"r-1","phoneNumber":"+998991234567","productId":1,
                       "pin":"32000000262057"}"#;

        let command = parse(body).unwrap();

        assert_eq!(command.request_id.as_str(), "r-1");
        assert_eq!(command.product_id, ProductId(1));
        assert_eq!(command.phone.expose(), "+998991234567");
        assert_eq!(command.pin.expose(), "32000000262057");
    }

    #[test]
    fn takes_ids_written_either_way() {
        let body = r#"{"requestId":42,"phoneNumber":"+998991234567","productid":"2",
                       "pin":"32000000262057"}"#;

        let command = parse(body).unwrap();

        assert_eq!(command.request_id.as_str(), "42");
        assert_eq!(command.product_id, ProductId(2));
    }

    #[test]
    fn turns_away_bodies_that_are_not_commands() {
        use RejectionReason::*;
        let too_large = format!(r#"{{"requestId":"{}"}}"#, "x".repeat(LIMIT));
        let cases: [(&[u8], RejectionReason); 8] = [
            (b"", EmptyBody),
            (too_large.as_bytes(), TooLarge),
            (b"\xff\xfe{}", NotUtf8),
            (b"requestId=1&phone=2", NotJson),
            (b"[1,2]", NotAnObject),
            (b"42", NotAnObject),
            (b"{}", MissingRequestId),
            (br#"{"requestId":{"a":1}}"#, InvalidRequestId),
        ];
        for (body, reason) in cases {
            assert_eq!(reason_of(body), reason, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn turns_away_invalid_fields_and_keeps_the_request_id() {
        use RejectionReason::*;
        let base = r#""requestId":"r-9","#;
        let cases = [
            (
                r#""phoneNumber":"+99890123","productId":1,"pin":"32000000262057""#,
                InvalidPhone,
            ),
            (
                r#""phoneNumber":998991234567,"productId":1,"pin":"32000000262057""#,
                InvalidPhone,
            ),
            (r#""productId":1,"pin":"32000000262057""#, InvalidPhone),
            (
                r#""phoneNumber":"+998991234567","productId":1,"pin":"3200000026205""#,
                InvalidPin,
            ),
            (
                r#""phoneNumber":"+998991234567","productId":1,"pin":32000000262057"#,
                InvalidPin,
            ),
            (
                r#""phoneNumber":"+998991234567","productId":"x","pin":"32000000262057""#,
                InvalidProductId,
            ),
            (
                r#""phoneNumber":"+998991234567","productId":-1,"pin":"32000000262057""#,
                InvalidProductId,
            ),
            (
                r#""phoneNumber":"+998991234567","productId":1.5,"pin":"32000000262057""#,
                InvalidProductId,
            ),
            (
                r#""phoneNumber":"+998991234567","pin":"32000000262057""#,
                InvalidProductId,
            ),
        ];
        for (fields, reason) in cases {
            let body = format!("{{{base}{fields}}}");
            let rejection = parse(&body).expect_err(&body);
            assert_eq!(rejection.reason, reason, "{body}");
            assert_eq!(rejection.request_id.as_deref(), Some("r-9"));
        }
    }

    #[test]
    fn an_overlong_request_id_is_not_echoed() {
        let body = format!(
            r#"{{"requestId":"{}"}}"#,
            "x".repeat(MAX_REQUEST_ID_BYTES + 1)
        );

        let rejection = parse(&body).unwrap_err();

        assert_eq!(rejection.reason, RejectionReason::InvalidRequestId);
        assert_eq!(rejection.request_id, None);
    }

    #[test]
    fn details_never_repeat_personal_data() {
        let body =
            r#"{"requestId":"r","phoneNumber":"+998991234567","pin":"320000002620","productId":1}"#;

        let rejection = parse(body).unwrap_err();

        assert!(
            !rejection.detail.contains("320000002620"),
            "{}",
            rejection.detail
        );
        assert!(
            !rejection.detail.contains("991234567"),
            "{}",
            rejection.detail
        );
    }
}
