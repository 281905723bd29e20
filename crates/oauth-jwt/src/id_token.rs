//! ID tokens (OpenID Connect Core 1.0 2): minting, with `at_hash`, and the
//! check of an `id_token_hint` at logout.
//!
//! An ID token is signed by the ring's RS256 key, or by the access-token key
//! when the client asks for the server's algorithm. Its `typ` is `JWT`, never
//! the access tokens' `at+jwt`, and the access-token verifier requires
//! `at+jwt`, so an ID token is never accepted as a bearer token; the hint
//! check refuses `at+jwt`, so an access token is never a hint.

use async_trait::async_trait;
use aws_lc_rs::digest::{SHA256, SHA512, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Header, Validation};
use oauth_core::{Error, IdTokenAlg, IdTokenClaims, IdTokenCodec, IdTokenHint};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::codec::{ACCESS_TOKEN_TYP, JwtCodec};
use crate::keys::SigningAlg;

/// The `amr` of every ID token: the built-in login is a password.
const AMR: [&str; 1] = ["pwd"];

/// The claims as they travel.
#[derive(Serialize)]
struct Wire<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    amr: [&'static str; 1],
    at_hash: String,
}

/// The claims a hint is read for.
#[derive(Deserialize)]
struct HintWire {
    sub: String,
    aud: serde_json::Value,
}

/// `at_hash` (OpenID Connect Core 3.1.3.6): the left half of the hash of the
/// access token, with the hash of the ID token's algorithm (SHA-512 for
/// Ed25519, as OpenID Connect's EdDSA errata and the common libraries do).
pub(crate) fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let hash = match alg {
        SigningAlg::Es256 | SigningAlg::Rs256 | SigningAlg::Hs256 => digest(&SHA256, access_token.as_bytes()),
        SigningAlg::EdDsa | SigningAlg::Hs512 => digest(&SHA512, access_token.as_bytes()),
    };
    let bytes = hash.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

#[async_trait]
impl IdTokenCodec for JwtCodec {
    async fn mint_id_token(&self, c: &IdTokenClaims, alg: IdTokenAlg, access_token: &str) -> Result<String, Error> {
        let ring = self.ring();
        let key = match alg {
            IdTokenAlg::Rs256 => {
                ring.id_token_signer().ok_or(Error::Internal("the key ring has no RS256 key for ID tokens".into()))?
            }
            IdTokenAlg::ServerAlg => ring.signer(),
        };
        let mut header = Header::new(key.alg().jws());
        header.kid = Some(key.kid().to_owned());
        let wire = Wire {
            iss: &c.issuer,
            sub: c.subject.to_string(),
            aud: c.audience.as_str(),
            azp: c.audience.as_str(),
            exp: c.expires_at.unix_timestamp(),
            iat: c.issued_at.unix_timestamp(),
            auth_time: c.auth_time.unix_timestamp(),
            nonce: c.nonce.as_ref().map(|n| n.as_str()),
            sid: c.sid.map(|s| s.to_string()),
            amr: AMR,
            at_hash: at_hash(key.alg(), access_token),
        };
        key.sign(&header, &wire)
    }

