//! The proof value of a checked DPoP proof (RFC 9449), and the form of a key
//! thumbprint.
//!
//! `/token` checks a `DPoP` header (signature by the JWK it carries, `htm`,
//! `htu`, `iat`, a `jti` not seen before, the nonce when one is required) and
//! binds what it issues to the key's RFC 7638 thumbprint. As with PKCE, the
//! check leaves a value that only it can make ([`Authority::check_dpop`]), and
//! the grants that bind tokens take that value, so no token is bound to a key
//! whose proof was not checked.
//!
//! [`Authority::check_dpop`]: crate::Authority::check_dpop

use crate::error::{Error, Result};

/// Proof that a DPoP proof was checked, holding the thumbprint (`jkt`) of the
/// key that signed it. Only [`Authority::check_dpop`](crate::Authority::check_dpop)
/// makes one.
#[derive(Debug, PartialEq, Eq)]
pub struct DpopVerified {
    jkt: String,
}

impl DpopVerified {
    /// Records a checked proof by its key's thumbprint.
    pub(crate) fn new(jkt: String) -> Self {
        DpopVerified { jkt }
    }

    /// The RFC 7638 thumbprint of the key the proof was signed with, in
    /// base64url: what an access token's `cnf.jkt` carries.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
}

/// Checks the form of a JWK SHA-256 thumbprint as a client sends it
/// (`dpop_jkt`): 43 base64url characters, the unpadded encoding of 32 bytes.
pub(crate) fn parse_thumbprint(s: &str) -> Result<String> {
    let ok = s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(Error::InvalidRequest("dpop_jkt must be a base64url SHA-256 JWK thumbprint"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thumbprint_is_43_base64url_characters() {
        assert!(parse_thumbprint("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs").is_ok());
        for bad in ["", "short", &"a".repeat(44), &format!("{}=", "a".repeat(42)), &format!("{}+", "a".repeat(42))] {
            assert!(parse_thumbprint(bad).is_err(), "{bad}");
        }
    }
}
