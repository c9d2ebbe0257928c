//! HTTP basic authentication, as the partner requires on every call.

use std::fmt;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// The credentials callers must present.
pub(crate) struct BasicAuth {
    /// The base64 of `username:password`, the token a correct header carries.
    token: String,
}

impl BasicAuth {
    /// Expects exactly these credentials.
    pub(crate) fn new(username: &str, password: &str) -> Self {
        BasicAuth {
            token: base64(format!("{username}:{password}").as_bytes()),
        }
    }

    /// Whether the request carries the expected credentials.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, token)) = value.split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("basic") && token.trim() == self.token
    }
}

// The token is the password in thin disguise.
impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BasicAuth(<redacted>)")
    }
}

/// Standard, padded base64; the crate has no base64 dependency and the
/// simulator needs only this one encoding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let group = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            // A chunk of n bytes fills n + 1 characters; padding does the rest.
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(group >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn base64_matches_the_standard_encoding() {
        let cases: [(&[u8], &str); 4] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"login:p@ssw0rd", "bG9naW46cEBzc3cwcmQ="),
        ];

        for (input, encoded) in cases {
            assert_eq!(base64(input), encoded);
        }
    }

    #[test]
    fn only_the_right_credentials_are_admitted() {
        let auth = BasicAuth::new("login", "p@ssw0rd");
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
            auth.admits(&headers)
        };

        assert!(with("Basic bG9naW46cEBzc3cwcmQ="));
        assert!(with("basic bG9naW46cEBzc3cwcmQ="));
        assert!(!with("Basic bG9naW46d3Jvbmc="));
        assert!(!with("Bearer bG9naW46cEBzc3cwcmQ="));
        assert!(!auth.admits(&HeaderMap::new()));
    }
}
