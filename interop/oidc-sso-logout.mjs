// openid-client (panva) as two OpenID Connect relying parties: discovery, a
// code flow with PKCE, `nonce` and `max_age` whose ID token is validated
// strictly (iss, aud, azp, exp, iat, nonce, auth_time against max_age, and
// the signature against the JWKS: openid-client's non-repudiation checks,
// and jose's own), UserInfo with the expected subject, a refresh that
// returns a new ID token, single sign-on into the second client without the
// login page, prompt=none, and RP-initiated logout, after which prompt=none
// answers login_required.

import assert from 'node:assert/strict'
import * as client from 'openid-client'
import * as jose from 'jose'
import { Browser, env, need, run } from './lib.mjs'

const redirectUri = need('REDIRECT_URI')
const logoutUri = need('LOGOUT_URI')
const insecure = { execute: [client.allowInsecureRequests] }

/** A relying party for `clientId`, configured by OpenID Connect Discovery. */
async function relyingParty(clientId) {
  const config = await client.discovery(new URL(env.issuer), clientId, undefined, client.None(), insecure)
  // Verify ID token signatures against the JWKS as well (off by default
  // for ID tokens that come straight from the token endpoint).
  client.enableNonRepudiationChecks(config)
  return config
}

/** The authorization URL and the checks its answer must pass. */
async function request(config, extra = {}) {
  const checks = {
    pkceCodeVerifier: client.randomPKCECodeVerifier(),
    expectedNonce: client.randomNonce(),
    expectedState: client.randomState(),
    maxAge: 300,
    idTokenExpected: true,
  }
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(checks.pkceCodeVerifier),
    code_challenge_method: 'S256',
    nonce: checks.expectedNonce,
    state: checks.expectedState,
    max_age: String(checks.maxAge),
    ...extra,
  })
  return { url, checks }
}

run(async () => {
  const one = await relyingParty(need('RP_ONE'))
  const two = await relyingParty(need('RP_TWO'))
  const meta = one.serverMetadata()
  assert.ok(meta.end_session_endpoint, 'end_session_endpoint')
  assert.ok(meta.id_token_signing_alg_values_supported.includes('RS256'))
  assert.deepEqual(meta.code_challenge_methods_supported, ['S256'])
  assert.ok(!meta.claims_supported.includes('bsn'))

  const browser = new Browser()

  // First client: the login page and the consent page.
  const first = await request(one)
  const callback = await browser.authorize(first.url)
  const tokens = await client.authorizationCodeGrant(one, callback, first.checks)
  const claims = tokens.claims()
  assert.equal(claims.iss, env.issuer)
  assert.equal(claims.aud, need('RP_ONE'))
  assert.equal(claims.azp, need('RP_ONE'))
  assert.equal(claims.nonce, first.checks.expectedNonce)
  assert.deepEqual(claims.amr, ['pwd'])
  assert.ok(claims.sid && claims.at_hash && claims.auth_time)
  assert.equal(claims.email, undefined, 'ID tokens carry no account attributes')

  // The signature once more, with jose and the JWKS, as a resource of its own.
  const jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri))
  const { protectedHeader } = await jose.jwtVerify(tokens.id_token, jwks, { issuer: env.issuer, audience: need('RP_ONE') })
  assert.equal(protectedHeader.alg, 'RS256')

  // UserInfo: the standard claims of profile and email, typed; checked
  // against the ID token's subject.
  const info = await client.fetchUserInfo(one, tokens.access_token, claims.sub)
  assert.equal(info.sub, claims.sub)
  assert.equal(info.email, 'carol@example.org')
  assert.equal(info.email_verified, true)
  assert.equal(info.name, 'Carol')
  assert.equal(info.preferred_username, env.user)
  assert.equal(info.bsn, undefined, 'no attribute outside the standard claims')
  assert.equal(info.username, undefined)

  // A refresh returns a new ID token for the same login.
  const refreshed = await client.refreshTokenGrant(one, tokens.refresh_token)
  const again = refreshed.claims()
  assert.equal(again.sub, claims.sub)
  assert.equal(again.auth_time, claims.auth_time)
  assert.equal(again.nonce, undefined)

  // Second client, same browser: single sign-on. No login page; consent once.
  const second = await request(two)
  const page = await browser.open(second.url)
  assert.ok(page.html && !page.html.includes('name="password"'), 'no login page with a live session')
  assert.ok(page.html.includes(env.user), 'the consent page names the signed-in account')
  const callback2 = await browser.authorize(second.url)
  const tokens2 = await client.authorizationCodeGrant(two, callback2, second.checks)
  assert.equal(tokens2.claims().sub, claims.sub)
  assert.equal(tokens2.claims().sid, claims.sid, 'one browser session, one sid')

  // prompt=none: a code without any page (session and remembered consent).
  const silent = await request(two, { prompt: 'none' })
  const opened = await browser.open(silent.url)
  assert.ok(opened.location, 'prompt=none answers with a redirect')
  await client.authorizationCodeGrant(two, opened.location, silent.checks)

  // RP-initiated logout with the ID token as hint: straight back, with state.
  const logoutState = client.randomState()
  const endSession = client.buildEndSessionUrl(one, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: logoutUri,
    state: logoutState,
  })
  const out = await browser.fetch(endSession)
  assert.equal(out.status, 303)
  assert.equal(out.headers.get('location'), `${logoutUri}?state=${logoutState}`)

  // Logged out: prompt=none is login_required.
  const after = await request(two, { prompt: 'none' })
  const back = await browser.open(after.url)
  assert.equal(back.location.searchParams.get('error'), 'login_required')
  await assert.rejects(client.authorizationCodeGrant(two, back.location, after.checks), (e) => e.error === 'login_required')
})
