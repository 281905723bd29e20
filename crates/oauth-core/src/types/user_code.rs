//! The device grant's user code (RFC 8628 6.1): eight letters of a 20-letter
//! alphabet without vowels, written `XXXX-XXXX`.
//!
//! The alphabet has no vowels (no words by accident) and no `Y`; eight of its
//! letters give 20^8 ≈ 2^34.6 codes. That is guessable by brute force within a
//! code's lifetime only at a rate the throttle refuses (docs/security.md).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The letters a user code is made of (RFC 8628 6.1's example alphabet).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// How many letters a user code has.
pub const USER_CODE_LEN: usize = 8;

/// A user code: exactly [`USER_CODE_LEN`] letters of [`USER_CODE_ALPHABET`],
/// kept without its dash. Holding one proves the form, not that a device
/// request has it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserCode(String);

impl UserCode {
    /// A user code from random bytes. A byte picks a letter only when it is
    /// below 240, the largest multiple of 20 that fits, so every letter is
    /// equally likely; `None` when `random` ran out first (the caller draws
    /// more). 32 bytes run out with a chance below 10^-20.
    pub fn from_random_bytes(random: &[u8]) -> Option<Self> {
        let letters: String = random
            .iter()
            .filter(|b| **b < 240)
            .take(USER_CODE_LEN)
            .map(|b| char::from(USER_CODE_ALPHABET[usize::from(*b % 20)]))
            .collect();
        (letters.len() == USER_CODE_LEN).then_some(UserCode(letters))
    }

    /// What a user typed, matched ignoring case, spaces and dashes: `bcdf-ghjk`,
    /// `BCDF GHJK` and `bcdfghjk` are one code. Anything else is
    /// `invalid_request`.
    pub fn parse(typed: &str) -> Result<Self> {
        let letters: String =
            typed.chars().filter(|c| !matches!(c, ' ' | '-' | '\t')).map(|c| c.to_ascii_uppercase()).collect();
        let ok = letters.len() == USER_CODE_LEN && letters.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
        if ok { Ok(UserCode(letters)) } else { Err(Error::InvalidRequest("not a user code")) }
    }

    /// The eight letters without the dash: what the store's key is made of.
    pub fn letters(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserCode {
    /// `XXXX-XXXX`, as the JSON and the pages show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.0.split_at(USER_CODE_LEN / 2);
        write!(f, "{a}-{b}")
    }
}

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A live user code is half of a login for someone's device: not in logs.
        f.write_str("UserCode(..)")
    }
}

impl TryFrom<String> for UserCode {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        UserCode::parse(&s)
    }
}

impl From<UserCode> for String {
    fn from(c: UserCode) -> String {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_code_is_eight_letters_of_the_alphabet_shown_with_a_dash() {
        let code = UserCode::from_random_bytes(&[0, 1, 2, 3, 19, 20, 239, 100]).unwrap();
        assert_eq!(code.letters(), "BCDFZBZB");
        assert_eq!(code.to_string(), "BCDF-ZBZB");
    }

    #[test]
    fn bytes_from_240_up_are_skipped_so_every_letter_is_equally_likely() {
        assert_eq!(UserCode::from_random_bytes(&[240, 255, 0, 0, 0, 0, 0, 0, 0]), None, "only seven usable bytes");
        let code = UserCode::from_random_bytes(&[240, 255, 1, 1, 1, 1, 1, 1, 1, 1]).unwrap();
        assert_eq!(code.letters(), "CCCCCCCC");
        let mut seen = [0u32; 20];
        for b in 0u8..240 {
            seen[usize::from(b % 20)] += 1;
        }
        assert!(seen.iter().all(|n| *n == 12), "each letter from exactly 12 byte values");
    }

    #[test]
    fn typed_codes_match_ignoring_case_spaces_and_dashes() {
        let code = UserCode::parse("BCDF-GHJK").unwrap();
        for typed in ["bcdf-ghjk", "BCDFGHJK", " bcdf ghjk ", "bC-dF-gH-jK", "bcdf\tghjk"] {
            assert_eq!(UserCode::parse(typed).unwrap(), code, "{typed}");
        }
    }

    #[test]
    fn codes_with_other_letters_or_lengths_are_refused() {
        for bad in ["", "BCDF-GHJ", "BCDF-GHJKL", "BCDF-GHJA", "BCDF-GHJ1", "BCDF_GHJK", "ВCDF-GHJK", "bcdf-ghjy"] {
            assert!(matches!(UserCode::parse(bad), Err(Error::InvalidRequest(_))), "{bad}");
        }
    }
}
