//! The caller's id for one card request.

use std::fmt;

/// The longest `requestId` the worker accepts, in bytes of UTF-8. It travels
/// in URL paths, log lines and AMQP short strings (the events' `message_id`
/// and `correlation_id`, which hold at most 255 bytes), so it is kept short.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// The caller's id for one card request: unique per request at the partner,
/// and the key that ties a command to its event.
///
/// It is not personal data, so it may be logged; it is never a metric label.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(String);

/// Why a string is not a usable request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestIdError {
    /// The id is empty.
    #[error("requestId is empty")]
    Empty,
    /// The id is longer than [`MAX_REQUEST_ID_BYTES`].
    #[error("requestId is longer than {MAX_REQUEST_ID_BYTES} bytes")]
    TooLong,
    /// The id holds a control character such as a line break.
    #[error("requestId holds a control character")]
    ControlCharacter,
    /// The id is `.` or `..`: URL parsers fold such a path segment away, so
    /// the status check could never name it.
    #[error("requestId may not be '.' or '..': it cannot stand as a URL path segment")]
    DotSegment,
}

impl RequestId {
    /// Checks a request id as the caller wrote it.
    pub fn parse(raw: &str) -> Result<Self, RequestIdError> {
        if raw.is_empty() {
            return Err(RequestIdError::Empty);
        }
        if raw.len() > MAX_REQUEST_ID_BYTES {
            return Err(RequestIdError::TooLong);
        }
        if raw.chars().any(char::is_control) {
            return Err(RequestIdError::ControlCharacter);
        }
        if raw == "." || raw == ".." {
            return Err(RequestIdError::DotSegment);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as the caller wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ids_that_only_need_percent_encoding() {
        for raw in [
            "1",
            "a/b",
            "a?b#c",
            "../etc",
            "with space",
            "заявка-7",
            "a..b",
        ] {
            assert_eq!(
                RequestId::parse(raw).map(|id| id.0),
                Ok(raw.to_owned()),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_ids_that_cannot_travel() {
        let too_long = "x".repeat(MAX_REQUEST_ID_BYTES + 1);
        let cases = [
            ("", RequestIdError::Empty),
            (too_long.as_str(), RequestIdError::TooLong),
            ("a\nb", RequestIdError::ControlCharacter),
            ("..", RequestIdError::DotSegment),
            (".", RequestIdError::DotSegment),
        ];
        for (raw, error) in cases {
            assert_eq!(RequestId::parse(raw), Err(error), "{raw:?}");
        }
    }

    #[test]
    fn the_limit_counts_bytes_of_utf8() {
        let fits = "ж".repeat(MAX_REQUEST_ID_BYTES / 2);
        let too_long = "ж".repeat(MAX_REQUEST_ID_BYTES / 2 + 1);

        assert!(RequestId::parse(&fits).is_ok());
        assert_eq!(RequestId::parse(&too_long), Err(RequestIdError::TooLong));
    }
}
