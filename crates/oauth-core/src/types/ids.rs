//! Identifiers: client ids (from the wire), and the opaque ids the server mints.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{Error, Result};

/// A `client_id` (RFC 6749 2.2, appendix A.1): 1 to 255 characters of `%x20-7E`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    /// Longest accepted `client_id`, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Validates a `client_id`.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > Self::MAX_LEN || !super::is_vschar(s) {
            return Err(Error::InvalidRequest("malformed client_id"));
        }
        Ok(ClientId(s.to_owned()))
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        ClientId::parse(&s)
    }
}

impl From<ClientId> for String {
    fn from(id: ClientId) -> String {
        id.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({:?})", self.0)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Builds the id from 16 bytes of CSPRNG output (a version 4 UUID).
            pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
                $name(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }

            /// Parses the hyphenated form this id displays as.
            pub fn parse(s: &str) -> Option<Self> {
                Uuid::try_parse(s).ok().map($name)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// Rebuilds the id from the 16 bytes a store kept
            /// (`as_uuid().as_bytes()`).
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                $name(Uuid::from_bytes(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// The stable opaque id of an account: a UUID assigned when the account is
    /// first stored. It is the `sub` of the account's tokens, never the username.
    AccountId
);
uuid_id!(
    /// One grant: the authorization that a code exchange or a password login
    /// produced. It is the refresh-token family id and the `gid` claim of access
    /// tokens, so revoking it refuses everything minted from it.
    GrantId
);
uuid_id!(
    /// The `jti` of an access token, by which it can be revoked alone.
    AccessTokenId
);
uuid_id!(
    /// The handle of an authorization session. It is a capability (122 random
    /// bits), so it is only ever handed to the browser that started the session.
    SessionId
);
uuid_id!(
    /// The `sid` of a browser session (single sign-on): the same in every ID
    /// token minted under that session, so a client can tell sessions apart.
    /// It names the session; it is not its secret (the cookie is).
    Sid
);

/// The SHA-256 of an opaque secret (an authorization code or a refresh token).
/// Stores keep only this, so a leaked database does not leak usable secrets.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a secret as presented by a client.
    pub fn of(secret: &str) -> Self {
        TokenHash(Sha256::digest(secret.as_bytes()).into())
    }

    /// Rebuilds a hash from the bytes a store kept.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        TokenHash(bytes)
    }

    /// The raw digest, usable as a store key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in a test failure.
        write!(f, "TokenHash({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_accepts_vschar_up_to_255() {
        assert!(ClientId::parse("pgo.example.org").is_ok());
        assert!(ClientId::parse(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn client_id_rejects_empty_long_and_control_characters() {
        for bad in ["", "tab\there", "new\nline", "ünicode"] {
            assert_eq!(ClientId::parse(bad), Err(Error::InvalidRequest("malformed client_id")));
        }
        assert!(ClientId::parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn ids_round_trip_through_display() {
        let id = AccountId::from_random_bytes([7; 16]);
        assert_eq!(AccountId::parse(&id.to_string()), Some(id));
        assert_eq!(id.as_uuid().get_version_num(), 4);
        assert_eq!(AccountId::parse("alice"), None);
    }

    #[test]
    fn token_hash_is_sha256_of_the_secret() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(TokenHash::of("abc").as_bytes()[..4], [0xba, 0x78, 0x16, 0xbf]);
    }
}
