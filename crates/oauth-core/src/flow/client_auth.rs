//! Client authentication at `/token`, `/revoke` and `/introspect`
//! (RFC 6749 2.3).

use std::net::IpAddr;
use std::sync::Arc;

use crate::authority::Authority;
use crate::client::Client;
use crate::error::{Error, ErrorCode, Result};
use crate::throttle::{Counted, subjects};
use crate::types::ClientId;

/// The client's identification, from `Authorization: Basic` or from the body
/// (`client_id`, `client_secret`). The front end refuses a request that uses
/// both, and decodes Basic credentials per RFC 6749 2.3.1.
#[derive(Clone, Copy)]
pub struct ClientCredentials<'a> {
    /// The `client_id` as sent.
    pub client_id: &'a str,
    /// The secret as sent; `None` for a public client (method `none`).
    pub secret: Option<&'a str>,
}

impl std::fmt::Debug for ClientCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// A client that passed authentication, and how. Only
/// [`Authority::authenticate_client`] makes one, and every grant demands one, so
/// a grant cannot run for an unauthenticated client.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    client: Arc<Client>,
    method: ClientAuthMethod,
}

impl AuthenticatedClient {
    /// The authenticated client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// How it authenticated.
    pub fn method(&self) -> ClientAuthMethod {
        self.method
    }
}

/// How a client proved who it is (RFC 7591 `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// A public client: its `client_id` and no secret (`none`).
    None,
    /// `client_secret_basic` or `client_secret_post`: the secret matched the
    /// stored hash.
    ClientSecret,
    /// `private_key_jwt` (RFC 7523): an assertion signed by one of the
    /// client's keys. The check that makes it comes with the second stage
    /// (SPEC-2); until then no client authenticates this way.
    PrivateKeyJwt,
}

impl Authority {
    /// Authenticates a client. Every failure is [`Error::InvalidClient`]
    /// (401, whatever the method): an unknown client, a confidential client
    /// without its secret or with a wrong one, a public client that sends a
    /// secret. Failures count towards the throttle for the `client_id` and the
    /// peer; past the limit the answer is [`Error::Throttled`] with
    /// `invalid_client`.
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials<'_>,
        peer: Option<IpAddr>,
    ) -> Result<AuthenticatedClient> {
        let counted = subjects(Counted::Client(creds.client_id), peer);
        self.throttle_check(&counted, ErrorCode::InvalidClient).await?;
        let client = match ClientId::parse(creds.client_id) {
            Ok(id) => self.services.clients.client(&id).await?,
            Err(_) => None,
        };
        let ok = match (&client, creds.secret) {
            (Some(c), Some(secret)) => match c.secret() {
                Some(hash) => self.services.verifier.verify(Some(hash), secret).await?,
                None => false,
            },
            (Some(c), None) => !c.is_confidential(),
            (None, _) => false,
        };
        match client {
            Some(client) if ok => {
                let method =
                    if creds.secret.is_some() { ClientAuthMethod::ClientSecret } else { ClientAuthMethod::None };
                Ok(AuthenticatedClient { client, method })
            }
            _ => {
                self.throttle_fail(&counted).await?;
                Err(Error::InvalidClient)
            }
        }
    }
}
