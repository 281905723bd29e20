//! RFC 9068 access tokens: minting, and verification with the algorithm pinned
//! by the key.

use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use jsonwebtoken::{Header, Validation};
use oauth_core::{AccessTokenClaims, AccessTokenCodec, AccessTokenId, ClientId, Error, GrantId, Scope};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::keys::VerifyingKey;
use crate::ring::KeyRing;

/// The `typ` header of an RFC 9068 access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The largest clock skew a verifier may allow, in seconds (SPEC: at most 60).
pub const MAX_LEEWAY: i64 = 60;

/// Mints and verifies the server's own access tokens.
///
/// The key ring can be re-read from the store while serving
/// ([`JwtCodec::reload_keys`]), so nodes sharing a store verify each other's
/// keys, and a key added by `keys rotate` verifies everywhere before any node
/// signs with it. The signing key never changes while running.
#[derive(Debug)]
pub struct JwtCodec {
    ring: RwLock<Arc<KeyRing>>,
    pub(crate) rules: Rules,
}

/// What a verifier expects of a token besides its signature.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    /// Further `aud` values accepted: the server's RFC 8707 resources, whose
    /// tokens its own introspection and userinfo still verify.
    pub(crate) also_audiences: Vec<String>,
    pub(crate) leeway: Duration,
}

/// The claims as they travel (RFC 9068 section 2.2, plus `gid`).
#[derive(Serialize, Deserialize)]
struct Wire {
    iss: String,
    sub: String,
    aud: String,
    client_id: String,
    scope: String,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gid: Option<String>,
    /// RFC 9449 6.1: the thumbprint of the DPoP key the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation>,
}

/// The `cnf` claim (RFC 7800), with the one member DPoP uses.
#[derive(Serialize, Deserialize)]
struct Confirmation {
    jkt: String,
}

impl JwtCodec {
    /// A codec signing with `ring`'s signer. `leeway` is clamped to
    /// [`MAX_LEEWAY`] seconds.
    pub fn new(ring: KeyRing, issuer: impl Into<String>, audience: impl Into<String>, leeway: Duration) -> Self {
        let leeway = leeway.clamp(Duration::ZERO, Duration::seconds(MAX_LEEWAY));
        let rules = Rules { issuer: issuer.into(), audience: audience.into(), also_audiences: Vec::new(), leeway };
        JwtCodec { ring: RwLock::new(Arc::new(ring)), rules }
    }

    /// Also accepts tokens whose `aud` is one of `resources` (RFC 8707): the
    /// server mints them for its configured resources, and its own
    /// introspection and userinfo must verify them.
    pub fn accepting_resources(mut self, resources: impl IntoIterator<Item = String>) -> Self {
        self.rules.also_audiences.extend(resources);
        self
    }

    /// The key ring as it is now (for the JWKS endpoint).
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Re-reads the store's signing keys and verifies what they say verifies
    /// at `now`, keeping the signer. Returns whether the set of key ids changed.
    pub async fn reload_keys(&self, store: &dyn oauth_core::Store, now: OffsetDateTime) -> Result<bool, crate::Error> {
        let records = store.signing_keys().await?;
        let current = self.ring();
        let next = current.reassembled(&records, now)?;
        let changed = !next.kids().eq(current.kids());
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        Ok(changed)
    }
}

#[async_trait]
impl AccessTokenCodec for JwtCodec {
    async fn mint(&self, c: &AccessTokenClaims) -> Result<String, Error> {
        let ring = self.ring();
        let signer = ring.signer();
        let mut header = Header::new(signer.alg().jws());
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        header.kid = Some(signer.kid().to_owned());
        let wire = Wire {
            iss: c.issuer.clone(),
            sub: c.subject.clone(),
            aud: c.audience.clone(),
            client_id: c.client_id.to_string(),
            scope: c.scope.to_string(),
            iat: c.issued_at.unix_timestamp(),
            exp: c.expires_at.unix_timestamp(),
            nbf: None,
            jti: c.jti.to_string(),
            gid: c.grant.map(|g| g.to_string()),
            cnf: c.jkt.clone().map(|jkt| Confirmation { jkt }),
        };
        signer.sign(&header, &wire)
    }

    /// A compact JWS: three base64url parts joined by two dots. Refresh tokens
    /// are unpadded base64url, which has no dot.
    fn is_access_token(&self, token: &str) -> bool {
        token.bytes().filter(|b| *b == b'.').count() == 2
    }

    async fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessTokenClaims, Error> {
        let ring = self.ring();
        verify(token, now, &self.rules, |kid| ring.verifier(kid, now).cloned())
    }
}