    async fn verify_id_token_hint(&self, token: &str, now: OffsetDateTime) -> Result<IdTokenHint, Error> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::InvalidToken("malformed token"))?;
        let is_access_token = header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt"));
        if is_access_token {
            return Err(Error::InvalidToken("an access token is not an ID token"));
        }
        let kid = header.kid.ok_or(Error::InvalidToken("no key id"))?;
        let ring = self.ring();
        let key = ring.verifier(&kid, now).ok_or(Error::InvalidToken("unknown key id"))?;
        // Never an HMAC key: ID tokens are signed with public-key algorithms
        // only, and an HMAC key here would verify the server's own access
        // tokens.
        if key.alg.is_symmetric() || header.alg != key.alg.jws() {
            return Err(Error::InvalidToken("algorithm does not match the key"));
        }
        let mut v = Validation::new(key.alg.jws());
        // RP-Initiated Logout 1.0 2: an expired ID token is still a good hint.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.set_required_spec_claims(&["iss", "sub", "aud"]);
        v.set_issuer(&[&self.rules.issuer]);
        let data = jsonwebtoken::decode::<HintWire>(token, &key.decoding, &v)
            .map_err(|_| Error::InvalidToken("not an ID token of this server"))?;
        let audience = match data.claims.aud {
            serde_json::Value::String(a) => vec![a],
            serde_json::Value::Array(list) => list.into_iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
            _ => return Err(Error::InvalidToken("malformed claims")),
        };
        Ok(IdTokenHint { subject: data.claims.sub, audience })
    }

    fn server_alg(&self) -> Option<&'static str> {
        let alg = self.ring().signer().alg();
        (!alg.is_symmetric()).then(|| alg.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use crate::ring::KeyRing;
    use oauth_core::{AccountId, ClientId, Nonce, Sid};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn codec() -> JwtCodec {
        let ring = KeyRing::single(SigningKey::generate(SigningAlg::Es256).unwrap())
            .with_id_token_key(SigningKey::generate(SigningAlg::Rs256).unwrap())
            .unwrap();
        JwtCodec::new(ring, "https://as.example", "https://as.example", time::Duration::seconds(30))
    }

    fn claims() -> IdTokenClaims {
        IdTokenClaims {
            issuer: "https://as.example".into(),
            subject: AccountId::from_random_bytes([1; 16]),
            audience: ClientId::parse("app").unwrap(),
            issued_at: NOW,
            expires_at: NOW + time::Duration::hours(1),
            auth_time: NOW - time::Duration::minutes(5),
            nonce: Some(Nonce::parse("n-0S6").unwrap()),
            sid: Some(Sid::from_random_bytes([2; 16])),
        }
    }

    fn payload(token: &str) -> serde_json::Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_tokens_hash() {
        // OpenID Connect Core, appendix A.3's access token and at_hash (RS256).
        assert_eq!(at_hash(SigningAlg::Rs256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[tokio::test]
    async fn an_id_token_has_every_claim_and_the_key_the_client_asked_for() {
        let c = codec();
        let token = c.mint_id_token(&claims(), IdTokenAlg::Rs256, "the-access-token").await.unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), c.ring().id_token_signer().map(|k| k.kid()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let p = payload(&token);
        for claim in ["iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "sid", "amr", "at_hash"] {
            assert!(p.get(claim).is_some(), "{claim} in {p}");
        }
        assert_eq!(p["amr"], serde_json::json!(["pwd"]));
        assert_eq!(p["at_hash"], at_hash(SigningAlg::Rs256, "the-access-token"));
        let server = c.mint_id_token(&claims(), IdTokenAlg::ServerAlg, "t").await.unwrap();
        assert_eq!(jsonwebtoken::decode_header(&server).unwrap().alg, jsonwebtoken::Algorithm::ES256);
        let bare = IdTokenClaims { nonce: None, sid: None, ..claims() };
        let p = payload(&c.mint_id_token(&bare, IdTokenAlg::Rs256, "t").await.unwrap());
        assert!(p.get("nonce").is_none() && p.get("sid").is_none());
    }

    #[tokio::test]
    async fn a_hint_is_checked_by_signature_and_issuer_but_not_expiry() {
        let c = codec();
        let token = c.mint_id_token(&claims(), IdTokenAlg::Rs256, "t").await.unwrap();
        let much_later = NOW + time::Duration::days(2);
        let hint = c.verify_id_token_hint(&token, much_later).await.unwrap();
        assert_eq!((hint.subject, hint.audience), (claims().subject.to_string(), vec!["app".to_owned()]));
        let other = codec().mint_id_token(&claims(), IdTokenAlg::Rs256, "t").await.unwrap();
        assert!(
            matches!(c.verify_id_token_hint(&other, NOW).await, Err(Error::InvalidToken(_))),
            "another server's key"
        );
        let foreign = IdTokenClaims { issuer: "https://evil.example".into(), ..claims() };
        let foreign = c.mint_id_token(&foreign, IdTokenAlg::Rs256, "t").await.unwrap();
        assert!(matches!(c.verify_id_token_hint(&foreign, NOW).await, Err(Error::InvalidToken(_))), "another issuer");
        let mut parts: Vec<&str> = token.split('.').collect();
        let tampered = URL_SAFE_NO_PAD
            .encode(serde_json::json!({"iss": "https://as.example", "sub": "x", "aud": "app"}).to_string());
        parts[1] = &tampered;
        assert!(matches!(c.verify_id_token_hint(&parts.join("."), NOW).await, Err(Error::InvalidToken(_))));
        for garbage in ["", "a.b.c", "...."] {
            assert!(matches!(c.verify_id_token_hint(garbage, NOW).await, Err(Error::InvalidToken(_))));
        }
    }

    #[tokio::test]
    async fn an_access_token_is_not_a_hint_and_an_id_token_is_not_an_access_token() {
        use oauth_core::{AccessTokenClaims, AccessTokenCodec, AccessTokenId, Scope};
        let c = codec();
        let at = AccessTokenClaims {
            issuer: "https://as.example".into(),
            subject: "s".into(),
            audience: "https://as.example".into(),
            client_id: ClientId::parse("app").unwrap(),
            scope: Scope::parse("openid").unwrap(),
            issued_at: NOW,
            expires_at: NOW + time::Duration::minutes(15),
            jti: AccessTokenId::from_random_bytes([3; 16]),
            grant: None,
            jkt: None,
        };
        let access = c.mint(&at).await.unwrap();
        assert!(matches!(c.verify_id_token_hint(&access, NOW).await, Err(Error::InvalidToken(_))));
        let id = c.mint_id_token(&claims(), IdTokenAlg::ServerAlg, &access).await.unwrap();
        assert!(matches!(c.verify(&id, NOW).await, Err(Error::InvalidToken(_))), "typ JWT is not at+jwt");
    }
}
