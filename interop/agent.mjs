// An "agent" as the Model Context Protocol's authorization describes one,
// built on oauth4webapi alone: RFC 8414 discovery, RFC 7591 dynamic client
// registration, the code flow with PKCE and an RFC 8707 `resource`, and the
// resource server's RFC 9068 check that the access token's `aud` is that
// resource. Then the client manages its own registration (RFC 7592).

import assert from 'node:assert/strict'
import * as oauth from 'oauth4webapi'
import { Browser, discover, insecure, need, run } from './lib.mjs'

run(async () => {
  const as = await discover()
  assert.ok(as.registration_endpoint, 'the metadata names the registration endpoint')
  const resource = need('RESOURCE')
  const redirectUri = need('REDIRECT_URI')

  // RFC 7591: a public client registers itself, without an initial token.
  const registered = await oauth.processDynamicClientRegistrationResponse(
    await oauth.dynamicClientRegistrationRequest(
      as,
      {
        client_name: 'An agent',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
        scope: 'read',
      },
      insecure,
    ),
  )
  assert.ok(registered.client_id)
  assert.equal(registered.client_secret, undefined, 'open registration makes public clients')
  assert.ok(registered.registration_access_token && registered.registration_client_uri)
  const client = { client_id: registered.client_id }

  // The code flow with PKCE, asking for the resource.
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const url = new URL(as.authorization_endpoint)
  url.searchParams.set('client_id', client.client_id)
  url.searchParams.set('redirect_uri', redirectUri)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('scope', 'read')
  url.searchParams.set('state', state)
  url.searchParams.set('resource', resource)
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier))
  url.searchParams.set('code_challenge_method', 'S256')
  const callback = await new Browser().authorize(url)
  const params = oauth.validateAuthResponse(as, client, callback, state)
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, {
      ...insecure,
      additionalParameters: { resource },
    }),
  )
  assert.equal(tokens.scope, 'read')

  // The resource server: an RFC 9068 token for it, and only for it.
  const request = () => new Request(resource, { headers: { authorization: `Bearer ${tokens.access_token}` } })
  const claims = await oauth.validateJwtAccessToken(as, request(), resource, insecure)
  assert.equal(claims.aud, resource)
  assert.equal(claims.client_id, client.client_id)
  await assert.rejects(oauth.validateJwtAccessToken(as, request(), need('AUDIENCE'), insecure), 'another audience refuses it')

  // A refresh keeps the resource.
  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, insecure),
  )
  const again = new Request(resource, { headers: { authorization: `Bearer ${refreshed.access_token}` } })
  assert.equal((await oauth.validateJwtAccessToken(as, again, resource, insecure)).aud, resource)

  // RFC 7592: the client reads and deletes its registration.
  const auth = { authorization: `Bearer ${registered.registration_access_token}` }
  const read = await fetch(registered.registration_client_uri, { headers: auth })
  assert.equal(read.status, 200)
  assert.equal((await read.json()).client_id, client.client_id)
  assert.equal((await fetch(registered.registration_client_uri, { method: 'DELETE', headers: auth })).status, 204)
  const gone = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshed.refresh_token, insecure)
  assert.equal(gone.status, 401, 'a deleted client is refused at once')
})
