//! DPoP proofs (RFC 9449 4) and `private_key_jwt` client assertions (RFC 7523
//! 3) as `JwtProofs` checks them: each built with `jsonwebtoken`, a JOSE
//! library a Rust client would use, over test keys made by `openssl genpkey`
//! (in `tests/keys`). The form and the signature are checked here; what the
//! claims must say (method, URL, age, replay, audience) is the core's, tested
//! in `oauth-core/tests/sender_constrained.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth_core::{Client, ClientId, ClientSettings, Error, GrantType, ProofChecker, RedirectPolicy, Scope, ScopeRule};
use oauth_jwt::JwtProofs;
use serde_json::{Value, json};

const ES256_A: &[u8] = include_bytes!("keys/es256-a.pem");
const ES256_B: &[u8] = include_bytes!("keys/es256-b.pem");
const ED25519: &[u8] = include_bytes!("keys/ed25519.pem");
const RSA: &[u8] = include_bytes!("keys/rsa2048.pem");

fn key(alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(ES256_A).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(ED25519).unwrap(),
        Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(RSA).unwrap(),
        other => panic!("no test key for {other:?}"),
    }
}

fn public_jwk(key: &EncodingKey, alg: Algorithm) -> Jwk {
    Jwk::from_encoding_key(key, alg).unwrap()
}

fn proof_claims() -> Value {
    json!({ "jti": "j-1", "htm": "POST", "htu": "https://as.example/token", "iat": 1_764_072_000 })
}

/// A proof as a client makes it: `typ`, `alg`, the public `jwk` in the header.
fn proof(alg: Algorithm) -> String {
    let key = key(alg);
    let mut header = Header::new(alg);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(public_jwk(&key, alg));
    jsonwebtoken::encode(&header, &proof_claims(), &key).unwrap()
}

/// A proof whose header is `header` (signed with the ES256 test key A).
fn proof_with_header(header: Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    // jsonwebtoken cannot write a header with private members in `jwk` or an
    // unknown `typ` spelling, which is what these cases need: the header is
    // written here, the signature is still jsonwebtoken's.
    let input = format!("{}.{}", b64(&header), b64(&proof_claims()));
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key(Algorithm::ES256), Algorithm::ES256).unwrap();
    format!("{input}.{signature}")
}

fn es256_header() -> Value {
    let k = key(Algorithm::ES256);
    json!({ "alg": "ES256", "typ": "dpop+jwt", "jwk": public_jwk(&k, Algorithm::ES256) })
}

fn refused(r: Result<oauth_core::DpopProof, Error>) -> bool {
    matches!(r, Err(Error::InvalidDpopProof(_)))
}

#[test]
fn a_proof_yields_its_claims_and_the_rfc_7638_thumbprint_of_its_key() {
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256] {
        let p = JwtProofs::new().dpop_proof(&proof(alg)).unwrap();
        let expected = public_jwk(&key(alg), alg).thumbprint(ThumbprintHash::SHA256).unwrap();
        assert_eq!(p.jkt, expected, "{alg:?}");
        assert_eq!((p.htm.as_str(), p.htu.as_str(), p.jti.as_str()), ("POST", "https://as.example/token", "j-1"));
        assert_eq!(p.iat.unix_timestamp(), 1_764_072_000);
    }
}

#[test]
fn a_proof_of_another_typ_is_invalid_dpop_proof() {
    for typ in [json!("JWT"), json!("at+jwt"), Value::Null] {
        let mut h = es256_header();
        h["typ"] = typ.clone();
        assert!(refused(JwtProofs::new().dpop_proof(&proof_with_header(h))), "{typ}");
    }
}

#[test]
fn a_symmetric_or_none_alg_is_invalid_dpop_proof() {
    // An HMAC proof "signed" with a shared secret proves no key.
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(public_jwk(&key(Algorithm::ES256), Algorithm::ES256));
    let hs = jsonwebtoken::encode(&header, &proof_claims(), &EncodingKey::from_secret(&[7; 32])).unwrap();
    assert!(refused(JwtProofs::new().dpop_proof(&hs)));
    let mut none = es256_header();
    none["alg"] = json!("none");
    let unsigned = proof_with_header(none);
    let stripped = format!("{}.", unsigned.rsplit_once('.').unwrap().0);
    assert!(refused(JwtProofs::new().dpop_proof(&stripped)));
    assert!(refused(JwtProofs::new().dpop_proof(&unsigned)));
}

#[test]
fn a_private_key_in_the_jwk_is_invalid_dpop_proof() {
    let mut h = es256_header();
    // The private scalar of a key, which a client must never send.
    h["jwk"]["d"] = json!("TBonjtCkru3l_yaMp_fGl-Hll5TvFm5YXYx12QWc6dM");
    assert!(refused(JwtProofs::new().dpop_proof(&proof_with_header(h))));
    assert!(JwtProofs::new().dpop_proof(&proof_with_header(es256_header())).is_ok(), "the same proof without d");
}

