// oauth4webapi (panva) drives DPoP (RFC 9449), PAR (RFC 9126) and
// private_key_jwt (RFC 7523) end to end, the way a FAPI 2.0 client does: a
// client that authenticates with a signed assertion pushes its authorization
// request with a DPoP proof, redeems the code for DPoP-bound tokens, calls
// /userinfo with the DPoP scheme, refreshes, introspects and revokes. A public
// client's refresh token is bound to its proof's key. Proofs built outside
// oauth4webapi are built with jose, as a client would.
//
// Run twice by crates/oauth-server/tests/interop.rs: once as configured, once
// with `[dpop] require_nonce = true`, where every request to /token and /par
// first learns the server's nonce from `use_dpop_nonce` and retries, as
// RFC 9449 8 asks of a client.

import assert from 'node:assert/strict'
import * as jose from 'jose'
import * as oauth from 'oauth4webapi'
import { Browser, discover, insecure, need, run } from './lib.mjs'

/** Sends `request()` again once when the server asks for a DPoP nonce. */
async function withNonce(request, process) {
  try {
    return await process(await request())
  } catch (e) {
    if (!oauth.isDPoPNonceError(e)) throw e
    return process(await request())
  }
}

run(async () => {
  const as = await discover()
  assert.equal(as.pushed_authorization_request_endpoint, new URL('/par', as.issuer).href)
  assert.ok(as.dpop_signing_alg_values_supported.includes('ES256'))
  assert.ok(as.token_endpoint_auth_methods_supported.includes('private_key_jwt'))
  assert.ok(as.token_endpoint_auth_signing_alg_values_supported.includes('ES256'))

  const redirectUri = need('REDIRECT_URI')
  const privateJwk = JSON.parse(need('KEYS_CLIENT_JWK'))
  const client = { client_id: need('KEYS_CLIENT') }
  const auth = oauth.PrivateKeyJwt({ key: await jose.importJWK(privateJwk, 'ES256'), kid: privateJwk.kid })
  const dpopKeys = await oauth.generateKeyPair('ES256')
  const dpop = oauth.DPoP(client, dpopKeys)
  const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(dpopKeys.publicKey))

  // A plain /authorize is refused for a client that must push: the error is
  // redirected (the redirect URI is registered).
  const plain = new URL(as.authorization_endpoint)
  plain.searchParams.set('client_id', client.client_id)
  plain.searchParams.set('redirect_uri', redirectUri)
  plain.searchParams.set('response_type', 'code')
  const refused = await new Browser().open(plain)
  assert.equal(refused.location?.searchParams.get('error'), 'invalid_request', 'PAR is required')

  // PAR with private_key_jwt and a DPoP proof, which binds the code.
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const challenge = await oauth.calculatePKCECodeChallenge(verifier)
  const pushed = await withNonce(
    () =>
      oauth.pushedAuthorizationRequest(
        as,
        client,
        auth,
        new URLSearchParams({
          redirect_uri: redirectUri,
          response_type: 'code',
          scope: 'read',
          state,
          code_challenge: challenge,
          code_challenge_method: 'S256',
        }),
        { DPoP: dpop, ...insecure },
      ),
    (r) => oauth.processPushedAuthorizationResponse(as, client, r),
  )
  assert.match(pushed.request_uri, /^urn:ietf:params:oauth:request_uri:/)
  assert.equal(pushed.expires_in, 60)

  const url = new URL(as.authorization_endpoint)
  url.searchParams.set('client_id', client.client_id)
  url.searchParams.set('request_uri', pushed.request_uri)
  const callback = await new Browser().authorize(url)
  const params = oauth.validateAuthResponse(as, client, callback, state)

  // A request_uri works once: the same URL again gets the error page.
  const again = await new Browser().open(url)
  assert.equal(again.response?.status, 400, 'a used request_uri is refused')

  // The code, with private_key_jwt and a proof by the same key.
  const tokens = await withNonce(
    () => oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, verifier, { DPoP: dpop, ...insecure }),
    (r) => oauth.processAuthorizationCodeResponse(as, client, r),
  )
  assert.equal(tokens.token_type, 'dpop')
  assert.ok(tokens.refresh_token)

  // The resource server's view: the JWT carries cnf.jkt of the proof's key.
  const claims = jose.decodeJwt(tokens.access_token)
  assert.deepEqual(claims.cnf, { jkt })

  // /userinfo with the DPoP scheme and a proof with ath; as Bearer it is 401
  // with a DPoP challenge.
  const userinfo = await oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL(as.userinfo_endpoint), new Headers(), null, {
    DPoP: dpop,
    ...insecure,
  })
  assert.equal(userinfo.status, 200, await userinfo.clone().text())
  assert.equal((await userinfo.json()).username, need('USERNAME'))
  const asBearer = await fetch(as.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } })
  assert.equal(asBearer.status, 401)
  assert.match(asBearer.headers.get('www-authenticate'), /^DPoP .*algs="[^"]*ES256[^"]*".*error="invalid_token"/)

  // Introspection and revocation, authenticated by assertion.
  const introspected = await oauth.processIntrospectionResponse(
    as,
    client,
    await oauth.introspectionRequest(as, client, auth, tokens.access_token, insecure),
  )
  assert.equal(introspected.active, true)
  assert.equal(introspected.token_type, 'DPoP')
  assert.equal(introspected.token_use, 'access_token')
  assert.deepEqual(introspected.cnf, { jkt })

  // Refresh with a proof by the same key.
  const refreshed = await withNonce(
    () => oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, { DPoP: dpop, ...insecure }),
    (r) => oauth.processRefreshTokenResponse(as, client, r),
  )
  assert.equal(refreshed.token_type, 'dpop')

  await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, refreshed.refresh_token, insecure))
  const gone = await oauth.processIntrospectionResponse(
    as,
    client,
    await oauth.introspectionRequest(as, client, auth, refreshed.refresh_token, insecure),
  )
  assert.equal(gone.active, false)

  // The client must use DPoP: client credentials without a proof is refused,
  // with one it is bound.
  await assert.rejects(
    oauth.processClientCredentialsResponse(
      as,
      client,
      await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams({ scope: 'read' }), insecure),
    ),
    (e) => e instanceof oauth.ResponseBodyError && e.error === 'invalid_dpop_proof',
  )
  const cc = await withNonce(
    () => oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams({ scope: 'read' }), { DPoP: dpop, ...insecure }),
    (r) => oauth.processClientCredentialsResponse(as, client, r),
  )
  assert.equal(cc.token_type, 'dpop')

  // A proof built with jose and sent twice: the second is a replay.
  const nonce = await currentNonce(as)
  const proof = await new jose.SignJWT({ htm: 'POST', htu: as.token_endpoint, jti: crypto.randomUUID(), ...(nonce && { nonce }) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await jose.exportJWK(dpopKeys.publicKey) })
    .setIssuedAt()
    .sign(dpopKeys.privateKey)
  const send = async (audience = as.issuer, dpopProof = proof) => {
    const assertion = await new jose.SignJWT({ jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: privateJwk.kid })
      .setIssuer(client.client_id)
      .setSubject(client.client_id)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(await jose.importJWK(privateJwk, 'ES256'))
    return fetch(as.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: dpopProof },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    })
  }
  // An assertion for another audience is 401 invalid_client.
  const elsewhere = await send('https://other.example', 'unused')
  assert.equal(elsewhere.status, 401)
  assert.equal((await elsewhere.json()).error, 'invalid_client')
  assert.equal((await send()).status, 200)
  const replay = await send()
  assert.equal(replay.status, 400)
  assert.equal((await replay.json()).error, 'invalid_dpop_proof')

  // A public client: its refresh token is bound to the proof's key; another
  // key cannot use it.
  const pub = { client_id: need('PUBLIC_CLIENT') }
  const pubDpop = oauth.DPoP(pub, await oauth.generateKeyPair('ES256'))
  const pubVerifier = oauth.generateRandomCodeVerifier()
  const pubUrl = new URL(as.authorization_endpoint)
  pubUrl.searchParams.set('client_id', pub.client_id)
  pubUrl.searchParams.set('redirect_uri', redirectUri)
  pubUrl.searchParams.set('response_type', 'code')
  pubUrl.searchParams.set('scope', 'read')
  pubUrl.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(pubVerifier))
  pubUrl.searchParams.set('code_challenge_method', 'S256')
  const pubCallback = await new Browser().authorize(pubUrl)
  const pubParams = oauth.validateAuthResponse(as, pub, pubCallback, oauth.expectNoState)
  const pubTokens = await withNonce(
    () => oauth.authorizationCodeGrantRequest(as, pub, oauth.None(), pubParams, redirectUri, pubVerifier, { DPoP: pubDpop, ...insecure }),
    (r) => oauth.processAuthorizationCodeResponse(as, pub, r),
  )
  assert.equal(pubTokens.token_type, 'dpop')
  const thief = oauth.DPoP(pub, await oauth.generateKeyPair('ES256'))
  await assert.rejects(
    withNonce(
      () => oauth.refreshTokenGrantRequest(as, pub, oauth.None(), pubTokens.refresh_token, { DPoP: thief, ...insecure }),
      (r) => oauth.processRefreshTokenResponse(as, pub, r),
    ),
    (e) => e instanceof oauth.ResponseBodyError && e.error === 'invalid_grant',
  )
  const pubRefreshed = await withNonce(
    () => oauth.refreshTokenGrantRequest(as, pub, oauth.None(), pubTokens.refresh_token, { DPoP: pubDpop, ...insecure }),
    (r) => oauth.processRefreshTokenResponse(as, pub, r),
  )
  assert.equal(pubRefreshed.token_type, 'dpop')
})

/**
 * The server's current DPoP nonce, if it asks for nonces: every answer of
 * /token carries it then (here one to the confidential demo client).
 */
async function currentNonce(as) {
  const basic = Buffer.from(`${need('CONFIDENTIAL_CLIENT')}:${need('CONFIDENTIAL_SECRET')}`).toString('base64')
  const r = await fetch(as.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}` },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  })
  assert.equal(r.status, 200, await r.text())
  return r.headers.get('dpop-nonce') ?? undefined
}
