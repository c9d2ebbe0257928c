//! The customer's personal data: phone number and PINFL.
//!
//! Both are personal data. They are held in [`Secret`]s so that no `Debug`
//! or `Display` can print them; they leave the process only in the body of
//! the open-card call.

use crate::secret::Secret;

/// An Uzbek mobile number: `+998` and nine digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumber(Secret<String>);

impl PhoneNumber {
    /// Accepts `+998` followed by exactly nine ASCII digits.
    pub fn parse(raw: &str) -> Option<Self> {
        let digits = raw.strip_prefix("+998")?;
        let well_formed = digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit());
        well_formed.then(|| Self(Secret::new(raw.to_owned())))
    }

    /// The full number, for the partner call only.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// A PINFL: the 14-digit personal identification number of an Uzbek citizen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinfl(Secret<String>);

impl Pinfl {
    /// Accepts exactly fourteen ASCII digits.
    pub fn parse(raw: &str) -> Option<Self> {
        let well_formed = raw.len() == 14 && raw.bytes().all(|b| b.is_ascii_digit());
        well_formed.then(|| Self(Secret::new(raw.to_owned())))
    }

    /// The full PINFL, for the partner call only.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        let cases = [
            ("+998991234567", true),
            ("998991234567", false),
            ("+99899123456", false),
            ("+9989912345678", false),
            ("+998 99 123 45 67", false),
            ("+99899123456٧", false),
            ("+7991234567", false),
        ];
        for (raw, valid) in cases {
            assert_eq!(PhoneNumber::parse(raw).is_some(), valid, "{raw}");
        }
    }

    #[test]
    fn pinfls() {
        let cases = [
            ("32000000262057", true),
            ("3200000026205", false),
            ("320000002620577", false),
            ("3200000026205a", false),
            ("", false),
        ];
        for (raw, valid) in cases {
            assert_eq!(Pinfl::parse(raw).is_some(), valid, "{raw}");
        }
    }

    #[test]
    fn debug_output_hides_personal_data() {
        let phone = PhoneNumber::parse("+998991234567").unwrap();
        let pin = Pinfl::parse("32000000262057").unwrap();

        let printed = format!("{phone:?} {pin:?}");

        assert!(!printed.contains("991234567"), "{printed}");
        assert!(!printed.contains("32000000262057"), "{printed}");
    }
}
