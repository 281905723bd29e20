//! PKCE (RFC 7636), `S256` only.
//!
//! `plain` is refused, and so is a `code_challenge` without a method, because
//! the RFC's default for an absent method is `plain` (RFC 7636 4.3). With
//! `plain`, the challenge is the verifier, so anyone who sees the authorization
//! request can redeem the code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// An `S256` code challenge: the unpadded base64url SHA-256 of a verifier,
/// always 43 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeChallenge(String);

/// Proof that a code's PKCE binding was checked: either the verifier matched the
/// stored challenge, or the code was issued without a challenge and no verifier
/// was sent. Only [`CodeChallenge::verify_binding`] makes one, and the code
/// exchange that issues tokens takes it by value, so it proves one exchange. It
/// names the challenge it was checked against, so a proof for one code cannot
/// stand in for another's.
#[derive(Debug)]
pub struct PkceVerified {
    challenge: Option<CodeChallenge>,
}

impl PkceVerified {
    /// The challenge the verifier matched; `None` for a code issued without one.
    pub fn challenge(&self) -> Option<&CodeChallenge> {
        self.challenge.as_ref()
    }
}

impl CodeChallenge {
    /// Parses the `code_challenge` and `code_challenge_method` parameters of an
    /// authorization request. `Ok(None)` means neither was sent.
    pub fn from_request(challenge: Option<&str>, method: Option<&str>) -> Result<Option<Self>> {
        match (challenge, method) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(Error::InvalidRequest("code_challenge_method without code_challenge")),
            (Some(_), None) => {
                Err(Error::InvalidRequest("code_challenge_method is required and must be S256 (plain is not allowed)"))
            }
            (Some(_), Some(m)) if m != "S256" => Err(Error::InvalidRequest("code_challenge_method must be S256")),
            (Some(c), Some(_)) => {
                let ok = c.len() == 43 && c.bytes().all(is_base64url);
                if !ok {
                    return Err(Error::InvalidRequest("code_challenge must be 43 base64url characters"));
                }
                Ok(Some(CodeChallenge(c.to_owned())))
            }
        }
    }

    /// The challenge as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the binding between a code and the `code_verifier` sent to
    /// redeem it: a challenge needs a matching verifier, and a code issued
    /// without a challenge must not be redeemed with one (RFC 9700 2.1.1, which
    /// closes the PKCE downgrade attack).
    pub fn verify_binding(challenge: Option<&CodeChallenge>, verifier: Option<&CodeVerifier>) -> Result<PkceVerified> {
        match (challenge, verifier) {
            (None, None) => Ok(PkceVerified { challenge: None }),
            (Some(_), None) => Err(Error::InvalidGrant("code_verifier is required for this code")),
            (None, Some(_)) => Err(Error::InvalidGrant("this code was issued without a code_challenge")),
            (Some(c), Some(v)) => {
                let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(v.0.as_bytes()));
                // Constant time, though the challenge is not secret: it costs
                // nothing and avoids arguing about it in review.
                if bool::from(computed.as_bytes().ct_eq(c.0.as_bytes())) {
                    Ok(PkceVerified { challenge: Some(c.clone()) })
                } else {
                    Err(Error::InvalidGrant("code_verifier does not match code_challenge"))
                }
            }
        }
    }
}

/// A `code_verifier`: 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 4.1).
#[derive(Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

impl CodeVerifier {
    /// Validates a `code_verifier` from a token request.
    pub fn parse(s: &str) -> Result<Self> {
        let ok = (43..=128).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !ok {
            return Err(Error::InvalidRequest("code_verifier must be 43 to 128 unreserved characters"));
        }
        Ok(CodeVerifier(s.to_owned()))
    }
}

impl std::fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeVerifier(..)")
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn challenge() -> CodeChallenge {
        CodeChallenge::from_request(Some(CHALLENGE), Some("S256")).unwrap().unwrap()
    }

    #[test]
    fn the_pkce_proof_names_the_challenge_it_was_checked_against() {
        let verifier = CodeVerifier::parse(VERIFIER).unwrap();
        let proof = CodeChallenge::verify_binding(Some(&challenge()), Some(&verifier)).unwrap();
        assert_eq!(proof.challenge(), Some(&challenge()));
        assert_eq!(CodeChallenge::verify_binding(None, None).unwrap().challenge(), None);
    }

    #[test]
    fn rfc7636_appendix_b_vector_verifies() {
        let v = CodeVerifier::parse(VERIFIER).unwrap();
        assert!(CodeChallenge::verify_binding(Some(&challenge()), Some(&v)).is_ok());
    }

    #[test]
    fn wrong_verifier_is_invalid_grant() {
        let v = CodeVerifier::parse(&"a".repeat(43)).unwrap();
        assert!(matches!(CodeChallenge::verify_binding(Some(&challenge()), Some(&v)), Err(Error::InvalidGrant(_))));
    }

    #[test]
    fn plain_and_missing_method_are_rejected() {
        for method in [Some("plain"), None, Some("s256"), Some("")] {
            assert!(matches!(CodeChallenge::from_request(Some(CHALLENGE), method), Err(Error::InvalidRequest(_))));
        }
    }

    #[test]
    fn method_without_challenge_is_rejected() {
        assert!(CodeChallenge::from_request(None, Some("S256")).is_err());
        assert_eq!(CodeChallenge::from_request(None, None), Ok(None));
    }

    #[test]
    fn malformed_challenge_is_rejected() {
        for bad in ["short", &"a".repeat(44), &format!("{}=", &CHALLENGE[..42]), &format!("{}+", &CHALLENGE[..42])] {
            assert!(CodeChallenge::from_request(Some(bad), Some("S256")).is_err(), "{bad}");
        }
    }

    #[test]
    fn pkce_downgrade_is_refused_both_ways() {
        let v = CodeVerifier::parse(VERIFIER).unwrap();
        assert!(matches!(CodeChallenge::verify_binding(Some(&challenge()), None), Err(Error::InvalidGrant(_))));
        assert!(matches!(CodeChallenge::verify_binding(None, Some(&v)), Err(Error::InvalidGrant(_))));
        assert!(CodeChallenge::verify_binding(None, None).is_ok());
    }

    #[test]
    fn verifier_length_and_alphabet_are_checked() {
        assert!(CodeVerifier::parse(&"a".repeat(42)).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(128)).is_ok());
        assert!(CodeVerifier::parse(&format!("{}+", "a".repeat(42))).is_err());
    }

    proptest! {
        #[test]
        fn pkce_parsers_never_panic(c in ".{0,200}", m in ".{0,8}") {
            let _ = CodeChallenge::from_request(Some(&c), Some(&m));
            let _ = CodeVerifier::parse(&c);
        }

        #[test]
        fn any_valid_verifier_matches_its_own_challenge(v in "[A-Za-z0-9._~-]{43,128}") {
            let verifier = CodeVerifier::parse(&v).unwrap();
            let c = URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
            let challenge = CodeChallenge::from_request(Some(&c), Some("S256")).unwrap();
            prop_assert!(CodeChallenge::verify_binding(challenge.as_ref(), Some(&verifier)).is_ok());
        }
    }
}