#[test]
fn a_proof_signed_by_another_key_than_its_jwk_is_invalid_dpop_proof() {
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(public_jwk(&EncodingKey::from_ec_pem(ES256_B).unwrap(), Algorithm::ES256));
    let forged = jsonwebtoken::encode(&header, &proof_claims(), &key(Algorithm::ES256)).unwrap();
    assert!(refused(JwtProofs::new().dpop_proof(&forged)));
}

#[test]
fn a_jwk_of_another_type_than_alg_is_invalid_dpop_proof() {
    let mut h = es256_header();
    h["jwk"] = serde_json::to_value(public_jwk(&key(Algorithm::EdDSA), Algorithm::EdDSA)).unwrap();
    assert!(refused(JwtProofs::new().dpop_proof(&proof_with_header(h))));
}

#[test]
fn fapi2_refuses_rs256_proofs_and_keeps_ps256() {
    assert!(refused(JwtProofs::fapi2().dpop_proof(&proof(Algorithm::RS256))));
    assert!(JwtProofs::fapi2().dpop_proof(&proof(Algorithm::PS256)).is_ok());
    assert!(!JwtProofs::fapi2().dpop_algorithms().contains(&"RS256"));
}

#[test]
fn garbage_and_huge_proofs_are_invalid_dpop_proof() {
    for p in ["", "a.b.c", "not a jwt", &"A".repeat(20_000)] {
        assert!(refused(JwtProofs::new().dpop_proof(p)), "{p:.20}");
    }
}

fn keys_client(keys: &[(&[u8], &str)]) -> Client {
    let set = JwkSet {
        keys: keys
            .iter()
            .map(|(pem, kid)| {
                let mut jwk = public_jwk(&EncodingKey::from_ec_pem(pem).unwrap(), Algorithm::ES256);
                jwk.common.key_id = Some((*kid).into());
                jwk
            })
            .collect(),
    };
    Client::new(ClientSettings {
        id: ClientId::parse("keys-app").unwrap(),
        name: "Keys App".into(),
        secret: None,
        jwks: Some(serde_json::to_string(&set).unwrap()),
        redirect: RedirectPolicy::Registered(vec![]),
        grant_types: [GrantType::ClientCredentials].into(),
        scopes: Scope::parse("read").unwrap(),
        scope_rule: ScopeRule::Subset,
        require_pkce: true,
        allowed_cors_origins: vec![],
        dpop_bound_access_tokens: false,
        require_pushed_authorization_requests: false,
        resources: Default::default(),
        post_logout_redirect_uris: vec![],
        id_token_alg: oauth_core::IdTokenAlg::Rs256,
        consent: oauth_core::ConsentRule::Remember,
    })
    .unwrap()
}

fn assertion(pem: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    let claims = json!({
        "iss": "keys-app", "sub": "keys-app", "aud": ["https://as.example", "https://as.example/token"],
        "exp": 1_764_072_060, "iat": 1_764_072_000, "jti": "a-1",
    });
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_pem(pem).unwrap()).unwrap()
}

#[test]
fn an_assertion_signed_by_a_registered_key_yields_its_claims() {
    let client = keys_client(&[(ES256_B, "b"), (ES256_A, "a")]);
    for kid in [Some("a"), None] {
        let c = JwtProofs::new().client_assertion(&assertion(ES256_A, kid), &client).unwrap();
        assert_eq!((c.issuer.as_str(), c.subject.as_str(), c.jti.as_str()), ("keys-app", "keys-app", "a-1"));
        assert_eq!(c.audience, ["https://as.example", "https://as.example/token"]);
    }
    assert_eq!(JwtProofs::new().assertion_subject(&assertion(ES256_A, None)).as_deref(), Some("keys-app"));
}

#[test]
fn an_assertion_by_an_unregistered_key_or_under_another_kid_is_invalid_client() {
    let client = keys_client(&[(ES256_A, "a")]);
    let proofs = JwtProofs::new();
    assert_eq!(proofs.client_assertion(&assertion(ES256_B, None), &client).err(), Some(Error::InvalidClient));
    assert_eq!(proofs.client_assertion(&assertion(ES256_A, Some("b")), &client).err(), Some(Error::InvalidClient));
}

#[test]
fn an_hmac_assertion_is_invalid_client() {
    // Keyed with the public key's bytes: the algorithm-confusion attack.
    let client = keys_client(&[(ES256_A, "a")]);
    let jwk = serde_json::to_vec(&public_jwk(&key(Algorithm::ES256), Algorithm::ES256)).unwrap();
    let claims =
        json!({ "iss": "keys-app", "sub": "keys-app", "aud": "https://as.example", "exp": 1_764_072_060, "jti": "x" });
    let hs = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&jwk)).unwrap();
    assert_eq!(JwtProofs::new().client_assertion(&hs, &client).err(), Some(Error::InvalidClient));
}

