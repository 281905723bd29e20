//! OpenID Connect's additions to the token and resource flows: ID tokens
//! (Core 1.0 2, 3.1.3.3, 12.2) and the UserInfo answer (Core 1.0 5.1, 5.3).

use time::OffsetDateTime;

use crate::account::Account;
use crate::authority::Authority;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::services::IdTokenClaims;
use crate::session::Authentication;
use crate::types::{AccountId, Nonce, Scope};

use super::token_status::BearerPrincipal;

/// The scope that makes a request OpenID Connect.
pub const OPENID: &str = "openid";

/// The standard claims each scope releases (OpenID Connect Core 5.4), in the
/// order a UserInfo answer lists them.
const SCOPE_CLAIMS: [(&str, &[&str]); 3] = [
    (
        "profile",
        &[
            "name",
            "given_name",
            "family_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// The claims ID tokens carry, for the discovery document.
const ID_TOKEN_CLAIMS: [&str; 11] =
    ["iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "at_hash", "sid", "amr", "nonce"];

/// Every claim the server can release (`claims_supported`): the ID token's
/// and the standard claims of the scopes above. No account attribute outside
/// them (a `bsn`, say) is ever a claim.
pub fn claims_supported() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = ID_TOKEN_CLAIMS.to_vec();
    all.extend(SCOPE_CLAIMS.iter().flat_map(|(_, claims)| claims.iter().copied()));
    all
}

/// One claim's value in a UserInfo answer. Account attributes are strings;
/// the OpenID Connect types are restored where the standard says so.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimValue {
    /// A JSON string.
    Text(String),
    /// A JSON boolean (`email_verified`, `phone_number_verified`).
    Bool(bool),
    /// A JSON number (`updated_at`, seconds since the epoch).
    Number(i64),
}

/// A UserInfo answer: claim names and values, in order. The front end
/// decides its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// `sub` first, then the claims the token's scope releases.
    pub claims: Vec<(&'static str, ClaimValue)>,
}

impl Authority {
    /// What `/userinfo` answers for a valid token. Without `openid` in its
    /// scope: exactly `sub` and `username`. With it: `sub` and the standard
    /// claims that the granted scopes (`profile`, `email`, `phone`) allow and
    /// the account's attributes hold (`preferred_username` defaults to the
    /// username). A token without an account is
    /// [`Error::InsufficientScope`].
    pub fn userinfo(&self, principal: &BearerPrincipal) -> Result<UserInfo> {
        let account = principal.account.as_ref().ok_or(Error::InsufficientScope("the token has no resource owner"))?;
        let mut claims = vec![("sub", ClaimValue::Text(account.id.to_string()))];
        let scope = &principal.claims.scope;
        if !scope.contains(OPENID) {
            claims.push(("username", ClaimValue::Text(account.username.clone())));
            return Ok(UserInfo { claims });
        }
        for (granting, names) in SCOPE_CLAIMS {
            if scope.contains(granting) {
                claims.extend(names.iter().filter_map(|name| claim_value(account, name).map(|v| (*name, v))));
            }
        }
        Ok(UserInfo { claims })
    }

    /// The ID token issued beside `access_token` to `client` for `account`,
    /// when `scope` has `openid` and the grant knows its `login` (the
    /// authentication, and the request's `nonce`); `None` otherwise (a
    /// password grant, say).
    pub(crate) async fn id_token_for(
        &self,
        client: &Client,
        account: AccountId,
        scope: &Scope,
        login: Option<(&Authentication, Option<&Nonce>)>,
        access_token: &str,
        now: OffsetDateTime,
    ) -> Result<Option<String>> {
        let Some((authentication, nonce)) = login.filter(|_| scope.contains(OPENID)) else {
            return Ok(None);
        };
        let claims = IdTokenClaims {
            issuer: self.settings.issuer.clone(),
            subject: account,
            audience: client.id().clone(),
            issued_at: now,
            expires_at: now + self.settings.id_token_ttl,
            auth_time: authentication.auth_time,
            nonce: nonce.cloned(),
            sid: authentication.sid,
        };
        let token = self.services.id_tokens.mint_id_token(&claims, self.id_token_alg(client), access_token).await?;
        Ok(Some(token))
    }
}

/// The value of standard claim `name` for `account`, from its attribute of
/// the same name: booleans and numbers where OpenID Connect types them, and
/// nothing when the attribute is missing or cannot have that type.
fn claim_value(account: &Account, name: &str) -> Option<ClaimValue> {
    let attribute = account.attributes.get(name);
    match name {
        "preferred_username" => Some(ClaimValue::Text(attribute.unwrap_or(&account.username).clone())),
        "email_verified" | "phone_number_verified" => match attribute.map(String::as_str) {
            Some("true") => Some(ClaimValue::Bool(true)),
            Some("false") => Some(ClaimValue::Bool(false)),
            _ => None,
        },
        "updated_at" => attribute
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse().ok())
            .map(ClaimValue::Number),
        _ => attribute.map(|v| ClaimValue::Text(v.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn account(attributes: &[(&str, &str)]) -> Account {
        Account {
            id: AccountId::from_random_bytes([1; 16]),
            username: "alice".into(),
            password_hash: None,
            disabled: false,
            attributes: attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
            origin: crate::account::AccountOrigin::Configuration,
        }
    }

    #[test]
    fn verified_flags_become_booleans_and_updated_at_a_number() {
        let a =
            account(&[("email_verified", "true"), ("phone_number_verified", "false"), ("updated_at", "1700000000")]);
        assert_eq!(claim_value(&a, "email_verified"), Some(ClaimValue::Bool(true)));
        assert_eq!(claim_value(&a, "phone_number_verified"), Some(ClaimValue::Bool(false)));
        assert_eq!(claim_value(&a, "updated_at"), Some(ClaimValue::Number(1_700_000_000)));
        let odd = account(&[("email_verified", "yes"), ("updated_at", "2024-01-01")]);
        assert_eq!(claim_value(&odd, "email_verified"), None, "neither true nor false");
        assert_eq!(claim_value(&odd, "updated_at"), None, "not digits");
    }

    #[test]
    fn preferred_username_defaults_to_the_username() {
        assert_eq!(claim_value(&account(&[]), "preferred_username"), Some(ClaimValue::Text("alice".into())));
        let named = account(&[("preferred_username", "al")]);
        assert_eq!(claim_value(&named, "preferred_username"), Some(ClaimValue::Text("al".into())));
        assert_eq!(claim_value(&account(&[]), "name"), None, "a missing attribute is left out");
    }

    #[test]
    fn claims_supported_lists_no_attribute_outside_the_standard() {
        let all = claims_supported();
        assert!(all.contains(&"email_verified") && all.contains(&"auth_time") && all.contains(&"birthdate"));
        assert!(!all.contains(&"bsn") && !all.contains(&"username"));
    }
}
