//! A wrapper that keeps secrets and personal data out of logs and error messages.

use std::fmt;

/// A value that must never be printed: passwords, credentials inside URLs,
/// PINFLs and full phone or card numbers.
///
/// `Debug` and `Display` print `[redacted]`; the value is reached only
/// through [`Secret::expose`], so every place that sends it somewhere is easy
/// to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that needs to send it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let secret = Secret::new(String::from("p@ssw0rd"));

        let printed = format!("{secret} {secret:?} {secret:#?}");

        assert!(!printed.contains("p@ssw0rd"), "{printed}");
        assert_eq!(secret.expose(), "p@ssw0rd");
    }
}
