//! Turning HTTP requests into flow inputs: parameters (query, form or flat
//! JSON), client credentials, cookies and the peer address.
//!
//! Every parser here refuses rather than guesses: a repeated parameter, a body
//! over 64 KiB, a JSON value that is not a string, credentials in both the
//! header and the body. Per RFC 6749 3.1 and 3.2, a parameter sent with an
//! empty value counts as omitted.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, Limited};
use oauth_core::{ClientCredentials, Error};
use serde::de::{Deserializer, MapAccess, Visitor};

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Why a request could not be read; each maps to a status in `response.rs`.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Over [`MAX_BODY`]: 413.
    TooLarge,
    /// The client was too slow: 408.
    Timeout,
    /// Malformed or not allowed: 400 `invalid_request`.
    Invalid(Error),
}

impl From<Error> for ReadError {
    fn from(e: Error) -> Self {
        ReadError::Invalid(e)
    }
}

/// Request parameters, each sent at most once, empty values dropped.
#[derive(Default)]
pub(crate) struct Params(BTreeMap<String, String>);

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: values include passwords, codes and tokens.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` (a query string or a body).
    pub(crate) fn from_form(raw: &[u8]) -> Result<Self, Error> {
        let mut map = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(raw) {
            if map.insert(k.into_owned(), v.into_owned()).is_some() {
                return Err(Error::InvalidRequest("a parameter is repeated"));
            }
        }
        Ok(Params::without_empty(map))
    }

    /// Parses one flat JSON object of string values, refusing repeated keys.
    pub(crate) fn from_json(raw: &[u8]) -> Result<Self, Error> {
        let mut de = serde_json::Deserializer::from_slice(raw);
        let map = de
            .deserialize_map(FlatObject)
            .map_err(|_| Error::InvalidRequest("the JSON body must be one object of string values, each key once"))?;
        de.end().map_err(|_| Error::InvalidRequest("trailing data after the JSON object"))?;
        Ok(Params::without_empty(map))
    }

    fn without_empty(mut map: BTreeMap<String, String>) -> Self {
        map.retain(|_, v| !v.is_empty());
        Params(map)
    }

    /// The value of `name`, if sent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

struct FlatObject;

impl<'de> Visitor<'de> for FlatObject {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = BTreeMap::new();
        while let Some((k, v)) = access.next_entry::<String, String>()? {
            if map.insert(k, v).is_some() {
                return Err(serde::de::Error::custom("repeated key"));
            }
        }
        Ok(map)
    }
}

/// Reads a body of at most [`MAX_BODY`] bytes within `timeout`.
pub(crate) async fn read_body<B>(headers: &HeaderMap, body: B, timeout: Duration) -> Result<Bytes, ReadError>
where
    B: hyper::body::Body,
    B::Error: Into<crate::BoxError>,
{
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ReadError::TooLarge);
    }
    match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY).collect()).await {
        Err(_) => Err(ReadError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(ReadError::TooLarge),
        Ok(Err(_)) => Err(ReadError::Invalid(Error::InvalidRequest("the request body could not be read"))),
    }
}

/// The media type of the body, lowercased, without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// Reads the parameters of a POST: a form, or (where `json` is allowed) a flat
/// JSON object.
pub(crate) async fn read_params<B>(
    headers: &HeaderMap,
    body: B,
    timeout: Duration,
    json: bool,
) -> Result<Params, ReadError>
where
    B: hyper::body::Body,
    B::Error: Into<crate::BoxError>,
{
    let kind = media_type(headers);
    let is_json = match kind.as_deref() {
        Some("application/x-www-form-urlencoded") => false,
        Some("application/json") if json => true,
        _ => {
            return Err(ReadError::Invalid(Error::InvalidRequest(if json {
                "the body must be application/x-www-form-urlencoded or application/json"
            } else {
                "the body must be application/x-www-form-urlencoded"
            })));
        }
    };
    let bytes = read_body(headers, body, timeout).await?;
    Ok(if is_json { Params::from_json(&bytes)? } else { Params::from_form(&bytes)? })
}

/// The `client_assertion_type` of `private_key_jwt` (RFC 7523 2.2).
pub(crate) const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Client credentials as sent, owned.
#[derive(Clone)]
pub(crate) struct SentCredentials {
    pub(crate) client_id: Option<String>,
    pub(crate) secret: Option<String>,
    pub(crate) assertion: Option<String>,
}

impl SentCredentials {
    pub(crate) fn borrow(&self) -> ClientCredentials<'_> {
        ClientCredentials {
            client_id: self.client_id.as_deref(),
            secret: self.secret.as_deref(),
            assertion: self.assertion.as_deref(),
        }
    }
}

/// Finds the client's credentials: HTTP Basic (RFC 6749 2.3.1, each part
/// form-urlencoded), `client_id` / `client_secret` in the body, or a
/// `client_assertion` of type jwt-bearer (RFC 7523 2.2), with or without
/// `client_id`. Two methods at once (a header and body credentials, a secret
/// and an assertion) and two `Authorization` headers are `invalid_request`; a
/// body `client_id` equal to the Basic one is not a second credential (RFC
/// 6749 4.1.3 lets a client send it) and is accepted. None, an unreadable
/// Basic header, or an assertion of another type or without its type is
/// `invalid_client`.
pub(crate) fn client_credentials(headers: &HeaderMap, params: &Params) -> Result<SentCredentials, Error> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (first, second) = (values.next(), values.next());
    if second.is_some() {
        return Err(Error::InvalidRequest("the Authorization header is repeated"));
    }
    let assertion = match (params.get("client_assertion_type"), params.get("client_assertion")) {
        (None, None) => None,
        (Some(JWT_BEARER_ASSERTION), Some(a)) => Some(a.to_owned()),
        _ => return Err(Error::InvalidClient),
    };
    if assertion.is_some() {
        if headers.contains_key(header::AUTHORIZATION) || params.contains("client_secret") {
            return Err(Error::InvalidRequest("a client assertion and another client authentication method"));
        }
        return Ok(SentCredentials { client_id: params.get("client_id").map(str::to_owned), secret: None, assertion });
    }
    match first {
        Some(value) => {
            let raw = value.to_str().map_err(|_| Error::InvalidClient)?;
            let (scheme, b64) = raw.split_once(' ').ok_or(Error::InvalidClient)?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(Error::InvalidClient);
            }
            let decoded = STANDARD.decode(b64.trim()).map_err(|_| Error::InvalidClient)?;
            // The client id cannot contain a colon; the secret may.
            let colon = decoded.iter().position(|b| *b == b':').ok_or(Error::InvalidClient)?;
            let id = form_decode(&decoded[..colon])?;
            let secret = form_decode(&decoded[colon + 1..])?;
            if id.is_empty() {
                return Err(Error::InvalidClient);
            }
            let other_id = params.get("client_id").is_some_and(|body_id| body_id != id);
            if params.contains("client_secret") || other_id {
                return Err(Error::InvalidRequest("client credentials in both the header and the body"));
            }
            Ok(SentCredentials { client_id: Some(id), secret: Some(secret).filter(|s| !s.is_empty()), assertion: None })
        }
        None => {
            let id = params.get("client_id").ok_or(Error::InvalidClient)?;
            Ok(SentCredentials {
                client_id: Some(id.to_owned()),
                secret: params.get("client_secret").map(str::to_owned),
                assertion: None,
            })
        }
    }
}

/// The one `DPoP` header of a request (RFC 9449 4.1), if any: two are
/// `invalid_dpop_proof`.
pub(crate) fn dpop_header(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::InvalidDpopProof("more than one DPoP header"));
    }
    first.to_str().map(Some).map_err(|_| Error::InvalidDpopProof("the DPoP header is not a JWT"))
}

fn form_decode(raw: &[u8]) -> Result<String, Error> {
    // RFC 6749 2.3.1: each part is application/x-www-form-urlencoded.
    let text = std::str::from_utf8(raw).map_err(|_| Error::InvalidClient)?;
    let pair = format!("v={text}");
    form_urlencoded::parse(pair.as_bytes()).next().map(|(_, v)| v.into_owned()).ok_or(Error::InvalidClient)
}

/// The value of cookie `name`, if sent exactly once.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        for pair in value.to_str().ok()?.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(v.to_owned());
                }
            }
        }
    }
    found
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy, in
/// which case the last `X-Forwarded-For` entry (the one that proxy added).
pub(crate) fn client_ip(headers: &HeaderMap, peer: SocketAddr, trusted: &[IpAddr]) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if !trusted.contains(&peer_ip) {
        return peer_ip;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .map_or(peer_ip, |ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(Params::from_form(b"a=1&a=2").is_err());
        assert!(Params::from_form(b"a=1&a=").is_err());
        assert!(Params::from_json(br#"{"a":"1","a":"2"}"#).is_err());
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let p = Params::from_form(b"a=&b=2").unwrap();
        assert_eq!((p.get("a"), p.get("b")), (None, Some("2")));
    }

    #[test]
    fn json_must_be_one_flat_object_of_strings() {
        assert_eq!(
            Params::from_json(br#"{"grant_type":"client_credentials"}"#).unwrap().get("grant_type"),
            Some("client_credentials")
        );
        for bad in
            [&br#"{"a":1}"#[..], br#"{"a":{"b":"c"}}"#, br#"["a"]"#, br#"{"a":"b"} {}"#, b"", b"{", br#"{"a":null}"#]
        {
            assert!(Params::from_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    fn basic(raw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(raw))).unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let c = client_credentials(&basic("my%20app:p%3Ass+word"), &Params::default()).unwrap();
        assert_eq!((c.client_id.as_deref(), c.secret.as_deref()), (Some("my app"), Some("p:ss word")));
    }

    #[test]
    fn a_client_assertion_needs_its_type_and_no_second_method() {
        let form = |raw: &str| Params::from_form(raw.as_bytes()).unwrap();
        let typ = "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
        let c = client_credentials(&HeaderMap::new(), &form(&format!("{typ}&client_assertion=a.b.c"))).unwrap();
        assert_eq!((c.client_id, c.assertion.as_deref()), (None, Some("a.b.c")));
        let with_id = client_credentials(&HeaderMap::new(), &form(&format!("{typ}&client_assertion=x&client_id=app")));
        assert_eq!(with_id.unwrap().client_id.as_deref(), Some("app"));
        for bad in ["client_assertion=a.b.c", typ, "client_assertion_type=saml&client_assertion=x"] {
            assert_eq!(client_credentials(&HeaderMap::new(), &form(bad)).err(), Some(Error::InvalidClient), "{bad}");
        }
        let two = form(&format!("{typ}&client_assertion=x&client_secret=s"));
        assert!(matches!(client_credentials(&HeaderMap::new(), &two), Err(Error::InvalidRequest(_))));
        let header = form(&format!("{typ}&client_assertion=x"));
        assert!(matches!(client_credentials(&basic("a:b"), &header), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn credentials_in_header_and_body_are_invalid_request() {
        let body = Params::from_form(b"client_secret=x").unwrap();
        assert!(matches!(client_credentials(&basic("a:b"), &body), Err(Error::InvalidRequest(_))));
        let other = Params::from_form(b"client_id=other").unwrap();
        assert!(matches!(client_credentials(&basic("a:b"), &other), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn the_same_client_id_beside_basic_credentials_is_accepted() {
        let body = Params::from_form(b"client_id=a").unwrap();
        let c = client_credentials(&basic("a:b"), &body).unwrap();
        assert_eq!((c.client_id.as_deref(), c.secret.as_deref()), (Some("a"), Some("b")));
    }

    #[test]
    fn two_authorization_headers_are_invalid_request() {
        let mut h = basic("a:b");
        h.append(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {}", STANDARD.encode("c:d"))).unwrap());
        assert!(matches!(client_credentials(&h, &Params::default()), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn missing_or_garbled_credentials_are_invalid_client() {
        assert_eq!(client_credentials(&HeaderMap::new(), &Params::default()).err(), Some(Error::InvalidClient));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(client_credentials(&h, &Params::default()).err(), Some(Error::InvalidClient));
        assert_eq!(client_credentials(&basic("no-colon"), &Params::default()).err(), Some(Error::InvalidClient));
    }

    #[test]
    fn forwarded_for_is_trusted_only_from_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 198.51.100.7"));
        let proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let trusted = ["10.0.0.1".parse().unwrap()];
        assert_eq!(client_ip(&h, proxy, &trusted), "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(&h, proxy, &[]), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
