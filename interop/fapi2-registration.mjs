// oauth4webapi (panva) registers a client on a FAPI 2.0 server and uses it the
// way a FAPI 2.0 client does: RFC 7591 dynamic registration, with the initial
// access token, of a private_key_jwt client (RFC 7523) whose public key is a
// freshly generated ES256 key; then, authenticating with assertions signed by
// that key, a pushed authorization request (RFC 9126) with PKCE (S256) and a
// DPoP proof (RFC 9449), the code for DPoP-bound tokens with a validated ID
// token, /userinfo with the DPoP scheme, a refresh, and a revocation. Before
// that, the server refuses a registration that would authenticate by secret,
// with RFC 7591's invalid_client_metadata, which oauth4webapi reads as such;
// and the profile's server-wide rules hold for the registered client (PAR and
// PKCE required, no refresh rotation).
//
// Run by crates/oauth-server/tests/interop.rs against a `[profile] fapi2`
// server whose only clients are the ones registered here.

import assert from 'node:assert/strict'
import * as jose from 'jose'
import * as oauth from 'oauth4webapi'
import { Browser, discover, insecure, need, run } from './lib.mjs'

run(async () => {
  const as = await discover('oidc')
  assert.ok(as.registration_endpoint, 'the metadata names the registration endpoint')
  assert.equal(as.require_pushed_authorization_requests, true)
  assert.deepEqual(as.token_endpoint_auth_methods_supported, ['private_key_jwt'])
  assert.ok(!as.id_token_signing_alg_values_supported.includes('RS256'), 'FAPI 2.0 has no RS256')
  const redirectUri = need('REDIRECT_URI')
  const initialAccessToken = need('INITIAL_ACCESS_TOKEN')

  // A client that names no method asks for client_secret_basic (RFC 7591 2),
  // which FAPI 2.0 does not allow.
  await assert.rejects(
    oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(
        as,
        { redirect_uris: [redirectUri], grant_types: ['authorization_code'], scope: 'read' },
        { initialAccessToken, ...insecure },
      ),
    ),
    (e) => e instanceof oauth.ResponseBodyError && e.status === 400 && e.error === 'invalid_client_metadata',
  )

  // The client's key: generated here; only its public half is registered.
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true })
  const kid = 'fapi2-interop-1'
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }
  const registered = await oauth.processDynamicClientRegistrationResponse(
    await oauth.dynamicClientRegistrationRequest(
      as,
      {
        client_name: 'A FAPI 2.0 client',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [publicJwk] },
        scope: 'openid read',
      },
      { initialAccessToken, ...insecure },
    ),
  )
  assert.ok(registered.client_id)
  assert.equal(registered.client_secret, undefined, 'a private_key_jwt client has no secret')
  assert.equal(registered.token_endpoint_auth_method, 'private_key_jwt')
  assert.deepEqual(registered.jwks, { keys: [publicJwk] })
  // ID tokens are signed with the server's algorithm, and the registration says so.
  assert.ok(as.id_token_signing_alg_values_supported.includes(registered.id_token_signed_response_alg))

  const client = { client_id: registered.client_id, id_token_signed_response_alg: registered.id_token_signed_response_alg }
  const auth = oauth.PrivateKeyJwt({ key: privateKey, kid })
  const dpop = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))

  // The profile's server-wide rules hold for a registered client too: a plain
  // /authorize is refused (PAR required), and so is a pushed request without
  // PKCE, at /par as JSON.
  const plain = new URL(as.authorization_endpoint)
  plain.searchParams.set('client_id', client.client_id)
  plain.searchParams.set('redirect_uri', redirectUri)
  plain.searchParams.set('response_type', 'code')
  plain.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()))
  plain.searchParams.set('code_challenge_method', 'S256')
  const refused = await new Browser().open(plain)
  assert.equal(refused.location?.searchParams.get('error'), 'invalid_request', 'PAR is required')
  await assert.rejects(
    oauth
      .pushedAuthorizationRequest(
        as,
        client,
        auth,
        new URLSearchParams({ redirect_uri: redirectUri, response_type: 'code', scope: 'read' }),
        { DPoP: dpop, ...insecure },
      )
      .then((r) => oauth.processPushedAuthorizationResponse(as, client, r)),
    (e) => e instanceof oauth.ResponseBodyError && e.error === 'invalid_request',
  )

  // PAR with an assertion and a DPoP proof; PKCE with S256.
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const pushed = await oauth.processPushedAuthorizationResponse(
    as,
    client,
    await oauth.pushedAuthorizationRequest(
      as,
      client,
      auth,
      new URLSearchParams({
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'openid read',
        state,
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }),
      { DPoP: dpop, ...insecure },
    ),
  )
  const url = new URL(as.authorization_endpoint)
  url.searchParams.set('client_id', client.client_id)
  url.searchParams.set('request_uri', pushed.request_uri)
  const params = oauth.validateAuthResponse(as, client, await new Browser().authorize(url), state)

  // The code, with an assertion and a proof by the same key: DPoP-bound
  // tokens and an ID token that oauth4webapi validates.
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, verifier, { DPoP: dpop, ...insecure }),
  )
  assert.equal(tokens.token_type, 'dpop')
  assert.ok(tokens.refresh_token)
  const claims = oauth.getValidatedIdTokenClaims(tokens)
  assert.equal(claims.aud, client.client_id)
  const jkt = jose.decodeJwt(tokens.access_token).cnf?.jkt
  assert.ok(jkt, 'the access token is bound to the proof key')

  const userinfo = await oauth.processUserInfoResponse(
    as,
    client,
    claims.sub,
    await oauth.userInfoRequest(as, client, tokens.access_token, { DPoP: dpop, ...insecure }),
  )
  assert.equal(userinfo.sub, claims.sub)

  // A refresh, with an assertion and a proof by the same key: FAPI 2.0 turns
  // rotation off, so the refresh token stays the same one.
  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, { DPoP: dpop, ...insecure }),
  )
  assert.equal(refreshed.token_type, 'dpop')
  assert.ok(refreshed.refresh_token === undefined || refreshed.refresh_token === tokens.refresh_token, 'no rotation')
  assert.equal(jose.decodeJwt(refreshed.access_token).cnf?.jkt, jkt)
  assert.equal(oauth.getValidatedIdTokenClaims(refreshed).sub, claims.sub)

  // Revocation by assertion: the refresh token stops working.
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, tokens.refresh_token, insecure))
  await assert.rejects(
    oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, { DPoP: dpop, ...insecure }).then((r) =>
      oauth.processRefreshTokenResponse(as, client, r),
    ),
    (e) => e instanceof oauth.ResponseBodyError && e.error === 'invalid_grant',
  )
})
