//! The open-card request body, read once at the boundary.

use serde::Deserialize;
use serde_json::error::Category;

use super::hash::stable_hash;
use super::reply::Scalar;

/// A readable open-card request; the customer is kept only as a hash.
#[derive(Debug)]
pub(crate) struct OpenCardRequest {
    pub request_id: String,
    pub product_id: Scalar,
    pub person: PersonKey,
}

/// A customer (phone and PINFL), hashed so the simulator never holds the
/// PINFL or the full phone number after reading the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PersonKey(u64);

/// Why an open-card body was refused with HTTP 400.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadRequest {
    /// The body does not parse as JSON.
    #[error("body is not JSON")]
    NotJson,
    /// JSON, but not the request the document describes. The serde message
    /// is not passed on: it can quote the values, a PINFL among them.
    #[error("body needs requestId, phoneNumber and pin as strings and productId")]
    NotOpenCard,
    /// An empty request id, which no status check could name.
    #[error("requestId is empty")]
    EmptyRequestId,
}

/// The body as the document describes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    request_id: String,
    phone_number: String,
    // The document's table spells it `productid`, its example `productId`.
    #[serde(alias = "productid")]
    product_id: Scalar,
    pin: String,
}

impl OpenCardRequest {
    /// Reads a body; any content type is accepted, as long as it is JSON.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, BadRequest> {
        let body: Body = serde_json::from_slice(bytes).map_err(|error| match error.classify() {
            Category::Data => BadRequest::NotOpenCard,
            Category::Io | Category::Syntax | Category::Eof => BadRequest::NotJson,
        })?;
        if body.request_id.is_empty() {
            return Err(BadRequest::EmptyRequestId);
        }
        let person = PersonKey::new(&body.phone_number, &body.pin);
        Ok(OpenCardRequest {
            request_id: body.request_id,
            product_id: body.product_id,
            person,
        })
    }
}

impl PersonKey {
    /// The key for a phone and a PINFL; `+998 99 123-45-67` and
    /// `998991234567` are the same phone.
    fn new(phone: &str, pin: &str) -> Self {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        PersonKey(stable_hash(&[
            b"person",
            digits.as_bytes(),
            pin.trim().as_bytes(),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_the_product_field_are_read() {
        let upper = br#"{"requestId":"1","phoneNumber":"+998991234567","productId":"1","pin":"1"}"#;
        let lower = br#"{"requestId":"1","phoneNumber":"+998991234567","productid":2,"pin":"1"}"#;

        assert_eq!(
            OpenCardRequest::parse(upper).unwrap().product_id,
            Scalar::from("1")
        );
        assert_eq!(
            OpenCardRequest::parse(lower).unwrap().product_id,
            Scalar::from(2)
        );
    }

    #[test]
    fn unreadable_bodies_are_refused_without_quoting_them() {
        let cases: [(&[u8], &str); 4] = [
            (b"not json", "body is not JSON"),
            (b"", "body is not JSON"),
            (
                br#"{"requestId":"1","phoneNumber":"1","productId":1,"pin":32000000262057}"#,
                "needs",
            ),
            (
                br#"{"requestId":"","phoneNumber":"1","productId":1,"pin":"1"}"#,
                "empty",
            ),
        ];

        for (body, reason) in cases {
            let error = OpenCardRequest::parse(body).unwrap_err().to_string();
            assert!(error.contains(reason) && !error.contains("3200"), "{error}");
        }
    }

    #[test]
    fn a_phone_is_the_same_however_it_is_written() {
        assert_eq!(
            PersonKey::new("+998 99 123-45-67", "1"),
            PersonKey::new("998991234567", "1")
        );
        assert_ne!(
            PersonKey::new("998991234567", "1"),
            PersonKey::new("998991234567", "2")
        );
    }
}
