//! The proof value of a checked DPoP proof (RFC 9449).
//!
//! The second stage (SPEC-2) binds tokens to a client's key: `/token` checks a
//! `DPoP` header (signature by the JWK it carries, `htm`, `htu`, `iat`, a `jti`
//! not seen before) and binds what it issues to the key's RFC 7638 thumbprint.
//! As with PKCE, the check leaves a value that only it can make, and the
//! functions that bind tokens demand that value, so no grant can bind a token
//! to a key whose proof was not checked. The type is here so that the grants'
//! signatures can take it; the check that makes it arrives with DPoP.

/// Proof that a DPoP proof was checked, holding the thumbprint (`jkt`) of the
/// key that signed it. Only the DPoP check makes one.
#[derive(Debug, PartialEq, Eq)]
pub struct DpopVerified {
    jkt: String,
}

impl DpopVerified {
    /// Records a checked proof by its key's thumbprint.
    #[allow(dead_code, reason = "the DPoP check of the second stage (SPEC-2) is its one maker")]
    pub(crate) fn new(jkt: String) -> Self {
        DpopVerified { jkt }
    }

    /// The RFC 7638 thumbprint of the key the proof was signed with, in
    /// base64url: what an access token's `cnf.jkt` carries.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
}
