//! The `scope` parameter (RFC 6749 3.3).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A set of scope tokens.
///
/// On the wire a scope is a list of tokens separated by single spaces, each made
/// of `%x21 / %x23-5B / %x5D-7E` (RFC 6749 3.3). The order carries no meaning, so
/// the set displays sorted. Empty tokens (two spaces, or a leading or trailing
/// space) and repeated tokens are rejected rather than cleaned up, because a
/// request we would have to reinterpret is not the request the user approved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// The empty scope.
    pub fn empty() -> Self {
        Scope(BTreeSet::new())
    }

    /// Parses a non-empty, space-separated scope string. Every failure is
    /// `invalid_scope` ("invalid, unknown, or malformed", RFC 6749 4.1.2.1).
    pub fn parse(s: &str) -> Result<Self> {
        let mut set = BTreeSet::new();
        for token in s.split(' ') {
            if token.is_empty() {
                return Err(Error::InvalidScope("empty scope token"));
            }
            if !token.bytes().all(is_nqchar) {
                return Err(Error::InvalidScope("scope token with a character outside RFC 6749 3.3"));
            }
            if !set.insert(token.to_owned()) {
                return Err(Error::InvalidScope("repeated scope token"));
            }
        }
        Ok(Scope(set))
    }

    /// Builds a scope from tokens, checking each one.
    pub fn from_tokens<I, T>(tokens: I) -> Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for t in tokens {
            let t = t.as_ref();
            if t.is_empty() || !t.bytes().all(is_nqchar) {
                return Err(Error::InvalidScope("scope token with a character outside RFC 6749 3.3"));
            }
            if !set.insert(t.to_owned()) {
                return Err(Error::InvalidScope("repeated scope token"));
            }
        }
        Ok(Scope(set))
    }

    /// True when the scope has no tokens.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when every token of `self` is in `other`.
    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens in both `self` and `other`.
    pub fn intersection(&self, other: &Scope) -> Scope {
        Scope(self.0.intersection(&other.0).cloned().collect())
    }

    /// True when `token` is one of the scope's tokens.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// The tokens, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

fn is_nqchar(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
        }
        Ok(())
    }
}

impl TryFrom<String> for Scope {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        if s.is_empty() { Ok(Scope::empty()) } else { Scope::parse(&s) }
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scope_is_a_set_displayed_sorted() {
        let s = Scope::parse("write read profile").unwrap();
        assert_eq!(s.to_string(), "profile read write");
        assert_eq!(s.len(), 3);
        assert!(Scope::parse("read").unwrap().is_subset(&s));
        assert!(!Scope::parse("admin").unwrap().is_subset(&s));
    }

    #[test]
    fn scope_rejects_empty_tokens() {
        for bad in ["", " ", "a  b", " a", "a "] {
            assert_eq!(Scope::parse(bad), Err(Error::InvalidScope("empty scope token")), "{bad:?}");
        }
    }

    #[test]
    fn scope_rejects_repeated_tokens() {
        assert_eq!(Scope::parse("a b a"), Err(Error::InvalidScope("repeated scope token")));
    }

    #[test]
    fn scope_rejects_quote_backslash_and_non_ascii() {
        for bad in ["a\"b", "a\\b", "ü", "a\tb", "a\u{7f}"] {
            assert!(matches!(Scope::parse(bad), Err(Error::InvalidScope(_))), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn scope_parse_never_panics(s in ".{0,64}") {
            let _ = Scope::parse(&s);
        }

        #[test]
        fn scope_display_round_trips(tokens in proptest::collection::btree_set("[!#-\\[\\]-~]{1,8}", 1..6)) {
            let wire = tokens.iter().cloned().collect::<Vec<_>>().join(" ");
            let scope = Scope::parse(&wire).unwrap();
            prop_assert_eq!(Scope::parse(&scope.to_string()).unwrap(), scope.clone());
            prop_assert_eq!(scope.to_string(), wire);
        }
    }
}
