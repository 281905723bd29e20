//! The server driven by an independent client library, the `oauth2` crate: if
//! it interoperates, our reading of the RFCs is not only our own.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl, PkceCodeChallenge, RedirectUrl,
    ResourceOwnerPassword, ResourceOwnerUsername, Scope, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use support::*;

fn oauth2_http() -> oauth2::reqwest::Client {
    oauth2::reqwest::ClientBuilder::new().redirect(oauth2::reqwest::redirect::Policy::none()).build().unwrap()
}

macro_rules! client {
    ($s:expr, $id:expr, $secret:expr) => {{
        let c = BasicClient::new(ClientId::new($id.into()))
            .set_auth_uri(AuthUrl::new(format!("{}/authorize", $s.base)).unwrap())
            .set_token_uri(TokenUrl::new(format!("{}/token", $s.base)).unwrap())
            .set_introspection_url(IntrospectionUrl::new(format!("{}/introspect", $s.base)).unwrap())
            .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
        match $secret {
            Some(secret) => c.set_client_secret(ClientSecret::new(String::from(secret))),
            None => c,
        }
    }};
}

#[tokio::test]
async fn oauth2_crate_runs_the_code_flow_with_pkce_refresh_revocation_and_introspection() {
    let s = start(Options::default()).await;
    let client = client!(s, CONFIDENTIAL, Some(SECRET));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let redirect = browser_flow(&s, url.as_str()).await;
    assert_eq!(query(&redirect, "state").as_deref(), Some(state.secret().as_str()));
    let code = AuthorizationCode::new(query(&redirect, "code").unwrap());
    let http = oauth2_http();
    let tokens = client.exchange_code(code).set_pkce_verifier(verifier).request_async(&http).await.unwrap();
    assert_eq!(tokens.scopes().map(|v| v.len()), Some(1));
    let refresh = tokens.refresh_token().unwrap().clone();

    let rotated = client.exchange_refresh_token(&refresh).request_async(&http).await.unwrap();
    assert_ne!(rotated.refresh_token().unwrap().secret(), refresh.secret());

    let active = client.introspect(rotated.access_token()).request_async(&http).await.unwrap();
    assert!(active.active());
    // oauth2 refuses a revocation URL that is not https (a client-side check),
    // and this test server speaks plain http on loopback: revoke by hand.
    let revoked = http
        .post(format!("{}/revoke", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&[("token", rotated.refresh_token().unwrap().secret().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let inactive = client.introspect(rotated.access_token()).request_async(&http).await.unwrap();
    assert!(!inactive.active(), "revoking the refresh token revoked its access token");
}

#[tokio::test]
async fn oauth2_crate_runs_the_code_flow_as_a_public_client() {
    let s = start(Options::default()).await;
    let client = client!(s, PUBLIC, None::<&str>);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client.authorize_url(CsrfToken::new_random).set_pkce_challenge(challenge).url();
    let redirect = browser_flow(&s, url.as_str()).await;
    let code = AuthorizationCode::new(query(&redirect, "code").unwrap());
    let tokens = client.exchange_code(code).set_pkce_verifier(verifier).request_async(&oauth2_http()).await.unwrap();
    assert!(tokens.refresh_token().is_some());
}

#[tokio::test]
async fn oauth2_crate_gets_client_credentials_and_password_tokens() {
    let s = start(Options::default()).await;
    let client = client!(s, CONFIDENTIAL, Some(SECRET));
    let http = oauth2_http();
    let cc =
        client.exchange_client_credentials().add_scope(Scope::new("read".into())).request_async(&http).await.unwrap();
    assert!(cc.refresh_token().is_none());
    let user = ResourceOwnerUsername::new(USERNAME.into());
    let pass = ResourceOwnerPassword::new(PASSWORD.into());
    let pw = client.exchange_password(&user, &pass).request_async(&http).await.unwrap();
    assert!(pw.refresh_token().is_some());
}
