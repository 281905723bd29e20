// oauth4webapi (panva) drives the OAuth 2.1 flows of SPEC.md: discovery, a
// public client's code flow with PKCE and the RFC 9207 `iss` check, RFC 9068
// validation of the access token as a resource server would, refresh with
// rotation and reuse detection, client credentials, introspection and
// revocation. Every response passes oauth4webapi's own strict checks.

import assert from 'node:assert/strict'
import * as oauth from 'oauth4webapi'
import { Browser, discover, insecure, need, run } from './lib.mjs'

run(async () => {
  const as = await discover()
  assert.equal(as.authorization_response_iss_parameter_supported, true)

  // The public client: PKCE (S256) and state, no secret.
  const pub = { client_id: need('PUBLIC_CLIENT') }
  const redirectUri = need('REDIRECT_URI')
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const url = new URL(as.authorization_endpoint)
  url.searchParams.set('client_id', pub.client_id)
  url.searchParams.set('redirect_uri', redirectUri)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('scope', 'read')
  url.searchParams.set('state', state)
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier))
  url.searchParams.set('code_challenge_method', 'S256')

  const callback = await new Browser().authorize(url)
  // Checks `iss` (RFC 9207) and `state`.
  const params = oauth.validateAuthResponse(as, pub, callback, state)
  const codeResponse = await oauth.authorizationCodeGrantRequest(as, pub, oauth.None(), params, redirectUri, verifier, insecure)
  const tokens = await oauth.processAuthorizationCodeResponse(as, pub, codeResponse)
  assert.equal(tokens.token_type, 'bearer')
  assert.equal(tokens.scope, 'read')
  assert.ok(tokens.refresh_token, 'a refresh token for a client that may refresh')

  // The resource server's check of an RFC 9068 access token, against the JWKS.
  const request = new Request(new URL('/userinfo', as.issuer), { headers: { authorization: `Bearer ${tokens.access_token}` } })
  const claims = await oauth.validateJwtAccessToken(as, request, need('AUDIENCE'), insecure)
  assert.equal(claims.client_id, pub.client_id)
  assert.equal(claims.scope, 'read')

  // Refresh rotates; the rotated token presented again is refused.
  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    pub,
    await oauth.refreshTokenGrantRequest(as, pub, oauth.None(), tokens.refresh_token, insecure),
  )
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token)
  await assert.rejects(
    oauth.processRefreshTokenResponse(as, pub, await oauth.refreshTokenGrantRequest(as, pub, oauth.None(), tokens.refresh_token, insecure)),
    (e) => e instanceof oauth.ResponseBodyError && e.error === 'invalid_grant',
  )

  // The confidential client: client credentials with Basic authentication,
  // then introspection of the family the reuse revoked.
  const conf = { client_id: need('CONFIDENTIAL_CLIENT') }
  const basic = oauth.ClientSecretBasic(need('CONFIDENTIAL_SECRET'))
  const cc = await oauth.processClientCredentialsResponse(
    as,
    conf,
    await oauth.clientCredentialsGrantRequest(as, conf, basic, new URLSearchParams({ scope: 'read' }), insecure),
  )
  assert.equal(cc.refresh_token, undefined, 'client_credentials never returns a refresh token')
  const active = await oauth.processIntrospectionResponse(as, conf, await oauth.introspectionRequest(as, conf, basic, cc.access_token, insecure))
  assert.equal(active.active, true)
  assert.equal(active.client_id, conf.client_id)
  const revokedFamily = await oauth.processIntrospectionResponse(
    as,
    conf,
    await oauth.introspectionRequest(as, conf, basic, refreshed.refresh_token, insecure),
  )
  assert.equal(revokedFamily.active, false, 'reuse of a rotated refresh token revoked its family')

  // Revocation (RFC 7009) by the confidential client of its own token.
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, conf, basic, cc.access_token, insecure))
  const gone = await oauth.processIntrospectionResponse(as, conf, await oauth.introspectionRequest(as, conf, basic, cc.access_token, insecure))
  assert.equal(gone.active, false)
})
