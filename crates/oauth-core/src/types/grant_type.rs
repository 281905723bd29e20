//! `grant_type` (RFC 6749 4) and `response_type` (RFC 6749 3.1.1) values.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The grant types this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 4.1, with PKCE (RFC 7636).
    AuthorizationCode,
    /// RFC 6749 6.
    RefreshToken,
    /// RFC 6749 4.4.
    ClientCredentials,
    /// RFC 6749 4.3; RFC 9700 2.4 says not to use it, so servers switch it on
    /// explicitly.
    Password,
    /// RFC 8628: the device authorization grant, polled with the device code.
    DeviceCode,
}

impl GrantType {
    /// Every grant type, in a fixed order.
    pub const ALL: [GrantType; 5] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::Password,
        GrantType::DeviceCode,
    ];

    /// Parses a `grant_type` value. An unknown one is `unsupported_grant_type`.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s).ok_or(Error::UnsupportedGrantType)
    }

    /// The value as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Password => "password",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The only `response_type` OAuth 2.1 keeps: `code`. The implicit grant's `token`
/// is refused (RFC 9700 2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// `code`
    Code,
}

impl ResponseType {
    /// Parses a `response_type`; anything but `code` is `unsupported_response_type`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "code" => Ok(ResponseType::Code),
            _ => Err(Error::UnsupportedResponseType),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_types_round_trip() {
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Ok(g));
        }
    }

    #[test]
    fn unknown_grant_type_is_unsupported() {
        for bad in ["implicit", "PASSWORD", "", "device_code", "urn:ietf:params:oauth:grant-type:saml2-bearer"] {
            assert_eq!(GrantType::parse(bad), Err(Error::UnsupportedGrantType));
        }
    }

    #[test]
    fn only_code_response_type_is_supported() {
        assert_eq!(ResponseType::parse("code"), Ok(ResponseType::Code));
        for bad in ["token", "code token", "id_token", "", "CODE"] {
            assert_eq!(ResponseType::parse(bad), Err(Error::UnsupportedResponseType));
        }
    }
}