#[test]
fn client_key_sets_must_hold_public_signing_keys() {
    let public =
        serde_json::to_string(&JwkSet { keys: vec![public_jwk(&key(Algorithm::ES256), Algorithm::ES256)] }).unwrap();
    assert!(oauth_jwt::check_client_jwks(&public).is_ok());
    let mut private: Value = serde_json::from_str(&public).unwrap();
    private["keys"][0]["d"] = json!("TBonjtCkru3l_yaMp_fGl-Hll5TvFm5YXYx12QWc6dM");
    for bad in [r#"{"keys":[]}"#.to_owned(), "not json".to_owned(), private.to_string()] {
        assert!(oauth_jwt::check_client_jwks(&bad).is_err(), "{bad}");
    }
}

/// A JWS of `header` and `payload` (JSON text), signed with the ES256 test
/// key A: for headers and payloads jsonwebtoken cannot write.
fn signed_raw(header: &Value, payload: &[u8]) -> String {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let input = format!("{}.{}", b64(&serde_json::to_vec(header).unwrap()), b64(payload));
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key(Algorithm::ES256), Algorithm::ES256).unwrap();
    format!("{input}.{signature}")
}

/// The signature is checked once and the header read once, but nothing
/// malformed gets through: a `kid` that is not a string, a payload that is
/// not the claims, a signature that is not base64url, and a fourth part are
/// `invalid_client` even when the signature itself is good.
#[test]
fn an_assertion_with_a_malformed_header_payload_or_signature_is_invalid_client() {
    let client = keys_client(&[(ES256_A, "a")]);
    let proofs = JwtProofs::new();
    let claims = br#"{"iss":"keys-app","sub":"keys-app","aud":"https://as.example","exp":1764072060,"jti":"m"}"#;
    let good = signed_raw(&json!({"alg": "ES256", "kid": "a"}), claims);
    assert!(proofs.client_assertion(&good, &client).is_ok(), "the well-formed control");
    let (input, _) = good.rsplit_once('.').unwrap();
    for bad in [
        signed_raw(&json!({"alg": "ES256", "kid": 7}), claims),
        signed_raw(&json!({"alg": "ES256"}), b"[1, 2]"),
        signed_raw(&json!({"alg": "ES256"}), b"not json"),
        format!("{input}.!!not-base64!!"),
        format!("{good}.extra"),
    ] {
        assert_eq!(proofs.client_assertion(&bad, &client).err(), Some(Error::InvalidClient), "{bad}");
    }
}

/// A proof whose payload is not its claims, or whose signature is not
/// base64url, is `invalid_dpop_proof` though its header is good.
#[test]
fn a_proof_with_a_malformed_payload_or_signature_is_invalid_dpop_proof() {
    let good = proof(Algorithm::ES256);
    let (input, _) = good.rsplit_once('.').unwrap();
    for bad in [
        signed_raw(&es256_header(), b"[]"),
        signed_raw(&es256_header(), br#"{"jti":"j","htm":"POST"}"#),
        format!("{input}.!!not-base64!!"),
        format!("{input}.{}", "A".repeat(86)),
    ] {
        assert!(refused(JwtProofs::new().dpop_proof(&bad)), "{bad}");
    }
}

/// What `private_key_jwt` clients in the store may register: keys an
/// assertion can be verified with, under this server's algorithms.
#[test]
fn registered_keys_must_be_ones_an_assertion_can_be_verified_with() {
    let es256 = JwkSet { keys: vec![public_jwk(&key(Algorithm::ES256), Algorithm::ES256)] };
    let es256 = serde_json::to_string(&es256).unwrap();
    assert!(JwtProofs::new().check_client_keys(&es256).is_ok());
    let mut private: Value = serde_json::from_str(&es256).unwrap();
    private["keys"][0]["d"] = json!("TBonjtCkru3l_yaMp_fGl-Hll5TvFm5YXYx12QWc6dM");
    let mut rs256_only: Value =
        json!({"keys": [serde_json::to_value(public_jwk(&key(Algorithm::RS256), Algorithm::RS256)).unwrap()]});
    rs256_only["keys"][0]["alg"] = json!("RS256");
    for bad in [r#"{"keys":[]}"#.to_owned(), "not json".to_owned(), private.to_string()] {
        assert!(matches!(JwtProofs::new().check_client_keys(&bad), Err(Error::InvalidClientMetadata(_))), "{bad}");
    }
    // RS256 is accepted by default, never under FAPI 2.0.
    assert!(JwtProofs::new().check_client_keys(&rs256_only.to_string()).is_ok());
    assert!(matches!(
        JwtProofs::fapi2().check_client_keys(&rs256_only.to_string()),
        Err(Error::InvalidClientMetadata(_))
    ));
}
