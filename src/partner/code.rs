//! The partner's numbered error codes.

use std::fmt;

/// An error code from the partner's reply body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartnerCode {
    /// 1000: the customer already has an application in progress.
    ApplicationPending,
    /// 1002: the `requestId` was used before.
    DuplicateRequestId,
    /// 1003: no such application (also right after submission, for a while).
    NotFound,
    /// 1005: the application is under review.
    UnderReview,
    /// 1006: a stateless person (no citizenship).
    Stateless,
    /// 1007: the HUMO service is temporarily unavailable.
    HumoUnavailable,
    /// 1008: this card is not supported.
    NotSupported,
    /// 1009: the service is temporarily unavailable.
    ServiceUnavailable,
    /// A code the partner's document does not list, kept as sent.
    Other(String),
}

impl PartnerCode {
    /// Reads a code as sent, with surrounding blanks ignored.
    pub fn parse(text: &str) -> Self {
        let canonical = canonical_number(text.trim());
        match canonical.as_deref().unwrap_or(text.trim()) {
            "1000" => Self::ApplicationPending,
            "1002" => Self::DuplicateRequestId,
            "1003" => Self::NotFound,
            "1005" => Self::UnderReview,
            "1006" => Self::Stateless,
            "1007" => Self::HumoUnavailable,
            "1008" => Self::NotSupported,
            "1009" => Self::ServiceUnavailable,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code for a metric label: one of the known codes, or `other`, so a
    /// partner cannot grow the label set without bound.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ApplicationPending => "1000",
            Self::DuplicateRequestId => "1002",
            Self::NotFound => "1003",
            Self::UnderReview => "1005",
            Self::Stateless => "1006",
            Self::HumoUnavailable => "1007",
            Self::NotSupported => "1008",
            Self::ServiceUnavailable => "1009",
            Self::Other(_) => "other",
        }
    }
}

/// A code written as a number in another way (`01007`, `1007.0`) in its
/// plain form, so it is recognised; `None` when it is not such a number.
fn canonical_number(text: &str) -> Option<String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let trimmed = text.trim_start_matches('0');
        return Some(if trimmed.is_empty() {
            "0".to_owned()
        } else {
            trimmed.to_owned()
        });
    }
    let (whole, fraction) = text.split_once('.')?;
    let whole_is_digits = !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit());
    (whole_is_digits && !fraction.is_empty() && fraction.bytes().all(|b| b == b'0'))
        .then(|| canonical_number(whole))
        .flatten()
}

impl fmt::Display for PartnerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(code) => f.write_str(code),
            known => f.write_str(known.label()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_round_trip_and_unknown_ones_are_kept() {
        for code in [
            "1000", "1002", "1003", "1005", "1006", "1007", "1008", "1009",
        ] {
            assert_eq!(PartnerCode::parse(code).to_string(), code);
        }
        let unknown = PartnerCode::parse(" 4711 ");

        assert_eq!(unknown, PartnerCode::Other("4711".into()));
        assert_eq!(unknown.label(), "other");
        assert_eq!(unknown.to_string(), "4711");
    }

    #[test]
    fn a_known_code_written_another_way_is_still_known() {
        for written in ["01007", "1007.0", " 1007.00 "] {
            assert_eq!(
                PartnerCode::parse(written),
                PartnerCode::HumoUnavailable,
                "{written}"
            );
        }
        assert_eq!(
            PartnerCode::parse("1007.5"),
            PartnerCode::Other("1007.5".into())
        );
    }
}
