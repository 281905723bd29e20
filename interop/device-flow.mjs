// oauth4webapi (panva) drives the device authorization grant (RFC 8628) the
// way a TV or a CLI does: it asks /device_authorization for a device code and
// a user code, polls /token with the device code, and checks every answer
// strictly. The user's steps (the code on the /device page, the login, the
// consent page that shows the code) are a browser's, over HTTP. A second
// device proves its token request with DPoP and gets a DPoP-bound token.
//
// Run by crates/oauth-server/tests/interop.rs with `[device] interval = 3`,
// so that two polls in a row come sooner than it even on a loaded machine.

import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import * as oauth from 'oauth4webapi'
import { Browser, discover, env, insecure, need, run } from './lib.mjs'

const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/

run(async () => {
  const as = await discover()
  assert.equal(as.device_authorization_endpoint, new URL('/device_authorization', as.issuer).href)
  assert.ok(as.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:device_code'))
  const client = { client_id: need('DEVICE_CLIENT') }
  const auth = oauth.None()

  /** One device request: the answer oauth4webapi checked. */
  async function start(scope) {
    const response = await oauth.deviceAuthorizationRequest(as, client, auth, new URLSearchParams({ scope }), insecure)
    return oauth.processDeviceAuthorizationResponse(as, client, response)
  }

  /** One poll: the tokens, or the error code the server answered. */
  async function poll(deviceCode, options = {}) {
    try {
      const response = await oauth.deviceCodeGrantRequest(as, client, auth, deviceCode, { ...insecure, ...options })
      return { tokens: await oauth.processDeviceCodeResponse(as, client, response) }
    } catch (e) {
      if (e instanceof oauth.ResponseBodyError) return { error: e.error }
      throw e
    }
  }

  /** The user's steps in a browser: the code page, the login if shown, the consent page. */
  async function approve(device, browser = new Browser()) {
    let page = await browser.open(new URL(device.verification_uri_complete))
    assert.ok(page.html.includes(`value="${device.user_code}"`), 'verification_uri_complete fills the code')
    let { response, url } = await browser.submit(page, '/device')
    assert.equal(response.status, 303, `the code answered ${response.status}`)
    page = await browser.open(new URL(response.headers.get('location'), url))
    if (page.html.includes('name="password"')) {
      ;({ response, url } = await browser.submit(page, '/authorize/login', { username: env.user, password: env.password }))
      assert.equal(response.status, 303, `login answered ${response.status}`)
      page = await browser.open(new URL(response.headers.get('location'), url))
    }
    assert.ok(page.html.includes(device.user_code), 'the consent page shows the user code')
    ;({ response } = await browser.submit(page, '/authorize/consent', {}, { name: 'decision', value: 'approve' }))
    assert.equal(response.status, 303)
    const done = new URL(response.headers.get('location'))
    assert.equal(done.pathname, '/device/done')
    return browser
  }

  const device = await start('openid read')
  assert.match(device.user_code, USER_CODE)
  assert.equal(device.verification_uri, new URL('/device', as.issuer).href)
  assert.equal(device.expires_in, 600)
  const interval = device.interval * 1000
  assert.deepEqual(await poll(device.device_code), { error: 'authorization_pending' })
  assert.deepEqual(await poll(device.device_code), { error: 'slow_down' }, 'polled sooner than the interval')

  const browser = await approve(device)
  // The slow_down added 5 s; the margin is for a loaded machine.
  await sleep(interval + 5000 + 1000)
  const { tokens } = await poll(device.device_code)
  assert.ok(tokens, 'tokens after the approval')
  assert.equal(tokens.token_type.toLowerCase(), 'bearer')
  assert.equal(tokens.scope, 'openid read')
  assert.ok(tokens.refresh_token, 'the client may refresh')
  const claims = oauth.getValidatedIdTokenClaims(tokens)
  assert.equal(claims.aud, client.client_id)
  assert.equal(claims.iss, as.issuer)
  await sleep(interval + 5000 + 1000)
  assert.deepEqual(await poll(device.device_code), { error: 'invalid_grant' }, 'a device code works once')

  // A second device, approved in the same browser (its session skips the
  // login page), redeems its code with a DPoP proof.
  const second = await start('read')
  await approve(second, browser)
  const dpop = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
  const bound = await poll(second.device_code, { DPoP: dpop })
  assert.ok(bound.tokens, `tokens: ${JSON.stringify(bound)}`)
  assert.equal(bound.tokens.token_type.toLowerCase(), 'dpop')
})