/// Verifies `token`: `typ` must be `at+jwt`, `kid` must name a key that
/// `lookup` knows, the algorithm is the key's (never the header's choice),
/// `iss` and `aud` must match, `exp` is required, and `exp`, `nbf` and `iat` are
/// checked against `now` with the leeway. Every failure is
/// [`Error::InvalidToken`].
pub(crate) fn verify(
    token: &str,
    now: OffsetDateTime,
    rules: &Rules,
    lookup: impl FnOnce(&str) -> Option<VerifyingKey>,
) -> Result<AccessTokenClaims, Error> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Error::InvalidToken("malformed token"))?;
    let typ_ok = header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt"));
    if !typ_ok {
        return Err(Error::InvalidToken("not an access token"));
    }
    let kid = header.kid.ok_or(Error::InvalidToken("no key id"))?;
    let key = lookup(&kid).ok_or(Error::InvalidToken("unknown key id"))?;
    if header.alg != key.alg.jws() {
        return Err(Error::InvalidToken("algorithm does not match the key"));
    }
    let mut v = Validation::new(key.alg.jws());
    // Time is checked below against the injected clock, not the system's.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.set_issuer(&[&rules.issuer]);
    let mut audiences = vec![rules.audience.as_str()];
    audiences.extend(rules.also_audiences.iter().map(String::as_str));
    v.set_audience(&audiences);
    let data = jsonwebtoken::decode::<Wire>(token, &key.decoding, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind::*;
        Error::InvalidToken(match e.kind() {
            InvalidSignature => "bad signature",
            InvalidIssuer => "wrong issuer",
            InvalidAudience => "wrong audience",
            MissingRequiredClaim(_) => "missing claim",
            _ => "malformed token",
        })
    })?;
    let w = data.claims;
    let leeway = rules.leeway.whole_seconds();
    let now_s = now.unix_timestamp();
    if now_s >= w.exp.saturating_add(leeway) {
        return Err(Error::InvalidToken("expired"));
    }
    if w.nbf.is_some_and(|nbf| nbf > now_s.saturating_add(leeway)) || w.iat > now_s.saturating_add(leeway) {
        return Err(Error::InvalidToken("not valid yet"));
    }
    fn bad<E>(_: E) -> Error {
        Error::InvalidToken("malformed claims")
    }
    let time = |t| OffsetDateTime::from_unix_timestamp(t).map_err(bad);
    Ok(AccessTokenClaims {
        issuer: w.iss,
        subject: w.sub,
        audience: w.aud,
        client_id: ClientId::parse(&w.client_id).map_err(bad)?,
        scope: Scope::try_from(w.scope).map_err(bad)?,
        issued_at: time(w.iat)?,
        expires_at: time(w.exp)?,
        jti: AccessTokenId::parse(&w.jti).ok_or(Error::InvalidToken("malformed claims"))?,
        grant: match w.gid {
            Some(g) => Some(GrantId::parse(&g).ok_or(Error::InvalidToken("malformed claims"))?),
            None => None,
        },
        jkt: w.cnf.map(|c| c.jkt),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{SigningAlg, SigningKey};
    use jsonwebtoken::EncodingKey;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn codec(alg: SigningAlg) -> JwtCodec {
        JwtCodec::new(
            KeyRing::single(SigningKey::generate(alg).unwrap()),
            "https://as.example",
            "https://api.example",
            Duration::seconds(30),
        )
    }

    fn claims() -> serde_json::Value {
        json!({
            "iss": "https://as.example", "sub": "s", "aud": "https://api.example", "client_id": "c",
            "scope": "read", "iat": NOW.unix_timestamp(), "exp": NOW.unix_timestamp() + 900,
            "jti": "0b9d2a4e-5a9a-4c1e-9a43-111111111111"
        })
    }

    /// Signs `claims` with the codec's own key but a header of our choosing.
    fn forge(c: &JwtCodec, edit: impl FnOnce(&mut Header), claims: &serde_json::Value) -> String {
        let ring = c.ring();
        let signer = ring.signer();
        let mut h = Header::new(signer.alg().jws());
        h.typ = Some(ACCESS_TOKEN_TYP.into());
        h.kid = Some(signer.kid().into());
        edit(&mut h);
        jsonwebtoken::encode(&h, claims, signer.encoding()).unwrap()
    }

    async fn rejected(c: &JwtCodec, token: &str) -> bool {
        matches!(c.verify(token, NOW).await, Err(Error::InvalidToken(_)))
    }

    #[tokio::test]
    async fn a_well_formed_forgery_base_verifies() {
        // The baseline the other tests change one thing in.
        let c = codec(SigningAlg::Es256);
        assert!(c.verify(&forge(&c, |_| {}, &claims()), NOW).await.is_ok());
    }

    #[tokio::test]
    async fn alg_none_is_rejected() {
        use base64::Engine;
        let c = codec(SigningAlg::Es256);
        let b64 = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let kid = c.ring().signer().kid().to_owned();
        let token = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})), b64(&claims()));
        assert!(rejected(&c, &token).await);
    }

    #[tokio::test]
    async fn algorithm_confusion_with_the_public_key_as_hmac_secret_is_rejected() {
        let c = codec(SigningAlg::Es256);
        let jwks = serde_json::to_vec(&c.ring().jwks(NOW).keys[0]).unwrap();
        let mut h = Header::new(jsonwebtoken::Algorithm::HS256);
        h.typ = Some(ACCESS_TOKEN_TYP.into());
        h.kid = Some(c.ring().signer().kid().into());
        let token = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(&jwks)).unwrap();
        assert!(rejected(&c, &token).await);
    }

    #[tokio::test]
    async fn unknown_or_missing_kid_is_rejected() {
        let c = codec(SigningAlg::Es256);
        assert!(rejected(&c, &forge(&c, |h| h.kid = Some("not-a-key".into()), &claims())).await);
        assert!(rejected(&c, &forge(&c, |h| h.kid = None, &claims())).await);
        assert!(rejected(&c, &forge(&c, |h| h.kid = Some("../../etc/passwd".into()), &claims())).await);
    }

    #[tokio::test]
    async fn a_token_without_the_access_token_type_is_rejected() {
        let c = codec(SigningAlg::Es256);
        assert!(rejected(&c, &forge(&c, |h| h.typ = Some("JWT".into()), &claims())).await);
        assert!(rejected(&c, &forge(&c, |h| h.typ = None, &claims())).await);
        let at = forge(&c, |h| h.typ = Some("application/at+jwt".into()), &claims());
        assert!(c.verify(&at, NOW).await.is_ok(), "the media-type form of typ is the same type");
    }

    #[tokio::test]
    async fn missing_exp_iss_or_aud_is_rejected() {
        let c = codec(SigningAlg::Es256);
        for claim in ["exp", "iss", "aud", "sub"] {
            let mut cl = claims();
            cl.as_object_mut().unwrap().remove(claim);
            assert!(rejected(&c, &forge(&c, |_| {}, &cl)).await, "{claim}");
        }
    }

    #[tokio::test]
    async fn another_issuer_or_audience_is_rejected() {
        let c = codec(SigningAlg::Es256);
        for (k, v) in [("iss", "https://evil.example"), ("aud", "https://other.example")] {
            let mut cl = claims();
            cl[k] = json!(v);
            assert!(rejected(&c, &forge(&c, |_| {}, &cl)).await, "{k}");
        }
    }

    #[tokio::test]
    async fn expiry_holds_with_at_most_the_leeway() {
        let c = codec(SigningAlg::Es256);
        let token = forge(&c, |_| {}, &claims());
        let exp = NOW + Duration::seconds(900);
        assert!(c.verify(&token, exp + Duration::seconds(29)).await.is_ok());
        assert!(matches!(c.verify(&token, exp + Duration::seconds(30)).await, Err(Error::InvalidToken("expired"))));
    }

    #[tokio::test]
    async fn a_token_from_the_future_is_rejected() {
        let c = codec(SigningAlg::Es256);
        let mut cl = claims();
        cl["iat"] = json!(NOW.unix_timestamp() + 31);
        assert!(rejected(&c, &forge(&c, |_| {}, &cl)).await);
        let mut cl = claims();
        cl["nbf"] = json!(NOW.unix_timestamp() + 31);
        assert!(rejected(&c, &forge(&c, |_| {}, &cl)).await);
        cl["nbf"] = json!(NOW.unix_timestamp() + 29);
        assert!(c.verify(&forge(&c, |_| {}, &cl), NOW).await.is_ok(), "within the leeway");
    }

    #[tokio::test]
    async fn a_tampered_payload_or_another_keys_signature_is_rejected() {
        let c = codec(SigningAlg::Es256);
        let token = forge(&c, |_| {}, &claims());
        let other = codec(SigningAlg::Es256);
        let foreign = forge(&other, |h| h.kid = Some(c.ring().signer().kid().into()), &claims());
        assert!(rejected(&c, &foreign).await);
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload = {
            use base64::Engine;
            let mut cl = claims();
            cl["scope"] = json!("admin");
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(cl.to_string())
        };
        parts[1] = &forged_payload;
        assert!(rejected(&c, &parts.join(".")).await);
    }

    #[tokio::test]
    async fn leeway_is_capped_at_sixty_seconds() {
        let c = JwtCodec::new(c_ring(), "https://as.example", "https://api.example", Duration::hours(1));
        assert_eq!(c.rules.leeway, Duration::seconds(MAX_LEEWAY));
    }

    fn c_ring() -> KeyRing {
        KeyRing::single(SigningKey::generate(SigningAlg::Hs256).unwrap())
    }

    #[tokio::test]
    async fn garbage_never_panics() {
        let c = codec(SigningAlg::Hs256);
        for t in ["", ".", "..", "a.b.c", "eyJ.eyJ.x", "😀.😀.😀", &"a".repeat(10_000)] {
            assert!(rejected(&c, t).await, "{t}");
        }
    }
}
