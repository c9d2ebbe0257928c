//! The issued card as the partner reports it.

use crate::secret::Secret;

/// A full card number. Only the event may carry it whole; logs see
/// [`CardNumber::last_four`] and events may carry [`CardNumber::masked`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardNumber(Secret<String>);

impl CardNumber {
    /// Wraps the number the partner returned.
    pub fn new(number: String) -> Self {
        Self(Secret::new(number))
    }

    /// The full number, for the `card.issued` event only.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The first six and last four digits with the rest starred, as payment
    /// card receipts print it: `860012******1234`. A number too short to hide
    /// anything that way is starred but for its last four.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.expose().chars().collect();
        let shown_head = if chars.len() >= 13 { 6 } else { 0 };
        let shown_tail = 4.min(chars.len());
        chars
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                if i < shown_head || i >= chars.len() - shown_tail {
                    c
                } else {
                    '*'
                }
            })
            .collect()
    }

    /// The last four digits, the only part of a card number a log line shows.
    pub fn last_four(&self) -> String {
        let chars: Vec<char> = self.expose().chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    }
}

/// The card's expiry as the partner writes it, `YYMM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiry(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_first_six_and_last_four_digits() {
        let card = CardNumber::new("8600123456781234".into());

        assert_eq!(card.masked(), "860012******1234");
        assert_eq!(card.last_four(), "1234");
    }

    #[test]
    fn a_short_number_keeps_only_its_last_four_digits() {
        let card = CardNumber::new("1212121".into());

        assert_eq!(card.masked(), "***2121");
        assert_eq!(CardNumber::new("12".into()).masked(), "12");
    }
}
