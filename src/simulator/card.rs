//! The cards the simulated partner issues: 16 digits starting 8600,
//! Luhn-valid, and the same every time for the same request id.

use super::hash::stable_hash;

/// The first digits of every simulated card number.
const CARD_PREFIX: &str = "8600";

/// Digits between the prefix and the check digit: 4 + 11 + 1 = 16.
const CARD_BODY_MODULUS: u64 = 100_000_000_000;

/// The card number the simulator issues for a request id.
pub fn card_number(request_id: &str) -> String {
    let hash = stable_hash(&[b"card", request_id.as_bytes()]);
    let body = format!("{CARD_PREFIX}{:011}", hash % CARD_BODY_MODULUS);
    let check = luhn_check_digit(&body);
    format!("{body}{check}")
}

/// The expiry (`YYMM`, 2027 to 2030) the simulator issues for a request id.
pub fn expiry(request_id: &str) -> String {
    let hash = stable_hash(&[b"exp", request_id.as_bytes()]);
    let year = 27 + hash % 4;
    let month = 1 + (hash >> 8) % 12;
    format!("{year}{month:02}")
}

/// The first six and last four digits, the rest starred, as logs may show it.
pub(crate) fn mask(card: &str) -> String {
    let digits: Vec<char> = card.chars().collect();
    if digits.len() < 12 {
        return "*".repeat(digits.len());
    }
    let hidden = digits.len() - 10;
    let head: String = digits[..6].iter().collect();
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(hidden))
}

/// The digit that makes `digits` followed by it pass the Luhn check.
fn luhn_check_digit(digits: &str) -> u32 {
    // Once the check digit is appended, the rightmost digit here becomes the
    // second from the right, which is the first one the Luhn rule doubles.
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { double(d) } else { d })
        .sum();
    (10 - sum % 10) % 10
}

/// Luhn doubling: digits of 2d summed, which for one digit is 2d or 2d - 9.
fn double(digit: u32) -> u32 {
    let twice = digit * 2;
    if twice > 9 { twice - 9 } else { twice }
}

/// Whether a string of digits passes the Luhn check.
#[cfg(test)]
pub(crate) fn is_luhn_valid(number: &str) -> bool {
    let Some((body, check)) = number.split_at_checked(number.len().saturating_sub(1)) else {
        return false;
    };
    let all_digits = number.len() > 1 && number.chars().all(|c| c.is_ascii_digit());
    all_digits && check.parse() == Ok(luhn_check_digit(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers_pass_or_fail_the_luhn_check() {
        assert!(is_luhn_valid("4539578763621486"));
        assert!(is_luhn_valid("79927398713"));
        assert!(!is_luhn_valid("79927398710"));
        assert!(!is_luhn_valid("7992739871x"));
    }

    #[test]
    fn card_numbers_are_sixteen_luhn_valid_digits_starting_8600() {
        for request_id in ["1", "abc", "a/b?c", "заявка-7", ""] {
            let card = card_number(request_id);

            assert_eq!(card.len(), 16, "{request_id}");
            assert!(card.starts_with(CARD_PREFIX));
            assert!(is_luhn_valid(&card), "{request_id}");
        }
    }

    #[test]
    fn cards_and_expiries_depend_only_on_the_request_id() {
        assert_eq!(card_number("r-1"), card_number("r-1"));
        assert_ne!(card_number("r-1"), card_number("r-2"));
        assert_eq!(expiry("r-1"), expiry("r-1"));
    }

    #[test]
    fn expiry_is_a_plausible_yymm() {
        for request_id in ["1", "2", "3", "4", "5", "6", "7", "8"] {
            let exp = expiry(request_id);
            let (year, month): (u32, u32) = (exp[..2].parse().unwrap(), exp[2..].parse().unwrap());

            assert_eq!(exp.len(), 4);
            assert!(
                (27..=30).contains(&year) && (1..=12).contains(&month),
                "{exp}"
            );
        }
    }

    #[test]
    fn mask_keeps_six_and_four() {
        assert_eq!(mask("8600123456789012"), "860012******9012");
        assert_eq!(mask("1212121"), "*******");
    }
}
